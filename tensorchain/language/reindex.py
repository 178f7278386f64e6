"""Reshapes and concatenation: constant 0/1 factors applied as reshapes and slices.

A merge ``y[s, (h w)] = x[s, h, w]`` is the product ``x[s, h, w] · R[g, h, w]``
summed over ``h, w``, with the constant

    R[g, h, w] = 1 where g = h·W + w (row-major, as numpy's reshape), else 0,

and a split ``x[s, h, w] = y[s, (h w)]`` is ``y[s, g] · R[g, h, w]`` summed
over ``g``. A concatenation ``c[s, k] = concat(a[s, k], b[s, k], k)`` is
``a[s, i] E₁[k, i] + b[s, j] E₂[k, j]`` with

    E[k, i] = 1 where k = i + offset (the sizes of the parts before), else 0.

The chain rule treats ``R`` and ``E`` as any other factor, so every
derivative through them is these factors again: the Jacobian of a reshape
is ``R`` itself (a delta between the grouped axis and the pair ``(h, w)``),
and a vector-Jacobian product through it is the opposite reshape. Neither is
ever read as an array: :func:`contract_reindex` (called by
``plan.contract``) replaces ``R`` by a reshape of the operands that carry
its axes (free for contiguous arrays) and ``E`` by a slice of them (free)
or a zero padding of the result. Where a dense result must hold ``R`` (the
explicit Jacobian of one reshape), ``R`` is a read-only strided view of
``2·G − 1`` numbers, never a stored ``G × H × W`` array.

A grouped axis has a *derived dim*: ``(H W)`` for a group of dims ``H`` and
``W`` (size ``H·W``), ``(I + J)`` for a concatenation (size ``I + J``);
:func:`derived_sizes` computes and checks them.
"""

from __future__ import annotations

import functools
import math
import weakref
from collections.abc import Collection, Mapping, Sequence
from typing import Any

import numpy as np

from ..arrays import limits
from ..arrays.backend import device_of, is_numpy, namespace
from ..arrays.cache import LRUCache
from ..arrays.trace import apply, is_fresh
from ..errors import MemoryLimitError, ShapeError

# --- derived dims ------------------------------------------------------------

#: A derived dim: ("*", members) for a product, ("+", parts) for a sum.
Derived = tuple[str, tuple[str, ...]]


def product_dim(dims: Sequence[str], derived: dict[str, Derived]) -> str:
    """The name of the product of ``dims`` (``(C H W)``; products inside are
    flattened), registered in ``derived``."""
    flat: list[str] = []
    for d in dims:
        op, members = derived.get(d, ("", ()))
        flat.extend(members if op == "*" else (d,))
    name = f"({' '.join(flat)})"
    derived.setdefault(name, ("*", tuple(flat)))
    return name


def sum_dim(dims: Sequence[str], derived: dict[str, Derived]) -> str:
    """The name of the sum of ``dims`` (``(I + J)``), registered in ``derived``."""
    flat: list[str] = []
    for d in dims:
        op, parts = derived.get(d, ("", ()))
        flat.extend(parts if op == "+" else (d,))
    name = f"({' + '.join(flat)})"
    derived.setdefault(name, ("+", tuple(flat)))
    return name


