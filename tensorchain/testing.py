"""Independent checks: central finite differences, a comparison helper, and
an assertion for your own gradient code in your own test suite.

These are the references tests use besides :func:`tensorchain.reshape_method`.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from .gather import cast_values, refuse_positions
from .network import Network


def finite_differences(
    net: Network, of: str, wrt: str, values: Mapping[str, np.ndarray], eps: float = 1e-6
) -> np.ndarray:
    """d of / d wrt by central differences, shape ``of.shape + wrt.shape``.

    ``wrt`` must be an input or a param. Example:
        >>> import tensorchain as tc
        >>> net = tc.parse("dim n = 2\\ninput x[n]\\nf = sum(x ^ 3)")
        >>> finite_differences(net, "f", "x", {"x": np.array([1.0, 2.0])}).round(6)
        array([ 3., 12.])
    """
    refuse_positions(net, [wrt], "finite differences")
    base = {k: np.array(v) for k, v in cast_values(net, values, float).items()}
    point = base[wrt]
    out_shape = np.shape(net.evaluate(base)[of])
    result = np.zeros(out_shape + point.shape)
    for idx in np.ndindex(*point.shape):
        plus, minus = dict(base), dict(base)
        plus[wrt] = point.copy()
        minus[wrt] = point.copy()
        plus[wrt][idx] += eps
        minus[wrt][idx] -= eps
        diff = net.evaluate(plus)[of] - net.evaluate(minus)[of]
        result[(..., *idx)] = diff / (2 * eps)
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
    from .usercheck import check_gradient

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
