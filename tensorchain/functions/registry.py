"""Elementwise functions of the language: value, derivative and how to print them.

Adding a function means adding one entry to :data:`ELEMENTWISE` (users add
theirs with :func:`tensorchain.register_function`, whose entries each network
holds itself: :func:`elementwise` finds them). Kinks use the subgradient 0
(``relu`` and ``abs`` at 0), as numpy-based frameworks do. ``erf`` and the
normal distribution function Φ (of ``gelu``) come from
:mod:`tensorchain.functions.special` (W. J. Cody's rational approximations).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from ..arrays.backend import namespace
from ..arrays.quiet import loud, quiet
from .special import cody_erf, erf, gelu_cdf, normal_cdf

Array = np.ndarray


@dataclass(frozen=True)
class Elementwise:
    """A scalar function applied entrywise.

    ``value(x, p)`` and ``derivative(x, y, p)``, where ``y = value(x, p)`` is
    passed in so that ``σ' = y (1 − y)`` or ``tanh' = 1 − y²`` reuse the forward
    pass (as backprop does); ``p`` is the exponent of ``pow``, unused elsewhere.
    The ``*_code`` fields are the same as numpy source (``{x}``, ``{y}``,
    ``{p}`` filled in) for generated code; ``latex`` and ``derivative_latex``
    print them (``{f}`` the argument).
    """

    name: str
    value: Callable[[Array, float], Array]
    derivative: Callable[[Array, Array, float], Array]
    derivative_name: str  # "{f}" stands for the argument
    value_code: str
    derivative_code: str
    latex: str
    derivative_latex: str
    missing: str | None = None

    def derivative_text(self, arg: str, p: float = 0.0) -> str:
        """The derivative printed at ``arg``: ``σ'(z)``, ``2 z``, ``3 z^2``."""
        if self.name == "pow":
            return f"{p:g} {arg}" if p == 2 else f"{p:g} {arg}^{p - 1:g}"
        return self.derivative_name.format(f=arg)

    def derivative_tex(self, arg: str, p: float = 0.0) -> str:
        """The derivative in LaTeX at the LaTeX argument ``arg``."""
        if self.name == "pow":
            return f"{p:g} {arg}" if p == 2 else f"{p:g} {arg}^{{{p - 1:g}}}"
        return self.derivative_latex.replace("{f}", arg)

    def source(self, x: str, p: float = 0.0) -> str:
        """Numpy source of the value at the expression ``x``."""
        if self.name == "pow" and p == 2:
            return f"{x} * {x}"
        return self.value_code.format(x=x, p=p)

    def derivative_source(self, x: str, y: str, p: float = 0.0) -> str:
        """Numpy source of the derivative, given the source of ``x`` and ``y``."""
        if self.name == "pow" and p == 2:
            return f"2.0 * {x}"
        return self.derivative_code.format(x=x, y=y, p=p)

    def tex(self, arg: str, p: float = 0.0) -> str:
        """The function in LaTeX at the LaTeX argument ``arg``."""
        if self.name == "pow":
            return f"{arg}^{{{p:g}}}"
        return self.latex.replace("{f}", arg)


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


def _sigmoid(x: Array, p: float = 0.0) -> Array:
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


def _sigmoid_numpy(x: Array) -> Array:
    """:func:`_sigmoid` on numpy values (no check for another library), for
    compiled programs, which run with numpy's overflow warnings off
    (:mod:`tensorchain.arrays.quiet`)."""
    if type(x) is not np.ndarray or x.ndim == 0 or x.dtype.kind == "c":
        return sigmoid(x)
    t = np.negative(x)
    np.exp(t, out=t)
    t += 1.0
    return np.reciprocal(t, out=t)


def _dsigmoid(x: Array, y: Array, p: float) -> Array:
    if not isinstance(y, np.ndarray):
        return (1.0 - y) * y
    d = np.subtract(1.0, y)
    d *= y
    return d


