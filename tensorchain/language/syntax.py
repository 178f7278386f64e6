"""Text to syntax tree: the tokenizer and recursive-descent parser of the spec language.

The parser is hand-written so that every error can point at one token with a
line, a column and a caret, and say what was expected there. Nothing in the
text is ever evaluated; numbers are read with ``float``/``int`` only.
"""

from __future__ import annotations

import difflib
import math
import re
import unicodedata
from dataclasses import dataclass, replace

from ..arrays import limits
from ..errors import SpecError, count_axes
from .domains import ALIASES, KINDS

KEYWORDS = ("dim", "input", "param", "shift")

#: The words that may end an input or param declaration, and how many dim
#: names follow each (``onehot c``): so far the value domains of
#: :mod:`tensorchain.language.domains`. A new modifier is one more entry here, read
#: from ``TensorDecl.modifiers`` where declarations are (network.py).
MODIFIERS: dict[str, int] = {name: kind.args for name, kind in KINDS.items()}

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
class Pos:
    """A 1-based line and column in the spec text."""

    line: int
    column: int


@dataclass(frozen=True)
class Token:
    kind: str  # "number", "name", "op", "newline", "eof"
    text: str
    pos: Pos


# --- syntax tree -----------------------------------------------------------


@dataclass(frozen=True)
class Num:
    value: float
    pos: Pos


@dataclass(frozen=True)
class Index:
    name: str
    pos: Pos


@dataclass(frozen=True)
class Pick:
    """An index position that picks entries rather than naming an index: the
    entries of an integer index tensor (``T[ids[s], d]``, ``by`` its
    reference) or a constant position (``x[s, 0, k]``, ``by`` the number)."""

    by: Ref | int
    pos: Pos


@dataclass(frozen=True)
class Offset:
    """``j + 1`` in an index list on the right side: the positions ``j + offset``
    of the tensor's axis, ``j`` running over its own dim (a range of positions,
    ``x[s, 1:3]`` in numpy being ``x[s, j + 1]`` with ``j`` of size 2)."""

    index: Index
    offset: int
    pos: Pos

    @property
    def name(self) -> str:
        return f"{self.index.name} + {self.offset}"


@dataclass(frozen=True)
class Group:
    """``(h w)`` in an index list: the indices ``h`` and ``w`` as one axis, row-major
    (``w`` fastest, as numpy's reshape and einops). In a declaration its members
    are dims and the axis has the product dim ``(H W)``."""

    members: tuple[Index, ...]
    pos: Pos
    added: bool = False  # (I + J): in a declaration, the sum of dims (a concatenated axis)

    @property
    def name(self) -> str:
        return f"({(' + ' if self.added else ' ').join(m.name for m in self.members)})"


@dataclass(frozen=True)
class Ref:
    """A tensor reference: ``x`` (whole tensor) or ``W[i, j]`` (indices given;
    a position may be a :class:`Pick`)."""

    name: str
    indices: tuple[Index | Pick | Group | Offset, ...] | None
    pos: Pos


@dataclass(frozen=True)
class Call:
    func: str
    args: tuple[Expr, ...]
    pos: Pos


@dataclass(frozen=True)
class Neg:
    operand: Expr
    pos: Pos


#: The comparisons of a condition (only inside ``where(cond, a, b)``).
COMPARISONS = (">", "<", ">=", "<=", "==", "!=")


@dataclass(frozen=True)
class BinOp:
    op: str  # one of + - * / ^, or a comparison (COMPARISONS)
    left: Expr
    right: Expr
    pos: Pos
    paren: bool = False  # written in parentheses: a sum in them is one term


Expr = Num | Ref | Call | Neg | BinOp


@dataclass(frozen=True)
class DimDecl:
    name: str
    size: int | None
    pos: Pos


@dataclass(frozen=True)
class Modifier:
    """A word that ends a declaration, with the dim names it takes:
    ``positive``, ``onehot c`` (see :data:`MODIFIERS`)."""

    name: str
    args: tuple[Index, ...]
    pos: Pos


