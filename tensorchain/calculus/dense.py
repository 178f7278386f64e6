"""The dense form of a labeled tensor: the one place deltas become dense.

:class:`DenseForm` gives :class:`~tensorchain.calculus.labeled.LabeledTensor`
``.array`` and ``.dense()``: each term's factors contracted over its
distinct axes (one per delta class), then added into zeros through a
strided view of its delta diagonals (:func:`place`), or, for arrays of
another library, times an identity matrix per delta
(:func:`place_with_deltas`). The memory it would take is forecast first and
refused past the memory limit; block by block, see
:mod:`tensorchain.calculus.blocks`.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from functools import cached_property
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import (
    astype,
    backend_of,
    common,
    constant,
    device_of,
    is_numpy,
    numpy_dtype,
    to_backend,
    zeros_like_values,
)
from ..arrays.limits import format_bytes, get_memory_limit
from ..arrays.trace import apply
from ..contraction.einsum import contract
from ..errors import MemoryLimitError
from .blocks import BlockForm, block_chunks
from .terms import Term


class DenseForm(BlockForm):
    """The dense array of a labeled tensor (a base of
    :class:`~tensorchain.calculus.labeled.LabeledTensor`, whose ``indices``,
    ``sizes``, ``terms``, ``dtype`` and ``like`` it reads)."""

    @cached_property
    def array(self) -> np.ndarray:
        """The dense array, shape ``self.shape`` (the only place deltas become dense).

        Refused with :class:`MemoryLimitError` when it would exceed the memory
        limit (``tc.set_memory_limit``); see :meth:`dense`."""
        return self.dense()

    def dense(self, memory_limit: int | None = None) -> np.ndarray:
        """The dense array, after checking its forecast against ``memory_limit``
        (bytes; default: the limit in force). With factors that are dask
        arrays (from dask values) it is a dask array instead, nothing computed
        yet, in chunks of at most a quarter of the limit."""
        whole = self._whole()
        if whole is not None:
            return whole  # already in memory: nothing to forecast
        if any(backend_of(f.array) == "dask" for t in self.terms for f in t.factors):
            # Lazy, in blocks of a quarter of the memory limit at most (a block
            # also holds its factors' slices while it is computed).
            return self.to_dask(chunks=block_chunks(self, get_memory_limit(memory_limit) // 4))
        # The output, plus the largest term's data before it is placed.
        data = (
            math.prod(self.sizes[r] for r in _diagonal(t, self.indices, self.shape)[0])
            for t in self.terms
        )
        forecast = 8 * (math.prod(self.shape) + max(data, default=0))
        limit = get_memory_limit(memory_limit)
        if forecast > limit:
            shape = " × ".join(map(str, self.shape))
            error = MemoryLimitError(
                f"the dense array of this LabeledTensor ({shape}) would need"
                f" {format_bytes(forecast)}, more than the memory limit of"
                f" {format_bytes(limit)}; its structured form holds only"
                f" {self.stored_entries():,} numbers with symbolic δ"
                f" {', '.join(f'({a}, {b})' for a, b in self.deltas) or '(none)'}: use"
                " .terms and .deltas, contract it with what you need first, compute it"
                " block by block with .to_dask(chunks) (or dask values), use smaller"
                " sizes, or raise the limit with tc.set_memory_limit",
                forecast,
                limit,
            )
            error.dense_shape = self.shape  # callers that made it say what it is
            raise error
        return self._dense()

    def _whole(self) -> np.ndarray | None:
        """The one factor's array when it already is the dense result, and ours."""
        if len(self.terms) != 1:
            return None
        (t,) = self.terms
        if t.deltas or t.coeff != 1.0 or len(t.factors) != 1:
            return None
        only = t.factors[0]
        return only.array if only.owned and only.labels == self.indices else None

    def _dense(self) -> np.ndarray:
        whole = self._whole()
        if whole is not None:
            return whole
        if not self.terms and self.like is not None:
            return zeros_like_values(self.shape, {"": self.like})
        if len(self.terms) == 1 and not self.terms[0].deltas:
            (t,) = self.terms
            operands = [(f.array, f.labels) for f in t.factors]
            return contract(operands, self.indices, self.sizes, scale=t.coeff, fresh=True)
        datas, placements, owners = [], [], []
        for t in self.terms:
            reps, strides = _diagonal(t, self.indices, self.shape)
            datas.append(contract([(f.array, f.labels) for f in t.factors], reps, self.sizes))
            placements.append((t.coeff, [self.sizes[r] for r in reps], strides))
            owners.append((t.coeff, reps, _rep_of(t, self.indices)))
        dtype = self.dtype

        def code(args: Sequence[str]) -> str:
            kind = "None" if dtype is None else f"np.dtype({dtype.str!r})"
            return f"place({self.shape}, {placements!r}, {kind}, {', '.join(args)})"

        assemble = _assemble(self.shape, placements, dtype, self.indices, self.sizes, owners)
        return apply(assemble, *datas, shape=self.shape, code=code)


