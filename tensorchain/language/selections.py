"""Selections: ``where``, ``maximum``, ``minimum``, ``clip``, and ``max(0, z)``.

All are one operation, :class:`~tensorchain.language.operations.Where`: ``a`` where
``left test right`` holds, else ``b``, elementwise, with every operand
broadcast to the union of their indices.

=============================  ===================================================
``where(x > 0, a, b)``         ``a`` where the comparison holds, else ``b``; the
                               comparisons are ``> < >= <= == !=``
``maximum(a, b)``              the larger of ``a`` and ``b`` (NaN if either is)
``minimum(a, b)``              the smaller
``max(0, z)``, ``min(z, 1)``   ``maximum``/``minimum`` when an argument is a number
``clip(x, lo, hi)``            ``minimum(maximum(x, lo), hi)``
=============================  ===================================================

Derivatives: the selection's mask. ``∂ where(c, a, b)/∂a = [c]`` and
``∂/∂b = 1 − [c]``; the condition is not differentiated (its derivative is 0,
as in JAX and PyTorch). ``maximum`` and ``minimum`` split the derivative
equally where ``a = b`` (½ each, as JAX's ``maximum`` does, and like
``max(z, k)`` along an index, whose tied entries share it), so ``clip``'s
derivative is ½ at ``x = lo`` and at ``x = hi`` (JAX's ``clip`` too), and
``max(0, z)`` has derivative ½ at ``z = 0`` where ``relu(z)`` has 0. The mask
is piecewise constant: every second derivative through it is zero, and is
dropped, not computed.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Protocol

import numpy as np

from ..arrays.backend import common, is_numpy, namespace
from ..errors import SpecError
from .operations import Const, Leaf, Node, Where
from .syntax import COMPARISONS, BinOp, Call, Expr, Neg, Num, Pos, show


class Lowering(Protocol):
    """What a selection needs of the lowering of its statement
    (:mod:`tensorchain.language.lower`)."""

    comparing: int  # inside a comparison of where: index tensors may be compared

    def fail(self, message: str, pos: Pos, cls: type[SpecError] = SpecError) -> SpecError: ...

    def lower(self, e: Expr) -> Node: ...

    def _check_whole(self, a: Node, b: Node, op: str, pos: Pos, ea: Expr, eb: Expr) -> None: ...


#: Names a spec may call for a selection.
SELECTIONS = ("maximum", "minimum", "clip", "where")

_ARGUMENTS = {
    "maximum": ("a, b", "maximum(z, 0)"),
    "minimum": ("a, b", "minimum(z, 1)"),
    "clip": ("x, lo, hi", "clip(z, -1, 1)"),
    "where": ("condition, a, b", "where(z > 0, z, 0.1 * z)"),
}


def _constant(e: Expr) -> bool:
    """Whether ``e`` names no tensor (a number, or arithmetic of numbers)."""
    if isinstance(e, Num):
        return True
    if isinstance(e, Neg):
        return _constant(e.operand)
    if isinstance(e, BinOp):
        return _constant(e.left) and _constant(e.right)
    return False


def numbers_first(e: Call) -> bool:
    """``max(0, z)`` or ``min(z, 1)``: ``max``/``min`` of two things, one a
    number, is the elementwise maximum/minimum (no index is a number)."""
    return e.func in ("max", "min") and len(e.args) == 2 and any(map(_constant, e.args))


def lower_selection(low: Lowering, e: Call) -> Node:
    """The :class:`Where` of a call of ``where``, ``maximum``, ``minimum``,
    ``clip``, or of ``max``/``min`` with a number."""
    func = {"max": "maximum", "min": "minimum"}.get(e.func, e.func)
    params, example = _ARGUMENTS[func]
    count = len(params.split(", "))
    if len(e.args) != count:
        raise low.fail(
            f"{func} takes {count} arguments ({params}), {len(e.args)} given in {show(e)};"
            f" e.g. {example}",
            e.pos,
        )
    if func == "where":
        cond = e.args[0]
        if not (isinstance(cond, BinOp) and cond.op in COMPARISONS):
            raise low.fail(
                f"the first argument of where is a comparison (> < >= <= == !=), e.g."
                f" where(z > 0, z, 0); {show(cond)} is not one (for a 0/1 mask m write"
                f" where(m > 0, a, b))",
                cond.pos,
            )
        exprs = [cond.left, cond.right, e.args[1], e.args[2]]
        low.comparing += 1  # a comparison may read positions (where(ids[s] == 0, a, b))
        try:
            left, right = low.lower(cond.left), low.lower(cond.right)
        finally:
            low.comparing -= 1
        a, b = low.lower(e.args[1]), low.lower(e.args[2])
        _same_shapes(low, func, [left, right, a, b], exprs, e)
        return select(cond.op, left, right, a, b)
    nodes = [low.lower(x) for x in e.args]
    _same_shapes(low, func, nodes, list(e.args), e)
    if func == "clip":
        x, lo, hi = nodes
        if isinstance(lo, Const) and isinstance(hi, Const) and lo.value > hi.value:
            raise low.fail(
                f"clip(x, lo, hi) needs lo ≤ hi, but {show(e)} has lo = {lo.value:g} >"
                f" hi = {hi.value:g}",
                e.pos,
            )
        inner = select(">", x, lo, x, lo, half=True)
        return select("<", inner, hi, inner, hi, half=True)
    a, b = nodes
    return select(">" if func == "maximum" else "<", a, b, a, b, half=True)


def _same_shapes(
    low: Lowering, func: str, nodes: list[Node], exprs: Sequence[Expr], e: Call
) -> None:
    """In whole-tensor form, every operand that is no scalar has one shape."""
    shaped = [(n, x) for n, x in zip(nodes, exprs, strict=True) if n.labels]
    for n, x in shaped[1:]:
        low._check_whole(shaped[0][0], n, func, e.pos, shaped[0][1], x)


def select(test: str, left: Node, right: Node, a: Node, b: Node, half: bool = False) -> Node:
    """The :class:`Where` (folded into a constant when every operand is one)."""
    kids = (left, right, a, b)
    if all(isinstance(k, Const) for k in kids):
        value = select_value(test, half, False, *(np.float64(k.value) for k in kids))
        return Const(float(value))
    labels = tuple(dict.fromkeys(lab for k in kids for lab in k.labels))
    return Where(test, left, right, a, b, labels, half)


# --- values ------------------------------------------------------------------

_NUMPY_TESTS = {
    ">": np.greater,
    "<": np.less,
    ">=": np.greater_equal,
    "<=": np.less_equal,
    "==": np.equal,
    "!=": np.not_equal,
}
_NEGATED = {">": "<=", "<": ">=", ">=": "<", "<=": ">", "==": "!=", "!=": "=="}
_OPPOSITE = {">": "<", "<": ">"}


def _holds(test: str, left, right):
    """``left test right`` as booleans, in the operands' library."""
    if test in _NUMPY_TESTS and is_numpy(left, right):
        return _NUMPY_TESTS[test](left, right)
    if test == ">":
        return left > right
    if test == "<":
        return left < right
    if test == ">=":
        return left >= right
    if test == "<=":
        return left <= right
    return left == right if test == "==" else left != right