def _dsigmoid_numpy(y: Array) -> Array:
    d = np.subtract(1.0, y)
    d *= y  # a new number where y is one
    return d


def _dtanh_numpy(y: Array) -> Array:
    d = np.multiply(y, y)
    if type(d) is not np.ndarray:
        return 1.0 - d
    return np.subtract(1.0, d, out=d)


def _dtanh(x: Array, y: Array, p: float) -> Array:
    if not isinstance(y, np.ndarray):
        return 1.0 - y * y
    d = np.multiply(y, y)
    return np.subtract(1.0, d, out=d)


def _pow(x: Array, p: float) -> Array:
    return x * x if p == 2 else x**p


def _dpow(x: Array, y: Array, p: float) -> Array:
    return 2.0 * x if p == 2 else p * x ** (p - 1)


def _ufunc(name: str) -> Callable[[Array, float], Array]:
    """``name(x)`` in ``x``'s library (numpy's ufunc for numpy arrays and numbers)."""
    numpy_fn = getattr(np, name)

    def value(x: Array, p: float = 0.0) -> Array:
        if isinstance(x, np.ndarray | np.generic | float | int | complex):
            return numpy_fn(x)
        return getattr(namespace(x), name)(x)

    value.__name__ = name
    return value


def _relu(x: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int):
        return np.maximum(x, 0.0)
    xp = namespace(x)
    return xp.where(x > 0, x, xp.zeros_like(x))


def _indicator(x: Array, p: float = 0.0) -> Array:
    """[x > 0] in ``x``'s dtype."""
    if isinstance(x, np.ndarray | np.generic):  # a 0-d value stays a numpy value
        return (x > 0).astype(x.dtype)
    if isinstance(x, float | int):
        return np.float64(x > 0)
    return namespace(x).astype(x > 0, x.dtype)


def _softplus(x: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int):
        return np.logaddexp(0.0, x)
    xp = namespace(x)
    return xp.logaddexp(xp.zeros_like(x), x)


def _zeros(x: Array, y: Array, p: float) -> Array:
    if isinstance(x, np.ndarray | np.generic | float | int | complex):
        return np.zeros_like(x)
    return namespace(x).zeros_like(x)


_tanh, _exp, _log, _sin, _cos, _sqrt, _abs, _sign, _log1p, _expm1 = map(
    _ufunc, ("tanh", "exp", "log", "sin", "cos", "sqrt", "abs", "sign", "log1p", "expm1")
)

_NUMPY = np.ndarray | np.generic | float | int


def _special(fn: Callable[..., Array]) -> Callable[[Array, float], Array]:
    """``fn(x)`` of :mod:`tensorchain.functions.special`, in ``x``'s library."""

    def value(x: Array, p: float = 0.0) -> Array:
        return fn(x) if isinstance(x, _NUMPY) else fn(x, namespace(x))

    value.__name__ = fn.__name__
    return value


_erf, _normal_cdf = _special(erf), _special(normal_cdf)
_SQRT_2_OVER_PI = 0.7978845608028654  # √(2/π)
_TWO_OVER_SQRT_PI = 1.1283791670955126  # 2/√π
_ONE_OVER_SQRT_2PI = 0.3989422804014327  # 1/√(2π)


def _gaussian(x: Array, scale: float, width: float) -> Array:
    """``scale · exp(−width · x²)`` in ``x``'s library."""
    return scale * _exp(-width * (x * x))


def _gelu(x: Array, p: float = 0.0) -> Array:
    return x * _normal_cdf(x)


def _dgelu(x: Array, y: Array, p: float) -> Array:  # Φ(x) + x φ(x)
    return _cdf_of_gelu(x, y) + x * _gaussian(x, _ONE_OVER_SQRT_2PI, 0.5)


