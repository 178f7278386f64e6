"""Elementwise functions of the language: value, derivative and how to print them.

Adding a function means adding one entry to :data:`ELEMENTWISE`. Kinks use the
subgradient 0 (``relu`` and ``abs`` at 0), as numpy-based frameworks do.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

Array = np.ndarray


@dataclass(frozen=True)
class Elementwise:
    """A scalar function applied entrywise; ``param`` is the exponent of ``pow``."""

    name: str
    value: Callable[[Array, float], Array]
    derivative: Callable[[Array, float], Array]
    derivative_name: str  # "{f}" stands for the argument

    def derivative_text(self, arg: str, p: float = 0.0) -> str:
        """The derivative printed at ``arg``: ``σ'(z)``, ``2 z``, ``3 z^2``."""
        if self.name == "pow":
            return f"{p:g} {arg}" if p == 2 else f"{p:g} {arg}^{p - 1:g}"
        return self.derivative_name.format(f=arg)


def _sigmoid(x: Array, _: float = 0.0) -> Array:
    # 0.5 (1 + tanh(x/2)) equals 1/(1+e^-x) and never overflows.
    return 0.5 * (1.0 + np.tanh(0.5 * x))


def _pow(x: Array, p: float) -> Array:
    return x**2 if p == 2 else np.power(x, p)


def _dpow(x: Array, p: float) -> Array:
    return 2.0 * x if p == 2 else p * np.power(x, p - 1)


ELEMENTWISE: dict[str, Elementwise] = {
    f.name: f
    for f in (
        Elementwise(
            "sigmoid",
            _sigmoid,
            lambda x, _: _sigmoid(x) * (1.0 - _sigmoid(x)),
            "σ'({f})",
        ),
        Elementwise(
            "tanh",
            lambda x, _: np.tanh(x),
            lambda x, _: 1.0 - np.tanh(x) ** 2,
            "tanh'({f})",
        ),
        Elementwise(
            "relu",
            lambda x, _: np.maximum(x, 0.0),
            lambda x, _: (x > 0).astype(x.dtype),
            "[{f} > 0]",
        ),
        Elementwise("exp", lambda x, _: np.exp(x), lambda x, _: np.exp(x), "exp({f})"),
        Elementwise("log", lambda x, _: np.log(x), lambda x, _: 1.0 / x, "1/{f}"),
        Elementwise("softplus", lambda x, _: np.logaddexp(0.0, x), _sigmoid, "σ({f})"),
        Elementwise("sin", lambda x, _: np.sin(x), lambda x, _: np.cos(x), "cos({f})"),
        Elementwise("cos", lambda x, _: np.cos(x), lambda x, _: -np.sin(x), "-sin({f})"),
        Elementwise("sqrt", lambda x, _: np.sqrt(x), lambda x, _: 0.5 / np.sqrt(x), "1/(2√{f})"),
        Elementwise("square", lambda x, _: x * x, lambda x, _: 2.0 * x, "2 {f}"),
        Elementwise("abs", lambda x, _: np.abs(x), lambda x, _: np.sign(x), "sign({f})"),
        # Internal: produced by `a / b` and `a ^ p`; not callable by name.
        Elementwise("reciprocal", lambda x, _: 1.0 / x, lambda x, _: -1.0 / (x * x), "-1/{f}²"),
        Elementwise("pow", _pow, _dpow, ""),
    )
}

#: Names a spec may call as ``f(x)``.
CALLABLE = tuple(n for n in ELEMENTWISE if n not in ("reciprocal", "pow"))

#: Full reductions: ``sum(x)`` and ``mean(x)`` reduce every index of ``x``.
REDUCTIONS = ("sum", "mean")