def select_value(test: str, half: bool, plain: bool, left, right, a, b):
    """The value of a :class:`Where` on operands aligned to its axes.

    Without ``half``: ``where(left test right, a, b)``. With ``half`` (tests
    ``>`` and ``<``: maximum and minimum): ``a`` where the test holds, ``b``
    where the opposite one does, ``(a + b)/2`` where neither (a tie, or NaN);
    ``plain`` says that ``left, right`` are ``a, b`` themselves."""
    numpy = is_numpy(left, right, a, b)
    if not numpy:
        _, (left, right, a, b) = common((left, right, a, b))
    xp = namespace(left, right, a, b)
    if not half:
        return xp.where(_holds(test, left, right), a, b)
    if plain:
        return xp.maximum(a, b) if test == ">" else xp.minimum(a, b)
    middle = 0.5 * (a + b)
    inner = xp.where(_holds(_OPPOSITE[test], left, right), b, middle)
    return xp.where(_holds(test, left, right), a, inner)


def select_source(test: str, half: bool, plain: bool, args: Sequence[str]) -> str:
    """Numpy source of :func:`select_value`, given its operands' source."""
    left, right, a, b = args
    if not half:
        return f"np.where({left} {test} {right}, {a}, {b})"
    if plain:
        return f"np.{'maximum' if test == '>' else 'minimum'}({a}, {b})"
    middle = f"0.5 * ({a} + {b})"
    inner = f"np.where({left} {_OPPOSITE[test]} {right}, {b}, {middle})"
    return f"np.where({left} {test} {right}, {a}, {inner})"


