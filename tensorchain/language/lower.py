"""Syntax tree to labeled operations: the meaning of one assignment.

Every value inside a statement is a tensor whose axes carry labels: the
statement's own index names (``i``, ``j``) in index form, or positional labels
``#0, #1, ...`` in whole-tensor form. Three operations cover most of the language:

* :class:`Product` — ``coeff * einsum(factors -> labels)``, optionally divided
  by the sizes of ``mean_over`` (products, full reductions, top-level terms);
* :class:`Sum` — a linear combination, each term broadcast to ``labels``;
* :class:`Map` — an elementwise function;

with :class:`Along` (functions along indices), :class:`Solve`,
:class:`Delta` and :class:`Where` (``where``, ``maximum``, ...; see
:mod:`tensorchain.language.selections`) for the rest.

Inside a top-level term nothing is summed; a top-level term sums the indices
that are not on the left side (einsum semantics per term).
"""

from __future__ import annotations

import difflib
import math
from collections.abc import Collection, Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np

from ..arrays import limits
from ..errors import ShapeError, SpecError, count_axes, warn
from ..functions.along import ALONG, CALLABLE_ALONG, MATRIX_FUNCTIONS
from ..functions.registry import CALLABLE, PRINTED, REDUCTIONS, REGISTERED, elementwise
from .losses import (
    LABELLED,
    LOSSES,
    Tensors,
    expand_all,
    expand_loss,
    integer_labels,
    uses_loss,
)
from .syntax import (
    COMPARISONS,
    Assign,
    BinOp,
    Call,
    Expr,
    Group,
    Index,
    Neg,
    Num,
    Offset,
    Pick,
    Pos,
    Program,
    Ref,
    show,
)

#: The built-in Kronecker delta, ``delta[i, j]`` (a reserved tensor name).
DELTA = "delta"

#: Concatenation along a named index: ``c[s, k] = concat(a[s, k], b[s, k], k)``.
CONCAT = "concat"

#: The size of a dim as a number: ``size(K)`` (a reserved function name).
SIZE = "size"


class SpecWarning(UserWarning):
    """A statement is valid but probably not what was meant."""


@dataclass(frozen=True, eq=False)
class Leaf:
    name: str
    labels: tuple[str, ...]  # may repeat (W[i, i]) only as a Product factor
    pos: Pos


@dataclass(frozen=True, eq=False)
class Const:
    value: float
    labels: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Size:
    """``size(K)``: the size of dim ``K``, a number known once sizes are (a
    scalar constant, derivative zero). ``key`` is a label the statement binds
    to ``K`` (:meth:`Graph.add_statement`), so that its label sizes hold it."""

    dim: str
    labels: tuple[str, ...] = ()

    @property
    def key(self) -> str:
        return f"size({self.dim})"


@dataclass(frozen=True, eq=False)
class Product:
    coeff: float
    factors: tuple[Node, ...]
    labels: tuple[str, ...]
    mean_over: tuple[str, ...] = ()

    @property
    def summed(self) -> tuple[str, ...]:
        seen = dict.fromkeys(lab for f in self.factors for lab in f.labels)
        return tuple(lab for lab in seen if lab not in self.labels)


@dataclass(frozen=True, eq=False)
class Sum:
    terms: tuple[tuple[float, Node], ...]
    labels: tuple[str, ...]


@dataclass(frozen=True, eq=False)
class Map:
    func: str
    arg: Node
    param: float = 0.0

    @property
    def labels(self) -> tuple[str, ...]:
        return self.arg.labels


@dataclass(frozen=True)
class Origin:
    """The call a matrix operation comes from, for messages about its values:
    ``func`` and its argument as the user wrote them, ``where`` the statement
    (``line 4: l[s] = logdet(X[s, i, j], i, j)``), ``batch`` the names of the
    argument's batch axes in order (indices, or dims in whole-tensor form) and
    ``axes`` the names of the rows and columns (index form only). A derivative's
    graph keeps it on the operations it writes for that call."""

    func: str
    arg: str
    where: str
    batch: tuple[str, ...]
    axes: tuple[str, ...] = ()


@dataclass(frozen=True, eq=False)
class Along:
    """``func`` of ``arg`` along its labels ``axes`` (see :mod:`tensorchain.functions.along`);
    ``labels`` are ``arg``'s, less ``axes`` for a reduction. ``names``: the
    indices (or dims) as the spec wrote them, for printing; ``origin``: the
    user's call, for a matrix function (messages)."""

    func: str
    arg: Node
    axes: tuple[str, ...]
    labels: tuple[str, ...]
    names: tuple[str, ...]
    origin: Origin | None = None


@dataclass(frozen=True, eq=False)
class Delta:
    """The Kronecker delta δ(a, b) between two labels of one dim: a constant that
    is never stored. The language spells it ``delta[i, j]``; ``trace`` makes one
    (``call``: its name, for messages), and so do derivatives (the adjoint of a
    diagonal ``A[i, i]`` places a tensor on the diagonal, and the seed of a
    tensor's derivative is δ(out, out'))."""

    labels: tuple[str, str]
    call: str = ""


