"""Every dim's size for a call: the spec's defaults, then the sizes given,
then the values' shapes; the derived dims (merged and concatenated axes)
and the output lengths of shift tensors follow, and every statement's index
sizes are checked once per set of sizes. Also the spec with other default
sizes (``net.with_sizes``)."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from ..errors import ShapeError
from ..language.reindex import derived_sizes
from ..language.shapes import bind_labels, check_given_dims, value_sizes
from ..language.shift import shift_sizes
from ..language.syntax import DimDecl

if TYPE_CHECKING:
    from ..arrays.cache import LRUCache
    from ..language.network_like import NetworkLike
    from ..language.syntax import Program


def network_sizes(
    net: NetworkLike, checked: LRUCache, values: Mapping[str, Any] | None, dims: dict[str, int]
) -> dict[str, int]:
    """See :meth:`tensorchain.Network.sizes` (``dims``: the sizes given;
    ``checked``: the sets of sizes whose statements are checked already)."""
    check_given_dims(dims, net.dims, net.derived)
    sizes = {d: s for d, s in net.dims.items() if s is not None}
    sizes.update((d, int(s)) for d, s in dims.items())
    sizes.update(value_sizes(net.tensors, net.dims, sizes, dims, values or {}))
    shift_sizes(net, sizes)
    derived_sizes(net.derived, sizes, dims)
    missing = [d for d in net.dims if d not in sizes]
    if missing:
        raise ShapeError(
            f"dim {missing[0]} has no size: give it in the spec (dim {missing[0]} = 8),"
            f" as an argument ({missing[0]}=8), or through the values"
        )
    checked.get(tuple(sorted(sizes.items())), lambda: _bind_all(net, sizes))
    return sizes


def shape_of(
    net: NetworkLike, name: str, dims: Mapping[str, int] | None, given: dict[str, int]
) -> tuple[int, ...]:
    """See :meth:`tensorchain.Network.shape` (``dims``, ``given``: the sizes as given)."""
    sizes = net.sizes(dims=dims, **given)
    return tuple(sizes[d] for d in net.info(name).dims)


def _bind_all(net: NetworkLike, sizes: dict[str, int]) -> bool:
    """Check every statement's index sizes (raises on a mismatch)."""
    for stmt in net.statements:
        bind_labels(net.program, stmt, net.axes, sizes, net.indexes, net.dims, net.derived)
    return True


def resized_program(net: NetworkLike, given: dict[str, int]) -> Program:
    """``net``'s syntax tree with the sizes ``given`` as its dims' defaults
    (see :meth:`tensorchain.Network.with_sizes`)."""
    check_given_dims(given, net.dims)
    statements = tuple(
        replace(st, size=int(given[st.name]))
        if isinstance(st, DimDecl) and st.name in given
        else st
        for st in net.program.statements
    )
    return replace(net.program, statements=statements)
