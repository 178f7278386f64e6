"""Text to tokens: the tokenizer of the spec language (numbers, names,
operators, newlines outside brackets), and how a token is named in messages.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass

from ..errors import SpecError
from .syntax import Pos

KEYWORDS = ("dim", "input", "param", "shift")

_TOKEN = re.compile(
    r"""
    (?P<ws>[ \t\r]+)
  | (?P<comment>\#[^\n]*)
  | (?P<newline>\n)
  | (?P<number>(?:[0-9]+\.[0-9]*|\.[0-9]+|[0-9]+)(?:[eE][+-]?[0-9]+)?)
  | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
  | (?P<op>\*\*|>=|<=|==|!=|[-+*/^()\[\],=<>:])
    """,
    re.VERBOSE,
)


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "newline", "eof"
    text: str
    pos: Pos


def tokenize(text: str, path: str | None = None) -> list[Token]:
    """Split ``text`` into tokens; newlines inside brackets are dropped
    (``path``: the file the text comes from, for errors)."""
    lines = text.split("\n")
    tokens: list[Token] = []
    line, line_start, depth, at = 1, 0, 0, 0
    while at < len(text):
        m = _TOKEN.match(text, at)
        pos = Pos(line, at - line_start + 1)
        if m is None:
            raise SpecError(_unexpected(text[at]), pos.line, pos.column, lines[line - 1], path)
        kind, value = m.lastgroup, m.group()
        at = m.end()
        if kind == "newline":
            if depth == 0:
                tokens.append(Token("newline", value, pos))
            line, line_start = line + 1, at
        elif kind in ("number", "name"):
            tokens.append(Token(kind, value, pos))
        elif kind == "op":
            if value in ("(", "["):
                depth += 1
            elif value in (")", "]") and depth > 0:
                depth -= 1
            tokens.append(Token("op", "^" if value == "**" else value, pos))
    tokens.append(Token("eof", "", Pos(line, at - line_start + 1)))
    return tokens


def _unexpected(char: str) -> str:
    """Why ``char`` cannot start a token (only ASCII is part of the language)."""
    if unicodedata.numeric(char, None) is not None:
        name = unicodedata.name(char, "a non-ASCII digit").lower()
        return (
            f"{char!r} ({name}) is not an ASCII digit; numbers are written with the digits 0-9 only"
        )
    return (
        f"unexpected character {char!r}; names use the ASCII letters, digits 0-9 and _,"
        " operators are + - * / ^ ** =, comparisons > < >= <= == != and brackets are ( ) [ ]"
    )


def describe(token: Token) -> str:
    if token.kind == "eof":
        return "the end of the text"
    if token.kind == "newline":
        return "the end of the line"
    return repr(token.text)
