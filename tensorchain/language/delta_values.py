"""The Kronecker delta used as a value: ``exp(delta[i, j])``, ``inv(delta[i, j], i, j)``.

``delta[i, j]`` is symbolic wherever it is a factor or a term: a product
renames an index, a sum keeps it as a structured term. Where a function
takes it as its argument it is a constant, the identity matrix, and is
written so when a statement is lowered:

* an elementwise function of a constant made of deltas (or of one-hots
  ``delta[k, ids[s]]``) is refused where it
  is not finite at 0 or 1 (``1 / δ``, ``log δ``: :class:`NotFinite`), since
  the delta is 0 off its diagonal, and so is one not finite at 0 of a
  product with a delta factor (``1 / (δ Y)``); with ``f(0) = 0`` (``δ ^ 2``, ``2 δ``,
  ``sin δ``) it is ``f(1) δ``, still symbolic, else the function of the
  identity matrix as an array (``exp(δ)``);
* ``inv(δ) = cholesky(δ) = δ``, ``det(δ) = 1``, ``logdet(δ) = 0``;
* ``solve(A, δ)`` is ``inv(A)`` (read with the delta's other index) and
  ``solve(δ, b)`` is ``b``;
* any other function of it (``softmax(delta[i, j], j)``) gets the identity
  as an array (:func:`as_value`).
"""

from __future__ import annotations

import itertools
import math

import numpy as np

from ..functions.registry import elementwise
from .operations import (
    Along,
    Const,
    Delta,
    Map,
    Node,
    Origin,
    Product,
    Select,
    Solve,
    Sum,
    relabel,
    walk,
)


class NotFinite(ValueError):
    """A function of a delta is not finite where the delta is 0 or 1:
    ``value`` there, ``at`` the deltas (a :class:`Delta`, or the
    :class:`Select` of a one-hot ``delta[k, ids[s]]``) and their value (0 or 1)."""

    def __init__(self, value: float, at: list[tuple[Delta | Select, int]]) -> None:
        super().__init__(value)
        self.value = value
        self.at = at


def as_value(node: Node) -> Node:
    """``node``, with a bare delta made a product (its value is then the
    identity matrix as an array, which a function can take)."""
    if isinstance(node, Delta):
        return Product(1.0, (node,), node.labels)
    return node


def _key(node: Delta | Select) -> frozenset | tuple:
    """What makes two deltas one: their pair of indices; a one-hot's index too."""
    if isinstance(node, Select):
        return ("select", node.index, node.labels)
    return frozenset(node.labels)


def _pairs(node: Node) -> list[Delta | Select]:
    """The deltas and one-hots of ``node`` (one per pair of indices), if it is
    a constant of them and numbers with nothing summed; else an empty list."""
    found: dict[frozenset | tuple, Delta | Select] = {}
    for n in reversed(walk(node)):  # the last first: in the order written
        if isinstance(n, Delta | Select):
            found.setdefault(_key(n), n)
        elif isinstance(n, Product):
            if n.summed or n.mean_over:
                return []
        elif not isinstance(n, Const | Sum | Map):
            return []
    return list(found.values())


def _value(node: Node, on: dict[frozenset, float]) -> float:
    """The value of a constant of deltas at every entry where each delta is ``on``."""
    if isinstance(node, Const):
        return node.value
    if isinstance(node, Delta | Select):
        return on[_key(node)]
    if isinstance(node, Product):
        return node.coeff * math.prod(_value(f, on) for f in node.factors)
    if isinstance(node, Sum):
        return sum(c * _value(t, on) for c, t in node.terms)
    assert isinstance(node, Map)
    with np.errstate(all="ignore"):  # checked by the caller
        return float(elementwise(node.func).value(np.float64(_value(node.arg, on)), node.param))


def fold_map(func: str, arg: Node, param: float = 0.0) -> Node | None:
    """``func(arg)`` for ``arg`` a constant of one delta with ``f(0) = 0``:
    ``f(1) δ``; ``None`` for any other argument (then computed as an array).
    Raises :class:`NotFinite` where ``f`` of a constant of deltas is not
    finite at a value the deltas take, or ``f(0)`` is not finite and ``arg``
    is a product with a delta factor (``X[i, j] / (delta[i, j] * Y[i, j])``)."""
    fn = elementwise(func).value
    factors = arg.factors if isinstance(arg, Product) and not arg.summed else (arg,)
    zero = next((f for f in factors if isinstance(f, Delta | Select)), None)
    if zero is not None:  # a product with δ as a factor is 0 off the diagonal, whatever else
        with np.errstate(all="ignore"):
            y = float(np.real(fn(np.float64(0.0), param)))
        if not math.isfinite(y):
            raise NotFinite(y, [(zero, 0)])
    deltas = _pairs(arg)
    if not deltas or len(deltas) > 4:
        return None
    keys = [_key(d) for d in deltas]
    out = {}
    for bits in itertools.product((0, 1), repeat=len(deltas)):
        on = dict(zip(keys, map(float, bits), strict=True))
        with np.errstate(all="ignore"):
            y = float(fn(np.float64(_value(arg, on)), param))
        if not math.isfinite(y):
            raise NotFinite(y, list(zip(deltas, bits, strict=True)))
        out[bits] = y
    if any(isinstance(d, Select) for d in deltas):
        return None  # a one-hot's function is computed from its positions
    if len(deltas) > 1 or out[(0,)] != 0.0 or out[(1,)] == 0.0:
        return None  # computed as an array (f(0) ≠ 0 is not a multiple of δ)
    y1 = out[(1,)]
    return deltas[0] if y1 == 1.0 else Product(y1, (deltas[0],), arg.labels)


def matrix_of_delta(func: str, delta: Delta) -> Node | None:
    """``func`` of the identity matrix: ``δ`` for ``inv`` and ``cholesky``,
    ``1`` for ``det``, ``0`` for ``logdet``; ``None`` for others."""
    if func in ("inv", "cholesky"):
        return delta
    if func in ("det", "logdet"):
        return Const(1.0 if func == "det" else 0.0)
    return None


def solve_with_delta(
    matrix: Node, rhs: Node, row: str, col: str, names: tuple[str, ...], origin: Origin
) -> Node | None:
    """``solve(A, b)`` with a bare delta for ``A`` or ``b``: ``b`` with the rows
    renamed the columns for ``A = δ``; ``A⁻¹`` for ``b = δ(row, k)``, the
    inverse read at ``[col, k]`` (an ``inv``, its rows renamed ``col`` and its
    columns ``k``). ``None`` when neither is a bare delta, or ``A`` has batch
    indices (then ``b = δ`` is computed as an array)."""
    if isinstance(matrix, Delta):
        return relabel(rhs, {row: col})
    if not isinstance(rhs, Delta):
        return None
    if set(matrix.labels) != {row, col}:
        return Solve(matrix, as_value(rhs), row, col, origin)
    (k,) = (lab for lab in rhs.labels if lab != row)
    inverse = relabel(matrix, {row: col, col: k})
    return Along("inv", inverse, (col, k), inverse.labels, names, origin)
