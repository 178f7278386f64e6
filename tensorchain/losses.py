"""Loss shorthands, expanded into the language's own expressions before lowering.

=============================  ==================================================
``mse(a, b)``                  ``mean((a - b) ^ 2)``
``bce(z, y)``                  ``mean(softplus(z) - y * z)`` (binary cross-entropy
                               of logits ``z`` against labels ``y`` in [0, 1])
``cross_entropy(z, y, k)``     ``mean(sum(-y * log_softmax(z, k), k))`` (logits
                               ``z``, target probabilities ``y`` along ``k``,
                               averaged over every other index)
=============================  ==================================================

Each is a scalar. The expansion is what the derivation prints
(:func:`expanded_text`); its derivative is that of the expanded expression.
"""

from __future__ import annotations

from collections.abc import Callable

from .errors import SpecError
from .spec import BinOp, Call, Expr, Neg, Num, show

#: name -> (its arguments, the expansion as written in the docs)
LOSSES: dict[str, tuple[tuple[str, ...], str]] = {
    "mse": (("a", "b"), "mean((a - b) ^ 2)"),
    "bce": (("z", "y"), "mean(softplus(z) - y * z)"),
    "cross_entropy": (("z", "y", "k"), "mean(sum(-y * log_softmax(z, k), k))"),
}


def expand_loss(e: Call, fail: Callable[..., SpecError]) -> Expr:
    """The expression a loss shorthand stands for, with the caller's arguments."""
    params, _ = LOSSES[e.func]
    if len(e.args) != len(params):
        raise fail(
            f"{e.func} takes {len(params)} arguments ({', '.join(params)}), {len(e.args)}"
            f" given in {show(e)}; it stands for {LOSSES[e.func][1]}",
            e.pos,
        )
    p = e.pos

    def op(o: str, a: Expr, b: Expr) -> BinOp:
        return BinOp(o, a, b, p)

    def call(f: str, *args: Expr) -> Call:
        return Call(f, args, p)

    if e.func == "mse":
        a, b = e.args
        return call("mean", op("^", op("-", a, b), Num(2.0, p)))
    if e.func == "bce":
        z, y = e.args
        return call("mean", op("-", call("softplus", z), op("*", y, z)))
    z, y, k = e.args
    return call("mean", call("sum", op("*", Neg(y, p), call("log_softmax", z, k)), k))


def expand_all(expr: Expr, fail: Callable[..., SpecError]) -> Expr:
    """``expr`` with every loss shorthand in it expanded."""
    if isinstance(expr, Call):
        args = tuple(expand_all(a, fail) for a in expr.args)
        call = Call(expr.func, args, expr.pos)
        return expand_loss(call, fail) if expr.func in LOSSES else call
    if isinstance(expr, Neg):
        return Neg(expand_all(expr.operand, fail), expr.pos)
    if isinstance(expr, BinOp):
        return BinOp(expr.op, expand_all(expr.left, fail), expand_all(expr.right, fail), expr.pos)
    return expr


def uses_loss(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return expr.func in LOSSES or any(uses_loss(a) for a in expr.args)
    if isinstance(expr, Neg):
        return uses_loss(expr.operand)
    if isinstance(expr, BinOp):
        return uses_loss(expr.left) or uses_loss(expr.right)
    return False