@dataclass(frozen=True, eq=False)
class Solve:
    """``A⁻¹ b`` with ``A`` = ``matrix`` along its rows ``row`` and columns
    ``col`` (every other index of it a batch index that ``rhs`` carries too):
    ``x[.., col, ..] = Σ_row A⁻¹[col, row] b[.., row, ..]``. Its labels are
    ``rhs``'s with ``row`` replaced by ``col``. Computed by an LU solve, never
    forming ``A⁻¹`` (see :mod:`tensorchain.functions.matrix`)."""

    matrix: Node
    rhs: Node
    row: str
    col: str
    origin: Origin | None = None

    @property
    def labels(self) -> tuple[str, ...]:
        return tuple(self.col if lab == self.row else lab for lab in self.rhs.labels)


@dataclass(frozen=True, eq=False)
class Select:
    """The selection ``S[s…, v] = 1 where index[s…] = v, else 0``: the one-hot of
    each entry of an integer index tensor (``index`` its name), or of a
    constant position (``index`` the number, no ``s``). ``labels`` are the
    index tensor's axes, then ``v``. Like :class:`Delta` it is a constant
    that is never stored: its value is the integers, a product with it
    gathers entries and a derivative through it adds them back (a
    scatter-add; see :mod:`tensorchain.language.gather`). ``T[ids[s], d]`` is
    ``Σ_v S[s, v] T[v, d]``."""

    index: str | int
    labels: tuple[str, ...]
    pos: Pos | None = None  # where the pick is written, for messages
    onehot: bool = False  # written delta[k, ids[s]] (or delta[k, 0]), for messages


@dataclass(frozen=True, eq=False)
class Reindex:
    """A constant 0/1 tensor that moves entries between axes; never stored
    dense, and a contraction with it is a reshape, a slice or a zero padding
    (:mod:`tensorchain.language.reindex`).

    * ``kind="group"``, labels ``(g, m1, …, mk)``: 1 where ``g`` is the
      row-major position of ``(m1, …, mk)`` (``mk`` fastest), the factor of a
      merge ``y[s, (h w)] = x[s, h, w]`` and of a split ``x[s, h, w] = y[s, (h w)]``;
    * ``kind="offset"``, labels ``(k, i)``: 1 where ``k = i + offset``, the
      offset being the sizes of the labels of ``parts`` before ``i``: one part
      of a concatenation along ``k`` whose parts' axes are ``parts``;
    * ``kind="range"``, labels ``(k, j)``: 1 where ``k = j + start``, the
      factor of an offset index ``x[s, j + start]`` (a range of positions of
      ``x``'s axis ``k``; ``j`` has a dim of its own)."""

    kind: str
    labels: tuple[str, ...]
    parts: tuple[str, ...] = ()
    pos: Pos | None = None
    start: int = 0  # kind "range": the offset written


@dataclass(frozen=True, eq=False)
class Where:
    """``a`` where ``left test right`` holds, else ``b``, elementwise, every
    operand broadcast to ``labels`` (see :mod:`tensorchain.language.selections`):
    ``where``, and with ``half`` the ``maximum`` and ``minimum`` of two
    tensors, which take the average of ``a`` and ``b`` where ``left`` and
    ``right`` tie (or either is NaN), so that ties share the derivative."""

    test: str  # one of > < >= <= == !=
    left: Node
    right: Node
    a: Node
    b: Node
    labels: tuple[str, ...]
    half: bool = False


Node = Leaf | Const | Size | Product | Sum | Map | Along | Delta | Solve | Select | Reindex | Where


def children(node: Node) -> tuple[Node, ...]:
    """The operands of ``node``, in order (a tensor used twice appears twice)."""
    if isinstance(node, Where):
        return (node.left, node.right, node.a, node.b)
    if isinstance(node, Product):
        return node.factors
    if isinstance(node, Sum):
        return tuple(t for _, t in node.terms)
    if isinstance(node, Map | Along):
        return (node.arg,)
    if isinstance(node, Solve):
        return (node.matrix, node.rhs)
    return ()


def walk(node: Node) -> list[Node]:
    """Every node under ``node``, itself included (without recursion)."""
    out, stack = [], [node]
    while stack:
        n = stack.pop()
        out.append(n)
        stack.extend(children(n))
    return out


def leaves(node: Node) -> list[Leaf]:
    out: list[Leaf] = []
    stack = [node]
    while stack:
        n = stack.pop()
        if isinstance(n, Leaf):
            out.append(n)
        stack.extend(reversed(children(n)))
    return out


def relabel(node: Node, mapping: dict[str, str]) -> Node:
    """``node`` with the labels in ``mapping`` renamed (bound indices made local)."""

    def r(labels: tuple[str, ...]) -> tuple[str, ...]:
        return tuple(mapping.get(lab, lab) for lab in labels)

    if isinstance(node, Leaf):
        return Leaf(node.name, r(node.labels), node.pos)
    if isinstance(node, Product):
        factors = tuple(relabel(f, mapping) for f in node.factors)
        return Product(node.coeff, factors, r(node.labels), r(node.mean_over))
    if isinstance(node, Sum):
        return Sum(tuple((c, relabel(t, mapping)) for c, t in node.terms), r(node.labels))
    if isinstance(node, Map):
        return Map(node.func, relabel(node.arg, mapping), node.param)
    if isinstance(node, Along):
        arg = relabel(node.arg, mapping)
        return replace(node, arg=arg, axes=r(node.axes), labels=r(node.labels))
    if isinstance(node, Delta):
        a, b = r(node.labels)
        return replace(node, labels=(a, b))
    if isinstance(node, Select):
        return Select(node.index, r(node.labels), node.pos, node.onehot)
    if isinstance(node, Reindex):
        return replace(node, labels=r(node.labels), parts=r(node.parts))
    if isinstance(node, Solve):
        matrix, rhs = relabel(node.matrix, mapping), relabel(node.rhs, mapping)
        row, col = mapping.get(node.row, node.row), mapping.get(node.col, node.col)
        return replace(node, matrix=matrix, rhs=rhs, row=row, col=col)
    if isinstance(node, Where):
        renamed = {id(c): relabel(c, mapping) for c in children(node)}  # a shared operand stays one
        kids = [renamed[id(c)] for c in children(node)]
        return replace(
            node, left=kids[0], right=kids[1], a=kids[2], b=kids[3], labels=r(node.labels)
        )
    return node


