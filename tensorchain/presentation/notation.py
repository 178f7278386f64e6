"""Printing: the shapes of local Jacobians, arrays, and plain text as LaTeX.

Labeled tensors and their terms in index notation are printed by
:mod:`tensorchain.calculus.printing`.
"""

from __future__ import annotations


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


def superscript(k: int) -> str:
    """The order of a derivative as a superscript: ``²`` for 2, ``³`` for 3;
    nothing for 1 (``∂²C/∂W²``, ``∂C/∂W``)."""
    return "" if k == 1 else str(k).translate(str.maketrans("0123456789", "⁰¹²³⁴⁵⁶⁷⁸⁹"))
