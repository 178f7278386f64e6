"""Sizes: which dim every index stands for, and the checks that sizes agree.

Each tensor axis has a dim (``n``, ``m``, ``B``). Inside a statement every
label is bound to the dims of the axes it indexes; the first binding names the
label's dim, and every later binding must have the same size once sizes are
known. A conflict raises :class:`ShapeError` naming the statement, the index,
both tensors and both sizes.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays import limits
from ..errors import ShapeError, count_axes
from ..functions.along import ALONG
from .operations import Along, Delta, Lowered, Reindex, Select, Solve, base_label, leaves, walk
from .reindex import Derived, product_dim, sum_dim
from .syntax import Pos, Program


@dataclass(frozen=True)
class Binding:
    dim: str
    tensor: str
    axis: int
    pos: Pos


def _describe(label: str, stmt: Lowered | None = None) -> str:
    for node in walk(stmt.root) if stmt is not None and not stmt.index_form else ():
        if isinstance(node, Solve) and label in (node.row, node.col, *node.rhs.labels):
            return "axis 0" if label == node.row else "axis 1"  # whole form: n×n, n or n×k
    label = base_label(label)
    return f"axis {label[1:]}" if label.startswith("#") else f"index {label!r}"


def _solve_sides(stmt: Lowered, label: str, a: str, b: str) -> bool:
    """Whether ``label`` is the rows of a whole-form ``solve`` whose matrix
    holds one of the tensors ``a``, ``b`` and whose right side the other."""
    for node in walk(stmt.root):
        if isinstance(node, Solve) and label == node.row:
            left = {leaf.name for leaf in leaves(node.matrix)}
            right = {leaf.name for leaf in leaves(node.rhs)}
            return (a in left and b in right) or (a in right and b in left)
    return False


def bind_labels(
    program: Program,
    stmt: Lowered,
    axes: Mapping[str, tuple[str, ...]],
    sizes: Mapping[str, int],
    indexes: Mapping[str, str] | None = None,
    dims: Collection[str] = (),
    derived: dict[str, Derived] | None = None,
) -> dict[str, Binding]:
    """Bind every label of ``stmt`` to a dim; check sizes where they are known.
    ``indexes``: the dim each integer index tensor holds positions of;
    ``dims``: the declared dims (an index of a split group may name one);
    ``derived``: the derived dims, where the dims of merged and concatenated
    axes are added (see :mod:`tensorchain.language.reindex`)."""
    bound: dict[str, Binding] = {}

    def bind(label: str, dim: str, tensor: str, k: int, pos: Pos) -> None:
        first = bound.setdefault(label, Binding(dim, tensor, k, pos))
        if first.dim == dim or dim not in sizes or first.dim not in sizes:
            return
        if sizes[first.dim] == sizes[dim]:
            return
        if not stmt.index_form and _solve_sides(stmt, label, first.tensor, tensor):
            message = (
                "solve(A, b) needs as many rows in b as in A (A x = b), but axis"
                f" {first.axis} of {first.tensor} is {first.dim}={sizes[first.dim]} and"
                f" axis {k} of {tensor} is {dim}={sizes[dim]}"
            )
        elif stmt.index_form:
            message = (
                f"index {base_label(label)!r} has two sizes: {first.dim}={sizes[first.dim]} as"
                f" {_axis(first.axis, first.tensor)} but {dim}={sizes[dim]} as"
                f" {_axis(k, tensor)}; use a separate index for each, or"
                " declare both axes with the same dim"
            )
        else:
            message = (
                f"shape mismatch in whole-tensor arithmetic: {first.tensor} has"
                f" {shape_text(axes[first.tensor], sizes)} but {tensor} has"
                f" {shape_text(axes[tensor], sizes)} ({_describe(label, stmt)}:"
                f" {first.dim}={sizes[first.dim]} vs {dim}={sizes[dim]});"
                " elementwise operations need equal shapes"
            )
        raise program.error(message, pos, ShapeError)

    for leaf in leaves(stmt.root):
        for k, (label, dim) in enumerate(zip(leaf.labels, axes[leaf.name], strict=True)):
            bind(label, dim, leaf.name, k, leaf.pos)
    selects = [n for n in walk(stmt.root) if isinstance(n, Select)]
    for node in selects:  # an index tensor's axes, then the dim of its positions
        pos = node.pos or stmt.pos
        if isinstance(node.index, str):
            dims = (*axes[node.index], ({} if indexes is None else indexes)[node.index])
            for k, (label, dim) in enumerate(zip(node.labels, dims, strict=True)):
                bind(label, dim, node.index, k if k < len(dims) - 1 else -1, pos)
    _bind_deltas(program, stmt, bound)
    for node in selects:
        _check_position(program, stmt, node, bound, sizes)
    _bind_reindex(program, stmt, bound, sizes, dims, {} if derived is None else derived)
    _check_square(program, stmt, bound, sizes)
    return bound


def _axis(k: int, tensor: str) -> str:
    """``axis 1 of W``, or for an index tensor's positions (k = -1) ``the positions of ids``."""
    return f"the positions of {tensor}" if k < 0 else f"axis {k} of {tensor}"


