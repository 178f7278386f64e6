"""Sizes: which dim every index stands for, and the checks that sizes agree.

Each tensor axis has a dim (``n``, ``m``, ``B``). Inside a statement every
label is bound to the dims of the axes it indexes; the first binding names the
label's dim, and every later binding must have the same size once sizes are
known. A conflict raises :class:`ShapeError` naming the statement, the index,
both tensors and both sizes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from .errors import ShapeError
from .lower import Lowered, base_label, leaves
from .spec import Pos, Program


@dataclass(frozen=True)
class Binding:
    dim: str
    tensor: str
    axis: int
    pos: Pos


def _describe(label: str) -> str:
    label = base_label(label)
    return f"axis {label[1:]}" if label.startswith("#") else f"index {label!r}"


def bind_labels(
    program: Program,
    stmt: Lowered,
    axes: Mapping[str, tuple[str, ...]],
    sizes: Mapping[str, int],
) -> dict[str, Binding]:
    """Bind every label of ``stmt`` to a dim; check sizes where they are known."""
    bound: dict[str, Binding] = {}
    for leaf in leaves(stmt.root):
        for k, (label, dim) in enumerate(zip(leaf.labels, axes[leaf.name], strict=True)):
            first = bound.setdefault(label, Binding(dim, leaf.name, k, leaf.pos))
            if first.dim == dim or dim not in sizes or first.dim not in sizes:
                continue
            if sizes[first.dim] == sizes[dim]:
                continue
            if stmt.index_form:
                message = (
                    f"index {base_label(label)!r} has two sizes: {first.dim}={sizes[first.dim]} as"
                    f" axis {first.axis} of {first.tensor} but {dim}={sizes[dim]} as"
                    f" axis {k} of {leaf.name}; use a separate index for each, or"
                    " declare both axes with the same dim"
                )
            else:
                message = (
                    f"shape mismatch in whole-tensor arithmetic: {first.tensor} has"
                    f" {shape_text(axes[first.tensor], sizes)} but {leaf.name} has"
                    f" {shape_text(axes[leaf.name], sizes)} ({_describe(label)}:"
                    f" {first.dim}={sizes[first.dim]} vs {dim}={sizes[dim]});"
                    " elementwise operations need equal shapes"
                )
            raise program.error(message, leaf.pos, ShapeError)
    return bound


def shape_text(dims: tuple[str, ...], sizes: Mapping[str, int]) -> str:
    """``[n=4, m=3]``, or ``[n, m]`` where sizes are unknown."""
    parts = [f"{d}={sizes[d]}" if d in sizes else d for d in dims]
    return f"[{', '.join(parts)}]"
