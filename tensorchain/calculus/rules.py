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
import itertools
import math
from collections.abc import Callable
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import numpy as np

from ..arrays.trace import apply
from ..errors import DerivativeError
from ..functions import along as along_fns
from ..functions.along import ALONG, on_any_library
from ..functions.registry import (
    ELEMENTWISE,
    NUMPY_DERIVATIVES,
    PIECEWISE_CONSTANT,
    PRINTED,
    elementwise,
)
from ..language import selections as where
from ..language.gather import Selection
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Map,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Solve,
    Sum,
    Where,
    children,
)
from ..language.reindex import offset_of
from .labeled import Factor, LabeledTensor, Term, fresh

Values = dict[int, np.ndarray]  # id(node) -> value

#: The statement whose local derivatives are being made (for messages).
STATEMENT: ContextVar[str] = ContextVar("tensorchain_statement", default="")
Rule = Callable[[Node, int, Values, dict[str, int]], LabeledTensor]


def name_of(node: Node) -> str:
    """A short printable name for a node's value (``z``, ``σ'(z)``, ``W·x``)."""
    if isinstance(node, Leaf):
        return node.name
    if isinstance(node, Const):
        return f"{node.value:g}"
    if isinstance(node, Size):
        return node.key
    if isinstance(node, Delta | Reindex):  # Reindex: δ[g, h, w], g = (h w); δ[k, i + offset]
        return "δ"
    if isinstance(node, Select):
        return f"onehot({node.index})"
    if isinstance(node, Map):
        if node.func == "pow":
            return f"{name_of(node.arg)}^{node.param:g}"
        if node.func == "reciprocal":
            return f"1/{name_of(node.arg)}"
        return f"{PRINTED.get(node.func, node.func)}({name_of(node.arg)})"
    if isinstance(node, Along):
        axes = "".join(f", {n}" for n in node.names)
        return f"{node.func}({name_of(node.arg)}{axes})"
    if isinstance(node, Solve):
        return f"solve({name_of(node.matrix)}, {name_of(node.rhs)})"
    if isinstance(node, Where):
        return where.select_text(node, name_of)
    if isinstance(node, Product) and _picked(node):
        return _picked(node)
    if isinstance(node, Product):
        factors = [name_of(f) for f in node.factors]
        if node.coeff != 1.0 or not factors:
            factors.insert(0, f"{node.coeff:g}")
        text = "·".join(factors)
        if node.mean_over and set(node.mean_over) <= set(node.summed):
            return f"mean({text})"
        return f"Σ({text})" if node.summed else text
    text = ""
    for c, t in node.terms:
        sign = "-" if c < 0 else "+"
        mag = "" if abs(c) == 1.0 else f"{abs(c):g}·"
        text += f" {sign} {mag}{name_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{name_of(t)}"
    return f"({text})"


def _picked(node: Product) -> str:
    """``T[ids[:], :]`` or ``x[:, 0, :]`` for a tensor's entries picked by
    selections (a product of selections and one tensor), else ""; printed
    with its indices in place of the colons (``T[ids[p], j]``)."""
    leaves = [f for f in node.factors if isinstance(f, Leaf)]
    selects = {f.labels[-1]: f for f in node.factors if isinstance(f, Select)}
    if len(leaves) != 1 or len(leaves) + len(selects) != len(node.factors) or not selects:
        return ""
    parts = []
    for lab in leaves[0].labels:
        select = selects.get(lab)
        if select is None:
            parts.append(":")
        elif isinstance(select.index, int):
            parts.append(str(select.index))
        else:
            parts.append(f"{select.index}[{', '.join(':' for _ in select.labels[:-1])}]")
    return f"{leaves[0].name}[{', '.join(parts)}]"


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
    if isinstance(node, Size):
        return tex_name(node.dim)
    if isinstance(node, Delta | Reindex):
        return r"\delta"
    if isinstance(node, Select):
        return rf"\mathrm{{onehot}}({tex_name(str(node.index))})"
    if isinstance(node, Map):
        arg = tex_of(node.arg)
        if node.func == "reciprocal":
            return rf"\frac{{1}}{{{arg}}}"
        return elementwise(node.func).tex(arg, node.param)
    if isinstance(node, Along):
        below = ",".join(tex_name(n) for n in node.names)
        head = rf"{ALONG[node.func].tex}_{{{below}}}" if below else ALONG[node.func].tex
        return rf"{head}\left({tex_of(node.arg)}\right)"
    if isinstance(node, Solve):
        return rf"\left({tex_of(node.matrix)}\right)^{{-1}} {tex_of(node.rhs)}"
    if isinstance(node, Where):
        return where.select_tex(node, tex_of)
    if isinstance(node, Product) and _picked(node):
        return ""  # written from its name with its indices (derivation._term_tex)
    if isinstance(node, Product):
        factors = [tex_of(f) for f in node.factors]
        if node.coeff != 1.0 or not factors:
            factors.insert(0, f"{node.coeff:g}")
        return r" \, ".join(factors)
    text = ""
    for c, t in node.terms:
        mag = "" if abs(c) == 1.0 else f"{abs(c):g} "
        sign = "-" if c < 0 else "+"
        text += f" {sign} {mag}{tex_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{tex_of(t)}"
    return rf"\left({text}\right)"


