"""The text of a spec (``tc.parse``, ``tc.load``): a str, or a file's UTF-8
text, else an error that says what to give instead."""

from __future__ import annotations

from pathlib import Path

from ..errors import SpecError


def read_spec(path: str | Path) -> str:
    """The text of the spec file at ``path`` (a :class:`SpecError` when it is
    not UTF-8 text)."""
    try:
        return Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1]
        raise SpecError(
            f"{path} is not UTF-8 text (byte {err.start} is {bad!r}); a spec is a text"
            " file: save it as UTF-8"
        ) from None


def check_text(text: object) -> None:
    """A :class:`SpecError` unless ``text`` (what ``tc.parse`` was given) is a str."""
    if not isinstance(text, str):
        raise SpecError(f"parse takes the spec text as a str, got {type(text).__name__}")
