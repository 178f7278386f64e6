"""The reference's own elementwise functions: values and derivatives of every order.

Written from the mathematics, independently of the function registry
(:mod:`tensorchain.functions.registry`) and of :mod:`tensorchain.calculus.differentiate` that
the references check: ``erf`` by the C library's ``math.erf`` one entry at a
time and its derivatives by Hermite polynomials, the sigmoid's by the
polynomial recurrence in σ, and the weight of a selection (``where``,
``maximum``) from its definition. A function a user registered
(:func:`tensorchain.register_function`) has only the user's own derivatives.
Used by the dense jets (:mod:`tensorchain.reference.jets`) and the reshape method.
"""

from __future__ import annotations

import math
import operator

import numpy as np

from ..errors import DerivativeError
from ..language.user_functions import registered

#: The reference's own list of the functions it refuses for complex values (no
#: complex derivative, or no complex value here), kept apart from the registry's
#: ``NOT_HOLOMORPHIC``: tests/test_function_tables.py compares the two.
NOT_HOLOMORPHIC = ("relu", "abs", "softplus", "step", "sign", "erf", "gelu", "normal_cdf")
NOT_HOLOMORPHIC += ("logsigmoid",)


def _polynomial_derivatives(first: list[float], r: int) -> np.polynomial.Polynomial:
    """P_r with f^(r) = P_r(y) for f' = Q(y) (``first`` = Q's coefficients):
    P_1 = Q, P_{r+1} = P_r' · Q."""
    q = np.polynomial.Polynomial(first)
    p = q
    for _ in range(r - 1):
        p = p.deriv() * q
    return p


def _sigmoid(x):
    return 0.5 * (1.0 + np.tanh(0.5 * x))  # exact, no overflow for large |x|


def _erf(x: np.ndarray) -> np.ndarray:
    """erf by the C library's ``math.erf``, one entry at a time (the library's
    own is a vectorised rational approximation, :mod:`tensorchain.functions.special`)."""
    return np.asarray(np.frompyfunc(math.erf, 1, 1)(x), dtype=float)


def _normal_cdf(x: np.ndarray) -> np.ndarray:
    return 0.5 * np.asarray(np.frompyfunc(math.erfc, 1, 1)(-x / math.sqrt(2.0)), dtype=float)


def _normal_cdf_derivative(k: int, x: np.ndarray) -> np.ndarray:
    """Φ^(k)(x) for k ≥ 0: Φ itself, then (−1)^(k−1) He_{k−1}(x) φ(x) with the
    probabilists' Hermite polynomial He (φ' = −x φ)."""
    if k == 0:
        return _normal_cdf(x)
    he = np.polynomial.hermite_e.hermeval(x, [0.0] * (k - 1) + [1.0])
    return (-1.0) ** (k - 1) * he * np.exp(-0.5 * x * x) / math.sqrt(2.0 * math.pi)


def _sigmoid_derivative(k: int, x: np.ndarray) -> np.ndarray:
    """σ^(k)(x) for k ≥ 0."""
    return _sigmoid(x) if k == 0 else _polynomial_derivatives([0.0, 1.0, -1.0], k)(_sigmoid(x))


