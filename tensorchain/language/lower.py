"""Syntax tree to labeled operations: the meaning of one assignment.

:func:`lower` turns an assignment into a :class:`~tensorchain.language.operations.Lowered`
statement (the operations: :mod:`tensorchain.language.operations`). The
lowering is one object made of parts, each a module: arithmetic
(:mod:`~tensorchain.language.lower_arithmetic`), references to tensors
(:mod:`~tensorchain.language.lower_references`), calls
(:mod:`~tensorchain.language.lower_calls`), matrix functions
(:mod:`~tensorchain.language.lower_matrix`) and selections
(:mod:`~tensorchain.language.selections`); this module holds the statement
itself: its left side, its top-level terms and what each sums.

Inside a top-level term nothing is summed; a top-level term sums the indices
that are not on the left side (einsum semantics per term).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from dataclasses import replace

from ..arrays import limits
from ..errors import SpecError, warn
from .losses import Tensors, expand_all, uses_loss
from .lower_arithmetic import LowerArithmetic
from .lower_calls import LowerCalls
from .lower_matrix import LowerMatrixCalls
from .lower_references import LowerReferences
from .operations import (
    Along,
    Const,
    Leaf,
    Lowered,
    Map,
    Node,
    Product,
    Reindex,
    Sum,
    Where,
    base_label,
    children,
    leaves,
    relabel,
    union_labels,
    walk,
)
from .syntax import (
    Assign,
    BinOp,
    Call,
    Expr,
    Group,
    Index,
    Neg,
    Offset,
    Pick,
    Pos,
    Program,
    Ref,
    show,
)


class SpecWarning(UserWarning):
    """A statement is valid but probably not what was meant."""


class _Lowering(LowerArithmetic, LowerReferences, LowerCalls, LowerMatrixCalls):
    """The lowering of one assignment (the parts' methods share ``self``)."""

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

    def known(self) -> Tensors:
        return Tensors(self.axes, self.indexes, not self.index_form)

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
        present = union_labels([n for _, n in terms])
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


def _expanded(indices: Sequence[Index | Group]) -> list[Index]:
    """The indices of an index list, each group's in its place."""
    return [m for i in indices for m in (i.members if isinstance(i, Group) else (i,))]


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
