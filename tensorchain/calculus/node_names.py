"""How a node of a lowered statement prints: ``σ'(z)``, ``W·x``, ``T[ids[:], :]``.

:func:`name_of` names a node's value in text, :func:`tex_of` in LaTeX; the
local rules name their factors so, and derivations print them.
"""

from __future__ import annotations

from ..functions.along import ALONG
from ..functions.registry import PRINTED, elementwise
from ..language import selections as where
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Map,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Solve,
    Where,
)


def name_of(node: Node) -> str:
    """A short printable name for a node's value (``z``, ``σ'(z)``, ``W·x``)."""
    if isinstance(node, Leaf):
        return node.name
    if isinstance(node, Const):
        return f"{node.value:g}"
    if isinstance(node, Size):
        return node.key
    if isinstance(node, Delta | Reindex):  # Reindex: δ[g, h, w], g = (h w); δ[k, i + offset]
        return "δ"
    if isinstance(node, Select):
        return f"onehot({node.index})"
    if isinstance(node, Map):
        if node.func == "pow":
            return f"{name_of(node.arg)}^{node.param:g}"
        if node.func == "reciprocal":
            return f"1/{name_of(node.arg)}"
        return f"{PRINTED.get(node.func, node.func)}({name_of(node.arg)})"
    if isinstance(node, Along):
        axes = "".join(f", {n}" for n in node.names)
        return f"{node.func}({name_of(node.arg)}{axes})"
    if isinstance(node, Solve):
        return f"solve({name_of(node.matrix)}, {name_of(node.rhs)})"
    if isinstance(node, Where):
        return where.select_text(node, name_of)
    if isinstance(node, Product) and _picked(node):
        return _picked(node)
    if isinstance(node, Product):
        factors = [name_of(f) for f in node.factors]
        if node.coeff != 1.0 or not factors:
            factors.insert(0, f"{node.coeff:g}")
        text = "·".join(factors)
        if node.mean_over and set(node.mean_over) <= set(node.summed):
            return f"mean({text})"
        return f"Σ({text})" if node.summed else text
    text = ""
    for c, t in node.terms:
        sign = "-" if c < 0 else "+"
        mag = "" if abs(c) == 1.0 else f"{abs(c):g}·"
        text += f" {sign} {mag}{name_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{name_of(t)}"
    return f"({text})"


def _picked(node: Product) -> str:
    """``T[ids[:], :]`` or ``x[:, 0, :]`` for a tensor's entries picked by
    selections (a product of selections and one tensor), else ""; printed
    with its indices in place of the colons (``T[ids[p], j]``)."""
    leaves = [f for f in node.factors if isinstance(f, Leaf)]
    selects = {f.labels[-1]: f for f in node.factors if isinstance(f, Select)}
    if len(leaves) != 1 or len(leaves) + len(selects) != len(node.factors) or not selects:
        return ""
    parts = []
    for lab in leaves[0].labels:
        select = selects.get(lab)
        if select is None:
            parts.append(":")
        elif isinstance(select.index, int):
            parts.append(str(select.index))
        else:
            parts.append(f"{select.index}[{', '.join(':' for _ in select.labels[:-1])}]")
    return f"{leaves[0].name}[{', '.join(parts)}]"


def tex_name(name: str) -> str:
    """A tensor name in LaTeX: ``W1`` → ``W_{1}``, ``y_hat`` → ``\\mathrm{y\\_hat}``."""
    head = name.rstrip("0123456789")
    if len(head) == 1 and head != name:
        return f"{head}_{{{name[1:]}}}"
    return name if len(name) == 1 else r"\mathrm{" + name.replace("_", r"\_") + "}"


def tex_of(node: Node) -> str:
    """The LaTeX form of :func:`name_of`."""
    if isinstance(node, Leaf):
        return tex_name(node.name)
    if isinstance(node, Const):
        return f"{node.value:g}"
    if isinstance(node, Size):
        return tex_name(node.dim)
    if isinstance(node, Delta | Reindex):
        return r"\delta"
    if isinstance(node, Select):
        return rf"\mathrm{{onehot}}({tex_name(str(node.index))})"
    if isinstance(node, Map):
        arg = tex_of(node.arg)
        if node.func == "reciprocal":
            return rf"\frac{{1}}{{{arg}}}"
        return elementwise(node.func).tex(arg, node.param)
    if isinstance(node, Along):
        below = ",".join(tex_name(n) for n in node.names)
        head = rf"{ALONG[node.func].tex}_{{{below}}}" if below else ALONG[node.func].tex
        return rf"{head}\left({tex_of(node.arg)}\right)"
    if isinstance(node, Solve):
        return rf"\left({tex_of(node.matrix)}\right)^{{-1}} {tex_of(node.rhs)}"
    if isinstance(node, Where):
        return where.select_tex(node, tex_of)
    if isinstance(node, Product) and _picked(node):
        return ""  # written from its name with its indices (derivation._term_tex)
    if isinstance(node, Product):
        factors = [tex_of(f) for f in node.factors]
        if node.coeff != 1.0 or not factors:
            factors.insert(0, f"{node.coeff:g}")
        return r" \, ".join(factors)
    text = ""
    for c, t in node.terms:
        mag = "" if abs(c) == 1.0 else f"{abs(c):g} "
        sign = "-" if c < 0 else "+"
        text += f" {sign} {mag}{tex_of(t)}" if text else f"{'-' if c < 0 else ''}{mag}{tex_of(t)}"
    return rf"\left({text}\right)"