def _diagonal(term: Term, indices: tuple[str, ...], shape: tuple[int, ...]):
    """The term's distinct axes (one per delta class) and, for each, its stride
    in entries of a C-ordered array of ``shape``: the sum of the strides of the
    axes the deltas tie together."""
    rep_of = _rep_of(term, indices)
    reps = list(dict.fromkeys(rep_of[i] for i in indices))
    c_strides = np.zeros(len(shape), dtype=np.int64)
    step = 1
    for axis in reversed(range(len(shape))):
        c_strides[axis] = step
        step *= shape[axis]
    strides = dict.fromkeys(reps, 0)
    for axis, lab in enumerate(indices):
        strides[rep_of[lab]] += int(c_strides[axis])
    return reps, [strides[r] for r in reps]


def _rep_of(term: Term, indices: Sequence[str]) -> dict[str, str]:
    """Each axis's distinct axis: the first of the axes its deltas tie it to."""
    rep_of = {i: i for i in indices}
    rep_of.update((b, a) for a, b in term.deltas)
    return rep_of


def place(shape, placements, dtype, *datas):
    """Zeros of ``shape``, plus each term's data added through a strided view of
    its delta diagonals (each placement: coefficient, view shape, strides in
    entries). Symbolic deltas become dense here and nowhere else."""
    if dtype is None:  # the data's, floating or complex
        dtype = np.result_type(*datas) if datas else np.dtype(np.float64)
        dtype = dtype if dtype.kind in "fc" else np.dtype(np.float64)
    out = np.zeros(shape, dtype=dtype)
    for data, (coeff, view_shape, strides) in zip(datas, placements, strict=True):
        byte_strides = [s * out.itemsize for s in strides]
        view = np.lib.stride_tricks.as_strided(out, shape=view_shape, strides=byte_strides)
        view += coeff * data
    return out


def place_with_deltas(
    indices: tuple[str, ...], sizes: dict[str, int], owners: list, dtype: Any, *datas: Any
) -> Any:
    """What :func:`place` does, for arrays of another library (which may not
    be written through a strided view): each term's data times an identity
    matrix per delta, by opt_einsum on that library. ``owners``: per term,
    its coefficient, its distinct axes and, per axis, the distinct axis it
    is tied to."""
    library, datas = common(datas)
    device = device_of(datas[0])
    letter = {lab: oe.get_symbol(k) for k, lab in enumerate(indices)}
    total = None
    for data, (coeff, reps, rep_of) in zip(datas, owners, strict=True):
        terms, operands = ["".join(letter[r] for r in reps)], [data]
        for lab in indices:
            if rep_of[lab] != lab:
                eye = np.eye(sizes[lab], dtype=numpy_dtype(data))
                terms.append(letter[rep_of[lab]] + letter[lab])
                operands.append(to_backend(eye, library, device))
        eq = ",".join(terms) + "->" + "".join(letter[i] for i in indices)
        dense = coeff * oe.contract(eq, *operands, backend=library)
        total = dense if total is None else total + dense
    return total if dtype is None else astype(total, dtype)


def _assemble(
    shape: tuple[int, ...],
    placements: list,
    dtype: np.dtype | None,
    indices: tuple[str, ...],
    sizes: dict[str, int],
    owners: list,
):
    def assemble(*datas: Any) -> Any:
        if not datas:  # the zero tensor
            return constant(np.zeros(shape, dtype=dtype or np.float64))
        if is_numpy(*datas):
            return place(shape, placements, dtype, *datas)
        return place_with_deltas(indices, sizes, owners, dtype, *datas)

    return assemble
