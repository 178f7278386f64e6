"""Independent checks: central finite differences, a comparison helper, and
an assertion for your own gradient code in your own test suite.

These are the references tests use besides :func:`tensorchain.reshape_method`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .errors import ValuesError
from .language.domains import room
from .language.gather import cast_values, refuse_positions
from .network import Network


def finite_differences(
    net: Network, of: str, wrt: str, values: Mapping[str, np.ndarray], eps: float = 1e-6
) -> np.ndarray:
    """d of / d wrt by central differences, shape ``of.shape + wrt.shape``.

    ``wrt`` must be an input or a param. A step never leaves the domain
    ``wrt``'s declaration gives (``param s[n] positive``): it is at most a
    thousandth of the distance to the boundary (a function such as ``log``
    changes on that scale there), and an entry on (or next to) the boundary of
    a closed domain is differenced on the side it can move to (second order,
    ``(−3 f(x) + 4 f(x + h) − f(x + 2h)) / 2h``). One-hot values cannot move:
    differences by them are a :class:`ValuesError`. Example:
        >>> import tensorchain as tc
        >>> net = tc.parse("dim n = 2\\ninput x[n]\\nf = sum(x ^ 3)")
        >>> finite_differences(net, "f", "x", {"x": np.array([1.0, 2.0])}).round(6)
        array([ 3., 12.])
    """
    refuse_positions(net, [wrt], "finite differences")
    base = {k: np.array(v) for k, v in cast_values(net, values, float).items()}
    point = base[wrt]
    f0 = np.asarray(net.evaluate(base)[of])  # the values are checked here, once
    result = np.zeros(f0.shape + point.shape)
    free = room(net.info(wrt).domain, point)
    down, up = (np.full(point.shape, np.inf),) * 2 if free is None else (free.down, free.up)
    if point.size and not np.maximum(down, up).any():
        raise ValuesError(
            f"finite differences by {wrt}: it is declared {net.info(wrt).domain}, so no"
            " entry can move by a step; compare its derivative with the reshape method"
        )

    def at(idx: tuple[int, ...], step: float) -> np.ndarray:
        moved = point.copy()
        moved[idx] += step  # inside the domain, but not checked (a sum moves off 1)
        return net.evaluate({**base, wrt: moved}, check_finite=False)[of]

    for idx in np.ndindex(*point.shape):
        h = min(eps, down[idx] / 1000, up[idx] / 1000)  # a relative step near the boundary
        if h > 0 and not (free is not None and free.closed and h < eps / 16):
            result[(..., *idx)] = (at(idx, h) - at(idx, -h)) / (2 * h)
        else:  # on (or next to) the boundary of a closed domain: one side
            side = 1.0 if up[idx] >= down[idx] else -1.0
            h = min(eps, max(down[idx], up[idx]) / 4)
            diff = -3 * f0 + 4 * at(idx, side * h) - at(idx, 2 * side * h)
            result[(..., *idx)] = diff / (2 * side * h)
    return result


def max_relative_error(actual: np.ndarray, reference: np.ndarray) -> float:
    """``max |actual - reference| / max(1, max |reference|)``."""
    actual, reference = np.asarray(actual), np.asarray(reference)
    if actual.shape != reference.shape:
        raise AssertionError(f"shapes differ: {actual.shape} vs {reference.shape}")
    scale = max(1.0, float(np.max(np.abs(reference), initial=0.0)))
    return float(np.max(np.abs(actual - reference), initial=0.0)) / scale


def assert_gradient_close(
    actual: Any,
    net: Network,
    of: str,
    wrt: str | Sequence[str] | None = None,
    values: Mapping[str, Any] | None = None,
    **options: Any,
) -> None:
    """Raise ``AssertionError`` unless your gradients agree with the exact ones.

    ``actual`` is your gradient function (called as :func:`tc.check_gradient`
    calls it, on drawn sizes and values, or on ``values``) or the gradients
    themselves (a dict by name, a sequence in ``wrt`` order, or one array),
    computed at ``values``. The message names the entries that differ and
    what the difference is consistent with; ``options`` go to
    :func:`tc.check_gradient` (``dtype``, ``library``, ``dims``, ``rtol``, ...).
    Example:
        >>> import numpy as np, tensorchain as tc
        >>> net = tc.parse("dim n = 3\\ninput x[n]\\nparam w[n]\\nf = sum(w * x) ^ 2")
        >>> assert_gradient_close(lambda v: {"w": 2 * np.sum(v["w"] * v["x"]) * v["x"]}, net, "f")
    """
    __tracebackhide__ = True  # pytest shows the caller's line
    from .verification.check_gradient import check_gradient

    if callable(actual):
        fn = actual
    else:
        if values is None:
            raise TypeError(
                "assert_gradient_close: give the values your gradients were computed at"
                " (values=...), or pass your gradient function instead of its result"
            )
        fn = lambda _values: actual  # noqa: E731
    result = check_gradient(fn, net, of, wrt, values=values, **options)
    if not result.ok:
        raise AssertionError(str(result))
