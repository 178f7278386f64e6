"""The dense form of a labeled tensor, block by block: for results larger than
memory (a Hessian of a big weight, a batch of per-sample Jacobians).

``t.block(ranges)`` computes one rectangular block of ``t.array`` from the
structured form: each factor sliced to the block's ranges of its axes, each
surviving delta a 0/1 matrix for the block (``δ(i, j)`` is 1 where
``i0 + a = j0 + b``), contracted by opt_einsum. Its memory is the block's, not
the whole array's. ``t.to_dask(chunks)`` builds a dask array of such blocks
(needs the ``dask`` extra), to be reduced, sliced, written to Zarr or computed
on any dask scheduler, a ``dask.distributed`` cluster included.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import backend_of, device_of, to_backend, to_numpy
from ..errors import ShapeError, TensorchainError
from .terms import Term

Ranges = Sequence[tuple[int, int]]  # (start, stop) per axis of the tensor


class BlockForm:
    """The dense array of a labeled tensor block by block (a base of
    :class:`~tensorchain.calculus.labeled.LabeledTensor`, whose axes,
    ``terms``, ``dtype``, ``result_dtype``, ``stored_arrays`` and
    ``with_arrays`` it reads)."""

    indices: tuple[str, ...]
    shape: tuple[int, ...]
    ndim: int
    sizes: dict[str, int]
    terms: tuple[Term, ...]
    dtype: np.dtype | None
    like: Any
    result_dtype: np.dtype

    def block(self, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
        """One block of the dense array, ``(start, stop)`` per axis, computed from
        the structured form with the block's memory only (see
        :mod:`tensorchain.calculus.blocks`)."""
        return dense_block(self, ranges)

    def to_dask(self, chunks: Any = "auto") -> Any:
        """The dense array as a chunked dask array, each chunk computed from the
        structured form when needed: for results larger than memory (reduce
        them, slice them, write them to Zarr). Needs ``pip install 'tensorchain[dask]'``.

        Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> H = net.hessian("C", "W", net.random_values(n=4, m=3))
            >>> H.to_dask(chunks=2).chunks[0]  # doctest: +SKIP
            (2, 2)
        """
        return dask_array(self, chunks)


def dense_block(t: BlockForm, ranges: Ranges) -> Any:
    """``t.array[start:stop, ...]`` for the given ranges, without forming
    ``t.array``; an array of the factors' library (torch, JAX, CuPy) when
    they are not numpy or dask. Each range is ``(start, stop)`` with
    ``0 <= start < stop <= size``, one per axis; else a :class:`ShapeError`."""
    ranges = [tuple(r) for r in ranges]
    if len(ranges) != t.ndim:
        raise ShapeError(
            f"block takes one (start, stop) range per axis: {t.ndim} for axes"
            f" [{', '.join(t.indices)}], {len(ranges)} given"
        )
    for axis, size, (start, stop) in zip(t.indices, t.shape, ranges, strict=True):
        if not (0 <= start < stop <= size):
            raise ShapeError(
                f"block range ({start}, {stop}) of axis {axis} (size {size}) is not within"
                f" it: use 0 <= start < stop <= {size}"
            )
    out = numpy_block(t, ranges)
    factors = t.stored_arrays()
    if factors and backend_of(factors[0]) not in ("numpy", "dask"):
        return to_backend(out, backend_of(factors[0]), device_of(factors[0]))
    return out


def numpy_block(t: BlockForm, ranges: Ranges) -> np.ndarray:
    """:func:`dense_block` as a numpy array, whatever the factors' library."""
    where = dict(zip(t.indices, ranges, strict=True))
    shape = tuple(stop - start for start, stop in ranges)
    dtype = t.result_dtype
    out = np.zeros(shape, dtype=dtype)
    for term in t.terms:
        operands: list[Any] = []
        for f in term.factors:
            index = tuple(slice(*where[lab]) if lab in where else slice(None) for lab in f.labels)
            operands += [to_numpy(f.array)[index], list(f.labels)]
        for a, b in term.deltas:
            (a0, a1), (b0, b1) = where[a], where[b]
            eye = (np.arange(a0, a1)[:, None] == np.arange(b0, b1)[None, :]).astype(dtype)
            operands += [eye, [a, b]]
        present = {lab for labels in operands[1::2] for lab in labels}
        for lab in t.indices:
            if lab not in present:  # constant along this axis
                operands += [np.ones(where[lab][1] - where[lab][0], dtype=dtype), [lab]]
        if not operands:
            out += term.coeff
            continue
        symbols = {
            lab: oe.get_symbol(k)
            for k, lab in enumerate(
                dict.fromkeys(lab for labels in [*operands[1::2], t.indices] for lab in labels)
            )
        }
        arrays = operands[0::2]
        eq = ",".join("".join(symbols[lab] for lab in labels) for labels in operands[1::2])
        eq += "->" + "".join(symbols[lab] for lab in t.indices)
        out += term.coeff * oe.contract(eq, *arrays, optimize="greedy")
    return out


def dask_array(t: BlockForm, chunks: Any = "auto") -> Any:
    """A dask array equal to ``t.array``, each chunk computed by :func:`dense_block`
    when (and only when) it is needed; ``chunks`` as dask takes them."""
    try:
        import dask
        import dask.array as da
    except ImportError:
        raise TensorchainError("to_dask needs dask: pip install 'tensorchain[dask]'") from None
    dtype = t.result_dtype
    template = da.empty(t.shape, chunks=chunks, dtype=dtype)
    # One node holds the structured form; every chunk depends on it, so a
    # cluster ships the factors to each worker once, not once per chunk.
    # Factors that are dask arrays themselves (from dask values) are computed
    # into that node first, as its dependencies.
    arrays = t.stored_arrays()
    if any(isinstance(a, da.Array) for a in arrays):
        structured = dask.delayed(_with_numpy, pure=True)(t, *arrays)
    else:
        structured = dask.delayed(t, pure=True, traverse=False)

    def compute(_, tensor, block_info=None):
        return numpy_block(tensor, block_info[None]["array-location"])

    return da.map_blocks(compute, template, structured, dtype=dtype)


def block_chunks(t: BlockForm, nbytes: int) -> Any:
    """Chunks for :func:`dask_array` of at most ``nbytes`` each (dask's "auto"
    shapes with that limit)."""
    from dask.array.core import normalize_chunks

    dtype = t.result_dtype
    return normalize_chunks("auto", t.shape, limit=max(int(nbytes), dtype.itemsize), dtype=dtype)


def _with_numpy(t: BlockForm, *arrays: Any) -> BlockForm:
    """``t`` with its factors' computed arrays (numpy) in place of dask's."""
    return t.with_arrays([to_numpy(a) for a in arrays], t.dtype)