def derived_sizes(
    derived: Mapping[str, Derived], sizes: dict[str, int], given: Collection[str] = ()
) -> None:
    """Fill in the size of each derived dim from its members, and check the
    sizes the values (or the arguments: the names in ``given``) gave one
    against them (a ``ShapeError`` naming both); a member missing from a known
    derived size is inferred (``K = (H K) / H``)."""
    changed = True
    while changed:
        changed = False
        for name, (op, members) in derived.items():
            known = [m for m in members if m in sizes]
            if len(known) == len(members):
                sizes_of = [sizes[m] for m in members]
                total = math.prod(sizes_of) if op == "*" else sum(sizes_of)
                if total > limits.MAX_DIM:
                    formula = ("·" if op == "*" else " + ").join(members)
                    numbers = ("·" if op == "*" else " + ").join(map(str, sizes_of))
                    raise ShapeError(
                        f"dim {name} = {formula} = {numbers} = {total:,} is larger than the"
                        f" limit {limits.MAX_DIM:,} (tensorchain.arrays.limits.MAX_DIM) on the size"
                        f" of one axis; give {', '.join(dict.fromkeys(members))} smaller sizes"
                    )
                if name not in sizes:
                    sizes[name], changed = total, True
                elif sizes[name] != total:
                    formula = ("·" if op == "*" else " + ").join(members)
                    numbers = ("·" if op == "*" else " + ").join(map(str, sizes_of))
                    raise ShapeError(
                        f"dim {name} {_source(name, sizes, given)}, but"
                        f" {formula} = {numbers} = {total}; {_remedy(name, members, given)}"
                    )
            elif name in sizes and len(known) == len(members) - 1:
                (missing,) = (m for m in members if m not in sizes)
                rest = [sizes[m] for m in known]
                if op == "*":
                    inferred, exact = divmod(sizes[name], math.prod(rest))
                    exact = exact == 0 and inferred > 0
                else:
                    inferred = sizes[name] - sum(rest)
                    exact = inferred > 0
                if not exact:
                    raise ShapeError(
                        f"dim {name} {_source(name, sizes, given)}, which no size of"
                        f" {missing} gives with {', '.join(f'{m}={sizes[m]}' for m in known)};"
                        f" {_remedy(name, members, given)}"
                    )
                sizes[missing], changed = inferred, True


def _source(name: str, sizes: Mapping[str, int], given: Collection[str]) -> str:
    if name in given:
        return f"is given as {name}={sizes[name]}"
    return f"has size {sizes[name]} in the values"


def _remedy(name: str, members: Sequence[str], given: Collection[str]) -> str:
    if name in given:
        return f"give sizes that agree, or leave {name} out (it follows from {', '.join(members)})"
    return "make the values agree"


# --- the constants -------------------------------------------------------------

# id -> (a weak reference to the array, kind, offset), while the array lives:
# the registry never keeps a constant alive.
_REINDEX: dict[int, tuple[weakref.ref, str, int]] = {}
_CONSTANTS = LRUCache(64)  # the constants last made, by (kind, shape, offset)


def _strided_one(shape: tuple[int, ...], strides: Sequence[int], first: int, low: int, high: int):
    """A read-only view of ``shape`` whose entry at index ``x`` is 1 where
    ``first + Σ x·strides == 0`` (else 0), reading a vector of ``high − low + 1``
    numbers with one 1 (``low``, ``high``: the least and largest such sum)."""
    buffer = np.zeros(high - low + 1)
    buffer[-low] = 1.0
    step = buffer.itemsize
    return np.lib.stride_tricks.as_strided(
        buffer[first - low :], shape, [s * step for s in strides], writeable=False
    )


def group_tensor(shape: Sequence[int]) -> np.ndarray:
    """``R[g, m1, …, mk]`` = 1 where ``g`` is the row-major position of
    ``(m1, …, mk)``: a strided view of ``2·G − 1`` numbers."""
    G, *members = (int(n) for n in shape)
    place = [math.prod(members[k + 1 :]) for k in range(len(members))]
    return _strided_one((G, *members), [1, *(-p for p in place)], 0, -(G - 1), G - 1)


def offset_tensor(K: int, n: int, offset: int) -> np.ndarray:
    """``E[k, i]`` = 1 where ``k = i + offset`` (``n`` values of ``i``): a
    strided view of ``K + n − 1`` numbers."""
    return _strided_one((K, n), [1, -1], -offset, -(n - 1) - offset, K - 1 - offset)