def base_label(label: str) -> str:
    """The label as the user wrote it (``j`` for the term-local ``j@2``)."""
    return label.split("@")[0]


@dataclass(frozen=True)
class Lowered:
    """One assignment after lowering: ``target[labels] = root``."""

    target: str
    labels: tuple[str, ...]
    root: Node
    index_form: bool
    pos: Pos
    text: str
    operands: tuple[str, ...] = field(default=())  # distinct tensors used, in order


def positional(k: int) -> str:
    return f"#{k}"


def _union(nodes: list[Node]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lab for n in nodes for lab in n.labels))


class _Lowering:
    def __init__(
        self,
        program: Program,
        assign: Assign,
        ranks: dict[str, tuple[str, ...]],
        indexes: Mapping[str, str],
        dims: Collection[str] = (),
    ):
        self.dims = dims  # the declared dims, which size(K) names
        self.program = program
        self.assign = assign
        self.axes = ranks  # tensor name -> its dims, one per axis
        self.indexes = indexes  # index tensor -> the dim whose positions it holds
        self.index_form = assign.indices is not None or _has_indices(assign.expr)
        self.scopes = 0
        self.comparing = 0  # inside a comparison of where: index tensors may be compared

    def fail(self, message: str, pos: Pos, cls: type[SpecError] = SpecError) -> SpecError:
        return self.program.error(message, pos, cls)

    def local(self, node: Node, labels: Sequence[str]) -> Node:
        """Rename ``labels`` inside ``node`` apart from every other use in the statement."""
        self.scopes += 1
        return relabel(node, {lab: f"{base_label(lab)}@{self.scopes}" for lab in labels})

    # --- building blocks (constant folding, flattening) ---

    def _check_whole(self, a: Node, b: Node, op: str, pos: Pos, ea: Expr, eb: Expr) -> None:
        if self.index_form or not a.labels or not b.labels or a.labels == b.labels:
            return
        raise self.fail(
            f"shape mismatch in whole-tensor arithmetic: {show(ea)} has"
            f" {count_axes(len(a.labels))} but {show(eb)} has {len(b.labels)}; '{op}' needs"
            " equal shapes"
            " (or a scalar). Use index form, e.g. t[i, j] = a[i] * W[i, j]",
            pos,
            ShapeError,
        )

    @staticmethod
    def product(coeff: float, nodes: list[Node]) -> Node:
        factors: list[Node] = []
        for n in nodes:
            if isinstance(n, Const):
                coeff *= n.value
            elif isinstance(n, Product) and not n.summed and not n.mean_over:
                coeff *= n.coeff
                factors.extend(n.factors)
            else:
                factors.append(n)
        if not factors:
            return Const(coeff)
        if len(factors) == 1 and isinstance(factors[0], Product):  # 0.5 * sum(...)
            return replace(factors[0], coeff=coeff * factors[0].coeff)
        labels = _union(factors)
        if coeff == 1.0 and len(factors) == 1 and factors[0].labels == labels:
            return factors[0]
        return Product(coeff, tuple(factors), labels)

    @staticmethod
    def add(terms: list[tuple[float, Node]]) -> Node:
        flat: list[tuple[float, Node]] = []
        const = 0.0
        for c, n in terms:
            if isinstance(n, Sum):
                for c2, n2 in n.terms:
                    if isinstance(n2, Const):  # every constant of the sum folded in one
                        const += c * c2 * n2.value
                    else:
                        flat.append((c * c2, n2))
            elif isinstance(n, Const):
                const += c * n.value
            else:
                flat.append((c, n))
        if not flat:
            return Const(const)
        if const != 0.0:
            flat.append((1.0, Const(const)))
        if len(flat) == 1 and flat[0][0] == 1.0:
            return flat[0][1]
        return Sum(tuple(flat), _union([n for _, n in flat]))

    # --- expressions ---

    def lower(self, e: Expr) -> Node:
        if isinstance(e, Num):
            return Const(e.value)
        if isinstance(e, Ref):
            return self.ref(e)
        if isinstance(e, Neg):
            return self.product(-1.0, [self.lower(e.operand)])
        if isinstance(e, Call):
            return self.folded(self.call(e), e)
        return self.folded(self.binary(e), e)

    def binary(self, e: BinOp) -> Node:
        if e.op in COMPARISONS:
            raise self.fail(
                f"{show(e)} is a comparison; it is only the condition of where(cond, a, b),"
                f" e.g. where({show(e)}, 1, 0) for the 0/1 mask",
                e.pos,
            )
        a = self.lower(e.left)
        if e.op == "^":
            return self.power(a, e)
        b = self.lower(e.right)
        self._check_whole(a, b, e.op, e.pos, e.left, e.right)
        if e.op in "+-":
            return self.add([(1.0, a), (1.0 if e.op == "+" else -1.0, b)])
        if e.op == "*":
            return self.product(1.0, [a, b])
        if isinstance(b, Const):
            if b.value == 0.0:
                raise self.fail(f"division by the constant zero in {show(e)}", e.pos)
            return self.product(1.0 / b.value, [a])
        return self.product(1.0, [a, self.mapped("reciprocal", b, e)])

    def folded(self, node: Node, e: Call | BinOp) -> Node:
        """``node``, after checking that the constants folded into it are finite
        (``10 ^ 400``, ``log(0)`` or ``1e300 * 1e300`` are not)."""
        if isinstance(node, Const):
            numbers = [node.value]
        elif isinstance(node, Product):
            numbers = [node.coeff]
        elif isinstance(node, Sum):
            numbers = [c for c, _ in node.terms]
            numbers += [t.value for _, t in node.terms if isinstance(t, Const)]
        else:
            return node
        bad = next((v for v in numbers if not math.isfinite(v)), None)
        if bad is not None:
            raise self.fail(_not_finite(show(e), bad), e.pos)
        return node

    def mapped(self, func: str, arg: Node, e: Expr, param: float = 0.0) -> Node:
        """``func`` of ``arg`` elementwise; of ``delta[i, j]`` it is folded (see
        :mod:`tensorchain.language.delta_values`), and refused where it is not finite."""
        from .delta_values import NotFinite, as_value, fold_map

        try:
            folded = fold_map(func, arg, param)
        except NotFinite as err:
            raise self.fail(_delta_not_finite(e, func, err), e.pos) from None
        return folded if folded is not None else Map(func, as_value(arg), param)

    def power(self, base: Node, e: BinOp) -> Node:
        exponent = self.lower(e.right)
        if not isinstance(exponent, Const):  # x ^ y = exp(y log x), for x > 0
            self._check_whole(base, exponent, "^", e.pos, e.left, e.right)
            if isinstance(base, Const):
                if base.value <= 0:
                    raise self.fail(
                        f"{show(e)}: a tensor exponent needs a positive base (x ^ y is"
                        f" exp(y log x)), but the base is {show(e.left)}",
                        e.pos,
                    )
                return Map("exp", self.product(math.log(base.value), [exponent]))
            return Map("exp", self.product(1.0, [exponent, Map("log", base)]))
        p = exponent.value
        if isinstance(base, Const):
            try:
                value = base.value**p
            except ZeroDivisionError:
                raise self.fail(_not_finite(show(e), math.inf), e.pos) from None
            except OverflowError:
                odd = p.is_integer() and int(p) % 2 == 1
                infinity = -math.inf if base.value < 0 and odd else math.inf
                raise self.fail(_not_finite(show(e), infinity), e.pos) from None
            if isinstance(value, complex):  # a negative number to a fractional power
                raise self.fail(_not_finite(show(e), math.nan), e.pos)
            return Const(float(value))
        if p == 1.0:
            return base
        return self.mapped("pow", base, e, p)

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

    def known(self) -> Tensors:
        return Tensors(self.axes, self.indexes, not self.index_form)

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
        return Sum(tuple(terms), _union([t for _, t in terms]))

    def matrix_call(self, e: Call) -> Node:
        """``inv``, ``det``, ``logdet``, ``cholesky``, ``trace`` of a matrix and
        ``solve(A, b)``: along two named indices (the rows, then the columns),
        or the last two axes when none are named."""
        count = 2 if e.func == "solve" else 1
        first = e.args[0] if e.args else None
        if e.func == "solve":
            example = "x[j] = solve(A[i, j], b[i], i, j)"
        elif (
            isinstance(first, Ref)
            and first.indices
            and len(first.indices) >= 2
            and all(isinstance(i, Index) for i in first.indices[-2:])
        ):
            rows, cols = (i.name for i in first.indices[-2:])
            example = f"{e.func}({show(first)}, {rows}, {cols})"
        elif e.func in ("det", "logdet", "trace"):
            example = f"y[s] = {e.func}(X[s, i, j], i, j)"
        else:
            example = f"Y[s, i, j] = {e.func}(X[s, i, j], i, j)"
        if len(e.args) < count:
            takes = "a matrix and a right side" if count == 2 else "a matrix"
            raise self.fail(f"{e.func} takes {takes}, e.g. {example}", e.pos)
        operands = [self.lower(a) for a in e.args[:count]]
        names = tuple(self.axis_name(a, e) for a in e.args[count:])
        matrix = operands[0]
        what = show(e.args[0])
        if names and len(names) != 2:
            raise self.fail(
                f"{e.func} runs along two indices, the rows and the columns; {len(names)}"
                f" named in {show(e)}, e.g. {example}",
                e.pos,
            )
        if names and not self.index_form:
            raise self.fail(
                f"in whole-tensor form {e.func} takes the last two axes as the matrix;"
                f" to name the rows and columns write the statement in index form, e.g."
                f" {example}",
                e.pos,
            )
        if names:
            row, col = self.resolve_axes(matrix, names, e)
        elif len(matrix.labels) < 2:
            raise self.fail(
                f"{e.func} needs a matrix, but {what} has {count_axes(len(matrix.labels))};"
                f" e.g. {example}",
                e.pos,
                ShapeError,
            )
        else:
            row, col = matrix.labels[-2:]
        names = names or ((base_label(row), base_label(col)) if self.index_form else ())
        origin = self.origin(e, matrix, (row, col), names)
        if e.func == "solve":
            return self.solve(e, matrix, operands[1], row, col, origin)
        if isinstance(matrix, Delta) and e.func != "trace":
            from .delta_values import matrix_of_delta

            return matrix_of_delta(e.func, matrix)
        if e.func in ("inv", "cholesky"):
            return Along(e.func, matrix, (row, col), matrix.labels, names, origin)
        kept = tuple(lab for lab in matrix.labels if lab not in (row, col))
        arg = self.local(matrix, (row, col))
        r, c = (f"{base_label(lab)}@{self.scopes}" for lab in (row, col))
        if e.func == "trace":  # Σ_i X[i, i]: the deltas of a trace stay symbolic
            return self.renumber(Product(1.0, (arg, Delta((r, c), "trace")), kept))
        return self.renumber(Along(e.func, arg, (r, c), kept, names, origin))

    def origin(self, e: Call, matrix: Node, axes: tuple[str, str], names) -> Origin:
        """The user's call, for messages about its values (batch entries named by
        their index, or by their dim in whole-tensor form)."""
        batch = [k for k, lab in enumerate(matrix.labels) if lab not in axes]
        if self.index_form:
            batch_names = tuple(base_label(matrix.labels[k]) for k in batch)
        else:
            dims = self.dims_of(matrix)
            batch_names = tuple(dims[k] for k in batch)
        line = self.program.lines[self.assign.pos.line - 1].strip()
        where = f"line {self.assign.pos.line}: {line}"
        return Origin(e.func, show(e.args[0]), where, batch_names, tuple(names))

    def solve(self, e: Call, matrix: Node, rhs: Node, row: str, col: str, origin: Origin) -> Node:
        what, where = show(e.args[0]), show(e.args[1])
        if not self.index_form:
            if len(matrix.labels) != 2 or len(rhs.labels) not in (1, 2):
                raise self.fail(
                    f"in whole-tensor form solve takes an n×n matrix and a right side of n"
                    f" or n×k entries, but {what} has {count_axes(len(matrix.labels))} and {where}"
                    f" {len(rhs.labels)}; for batches use index form, e.g."
                    " x[s, j] = solve(A[s, i, j], b[s, i], i, j)",
                    e.pos,
                    ShapeError,
                )
            self.scopes += 1
            r, c, k = (f"{x}@{self.scopes}" for x in ("r", "c", "k"))
            matrix = relabel(matrix, dict(zip(matrix.labels, (r, c), strict=True)))
            rhs = relabel(rhs, dict(zip(rhs.labels, (r, k)[: len(rhs.labels)], strict=True)))
            return self.renumber(Solve(matrix, rhs, r, c, origin))
        if row not in rhs.labels or col in rhs.labels:
            raise self.fail(
                f"solve({what}, {where}, {base_label(row)}, {base_label(col)}): the right side"
                f" is indexed by the rows ({base_label(row)}) and not by the columns"
                f" ({base_label(col)}), which index the result: A[i, j] x[j] = b[i]",
                e.pos,
            )
        batch = [lab for lab in matrix.labels if lab not in (row, col)]
        missing = [lab for lab in batch if lab not in rhs.labels]
        if missing:
            raise self.fail(
                f"solve: the index {base_label(missing[0])!r} of {what} must index the right"
                f" side {where} too (a batch of systems, one per entry)",
                e.pos,
            )
        from .delta_values import solve_with_delta

        names = (base_label(row), base_label(col))
        found = solve_with_delta(matrix, rhs, row, col, names, origin)
        return found if found is not None else Solve(matrix, rhs, row, col, origin)

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

    # --- the statement ---

    def statement(self, text: str) -> Lowered:
        a = self.assign
        if not self.index_form:
            root = self.lower(a.expr)
            return Lowered(a.target, root.labels, root, False, a.pos, text)
        for group in a.indices or ():
            if isinstance(group, Group):
                self._refuse_added(group)
        flat = _expanded(a.indices or ())  # a group's indices in its place
        left = tuple(i.name for i in flat)
        for k, idx in enumerate(flat):
            if idx.name in left[:k]:
                grouped = " (an index is grouped once)" if len(flat) > len(a.indices or ()) else ""
                raise self.fail(
                    f"index {idx.name!r} appears twice on the left side{grouped}", idx.pos
                )
        terms: list[tuple[float, Node]] = []
        for sign, ast in _top_terms(a.expr):
            node = self.lower(ast)
            summed = [lab for lab in node.labels if lab not in left]
            if summed:
                self._refuse_ambiguous_sums(node, summed, ast)
                self._warn_summed_inside(node, summed, ast)
                node = self.local(node, summed)  # each term sums its own indices
                kept = tuple(lab for lab in left if lab in node.labels)
                if isinstance(node, Product) and not node.summed and not node.mean_over:
                    node = Product(node.coeff, node.factors, kept)
                else:
                    node = Product(1.0, (node,), kept)
            terms.append((sign, node))
        present = _union([n for _, n in terms])
        for idx in flat:
            if idx.name not in present:
                raise self.fail(
                    f"index {idx.name!r} on the left side appears in no term on the right"
                    " side, so it has no size; use it on the right or drop it",
                    idx.pos,
                )
        root = self.add(terms)
        if isinstance(root, Sum):
            root = Sum(root.terms, left)  # broadcast every term to the left side
        elif root.labels != left:
            root = Sum(((1.0, root),), left)
        if len(flat) > len(a.indices or ()):
            return self.merge(root, text)
        return Lowered(a.target, left, root, True, a.pos, text)

    def _refuse_added(self, group: Group) -> None:
        if group.added:
            raise self.fail(
                f"{group.name} adds dims, which only a declaration does (param W[(I + J), O]);"
                " to join tensors along an index write concat(a[s, k], b[s, k], k)",
                group.pos,
            )

    def merge(self, root: Node, text: str) -> Lowered:
        """``y[s, (h w)] = ...``: the right side (axes ``s, h, w``) times
        ``δ[(h w), (h w)]`` summed over ``h, w`` (the merge of a reshape)."""
        a = self.assign
        labels = tuple(i.name for i in a.indices or ())
        groups = [
            Reindex("group", (g.name, *(m.name for m in g.members)), (), g.pos)
            for g in a.indices or ()
            if isinstance(g, Group)
        ]
        if isinstance(root, Product) and not root.mean_over:  # one einsum, R a factor
            merged = Product(root.coeff, (*root.factors, *groups), labels)
        else:
            merged = Product(1.0, (root, *groups), labels)
        return Lowered(a.target, labels, merged, True, a.pos, text)

    def _refuse_ambiguous_sums(self, node: Node, summed: list[str], ast: Expr) -> None:
        """An index summed over a sum (in parentheses) that not every term of
        it carries would add those terms once per value of the index: refused,
        with the two spellings that say which is meant."""
        stack = [node]
        while stack:
            n = stack.pop()
            if isinstance(n, Product):
                stack.extend(n.factors)
            elif isinstance(n, Sum):
                for lab in summed:
                    lacking = [t for _, t in n.terms if lab not in t.labels]
                    if lab in n.labels and lacking:
                        j = base_label(lab)
                        message = (
                            f"the index {j!r} is not on the left side, so {show(ast)} is"
                            f" summed over {j}; but {_brief(lacking[0])} in the sum does not"
                            f" carry {j} and would be added once per {j}."
                        )
                        spelled = _explicit_sums(ast, j)
                        if spelled:
                            inside, outside = spelled
                            message += (
                                f" Say which is meant: {inside} (the sum over {j} inside) or"
                                f" {outside} (added once per {j})"
                            )
                        else:
                            message += (
                                f" Say which is meant: sum(..., {j}) around the terms that"
                                f" carry {j}, inside the parentheses, or sum((...), {j})"
                                " around the whole sum"
                            )
                        raise self.fail(message, self.assign.pos)
                stack.extend(t for _, t in n.terms)

    def _warn_summed_inside(self, node: Node, summed: list[str], ast: Expr) -> None:
        """Warn when a summed index is contracted between factors inside a function:
        ``sigmoid(W[i, j] * x[j])`` with ``j`` not on the left sums the sigmoids."""
        inside: set[str] = set()
        stack: list[tuple[Node, bool]] = [(node, False)]
        while stack:
            n, in_map = stack.pop()
            if in_map and isinstance(n, Product):
                seen = [lab for f in n.factors for lab in dict.fromkeys(f.labels)]
                inside.update(lab for lab in seen if seen.count(lab) > 1)
            stack.extend((c, in_map or isinstance(n, Map | Along | Where)) for c in children(n))
        hit = [lab for lab in summed if lab in inside]
        if hit:
            pos = self.assign.pos
            warn(
                f"{self.program.where(pos)}: in {show(ast)} the index {hit[0]!r} is not on the left"
                f" side, so f(...) is computed for each {hit[0]!r} and then summed;"
                " for a layer write two statements, e.g. h[i] = W[i, j] * x[j]"
                " then a = sigmoid(h)",
                SpecWarning,
            )


