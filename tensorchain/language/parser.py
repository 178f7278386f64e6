"""Tokens to syntax tree: the recursive-descent parser of the spec language.

The parser is hand-written so that every error can point at one token with a
line, a column and a caret, and say what was expected there. Nothing in the
text is ever evaluated; numbers are read with ``float``/``int`` only. This
module reads statements and declarations; expressions and index lists are
parts of their own (:mod:`~tensorchain.language.parse_expressions`,
:mod:`~tensorchain.language.parse_indices`).
"""

from __future__ import annotations

import difflib

from ..arrays import limits
from ..errors import SpecError, count_axes
from .domains import ALIASES, KINDS
from .parse_expressions import ParseExpressions
from .parse_indices import ParseIndices
from .syntax import (
    Assign,
    DimDecl,
    Expr,
    Index,
    Modifier,
    Program,
    ShiftDecl,
    Statement,
    TensorDecl,
)
from .tokens import KEYWORDS, Token, describe, tokenize

#: The words that may end an input or param declaration, and how many dim
#: names follow each (``onehot c``): so far the value domains of
#: :mod:`tensorchain.language.domains`. A new modifier is one more entry here, read
#: from ``TensorDecl.modifiers`` where declarations are (network.py).
MODIFIERS: dict[str, int] = {name: kind.args for name, kind in KINDS.items()}


def unknown_modifier(word: str, tensor: str) -> str:
    """Why ``word`` cannot end the declaration of ``tensor``, with the known modifiers."""
    close = ALIASES.get(word.lower()) or next(
        iter(difflib.get_close_matches(word.lower(), MODIFIERS, n=1, cutoff=0.6)), None
    )
    hint = f"did you mean {close!r}? A" if close else "a"
    known = ", ".join(" ".join((name, *["DIM"] * args)) for name, args in MODIFIERS.items())
    return (
        f"unknown modifier {word!r} in the declaration of {tensor}; {hint} declaration"
        f" may end with one of: {known} (e.g. param {tensor}[n] positive)"
    )