def reindex_constant(kind: str, shape: Sequence[int], offset: int = 0) -> np.ndarray:
    """The constant of a :class:`~tensorchain.language.operations.Reindex` node, registered so
    that :func:`contract_reindex` recognises it."""
    shape = tuple(int(n) for n in shape)
    numbers = 2 * shape[0] - 1 if kind == "group" else sum(shape) - 1
    limit = limits.get_memory_limit()
    if numbers * 8 > limit:
        what = (
            f"a reshape between an axis of {shape[0]:,} entries and axes of"
            f" {' × '.join(f'{n:,}' for n in shape[1:])}"
            if kind == "group"
            else f"a concatenation into an axis of {shape[0]:,} entries"
        )
        raise MemoryLimitError(
            f"{what} is done through a 0/1 constant stored as {numbers:,} numbers"
            f" ({limits.format_bytes(numbers * 8)}), more than the memory limit of"
            f" {limits.format_bytes(limit)}; use smaller sizes, or raise the limit with"
            " tc.set_memory_limit",
            numbers * 8,
            limit,
        )

    def make() -> np.ndarray:
        array = group_tensor(shape) if kind == "group" else offset_tensor(*shape, offset)
        _REINDEX[id(array)] = (weakref.ref(array), kind, offset)
        weakref.finalize(array, _REINDEX.pop, id(array), None)
        return array

    return _CONSTANTS.get((kind, shape, offset), make)


def node_constant(node: Any, sizes: Mapping[str, int]) -> np.ndarray:
    """The constant of a :class:`~tensorchain.language.operations.Reindex` node, given label sizes
    (a range's is a concatenation's: ``E[k, j]`` = 1 where ``k = j + start``)."""
    kind = "offset" if node.kind == "range" else node.kind
    return reindex_constant(kind, [sizes[lab] for lab in node.labels], offset_of(node, sizes))


def offset_of(node: Any, sizes: Mapping[str, int]) -> int:
    """Where a part of a concatenation starts (the sizes of the parts before
    it), or a range of positions (its offset)."""
    if node.kind == "range":
        return node.start
    if node.kind != "offset":
        return 0
    return sum(sizes[p] for p in node.parts[: node.parts.index(node.labels[1])])


def is_reindex(factor: Any) -> bool:
    """Whether a factor's array is a registered reshape or concatenation constant."""
    found = _REINDEX.get(id(factor.array))
    return found is not None and found[0]() is factor.array


def stored_size(array: Any) -> int:
    """How many numbers ``array`` holds: a registered constant its vector's."""
    found = _REINDEX.get(id(array))
    if found is not None and found[0]() is array:
        return sum(array.shape) - 1 if found[1] == "offset" else 2 * array.shape[0] - 1
    return math.prod(array.shape)


# --- array steps on any library --------------------------------------------------


def reshaped(a: Any, shape: tuple[int, ...]) -> Any:
    """``a`` viewed with ``shape`` (a copy only where its layout needs one)."""
    return np.reshape(a, shape) if is_numpy(a) else namespace(a).reshape(a, shape)


def sliced(a: Any, axis: int, start: int, stop: int) -> Any:
    """``a[..., start:stop, ...]`` along ``axis`` (a view)."""
    index = (slice(None),) * axis + (slice(start, stop),)
    return a[index]


def padded(a: Any, axis: int, before: int, after: int) -> Any:
    """``a`` with ``before`` and ``after`` zeros along ``axis`` (a new array)."""
    if is_numpy(a):
        a = np.asarray(a)
        shape = list(a.shape)
        shape[axis] += before + after
        out = np.zeros(shape, dtype=a.dtype if a.dtype.kind in "fc" else np.float64)
        out[(slice(None),) * axis + (slice(before, before + a.shape[axis]),)] = a
        return out
    xp = namespace(a)
    pieces = []
    for size in (before, after):
        shape = list(a.shape)
        shape[axis] = size
        pieces.append(xp.zeros(tuple(shape), dtype=a.dtype, device=device_of(a)))
    return xp.concat([pieces[0], a, pieces[1]], axis=axis)


def _index_code(axis: int, start: int, stop: int) -> str:
    return ", ".join([":"] * axis + [f"{start}:{stop}"])


def _pad_code(ndim: int, axis: int, before: int, after: int) -> str:
    widths = [(0, 0)] * ndim
    widths[axis] = (before, after)
    return repr(tuple(widths))


# --- contractions through the constants --------------------------------------