@dataclass(frozen=True)
class TensorDecl:
    kind: str  # "input" or "param"
    name: str
    axes: tuple[Index | Group, ...]  # each names a dim (a group: the product of dims)
    pos: Pos
    modifiers: tuple[Modifier, ...] = ()
    index: Index | None = None  # ``input ids[B] index V``: integers indexing dim V


@dataclass(frozen=True)
class ShiftDecl:
    """``shift S[P, K, T] stride 2 padding 1``: the constant S[p, k, t] = 1 where
    t = stride·p + k − padding (a sliding window), else 0."""

    name: str
    axes: tuple[Index, ...]
    stride: int
    padding: int
    pos: Pos


@dataclass(frozen=True)
class Assign:
    target: str
    indices: tuple[Index | Group, ...] | None
    expr: Expr
    pos: Pos


Statement = DimDecl | TensorDecl | ShiftDecl | Assign


@dataclass(frozen=True)
class Program:
    statements: tuple[Statement, ...]
    lines: tuple[str, ...]
    path: str | None = None  # the file it was read from, for messages

    def error(self, message: str, pos: Pos, cls: type[SpecError] = SpecError) -> SpecError:
        """An error of class ``cls`` pointing at ``pos`` with the source line quoted."""
        source = self.lines[pos.line - 1] if 0 < pos.line <= len(self.lines) else None
        return cls(message, pos.line, pos.column, source, self.path)

    def where(self, pos: Pos) -> str:
        """``file, line 3`` (or ``line 3``) for warnings."""
        return f"{self.path}, line {pos.line}" if self.path else f"line {pos.line}"


# --- tokenizer -------------------------------------------------------------


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


def _describe(token: Token) -> str:
    if token.kind == "eof":
        return "the end of the text"
    if token.kind == "newline":
        return "the end of the line"
    return repr(token.text)


# --- parser ----------------------------------------------------------------