class _Parser(ParseExpressions, ParseIndices):
    """The parser of one spec text (its parts' methods share ``self``)."""

    def __init__(self, text: str, path: str | None = None) -> None:
        self.program = Program((), tuple(text.split("\n")), path)
        if len(text) > limits.MAX_SPEC_CHARS:
            raise SpecError(
                f"the spec has {len(text):,} characters, more than the limit of"
                f" {limits.MAX_SPEC_CHARS:,}; split the network or raise"
                " tensorchain.arrays.limits.MAX_SPEC_CHARS",
                path=path,
            )
        self.tokens = tokenize(text, path)
        self.at = 0
        self.nesting = 0  # recursion depth of the parser, bounded by MAX_DEPTH
        self.depth: dict[int, int] = {}  # id(node) -> height of its tree
        self.tensor = "x"  # the tensor whose index list is being read

    def enter(self, token: Token) -> None:
        self.nesting += 1
        if self.nesting > limits.MAX_DEPTH:
            raise self._too_deep(token)

    def made(self, node: Expr, token: Token, *kids: Expr) -> Expr:
        """Record the height of a new node; refuse trees deeper than MAX_DEPTH."""
        height = 1 + max((self.depth.get(id(k), 1) for k in kids), default=0)
        if height > limits.MAX_DEPTH:
            raise self._too_deep(token)
        self.depth[id(node)] = height
        return node

    def _too_deep(self, token: Token) -> SpecError:
        return self.fail(
            f"the expression nests more than {limits.MAX_DEPTH} levels deep here"
            " (parentheses, calls, signs and each operator of a chain count);"
            " split it into several statements",
            token,
        )

    @property
    def tok(self) -> Token:
        return self.tokens[self.at]

    def fail(self, message: str, token: Token | None = None) -> SpecError:
        token = token or self.tok
        return self.program.error(message, token.pos)

    def next(self) -> Token:
        token = self.tok
        self.at += 1
        return token

    def accept(self, text: str) -> Token | None:
        if self.tok.kind == "op" and self.tok.text == text:
            return self.next()
        return None

    def expect(self, text: str, what: str, opener: Token | None = None) -> Token:
        token = self.accept(text)
        if token is None:
            if opener is not None and self.tok.pos.line != opener.pos.line:
                raise self.fail(
                    f"this {opener.text!r} is never closed: expected {text!r} {what},"
                    f" found {describe(self.tok)} on line {self.tok.pos.line}",
                    opener,
                )
            raise self.fail(f"expected {text!r} {what}, found {describe(self.tok)}")
        return token

    def name(self, what: str) -> Token:
        if self.tok.kind != "name":
            raise self.fail(f"expected {what}, found {describe(self.tok)}")
        return self.next()

    def parse(self) -> Program:
        statements: list[Statement] = []
        while self.tok.kind != "eof":
            if self.tok.kind == "newline":
                self.next()
                continue
            if len(statements) == limits.MAX_STATEMENTS:
                raise self.fail(
                    f"the spec has more than {limits.MAX_STATEMENTS:,} statements;"
                    " split the network or raise tensorchain.arrays.limits.MAX_STATEMENTS"
                )
            statements.append(self.statement())
            self.no_comparison()
            if self.tok.kind not in ("newline", "eof"):
                if self.tok.kind in ("name", "number") or self.tok.text == "(":
                    advice = (
                        "write an operator (+ - * / ^) between two factors, e.g. 2 * x,"
                        " and put one statement on each line"
                    )
                else:
                    advice = "put one statement on each line"
                raise self.fail(
                    f"expected the end of the line after the statement, found"
                    f" {describe(self.tok)}; {advice}"
                )
        return Program(tuple(statements), self.program.lines, self.program.path)

    def shift(self, first: Token) -> ShiftDecl:
        name = self.name("the name of the tensor after 'shift'")
        if self.tok.text != "[":
            raise self.fail(
                f"expected '[' after shift {name.text}: a shift tensor has three axes,"
                f" output position, kernel offset and input position, e.g."
                f" shift {name.text}[P, K, T] stride 1 padding 0"
            )
        axes = self.index_list("a dim name", groups=False)
        if len(axes) != 3:
            raise self.fail(
                f"shift {name.text} has {count_axes(len(axes))}; it needs three, [output position,"
                " kernel offset, input position], e.g. [P, K, T]",
                first,
            )
        options = {"stride": 1, "padding": 0}
        while self.tok.kind == "name" and self.tok.text in options:
            key = self.next().text
            tok = self.tok
            least = 1 if key == "stride" else 0
            if tok.kind != "number" or not tok.text.isdigit() or int(tok.text[:20]) < least:
                raise self.fail(
                    f"expected a whole number of at least {least} after {key!r},"
                    f" found {describe(tok)}"
                )
            if len(tok.text) > 15 or int(tok.text) > limits.MAX_DIM:
                raise self.fail(f"{key} {tok.text[:20]} is larger than {limits.MAX_DIM:,}")
            options[key] = int(self.next().text)
        return ShiftDecl(name.text, axes, options["stride"], options["padding"], first.pos)

    def statement(self) -> Statement:
        first = self.name("a statement (dim, input, param, shift or an assignment)")
        close = difflib.get_close_matches(first.text.lower(), KEYWORDS, n=1, cutoff=0.6)
        if first.text not in KEYWORDS and self.tok.kind == "name" and close:
            raise self.fail(
                f"unknown keyword {first.text!r} before {self.tok.text!r}; did you mean"
                f" {close[0]!r}? A statement starts with dim, input, param or shift, or with"
                " the name of the tensor it defines followed by '='",
                first,
            )
        if first.text == "dim":
            name = self.name("the name of the dim after 'dim'")
            size = None
            if self.accept("="):
                tok = self.tok
                if tok.kind != "number" or not tok.text.isdigit() or int(tok.text[:20]) < 1:
                    raise self.fail(
                        f"expected a positive whole number as the size of dim"
                        f" {name.text!r}, found {describe(tok)}"
                    )
                if len(tok.text) > 15 or int(tok.text) > limits.MAX_DIM:
                    raise self.fail(
                        f"dim {name.text!r} = {tok.text[:20]} is larger than the limit"
                        f" {limits.MAX_DIM:,} (tensorchain.arrays.limits.MAX_DIM)"
                    )
                size = int(self.next().text)
            return DimDecl(name.text, size, first.pos)
        if first.text in ("input", "param"):
            name = self.name(f"the name of the tensor after {first.text!r}")
            axes: tuple[Index, ...] = ()
            if self.tok.text == "[":
                axes = self.index_list(
                    "a dim name (declare sizes with 'dim n = 4', then write x[n])"
                )
            index = self.indexes(first, name) if self.tok.text == "index" else None
            modifiers = self.modifiers(name.text)
            if index is not None and modifiers:
                raise self.fail(
                    f"{name.text} holds integer positions ('index {index.name}'), which take"
                    f" no value domain: drop {modifiers[0].name!r}",
                    modifiers[0],
                )
            return TensorDecl(first.text, name.text, axes, first.pos, modifiers, index)
        if first.text == "shift":
            return self.shift(first)
        indices = None
        if self.tok.text == "[":
            indices = self.index_list("an index name")
        if self.tok.kind == "op" and self.tok.text == "(":
            raise self.fail(
                f"a statement must start with a tensor name, but {first.text!r} is"
                " followed by '('; write the result's name first: y = f(x)"
            )
        self.expect("=", f"after {first.text!r} to define it")
        return Assign(first.text, indices, self.expression(), first.pos)

    def modifiers(self, tensor: str) -> tuple[Modifier, ...]:
        """The words after a declaration's axes (``positive``, ``onehot c``):
        each a known modifier followed by the dim names it takes."""
        out = []
        while self.tok.kind == "name":
            word = self.next()
            if word.text in KEYWORDS or self.tok.text == "[":
                raise self.fail("put one declaration on each line", word)
            if word.text == "index":
                raise self.fail(f"write 'index' and its dim right after {tensor}'s axes", word)
            if word.text not in MODIFIERS:
                raise self.fail(unknown_modifier(word.text, tensor), word)
            what = f"a dim name after {word.text!r} (e.g. {word.text} c)"
            args = tuple(self._index(what) for _ in range(MODIFIERS[word.text]))
            out.append(Modifier(word.text, args, word.pos))
        return tuple(out)

    def indexes(self, kind: Token, name: Token) -> Index:
        """``index V`` after ``input ids[B]``: the entries are integer positions along dim V."""
        self.next()
        if kind.text != "input":
            raise self.fail(
                f"{name.text} is declared 'param' but holds integer positions ('index');"
                f" positions are data, never differentiated: declare it with"
                f" 'input {name.text}[...] index ...'",
                kind,
            )
        dim = self.name(
            f"the dim whose positions {name.text} holds after 'index', e.g."
            f" input {name.text}[B] index V"
        )
        return Index(dim.text, dim.pos)


def parse_program(text: str, path: str | None = None) -> Program:
    """Parse spec text into a :class:`Program` (syntax only; see ``network``);
    ``path`` names the file in errors."""
    return _Parser(text, path).parse()
