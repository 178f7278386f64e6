"""Independent checks: central finite differences and a comparison helper.

These are the references tests use besides :func:`tensorchain.reshape_method`.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

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
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
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
