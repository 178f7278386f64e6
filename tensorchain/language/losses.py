"""Loss shorthands, expanded into the language's own expressions before lowering.

=============================  ==================================================
``mse(a, b)``                  ``mean((a - b) ^ 2)``
``bce(z, y)``                  ``mean(softplus(z) - y * z)`` (binary cross-entropy
                               of logits ``z`` against labels ``y`` in [0, 1])
``cross_entropy(z, y, k)``     ``mean(sum(-y * log_softmax(z, k), k))`` (logits
                               ``z``, target probabilities ``y`` along ``k``,
                               averaged over every other index)
``nll(a, y, k)``               ``mean(sum(-y * a, k))`` (log-probabilities ``a``)
=============================  ==================================================

Each is a scalar. The expansion is what the derivation prints
(:func:`expanded_text`); its derivative is that of the expanded expression.

Integer labels: where ``y`` is an index tensor of ``k``'s dim (``input
labels[B] index c``), its one-hot ``delta[k, y[...]]`` takes its place, a
selection that is never stored: ``cross_entropy(z[s, c], labels[s], c)`` is
``mean(sum(-delta[c, labels[s]] * log_softmax(z[s, c], c), c))``. In
whole-tensor form (``cross_entropy(z, labels, c)``) the expansion is written
in index form, with the dims' names as indices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from ..errors import SpecError
from .syntax import BinOp, Call, Expr, Index, Neg, Num, Pick, Ref, show

#: name -> (its arguments, the expansion as written in the docs)
LOSSES: dict[str, tuple[tuple[str, ...], str]] = {
    "mse": (("a", "b"), "mean((a - b) ^ 2)"),
    "bce": (("z", "y"), "mean(softplus(z) - y * z)"),
    "cross_entropy": (("z", "y", "k"), "mean(sum(-y * log_softmax(z, k), k))"),
    "nll": (("a", "y", "k"), "mean(sum(-y * a, k))"),
}

#: The losses whose target may be integer labels (an index tensor).
LABELLED = ("cross_entropy", "nll")


@dataclass(frozen=True)
class Tensors:
    """What an expansion needs to know of the network: each tensor's dims,
    the dim each index tensor indexes, and whether the statement is in
    whole-tensor form."""

    axes: Mapping[str, tuple[str, ...]] = field(default_factory=dict)
    indexes: Mapping[str, str] = field(default_factory=dict)
    whole: bool = False


def integer_labels(e: Call, known: Tensors) -> bool:
    """Whether ``e`` is ``cross_entropy`` or ``nll`` with an index tensor as its labels."""
    if e.func not in LABELLED or len(e.args) != 3:
        return False
    y = e.args[1]
    return isinstance(y, Ref) and y.name in known.indexes


def expand_loss(e: Call, fail: Callable[..., SpecError], known: Tensors | None = None) -> Expr:
    """The expression a loss shorthand stands for, with the caller's arguments
    (``known``: the network's tensors, for integer labels)."""
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
    if known is not None and integer_labels(e, known):
        z, hot = _one_hot(e, known, fail)
        if hot is None:
            return e
        y = hot
    logp = call("log_softmax", z, k) if e.func == "cross_entropy" else z
    return call("mean", call("sum", op("*", Neg(y, p), logp), k))


def _one_hot(e: Call, known: Tensors, fail: Callable[..., SpecError]) -> tuple[Expr, Expr | None]:
    """``(z, delta[k, y[...]])`` for a loss with integer labels ``y``: the
    one-hot of ``y`` along ``k``, and ``z`` indexed by the dims' names in
    whole-tensor form (the expansion printed in index form; ``None`` where it
    cannot be: a whole-tensor expression for ``z``, which the lowering
    handles, see ``lower_calls.LowerCalls.labelled_loss``)."""
    z, y, k = e.args
    p = e.pos
    if not isinstance(k, Ref) or k.indices is not None:
        raise fail(
            f"the third argument of {e.func} names the index of the classes, e.g."
            f" {e.func}(z, labels, c)",
            p,
        )
    if not known.whole:
        if y.indices is None and known.axes[y.name]:
            raise fail(
                f"{y.name} holds integer labels; in index form write its indices too,"
                f" e.g. {e.func}({show(z)}, {y.name}[{', '.join(known.axes[y.name])}], {k.name})",
                p,
            )
        return z, Ref("delta", (Index(k.name, k.pos), Pick(y, y.pos)), p)
    dims = known.axes.get(z.name, ()) if isinstance(z, Ref) else ()
    names = [d if dims.count(d) == 1 else f"{d}{n}" for n, d in enumerate(dims)]
    rest = [n for n, d in zip(names, dims, strict=True) if d != k.name]
    if dims.count(k.name) != 1 or len(rest) != len(known.axes[y.name]):
        return z, None  # not written in index form: the loss is shown as called
    z = Ref(z.name, tuple(Index(n, p) for n in names), p)
    y = Ref(y.name, tuple(Index(n, p) for n in rest), p)
    return z, Ref("delta", (Index(k.name, k.pos), Pick(y, p)), p)


def expand_all(expr: Expr, fail: Callable[..., SpecError], known: Tensors | None = None) -> Expr:
    """``expr`` with every loss shorthand in it expanded."""
    if isinstance(expr, Call):
        args = tuple(expand_all(a, fail, known) for a in expr.args)
        call = Call(expr.func, args, expr.pos)
        return expand_loss(call, fail, known) if expr.func in LOSSES else call
    if isinstance(expr, Neg):
        return Neg(expand_all(expr.operand, fail, known), expr.pos)
    if isinstance(expr, BinOp):
        left, right = expand_all(expr.left, fail, known), expand_all(expr.right, fail, known)
        return BinOp(expr.op, left, right, expr.pos, expr.paren)
    return expr


def uses_loss(expr: Expr) -> bool:
    if isinstance(expr, Call):
        return expr.func in LOSSES or any(uses_loss(a) for a in expr.args)
    if isinstance(expr, Neg):
        return uses_loss(expr.operand)
    if isinstance(expr, BinOp):
        return uses_loss(expr.left) or uses_loss(expr.right)
    return False
