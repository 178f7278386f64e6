"""Functions along named indices: ``softmax``, ``log_softmax``, ``logsumexp``,
``max`` and ``min``.

``softmax(z[s, k], k)`` normalises along ``k`` for each ``s``; the reductions
(``logsumexp``, ``max``, ``min``) drop the indices they run along. Their local
Jacobians are sums of labeled terms, never a dense block per slice: with ``A``
the indices along which the function runs, ``B`` the others and primes the
operand's axes,

* softmax ``p``: ``δ(B, B') [p δ(A, A') − p · p[B, A']]``;
* log_softmax: ``δ(B, B') [δ(A, A') − p[B, A']]``, ``p = exp(y)``;
* logsumexp ``l``: ``δ(B, B') p[B, A']``, ``p = exp(z − l)``;
* max and min: ``δ(B, B') m[B, A']``, ``m`` the indicator of the extreme
  entries divided by their count: ties share the derivative equally (a
  subgradient; 1 on a unique maximum).

Every value is computed stably (the maximum is subtracted before ``exp``).
The numpy functions here are also what generated code calls (their source
is copied into it).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


def softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    e = np.exp(x - np.max(x, axis=axes, keepdims=True))
    return e / np.sum(e, axis=axes, keepdims=True)


def log_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    shifted = x - np.max(x, axis=axes, keepdims=True)
    return shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))


def logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    top = np.max(x, axis=axes, keepdims=True)
    total = np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True)) + top
    return np.squeeze(total, axis=axes)


def softmax_from_lse(x: np.ndarray, lse: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``exp(x − logsumexp(x))``, the derivative of logsumexp, from its value."""
    return np.exp(x - np.expand_dims(lse, axes))


def softmax_from_log(y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``exp(log_softmax(x))``, the derivative of log_softmax, from its value."""
    return np.exp(y)


def extreme_share(x: np.ndarray, y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """1 / (number of ties) where ``x`` equals its max (or min) ``y``, else 0."""
    hit = x == np.expand_dims(y, axes)
    return hit / np.sum(hit, axis=axes, keepdims=True)


def max_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.max(x, axis=axes)


def min_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return np.min(x, axis=axes)


@dataclass(frozen=True)
class AlongFunction:
    """A function along some indices: ``value(x, axes)`` with ``axes`` the
    positions in ``x``; ``reduces``: whether those indices are dropped."""

    name: str
    value: object
    reduces: bool
    symbol: str  # printed name: softmax, log softmax, ...
    tex: str


ALONG: dict[str, AlongFunction] = {
    "softmax": AlongFunction("softmax", softmax, False, "softmax", r"\mathrm{softmax}"),
    "log_softmax": AlongFunction(
        "log_softmax", log_softmax, False, "log_softmax", r"\log\mathrm{softmax}"
    ),
    "logsumexp": AlongFunction("logsumexp", logsumexp, True, "logsumexp", r"\mathrm{logsumexp}"),
    "max": AlongFunction("max", max_along, True, "max", r"\max"),
    "min": AlongFunction("min", min_along, True, "min", r"\min"),
}

#: Helpers generated code may call, by name (their source is copied in).
HELPERS = {
    f.__name__: f
    for f in (
        softmax,
        log_softmax,
        logsumexp,
        softmax_from_lse,
        softmax_from_log,
        extreme_share,
        max_along,
        min_along,
    )
}