class _Parser:
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
                    f" found {_describe(self.tok)} on line {self.tok.pos.line}",
                    opener,
                )
            raise self.fail(f"expected {text!r} {what}, found {_describe(self.tok)}")
        return token

    def name(self, what: str) -> Token:
        if self.tok.kind != "name":
            raise self.fail(f"expected {what}, found {_describe(self.tok)}")
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
                    f" {_describe(self.tok)}; {advice}"
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
                    f" found {_describe(tok)}"
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
                        f" {name.text!r}, found {_describe(tok)}"
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

    def index_list(self, what: str, picks: bool = False, groups: bool = True) -> tuple:
        """``[i, j]``; with ``picks``, a position may also be an index tensor's
        entries (``ids[s]``) or a constant (``0``): a :class:`Pick`; with
        ``groups``, ``(h w)``: a :class:`Group`."""
        opener = self.expect("[", "to open the index list")
        out = [self._index(what, picks, groups)]
        while self.accept(","):
            out.append(self._index(what, picks, groups))
        self.expect("]", "to close the index list", opener)
        return tuple(out)

    def _index(
        self, what: str, picks: bool = False, groups: bool = True
    ) -> Index | Pick | Group | Offset:
        tok = self.tok
        if groups and tok.kind == "op" and tok.text == "(":
            return self._group()
        if picks and tok.kind == "op" and tok.text == ":":
            self._slice(None, tok)
        if tok.kind == "number":
            if not picks:
                raise self.fail(f"expected {what}, found the number {tok.text}")
            if not tok.text.isdigit():
                raise self.fail(
                    f"a constant position is a whole number counted from 0, found {tok.text}"
                )
            if len(tok.text) > 15 or int(tok.text) >= limits.MAX_DIM:
                raise self.fail(f"the position {tok.text[:20]} is beyond any dim's size")
            self.next()
            if self.tok.text == ":":
                self._slice(int(tok.text), tok)
            if self.tok.kind == "op" and self.tok.text in "+-":
                raise self.fail(
                    f"write the index first and the offset after it, j + {tok.text}"
                    f" (positions {tok.text}, {int(tok.text) + 1}, … of the axis)",
                    tok,
                )
            return Pick(int(tok.text), tok.pos)
        if picks and tok.kind == "op" and tok.text in "+-":
            raise self.fail(
                f"expected {what}, found {tok.text!r}: negative positions (counted from"
                " the end) are not part of the language; write the position from 0"
            )
        tok = self.name(what)
        if picks and self.tok.text == "[":
            inner = self.index_list("an index name (the indices of an index tensor are names)")
            return Pick(Ref(tok.text, inner, tok.pos), tok.pos)
        index = Index(tok.text, tok.pos)
        if self.tok.kind == "op" and self.tok.text in "+-":
            if not picks:
                if what.startswith("a dim"):
                    where = "a declaration names one dim per axis"
                elif "index tensor" in what:
                    where = (
                        "an index tensor's positions are read whole; gather by all of"
                        " them, then read the range of the result (g[s] = E[ids[s]], then"
                        " z[j] = g[j + 1])"
                    )
                else:
                    where = (
                        "the left side names each axis with an index, and an offset is"
                        " read on the right side only, as in y[s, j] = x[s, j + 1]"
                    )
                raise self.fail(f"expected {what}, found {self.tok.text!r}: {where}")
            return self._offset(index)
        return index

    def _offset(self, index: Index) -> Offset:
        """``j + 1``: the positions ``j + 1`` of the axis (a range of positions)."""
        op = self.next()
        tok = self.tok
        if tok.kind == "name":
            raise self.fail(
                f"{index.name} {op.text} {tok.text} adds two indices, a sliding window: write"
                f" it with a shift tensor, shift S[I, J, T] (S[i, j, t] = 1 where t = i + j),"
                f" then S[{index.name}, {tok.text}, t] * x[..., t, ...] (see 'Convolution:"
                " shift tensors' in docs/language.md)",
                tok,
            )
        if tok.kind != "number" or not tok.text.isdigit():
            raise self.fail(
                f"an offset is a whole number: {index.name} + 1 reads positions 1, 2, … of"
                f" the axis; found {_describe(tok)}",
                tok,
            )
        if len(tok.text) > 15 or int(tok.text) >= limits.MAX_DIM:
            raise self.fail(f"the offset {tok.text[:20]} is beyond any dim's size", tok)
        value = int(self.next().text)
        if op.text == "-" and value != 0:
            raise self.fail(
                f"{index.name} - {value} would read positions before the start of the axis"
                f" (negative for {index.name} < {value}); an offset adds a whole number:"
                f" read y[..., {index.name}] = x[..., {index.name} + {value}] the other way"
                f" round, or start the range at {index.name} + 0",
                op,
            )
        if self.tok.kind == "op" and self.tok.text in "+-*/^":
            raise self.fail(
                f"an offset index is an index plus one whole number, as in {index.name} +"
                f" {value}; found {_describe(self.tok)} after it"
            )
        return Offset(index, value, index.pos)

    def _slice(self, start: int | None, at: Token) -> None:
        """Refuse ``x[s, 1:3]``: a range of positions is an offset index, ``x[s, j + 1]``
        with ``j`` of a dim of 2 positions."""
        self.accept(":")
        stop = None
        if self.tok.kind == "number" and self.tok.text.isdigit():
            stop = int(self.next().text)
        first = start or 0
        if stop is not None and stop <= first:
            size = f"{first}:{stop} holds no positions"
        elif stop is not None:
            size = f"dim j = {stop - first}"
        else:
            size = f"dim j = the size of that axis{f' - {first}' if first else ''}"
        raise self.fail(
            f"a range of positions ({'' if start is None else start}:"
            f"{'' if stop is None else stop}) is written with an index and an offset:"
            f" {self.tensor}[..., j + {first}, ...] reads positions {first}, {first + 1}, …"
            f" of the axis, j running over its own dim ({size}; or j on another tensor of the"
            " statement)",
            at,
        )

    def _group(self) -> Group:
        """``(h w)``: two or more names separated by spaces (einops' notation)."""
        opener = self.next()
        members: list[Index] = []
        joins: set[str] = set()  # " " between names, "+" in a sum of dims
        while self.tok.kind == "name":
            tok = self.next()
            members.append(Index(tok.text, tok.pos))
            join = "+" if self.accept("+") else " "
            if join == "+" or self.tok.kind == "name":
                joins.add(join)
            if len(joins) > 1:
                raise self.fail(
                    "a group either lists indices, (h w), or in a declaration adds dims,"
                    " (I + J); not both"
                )
            if join == "+" and self.tok.kind != "name":
                raise self.fail(f"expected a dim name after '+', found {_describe(self.tok)}")
        added = joins == {"+"}
        if self.tok.text != ")":
            raise self.fail(
                f"expected a name or ')' in the group opened at column {opener.pos.column},"
                f" found {_describe(self.tok)}; a group is two or more names separated by"
                " spaces, as in x[s, (h w)]"
            )
        if len(members) < 2:
            written = f"({members[0].name})" if members else "()"
            hint = f"; write {members[0].name} alone" if members else ""
            raise self.fail(
                f"the group {written} has {len(members)} name{'s' * (len(members) != 1)}; a"
                f" group merges two or more into one axis, as in (h w){hint}",
                opener,
            )
        self.next()  # an index repeated is refused where indices are read (lower.py)
        return Group(tuple(members), opener.pos, added)

    # argument := expression (comparison expression)?   (a condition: where's first)
    def argument(self) -> Expr:
        left = self.expression()
        if self.tok.kind == "op" and self.tok.text == "=":
            raise self.fail(
                "'=' defines a tensor; to compare, write == (or one of > < >= <= !=),"
                " e.g. where(x == 0, a, b)"
            )
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self.next()
            right = self.expression()
            self.no_comparison()
            return self.made(BinOp(op.text, left, right, op.pos), op, left, right)
        return left

    def no_comparison(self) -> None:
        """Refuse a comparison where none can be: it is only a condition of where."""
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            raise self.fail(
                f"a comparison ({self.tok.text}) is only the condition of where(cond, a, b)"
                " and compares two expressions once, e.g. where(x > 0, x, 0); for a 0/1"
                " mask write where(x > 0, 1, 0)"
            )

    # expression := term (('+' | '-') term)*
    def expression(self) -> Expr:
        expr = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.next()
            right = self.term()
            expr = self.made(BinOp(op.text, expr, right, op.pos), op, expr, right)
        return expr

    # term := unary (('*' | '/') unary)*
    def term(self) -> Expr:
        expr = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.next()
            right = self.unary()
            expr = self.made(BinOp(op.text, expr, right, op.pos), op, expr, right)
        return expr

    # unary := '-' unary | power ;  -x^2 is -(x^2), as in Python
    def unary(self) -> Expr:
        sign = self.tok
        minus = self.accept("-")
        if minus is not None or self.accept("+") is not None:
            self.enter(sign)
            operand = self.unary()
            self.nesting -= 1
            return self.made(Neg(operand, sign.pos), sign, operand) if minus else operand
        return self.power()

    # power := atom ('^' unary)?   (right-associative)
    def power(self) -> Expr:
        base = self.atom()
        op = self.accept("^")
        if op is not None:
            self.enter(op)
            exponent = self.unary()
            self.nesting -= 1
            return self.made(BinOp("^", base, exponent, op.pos), op, base, exponent)
        return base

    def not_indexed(self, expr: Expr, what: str, parenthesised: bool = False) -> None:
        """Refuse ``f(x)[i]``, ``(a + b)[i]`` and ``2[i]``: only tensors have indices."""
        if self.tok.text != "[":
            return
        bracket = self.tok
        names = ", ".join(i.name for i in self.index_list("an index name"))
        written = f"({show(expr)})" if parenthesised else show(expr)
        advice = (
            "write the number alone (it is the same for every index)"
            if isinstance(expr, Num)
            else f"define it on its own line first (t = {show(expr)}), then use t[{names}],"
            " or index the tensors inside it"
        )
        raise self.fail(
            f"{what} cannot be indexed, as in {written}[{names}]; only tensors take"
            f" indices: {advice}",
            bracket,
        )

    def atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.next()
            value = float(tok.text)
            if not math.isfinite(value):
                raise self.fail(f"the number {tok.text[:30]} is too large for a float64", tok)
            number = Num(value, tok.pos)
            self.not_indexed(number, "a number")
            return number
        if tok.kind == "name":
            self.next()
            if tok.text in KEYWORDS:
                raise self.fail(
                    f"{tok.text!r} is a keyword and cannot be used in an expression",
                    tok,
                )
            opener = self.accept("(")
            if opener is not None:
                self.enter(opener)
                if tok.text == "size" and self.tok.text == "(":
                    raise self.fail(
                        "size takes one declared dim; for a product dim write the product"
                        " of its members' sizes, size(H) * size(W) for (H W)"
                    )
                args = [self.argument()]
                if tok.text == "size" and self.tok.kind == "name":
                    raise self.fail(
                        f"size takes one declared dim, found a second name {self.tok.text!r};"
                        " for a product dim write the product of its members' sizes,"
                        f" size(H) * size({self.tok.text})"
                    )
                while self.accept(","):
                    args.append(self.argument())
                self.expect(")", f"to close the call of {tok.text!r}", opener)
                self.nesting -= 1
                call = Call(tok.text, tuple(args), tok.pos)
                self.not_indexed(call, "the result of a call")
                return self.made(call, tok, *args)
            if self.tok.text == "[":
                self.tensor = tok.text  # for messages about its positions
                positions = self.index_list(_POSITION, picks=True)
                return Ref(tok.text, positions, tok.pos)
            return Ref(tok.text, None, tok.pos)
        opener = self.accept("(")
        if opener is not None:
            self.enter(opener)
            expr = self.expression()
            self.no_comparison()
            self.expect(")", "to close the parenthesis", opener)
            self.nesting -= 1
            self.not_indexed(expr, "a parenthesised expression", parenthesised=True)
            if isinstance(expr, BinOp) and expr.op in "+-":  # (a + b) is one term, as 1 * (a + b)
                marked = replace(expr, paren=True)
                self.depth[id(marked)] = self.depth.get(id(expr), 1)
                return marked
            return expr
        raise self.fail(
            f"expected a number, a tensor, a function call or '(', found {_describe(tok)}"
        )