def _cdf_of_gelu(x: Array, y: Array) -> Array:
    """Φ(x) from gelu's value ``y = x Φ(x)`` (:func:`~tensorchain.functions.special.gelu_cdf`)
    for numpy arrays; other libraries evaluate Φ."""
    if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
        return gelu_cdf(x, y)
    return _normal_cdf(x)


def _logsigmoid(x: Array, p: float = 0.0) -> Array:  # −softplus(−x), stable
    return -_softplus(-x, p)


def _silu(x: Array, p: float = 0.0) -> Array:
    return x * _sigmoid(x)


def _dsilu(x: Array, y: Array, p: float) -> Array:
    # σ + x σ (1 − σ) = σ(x) (1 + x σ(−x)): with 1 − σ(x) written σ(−x), nothing
    # cancels (σ (1 − y) + y is 1 − x + x = 0 at x ≥ 1e16, in float32 at 1e8).
    return _sigmoid(x) * (1.0 + x * _sigmoid(-x))


def _f(name, value, derivative, text, value_code, derivative_code, latex, dlatex):
    return Elementwise(name, value, derivative, text, value_code, derivative_code, latex, dlatex)


ELEMENTWISE: dict[str, Elementwise] = {
    f.name: f
    for f in (
        _f(
            "sigmoid",
            _sigmoid,
            _dsigmoid,
            "σ'({f})",
            "sigmoid({x})",
            "{y} * (1.0 - {y})",
            r"\sigma({f})",
            r"\sigma'({f})",
        ),
        _f(
            "tanh",
            _tanh,
            _dtanh,
            "tanh'({f})",
            "np.tanh({x})",
            "1.0 - {y} * {y}",
            r"\tanh({f})",
            r"(1 - \tanh^2({f}))",
        ),
        _f(
            "relu",
            _relu,
            lambda x, y, p: _indicator(x),
            "[{f} > 0]",
            "np.maximum({x}, 0.0)",
            "({x} > 0).astype({x}.dtype)",
            r"\mathrm{relu}({f})",
            r"[{f} > 0]",
        ),
        _f(
            "exp",
            _exp,
            lambda x, y, p: y,
            "exp({f})",
            "np.exp({x})",
            "{y}",
            r"e^{{f}}",
            r"e^{{f}}",
        ),
        _f(
            "log",
            _log,
            lambda x, y, p: 1.0 / x,
            "1/{f}",
            "np.log({x})",
            "1.0 / {x}",
            r"\log({f})",
            r"\frac{1}{{f}}",
        ),
        _f(
            "softplus",
            _softplus,
            lambda x, y, p: _sigmoid(x),
            "σ({f})",
            "np.logaddexp(0.0, {x})",
            "sigmoid({x})",
            r"\mathrm{softplus}({f})",
            r"\sigma({f})",
        ),
        _f(
            "sin",
            _sin,
            lambda x, y, p: _cos(x),
            "cos({f})",
            "np.sin({x})",
            "np.cos({x})",
            r"\sin({f})",
            r"\cos({f})",
        ),
        _f(
            "cos",
            _cos,
            lambda x, y, p: -_sin(x),
            "-sin({f})",
            "np.cos({x})",
            "-np.sin({x})",
            r"\cos({f})",
            r"(-\sin({f}))",
        ),
        _f(
            "sqrt",
            _sqrt,
            lambda x, y, p: 0.5 / y,
            "1/(2√{f})",
            "np.sqrt({x})",
            "0.5 / {y}",
            r"\sqrt{{f}}",
            r"\frac{1}{2\sqrt{{f}}}",
        ),
        _f(
            "square",
            lambda x, p: x * x,
            lambda x, y, p: 2.0 * x,
            "2 {f}",
            "{x} * {x}",
            "2.0 * {x}",
            r"{f}^2",
            r"2 {f}",
        ),
        _f(
            "abs",
            _abs,
            lambda x, y, p: _sign(x),
            "sign({f})",
            "np.abs({x})",
            "np.sign({x})",
            r"|{f}|",
            r"\mathrm{sign}({f})",
        ),
        _f(
            "erf",
            _erf,
            lambda x, y, p: _gaussian(x, _TWO_OVER_SQRT_PI, 1.0),
            "2/√π exp(-{f}²)",
            "erf({x})",
            "1.1283791670955126 * np.exp(-({x} * {x}))",
            r"\mathrm{erf}({f})",
            r"\frac{2}{\sqrt{\pi}} e^{-({f})^2}",
        ),
        _f(
            "gelu",
            _gelu,
            _dgelu,
            "(Φ({f}) + {f} φ({f}))",
            "{x} * normal_cdf({x})",
            "gelu_cdf({x}, {y}) + {x} * (0.3989422804014327 * np.exp(-0.5 * ({x} * {x})))",
            r"\mathrm{gelu}({f})",
            r"\left(\Phi({f}) + {f} \, \varphi({f})\right)",
        ),
        _f(
            "log1p",
            _log1p,
            lambda x, y, p: 1.0 / (1.0 + x),
            "1/(1 + {f})",
            "np.log1p({x})",
            "1.0 / (1.0 + {x})",
            r"\log(1 + {f})",
            r"\frac{1}{1 + {f}}",
        ),
        _f(
            "expm1",
            _expm1,
            lambda x, y, p: _exp(x),
            "exp({f})",
            "np.expm1({x})",
            "np.exp({x})",
            r"\left(e^{{f}} - 1\right)",
            r"e^{{f}}",
        ),
        _f(
            "logsigmoid",
            _logsigmoid,
            lambda x, y, p: _sigmoid(-x),
            "σ(-{f})",
            "-np.logaddexp(0.0, -{x})",
            "sigmoid(-({x}))",
            r"\log\sigma({f})",
            r"\sigma(-{f})",
        ),
        _f(
            "silu",
            _silu,
            _dsilu,
            "(σ({f}) (1 + {f} σ(-{f})))",
            "{x} * sigmoid({x})",
            "sigmoid({x}) * (1.0 + {x} * sigmoid(-({x})))",
            r"{f} \, \sigma({f})",
            r"\sigma({f}) \left(1 + {f} \, \sigma(-{f})\right)",
        ),
        # Derivatives of relu and abs (their own derivative is 0 almost everywhere).
        _f(
            "step",
            _indicator,
            _zeros,
            "0",
            "({x} > 0).astype(float)",
            "np.zeros_like({x})",
            r"[{f} > 0]",
            "0",
        ),
        _f(
            "sign",
            _sign,
            _zeros,
            "0",
            "np.sign({x})",
            "np.zeros_like({x})",
            r"\mathrm{sign}({f})",
            "0",
        ),
        # Internal: Φ, in the derivative of gelu; not callable by name.
        _f(
            "normal_cdf",
            _normal_cdf,
            lambda x, y, p: _gaussian(x, _ONE_OVER_SQRT_2PI, 0.5),
            "φ({f})",
            "normal_cdf({x})",
            "0.3989422804014327 * np.exp(-0.5 * ({x} * {x}))",
            r"\Phi({f})",
            r"\varphi({f})",
        ),
        # Internal: φ, in the derivatives of Φ and gelu; not callable by name.
        _f(
            "normal_pdf",
            lambda x, p=0.0: _gaussian(x, _ONE_OVER_SQRT_2PI, 0.5),
            lambda x, y, p: -(x * y),
            "(-{f} φ({f}))",
            "0.3989422804014327 * np.exp(-0.5 * ({x} * {x}))",
            "-({x} * {y})",
            r"\varphi({f})",
            r"-{f} \, \varphi({f})",
        ),
        # Internal: produced by `a / b` and `a ^ p`; not callable by name.
        _f(
            "reciprocal",
            lambda x, p: 1.0 / x,
            lambda x, y, p: -(y * y),
            "-1/{f}²",
            "1.0 / {x}",
            "-({y} * {y})",
            r"\frac{1}{{f}}",
            r"\left(-\frac{1}{({f})^2}\right)",
        ),
        _f(
            "pow",
            _pow,
            _dpow,
            "",
            "np.power({x}, {p!r})",
            "{p!r} * np.power({x}, {p!r} - 1.0)",
            "",
            "",
        ),
    )
}