def _delta_not_finite(e: Expr, func: str, err) -> str:
    """The message for a function of ``delta[i, j]`` (or of a one-hot
    ``delta[k, ids[s]]``) that is not finite at 0 or 1."""
    where = " and ".join(_delta_at(node, bit) for node, bit in err.at)
    onehot = any(isinstance(node, Select) for node, _ in err.at)
    zero = (
        "a one-hot is 0 off its position" if onehot else "the Kronecker delta is 0 off its diagonal"
    )
    if func == "reciprocal" and all(bit == 0 for _, bit in err.at):
        example = "X[s, k] * delta[k, labels[s]]" if onehot else "X[i, j] * delta[i, j]"
        return (
            f"{show(e)} divides by zero where {where}: {zero}; to keep the"
            f" {'position' if onehot else 'diagonal'} multiply instead, e.g. {example}"
        )
    what = "divides by zero" if func == "reciprocal" else f"is {_not_finite_word(err.value)}"
    return (
        f"{show(e)} {what} where {where}: {zero} and 1 on it, and a function of it must"
        " be finite at both"
    )


def _delta_at(node: Delta | Select, bit: int) -> str:
    """``delta[i, j] is 0 (off the diagonal, i ≠ j)``, ``delta[k, labels[s]] is 1``."""
    if isinstance(node, Select):
        *at, v = (base_label(lab) for lab in node.labels)
        pick = f"{node.index}[{', '.join(at)}]" if at else str(node.index)
        text = f"delta[{v}, {pick}] is {bit}"
        return text + (f" ({v} ≠ {pick})" if bit == 0 else "")
    a, b = (base_label(lab) for lab in node.labels)
    return f"delta[{a}, {b}] is {bit}" + (f" (off the diagonal, {a} ≠ {b})" if bit == 0 else "")


