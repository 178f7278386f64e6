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

Every value is computed stably (the maximum is subtracted before ``exp``),
and follows its limits at infinite entries (see below).
The numpy functions here are also what generated code calls (their source
is copied into it).
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np

from ..arrays.backend import common, is_numpy, namespace
from . import matrix

# Limits at infinity, as JAX's logsumexp takes them: a slice is shifted by
# its maximum only where that is finite, so an all -inf slice gives
# exp(-inf) = 0 (logsumexp -inf) rather than exp(nan). A slice whose maximum
# is +inf has a limit only when one entry is +inf: softmax is then one-hot
# there (log_softmax 0 there, -inf elsewhere); with several, NaN (no limit).
# Each function is self-contained: generated code copies its source.


def softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    top = np.max(x, axis=axes, keepdims=True)
    with np.errstate(all="ignore"):
        e = np.exp(x - np.where(np.isfinite(top), top, 0.0))
        p = e / np.sum(e, axis=axes, keepdims=True)
    # The limit: one-hot at a single +inf entry (real values only).
    if not np.iscomplexobj(top) and np.isposinf(top).any():
        hit = x == np.inf
        one = np.sum(hit, axis=axes, keepdims=True) == 1
        p = np.where(np.isposinf(top), np.where(one, hit.astype(p.dtype), np.nan), p)
    return p


