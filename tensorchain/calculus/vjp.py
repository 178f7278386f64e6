"""The vector-Jacobian product of one operation, written as operations.

:func:`local_vjp` gives, for an operation of a single-operation statement and one
of its operands, the cotangent times the operation's local derivative as a
new operation of the language (so that a derivative graph is a graph like
any other): for a product, the cotangent times the other factors
(autograd's einsum VJP); for a sum, the cotangent summed over the axes the
term lacks; for an elementwise ``f``, the cotangent times ``f'`` written from
``f``'s input and output (:data:`DERIVATIVES`, ``σ' = σ (1 − σ)``); for a
function along indices or a matrix function, its VJP (``softmax``:
``y (g − Σ g y)``).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

from ..errors import DerivativeError
from ..functions.along import ALONG
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Lowered,
    Map,
    Node,
    Product,
    Solve,
    Sum,
    Where,
    children,
    relabel,
)
from ..language.selections import select

# --- building operations -----------------------------------------------------


def product(
    coeff: float, factors: Sequence[Node], labels: Sequence[str], mean_over: Sequence[str] = ()
) -> Node:
    """``coeff · Π factors`` with axes ``labels`` (labels of the factors not in
    ``labels`` are summed, labels no factor has are broadcast); constants fold
    into the coefficient and a product with nothing summed is flattened."""
    flat: list[Node] = []
    for f in factors:
        if isinstance(f, Const):
            coeff *= f.value
        elif (
            isinstance(f, Product)
            and not f.mean_over
            and set(f.labels) == {lab for g in f.factors for lab in g.labels}
        ):
            coeff *= f.coeff
            flat.extend(f.factors)
        else:
            flat.append(f)
    return Product(coeff, tuple(flat), tuple(labels), tuple(mean_over))


def _one_minus(v: Node, labels: tuple[str, ...]) -> Node:
    return Sum(((1.0, Const(1.0)), (-1.0, v)), labels)


#: f' of each elementwise function as operations: ``(coefficient, factors)``
#: from the input ``x``, the output ``y``, the exponent ``p`` and the axes; ``None``
#: where f' is zero almost everywhere (piecewise-constant functions). Every
#: entry of ``ELEMENTWISE`` needs one (tests/test_function_tables.py).
DerivativeNodes = Callable[[Node, Node, float, tuple[str, ...]], tuple[float, list[Node]] | None]

DERIVATIVES: dict[str, DerivativeNodes] = {
    "sigmoid": lambda x, y, p, L: (1.0, [y, _one_minus(y, L)]),
    "tanh": lambda x, y, p, L: (1.0, [_one_minus(Product(1.0, (y, y), L), L)]),
    "relu": lambda x, y, p, L: (1.0, [Map("step", x)]),
    "exp": lambda x, y, p, L: (1.0, [y]),
    "log": lambda x, y, p, L: (1.0, [Map("reciprocal", x)]),
    "softplus": lambda x, y, p, L: (1.0, [Map("sigmoid", x)]),
    "sin": lambda x, y, p, L: (1.0, [Map("cos", x)]),
    "cos": lambda x, y, p, L: (-1.0, [Map("sin", x)]),
    "sqrt": lambda x, y, p, L: (0.5, [Map("reciprocal", y)]),
    "square": lambda x, y, p, L: (2.0, [x]),
    "abs": lambda x, y, p, L: (1.0, [Map("sign", x)]),
    "step": lambda x, y, p, L: None,
    "sign": lambda x, y, p, L: None,
    "reciprocal": lambda x, y, p, L: (-1.0, [y, y]),
    "pow": lambda x, y, p, L: _dpow(x, p),
    "erf": lambda x, y, p, L: (2.0 / math.sqrt(math.pi), [_gaussian(x, 1.0, L)]),
    "normal_cdf": lambda x, y, p, L: (1.0, [Map("normal_pdf", x)]),
    "normal_pdf": lambda x, y, p, L: (-1.0, [x, y]),  # φ' = −x φ
    "gelu": lambda x, y, p, L: (1.0, [_dgelu(x, L)]),
    "log1p": lambda x, y, p, L: (1.0, [Map("reciprocal", Sum(((1.0, Const(1.0)), (1.0, x)), L))]),
    "expm1": lambda x, y, p, L: (1.0, [Map("exp", x)]),
    "logsigmoid": lambda x, y, p, L: (1.0, [_sigmoid_of_minus(x, L)]),
    # silu' = σ(x) (1 + x σ(−x)): no cancellation for large |x| (σ (1 − y) + y has it)
    "silu": lambda x, y, p, L: (
        1.0,
        [
            Map("sigmoid", x),
            Sum(((1.0, Const(1.0)), (1.0, Product(1.0, (x, _sigmoid_of_minus(x, L)), L))), L),
        ],
    ),
}


def _sigmoid_of_minus(x: Node, labels: tuple[str, ...]) -> Node:
    """σ(−x), which is 1 − σ(x) without its cancellation."""
    return Map("sigmoid", Product(-1.0, (x,), labels))


def _gaussian(x: Node, width: float, labels: tuple[str, ...]) -> Node:
    """exp(−width · x²)."""
    return Map("exp", Product(-width, (x, x), labels))


def _dgelu(x: Node, labels: tuple[str, ...]) -> Node:
    """gelu' = Φ(x) + x φ(x), φ(x) = exp(−x²/2)/√(2π)."""
    phi = Product(1.0, (x, Map("normal_pdf", x)), labels)
    return Sum(((1.0, Map("normal_cdf", x)), (1.0, phi)), labels)


