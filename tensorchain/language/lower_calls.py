"""Lowering calls: elementwise functions, functions along indices, ``sum``
and ``mean``, ``size(K)``, ``concat``, the losses, and how a call names the
axes it runs along. Matrix functions are :mod:`tensorchain.language.lower_matrix`'s,
selections :mod:`tensorchain.language.selections`'s.

One of the parts the lowering of a statement is made of
(:mod:`tensorchain.language.lower`).
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence

import numpy as np

from ..errors import ShapeError, count_axes
from ..functions.along import ALONG, CALLABLE_ALONG, MATRIX_FUNCTIONS
from ..functions.registry import CALLABLE, REDUCTIONS, REGISTERED, elementwise
from .losses import LABELLED, LOSSES, expand_loss, integer_labels
from .operations import (
    CONCAT,
    SIZE,
    Along,
    Const,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Sum,
    base_label,
    leaves,
    positional,
    relabel,
    union_labels,
)
from .syntax import BinOp, Call, Expr, Neg, Ref, show


class LowerCalls:
    """Calls of functions: one part of the lowering of a statement
    (``lower._Lowering``), which takes the other parts and the statement
    (``fail``, ``lower``, ``axes``, ...) from ``self``."""

    def call(self, e: Call) -> Node:
        from .selections import SELECTIONS, lower_selection, numbers_first

        if e.func == CONCAT:
            return self.concat(e)
        if e.func == SIZE:
            return self.size(e)
        if e.func in LOSSES:
            if e.func == "cross_entropy" and e.args and not _has_tensor(e.args[0]):
                raise self.fail(
                    f"cross_entropy(z, y, k) takes the logits z first, a tensor with the"
                    f" index k, but the first argument in {show(e)} is the number"
                    f" {show(e.args[0])}; e.g. cross_entropy(z, y, k) with z[s, k] the logits",
                    e.pos,
                )
            if not self.index_form and integer_labels(e, self.known()):
                return self.labelled_loss(e)
            if e.func in LABELLED and len(e.args) == 3 and not integer_labels(e, self.known()):
                self.check_targets(e)
            return self.lower(expand_loss(e, self.fail, self.known()))
        if e.func in MATRIX_FUNCTIONS:
            return self.matrix_call(e)
        if e.func in SELECTIONS or numbers_first(e):  # where, maximum, ..., max(0, z)
            return lower_selection(self, e)
        known = (
            *CALLABLE,
            *REDUCTIONS,
            *CALLABLE_ALONG,
            *MATRIX_FUNCTIONS,
            *LOSSES,
            CONCAT,
            SIZE,
            *SELECTIONS,
        )
        if e.func not in known:
            close = difflib.get_close_matches(e.func, known, n=1)
            hint = f"did you mean {close[0]!r}? " if close else ""
            raise self.fail(
                f"unknown function {e.func!r}; {hint}known functions: {', '.join(known)};"
                " add your own with tc.register_function (on the command line: --import a"
                " module that registers it)",
                e.pos,
            )
        if e.func in CALLABLE:
            if len(e.args) != 1:
                raise self.fail(
                    f"{e.func} takes one argument, {len(e.args)} given in {show(e)}", e.pos
                )
            arg = self.lower(e.args[0])
            func = REGISTERED.get(e.func, e.func)  # a registered function: this registration
            if isinstance(arg, Const):
                with np.errstate(all="ignore"):  # checked by folded()
                    value = elementwise(func).value(np.float64(arg.value), 0.0)
                return Const(float(value))
            return self.mapped(func, arg, e)
        if not e.args or (e.func in ALONG and len(e.args) < 2):
            raise self.fail(
                f"{e.func} runs along named indices: write {e.func}(z[s, k], k) in index"
                f" form, or {e.func}(z, c) naming a dim of z in whole-tensor form",
                e.pos,
            )
        arg = self.lower(e.args[0])
        if isinstance(arg, Const) and len(e.args) > 1:
            raise self.fail(
                f"{e.func} runs along indices of a tensor, but its first argument in"
                f" {show(e)} is the number {show(e.args[0])}; e.g. {e.func}(z[s, k], k)",
                e.pos,
            )
        names = tuple(self.axis_name(a, e) for a in e.args[1:])
        if not names:  # sum(x), mean(x): every index
            if isinstance(arg, Const):
                return arg
            return self.reduce(e.func, arg, arg.labels)
        axes = self.resolve_axes(arg, names, e)
        if e.func in REDUCTIONS:
            return self.reduce(e.func, arg, axes)
        from .delta_values import as_value

        arg = as_value(arg)  # a function along indices of delta[i, j] takes the identity
        if not ALONG[e.func].reduces:
            return Along(e.func, arg, axes, arg.labels, names)
        kept = tuple(lab for lab in arg.labels if lab not in axes)
        arg = self.local(arg, axes)
        bound = tuple(f"{base_label(lab)}@{self.scopes}" for lab in axes)
        return self.renumber(Along(e.func, arg, bound, kept, names))

    def size(self, e: Call) -> Size:
        """``size(K)``: the size of the declared dim ``K``, as a number."""
        arg = e.args[0] if len(e.args) == 1 else None
        name = arg.name if isinstance(arg, Ref) and arg.indices is None else None
        if name is None or name not in self.dims:
            dims = ", ".join(self.dims) or "none"
            if name is not None and name in self.axes:
                what = f"{name!r} is a tensor (axes [{', '.join(self.axes[name])}]), not a dim"
            elif name is not None:
                what = f"{name!r} is not a declared dim"
            else:
                what = f"{show(e)} does not name one dim"
            raise self.fail(
                f"size(K) is the size of a declared dim K as a number, e.g. x / sqrt(size(K));"
                f" {what} (declared dims: {dims})",
                e.pos,
            )
        return Size(name)

    def check_targets(self, e: Call) -> None:
        """Targets of ``cross_entropy`` or ``nll`` that do not run along the
        classes (``labels[s]`` of floats) would be broadcast over them: refused,
        with the declaration of integer labels."""
        z, y, k = e.args
        if not isinstance(k, Ref) or k.indices is not None:
            return
        logits, targets = self.lower(z), self.lower(y)
        if self.index_form:
            lacks = bool(targets.labels) and k.name not in map(base_label, targets.labels)
        else:
            lacks = len(targets.labels) == len(logits.labels) - 1
        if not lacks:
            return
        dim = k.name
        for leaf in leaves(logits) if self.index_form else ():
            if k.name in map(base_label, leaf.labels):
                dim = self.axes[leaf.name][list(map(base_label, leaf.labels)).index(k.name)]
        name = y.name if isinstance(y, Ref) else "labels"
        raise self.fail(
            f"{e.func}: the targets {show(y)} do not run along the classes {k.name}, so"
            f" they would be broadcast over them; for integer class labels declare them"
            f" as positions, input {name}[...] index {dim}, and for target probabilities"
            f" give them the axis {k.name} too",
            e.pos,
            ShapeError,
        )

    def labelled_loss(self, e: Call) -> Node:
        """``cross_entropy(z, labels, c)`` or ``nll(a, labels, c)`` in whole-tensor
        form with integer labels: ``mean(Σ_c -S[…, c] · log_softmax(z, c))``
        with ``S`` the one-hot of ``labels`` along ``c`` (a :class:`Select`), the
        labels' axes those of ``z`` other than ``c``, in order."""
        z, y, k = e.args
        if not isinstance(k, Ref) or k.indices is not None:
            raise self.fail(
                f"the third argument of {e.func} names the dim of the classes, e.g."
                f" {e.func}(z, {show(y)}, c)",
                e.pos,
            )
        node = self.lower(z)
        (kz,) = self.resolve_axes(node, (k.name,), e)
        rest = tuple(lab for lab in node.labels if lab != kz)
        dims = self.axes[y.name]
        if y.indices is not None or len(dims) != len(rest):
            raise self.fail(
                f"{y.name} has {count_axes(len(dims))} [{', '.join(dims)}] but {show(z)} has"
                f" {len(rest)} besides {k.name}: the labels have one entry per row of the"
                f" logits, e.g. z[B, {k.name}] with {y.name}[B]",
                e.pos,
                ShapeError,
            )
        if self.indexes[y.name] != k.name:
            raise self.fail(
                f"{y.name} holds positions along {self.indexes[y.name]}, but {e.func} runs"
                f" along {k.name}; declare input {y.name}[...] index {k.name}",
                e.pos,
                ShapeError,
            )
        one_hot = Select(y.name, (*rest, kz), y.pos)
        if e.func == "cross_entropy":
            node = Along("log_softmax", node, (kz,), node.labels, (k.name,))
        return self.reduce("mean", Product(-1.0, (one_hot, node), rest), rest)

    def concat(self, e: Call) -> Node:
        """``concat(a[s, k], b[s, k], k)``: the parts one after the other along
        ``k``, each with its own size of ``k`` (the result's is their sum):
        ``Σ_n part_n[s, k_n] · δ[k, k_n + offset_n]``."""
        example = "c[s, k] = concat(a[s, k], b[s, k], k)"
        last = e.args[-1] if e.args else None
        if len(e.args) < 3 or not (isinstance(last, Ref) and last.indices is None):
            raise self.fail(
                "concat takes two or more tensors, then the index they are joined along,"
                f" e.g. {example}",
                e.pos,
            )
        if not self.index_form:
            raise self.fail(
                f"concat joins tensors along a named index: write the statement in index"
                f" form, e.g. {example}",
                e.pos,
            )
        k = self.axis_name(last, e)
        placed: list[tuple[Node, str]] = []
        for arg in e.args[:-1]:
            node = self.lower(arg)
            if k not in node.labels:
                raise self.fail(
                    f"each part of concat is indexed by {k!r}, the index it is joined"
                    f" along, but {show(arg)} is not; e.g. {example}",
                    arg.pos,
                    ShapeError,
                )
            node = self.local(node, [k])  # each part's k has its own size
            placed.append((node, f"{base_label(k)}@{self.scopes}"))
        parts = tuple(lab for _, lab in placed)
        terms = []
        for node, lab in placed:
            where = Reindex("offset", (k, lab), parts, e.pos)
            labels = tuple(k if x == lab else x for x in node.labels)
            if isinstance(node, Product) and not node.mean_over:
                terms.append((1.0, Product(node.coeff, (*node.factors, where), labels)))
            else:
                terms.append((1.0, Product(1.0, (node, where), labels)))
        return Sum(tuple(terms), union_labels([t for _, t in terms]))

    def reduce(self, func: str, arg: Node, axes: Sequence[str]) -> Node:
        """``sum`` or ``mean`` of ``arg`` over ``axes`` (bound here)."""
        kept = tuple(lab for lab in arg.labels if lab not in axes)
        arg = self.local(arg, axes)
        bound = tuple(f"{base_label(lab)}@{self.scopes}" for lab in axes)
        coeff, factors = 1.0, [arg]
        if isinstance(arg, Product) and not arg.summed and not arg.mean_over:
            coeff, factors = arg.coeff, list(arg.factors)
        mean_over = bound if func == "mean" else ()
        return self.renumber(Product(coeff, tuple(factors), kept, mean_over))

    def renumber(self, node: Node) -> Node:
        """In whole-tensor form, the axes left after a reduction renamed #0, #1, ..."""
        if self.index_form:
            return node
        return relabel(node, {lab: positional(k) for k, lab in enumerate(node.labels)})

    def axis_name(self, e: Expr, call: Call) -> str:
        if isinstance(e, Ref) and e.indices is None:
            return e.name
        raise self.fail(
            f"the arguments after the first of {call.func} name the indices it runs along"
            f" (like {call.func}(z[s, k], k)); {show(e)} is not a name",
            e.pos,
        )

    def resolve_axes(self, arg: Node, names: tuple[str, ...], call: Call) -> tuple[str, ...]:
        """The labels of ``arg`` that ``names`` refer to: index names in index
        form, dim names in whole-tensor form."""
        if len(set(names)) < len(names):
            raise self.fail(f"an index is named twice in {show(call)}", call.pos)
        what = show(call.args[0])
        if self.index_form:
            found = []
            for name in names:
                hits = [lab for lab in arg.labels if lab == name] or [
                    lab for lab in arg.labels if base_label(lab) == name
                ]
                if not hits:
                    have = ", ".join(base_label(lab) for lab in arg.labels) or "none"
                    raise self.fail(
                        f"{call.func} along {name!r}, but {what} has the indices [{have}];"
                        f" name one of those, e.g. {call.func}({what},"
                        f" {base_label(arg.labels[-1]) if arg.labels else 'k'})"
                        + self._elementwise_hint(call, name),
                        call.pos,
                        ShapeError,
                    )
                found.append(hits[0])
            return tuple(found)
        dims = self.dims_of(arg)
        found = []
        for name in names:
            hits = [lab for lab, d in zip(arg.labels, dims, strict=True) if d == name]
            if len(hits) != 1:
                if hits:
                    problem = f"{what} has {len(hits)} axes of dim {name!r}"
                    fix = "write the statement in index form to say which"
                else:
                    problem = f"{what} has the dims [{', '.join(dims)}]"
                    if dims:
                        fix = f"name one of those, e.g. {call.func}({what}, {dims[-1]})"
                    else:  # a scalar: dims[-1] was an IndexError
                        fix = "give it a tensor with that axis"
                raise self.fail(
                    f"{call.func} along {name!r}, but {problem}; {fix}"
                    + self._elementwise_hint(call, name),
                    call.pos,
                    ShapeError,
                )
            found.append(hits[0])
        return tuple(found)

    def _elementwise_hint(self, call: Call, name: str) -> str:
        """``max(a, b)`` of two tensors: say how the elementwise maximum is written."""
        if call.func not in ("max", "min") or name not in self.axes or len(call.args) != 2:
            return ""
        full = "maximum" if call.func == "max" else "minimum"
        other = name
        if self.index_form and self.axes[name]:
            other = f"{name}[{', '.join('ijklmnpq'[k % 8] for k in range(len(self.axes[name])))}]"
        return (
            f"; {name} is a tensor: for the elementwise {full} of two tensors write"
            f" {full}({show(call.args[0])}, {other})"
        )

    def dims_of(self, node: Node) -> list[str]:
        """The dim of each (positional) label of a whole-form node, from a tensor
        that carries it."""
        where = {}
        for leaf in leaves(node):
            for k, lab in enumerate(leaf.labels):
                where.setdefault(lab, self.axes[leaf.name][k])
        return [where.get(lab, "?") for lab in node.labels]


def _has_tensor(e: Expr) -> bool:
    """Whether ``e`` names a tensor (it is not arithmetic of numbers alone)."""
    if isinstance(e, Ref):
        return True
    if isinstance(e, Call):
        return any(_has_tensor(a) for a in e.args)
    if isinstance(e, Neg):
        return _has_tensor(e.operand)
    if isinstance(e, BinOp):
        return _has_tensor(e.left) or _has_tensor(e.right)
    return False
