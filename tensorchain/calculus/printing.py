"""Labeled tensors and their terms in index notation: ``σ'(z)[n] · δ(n, n')``.

What a :class:`~tensorchain.calculus.labeled.LabeledTensor` prints as its
repr, and what derivations and reports build on: summed labels get letters
no spec can take for its own (``p``, ``q'``), a selection prints as
``δ(ids[p], i)``, a picked tensor with its indices in place of its colons.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator, Sequence
from typing import Protocol

from ..language.gather import Selection
from .terms import Term


class Printed(Protocol):
    """What printing reads of a labeled tensor: its axes and its terms."""

    indices: tuple[str, ...]
    terms: tuple[Term, ...]


def letters(pool: str, avoid: Collection[str]) -> Iterator[str]:
    """Index names for printing: the letters of ``pool``, then the same with
    one prime, two, ... (``p'``, ``q'``: no spec can name an index so, so a
    generated name is never taken for a user's), none of them in ``avoid``."""
    for primes in itertools.count():
        for c in pool:
            name = c + "'" * primes
            if name not in avoid:
                yield name


def named_in(t: Printed) -> set[str]:
    """The names inside the factors' names (``u`` of ``softmax(sc, u)``), which
    a generated index name must not repeat."""
    return {
        word
        for term in t.terms
        for f in term.factors
        for word in re.findall(r"[A-Za-z_]\w*", f.name)
    }


def _letter_map(t: Printed) -> dict[str, str]:
    names = {i: i for i in t.indices}
    pool = letters("ijklpqrstuvwxyzabcdefgh", {*t.indices, *named_in(t)})
    for term in t.terms:
        for f in term.factors:
            for lab in f.labels:
                if lab not in names:
                    names[lab] = next(pool)
    return names


def selection_text(name: str, labels: list[str]) -> str:
    """A selection factor in index notation: ``δ(ids[p], i)``, 1 where ids[p] = i
    (``name`` is its factor's, ``onehot(ids)``)."""
    inner = name[len("onehot(") : -1] if name.startswith("onehot(") else name
    *at, v = labels
    return f"δ({inner}[{', '.join(at)}], {v})" if at else f"δ({inner}, {v})"


def picked_name(name: str, count: int) -> bool:
    """Whether ``name`` is a picked tensor's, with a colon for each of ``count`` indices."""
    return name.endswith("]") and "[" in name and name.count(":") == count > 0


def indexed(name: str, labels: list[str]) -> str:
    """``name[i, j]``; a picked tensor's name (``x[:, 0, :]``, ``T[ids[:], :]``)
    gets the labels in the places of its colons: ``x[i, 0, k]``, ``T[ids[p], j]``."""
    if picked_name(name, len(labels)):
        it = iter(labels)
        return "".join(next(it) if c == ":" else c for c in name)
    return f"{name}[{', '.join(labels)}]" if labels else name


def format_term(term: Term, names: dict[str, str]) -> str:
    parts = []
    if term.coeff != 1.0 or not (term.factors or term.deltas):
        parts.append(f"{term.coeff:g}")
    for f in term.factors:
        if isinstance(f.array, Selection):
            parts.append(selection_text(f.name, [names[lab] for lab in f.labels]))
            continue
        parts.append(indexed(f.name, [names[lab] for lab in f.labels]))
    parts.extend(f"δ({names[a]}, {names[b]})" for a, b in term.deltas)
    return " · ".join(parts)


def signed_sum(texts: list[tuple[bool, str]]) -> str:
    """Terms joined by `` + `` and `` - ``; each given as (negative, the text of
    its absolute value)."""
    out = ""
    for k, (negative, text) in enumerate(texts):
        if k == 0:
            out = f"-{text}" if negative else text
        else:
            out += f" - {text}" if negative else f" + {text}"
    return out or "0"


def format_sum(terms: Sequence[Term], names: dict[str, str]) -> str:
    """``a[i] · b[j] - 2 · c[i, j]``: terms in index notation, a negative
    coefficient printed as a minus sign."""
    texts = []
    for term in terms:
        negative = isinstance(term.coeff, int | float) and term.coeff < 0
        if negative:
            term = type(term)(-term.coeff, term.factors, term.deltas)
        texts.append((negative, format_term(term, names)))
    return signed_sum(texts)


def format_terms(t: Printed) -> str:
    """``σ'(z)[n] · δ(n, n') + ...`` — the tensor in index notation."""
    if not t.terms:
        return "0"
    return format_sum(t.terms, _letter_map(t))