def _check_position(
    program: Program, stmt: Lowered, node: Select, bound: dict[str, Binding], sizes: Mapping
) -> None:
    """A constant position must be within its dim: ``x[s, 5, k]`` with K = 4 is refused."""
    (label,) = node.labels[-1:]
    pos = node.pos or stmt.pos
    if label not in bound:
        raise program.error(
            f"delta[{base_label(label)}, {node.index}]: the index {base_label(label)!r} indexes"
            " no tensor of the statement, so its size is unknown; use it on a tensor",
            pos,
        )
    if isinstance(node.index, int):
        b = bound[label]
        if b.dim in sizes and node.index >= sizes[b.dim]:
            what = f"position {node.index} is past the end of {_axis(b.axis, b.tensor)}"
            where = f"dim {b.dim} = {sizes[b.dim]}"
            if node.onehot:  # the position is delta's, its index's size from elsewhere
                k = base_label(label)
                what = f"delta[{k}, {node.index}]: position {node.index} is past the end of"
                what += f" the dim of {k!r}"
                where += f", as {_axis(b.axis, b.tensor)}"
            raise program.error(
                f"{what} ({where}): positions run from 0 to {sizes[b.dim] - 1}",
                pos,
                ShapeError,
            )


def _bind_reindex(
    program: Program,
    stmt: Lowered,
    bound: dict[str, Binding],
    sizes: Mapping[str, int],
    dims: Collection[str],
    derived: dict[str, Derived],
) -> None:
    """The dims of reshapes and concatenations: a merged axis has the product
    of its indices' dims, a concatenated one their sum; an index of a split
    takes the dim of the split axis's factor (``(H K)``), else the dim it is
    named after. Then the sizes are checked."""
    nodes = [n for n in walk(stmt.root) if isinstance(n, Reindex)]
    todo = list(nodes)
    while todo:
        left, before = [], len(bound)
        for node in todo:
            if node.kind == "range":  # j of x[s, j + 1]: another tensor's dim, or its own
                j = node.labels[1]
                if j not in bound and base_label(j) in dims:
                    axis = stmt.labels.index(j) if j in stmt.labels else 0
                    bound[j] = Binding(base_label(j), stmt.target, axis, node.pos or stmt.pos)
                if j not in bound:
                    left.append(node)
                continue
            outer, inner = (
                node.labels[0],
                (node.parts if node.kind == "offset" else node.labels[1:]),
            )
            binding = bound.get(outer)
            if all(lab in bound for lab in inner):
                if outer not in bound:
                    make = product_dim if node.kind == "group" else sum_dim
                    dim = make([bound[lab].dim for lab in inner], derived)
                    axis = stmt.labels.index(outer) if outer in stmt.labels else 0
                    bound[outer] = Binding(dim, stmt.target, axis, node.pos or stmt.pos)
            elif binding is not None and node.kind == "group":
                op, factors = derived.get(binding.dim, ("", ()))
                for k, lab in enumerate(inner):
                    base = base_label(lab)
                    if lab in bound:
                        continue
                    if op == "*" and len(factors) == len(inner):
                        bound[lab] = replace_dim(binding, factors[k])
                    elif base in dims:
                        bound[lab] = replace_dim(binding, base)
            else:
                left.append(node)
                continue
            if outer not in bound or not all(lab in bound for lab in inner):
                left.append(node)
        if left and len(bound) == before:  # nothing more can be bound
            raise _unsized(program, stmt, left[0], bound, derived)
        todo = left
    for node in nodes:
        _check_reindex(program, stmt, node, bound, sizes)


