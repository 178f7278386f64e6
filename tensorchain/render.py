"""Printing: labeled tensors, terms and chains in index notation."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from .labeled import LabeledTensor, Term


def _letter_map(t: LabeledTensor) -> dict[str, str]:
    names = {i: i for i in t.indices}
    letters = iter("ijklpqrstuvwxyzabcdefgh")
    for term in t.terms:
        for f in term.factors:
            for lab in f.labels:
                if lab not in names:
                    name = next(letters, None) or f"s{len(names)}"
                    while name in names.values():
                        name = next(letters, None) or f"s{len(names)}"
                    names[lab] = name
    return names


def format_term(term: Term, names: dict[str, str]) -> str:
    parts = []
    if term.coeff != 1.0 or not (term.factors or term.deltas):
        parts.append(f"{term.coeff:g}")
    for f in term.factors:
        labels = ", ".join(names[lab] for lab in f.labels)
        parts.append(f"{f.name}[{labels}]" if labels else f.name)
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