def mask_value(test: str, half: bool, left, right, complement: bool = False):
    """∂ select/∂a: 1 where ``a`` is chosen, 0 where not, ½ at the ties of a
    ``half`` selection (∂/∂b is the mask of the opposite test there, and of
    ``where`` ``1 −`` the mask, ``complement``: where a side is NaN an
    ordered test and its negation are both false, and ``b`` is chosen)."""
    if complement:
        mask = mask_value(test, half, left, right)
        return 1.0 - mask
    if is_numpy(left, right):
        dtype = np.result_type(left, right, np.float32)
        if not half:
            return _NUMPY_TESTS[test](left, right).astype(dtype)
        wins = _NUMPY_TESTS[test](left, right)
        loses = _NUMPY_TESTS[_OPPOSITE[test]](left, right)
        w = np.subtract(wins, loses, dtype=dtype)  # 1, -1, or 0 at a tie (or NaN)
        w += 1.0
        w *= 0.5
        return w
    _, (left, right) = common((left, right))
    xp = namespace(left, right)
    dtype = xp.result_type(left, right, xp.float32)
    hit = xp.astype(_holds(test, left, right), dtype)
    if not half:
        return hit
    other = xp.astype(_holds(_OPPOSITE[test], left, right), dtype)
    return 0.5 * (1.0 + hit - other)


def mask_source(test: str, half: bool, args: Sequence[str], complement: bool = False) -> str:
    """Numpy source of :func:`mask_value`."""
    left, right = args
    if complement:
        return f"1.0 - {mask_source(test, half, args)}"
    if not half:
        return f"np.asarray({left} {test} {right}, dtype=float)"
    opposite = _OPPOSITE[test]
    return (
        f"0.5 * (1.0 + np.subtract({left} {test} {right}, {left} {opposite} {right}, dtype=float))"
    )


def mask_test(node: Where, for_b: bool) -> tuple[str, bool]:
    """The test under which ``a`` (``b`` with ``for_b``) is chosen, and
    whether the mask is ``1 −`` that test's: ``b`` of ``where`` with an
    ordered test is chosen where the test fails, which its negation misses
    where a side is NaN (``==`` and ``!=`` negate exactly; ``maximum``'s
    opposite test gives ``1 −`` the mask of ``a`` too, ½ where neither holds)."""
    if not for_b:
        return node.test, False
    if node.half:
        return _OPPOSITE[node.test], False
    if node.test in ("==", "!="):
        return _NEGATED[node.test], False
    return node.test, True


def plain(node: Where) -> bool:
    """Whether ``node`` is ``maximum(a, b)`` or ``minimum(a, b)`` itself."""
    return node.half and _same(node.left, node.a) and _same(node.right, node.b)


def _same(x: Node, y: Node) -> bool:
    if x is y:
        return True
    if isinstance(x, Leaf) and isinstance(y, Leaf):
        return (x.name, x.labels) == (y.name, y.labels)
    return isinstance(x, Const) and isinstance(y, Const) and x.value == y.value


