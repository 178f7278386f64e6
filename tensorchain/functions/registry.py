"""Elementwise functions of the language: value, derivative and how to print them.

A built-in function has one entry in :data:`ELEMENTWISE` (its array
code in :mod:`tensorchain.functions.kernels`; the other places it goes are
listed in :mod:`tensorchain.functions`; users add theirs with
:func:`tensorchain.register_function`, whose entries each network holds
itself: :func:`elementwise` finds them), and the tables the language, the
runtime and the calculus read (names a spec may call, numpy-only forms,
functions with no complex derivative, helpers of generated code).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from .kernels import (
    ONE_OVER_SQRT_2PI,
    TWO_OVER_SQRT_PI,
    abs_value,
    cos_value,
    erf_value,
    exp_value,
    expm1_value,
    gaussian,
    gelu_derivative,
    gelu_value,
    indicator,
    log1p_value,
    log_value,
    logsigmoid_value,
    normal_cdf_value,
    pow_derivative,
    pow_value,
    relu_numpy,
    relu_value,
    sigmoid,
    sigmoid_derivative,
    sigmoid_derivative_numpy,
    sigmoid_numpy,
    sigmoid_value,
    sign_value,
    silu_derivative,
    silu_value,
    sin_value,
    softplus_value,
    sqrt_value,
    tanh_derivative,
    tanh_derivative_numpy,
    tanh_value,
    zeros,
)
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


def _f(name, value, derivative, text, value_code, derivative_code, latex, dlatex):
    return Elementwise(name, value, derivative, text, value_code, derivative_code, latex, dlatex)


ELEMENTWISE: dict[str, Elementwise] = {
    f.name: f
    for f in (
        _f(
            "sigmoid",
            sigmoid_value,
            sigmoid_derivative,
            "σ'({f})",
            "sigmoid({x})",
            "{y} * (1.0 - {y})",
            r"\sigma({f})",
            r"\sigma'({f})",
        ),
        _f(
            "tanh",
            tanh_value,
            tanh_derivative,
            "tanh'({f})",
            "np.tanh({x})",
            "1.0 - {y} * {y}",
            r"\tanh({f})",
            r"(1 - \tanh^2({f}))",
        ),
        _f(
            "relu",
            relu_value,
            lambda x, y, p: indicator(x),
            "[{f} > 0]",
            "np.maximum({x}, 0.0)",
            "({x} > 0).astype({x}.dtype)",
            r"\mathrm{relu}({f})",
            r"[{f} > 0]",
        ),
        _f(
            "exp",
            exp_value,
            lambda x, y, p: y,
            "exp({f})",
            "np.exp({x})",
            "{y}",
            r"e^{{f}}",
            r"e^{{f}}",
        ),
        _f(
            "log",
            log_value,
            lambda x, y, p: 1.0 / x,
            "1/{f}",
            "np.log({x})",
            "1.0 / {x}",
            r"\log({f})",
            r"\frac{1}{{f}}",
        ),
        _f(
            "softplus",
            softplus_value,
            lambda x, y, p: sigmoid_value(x),
            "σ({f})",
            "np.logaddexp(0.0, {x})",
            "sigmoid({x})",
            r"\mathrm{softplus}({f})",
            r"\sigma({f})",
        ),
        _f(
            "sin",
            sin_value,
            lambda x, y, p: cos_value(x),
            "cos({f})",
            "np.sin({x})",
            "np.cos({x})",
            r"\sin({f})",
            r"\cos({f})",
        ),
        _f(
            "cos",
            cos_value,
            lambda x, y, p: -sin_value(x),
            "-sin({f})",
            "np.cos({x})",
            "-np.sin({x})",
            r"\cos({f})",
            r"(-\sin({f}))",
        ),
        _f(
            "sqrt",
            sqrt_value,
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
            abs_value,
            lambda x, y, p: sign_value(x),
            "sign({f})",
            "np.abs({x})",
            "np.sign({x})",
            r"|{f}|",
            r"\mathrm{sign}({f})",
        ),
        _f(
            "erf",
            erf_value,
            lambda x, y, p: gaussian(x, TWO_OVER_SQRT_PI, 1.0),
            "2/√π exp(-{f}²)",
            "erf({x})",
            "1.1283791670955126 * np.exp(-({x} * {x}))",
            r"\mathrm{erf}({f})",
            r"\frac{2}{\sqrt{\pi}} e^{-({f})^2}",
        ),
        _f(
            "gelu",
            gelu_value,
            gelu_derivative,
            "(Φ({f}) + {f} φ({f}))",
            "{x} * normal_cdf({x})",
            "gelu_cdf({x}, {y}) + {x} * (0.3989422804014327 * np.exp(-0.5 * ({x} * {x})))",
            r"\mathrm{gelu}({f})",
            r"\left(\Phi({f}) + {f} \, \varphi({f})\right)",
        ),
        _f(
            "log1p",
            log1p_value,
            lambda x, y, p: 1.0 / (1.0 + x),
            "1/(1 + {f})",
            "np.log1p({x})",
            "1.0 / (1.0 + {x})",
            r"\log(1 + {f})",
            r"\frac{1}{1 + {f}}",
        ),
        _f(
            "expm1",
            expm1_value,
            lambda x, y, p: exp_value(x),
            "exp({f})",
            "np.expm1({x})",
            "np.exp({x})",
            r"\left(e^{{f}} - 1\right)",
            r"e^{{f}}",
        ),
        _f(
            "logsigmoid",
            logsigmoid_value,
            lambda x, y, p: sigmoid_value(-x),
            "σ(-{f})",
            "-np.logaddexp(0.0, -{x})",
            "sigmoid(-({x}))",
            r"\log\sigma({f})",
            r"\sigma(-{f})",
        ),
        _f(
            "silu",
            silu_value,
            silu_derivative,
            "(σ({f}) (1 + {f} σ(-{f})))",
            "{x} * sigmoid({x})",
            "sigmoid({x}) * (1.0 + {x} * sigmoid(-({x})))",
            r"{f} \, \sigma({f})",
            r"\sigma({f}) \left(1 + {f} \, \sigma(-{f})\right)",
        ),
        # Derivatives of relu and abs (their own derivative is 0 almost everywhere).
        _f(
            "step",
            indicator,
            zeros,
            "0",
            "({x} > 0).astype(float)",
            "np.zeros_like({x})",
            r"[{f} > 0]",
            "0",
        ),
        _f(
            "sign",
            sign_value,
            zeros,
            "0",
            "np.sign({x})",
            "np.zeros_like({x})",
            r"\mathrm{sign}({f})",
            "0",
        ),
        # Internal: Φ, in the derivative of gelu; not callable by name.
        _f(
            "normal_cdf",
            normal_cdf_value,
            lambda x, y, p: gaussian(x, ONE_OVER_SQRT_2PI, 0.5),
            "φ({f})",
            "normal_cdf({x})",
            "0.3989422804014327 * np.exp(-0.5 * ({x} * {x}))",
            r"\Phi({f})",
            r"\varphi({f})",
        ),
        # Internal: φ, in the derivatives of Φ and gelu; not callable by name.
        _f(
            "normal_pdf",
            lambda x, p=0.0: gaussian(x, ONE_OVER_SQRT_2PI, 0.5),
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
            pow_value,
            pow_derivative,
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


#: The value of each function on numpy values only, without the check for
#: another library: ``NUMPY_VALUES[name](p)`` is a function of ``x``, or None
#: (the general form is used).
NUMPY_VALUES: dict[str, Callable[[float], Callable[[Array], Array] | None]] = {
    "sigmoid": lambda p: sigmoid_numpy,
    "relu": lambda p: relu_numpy,
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
    "sigmoid": lambda p: sigmoid_derivative_numpy,
    "tanh": lambda p: tanh_derivative_numpy,
    "square": lambda p: functools.partial(np.multiply, 2.0),
    "pow": lambda p: functools.partial(np.multiply, 2.0) if p == 2 else None,
    "softplus": lambda p: sigmoid_numpy,
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
