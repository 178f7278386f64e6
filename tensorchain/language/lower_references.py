"""Lowering references to tensors: ``W[i, j]``, a diagonal ``W[i, i]``, picked
positions ``T[ids[s], d]`` and ``x[s, 0]``, offset indices ``x[s, j + 1]``,
the split of a group ``y[s, (h w)]``, and ``delta[i, j]``.

One of the parts the lowering of a statement is made of
(:mod:`tensorchain.language.lower`).
"""

from __future__ import annotations

import difflib
from dataclasses import replace

from ..errors import ShapeError, count_axes
from .operations import DELTA, Delta, Leaf, Node, Product, Reindex, Select, positional
from .syntax import Group, Index, Offset, Pick, Ref, show


class LowerReferences:
    """References to tensors: one part of the lowering of a statement
    (``lower._Lowering``), which takes the other parts and the statement
    (``fail``, ``lower``, ``axes``, ...) from ``self``."""

    def ref(self, e: Ref) -> Node:
        if e.name == DELTA and e.name not in self.axes:
            return self.delta(e)
        if e.name not in self.axes:
            raise self.fail(self._undeclared(e.name), e.pos)
        if e.name in self.indexes and not self.comparing:
            raise self.fail(self._positions_as_numbers(e), e.pos)
        axes = self.axes[e.name]
        if e.indices is None:
            if not axes:
                return Leaf(e.name, (), e.pos)
            if self.index_form:
                example = ", ".join("ijklmnpq"[k % 8] for k in range(len(axes)))
                raise self.fail(
                    f"{e.name} has axes [{', '.join(axes)}]; in an index-form statement"
                    f" write {e.name}[{example}] with one index per axis",
                    e.pos,
                )
            return Leaf(e.name, tuple(positional(k) for k in range(len(axes))), e.pos)
        if len(e.indices) != len(axes):
            raise self.fail(
                f"{e.name} has {count_axes(len(axes))} [{', '.join(axes)}] but"
                f" {len(e.indices)} indices are given in {show(e)}",
                e.pos,
                ShapeError,
            )
        for i in e.indices:
            if isinstance(i, Index) and i.name in self.indexes:
                example = ", ".join("stuvw"[k % 5] for k in range(len(self.axes[i.name])))
                raise self.fail(
                    f"{i.name} is an index tensor: to pick with its entries write its"
                    f" indices too, {e.name}[..., {i.name}[{example}], ...]; an index name"
                    " must not be the name of an index tensor",
                    i.pos,
                )
        picks = any(isinstance(i, Pick | Offset) for i in e.indices)
        if picks and any(isinstance(i, Group) for i in e.indices):
            raise self.fail(
                f"{show(e)} both picks positions and groups axes; write the pick (or the"
                " range) and the reshape as two statements",
                e.pos,
            )
        if picks:
            return self.picked(e, axes)
        if any(isinstance(i, Group) for i in e.indices):
            return self.split(e)
        labels = tuple(i.name for i in e.indices)
        leaf = Leaf(e.name, labels, e.pos)
        if len(set(labels)) < len(labels):  # W[i, i]: the diagonal
            return Product(1.0, (leaf,), tuple(dict.fromkeys(labels)))
        return leaf

    def picked(self, e: Ref, axes: tuple[str, ...]) -> Node:
        """``T[ids[s], d]``, ``x[s, 0, k]`` or ``x[s, j + 1, k]``: the picked
        axes get labels of their own, each joined to a :class:`Select` (or, for
        an offset index, a :class:`Reindex` of kind ``range``) and summed inside
        the factor, so that ``tanh(T[ids[s], d])`` is the tanh of the entries picked."""
        labels, selects, kept = [], [], []
        for k, (idx, dim) in enumerate(zip(e.indices, axes, strict=True)):
            if isinstance(idx, Index):
                labels.append(idx.name)
                kept.append(idx.name)
                continue
            self.scopes += 1
            label = f"{dim}@{self.scopes}"
            if isinstance(idx, Offset):
                if idx.index.name in self.indexes:
                    raise self.fail(
                        f"{idx.index.name} is an index tensor; an offset index is an index"
                        f" name plus a whole number, as in {e.name}[..., j + {idx.offset}, ...]",
                        idx.pos,
                    )
                labels.append(label)
                selects.append(Reindex("range", (label, idx.index.name), (), idx.pos, idx.offset))
                kept.append(idx.index.name)
                continue
            select = self.select(idx, label, f"axis {k} of {e.name}", dim)
            labels.append(label)
            selects.append(select)
            kept.extend(select.labels[:-1])
        leaf = Leaf(e.name, tuple(labels), e.pos)
        return Product(1.0, (*selects, leaf), tuple(dict.fromkeys(kept)))

    def select(self, pick: Pick, label: str, where: str, dim: str | None) -> Select:
        """The :class:`Select` of ``pick`` onto ``label`` (``where``: the axis
        it picks from, of dim ``dim``; None for a delta's), checked."""
        if isinstance(pick.by, int):
            return Select(pick.by, (label,), pick.pos)
        ref = pick.by
        if ref.name not in self.indexes:
            what = (
                "is not declared" if ref.name not in self.axes else "holds numbers, not positions"
            )
            raise self.fail(
                f"{ref.name} {what}: a position inside [...] is an index name, a whole"
                f" number, or the entries of an integer index tensor declared with"
                f" 'input {ref.name}[B] index V' (V the dim whose positions it holds)",
                pick.pos,
            )
        ids_axes = self.axes[ref.name]
        names = [i for i in ref.indices or ()]
        if len(names) != len(ids_axes) or any(not isinstance(i, Index) for i in names):
            example = ", ".join("stuvw"[k % 5] for k in range(len(ids_axes)))
            count = f"{len(ids_axes)} ax{'i' if len(ids_axes) == 1 else 'e'}s"
            raise self.fail(
                f"{ref.name} has {count} [{', '.join(ids_axes)}]: pick with one"
                f" index name per axis, e.g. {ref.name}[{example}]",
                pick.pos,
                ShapeError,
            )
        given = tuple(i.name for i in names)
        if len(set(given)) < len(given):
            raise self.fail(
                f"{show(ref)} repeats an index; an index tensor's axes take distinct names",
                pick.pos,
            )
        if dim is not None and self.indexes[ref.name] != dim:
            raise self.fail(
                f"{ref.name} holds positions along dim {self.indexes[ref.name]}, but {where}"
                f" is dim {dim}; pick with an index tensor of dim {dim} (input"
                f" {ref.name}[...] index {dim}) or declare that axis with dim"
                f" {self.indexes[ref.name]}",
                pick.pos,
                ShapeError,
            )
        return Select(ref.name, (*given, label), pick.pos)

    def split(self, e: Ref) -> Node:
        """``y[s, (h w)]`` on the right side: ``y[s, g] · δ[g, (h w)]`` summed over
        ``g``, whose axes are ``s, h, w`` (the split of a reshape)."""
        labels, factors, expanded = [], [], []
        for idx in e.indices or ():
            if isinstance(idx, Index):
                labels.append(idx.name)
                expanded.append(idx)
                continue
            self._refuse_added(idx)
            self.scopes += 1
            g = f"{idx.name}@{self.scopes}"
            labels.append(g)
            factors.append(Reindex("group", (g, *(m.name for m in idx.members)), (), idx.pos))
            expanded.extend(idx.members)
        seen: set[str] = set()
        for idx in expanded:
            if idx.name in seen:
                raise self.fail(
                    f"the index {idx.name!r} appears twice in {show(e)}; in a tensor with a"
                    " group each index appears once (an axis is grouped once)",
                    idx.pos,
                )
            seen.add(idx.name)
        leaf = Leaf(e.name, tuple(labels), e.pos)
        return Product(1.0, (leaf, *factors), tuple(i.name for i in expanded))

    def delta(self, e: Ref) -> Node:
        """``delta[i, j]``: the Kronecker delta, symbolic in every derivative;
        ``delta[k, ids[s]]`` is the one-hot of ``ids`` along ``k``, a :class:`Select`."""
        group = next((i for i in e.indices or () if isinstance(i, Group)), None)
        if group is not None:
            raise self.fail(
                f"delta takes two indices, not a group {group.name}: for the identity"
                " between a group and its indices write the reshape as a statement,"
                f" e.g. y[s, {group.name}] = x[s, {', '.join(m.name for m in group.members)}]",
                group.pos,
            )
        picks = [i for i in e.indices or () if isinstance(i, Pick)]
        if picks and len(e.indices) == 2 and len(picks) == 1 and self.index_form:
            (k,) = (i for i in e.indices if isinstance(i, Index))
            return replace(self.select(picks[0], k.name, "", None), onehot=True)
        if picks:
            raise self.fail(
                "delta with a picked position is a one-hot: one index name and one pick,"
                " e.g. delta[c, labels[s]] (the one-hot of labels along c) or delta[k, 0]",
                e.pos,
            )
        if e.indices is None or len(e.indices) != 2 or not self.index_form:
            raise self.fail(
                "delta is the Kronecker delta (the identity matrix): write it with two"
                " indices in an index-form statement, e.g. D[i, j] = v[i] * delta[i, j]",
                e.pos,
            )
        i, j = (index.name for index in e.indices)
        if i == j:
            raise self.fail(
                f"delta[{i}, {i}] is 1 for every {i}: write 1, or use two indices", e.pos
            )
        return Delta((i, j))

    def _positions_as_numbers(self, e: Ref) -> str:
        """Why an index tensor is no number, and the spellings that use it."""
        name, dim = e.name, self.indexes[e.name]
        axes = self.axes[name]
        own = ", ".join("stuvw"[k % 5] for k in range(len(axes)))
        return (
            f"{name} is an index tensor: it holds positions along {dim}, not numbers, so"
            f" it cannot be computed with; pick with it (T[{name}[{own}], d]), make its"
            f" one-hot (delta[k, {name}[{own}]]) or compare it (where({name}[{own}] == 0,"
            f" a, b)); to compute with the positions as numbers, declare a second input"
            f" without 'index' (input {name}_value[{', '.join(axes)}]) and give it the"
            " same array"
        )

    def _undeclared(self, name: str) -> str:
        if name == self.assign.target:
            return (
                f"{name} is used on the right side of its own definition; a tensor"
                " must be defined before it is used"
            )
        close = difflib.get_close_matches(name, list(self.axes), n=1)
        hint = f" Did you mean {close[0]!r}?" if close else ""
        return (
            f"undeclared tensor {name!r}: declare it with 'input {name}[...]' or"
            f" 'param {name}[...]', or define it on an earlier line.{hint}"
        )

    def _refuse_added(self, group: Group) -> None:
        if group.added:
            raise self.fail(
                f"{group.name} adds dims, which only a declaration does (param W[(I + J), O]);"
                " to join tensors along an index write concat(a[s, k], b[s, k], k)",
                group.pos,
            )
