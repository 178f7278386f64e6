"""A pairwise contraction with batch indices as one stacked matrix product.

``einsum('bhtk,bhuk->bhtu')`` (attention's scores, and every product of its
backward pass) keeps indices that both operands carry (the batch ``b, h``)
and sums others (``k``), so it is no single matrix product, and opt_einsum
gives it to ``np.einsum``, whose loops do not use BLAS: at 8 × 4 heads of
64 × 32 × 64 it runs 10–20 × slower than ``np.matmul`` of the stacked
matrices, which calls BLAS once per batch entry. :func:`batched_matmul`
writes such a step as ``matmul`` of the operands transposed to
``[batch, free, summed]`` and ``[batch, summed, free]``.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import numpy as np


def batched_matmul(
    terms: Sequence[str], out: str, size: dict[str, int]
) -> Callable[[np.ndarray, np.ndarray], np.ndarray] | None:
    """``einsum(a,b->out)`` as one ``np.matmul`` of stacked matrices, or None
    when the step is not a batched product (no index kept by both operands,
    none summed by both, an index repeated or summed over one operand only).
    The function has a ``source`` attribute that writes it as numpy source."""
    if len(terms) != 2:
        return None
    a, b = terms
    if len(set(a)) != len(a) or len(set(b)) != len(b):
        return None
    batch = [c for c in out if c in a and c in b]
    summed = [c for c in a if c in b and c not in out]
    left = [c for c in out if c in a and c not in b]
    right = [c for c in out if c in b and c not in a]
    if not batch or not summed:
        return None
    if len(batch) + len(left) + len(summed) != len(a):
        return None  # an index of a summed over a alone
    if len(batch) + len(right) + len(summed) != len(b):
        return None
    perm_a = [a.index(c) for c in batch + left + summed]
    perm_b = [b.index(c) for c in batch + summed + right]
    nb, m, k, n = (math.prod(size[c] for c in g) for g in (batch, left, summed, right))
    stacked = [size[c] for c in batch + left + right]
    to_out = [(batch + left + right).index(c) for c in out]
    identity = list(range(len(out)))

    def run(x: np.ndarray, y: np.ndarray) -> np.ndarray:
        x2 = x.transpose(perm_a).reshape(nb, m, k)
        y2 = y.transpose(perm_b).reshape(nb, k, n)
        result = np.matmul(x2, y2).reshape(stacked)
        return result if to_out == identity else result.transpose(to_out)

    def source(x: str, y: str) -> str:
        text = (
            f"np.matmul({x}.transpose({tuple(perm_a)}).reshape({nb}, {m}, {k}),"
            f" {y}.transpose({tuple(perm_b)}).reshape({nb}, {k}, {n})).reshape({tuple(stacked)})"
        )
        return text if to_out == identity else f"{text}.transpose({tuple(to_out)})"

    run.source = source  # type: ignore[attr-defined]
    return run