def replace_dim(binding: Binding, dim: str) -> Binding:
    return Binding(dim, binding.tensor, binding.axis, binding.pos)


def _group_text(node: Reindex) -> str:
    return f"({' '.join(base_label(lab) for lab in node.labels[1:])})"


def _unsized(
    program: Program,
    stmt: Lowered,
    node: Reindex,
    bound: dict[str, Binding],
    derived: Mapping[str, Derived],
):
    pos = node.pos or stmt.pos
    if node.kind == "range":
        j, outer = base_label(node.labels[1]), bound.get(node.labels[0])
        axis = f" along {_axis(outer.axis, outer.tensor)} (dim {outer.dim})" if outer else ""
        return program.error(
            f"the offset index {j} + {node.start} reads a range of positions{axis}, but {j!r}"
            f" has no size: {j} runs over a dim of its own; declare it before this statement"
            f" (dim {j} = 2 reads positions {node.start} and {node.start + 1}), or use {j} on"
            " another tensor of"
            " the statement",
            pos,
            ShapeError,
        )
    if node.kind == "offset":
        return program.error(
            f"concat along {base_label(node.labels[0])!r}: a part's index has no size; index"
            " each part by a tensor",
            pos,
            ShapeError,
        )
    missing = next(base_label(lab) for lab in node.labels[1:] if lab not in bound)
    group = _group_text(node)
    if node.labels[0] in bound:  # a split
        have = bound[node.labels[0]].dim
        op, factors = derived.get(have, ("", ()))
        if op == "*":  # the axis is a product, of other dims than the group has indices
            count = len(node.labels) - 1
            return program.error(
                f"the group {group} splits an axis of dim {have}, a product of"
                f" {len(factors)} dims, into {count} indices, and {missing!r} has no size"
                f" (unknown dim {missing!r}); split it into {len(factors)} indices, one per"
                f" dim of {have}, or name a declared dim (dim {missing} = 4, then use"
                f" {missing} in the group)",
                pos,
            )
        return program.error(
            f"the index {missing!r} of the group {group} has no size (unknown dim"
            f" {missing!r}): the split axis has the dim {have}; name a declared dim"
            f" (dim {missing} = 4, then use {missing} in the group), use {missing} on another"
            f" tensor of the statement, or declare the axis as a product of dims, e.g."
            f" input x[B, (H W)]",
            pos,
        )
    return program.error(
        f"the index {missing!r} of the group {group} has no size: use it on a tensor of"
        " the right side (as a plain index: an offset index such as"
        f" {missing} + 1 runs over a dim of its own, so declare it, dim {missing} = 2)",
        pos,
    )


def _check_reindex(
    program: Program,
    stmt: Lowered,
    node: Reindex,
    bound: dict[str, Binding],
    sizes: Mapping[str, int],
) -> None:
    """The size of a grouped axis is the product of its indices' sizes, that of
    a concatenated axis the sum of its parts'."""
    outer = bound[node.labels[0]]
    if node.kind == "range":
        _check_range(program, stmt, node, outer, bound[node.labels[1]], sizes)
        return
    inner = node.labels[1:] if node.kind == "group" else node.parts
    dims = [bound[lab].dim for lab in inner]
    if outer.dim not in sizes or any(d not in sizes for d in dims):
        return
    found = [sizes[d] for d in dims]
    total = math.prod(found) if node.kind == "group" else sum(found)
    if sizes[outer.dim] == total:
        return
    op = "·" if node.kind == "group" else " + "
    terms = f"{op.join(dims)} = {op.join(map(str, found))}"
    axis = f"axis {outer.axis} of {outer.tensor} has {outer.dim}={sizes[outer.dim]}"
    if node.kind == "group":
        message = (
            f"the group {_group_text(node)} does not fit its axis: {axis}, but {terms} ="
            f" {total}; the sizes of a group's indices multiply to the size of the axis"
        )
    else:
        message = (
            f"concat along {base_label(node.labels[0])!r}: {axis}, but the parts have"
            f" {terms} = {total}; the parts' sizes add up to the size of the axis"
        )
    raise program.error(message, node.pos or stmt.pos, ShapeError)