def _constant(value: Callable, p: float) -> Callable:
    return value


def _relu_numpy(x: Array) -> Array:
    return np.maximum(x, 0.0)


#: The value of each function on numpy values only, without the check for
#: another library: ``NUMPY_VALUES[name](p)`` is a function of ``x``, or None
#: (the general form is used).
NUMPY_VALUES: dict[str, Callable[[float], Callable[[Array], Array] | None]] = {
    "sigmoid": lambda p: _sigmoid_numpy,
    "relu": lambda p: _relu_numpy,
    "square": lambda p: np.square,
    "softplus": lambda p: functools.partial(np.logaddexp, 0.0),
    "pow": lambda p: np.square if p == 2 else None,
    **{
        name: functools.partial(_constant, getattr(np, name))
        for name in ("tanh", "exp", "log", "sin", "cos", "sqrt", "abs", "sign")
    },
}

#: The derivative on numpy values, as a function of the arguments it reads
#: (see :func:`tensorchain.calculus.rules.map_rule`: ``y`` for σ' and tanh', ``x``
#: for 2 x), or None.
NUMPY_DERIVATIVES: dict[str, Callable[[float], Callable[..., Array] | None]] = {
    "sigmoid": lambda p: _dsigmoid_numpy,
    "tanh": lambda p: _dtanh_numpy,
    "square": lambda p: functools.partial(np.multiply, 2.0),
    "pow": lambda p: functools.partial(np.multiply, 2.0) if p == 2 else None,
    "softplus": lambda p: _sigmoid_numpy,
    "sin": lambda p: np.cos,
}


