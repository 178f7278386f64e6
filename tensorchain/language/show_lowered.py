"""A lowered statement printed back in index notation, for messages and printouts."""

from __future__ import annotations

from collections.abc import Mapping

from ..functions.registry import PRINTED
from .operations import (
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

_LETTERS = "ijklmnpqrsuvwabcdefgh"


def show_lowered(
    target: str,
    labels: tuple[str, ...],
    root: Node,
    dims: Mapping[str, str] | None = None,
) -> str:
    """A lowered statement in index notation, labels renamed to letters:
    ``∂L/∂z[i] = ∂L/∂a[i] * a[i] * (1 - a[i])`` (for messages and printouts).
    As in the language, a top-level term sums the indices not on the left; a
    nested product that sums an index says so (``sum(..., j)``), and a mean
    over indices a product keeps divides by their ``dims``."""
    names: dict[str, str] = {}

    def name(label: str) -> str:
        if label not in names:
            k = len(names)
            names[label] = _LETTERS[k] if k < len(_LETTERS) else f"i{k}"
        return names[label]

    def ref(tensor: str, labs: tuple[str, ...]) -> str:
        return f"{tensor}[{', '.join(map(name, labs))}]" if labs else tensor

    def show(node: Node, parent: int = 0, top: bool = True) -> str:
        if isinstance(node, Leaf):
            return ref(node.name, node.labels)
        if isinstance(node, Const):
            return f"{node.value:g}"
        if isinstance(node, Size):
            return node.key
        if isinstance(node, Delta):
            return ref("δ", node.labels)
        if isinstance(node, Select):
            *at, v = node.labels
            picked = ref(node.index, tuple(at)) if at else str(node.index)
            return f"δ({picked}, {name(v)})"
        if isinstance(node, Reindex):  # δ[g, (h w)], δ[k, i + I]
            outer, *inner = map(name, node.labels)
            if node.kind == "group":
                return f"δ[{outer}, ({' '.join(inner)})]"
            if node.kind == "range":
                return f"δ[{outer}, {inner[0]} + {node.start}]"
            before = node.parts[: node.parts.index(node.labels[1])]
            offset = "".join(f" + {(dims or {}).get(b, f'size({name(b)})')}" for b in before)
            return f"δ[{outer}, {inner[0]}{offset}]"
        if isinstance(node, Map):
            if node.func == "pow":
                return f"{show(node.arg, 3, False)} ^ {node.param:g}"
            if node.func == "reciprocal":
                text = f"1 / {show(node.arg, 3, False)}"
                return f"({text})" if parent >= 2 else text
            return f"{PRINTED.get(node.func, node.func)}({show(node.arg, 0, False)})"
        if isinstance(node, Along):
            return f"{node.func}({show(node.arg, 0, False)}, {', '.join(map(name, node.axes))})"
        if isinstance(node, Solve):
            args = f"{show(node.matrix, 0, False)}, {show(node.rhs, 0, False)}"
            return f"solve({args}, {name(node.row)}, {name(node.col)})"
        if isinstance(node, Where):
            from .selections import select_text

            return select_text(node, lambda n: show(n, 0, False))
        if isinstance(node, Product):
            parts = [show(f, 2, False) for f in node.factors]
            if node.coeff != 1.0 or not parts:
                parts.insert(0, f"{node.coeff:g}")
            text = " * ".join(parts)
            summed = node.summed
            kept = [m for m in node.mean_over if m not in summed]
            if node.mean_over and not kept:
                return f"mean({text}, {', '.join(map(name, node.mean_over))})"
            if kept:
                over = " * ".join((dims or {}).get(m, f"size({name(m)})") for m in kept)
                text = f"{text} / ({over})" if len(kept) > 1 else f"{text} / {over}"
            if summed and not top:
                return f"sum({text}, {', '.join(map(name, summed))})"
            return f"({text})" if parent >= 3 else text
        text = ""
        for c, t in node.terms:
            body = show(t, 2, top and parent == 0)
            body = body if abs(c) == 1.0 else f"{abs(c):g} * {body}"
            text += (
                (f" - {body}" if c < 0 else f" + {body}") if text else ("-" if c < 0 else "") + body
            )
        return f"({text})" if parent >= 1 else text

    for lab in labels:
        name(lab)
    body = show(root)
    return f"{ref(target, labels)} = {body}"