def _not_finite_word(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}infinite"


def _not_finite(text: str, value: float) -> str:
    if math.isnan(value):
        what = "NaN (not a real number)"
    else:
        what = f"{'-' if value < 0 else ''}infinity (beyond a float64, about 1.8e308)"
    return (
        f"the constants in {text} give {what}; constants are folded when the spec is"
        " read and must stay finite real numbers"
    )


def _expanded(indices: Sequence[Index | Group]) -> list[Index]:
    """The indices of an index list, each group's in its place."""
    return [m for i in indices for m in (i.members if isinstance(i, Group) else (i,))]


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


def _has_indices(e: Expr) -> bool:
    if isinstance(e, Ref):
        return e.indices is not None
    if isinstance(e, Call):
        return any(_has_indices(a) for a in e.args)
    if isinstance(e, Neg):
        return _has_indices(e.operand)
    if isinstance(e, BinOp):
        return _has_indices(e.left) or _has_indices(e.right)
    return False


def _brief(node: Node) -> str:
    """A short printout of a term for messages: ``b[i]``, ``2``, or ``a term``."""
    if isinstance(node, Leaf):
        return (
            f"{node.name}[{', '.join(map(base_label, node.labels))}]" if node.labels else node.name
        )
    if isinstance(node, Const):
        return f"the constant {node.value:g}"
    return "a term"