#: Functions whose derivative is zero almost everywhere (as JAX defines it at
#: the jumps): their derivative terms are dropped, never computed as zeros.
PIECEWISE_CONSTANT = ("step", "sign")

#: Functions with no complex derivative, or no complex implementation here
#: (refused for complex values).
NOT_HOLOMORPHIC = (
    *("relu", "abs", "softplus", "step", "sign"),
    *("erf", "gelu", "normal_cdf", "logsigmoid"),
)

#: Names a spec may call as ``f(x)`` (:func:`tensorchain.register_function` adds to it).
CALLABLE = [n for n in ELEMENTWISE if n not in ("reciprocal", "pow", "normal_cdf", "normal_pdf")]

#: How internal functions print in formulas (Φ and φ of the standard normal
#: distribution, as the derivatives of gelu and Φ print them).
PRINTED = {"normal_cdf": "Φ", "normal_pdf": "φ"}

#: The functions registered now: each name, as a spec parsed now binds it
#: (a :class:`tensorchain.language.user_functions.FunctionName`; kept by
#: :mod:`tensorchain.language.user_functions`).
REGISTERED: dict[str, str] = {}


def elementwise(func: str) -> Elementwise:
    """The entry of an operation's ``func``: a registered function's own (the
    registration its spec was parsed with), else the built-in function's."""
    entry = getattr(func, "entry", None)
    return entry if entry is not None else ELEMENTWISE[func]


#: Full reductions: ``sum(x)`` and ``mean(x)`` reduce every index of ``x``.
REDUCTIONS = ("sum", "mean")

#: Helpers generated code may call, by name (their source is copied in).
HELPERS = {
    "sigmoid": sigmoid,
    "erf": erf,
    "normal_cdf": normal_cdf,
    "gelu_cdf": gelu_cdf,
    "cody_erf": cody_erf,
}