def _check_range(
    program: Program,
    stmt: Lowered,
    node: Reindex,
    outer: Binding,
    inner: Binding,
    sizes: Mapping[str, int],
) -> None:
    """An offset index ``x[s, j + start]`` stays inside its axis: ``J + start ≤ size``."""
    if outer.dim not in sizes or inner.dim not in sizes:
        return
    size, n, start = sizes[outer.dim], sizes[inner.dim], node.start
    if n + start <= size:
        return
    j = base_label(node.labels[1])
    if start >= size:
        fits = f"an offset below {size}"
    else:
        most = size - start
        fits = f"a dim of at most {most} for {j} ({inner.dim} ≤ {most})"
        fits += f", or an offset of at most {size - n}" if n <= size else ""
    raise program.error(
        f"the offset index {j} + {start} reads positions {start} to {start + n - 1}"
        f" ({j} runs over dim {inner.dim} = {n}) of {_axis(outer.axis, outer.tensor)},"
        f" which has {outer.dim} = {size} positions (0 to {size - 1}): position"
        f" {start + n - 1} is past its end; use {fits}",
        node.pos or stmt.pos,
        ShapeError,
    )


def _bind_deltas(program: Program, stmt: Lowered, bound: dict[str, Binding]) -> None:
    """An index only a Kronecker delta carries (``v[i] * delta[i, j]``) takes
    the dim of the other."""
    for node in walk(stmt.root):
        if not isinstance(node, Delta):
            continue
        a, b = node.labels
        if a not in bound and b not in bound:
            raise program.error(
                f"delta[{base_label(a)}, {base_label(b)}]: neither index indexes a tensor of"
                " the statement, so their size is unknown; use one of them on a tensor",
                stmt.pos,
            )
        if a not in bound:
            bound[a] = bound[b]
        elif b not in bound:
            bound[b] = bound[a]


def _check_square(
    program: Program, stmt: Lowered, bound: dict[str, Binding], sizes: Mapping[str, int]
) -> None:
    """A matrix function needs a square matrix (and a delta two equal sizes)."""
    for node in walk(stmt.root):
        names = None  # the user's names of the rows and columns, where they differ
        if isinstance(node, Solve):
            pairs = [("solve", node.row, node.col)]
        elif isinstance(node, Along) and ALONG[node.func].matrix:
            pairs = [(node.origin.func if node.origin else node.func, *node.axes)]
            if node.origin is not None and len(node.origin.axes) == 2:
                names = node.origin.axes  # solve(A, delta) is an inv of A relabeled
        elif isinstance(node, Delta):
            pairs = [(node.call or "delta", *node.labels)]
        else:
            continue
        for func, row, col in pairs:
            user_row, user_col = names or (base_label(row), base_label(col))
            r, c = bound[row].dim, bound[col].dim
            if r == c or r not in sizes or c not in sizes or sizes[r] == sizes[c]:
                continue
            what = "two indices of one size" if func == "delta" else "a square matrix"
            first, second = bound[row], bound[col]
            if not stmt.index_form:  # the last two axes of the matrix
                where = f"the last two axes of {first.tensor} are {r}={sizes[r]} and {c}={sizes[c]}"
            else:
                where = (
                    f"index {user_row!r} is {r}={sizes[r]} (axis {first.axis} of"
                    f" {first.tensor}) and index {user_col!r} is {c}={sizes[c]} (axis"
                    f" {second.axis} of {second.tensor})"
                )
            raise program.error(
                f"{func} needs {what}, but {where}",
                stmt.pos,
                ShapeError,
            )


