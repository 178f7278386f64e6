"""The array code of the elementwise functions: their values and derivatives.

What the entries of :data:`tensorchain.functions.registry.ELEMENTWISE` call:
``*_value(x, p)`` and ``*_derivative(x, y, p)`` in ``x``'s library (numpy's
ufuncs for numpy values, the array API's functions for another library's),
and ``*_numpy`` forms for numpy values only, which compiled programs call
(:data:`~tensorchain.functions.registry.NUMPY_VALUES`). ``erf`` and the
normal distribution function Φ come from :mod:`tensorchain.functions.special`
(W. J. Cody's rational approximations). Kinks use the subgradient 0 (``relu``
and ``abs`` at 0), as numpy-based frameworks do.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from ..arrays.backend import namespace
from ..arrays.quiet import loud, quiet
from .special import erf, gelu_cdf, normal_cdf

Array = np.ndarray


def _exp_in_place(t: np.ndarray) -> None:
    """``t = e^t`` in place, an overflow to inf not warned (σ is 0 there to
    within 2.3e-308), through :func:`tensorchain.arrays.quiet.quiet`: a fraction of
    what entering ``np.errstate`` costs."""
    token = quiet()
    try:
        np.exp(t, out=t)
    finally:
        loud(token)


def sigmoid(x: np.ndarray) -> np.ndarray:
    """1 / (1 + e^-x), exact at ±inf (0 and 1): e^-x may overflow to inf,
    where σ is 0 to within 2.3e-308, so the overflow is not a warning."""
    with np.errstate(over="ignore"):
        return 1.0 / (1.0 + np.exp(-x))


def sigmoid_value(x: Array, p: float = 0.0) -> Array:
    # 1/(1 + e^-x) in place: the fastest form measured here. No clipping:
    # σ(-inf) = 1/(1 + inf) = 0 and σ(inf) = 1, the limits.
    if not isinstance(x, np.ndarray | np.generic | float | int | complex):
        xp = namespace(x)
        return 1.0 / (1.0 + xp.exp(-x))
    if not isinstance(x, np.ndarray) or x.ndim == 0 or x.dtype.kind == "c":
        return sigmoid(x)
    t = np.negative(x)
    _exp_in_place(t)
    t += 1.0
    return np.reciprocal(t, out=t)


def sigmoid_numpy(x: Array) -> Array:
    """:func:`sigmoid_value` on numpy values (no check for another library), for
    compiled programs, which run with numpy's overflow warnings off
    (:mod:`tensorchain.arrays.quiet`)."""
    if type(x) is not np.ndarray or x.ndim == 0 or x.dtype.kind == "c":
        return sigmoid(x)
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1.0
    return np.reciprocal(t, out=t)


def sigmoid_derivative(x: Array, y: Array, p: float) -> Array:
    if not isinstance(y, np.ndarray):
        return (1.0 - y) * y
    d = np.subtract(1.0, y)
    d *= y
    return d


def sigmoid_derivative_numpy(y: Array) -> Array:
    d = np.subtract(1.0, y)
    d *= y  # a new number where y is one
    return d


def tanh_derivative_numpy(y: Array) -> Array:
    d = np.multiply(y, y)
    if type(d) is not np.ndarray:
        return 1.0 - d
    return np.subtract(1.0, d, out=d)


def tanh_derivative(x: Array, y: Array, p: float) -> Array:
    if not isinstance(y, np.ndarray):
        return 1.0 - y * y
    d = np.multiply(y, y)
    return np.subtract(1.0, d, out=d)


def pow_value(x: Array, p: float) -> Array:
    return x * x if p == 2 else x**p


def pow_derivative(x: Array, y: Array, p: float) -> Array:
    return 2.0 * x if p == 2 else p * x ** (p - 1)


def ufunc(name: str) -> Callable[[Array, float], Array]:
    """``name(x)`` in ``x``'s library (numpy's ufunc for numpy arrays and numbers)."""
    numpy_fn = getattr(np, name)

    def value(x: Array, p: float = 0.0) -> Array:
        if isinstance(x, np.ndarray | np.generic | float | int | complex):
            return numpy_fn(x)
        return getattr(namespace(x), name)(x)

    value.__name__ = name
    return value


def relu_value(x: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int):
        return np.maximum(x, 0.0)
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


def indicator(x: Array, p: float = 0.0) -> Array:
    """[x > 0] in ``x``'s dtype."""
    if isinstance(x, np.ndarray | np.generic):  # a 0-d value stays a numpy value
        return (x > 0).astype(x.dtype)
    if isinstance(x, float | int):
        return np.float64(x > 0)
    return namespace(x).astype(x > 0, x.dtype)


def softplus_value(x: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int):
        return np.logaddexp(0.0, x)
    xp = namespace(x)
    return xp.logaddexp(xp.zeros_like(x), x)


def zeros(x: Array, y: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int | complex):
        return np.zeros_like(x)
    return namespace(x).zeros_like(x)


(
    tanh_value,
    exp_value,
    log_value,
    sin_value,
    cos_value,
    sqrt_value,
    abs_value,
    sign_value,
    log1p_value,
    expm1_value,
) = map(ufunc, ("tanh", "exp", "log", "sin", "cos", "sqrt", "abs", "sign", "log1p", "expm1"))

_NUMPY = np.ndarray | np.generic | float | int


def special(fn: Callable[..., Array]) -> Callable[[Array, float], Array]:
    """``fn(x)`` of :mod:`tensorchain.functions.special`, in ``x``'s library."""

    def value(x: Array, p: float = 0.0) -> Array:
        return fn(x) if isinstance(x, _NUMPY) else fn(x, namespace(x))

    value.__name__ = fn.__name__
    return value


erf_value, normal_cdf_value = special(erf), special(normal_cdf)
TWO_OVER_SQRT_PI = 1.1283791670955126  # 2/√π
ONE_OVER_SQRT_2PI = 0.3989422804014327  # 1/√(2π)


def gaussian(x: Array, scale: float, width: float) -> Array:
    """``scale · exp(−width · x²)`` in ``x``'s library."""
    return scale * exp_value(-width * (x * x))


def gelu_value(x: Array, p: float = 0.0) -> Array:
    return x * normal_cdf_value(x)


def gelu_derivative(x: Array, y: Array, p: float) -> Array:  # Φ(x) + x φ(x)
    return _cdf_of_gelu(x, y) + x * gaussian(x, ONE_OVER_SQRT_2PI, 0.5)


def _cdf_of_gelu(x: Array, y: Array) -> Array:
    """Φ(x) from gelu's value ``y = x Φ(x)`` (:func:`~tensorchain.functions.special.gelu_cdf`)
    for numpy arrays; other libraries evaluate Φ."""
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        return gelu_cdf(x, y)
    return normal_cdf_value(x)


def logsigmoid_value(x: Array, p: float = 0.0) -> Array:  # −softplus(−x), stable
    return -softplus_value(-x, p)


def silu_value(x: Array, p: float = 0.0) -> Array:
    return x * sigmoid_value(x)


def silu_derivative(x: Array, y: Array, p: float) -> Array:
    # σ + x σ (1 − σ) = σ(x) (1 + x σ(−x)): with 1 − σ(x) written σ(−x), nothing
    # cancels (σ (1 − y) + y is 1 − x + x = 0 at x ≥ 1e16, in float32 at 1e8).
    return sigmoid_value(x) * (1.0 + x * sigmoid_value(-x))


def relu_numpy(x: Array) -> Array:
    return np.maximum(x, 0.0)
