"""Printing: labeled tensors, terms and chains in index notation."""

from __future__ import annotations

import itertools
import re
from collections.abc import Collection, Iterator
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..calculus.labeled import LabeledTensor, Term


def letters(pool: str, avoid: Collection[str]) -> Iterator[str]:
    """Index names for printing: the letters of ``pool``, then the same with
    one prime, two, ... (``p'``, ``q'``: no spec can name an index so, so a
    generated name is never taken for a user's), none of them in ``avoid``."""
    for primes in itertools.count():
        for c in pool:
            name = c + "'" * primes
            if name not in avoid:
                yield name


def named_in(t: LabeledTensor) -> set[str]:
    """The names inside the factors' names (``u`` of ``softmax(sc, u)``), which
    a generated index name must not repeat."""
    return {
        word
        for term in t.terms
        for f in term.factors
        for word in re.findall(r"[A-Za-z_]\w*", f.name)
    }


def _letter_map(t: LabeledTensor) -> dict[str, str]:
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
    from ..language.gather import Selection

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


def format_sum(terms, names: dict[str, str]) -> str:
    """``a[i] · b[j] - 2 · c[i, j]``: terms in index notation, a negative
    coefficient printed as a minus sign."""
    texts = []
    for term in terms:
        negative = isinstance(term.coeff, int | float) and term.coeff < 0
        if negative:
            term = type(term)(-term.coeff, term.factors, term.deltas)
        texts.append((negative, format_term(term, names)))
    return signed_sum(texts)


def format_terms(t: LabeledTensor) -> str:
    """``σ'(z)[n] · δ(n, n') + ...`` — the tensor in index notation."""
    if not t.terms:
        return "0"
    return format_sum(t.terms, _letter_map(t))


def format_labeled(t: LabeledTensor) -> str:
    axes = ", ".join(f"{i}={s}" for i, s in zip(t.indices, t.shape, strict=True))
    deltas = t.deltas
    symbolic = f"; symbolic δ: {', '.join(f'({a}, {b})' for a, b in deltas)}" if deltas else ""
    return f"LabeledTensor[{axes}]{symbolic}\n  = {format_terms(t)}"


def _shape_text(dims: tuple[str, ...], sizes: dict[str, int]) -> str:
    return "×".join(str(sizes[d]) for d in dims) or "1"


def local_shape(out_dims: tuple[str, ...], in_dims: tuple[str, ...], sizes) -> str:
    """``4×(4×3)``: the article's way of writing a Jacobian's shape."""
    inner = _shape_text(in_dims, sizes)
    return (
        f"{_shape_text(out_dims, sizes)}×({inner})"
        if len(in_dims) > 1
        else (f"{_shape_text(out_dims, sizes)}×{inner}")
    )


def format_array(a, indent: str = "  ") -> str:
    import numpy as np

    text = np.array2string(
        np.asarray(a),
        precision=5,
        suppress_small=True,
        max_line_width=76,
        threshold=200,
    )
    return "\n".join(indent + line for line in text.splitlines())


# --- plain text in LaTeX ---------------------------------------------------------

#: Characters of printed formulas and the LaTeX (math mode) that writes them.
_TEX_GLYPHS = {
    "·": r" \cdot ",
    "×": r" \times ",
    "−": "-",
    "≤": r" \leq ",
    "≥": r" \geq ",
    "≠": r" \neq ",
    "→": r" \to ",
    "↦": r" \mapsto ",
    "±": r" \pm ",
    "…": r" \ldots ",
    "—": "-",
    "½": r"\tfrac{1}{2}",
    "∂": r"\partial ",
    "Σ": r"\Sigma ",
    "Π": r"\Pi ",
    "δ": r"\delta ",
    "σ": r"\sigma ",
    "Φ": r"\Phi ",
    "φ": r"\varphi ",
    "π": r"\pi ",
    "⟨": r"\langle ",
    "⟩": r"\rangle ",
}
_SUPERSCRIPTS = dict(zip("⁰¹²³⁴⁵⁶⁷⁸⁹⁻ᵀ", "0123456789-T", strict=True))
_SUBSCRIPTS = dict(zip("₀₁₂₃₄₅₆₇₈₉", "0123456789", strict=True))
_BARRED = {"Ā": "A", "Ȳ": "Y"}


def text_tex(text: str) -> str:
    """A formula printed as text (a factor's name, ``(σ(u) + 2/√π exp(-u²))``)
    as LaTeX math: LaTeX's special characters escaped, Unicode symbols as
    commands (``\\sigma``, ``\\leq``, ``\\cdot``), superscripts and subscripts
    as ``^{}`` and ``_{}``, ``√(…)`` as ``\\sqrt{…}``, a combining overline as
    ``\\bar{}``; any other non-ASCII character as ``?``. The result is ASCII.

    Example:
        >>> text_tex("σ(x)·[x ≤ 0] + ½√(v²)")
        '\\\\sigma (x) \\\\cdot [x  \\\\leq  0] + \\\\tfrac{1}{2}\\\\sqrt{v^{2}}'
    """
    out: list[str] = []
    k = 0
    while k < len(text):
        c = text[k]
        if c in "_#$%&{}":
            out.append("\\" + c)
        elif c == "√":
            if text[k + 1 : k + 2] == "(":  # √(…): up to the matching parenthesis
                depth, end = 0, k + 1
                for end in range(k + 1, len(text)):
                    depth += {"(": 1, ")": -1}.get(text[end], 0)
                    if depth == 0:
                        break
                out.append(r"\sqrt{" + text_tex(text[k + 2 : end]) + "}")
                k = end + 1
                continue
            nxt = text[k + 1 : k + 2]
            out.append(r"\sqrt{" + (text_tex(nxt) if nxt else "") + "}")
            k += 2
            continue
        elif c in _SUPERSCRIPTS or c in _SUBSCRIPTS:
            table, mark = (_SUPERSCRIPTS, "^") if c in _SUPERSCRIPTS else (_SUBSCRIPTS, "_")
            run = ""
            while k < len(text) and text[k] in table:
                run += table[text[k]]
                k += 1
            out.append(f"{mark}{{{run}}}")
            continue
        elif c == "\u0304" and out:  # a combining overline on the character before
            out[-1] = r"\bar{" + out[-1] + "}"
        elif c in _BARRED:
            out.append(r"\bar{" + _BARRED[c] + "}")
        elif c in _TEX_GLYPHS:
            out.append(_TEX_GLYPHS[c])
        elif c == "\\":
            out.append(r"\backslash ")
        elif c in "^~":
            out.append(c if c == "^" else r"\sim ")
        else:
            out.append(c if c.isascii() else "?")
        k += 1
    return "".join(out)
