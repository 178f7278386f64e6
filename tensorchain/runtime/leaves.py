"""The leaves of a network, its inputs and params: their shapes for given
sizes, and a placeholder for each on a tape (what a compiled program, a plan
and a symbolic derivation are traced on)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from ..arrays.trace import Slot, Tape
    from ..language.network_like import NetworkLike


def leaf_shapes(net: NetworkLike, sizes: Mapping[str, int]) -> dict[str, tuple[int, ...]]:
    """The shape of every input and param of ``net``, in declaration order."""
    return {
        t.name: tuple(sizes[d] for d in t.dims)
        for t in net.tensors.values()
        if t.kind in ("input", "param")
    }


def placeholders(net: NetworkLike, tape: Tape, sizes: Mapping[str, int]) -> dict[str, Slot]:
    """A placeholder for every input and param of ``net`` on ``tape``."""
    return {name: tape.input(name, shape) for name, shape in leaf_shapes(net, sizes).items()}
