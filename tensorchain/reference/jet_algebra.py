"""The dense jets of the reference and the rules that combine them.

A jet maps each subset ``S`` of the derivative variables ``w_1 … w_k`` to
the dense mixed partial ``∂_S T`` of a tensor (axes: ``T``'s labels, then
``w_i``'s for ``i`` in ``S``); :class:`Jets` holds the subsets and writes
each combination as one ``np.einsum`` over labels. The rules, from the
mathematics only: linearity (:func:`sum_jets`, :func:`broadcast`), the
general Leibniz rule for a product (:func:`product`), Faà di Bruno's formula
for an elementwise function (:func:`compose`, with the reference's own table
of derivatives, :mod:`tensorchain.reference.functions`) and a selection as
``w a + (1 − w) b`` with its weight held constant (:func:`select`). Used by
:mod:`tensorchain.reference.jets`, :mod:`tensorchain.reference.matrix_jets` and
the reshape method.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Iterator, Mapping, Sequence

import numpy as np

from ..errors import PlanError
from ..language.operations import Product, Sum, Where
from .functions import derivative, selection_weight, value

Jet = dict[frozenset[int], np.ndarray]


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Every set partition of ``items``."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for j in range(len(part)):
            yield [*part[:j], [first, *part[j]], *part[j + 1 :]]
        yield [[first], *part]


class Jets:
    def __init__(self, wrt: Sequence[str], shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.wrt = list(wrt)
        self.k = len(wrt)
        self.shapes = shapes  # of each w_i
        self.subsets = [
            frozenset(c)
            for r in range(self.k + 1)
            for c in itertools.combinations(range(self.k), r)
        ]

    def d_labels(self, subset: frozenset[int]) -> tuple[str, ...]:
        return tuple(f"∂{i}" for i in sorted(subset))

    def d_shape(self, subset: frozenset[int]) -> tuple[int, ...]:
        return tuple(s for i in sorted(subset) for s in self.shapes[self.wrt[i]])

    def einsum(self, operands: list[tuple[np.ndarray, tuple[str, ...]]], out: tuple[str, ...]):
        """``np.einsum`` over labels; a derivative label ``∂i`` stands for all of
        ``w_i``'s axes (flattened here, unflattened in the result)."""
        letters: dict[str, str] = {}
        arrays = []
        for a, labels in operands:
            arrays.append(self._flat(a, labels))
        for _, labels in (*operands, (None, out)):
            for lab in labels:
                if lab not in letters:
                    if len(letters) == len(string.ascii_letters):
                        raise PlanError(
                            "the reference writes each operation as one np.einsum with at most"
                            " 52 distinct indices; this network needs more"
                        )
                    letters[lab] = string.ascii_letters[len(letters)]
        lhs = ",".join("".join(letters[lab] for lab in labels) for _, labels in operands)
        rhs = "".join(letters[lab] for lab in out)
        result = np.einsum(f"{lhs}->{rhs}", *arrays, optimize=True)
        return self._unflat(result, out)

    def _flat(self, a: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
        shape = []
        at = 0
        for lab in labels:
            if lab.startswith("∂"):
                n = len(self.shapes[self.wrt[int(lab[1:])]])
                shape.append(math.prod(a.shape[at : at + n]))
                at += n
            else:
                shape.append(a.shape[at])
                at += 1
        return a.reshape(shape)

    def _unflat(self, a: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
        shape: list[int] = []
        for lab, n in zip(labels, a.shape, strict=True):
            if lab.startswith("∂"):
                shape.extend(self.shapes[self.wrt[int(lab[1:])]])
            else:
                shape.append(n)
        return a.reshape(shape)


def product(node: Product, factors: list[Jet], sizes, jets: Jets) -> Jet:
    """Leibniz: ``∂_S`` of a product sums, over the ways to share ``S`` among
    the factors (their jets ``factors``), the product of their parts."""
    scale = node.coeff / math.prod(sizes[m] for m in node.mean_over)
    present = {lab for f in node.factors for lab in f.labels}
    inner = tuple(lab for lab in node.labels if lab in present)
    if not factors:  # a constant, broadcast
        empty = frozenset()
        return {empty: broadcast(np.asarray(scale), (), node.labels, empty, sizes, jets)}
    out: Jet = {}
    for subset in jets.subsets:
        total = None
        members = sorted(subset)
        # Leibniz: each element of the subset goes to one factor.
        for owners in itertools.product(range(len(factors)), repeat=len(members)):
            parts = [
                frozenset(i for i, o in zip(members, owners, strict=True) if o == j)
                for j in range(len(factors))
            ]
            if any(p not in jet for p, jet in zip(parts, factors, strict=True)):
                continue
            operands = [
                (jet[p], (*f.labels, *jets.d_labels(p)))
                for jet, p, f in zip(factors, parts, node.factors, strict=True)
            ]
            term = jets.einsum(operands, (*inner, *jets.d_labels(subset)))
            total = term if total is None else total + term
        if total is not None:
            out[subset] = broadcast(scale * total, inner, node.labels, subset, sizes, jets)
    return out


def select(node: Where, kids: list[Jet], sizes, jets: Jets) -> Jet:
    """A selection is ``w a + (1 − w) b`` with the weight ``w`` held constant
    (its value computed with ``where``, so that a NaN or infinity not chosen
    stays out of it)."""
    empty = frozenset()
    left, right, a, b = (
        (broadcast(jet[s], k.labels, node.labels, s, sizes, jets) if s in jet else None)
        for jet, k, s in zip(
            kids, (node.left, node.right, node.a, node.b), [empty] * 4, strict=True
        )
    )
    w = selection_weight(node.test, node.half, left, right)
    out: Jet = {empty: np.where(w == 1.0, a, np.where(w == 0.0, b, 0.5 * (a + b)))}
    for subset in jets.subsets[1:]:
        total = None
        for jet, kid, weight in ((kids[2], node.a, w), (kids[3], node.b, 1.0 - w)):
            if subset in jet:
                d = broadcast(jet[subset], kid.labels, node.labels, subset, sizes, jets)
                term = np.reshape(weight, weight.shape + (1,) * (d.ndim - weight.ndim)) * d
                total = term if total is None else total + term
        if total is not None:
            out[subset] = total
    return out


def broadcast(a, labels, out_labels, subset, sizes, jets: Jets) -> np.ndarray:
    """``a`` (axes ``labels`` then ``subset``'s) transposed and broadcast to ``out_labels``."""
    d = jets.d_shape(subset)
    order = [labels.index(lab) for lab in out_labels if lab in labels]
    a = np.transpose(a, [*order, *range(len(labels), a.ndim)])
    view = [sizes[lab] if lab in labels else 1 for lab in out_labels]
    full = (*(sizes[lab] for lab in out_labels), *d)
    return np.broadcast_to(np.reshape(a, (*view, *d)), full)


def sum_jets(node: Sum, terms: list[Jet], sizes, jets: Jets) -> Jet:
    out: Jet = {}
    for (c, t), jet in zip(node.terms, terms, strict=True):
        for subset, a in jet.items():
            b = c * broadcast(a, t.labels, node.labels, subset, sizes, jets)
            out[subset] = out[subset] + b if subset in out else b
    return out


def compose(func: str, g: Jet, p: float, jets: Jets) -> Jet:
    """Faà di Bruno: ∂_S f(g) = Σ over partitions π of S of f^(|π|)(g) Π_B ∂_B g."""
    x = g[frozenset()]
    rank = x.ndim
    out: Jet = {frozenset(): value(func, x, p)}
    orders: dict[int, np.ndarray | None] = {}
    for subset in jets.subsets[1:]:
        total = None
        for part in _partitions(sorted(subset)):
            blocks = [frozenset(b) for b in part]
            if any(b not in g for b in blocks):
                continue
            r = len(blocks)
            if r not in orders:
                orders[r] = derivative(func, r, x, p)
            if orders[r] is None:
                continue
            axes = tuple(f"x{j}" for j in range(rank))
            operands = [(orders[r], axes)] + [(g[b], (*axes, *jets.d_labels(b))) for b in blocks]
            term = jets.einsum(operands, (*axes, *jets.d_labels(subset)))
            total = term if total is None else total + term
        if total is not None:
            out[subset] = total
    return out