def derivative(func: str, r: int, x: np.ndarray, p: float = 0.0) -> np.ndarray | None:
    """``f^{(r)}(x)`` for r ≥ 1 (``None`` where it is zero)."""
    if func == "sigmoid":
        return _polynomial_derivatives([0.0, 1.0, -1.0], r)(_sigmoid(x))
    if func == "tanh":
        return _polynomial_derivatives([1.0, 0.0, -1.0], r)(np.tanh(x))
    if func == "exp":
        return np.exp(x)
    if func == "log":
        return (-1.0) ** (r - 1) * math.factorial(r - 1) * x ** (-float(r))
    if func == "softplus":
        return _sigmoid(x) if r == 1 else derivative("sigmoid", r - 1, x)
    if func in ("sin", "cos"):
        shifted = x + r * np.pi / 2
        return np.sin(shifted) if func == "sin" else np.cos(shifted)
    if func in ("sqrt", "square", "reciprocal", "pow"):
        p = {"sqrt": 0.5, "square": 2.0, "reciprocal": -1.0}.get(func, p)
        coeff = math.prod(p - j for j in range(r))
        return None if coeff == 0 else coeff * x ** (p - r)
    if func == "relu":
        return (np.real(x) > 0).astype(np.result_type(x, float)) if r == 1 else None
    if func == "abs":
        return np.sign(x) if r == 1 else None
    if func in ("step", "sign"):
        return None
    if func == "erf":  # (2/√π) (−1)^(r−1) H_{r−1}(x) e^(−x²), physicists' Hermite H
        h = np.polynomial.hermite.hermval(x, [0.0] * (r - 1) + [1.0])
        return 2.0 / math.sqrt(math.pi) * (-1.0) ** (r - 1) * h * np.exp(-x * x)
    if func == "normal_cdf":
        return _normal_cdf_derivative(r, x)
    if func == "normal_pdf":  # φ = Φ'
        return _normal_cdf_derivative(r + 1, x)
    if func == "gelu":  # Leibniz on x Φ(x)
        return x * _normal_cdf_derivative(r, x) + r * _normal_cdf_derivative(r - 1, x)
    if func == "log1p":
        return (-1.0) ** (r - 1) * math.factorial(r - 1) * (1.0 + x) ** (-float(r))
    if func == "expm1":
        return np.exp(x)
    if func == "logsigmoid":  # (log σ)' = 1 − σ
        return 1.0 - _sigmoid(x) if r == 1 else -_sigmoid_derivative(r - 1, x)
    if func == "silu":  # Leibniz on x σ(x)
        return x * _sigmoid_derivative(r, x) + r * _sigmoid_derivative(r - 1, x)
    user = registered(func)
    if user is not None:  # a user's function: its own derivatives are all there is
        return user.derivative(r, x)
    raise DerivativeError(f"the reference has no derivative table for {func!r}")


def value(func: str, x: np.ndarray, p: float = 0.0) -> np.ndarray:
    table = {
        "sigmoid": _sigmoid,
        "tanh": np.tanh,
        "exp": np.exp,
        "log": np.log,
        "softplus": lambda v: np.logaddexp(0.0, v),
        "sin": np.sin,
        "cos": np.cos,
        "sqrt": np.sqrt,
        "square": lambda v: v * v,
        "reciprocal": lambda v: 1.0 / v,
        "pow": lambda v: v**p,
        "relu": lambda v: np.where(np.real(v) > 0, v, 0.0),
        "abs": np.abs,
        "step": lambda v: (np.real(v) > 0).astype(float),
        "sign": np.sign,
        "erf": _erf,
        "normal_cdf": _normal_cdf,
        "normal_pdf": lambda v: np.exp(-0.5 * v * v) / math.sqrt(2.0 * math.pi),
        "gelu": lambda v: v * _normal_cdf(v),
        "log1p": np.log1p,
        "expm1": np.expm1,
        # log σ(v) = v − log(1 + e^v) = −log(1 + e^−v), each where it cannot overflow
        "logsigmoid": lambda v: np.where(
            v < 0, v - np.log1p(np.exp(np.minimum(v, 0))), -np.log1p(np.exp(-np.maximum(v, 0)))
        ),
        "silu": lambda v: v * _sigmoid(v),
    }
    if func in table:
        return table[func](x)
    user = registered(func)
    if user is not None:
        return user.derivative(0, x)
    raise DerivativeError(f"the reference has no value for {func!r}")


def selection_weight(test: str, half: bool, left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """The weight of ``a`` in a selection, from its definition: 1 where
    ``left test right`` holds, else 0; for ``maximum``/``minimum`` (``half``,
    tests ``>`` and ``<``) 1 where ``a`` is the larger (smaller), 0 where
    ``b`` is, ½ where they tie or one is NaN."""
    compare = {
        ">": operator.gt,
        "<": operator.lt,
        ">=": operator.ge,
        "<=": operator.le,
        "==": operator.eq,
        "!=": operator.ne,
    }
    if not half:
        return compare[test](left, right).astype(float)
    a_wins = compare[test](left, right)
    b_wins = compare["<" if test == ">" else ">"](left, right)
    return np.where(a_wins, 1.0, np.where(b_wins, 0.0, 0.5))