def check_given_dims(
    dims: Mapping[str, Any], known: Mapping[str, Any], derived: Collection[str] = ()
) -> None:
    """Sizes given by name: each a dim of the network (or one of its derived
    dims, ``(h j)`` or ``(h + w)``, as ``net.sizes()`` names them), a positive
    integer, within ``limits.MAX_DIM``; a ShapeError otherwise."""
    for d, s in dims.items():
        if d not in known and d not in derived:
            also = f" (and the derived {', '.join(derived)})" if derived else ""
            raise ShapeError(f"unknown dim {d!r}; this network's dims are {', '.join(known)}{also}")
        if not isinstance(s, int | np.integer) or isinstance(s, bool) or s < 1:
            raise ShapeError(f"dim {d} must be a positive integer, got {s!r}")
        if s > limits.MAX_DIM:
            raise ShapeError(
                f"dim {d}={s} is larger than the limit {limits.MAX_DIM:,}"
                " (tensorchain.arrays.limits.MAX_DIM)"
            )


def shape_text(dims: tuple[str, ...], sizes: Mapping[str, int]) -> str:
    """``[n=4, m=3]``, or ``[n, m]`` where sizes are unknown."""
    parts = [f"{d}={sizes[d]}" if d in sizes else d for d in dims]
    return f"[{', '.join(parts)}]"


def value_sizes(
    tensors: Mapping[str, Any],
    defaults: Mapping[str, int | None],
    known: Mapping[str, int],
    given: Mapping[str, int],
    values: Mapping[str, Any],
) -> dict[str, int]:
    """The size of each dim that the values' shapes fix.

    ``tensors`` are the network's (name -> info with ``kind`` and ``dims``),
    ``defaults`` the spec's sizes, ``known`` the sizes so far (for messages)
    and ``given`` the sizes given as arguments, which the values must match.
    Where values disagree, the one blamed is the value that disagrees with
    the others (the spec's size breaking a tie), not the one read first."""
    uses: dict[str, list[tuple[int, str, int]]] = {}  # dim -> (size, tensor, axis)
    for name, value in values.items():
        info = tensors.get(name)
        if info is None or info.kind not in ("input", "param"):
            continue
        shape = np.shape(value)
        if len(shape) != len(info.dims):
            raise ShapeError(
                f"{name} is declared with {count_axes(len(info.dims))}"
                f" {shape_text(info.dims, known)} but its value has shape {shape}"
            )
        for k, (d, s) in enumerate(zip(info.dims, shape, strict=True)):
            if s == 0:
                raise ShapeError(
                    f"axis {k} of {name} has size 0 (dim {d}); every dim needs at"
                    " least one entry, so leave empty tensors out of the network"
                )
            uses.setdefault(d, []).append((int(s), name, k))
    out: dict[str, int] = {}
    for d, found in uses.items():
        if d in given:
            best, why = int(given[d]), f"{d}={given[d]} given as an argument"
        else:
            counts = Counter(s for s, _, _ in found)
            if len(counts) == 1:
                out[d] = found[0][0]
                continue
            rank = {s: (n, s == defaults.get(d)) for s, n in counts.items()}
            first, second = sorted(rank, key=rank.__getitem__, reverse=True)[:2]
            if rank[first] == rank[second]:  # a tie: neither value is more likely wrong
                (sa, na, ka), (sb, nb, kb) = (
                    next(u for u in found if u[0] == s) for s in (first, second)
                )
                raise ShapeError(
                    f"dim {d} has two sizes in the values: axis {ka} of {na} has size {sa}"
                    f" but axis {kb} of {nb} has size {sb}; make the values agree"
                )
            best = first
            agree = [f"axis {k} of {n}" for s, n, k in found if s == best]
            if defaults.get(d) == best:
                agree.append(f"the spec's dim {d} = {best}")
            why = ", ".join(agree)
        wrong = next((u for u in found if u[0] != best), None)
        if wrong is not None:
            s, n, k = wrong
            raise ShapeError(
                f"dim {d} is {best} ({why}) but axis {k} of {n} has size {s}; make the values agree"
            )
        out[d] = best
    return out
