"""The labeled operations a statement is lowered to, and walks over them.

Every value inside a statement is a tensor whose axes carry labels: the
statement's own index names (``i``, ``j``) in index form, or positional labels
``#0, #1, ...`` in whole-tensor form. Three operations cover most of the language:

* :class:`Product` — ``coeff * einsum(factors -> labels)``, optionally divided
  by the sizes of ``mean_over`` (products, full reductions, top-level terms);
* :class:`Sum` — a linear combination, each term broadcast to ``labels``;
* :class:`Map` — an elementwise function;

with :class:`Along` (functions along indices), :class:`Solve`,
:class:`Delta` and :class:`Where` (``where``, ``maximum``, ...; see
:mod:`tensorchain.language.selections`) for the rest. A statement after
lowering is a :class:`Lowered` (:mod:`tensorchain.language.lower` makes it).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from .syntax import Pos

#: The built-in Kronecker delta, ``delta[i, j]`` (a reserved tensor name).
DELTA = "delta"

#: Concatenation along a named index: ``c[s, k] = concat(a[s, k], b[s, k], k)``.
CONCAT = "concat"

#: The size of a dim as a number: ``size(K)`` (a reserved function name).
SIZE = "size"


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


def union_labels(nodes: list[Node]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(lab for n in nodes for lab in n.labels))