_POSITION = (
    "an index name, an index tensor's entries (ids[s]), a position (0) or an offset index (j + 1)"
)


def parse_program(text: str, path: str | None = None) -> Program:
    """Parse spec text into a :class:`Program` (syntax only; see ``network``);
    ``path`` names the file in errors."""
    return _Parser(text, path).parse()


_PRECEDENCE = {"+": 1, "-": 1, "*": 2, "/": 2, "^": 4, **dict.fromkeys(COMPARISONS, 0)}


def show(expr: Expr, parent: int = 0) -> str:
    """Print an expression back as spec text (used in messages and derivations)."""
    if isinstance(expr, Num):
        return f"{expr.value:g}"
    if isinstance(expr, Ref):
        if expr.indices is None:
            return expr.name
        return f"{expr.name}[{', '.join(map(show_index, expr.indices))}]"
    if isinstance(expr, Call):
        return f"{expr.func}({', '.join(show(a) for a in expr.args)})"
    if isinstance(expr, Neg):
        text = "-" + show(expr.operand, 3)
        return f"({text})" if parent > 3 else text
    prec = _PRECEDENCE[expr.op]
    right_prec = prec if expr.op == "^" else prec + 1
    left_prec = prec + 1 if expr.op == "^" else prec
    op = expr.op if expr.op == "^" else f" {expr.op} "
    text = f"{show(expr.left, left_prec)}{op}{show(expr.right, right_prec)}"
    return f"({text})" if prec < parent or expr.paren else text


def show_index(index: Index | Pick | Group | Offset) -> str:
    """One position of an index list as spec text: ``i``, ``(h w)``, ``ids[s]``, ``0``
    or ``j + 1``."""
    if isinstance(index, Index | Group | Offset):
        return index.name
    return str(index.by) if isinstance(index.by, int) else show(index.by)