def _mentions(e: Expr, index: str) -> bool:
    if isinstance(e, Ref):
        return any(
            i.name == index
            if isinstance(i, Index)
            else (isinstance(i, Offset) and i.index.name == index)
            or (isinstance(i, Pick) and isinstance(i.by, Ref) and _mentions(i.by, index))
            for i in _expanded(e.indices or ())
        )
    if isinstance(e, Call):
        return any(_mentions(a, index) for a in e.args)
    if isinstance(e, Neg):
        return _mentions(e.operand, index)
    if isinstance(e, BinOp):
        return _mentions(e.left, index) or _mentions(e.right, index)
    return False


def _explicit_sums(ast: Expr, index: str) -> tuple[str, str] | None:
    """The term ``ast`` spelled both ways for the first sum in parentheses whose
    summands do not all mention ``index``: with ``sum(..., index)`` around the
    summands that do, and around the whole sum."""
    found: list[Expr] = []

    def visit(e: Expr) -> None:
        if found:
            return
        if isinstance(e, BinOp) and e.op in "+-" and e.paren:
            parts = [_mentions(t, index) for _, t in _top_terms(replace(e, paren=False))]
            if any(parts) and not all(parts):
                found.append(e)
                return
        for child in _children_of(e):
            visit(child)

    visit(ast)
    if not found:
        return None
    target = found[0]
    pos = target.pos
    terms = _top_terms(replace(target, paren=False))
    first = next(k for k, (_, t) in enumerate(terms) if _mentions(t, index))
    sign = terms[first][0]
    carrying = _chain([(s * sign, t) for s, t in terms if _mentions(t, index)], pos)
    summed = Call("sum", (carrying, Ref(index, None, pos)), pos)
    rest = [(s, t) for s, t in terms if not _mentions(t, index)]
    inside = _chain([*rest[:first], (sign, summed), *rest[first:]], pos, paren=True)
    outside = Call("sum", (replace(target, paren=False), Ref(index, None, pos)), pos)

    def swap(e: Expr, new: Expr) -> Expr:
        if e is target:
            return new
        if isinstance(e, Call):
            return replace(e, args=tuple(swap(a, new) for a in e.args))
        if isinstance(e, Neg):
            return replace(e, operand=swap(e.operand, new))
        if isinstance(e, BinOp):
            return replace(e, left=swap(e.left, new), right=swap(e.right, new))
        return e

    return show(swap(ast, inside)), show(swap(ast, outside))


