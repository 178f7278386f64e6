"""Parsing index lists: ``[i, j]``, groups ``(h w)`` and ``(I + J)``, picked
positions ``ids[s]`` and ``0``, offset indices ``j + 1``, and the refusal
of slices ``1:3`` with the spelling that works.

One of the parts the parser is made of (:mod:`tensorchain.language.parser`).
"""

from __future__ import annotations

from ..arrays import limits
from .syntax import Group, Index, Offset, Pick, Ref
from .tokens import Token, describe


class ParseIndices:
    """Index lists: one part of the parser (``parser._Parser``), which takes the
    tokens and the other parts (``tok``, ``next``, ``fail``, ...) from ``self``."""

    def index_list(
        self, what: str, picks: bool = False, groups: bool = True, inner: bool = False
    ) -> tuple:
        """``[i, j]``; with ``picks``, a position may also be an index tensor's
        entries (``ids[s]``) or a constant (``0``): a :class:`Pick`; with
        ``groups``, ``(h w)``: a :class:`Group`; ``inner``: the list is the
        indices of an index tensor inside a pick (``ids[s]`` of ``T[ids[s], d]``)."""
        opener = self.expect("[", "to open the index list")
        out = [self._index(what, picks, groups, inner)]
        while self.accept(","):
            out.append(self._index(what, picks, groups, inner))
        self.expect("]", "to close the index list", opener)
        return tuple(out)

    def _index(
        self, what: str, picks: bool = False, groups: bool = True, inner: bool = False
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
            names = self.index_list(
                "an index name (the indices of an index tensor are names)", inner=True
            )
            return Pick(Ref(tok.text, names, tok.pos), tok.pos)
        index = Index(tok.text, tok.pos)
        if self.tok.kind == "op" and self.tok.text in "+-":
            if not picks:
                if what.startswith("a dim"):
                    where = "a declaration names one dim per axis"
                elif inner:
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
                f" the axis; found {describe(tok)}",
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
                f" {value}; found {describe(self.tok)} after it"
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
                raise self.fail(f"expected a dim name after '+', found {describe(self.tok)}")
        added = joins == {"+"}
        if self.tok.text != ")":
            raise self.fail(
                f"expected a name or ')' in the group opened at column {opener.pos.column},"
                f" found {describe(self.tok)}; a group is two or more names separated by"
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
        self.next()  # an index repeated is refused where indices are read (lower*.py)
        return Group(tuple(members), opener.pos, added)