def contract_reindex(operands, output, sizes, contract, scale: float, fresh: bool):
    """``contract(operands, output, sizes)`` with a registered reshape or
    concatenation constant among the operands taken out and replaced by
    reshapes, slices or a zero padding of the rest; ``None`` when there is
    none or when the result itself must hold it (a dense Jacobian)."""
    for j, (array, labels) in enumerate(operands):
        found = _REINDEX.get(id(array))
        if found is None or found[0]() is not array or len(set(labels)) < len(labels):
            continue
        rest = [op for i, op in enumerate(operands) if i != j]
        if found[1] == "group":
            done = _through_group(tuple(labels), rest, tuple(output), sizes, contract, scale, fresh)
        else:
            k, i = labels
            done = _through_offset(
                k, i, found[2], rest, tuple(output), sizes, contract, scale, fresh
            )
        if done is not None:
            return done
    return None


def _reshape_step(a: Any, shape: tuple[int, ...], fresh: bool = False) -> Any:
    return apply(
        functools.partial(reshaped, shape=shape),
        a,
        shape=shape,
        fresh=fresh,
        code=lambda x, shape=shape: f"np.reshape({x[0]}, {shape})",
    )


def _through_group(labels, rest, output, sizes, contract, scale, fresh):
    """Σ R[g, m…] · rest: ``g`` in each operand (and the output) split into the
    members ``m…`` by a reshape, so that R becomes deltas that rename."""
    g, members = labels[0], labels[1:]
    member_shape = tuple(sizes[m] for m in members)
    operands = []
    for array, labs in rest:
        if g in labs:
            axis = labs.index(g)
            new = (*labs[:axis], *members, *labs[axis + 1 :])
            if len(set(new)) < len(new):
                return None  # an operand indexed by g and a member too
            shape = (*array.shape[:axis], *member_shape, *array.shape[axis + 1 :])
            operands.append((_reshape_step(array, shape), new))
        else:
            operands.append((array, labs))
    out = output
    if g in output:
        axis = output.index(g)
        out = (*output[:axis], *members, *output[axis + 1 :])
        if len(set(out)) < len(out):
            return None  # the result holds R itself (a dense Jacobian)
    present = {lab for _, labs in operands for lab in labs} | set(out)
    scale *= math.prod(sizes[m] for m in members if m not in present)  # Σ_m of ones
    result = contract(operands, out, sizes, scale=scale, fresh=fresh)
    if g not in output:
        return result
    # a view of a new array that nothing else holds is new too
    return _reshape_step(result, tuple(sizes[lab] for lab in output), fresh or is_fresh(result))


def _through_offset(k, i, offset, rest, output, sizes, contract, scale, fresh):
    """Σ E[k, i] · rest: every operand's ``k`` sliced to ``offset : offset + n``
    (``n`` the size of ``i``) and renamed ``i``; a ``k`` of the output is ``i``
    padded with zeros."""
    size, n = sizes[k], sizes[i]
    if k in output and i in output:
        return None  # the result holds E itself (a dense Jacobian)
    operands = []
    for array, labs in rest:
        if k not in labs:
            operands.append((array, labs))
            continue
        if i in labs or labs.count(k) > 1:
            return None
        axis = labs.index(k)
        shape = tuple(n if lab == k else m for lab, m in zip(labs, array.shape, strict=True))
        view = apply(
            functools.partial(sliced, axis=axis, start=offset, stop=offset + n),
            array,
            shape=shape,
            code=lambda x, a=axis, s=offset, e=offset + n: f"{x[0]}[{_index_code(a, s, e)}]",
        )
        operands.append((view, tuple(i if lab == k else lab for lab in labs)))
    out = tuple(i if lab == k else lab for lab in output)
    present = {lab for _, labs in operands for lab in labs} | set(out)
    if i not in present:
        scale *= n  # Σ_{k, i} E[k, i] = n
    result = contract(operands, out, sizes, scale=scale, fresh=fresh and k not in output)
    if k not in output:
        return result
    axis = output.index(k)
    after = size - n - offset
    widths = _pad_code(len(output), axis, offset, after)
    return apply(
        functools.partial(padded, axis=axis, before=offset, after=after),
        result,
        shape=tuple(sizes[lab] for lab in output),
        fresh=True,
        code=lambda x, widths=widths: f"np.pad({x[0]}, {widths})",
    )