def _children_of(e: Expr) -> tuple[Expr, ...]:
    if isinstance(e, Call):
        return e.args
    if isinstance(e, Neg):
        return (e.operand,)
    if isinstance(e, BinOp):
        return (e.left, e.right)
    return ()


def _chain(terms: list[tuple[float, Expr]], pos: Pos, paren: bool = False) -> Expr:
    """Signed terms joined by ``+`` and ``-`` again."""
    sign, first = terms[0]
    out: Expr = first if sign > 0 else Neg(first, pos)
    for sign, t in terms[1:]:
        out = BinOp("+" if sign > 0 else "-", out, t, pos)
    return replace(out, paren=True) if paren and isinstance(out, BinOp) else out


def _top_terms(e: Expr, sign: float = 1.0) -> list[tuple[float, Expr]]:
    """The top-level terms; a sum in parentheses is one term (as ``1 * (...)``)."""
    if isinstance(e, BinOp) and e.op in "+-" and not e.paren:
        right = 1.0 if e.op == "+" else -1.0
        return [*_top_terms(e.left, sign), *_top_terms(e.right, sign * right)]
    return [(sign, e)]


def lower(
    program: Program,
    assign: Assign,
    axes: dict[str, tuple[str, ...]],
    indexes: Mapping[str, str] | None = None,
    dims: Collection[str] = (),
) -> Lowered:
    """Lower one assignment, given the dims of every tensor defined before it
    (``indexes``: the dim each integer index tensor holds positions of;
    ``dims``: the declared dims, which ``size(K)`` names)."""
    text = program.lines[assign.pos.line - 1].strip()
    lowering = _Lowering(program, assign, axes, {} if indexes is None else indexes, dims)
    if uses_loss(assign.expr):  # print what the shorthand stands for
        left = f"[{', '.join(i.name for i in assign.indices)}]" if assign.indices else ""
        expanded = expand_all(assign.expr, lowering.fail, lowering.known())
        text = f"{assign.target}{left} = {show(expanded)}"
    lowered = lowering.statement(text)
    labels = {lab for node in walk(lowered.root) for lab in node.labels}
    if len(labels) > limits.MAX_INDICES:
        raise program.error(
            f"this statement uses {len(labels)} distinct indices, more than the limit of"
            f" {limits.MAX_INDICES} (tensorchain.arrays.limits.MAX_INDICES); split it into"
            " several statements",
            assign.pos,
        )
    operands = tuple(dict.fromkeys(leaf.name for leaf in leaves(lowered.root)))
    return Lowered(
        lowered.target,
        lowered.labels,
        lowered.root,
        lowered.index_form,
        lowered.pos,
        lowered.text,
        operands,
    )


