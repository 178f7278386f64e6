"""Bounds on what tensorchain accepts, and the memory limit.

Every bound gives a clear error when crossed, before any work: a spec's text
and statement count, the nesting depth of an expression (so no input can reach
Python's recursion limit), the distinct indices of one statement, and dim
sizes. The memory limit refuses a computation whose forecast peak exceeds it.
"""

from __future__ import annotations

import functools
import os

#: Characters of spec text.
MAX_SPEC_CHARS = 1_000_000
#: Statements (declarations and assignments) in one spec.
MAX_STATEMENTS = 10_000
#: Nesting depth of one expression: parentheses, calls, unary minus, and each
#: binary operator of a chain (``a + b + c`` is two levels).
MAX_DEPTH = 100
#: Distinct index labels in one statement (einsum symbols beyond 52 are fine).
MAX_INDICES = 200
#: Axes of one tensor: numpy's einsum names each axis of an operand with one
#: of 52 letters.
MAX_AXES = 52
#: The size of one dim.
MAX_DIM = 2**40

_memory_limit: int | None = None


def available_memory() -> int | None:
    """Bytes of memory available now (Linux ``MemAvailable``), or ``None``."""
    try:
        with open("/proc/meminfo", encoding="ascii") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return None


def set_memory_limit(limit: int | None) -> None:
    """Set the memory limit in bytes; ``None`` restores the default (half the
    memory available when it is first needed).

    Example:
        >>> import tensorchain as tc
        >>> tc.set_memory_limit(2 * 2**30)   # 2 GiB
        >>> tc.get_memory_limit()
        2147483648
        >>> tc.set_memory_limit(None)
    """
    global _memory_limit
    _memory_limit = None if limit is None else _checked_limit(limit)


def _checked_limit(limit: object) -> int:
    """A memory limit in bytes: a positive whole number (``2e9`` is taken too)."""
    whole = isinstance(limit, int | float) and not isinstance(limit, bool) and limit == int(limit)
    if not whole or limit < 1:
        from ..errors import PlanError

        raise PlanError(
            f"a memory limit is a positive whole number of bytes (e.g. 2 * 2**30) or None,"
            f" got {limit!r}"
        )
    return int(limit)


def get_memory_limit(override: int | None = None) -> int:
    """The limit in force: ``override``, else the one set, else half of the
    memory available when first asked (8 GiB if that cannot be read)."""
    if override is not None:
        return _checked_limit(override)
    if _memory_limit is not None:
        return _memory_limit
    return _default_limit()


@functools.cache
def _default_limit() -> int:
    # Read once: the hot path of a compiled call checks the limit every time.
    available = available_memory()
    return available // 2 if available else 8 * 2**30


def format_bytes(n: float) -> str:
    for unit, scale in (("TiB", 2**40), ("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{int(n)} B"