def dense(value: Any) -> Any:
    """An array: a structured value (a :class:`LabeledTensor`, or a selection
    used other than as a factor of a product: ``exp(delta[k, labels[s]])``)
    made dense."""
    if isinstance(value, Selection):
        return value.dense()
    return value._dense() if isinstance(value, LabeledTensor) else value


def _axes(node: Node, operand: Node, sizes: dict[str, int]):
    new = tuple(fresh(lab) for lab in operand.labels)
    sizes = {
        **sizes,
        **{n: sizes[lab] for n, lab in zip(new, operand.labels, strict=True)},
    }
    deltas = tuple(zip(operand.labels, new, strict=True))
    return (*node.labels, *new), sizes, deltas


def factor_terms(node: Node, value: Any, sizes: dict[str, int]) -> list[Term]:
    """A factor of a product as terms over its labels: one factor for an array,
    a δ for a :class:`Delta`, and the terms of a structured value (a
    :class:`LabeledTensor`, whose deltas stay symbolic)."""
    if isinstance(node, Delta):
        return [Term(1.0, (), (node.labels,))]
    if isinstance(node, Reindex):  # a constant factor, contracted as a reshape or slice
        offset = offset_of(node, sizes)
        name, tex = (f"δ+{offset}", rf"\delta^{{+{offset}}}") if offset else ("δ", r"\delta")
        return [Term(1.0, (Factor(value, node.labels, name, tex=tex),))]
    if isinstance(value, LabeledTensor):
        return value.terms_on(node.labels, sizes)
    return [Term(1.0, (Factor(value, node.labels, name_of(node), tex=tex_of(node)),))]


def multiply(
    coeff: float,
    choices: list[list[Term]],
    deltas=(),
    summed: set[str] | frozenset[str] = frozenset(),
    sizes: dict[str, int] | None = None,
) -> list[Term]:
    """The terms of ``coeff`` times the product of sums of terms (one sum per
    factor). A label in ``summed`` that a term does not carry (an axis along
    which a structured factor's term is constant) sums ones: its size."""
    out = []
    for combo in itertools.product(*choices):
        c = coeff * math.prod(t.coeff for t in combo)
        factors = tuple(f for t in combo for f in t.factors)
        term = Term(c, factors, (*deltas, *(d for t in combo for d in t.deltas)))
        missing = [lab for lab in summed if lab not in term.labels()]
        if missing:
            assert sizes is not None
            term = replace(term, coeff=c * math.prod(sizes[lab] for lab in missing))
        out.append(term)
    return out


def product_rule(node: Product, k: int, values: Values, sizes: dict[str, int]):
    operand = node.factors[k]
    indices, sizes, deltas = _axes(node, operand, sizes)
    coeff = node.coeff / float(math.prod(sizes[m] for m in node.mean_over))
    choices = [
        factor_terms(f, values.get(id(f)), sizes) for j, f in enumerate(node.factors) if j != k
    ]
    summed = {lab for f in node.factors for lab in f.labels} - set(indices)
    return LabeledTensor(indices, sizes, multiply(coeff, choices, deltas, summed, sizes))


def sum_rule(node: Sum, k: int, values: Values, sizes: dict[str, int]):
    coeff, operand = node.terms[k]
    indices, sizes, deltas = _axes(node, operand, sizes)
    return LabeledTensor(indices, sizes, [Term(coeff, (), deltas)])


def map_rule(node: Map, k: int, values: Values, sizes: dict[str, int]):
    f = elementwise(node.func)
    if f.derivative is None:  # a registered function without its next derivative
        raise DerivativeError(f.missing or f"no derivative for {node.func}")
    indices, sizes, deltas = _axes(node, node.arg, sizes)
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
    indices, sizes, deltas = _axes(node, arg, sizes)
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
    indices, sizes, deltas = _axes(node, children(node)[k], sizes)
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


# The matrix functions' rules use this module's helpers (hence imported last).
from .matrix_rules import matrix_rule, solve_rule  # noqa: E402

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