def mask_labels(node: Where) -> tuple[str, ...]:
    """The axes of the mask: those of the condition."""
    return tuple(dict.fromkeys((*node.left.labels, *node.right.labels)))


def aligned(
    fn: Callable,
    source: Callable[[Sequence[str]], str],
    sources: Sequence[tuple[str, ...]],
    labels: tuple[str, ...],
    sizes: Mapping[str, int],
) -> tuple[Callable, Callable[[Sequence[str]], str]]:
    """``fn`` of arrays with axes ``sources``, each first transposed and
    reshaped to broadcast against ``labels``, and its numpy source (``source``
    writes ``fn`` given its aligned arguments' source)."""
    plans = []
    for src in sources:
        order = [lab for lab in labels if lab in src]
        perm = tuple(src.index(lab) for lab in order)
        view = tuple(sizes[lab] if lab in src else 1 for lab in labels)
        plans.append((None if perm == tuple(range(len(src))) else perm, view, len(src)))

    def run(*arrays):
        out = []
        for (perm, view, rank), a in zip(plans, arrays, strict=True):
            if rank and (perm is not None or rank != len(view)):
                if is_numpy(a):
                    a = np.reshape(a if perm is None else np.transpose(a, perm), view)
                else:
                    xp = namespace(a)
                    a = xp.reshape(a if perm is None else xp.permute_dims(a, perm), view)
            out.append(a)
        return fn(*out)

    def code(args: Sequence[str]) -> str:
        out = []
        for (perm, view, rank), a in zip(plans, args, strict=True):
            if rank and (perm is not None or rank != len(view)):
                a = a if perm is None else f"np.transpose({a}, {perm})"
                a = f"np.reshape({a}, {view})"
            out.append(a)
        return source(out)

    return run, code


# --- printing ----------------------------------------------------------------

_SIGNS = {">=": "≥", "<=": "≤", "==": "=", "!=": "≠"}


def select_text(node: Where, show_node: Callable[[Node], str]) -> str:
    """``where(x > 0, a, b)``, ``maximum(a, b)``, with ``show_node`` printing the operands."""
    left, right, a, b = (show_node(k) for k in (node.left, node.right, node.a, node.b))
    if plain(node):
        return f"{'maximum' if node.test == '>' else 'minimum'}({a}, {b})"
    if node.half:
        return f"where({left} {node.test} {right}, {a}, {b}, ties: ½ each)"
    return f"where({left} {node.test} {right}, {a}, {b})"


def mask_text(node: Where, show_node: Callable[[Node], str], for_b: bool = False) -> str:
    """The derivative's mask: ``[x > 0]``, ``([a > b] + ½[a = b])``."""
    left, right = show_node(node.left), show_node(node.right)
    test, complement = mask_test(node, for_b)
    if node.half:
        return f"([{left} {test} {right}] + ½[{left} = {right}])"
    if complement:
        return f"(1 - [{left} {_SIGNS.get(test, test)} {right}])"
    return f"[{left} {_SIGNS.get(test, test)} {right}]"


def mask_tex(node: Where, tex_node: Callable[[Node], str], for_b: bool = False) -> str:
    """:func:`mask_text` in LaTeX."""
    text = mask_text(node, tex_node, for_b)
    for plain_text, tex in (("≥", r"\geq"), ("≤", r"\leq"), ("≠", r"\neq"), ("½", r"\tfrac{1}{2}")):
        text = text.replace(plain_text, tex)
    return text


def select_tex(node: Where, tex_node: Callable[[Node], str]) -> str:
    """:func:`select_text` in LaTeX."""
    left, right, a, b = (tex_node(k) for k in (node.left, node.right, node.a, node.b))
    if plain(node):
        return rf"\{'max' if node.test == '>' else 'min'}\left({a}, {b}\right)"
    test = {">=": r"\geq", "<=": r"\leq", "==": "=", "!=": r"\neq"}.get(node.test, node.test)
    return rf"\mathrm{{where}}\left({left} {test} {right}, {a}, {b}\right)"
