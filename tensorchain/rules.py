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
from collections.abc import Callable

import numpy as np

from .errors import DerivativeError
from .functions import ELEMENTWISE
from .labeled import Factor, LabeledTensor, Term, fresh
from .lower import Const, Leaf, Map, Node, Product, Sum, children
from .program import apply

Values = dict[int, np.ndarray]  # id(node) -> value
Rule = Callable[[Node, int, Values, dict[str, int]], LabeledTensor]


def name_of(node: Node) -> str:
    """A short printable name for a node's value (``z``, ``σ'(z)``, ``W·x``)."""
    if isinstance(node, Leaf):
        return node.name
    if isinstance(node, Const):
        return f"{node.value:g}"
    if isinstance(node, Map):
        if node.func == "pow":
            return f"{name_of(node.arg)}^{node.param:g}"
        if node.func == "reciprocal":
            return f"1/{name_of(node.arg)}"
        return f"{node.func}({name_of(node.arg)})"
    if isinstance(node, Product):
        factors = [name_of(f) for f in node.factors]
        if node.coeff != 1.0:
            factors.insert(0, f"{node.coeff:g}")
        return "·".join(factors)
    text = ""
    for c, t in node.terms:
        sign = "-" if c < 0 else "+"
        mag = "" if abs(c) == 1.0 else f"{abs(c):g}·"
        text += f" {sign} {mag}{name_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{name_of(t)}"
    return f"({text})"


def tex_name(name: str) -> str:
    """A tensor name in LaTeX: ``W1`` → ``W_{1}``, ``y_hat`` → ``\\mathrm{y\\_hat}``."""
    head = name.rstrip("0123456789")
    if len(head) == 1 and head != name:
        return f"{head}_{{{name[1:]}}}"
    return name if len(name) == 1 else r"\mathrm{" + name.replace("_", r"\_") + "}"


def tex_of(node: Node) -> str:
    """The LaTeX form of :func:`name_of`."""
    if isinstance(node, Leaf):
        return tex_name(node.name)
    if isinstance(node, Const):
        return f"{node.value:g}"
    if isinstance(node, Map):
        arg = tex_of(node.arg)
        if node.func == "reciprocal":
            return rf"\frac{{1}}{{{arg}}}"
        return ELEMENTWISE[node.func].tex(arg, node.param)
    if isinstance(node, Product):
        factors = [tex_of(f) for f in node.factors]
        if node.coeff != 1.0:
            factors.insert(0, f"{node.coeff:g}")
        return r" \, ".join(factors)
    text = ""
    for c, t in node.terms:
        mag = "" if abs(c) == 1.0 else f"{abs(c):g} "
        sign = "-" if c < 0 else "+"
        text += f" {sign} {mag}{tex_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{tex_of(t)}"
    return rf"\left({text}\right)"


def _axes(node: Node, operand: Node, sizes: dict[str, int]):
    new = tuple(fresh(lab) for lab in operand.labels)
    sizes = {
        **sizes,
        **{n: sizes[lab] for n, lab in zip(new, operand.labels, strict=True)},
    }
    deltas = tuple(zip(operand.labels, new, strict=True))
    return (*node.labels, *new), sizes, deltas


def product_rule(node: Product, k: int, values: Values, sizes: dict[str, int]):
    operand = node.factors[k]
    indices, sizes, deltas = _axes(node, operand, sizes)
    coeff = node.coeff / float(np.prod([sizes[m] for m in node.mean_over]))
    others = tuple(
        Factor(values[id(f)], f.labels, name_of(f), tex=tex_of(f))
        for j, f in enumerate(node.factors)
        if j != k
    )
    return LabeledTensor(indices, sizes, [Term(coeff, others, deltas)])


def sum_rule(node: Sum, k: int, values: Values, sizes: dict[str, int]):
    coeff, operand = node.terms[k]
    indices, sizes, deltas = _axes(node, operand, sizes)
    return LabeledTensor(indices, sizes, [Term(coeff, (), deltas)])


def map_rule(node: Map, k: int, values: Values, sizes: dict[str, int]):
    f = ELEMENTWISE[node.func]
    indices, sizes, deltas = _axes(node, node.arg, sizes)
    arg = name_of(node.arg)
    name = f.derivative_text(arg, node.param)
    shape = [sizes[lab] for lab in node.labels]
    derivative = functools.partial(f.derivative, p=node.param)
    x, y = values[id(node.arg)], values[id(node)]
    p = node.param
    code = lambda a: f.derivative_source(a[0], a[1], p)  # noqa: E731
    tex = f.derivative_tex(tex_of(node.arg), node.param)
    df = Factor(apply(derivative, x, y, shape=shape, code=code), node.labels, name, tex=tex)
    return LabeledTensor(indices, sizes, [Term(1.0, (df,), deltas)])


RULES: dict[type, Rule] = {Product: product_rule, Sum: sum_rule, Map: map_rule}


def local_rule(node: Node, k: int, values: Values, sizes: dict[str, int]) -> LabeledTensor:
    """d node / d children(node)[k], or an error naming an operation with no rule."""
    rule = RULES.get(type(node))
    if rule is None:
        raise DerivativeError(
            f"no derivative rule for the operation {type(node).__name__}"
            f" ({name_of(node)}); add one to tensorchain.rules.RULES"
        )
    if isinstance(node, Map) and node.func not in ELEMENTWISE:
        raise DerivativeError(f"no derivative rule for the function {node.func!r}")
    assert 0 <= k < len(children(node))
    return rule(node, k, values, sizes)
