"""Checking what a registered function returns (:mod:`tensorchain.language.user_functions`).

A user's ``f``, ``df`` and ``d2f`` are tried on small arrays when they are
registered (:func:`probe`) and every result is checked where it is used
(:func:`checked`): the argument's shape, numbers, not complex for a real
argument. Like JAX's ``custom_jvp`` checks of a rule's output shapes and
dtypes, so that a wrong function is named where it goes wrong rather than
surfacing as a broadcasting error deep in a contraction.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from ..arrays.backend import numpy_dtype
from ..errors import SpecError


def raised(error: Exception) -> str:
    """What a user's function raised, for a message (with a hint for a write to
    its read-only argument)."""
    hint = ""
    if "read-only" in str(error):
        hint = " (it must not change its argument: write x = x * 2, not x *= 2)"
    return f"raised {type(error).__name__}: {error}{hint}"


def checked(out: Any, x: Any, fail: Callable[[str], Exception]) -> Any:
    """``out``, a user function's result at ``x``, checked: an array (numpy's
    where ``x`` is numpy's; a list is converted) of numbers and of ``x``'s shape,
    not complex for a real ``x``; numpy results get ``x``'s dtype (a float
    dtype). Raises ``fail(why)`` otherwise."""
    numpy = isinstance(x, np.ndarray | np.generic)
    given = type(out).__name__
    if numpy:
        try:
            out = np.asarray(out)
        except Exception:
            raise fail(f"returned {given}, which is not an array of numbers") from None
    elif not hasattr(out, "shape") or not hasattr(out, "dtype"):
        raise fail(f"returned {given}, which is not an array")
    try:
        kind = numpy_dtype(out).kind
    except TypeError:
        kind = "O"
    if kind not in "biufc":
        raise fail(f"returned {given} of dtype {out.dtype}, which is not an array of numbers")
    if tuple(out.shape) != tuple(np.shape(x)):
        raise fail(
            f"returned shape {tuple(out.shape)} for x of shape {tuple(np.shape(x))}; it must"
            " work entry by entry and keep the shape (np.sin(x), not np.sin(np.ravel(x)))"
        )
    if kind == "c" and numpy_dtype(x).kind != "c":
        raise fail(
            "returned complex values for real x, whose imaginary part would be lost;"
            " return real values (np.real(...)) for real x"
        )
    if not numpy:
        return out
    return out.astype(x.dtype if x.dtype.kind in "fc" else np.float64, copy=False)


def probe(name: str, what: str, fn: Callable) -> None:
    """Refuse ``fn`` unless it works entry by entry on a few positive numbers:
    real arrays of the argument's shape, the same entries for part of it."""

    def run(x: np.ndarray) -> np.ndarray:
        x.flags.writeable = False
        try:
            with np.errstate(all="ignore"):
                out = fn(x)
        except Exception as error:
            raise SpecError(
                f"register_function({name!r}, ...): {what}(x) {raised(error)}"
                f" for x = {x.tolist()}; it must take an array and return an array of its shape"
            ) from None

        def fail(why: str) -> SpecError:
            return SpecError(f"register_function({name!r}, ...): {what}(x) {why}")

        return checked(out, x, fail)

    run(np.array([0.25, 0.5, 1.5]))
    whole = run(np.array([[0.25, 0.5, 1.5], [0.75, 1.25, 2.0]]))
    part = run(np.array([[2.0, 1.25, 0.75]]))
    if not np.allclose(part, whole[1:, ::-1], rtol=1e-12, atol=0.0, equal_nan=True):
        raise SpecError(
            f"register_function({name!r}, ...): {what}(x) is not entrywise: its value at"
            " an entry changes with the other entries or the entry's position (f of a"
            " 2×3 array and of one reversed row of it disagree); f, df and d2f must work"
            " entry by entry, like np.sin"
        )