def _dpow(x: Node, p: float) -> tuple[float, list[Node]] | None:
    if p == 0.0:
        return None
    if p == 2.0:
        return p, [x]
    if p == 1.0:
        return p, []
    return p, [Map("pow", x, p - 1.0)]


def fresh_label(base: str, taken: set[str]) -> str:
    n = 1
    while f"{base}~{n}" in taken:
        n += 1
    taken.add(f"{base}~{n}")
    return f"{base}~{n}"


def local_vjp(
    stmt: Lowered, k: int, cot: Node, out: tuple[str, ...], taken: set[str]
) -> tuple[Node, tuple[str, ...], dict[str, str]] | None:
    """The vector-Jacobian product of ``stmt``'s operation for its ``k``-th
    operand: an operation with axes ``out + (the operand's axes)``, those axes,
    and the label each new label copies (for its dim); ``None`` when it is zero.
    ``cot`` has axes ``out + stmt.labels``."""
    node = stmt.root
    if isinstance(node, Leaf):  # a copy
        return product(1.0, [cot], out + node.labels), out + node.labels, {}
    child = children(node)[k]
    if isinstance(node, Product):
        axes, deltas, copies, seen = [], [], {}, set()
        for lab in child.labels:  # a repeated index: the diagonal, δ places it
            if lab in seen:
                new = fresh_label(lab, taken)
                copies[new] = lab
                deltas.append(Delta((lab, new)))
                axes.append(new)
            else:
                seen.add(lab)
                axes.append(lab)
        others = [f for j, f in enumerate(node.factors) if j != k]
        labels = out + tuple(axes)
        return product(node.coeff, [cot, *others, *deltas], labels, node.mean_over), labels, copies
    labels = out + child.labels
    if isinstance(node, Sum):
        return product(node.terms[k][0], [cot], labels), labels, {}
    if isinstance(node, Where):  # the cotangent times the mask; none for the condition
        if k < 2:
            return None
        one, zero = (Const(1.0), Const(0.0)) if k == 2 else (Const(0.0), Const(1.0))
        mask = select(node.test, node.left, node.right, one, zero, node.half)
        return product(1.0, [cot, mask], labels), labels, {}
    y = Leaf(stmt.target, node.labels, stmt.pos)
    if isinstance(node, Map):
        # a registered function's derivative is its own registration's
        rule = getattr(node.func, "operations", None) or DERIVATIVES.get(node.func)
        if rule is None:
            raise DerivativeError(
                f"line {stmt.pos.line}: {node.func} has a first derivative but no rule for its"
                " second and higher ones (tensorchain.calculus.vjp.DERIVATIVES has no entry"
                " for it); grad and jacobian work, hessian and higher derivatives need the entry"
            )
        found = rule(child, y, node.param, node.labels)
        if found is None:
            return None
        coeff, factors = found
        return product(coeff, [cot, *factors], labels), labels, {}
    if isinstance(node, Solve) or ALONG[node.func].matrix:
        return _matrix_vjp(stmt, k, cot, out, taken)
    assert isinstance(node, Along)
    rest = out + tuple(lab for lab in child.labels if lab not in node.axes)
    if node.func == "softmax":  # y (g − Σ_A g y)
        inner = product(1.0, [cot, y], rest)
        vjp = product(1.0, [y, Sum(((1.0, cot), (-1.0, inner)), labels)], labels)
    elif node.func == "log_softmax":  # g − exp(y) Σ_A g
        total = product(1.0, [Map("exp", y), product(1.0, [cot], rest)], labels)
        vjp = Sum(((1.0, cot), (-1.0, total)), labels)
    elif node.func == "logsumexp":  # g exp(x − y)
        shifted = Sum(((1.0, child), (-1.0, y)), child.labels)
        vjp = product(1.0, [cot, Map("exp", shifted)], labels)
    elif node.func in ("max", "min"):  # g times the share of the extreme entries
        share = Along(f"{node.func}_share", child, node.axes, child.labels, node.names)
        vjp = product(1.0, [cot, share], labels)
    else:  # the share itself is piecewise constant
        return None
    return vjp, labels, {}