def log_softmax(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    top = np.max(x, axis=axes, keepdims=True)
    with np.errstate(all="ignore"):
        shifted = x - np.where(np.isfinite(top), top, 0.0)
        y = shifted - np.log(np.sum(np.exp(shifted), axis=axes, keepdims=True))
    # The limit: 0 at a single +inf entry, -inf elsewhere (real values only).
    if not np.iscomplexobj(top) and np.isposinf(top).any():
        hit = x == np.inf
        one = np.sum(hit, axis=axes, keepdims=True) == 1
        y = np.where(np.isposinf(top), np.where(one, np.where(hit, 0.0, -np.inf), np.nan), y)
    return y


def logsumexp(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    top = np.max(x, axis=axes, keepdims=True)
    top = np.where(np.isfinite(top), top, 0.0)
    with np.errstate(all="ignore"):  # log(0) = -inf for an all -inf slice
        total = np.log(np.sum(np.exp(x - top), axis=axes, keepdims=True)) + top
    return np.squeeze(total, axis=axes)


def softmax_from_lse(x: np.ndarray, lse: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``exp(x − logsumexp(x))``, the derivative of logsumexp, from its value
    (one-hot at a single +inf entry, its limit)."""
    lse = np.expand_dims(lse, axes)
    with np.errstate(all="ignore"):
        p = np.exp(x - lse)
    if not np.iscomplexobj(lse) and np.isposinf(lse).any():
        hit = x == np.inf
        one = np.sum(hit, axis=axes, keepdims=True) == 1
        p = np.where(np.isposinf(lse), np.where(one, hit.astype(p.dtype), np.nan), p)
    return p


def softmax_from_log(y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """``exp(log_softmax(x))``, the derivative of log_softmax, from its value."""
    return np.exp(y)


def extreme_share(x: np.ndarray, y: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """1 / (number of ties) where ``x`` equals its max (or min) ``y``, else 0."""
    hit = x == np.expand_dims(y, axes)
    # uint8: added pairwise only over at most 16 entries (else np.sum widens it)
    count = along_few(np.asarray(hit).view(np.uint8), axes, np.add, np.sum)
    return hit / np.expand_dims(count, axes)


def max_share(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """:func:`extreme_share` of the maximum, from ``x`` alone (the derivative of
    ``max`` as an operation of a derivative's graph; its own derivative is 0)."""
    return extreme_share(x, np.max(x, axis=axes), axes)


def min_share(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """:func:`extreme_share` of the minimum, from ``x`` alone."""
    return extreme_share(x, np.min(x, axis=axes), axes)


def max_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return along_few(x, axes, np.maximum, np.max)


def min_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    return along_few(x, axes, np.minimum, np.min)


def along_few(x: np.ndarray, axes: tuple[int, ...], pair, reduce) -> np.ndarray:
    """``reduce(x, axis=axes)``; over a few entries (2 to 16: a pooling window)
    as ``pair`` (``np.maximum``, ``np.add``) of the slices at each position,
    some 4 × faster than numpy's reduction along short axes (which loops over
    them innermost). NaN propagates as in ``np.max``."""
    count = 1
    for a in axes:
        count *= x.shape[a]
    if not 2 <= count <= 16 or len(axes) == x.ndim:
        return reduce(x, axis=axes)
    index: list[list] = [[]]
    for a in range(x.ndim):
        picks = range(x.shape[a]) if a in axes else [slice(None)]
        index = [[*i, p] for i in index for p in picks]
    out = pair(x[tuple(index[0])], x[tuple(index[1])])
    for i in index[2:]:
        pair(out, x[tuple(i)], out=out)
    return out


# --- the same for other array libraries (array-API namespace ``xp``) ---


def _reshape_like(x, y, axes):
    """``y`` reduced along ``axes`` of ``x``, with those axes back as size 1."""
    return namespace(y).reshape(y, tuple(1 if i in axes else n for i, n in enumerate(x.shape)))


def _shift_xp(xp, top):
    return xp.where(xp.isfinite(top), top, xp.zeros_like(top))


def _at_plus_inf_xp(xp, x, top, value, inside, outside, axes):
    """``value``, but where ``top`` is +inf the limit: ``inside`` at a single
    +inf entry and ``outside`` elsewhere, NaN with several."""
    try:
        if not bool(xp.any(xp.isinf(top) & (top > 0))):
            return value
    except Exception:  # a traced value (under jax.jit) has no truth value yet: select
        pass
    hit = x == xp.inf
    one = xp.sum(xp.astype(hit, x.dtype), axis=axes, keepdims=True) == 1
    full = xp.full_like(value, outside)
    limit = xp.where(one, xp.where(hit, xp.full_like(value, inside), full), xp.nan * full)
    return xp.where(xp.isinf(top) & (top > 0), limit, value)


def _softmax_xp(xp, x, axes):
    top = xp.max(x, axis=axes, keepdims=True)
    e = xp.exp(x - _shift_xp(xp, top))
    return _at_plus_inf_xp(xp, x, top, e / xp.sum(e, axis=axes, keepdims=True), 1.0, 0.0, axes)


def _log_softmax_xp(xp, x, axes):
    top = xp.max(x, axis=axes, keepdims=True)
    shifted = x - _shift_xp(xp, top)
    y = shifted - xp.log(xp.sum(xp.exp(shifted), axis=axes, keepdims=True))
    return _at_plus_inf_xp(xp, x, top, y, 0.0, -xp.inf, axes)


def _logsumexp_xp(xp, x, axes):
    top = _shift_xp(xp, xp.max(x, axis=axes, keepdims=True))
    return xp.squeeze(xp.log(xp.sum(xp.exp(x - top), axis=axes, keepdims=True)) + top, axis=axes)


def _softmax_from_lse_xp(xp, x, lse, axes):
    lse = _reshape_like(x, lse, axes)
    return _at_plus_inf_xp(xp, x, lse, xp.exp(x - lse), 1.0, 0.0, axes)


def _extreme_share_xp(xp, x, y, axes):
    hit = xp.astype(x == _reshape_like(x, y, axes), x.dtype)
    return hit / xp.sum(hit, axis=axes, keepdims=True)


_GENERIC = {
    "softmax": _softmax_xp,
    "log_softmax": _log_softmax_xp,
    "logsumexp": _logsumexp_xp,
    "softmax_from_lse": _softmax_from_lse_xp,
    "softmax_from_log": lambda xp, y, axes: xp.exp(y),
    "extreme_share": _extreme_share_xp,
    "max_share": lambda xp, x, axes: _extreme_share_xp(xp, x, xp.max(x, axis=axes), axes),
    "min_share": lambda xp, x, axes: _extreme_share_xp(xp, x, xp.min(x, axis=axes), axes),
    "max_along": lambda xp, x, axes: xp.max(x, axis=axes),
    "min_along": lambda xp, x, axes: xp.min(x, axis=axes),
    **matrix.GENERIC,
}


@functools.cache
def on_any_library(fn):
    """``fn`` (one of the numpy functions above) for arrays of any library:
    the numpy function itself on numpy arrays, its array-API twin otherwise."""
    generic = _GENERIC[fn.__name__]

    def run(*arrays, axes):
        if is_numpy(*arrays):
            return fn(*arrays, axes=axes)
        _, arrays = common(arrays)
        return generic(namespace(*arrays), *arrays, axes=axes)

    run.__name__ = fn.__name__
    return run


@dataclass(frozen=True)
class AlongFunction:
    """A function along some indices: ``value(x, axes)`` with ``axes`` the
    positions in ``x``; ``reduces``: whether those indices are dropped."""

    name: str
    value: object
    reduces: bool
    symbol: str  # printed name: softmax, log softmax, ...
    tex: str
    internal: bool = False  # made by derivatives, not callable from the language
    matrix: bool = False  # runs along two indices, the rows and columns of a matrix


ALONG: dict[str, AlongFunction] = {
    "softmax": AlongFunction("softmax", softmax, False, "softmax", r"\mathrm{softmax}"),
    "log_softmax": AlongFunction(
        "log_softmax", log_softmax, False, "log_softmax", r"\log\mathrm{softmax}"
    ),
    "logsumexp": AlongFunction("logsumexp", logsumexp, True, "logsumexp", r"\mathrm{logsumexp}"),
    "max": AlongFunction("max", max_along, True, "max", r"\max"),
    "min": AlongFunction("min", min_along, True, "min", r"\min"),
    # The derivatives of max and min (the share of the extreme entries).
    "max_share": AlongFunction(
        "max_share", max_share, False, "argmax share", r"[\max]'", internal=True
    ),
    "min_share": AlongFunction(
        "min_share", min_share, False, "argmin share", r"[\min]'", internal=True
    ),
    # Matrix functions (tensorchain.functions.matrix): rows and columns, every other index a batch.
    "inv": AlongFunction("inv", matrix.inv_along, False, "inv", r"\mathrm{inv}", matrix=True),
    "det": AlongFunction("det", matrix.det_along, True, "det", r"\det", matrix=True),
    "logdet": AlongFunction(
        "logdet", matrix.logdet_along, True, "logdet", r"\log\left|\det\right|", matrix=True
    ),
    "cholesky": AlongFunction(
        "cholesky", matrix.cholesky_along, False, "cholesky", r"\mathrm{chol}", matrix=True
    ),
    "tril_half": AlongFunction(
        "tril_half", matrix.tril_half_along, False, "Φ", r"\Phi", internal=True, matrix=True
    ),
}

#: Names a spec may call as functions along indices (the matrix functions are
#: called through the language's matrix syntax).
CALLABLE_ALONG = tuple(name for name, f in ALONG.items() if not f.internal and not f.matrix)

#: Matrix functions a spec may call: ``inv(X[s, i, j], i, j)``, ``solve(A, b)``.
MATRIX_FUNCTIONS = ("inv", "det", "logdet", "cholesky", "trace", "solve")

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
        max_share,
        min_share,
        max_along,
        min_along,
        along_few,
        matrix.inv_along,
        matrix.det_along,
        matrix.logdet_along,
        matrix.cholesky_along,
        matrix.tril_half_along,
        matrix.solve_labeled,
        matrix.adjugate_along,
    )
}
