"""The syntax tree of the spec language, and printing it back as spec text.

:func:`~tensorchain.language.parser.parse_program` reads text into a
:class:`Program` of statements (declarations and assignments) whose
expressions are trees of :class:`Num`, :class:`Ref`, :class:`Call`,
:class:`Neg` and :class:`BinOp`; every node keeps the :class:`Pos` it was
written at, for messages. :func:`show` prints an expression back.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..errors import SpecError


@dataclass(frozen=True)
class Pos:
    """A 1-based line and column in the spec text."""

    line: int
    column: int


@dataclass(frozen=True)
class Num:
    value: float
    pos: Pos


@dataclass(frozen=True)
class Index:
    name: str
    pos: Pos


@dataclass(frozen=True)
class Pick:
    """An index position that picks entries rather than naming an index: the
    entries of an integer index tensor (``T[ids[s], d]``, ``by`` its
    reference) or a constant position (``x[s, 0, k]``, ``by`` the number)."""

    by: Ref | int
    pos: Pos


@dataclass(frozen=True)
class Offset:
    """``j + 1`` in an index list on the right side: the positions ``j + offset``
    of the tensor's axis, ``j`` running over its own dim (a range of positions,
    ``x[s, 1:3]`` in numpy being ``x[s, j + 1]`` with ``j`` of size 2)."""

    index: Index
    offset: int
    pos: Pos

    @property
    def name(self) -> str:
        return f"{self.index.name} + {self.offset}"


@dataclass(frozen=True)
class Group:
    """``(h w)`` in an index list: the indices ``h`` and ``w`` as one axis, row-major
    (``w`` fastest, as numpy's reshape and einops). In a declaration its members
    are dims and the axis has the product dim ``(H W)``."""

    members: tuple[Index, ...]
    pos: Pos
    added: bool = False  # (I + J): in a declaration, the sum of dims (a concatenated axis)

    @property
    def name(self) -> str:
        return f"({(' + ' if self.added else ' ').join(m.name for m in self.members)})"


@dataclass(frozen=True)
class Ref:
    """A tensor reference: ``x`` (whole tensor) or ``W[i, j]`` (indices given;
    a position may be a :class:`Pick`)."""

    name: str
    indices: tuple[Index | Pick | Group | Offset, ...] | None
    pos: Pos


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True)
class Neg:
    operand: Expr
    pos: Pos


#: The comparisons of a condition (only inside ``where(cond, a, b)``).
COMPARISONS = (">", "<", ">=", "<=", "==", "!=")


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ^, or a comparison (COMPARISONS)
    left: Expr
    right: Expr
    pos: Pos
    paren: bool = False  # written in parentheses: a sum in them is one term


Expr = Num | Ref | Call | Neg | BinOp


@dataclass(frozen=True)
class DimDecl:
    name: str
    size: int | None
    pos: Pos


@dataclass(frozen=True)
class Modifier:
    """A word that ends a declaration, with the dim names it takes:
    ``positive``, ``onehot c`` (see :data:`MODIFIERS`)."""

    name: str
    args: tuple[Index, ...]
    pos: Pos


@dataclass(frozen=True)
class TensorDecl:
    kind: str  # "input" or "param"
    name: str
    axes: tuple[Index | Group, ...]  # each names a dim (a group: the product of dims)
    pos: Pos
    modifiers: tuple[Modifier, ...] = ()
    index: Index | None = None  # ``input ids[B] index V``: integers indexing dim V


@dataclass(frozen=True)
class ShiftDecl:
    """``shift S[P, K, T] stride 2 padding 1``: the constant S[p, k, t] = 1 where
    t = stride·p + k − padding (a sliding window), else 0."""

    name: str
    axes: tuple[Index, ...]
    stride: int
    padding: int
    pos: Pos


@dataclass(frozen=True)
class Assign:
    target: str
    indices: tuple[Index | Group, ...] | None
    expr: Expr
    pos: Pos


Statement = DimDecl | TensorDecl | ShiftDecl | Assign


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    lines: tuple[str, ...]
    path: str | None = None  # the file it was read from, for messages

    def error(self, message: str, pos: Pos, cls: type[SpecError] = SpecError) -> SpecError:
        """An error of class ``cls`` pointing at ``pos`` with the source line quoted."""
        source = self.lines[pos.line - 1] if 0 < pos.line <= len(self.lines) else None
        return cls(message, pos.line, pos.column, source, self.path)

    def where(self, pos: Pos) -> str:
        """``file, line 3`` (or ``line 3``) for warnings."""
        return f"{self.path}, line {pos.line}" if self.path else f"line {pos.line}"


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4, **dict.fromkeys(COMPARISONS, 0)}


def show(expr: Expr, parent: int = 0) -> str:
    """Print an expression back as spec text (used in messages and derivations)."""
    if isinstance(expr, Num):
        return f"{expr.value:g}"
    if isinstance(expr, Ref):
        if expr.indices is None:
            return expr.name
        return f"{expr.name}[{', '.join(map(show_index, expr.indices))}]"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(show(a) for a in expr.args)})"
    if isinstance(expr, Neg):
        text = "-" + show(expr.operand, 3)
        return f"({text})" if parent > 3 else text
    prec = _PRECEDENCE[expr.op]
    right_prec = prec if expr.op == "^" else prec + 1
    left_prec = prec + 1 if expr.op == "^" else prec
    op = expr.op if expr.op == "^" else f" {expr.op} "
    text = f"{show(expr.left, left_prec)}{op}{show(expr.right, right_prec)}"
    return f"({text})" if prec < parent or expr.paren else text


def show_index(index: Index | Pick | Group | Offset) -> str:
    """One position of an index list as spec text: ``i``, ``(h w)``, ``ids[s]``, ``0``
    or ``j + 1``."""
    if isinstance(index, Index | Group | Offset):
        return index.name
    return str(index.by) if isinstance(index.by, int) else show(index.by)