def _matrix_vjp(stmt: Lowered, k: int, cot: Node, out: tuple[str, ...], taken: set[str]):
    """The VJPs of the matrix functions, written with matrix functions and
    products (tensorchain.calculus.matrix_rules has the same derivatives as local
    Jacobians): Ȳ ↦ −Yᵀ Ȳ Yᵀ for the inverse, l̄ X⁻ᵀ for logdet (times det
    for det), L⁻ᵀ Φ(Lᵀ L̄) L⁻¹ symmetrised for the Cholesky factor, and for
    x = A⁻¹ b, b̄ = A⁻ᵀ x̄ (a solve with the matrix read transposed) and
    Ā = −b̄ xᵀ."""
    node = stmt.root
    pos = stmt.pos
    y = Leaf(stmt.target, node.labels, pos)
    if isinstance(node, Solve):
        bbar = Solve(node.matrix, cot, node.col, node.row, node.origin)  # A⁻ᵀ x̄
        if k == 1:
            return bbar, out + node.rhs.labels, {}
        labels = out + node.matrix.labels
        return product(-1.0, [bbar, y], labels), labels, {}
    child = node.arg
    row, col = node.axes
    labels = out + child.labels

    def on(mapping: dict[str, str]) -> tuple[str, ...]:
        return tuple(mapping.get(lab, lab) for lab in child.labels)

    def inverse(arg: Node, axes: tuple[str, str]) -> Node:  # messages name the user's call
        return Along("inv", arg, axes, arg.labels, (), node.origin)

    if node.func == "tril_half":  # linear and self-adjoint
        return Along("tril_half", cot, (row, col), cot.labels, ()), labels, {}
    if node.func in ("det", "logdet"):  # X⁻ᵀ: the inverse of X read transposed
        transposed = inverse(relabel(child, {row: col, col: row}), (col, row))
        factors = [cot, y, transposed] if node.func == "det" else [cot, transposed]
        return product(1.0, factors, labels), labels, {}
    p, q = fresh_label(row, taken), fresh_label(col, taken)
    copies = {p: row, q: col}
    if node.func == "inv":  # −Σ Y[p, r] Ȳ[p, q] Y[c, q]
        factors = [
            relabel(cot, {row: p, col: q}),
            Leaf(stmt.target, on({row: p, col: row}), pos),
            Leaf(stmt.target, on({row: col, col: q}), pos),
        ]
        return product(-1.0, factors, labels), labels, copies
    assert node.func == "cholesky"
    i = fresh_label(row, taken)
    copies[i] = row
    inner = out + on({row: p, col: q})  # Lᵀ L̄ [p, q]
    lt_lbar = product(
        1.0, [Leaf(stmt.target, on({row: i, col: p}), pos), relabel(cot, {row: i, col: q})], inner
    )
    phi = Along("tril_half", lt_lbar, (p, q), inner, ())
    terms = []
    for a, b in ((row, col), (col, row)):  # S and Sᵀ: L⁻ᵀ Φ L⁻¹ and its transpose
        left = inverse(Leaf(stmt.target, on({row: p, col: a}), pos), (p, a))
        right = inverse(Leaf(stmt.target, on({row: q, col: b}), pos), (q, b))
        terms.append((0.5, product(1.0, [left, phi, right], labels)))
    return Sum(tuple(terms), labels), labels, copies
