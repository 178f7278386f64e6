"""The last Jacobian of a derivative of order k (``net.derivative``): the
Jacobian by ``wrt[-1]`` of the graph of the first k − 1 derivatives,
structured, its axes named after dims (primed where they repeat), and each
block the chain rule contracted inside it named G₁, G₂, … (a part of the
derivative, not the derivative)."""

from __future__ import annotations

from dataclasses import replace

from ..calculus.chain import axis_names
from ..calculus.labeled import LabeledTensor

_SUBSCRIPTS = str.maketrans("0123456789", "₀₁₂₃₄₅₆₇₈₉")


def last_jacobian(net, graph, out, forward, of, wrt, sizes, mode: str) -> LabeledTensor:
    """The last Jacobian of a derivative of order ``len(wrt)``, structured, its
    axes named after dims (primed where they repeat)."""
    groups = axis_names(net.tensors[of].dims, *(net.tensors[w].dims for w in wrt))
    indices = tuple(i for group in groups for i in group)
    dims = [d for name in (of, *wrt) for d in net.tensors[name].dims]
    if out is None:  # of does not depend on the first wrt
        return LabeledTensor.zeros(
            indices, {i: sizes[d] for i, d in zip(indices, dims, strict=True)}
        )
    result = graph.derivatives(out, [wrt[-1]], forward, structured=True, mode=mode)
    structure = result.jacobians[wrt[-1]]
    structure = structure.smallest().rename(indices)
    # The chain rule names a block it contracted after its Jacobian (d out/d w,
    # with out a name of the derivative's graph); such a block is a part of the
    # derivative, not the derivative: each gets a name of its own, G₁, G₂, …
    # (a subscript: no tensor of a spec is named so).
    internal = f"d{out}/d{wrt[-1]}"
    blocks: dict[int, int] = {}

    def named(f):
        if f.name != internal:
            return f
        k = blocks.setdefault(id(f.array), len(blocks) + 1)
        return replace(f, name="G" + str(k).translate(_SUBSCRIPTS), tex=f"G_{{{k}}}")

    terms = [replace(t, factors=tuple(named(f) for f in t.factors)) for t in structure.terms]
    return LabeledTensor(
        structure.indices, structure.sizes, terms, canonicalize=False, dtype=structure.dtype
    )