_LETTERS = "ijklmnpqrsuvwabcdefgh"


def show_lowered(
    target: str,
    labels: tuple[str, ...],
    root: Node,
    dims: Mapping[str, str] | None = None,
) -> str:
    """A lowered statement in index notation, labels renamed to letters:
    ``∂L/∂z[i] = ∂L/∂a[i] * a[i] * (1 - a[i])`` (for messages and printouts).
    As in the language, a top-level term sums the indices not on the left; a
    nested product that sums an index says so (``sum(..., j)``), and a mean
    over indices a product keeps divides by their ``dims``."""
    names: dict[str, str] = {}

    def name(label: str) -> str:
        if label not in names:
            k = len(names)
            names[label] = _LETTERS[k] if k < len(_LETTERS) else f"i{k}"
        return names[label]

    def ref(tensor: str, labs: tuple[str, ...]) -> str:
        return f"{tensor}[{', '.join(map(name, labs))}]" if labs else tensor

    def show(node: Node, parent: int = 0, top: bool = True) -> str:
        if isinstance(node, Leaf):
            return ref(node.name, node.labels)
        if isinstance(node, Const):
            return f"{node.value:g}"
        if isinstance(node, Size):
            return node.key
        if isinstance(node, Delta):
            return ref("δ", node.labels)
        if isinstance(node, Select):
            *at, v = node.labels
            picked = ref(node.index, tuple(at)) if at else str(node.index)
            return f"δ({picked}, {name(v)})"
        if isinstance(node, Reindex):  # δ[g, (h w)], δ[k, i + I]
            outer, *inner = map(name, node.labels)
            if node.kind == "group":
                return f"δ[{outer}, ({' '.join(inner)})]"
            if node.kind == "range":
                return f"δ[{outer}, {inner[0]} + {node.start}]"
            before = node.parts[: node.parts.index(node.labels[1])]
            offset = "".join(f" + {(dims or {}).get(b, f'size({name(b)})')}" for b in before)
            return f"δ[{outer}, {inner[0]}{offset}]"
        if isinstance(node, Map):
            if node.func == "pow":
                return f"{show(node.arg, 3, False)} ^ {node.param:g}"
            if node.func == "reciprocal":
                text = f"1 / {show(node.arg, 3, False)}"
                return f"({text})" if parent >= 2 else text
            return f"{PRINTED.get(node.func, node.func)}({show(node.arg, 0, False)})"
        if isinstance(node, Along):
            return f"{node.func}({show(node.arg, 0, False)}, {', '.join(map(name, node.axes))})"
        if isinstance(node, Solve):
            args = f"{show(node.matrix, 0, False)}, {show(node.rhs, 0, False)}"
            return f"solve({args}, {name(node.row)}, {name(node.col)})"
        if isinstance(node, Where):
            from .selections import select_text

            return select_text(node, lambda n: show(n, 0, False))
        if isinstance(node, Product):
            parts = [show(f, 2, False) for f in node.factors]
            if node.coeff != 1.0 or not parts:
                parts.insert(0, f"{node.coeff:g}")
            text = " * ".join(parts)
            summed = node.summed
            kept = [m for m in node.mean_over if m not in summed]
            if node.mean_over and not kept:
                return f"mean({text}, {', '.join(map(name, node.mean_over))})"
            if kept:
                over = " * ".join((dims or {}).get(m, f"size({name(m)})") for m in kept)
                text = f"{text} / ({over})" if len(kept) > 1 else f"{text} / {over}"
            if summed and not top:
                return f"sum({text}, {', '.join(map(name, summed))})"
            return f"({text})" if parent >= 3 else text
        text = ""
        for c, t in node.terms:
            body = show(t, 2, top and parent == 0)
            body = body if abs(c) == 1.0 else f"{abs(c):g} * {body}"
            text += (
                (f" - {body}" if c < 0 else f" + {body}") if text else ("-" if c < 0 else "") + body
            )
        return f"({text})" if parent >= 1 else text

    for lab in labels:
        name(lab)
    body = show(root)
    return f"{ref(target, labels)} = {body}"
