"""Central differences with a step per entry, Richardson extrapolation, an
error estimate and kink detection: the finite-difference reference of
:func:`tensorchain.verification.verify.verify`.

For each entry ``x_j`` differenced, with a step ``h`` (a power of two near
``1e-3 · max(1, |x_j|)``, so that ``x_j ± h`` is exact):

* ``D(h) = (f(x + h e_j) − f(x − h e_j)) / 2h`` at ``h``, ``h/2`` and ``h/4``;
* Richardson: ``R(h) = (4 D(h/2) − D(h)) / 3`` cancels the ``h²`` term of the
  error; the result is ``R(h/2)`` and its error is estimated as
  ``|R(h/2) − R(h)|`` plus the rounding error of the differences;
* a kink (``relu`` or ``abs`` at 0, a tie of ``max``) within the step makes
  the second difference ``f(x + h) − 2 f(x) + f(x − h)`` shrink like ``h``
  instead of ``h²``: divided by the step it is the jump of the slope, the
  same at ``h``, ``h/2`` and ``h/4`` (where ``f`` is smooth it halves with
  each step). An entry whose three apparent jumps agree within a factor 4/3
  and exceed the tolerance is marked as a kink;
* an entry whose estimated error is still above a tenth of the tolerance is
  tried again with a step 16 times smaller (the step is chosen per entry).

A step never leaves the values' domain (:mod:`tensorchain.language.domains`): given
each entry's distance to the boundary below and above (``room``), the step
is at most half the nearer one (a relative step for ``positive`` values near
0, where a function such as ``log`` changes on the scale of ``x``). An entry
on the boundary of a closed domain (``nonnegative`` at 0, a probability of 0
or 1), or closer to it than a sixteenth of the step, is differenced on the
side it can move to, ``D(h) = (f(x ± h) − f(x)) / ±h``, with Richardson's
``2 D(h/2) − D(h)`` cancelling the ``h`` term. An entry next to the
boundary but inside is differenced centrally too, with a step within its
room; where both estimate themselves accurate but disagree, the error is
their disagreement (a one-sided step far outside the function's scale, log
at 1e-12, looks converged and is no derivative). An entry that cannot move
at all (one-hot values, a subnormal distance to the boundary) is not
differenced.

Only forward evaluations are used.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import partial

import numpy as np

from ..language.domains import Room

EPS = float(np.finfo(np.float64).eps)
REL_STEP = 1e-3
KINK_SPREAD = 4 / 3  # a kink's apparent jumps agree this well at the three steps


@dataclass
class Differences:
    """Central differences of ``f`` by ``x``: arrays of shape ``out.shape + x.shape``.

    ``value`` is the Richardson-extrapolated derivative, ``error`` its
    estimated absolute error, ``kink`` marks the entries with a kink within
    the step; ``checked`` (shape ``x.shape``) the entries of ``x`` differenced
    (the rest of ``value`` is NaN)."""

    value: np.ndarray
    error: np.ndarray
    kink: np.ndarray
    checked: np.ndarray
    evaluations: int


def _step(x: float, room: float = math.inf) -> float:
    """A power of two near ``REL_STEP · max(1, |x|)``, at most ``room / 2``:
    ``x ± h`` and its halves are exact; 0 where ``room / 2`` is (a
    subnormal distance to the boundary leaves no step)."""
    bound = min(REL_STEP * max(1.0, abs(x)), room / 2)
    return 2.0 ** math.floor(math.log2(bound)) if bound > 0 else 0.0


def central_differences(
    f: Callable[[np.ndarray], np.ndarray],
    x: np.ndarray,
    entries: Sequence[int] | None = None,
    atol: float = 1e-6,
    room: Room | None = None,
) -> Differences:
    """``df/dx`` by central differences at ``x`` (float64) for the flat
    ``entries`` of ``x`` (default: all); ``atol`` is the absolute tolerance
    the caller compares with (it decides when a step is small enough and how
    large a jump of the slope counts as a kink); ``room``: how far each entry
    may move down and up (:func:`tensorchain.language.domains.room`; default: anywhere)."""
    x = np.array(x, dtype=np.float64)
    f0 = np.asarray(f(x), dtype=np.float64)
    out_shape = f0.shape
    n = x.size
    entries = range(n) if entries is None else entries
    value = np.full((*out_shape, n), np.nan)
    error = np.full((*out_shape, n), np.inf)
    kink = np.zeros((*out_shape, n), dtype=bool)
    checked = np.zeros(n, dtype=bool)
    flat = x.reshape(-1)
    evaluations = 1

    def at(j: int, h: float) -> np.ndarray:
        moved = flat.copy()
        moved[j] += h
        return np.asarray(f(moved.reshape(x.shape)), dtype=np.float64)

    room = room or Room(np.full(x.shape, np.inf), np.full(x.shape, np.inf))
    down, up = room.down.reshape(-1), room.up.reshape(-1)
    for j in entries:
        near, far = sorted((down[j], up[j]))
        h = _step(flat[j])
        one_side = None
        if near <= 0 or (room.closed and near < h / 16 and far >= 2 * h):
            h = _step(flat[j], far)
            if h > 0:  # on (or next to) the boundary: one side
                side = 1.0 if up[j] >= down[j] else -1.0
                one_side = _one_sided(partial(at, j), side, h, f0, atol)
                value[..., j], error[..., j], count = one_side
                evaluations += count
                checked[j] = True
            if near <= 0 or one_side is None or _step(flat[j], near) == 0:
                continue
            # Next to the boundary, inside: central differences too, with a
            # step within the room (a function such as log or sqrt changes on
            # the scale of the distance to 0, where one side's larger step is
            # no derivative, whatever its error estimate says).
        checked[j] = True
        h = _step(flat[j], near)
        if h == 0:  # no step fits (a subnormal distance to the boundary)
            checked[j] = False
            continue
        for _attempt in range(2):
            steps = (h, h / 2, h / 4)
            plus = [at(j, s) for s in steps]
            minus = [at(j, -s) for s in steps]
            evaluations += 6
            d = [(p - m) / (2 * s) for p, m, s in zip(plus, minus, steps, strict=True)]
            r1, r2 = (4 * d[1] - d[0]) / 3, (4 * d[2] - d[1]) / 3
            size = max(
                np.max(np.abs(f0), initial=0.0), *(np.max(np.abs(p), initial=0.0) for p in plus)
            )
            rounding = 8 * EPS * size / (h / 4)
            est = np.abs(r2 - r1) + rounding
            # the apparent jump of the slope, |f(x+h) − 2 f(x) + f(x−h)| / h, at
            # each step: h·|f''| where f is smooth, the jump itself at a kink
            jumps = [
                np.abs(p + m - 2 * f0) / st for p, m, st in zip(plus, minus, steps, strict=True)
            ]
            low, high = np.minimum.reduce(jumps), np.maximum.reduce(jumps)
            broken = (jumps[2] > max(atol, 64 * rounding)) & (high <= KINK_SPREAD * low)
            value[..., j], error[..., j], kink[..., j] = r2, est, broken
            if np.all((est <= atol / 10) | broken):
                break
            h /= 16
        if one_side is not None:
            value[..., j], error[..., j] = _either(one_side, (r2, est), atol)
    shape = (*out_shape, *x.shape)
    return Differences(
        value.reshape(shape),
        error.reshape(shape),
        kink.reshape(shape),
        checked.reshape(x.shape),
        evaluations,
    )


def _either(
    one: tuple[np.ndarray, np.ndarray, int], two: tuple[np.ndarray, np.ndarray], atol: float
) -> tuple[np.ndarray, np.ndarray]:
    """One side's and central differences of an entry next to the boundary,
    combined per output: where only one estimates itself within ``atol / 10``,
    that one; where both do, the one with the smaller estimate, its error
    raised to their disagreement (an estimate can be wrong where the step
    is far outside the function's scale, so two that disagree are both
    doubted); where neither does, the one with the smaller estimate."""
    v1, e1, _ = one
    v2, e2 = two
    good1, good2 = e1 <= atol / 10, e2 <= atol / 10
    first = np.where(good1 == good2, e1 <= e2, good1)
    value = np.where(first, v1, v2)
    error = np.where(first, e1, e2)
    both = good1 & good2
    with np.errstate(invalid="ignore"):
        disagree = np.where(both, np.abs(v1 - v2), 0.0)
    return value, np.maximum(error, disagree)


def _one_sided(
    at: Callable[[float], np.ndarray], side: float, h: float, f0: np.ndarray, atol: float
) -> tuple[np.ndarray, np.ndarray, int]:
    """Differences on one ``side`` (+1 or −1) of an entry on the domain's
    boundary: ``D(h) = (f(x + side·h) − f(x)) / (side·h)`` at ``h``, ``h/2``,
    ``h/4``; ``R(h) = 2 D(h/2) − D(h)`` cancels the ``h`` term. Returns
    ``R(h/2)``, its estimated error ``|R(h/2) − R(h)|`` plus rounding, and
    the number of evaluations."""
    count = 0
    for _attempt in range(2):
        steps = (h, h / 2, h / 4)
        moved = [at(side * st) for st in steps]
        count += 3
        d = [(m - f0) / (side * st) for m, st in zip(moved, steps, strict=True)]
        r1, r2 = 2 * d[1] - d[0], 2 * d[2] - d[1]
        size = max(
            np.max(np.abs(f0), initial=0.0), *(np.max(np.abs(m), initial=0.0) for m in moved)
        )
        est = np.abs(r2 - r1) + 8 * EPS * size / (h / 4)
        if np.all(est <= atol / 10):
            break
        h /= 16
    return r2, est, count
