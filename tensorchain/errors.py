"""The exception family: every error tensorchain raises on bad input."""

from __future__ import annotations

import os
import sys
import warnings


def count_axes(n: int) -> str:
    """``1 axis``, ``2 axes``: a count of axes for a message."""
    return f"{n} axis" if n == 1 else f"{n} axes"


class TensorchainError(Exception):
    """Base class of every error raised on bad input."""


class SpecError(TensorchainError):
    """The spec text is malformed or refers to something undeclared.

    ``line`` and ``column`` are 1-based and point at the offending token; the
    message repeats the source line with a caret under it. ``path`` is the
    file the spec was loaded from (``None`` for text given to ``parse``).
    """

    def __init__(
        self,
        message: str,
        line: int | None = None,
        column: int | None = None,
        source_line: str | None = None,
        path: str | None = None,
    ) -> None:
        self.line = line
        self.column = column
        self.path = path
        self.bare_message = message
        where = [path] if path else []
        if line is not None and column is not None:
            where.append(f"line {line}, column {column}")
        text = f"{', '.join(where)}: {message}" if where else message
        if line is not None and column is not None and source_line is not None:
            text += f"\n    {source_line}\n    {' ' * (column - 1)}^"
        super().__init__(text)


class ShapeError(SpecError):
    """Sizes disagree: an index bound to two sizes, a shape mismatch, a bad value.

    A subclass of :class:`SpecError` because most shape errors point at a place
    in the spec; ``line`` is ``None`` when the conflict comes from values alone.
    """


class ValuesError(TensorchainError, ValueError):
    """A values dict is missing a tensor, names an unknown one, or has a bad dtype."""


class DerivativeError(TensorchainError):
    """A derivative was asked that cannot be formed as asked (for example ``grad``
    of a tensor that is not a scalar, or an operation without a rule)."""


class PlanError(TensorchainError):
    """A contraction cannot be planned as asked (an unknown optimizer, a
    contraction beyond what a reference method supports)."""


class MemoryLimitError(PlanError, MemoryError):
    """A computation would need more memory than the limit allows; raised from
    the forecast, before anything large is allocated. ``forecast`` and ``limit``
    are in bytes."""

    def __init__(self, message: str, forecast: int, limit: int) -> None:
        self.forecast = forecast
        self.limit = limit
        super().__init__(message)


class NonFiniteWarning(UserWarning):
    """A value holds NaN or infinity (an error instead with ``strict=True``)."""


_PACKAGE = os.path.dirname(os.path.abspath(__file__)) + os.sep


def warn(message: str, category: type[Warning]) -> None:
    """``warnings.warn`` attributed to the first caller outside tensorchain
    (its files and the code it compiles), so that a warning names the user's
    line whichever path (a first call, a cached one, a plan) raised it."""
    frame, level = sys._getframe(1), 2
    while frame is not None and (
        frame.f_code.co_filename.startswith(_PACKAGE)
        or frame.f_code.co_filename.startswith("<tensorchain")
    ):
        frame, level = frame.f_back, level + 1
    warnings.warn(message, category, stacklevel=level)
