"""numpy's floating-point warnings off for a compiled run, cheaply.

A compiled program's NaN and infinity are reported by the check of its
results (:class:`~tensorchain.errors.NonFiniteWarning`, naming the statement),
so numpy's own warnings (divide by zero, invalid value, overflow) would only
repeat it, or flag a branch that ``where`` discards. Entering
``np.errstate`` costs about 0.7 µs; setting the context variable it sets,
without its Python layer, about 0.2 µs, which matters on a call of a few
microseconds. On numpy 1.x, which has no such variable, ``np.errstate``.

    token = quiet()
    try:
        ...  # numpy calls
    finally:
        loud(token)
"""

from __future__ import annotations

from typing import Any

import numpy as np

try:  # numpy >= 2: the context variable np.errstate sets
    from numpy._core.umath import _extobj_contextvar, _make_extobj
except ImportError:  # pragma: no cover - numpy 1.x
    _extobj_contextvar = _make_extobj = None


def quiet() -> Any:
    """Silence divide, invalid and overflow warnings (underflow and any
    other setting as they were) until :func:`loud` with the token returned."""
    if _extobj_contextvar is None:  # pragma: no cover - numpy 1.x
        state = np.errstate(divide="ignore", invalid="ignore", over="ignore")
        state.__enter__()
        return state
    return _extobj_contextvar.set(_make_extobj(divide="ignore", invalid="ignore", over="ignore"))


def loud(token: Any) -> None:
    """Restore the settings :func:`quiet` changed."""
    if _extobj_contextvar is None:  # pragma: no cover - numpy 1.x
        token.__exit__(None, None, None)
        return
    _extobj_contextvar.reset(token)
