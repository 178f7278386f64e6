"""Local derivatives: one rule per operation, each a labeled tensor with symbolic deltas.

``RULES[type(node)](node, k, values, sizes)`` returns d node / d (k-th operand)
with axes ``node.labels + operand-axes`` (the operand's axes get fresh labels).
``values`` maps every node of the statement to its forward value.

* Product ``c · Π_j A_j``: the other factors times δ(operand labels, new axes);
  a summed label stays summed. The einsum VJP of autograd, kept unevaluated.
* Sum ``Σ_j c_j A_j``: ``c_k`` times δ; axes the operand lacks are broadcast.
* Map ``f(A)``: ``f'(A)[labels]`` times δ(labels, new axes).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable
from dataclasses import replace

from ..arrays.trace import apply
from ..errors import DerivativeError
from ..functions import along as along_fns
from ..functions.along import ALONG, on_any_library
from ..functions.registry import (
    ELEMENTWISE,
    NUMPY_DERIVATIVES,
    PIECEWISE_CONSTANT,
    elementwise,
)
from ..language import selections as where
from ..language.operations import (
    Along,
    Map,
    Node,
    Product,
    Solve,
    Sum,
    Where,
    children,
)
from .factors import Values, dense, factor_terms, multiply, operand_axes
from .labeled import LabeledTensor
from .matrix_rules import matrix_rule, solve_rule
from .node_names import name_of, tex_of
from .terms import Factor, Term

Rule = Callable[[Node, int, Values, dict[str, int]], LabeledTensor]


def product_rule(node: Product, k: int, values: Values, sizes: dict[str, int]):
    operand = node.factors[k]
    indices, sizes, deltas = operand_axes(node, operand, sizes)
    coeff = node.coeff / float(math.prod(sizes[m] for m in node.mean_over))
    choices = [
        factor_terms(f, values.get(id(f)), sizes) for j, f in enumerate(node.factors) if j != k
    ]
    summed = {lab for f in node.factors for lab in f.labels} - set(indices)
    return LabeledTensor(indices, sizes, multiply(coeff, choices, deltas, summed, sizes))


def sum_rule(node: Sum, k: int, values: Values, sizes: dict[str, int]):
    coeff, operand = node.terms[k]
    indices, sizes, deltas = operand_axes(node, operand, sizes)
    return LabeledTensor(indices, sizes, [Term(coeff, (), deltas)])


def map_rule(node: Map, k: int, values: Values, sizes: dict[str, int]):
    f = elementwise(node.func)
    if f.derivative is None:  # a registered function without its next derivative
        raise DerivativeError(f.missing or f"no derivative for {node.func}")
    indices, sizes, deltas = operand_axes(node, node.arg, sizes)
    if node.func in PIECEWISE_CONSTANT or (node.func == "pow" and node.param == 0.0):
        return LabeledTensor(indices, sizes, [])  # zero: dropped, never multiplied by a value
    arg = name_of(node.arg)
    name = f.derivative_text(arg, node.param)
    shape = [sizes[lab] for lab in node.labels]
    p = node.param
    # Only what f' reads is an argument (σ' reads σ, 2x not x²), so that a
    # compiled gradient never computes a value it does not use (the loss).
    source = f.derivative_source("\0x", "\0y", p)
    reads = ("\0x" in source, "\0y" in source)
    args = [dense(values[id(n)]) for n, read in zip((node.arg, node), reads, strict=True) if read]

    def derivative(*given):
        it = iter(given)
        return f.derivative(*(next(it) if read else None for read in reads), p)

    if reads == (False, True):  # the common cases (σ', tanh'; 2 x): no iterator per call
        derivative = functools.partial(_derivative_at_y, f.derivative, p)
    elif reads == (True, False):
        derivative = functools.partial(_derivative_at_x, f.derivative, p)

    def code(a):
        it = iter(a)
        return f.derivative_source(*(next(it) if read else "" for read in reads), p)

    tex = f.derivative_tex(tex_of(node.arg), node.param)
    numpy_form = NUMPY_DERIVATIVES.get(node.func)
    numpy_form = numpy_form(p) if numpy_form is not None and sum(reads) == 1 else None
    # 2 x: a contraction that reads it reads x, and takes the 2 into its scale
    twice = node.func == "square" or (node.func == "pow" and p == 2)
    multiple = (2.0, args[0]) if twice and len(args) == 1 else None
    value = apply(derivative, *args, shape=shape, code=code, numpy=numpy_form, multiple=multiple)
    df = Factor(value, node.labels, name, tex=tex)
    return LabeledTensor(indices, sizes, [Term(1.0, (df,), deltas)])


def _derivative_at_y(derivative, p: float, y):
    return derivative(None, y, p)


def _derivative_at_x(derivative, p: float, x):
    return derivative(x, None, p)


def along_rule(node: Along, k: int, values: Values, sizes: dict[str, int]):
    """See :mod:`tensorchain.functions.along`: sums of terms with deltas on the other indices."""
    if ALONG[node.func].matrix:
        return matrix_rule(node, k, values, sizes)
    arg = node.arg
    indices, sizes, deltas = operand_axes(node, arg, sizes)
    if node.func in ("max_share", "min_share"):  # piecewise constant: zero
        return LabeledTensor(indices, sizes, [])
    new = dict(deltas)  # arg label -> the operand's axis
    along = set(node.axes)
    rest = tuple(d for d in deltas if d[0] not in along)  # δ(B, B')
    primed = tuple(new[lab] if lab in along else lab for lab in arg.labels)  # [B, A']
    x, y = dense(values[id(arg)]), dense(values[id(node)])
    axes = tuple(arg.labels.index(lab) for lab in node.axes)
    shape = [sizes[lab] for lab in arg.labels]
    here, inner = name_of(node), name_of(arg)

    def factor(fn, *args, name: str, tex: str) -> Factor:
        """A factor over [B, A'] computed by one of the along helpers."""
        code = lambda a: f"{fn.__name__}({', '.join(a)}, {axes})"  # noqa: E731
        array = apply(
            functools.partial(on_any_library(fn), axes=axes), *args, shape=shape, code=code
        )
        return Factor(array, primed, name, tex=tex)

    if node.func == "softmax":
        p = Factor(y, arg.labels, here, tex=tex_of(node))
        terms = [Term(1.0, (p,), deltas), Term(-1.0, (p, replace(p, labels=primed)), rest)]
    elif node.func == "log_softmax":
        name = f"softmax({inner}, {', '.join(node.names)})"
        p = factor(
            along_fns.softmax_from_log, y, name=name, tex=rf"\mathrm{{softmax}}({tex_of(arg)})"
        )
        terms = [Term(1.0, (), deltas), Term(-1.0, (p,), rest)]
    elif node.func == "logsumexp":
        name = f"softmax({inner}, {', '.join(node.names)})"
        p = factor(
            along_fns.softmax_from_lse, x, y, name=name, tex=rf"\mathrm{{softmax}}({tex_of(arg)})"
        )
        terms = [Term(1.0, (p,), rest)]
    else:  # max, min: the extreme entries share the derivative
        name = f"[{inner} = {here}]"
        m = factor(
            along_fns.extreme_share, x, y, name=name, tex=rf"[{tex_of(arg)} = {tex_of(node)}]"
        )
        terms = [Term(1.0, (m,), rest)]
    return LabeledTensor(indices, sizes, terms)


def select_rule(node: Where, k: int, values: Values, sizes: dict[str, int]):
    """``where`` and its kin (:mod:`tensorchain.language.selections`): the mask of the
    operand chosen, times δ; zero for the two sides of the condition."""
    indices, sizes, deltas = operand_axes(node, children(node)[k], sizes)
    if k < 2:  # the condition is not differentiated
        return LabeledTensor(indices, sizes, [])
    test, complement = where.mask_test(node, k == 3)
    labels = where.mask_labels(node)
    run, code = where.aligned(
        functools.partial(where.mask_value, test, node.half, complement=complement),
        lambda a: where.mask_source(test, node.half, a, complement),
        [node.left.labels, node.right.labels],
        labels,
        sizes,
    )
    sides = (dense(values[id(node.left)]), dense(values[id(node.right)]))
    mask = apply(run, *sides, shape=[sizes[lab] for lab in labels], code=code)
    name = where.mask_text(node, name_of, k == 3)
    factor = Factor(mask, labels, name, tex=where.mask_tex(node, tex_of, k == 3))
    return LabeledTensor(indices, sizes, [Term(1.0, (factor,), deltas)])


RULES: dict[type, Rule] = {
    Product: product_rule,
    Sum: sum_rule,
    Map: map_rule,
    Along: along_rule,
    Solve: solve_rule,
    Where: select_rule,
}


def local_rule(node: Node, k: int, values: Values, sizes: dict[str, int]) -> LabeledTensor:
    """d node / d children(node)[k], or an error naming an operation with no rule."""
    rule = RULES.get(type(node))
    if rule is None:
        raise DerivativeError(
            f"no derivative rule for the operation {type(node).__name__}"
            f" ({name_of(node)}); add one to tensorchain.calculus.rules.RULES"
        )
    if isinstance(node, Map) and node.func not in ELEMENTWISE and not hasattr(node.func, "entry"):
        raise DerivativeError(f"no derivative rule for the function {node.func!r}")
    assert 0 <= k < len(children(node))
    return rule(node, k, values, sizes)
