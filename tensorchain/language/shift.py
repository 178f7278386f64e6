"""Shift tensors: convolution and pooling as one einsum term.

``shift S[P, K, T] stride s padding q`` declares the constant

    S[p, k, t] = 1 if t = s·p + k − q else 0,

the sliding window of a convolution: ``y[o, p] = w[o, k] * S[p, k, t] * x[t]``
is a 1-D convolution (cross-correlation, as deep-learning libraries define
it) with stride ``s`` and zero padding ``q``; two shift tensors make a 2-D
one. The chain rule treats ``S`` as any other factor, so the Jacobians by the
kernel (``S · x``) and by the input (``w · S``) stay structured.

The output length follows from the others: ``P = (T + 2q − K) // s + 1``;
a ``dim P`` declared without a size is computed from it.
"""

from __future__ import annotations

import weakref
from typing import TYPE_CHECKING

import numpy as np

from ..arrays.backend import backend_of, device_of, is_numpy, namespace, to_backend
from ..arrays.cache import LRUCache
from ..errors import ShapeError

if TYPE_CHECKING:
    from .network_like import NetworkLike


def output_length(length: int, kernel: int, stride: int, padding: int) -> int:
    return (length + 2 * padding - kernel) // stride + 1


def shift_tensor(P: int, K: int, T: int, stride: int, padding: int) -> np.ndarray:
    """S[p, k, t] as a read-only strided view of a vector with a single 1:
    entry (p, k, t) reads position ``origin + t − stride·p − k + padding``, so
    S holds T + stride·P + K + padding numbers, not P·K·T."""
    low = padding - stride * (P - 1) - (K - 1)  # the least t − s·p − k + q
    origin = max(0, -low)
    buffer = np.zeros(origin + T + padding)
    buffer[origin] = 1.0
    start = origin + padding  # the entry (0, 0, 0)
    step = buffer.itemsize
    return np.lib.stride_tricks.as_strided(
        buffer[start:], (P, K, T), (-stride * step, -step, step), writeable=False
    )


def shift_sizes(net: NetworkLike, sizes: dict[str, int]) -> None:
    """Check every shift tensor's dims against each other, and fill in an
    output dim that has no size yet."""
    for t in net.tensors.values():
        if t.kind != "shift":
            continue
        P, K, T = t.dims
        stride, padding = t.shift
        if K not in sizes or T not in sizes:
            continue
        where = f"shift {t.name}[{P}, {K}, {T}] (line {t.pos.line})"
        padded = sizes[T] + 2 * padding
        if sizes[K] > padded:
            raise ShapeError(
                f"{where}: the kernel {K}={sizes[K]} is larger than the padded input"
                f" {T} + 2·padding = {sizes[T]} + {2 * padding} = {padded}; use a kernel of"
                f" at most {padded} or a padding of at least"
                f" {-(-(sizes[K] - sizes[T]) // 2)}"
            )
        expected = output_length(sizes[T], sizes[K], stride, padding)
        if P not in sizes:
            sizes[P] = expected
        elif sizes[P] != expected:
            raise ShapeError(
                f"{where}: with {T}={sizes[T]}, {K}={sizes[K]}, stride {stride} and padding"
                f" {padding} the output has ({sizes[T]} + {2 * padding} − {sizes[K]}) //"
                f" {stride} + 1 = {expected} positions, but {P}={sizes[P]}; declare"
                f" dim {P} = {expected}, or 'dim {P}' without a size to have it computed"
            )


# --- the implicit form: contractions with a shift tensor never read it ----

# id -> (a weak reference to the array, stride, padding), while the array lives:
# the registry never keeps a shift tensor alive.
_SHIFTS: dict[int, tuple[weakref.ref, int, int]] = {}
_CONSTANTS = LRUCache(64)  # the shift tensors last made, by (P, K, T, stride, padding)


def shift_constant(P: int, K: int, T: int, stride: int, padding: int) -> np.ndarray:
    """The shift tensor, registered so that :func:`contract_shift` recognises it."""

    def make() -> np.ndarray:
        S = shift_tensor(P, K, T, stride, padding)
        _SHIFTS[id(S)] = (weakref.ref(S), stride, padding)
        weakref.finalize(S, _SHIFTS.pop, id(S), None)
        return S

    return _CONSTANTS.get((P, K, T, stride, padding), make)


def windows(x: np.ndarray, axis: int, K: int, P: int, stride: int, padding: int) -> np.ndarray:
    """Σ_t S[p, k, t] x[..., t, ...]: axis ``axis`` of ``x`` replaced by the
    window position ``p``, and the offset ``k`` appended last (im2col)."""
    pad = [(0, 0)] * x.ndim
    pad[axis] = (padding, padding + K + stride * P)  # room for every window
    padded = np.pad(x, pad)
    view = np.lib.stride_tricks.sliding_window_view(padded, K, axis=axis)
    index = [slice(None)] * view.ndim
    index[axis] = slice(0, stride * P, stride)
    return np.ascontiguousarray(view[tuple(index)])


def unwindows(z: np.ndarray, T: int, stride: int, padding: int) -> np.ndarray:
    """Σ_{p, k} z[..., p, k] S[p, k, t]: the last two axes (p, k) scattered
    back to input positions t, added where windows overlap (col2im)."""
    *lead, P, K = z.shape
    out = np.zeros((*lead, padding + T + K + stride * P), dtype=z.dtype)
    for k in range(K):
        out[..., k : k + stride * P : stride] += z[..., :, k]
    return out[..., padding : padding + T]


def windows_any(x, axis: int, K: int, P: int, stride: int, padding: int):
    """:func:`windows` for arrays of any library: zero-padding by
    concatenation, then one ``take`` of the window positions."""
    if is_numpy(x):
        return windows(x, axis, K, P, stride, padding)
    xp = namespace(x)
    at = stride * np.arange(P)[:, None] + np.arange(K)[None, :]  # in the padded input
    right = max(0, int(at.max()) + 1 - padding - x.shape[axis])
    padded = xp.concat([_zeros(x, axis, padding), x, _zeros(x, axis, right)], axis=axis)
    index = at.reshape(-1)
    if backend_of(x) != "dask":  # dask takes numpy indices (its own array loses the length)
        index = to_backend(index, backend_of(x), device_of(x))
    taken = xp.take(padded, index, axis=axis)
    taken = xp.reshape(taken, (*x.shape[:axis], P, K, *x.shape[axis + 1 :]))
    order = [i for i in range(taken.ndim) if i != axis + 1] + [axis + 1]
    return xp.permute_dims(taken, tuple(order))


def unwindows_any(z, T: int, stride: int, padding: int):
    """:func:`unwindows` for arrays of any library, without writing into an
    array: each offset's column, spread out by ``stride``, padded into place
    and added."""
    if is_numpy(z):
        return unwindows(z, T, stride, padding)
    xp = namespace(z)
    *lead, P, K = z.shape
    length = padding + T + K + stride * P
    total = None
    for k in range(K):
        column = z[..., k]
        if stride > 1:  # p -> stride·p, zeros between
            spread = [column] + [xp.zeros_like(column)] * (stride - 1)
            column = xp.reshape(xp.stack(spread, axis=-1), (*lead, P * stride))
        tail = length - k - column.shape[-1]
        piece = xp.concat([_zeros(column, -1, k), column, _zeros(column, -1, tail)], axis=-1)
        total = piece if total is None else total + piece
    return total[..., padding : padding + T]


def _zeros(like, axis: int, size: int):
    """Zeros shaped as ``like`` but ``size`` long along ``axis``, on its library
    and device (a broadcast zero: nothing is allocated)."""
    xp = namespace(like)
    shape = list(like.shape)
    shape[axis] = size
    index = [slice(None)] * like.ndim
    index[axis] = slice(0, 1)
    return xp.broadcast_to(xp.zeros_like(like[tuple(index)]), tuple(shape))


def contract_shift(operands, output, sizes, contract, scale: float, fresh: bool):
    """``contract(operands, output, sizes)`` done through :func:`windows` or
    :func:`unwindows` when a registered shift tensor is among the operands
    and its input axis meets one other operand (or is an output axis that
    no other operand has); ``None`` when neither applies."""
    from ..arrays.trace import apply, shared

    for j, (array, labels) in enumerate(operands):
        found = _SHIFTS.get(id(array))
        if found is None or found[0]() is not array or len(set(labels)) < 3:
            continue
        _, stride, padding = found
        p, k, t = labels
        rest = [op for i, op in enumerate(operands) if i != j]
        with_t = [i for i, (_, labs) in enumerate(rest) if t in labs]
        P, K, T = sizes[p], sizes[k], sizes[t]
        if t not in output and len(with_t) == 1:
            x, x_labels = rest[with_t[0]]
            if p in x_labels or k in x_labels or x_labels.count(t) > 1:
                continue
            axis = x_labels.index(t)
            new_labels = (*x_labels[:axis], p, *x_labels[axis + 1 :], k)
            shape = [sizes[lab] for lab in new_labels]

            def gather(a, axis=axis, K=K, P=P, stride=stride, padding=padding):
                return windows_any(a, axis, K, P, stride, padding)

            code = lambda a, axis=axis, K=K, P=P, s=stride, q=padding: (  # noqa: E731
                f"windows({a[0]}, {axis}, {K}, {P}, {s}, {q})"
            )
            # Once per trace: the kernel's gradient reads the windows the
            # forward pass gathered (im2col once, as frameworks keep it).
            window = shared(
                ("windows", axis, K, P, stride, padding),
                [x],
                lambda x=x, gather=gather, shape=shape, code=code: apply(
                    gather, x, shape=shape, fresh=True, code=code
                ),
            )
            rest[with_t[0]] = (window, new_labels)
            return contract(rest, output, sizes, scale=scale, fresh=fresh)
        if t in output and with_t and p not in output and k not in output:
            # Factors on the output's indices only (the ReLU mask of a
            # convolution's input gradient) multiply the scatter-add's
            # result: Σ A·B·S = A·Σ B·S when A carries no summed index.
            mask = [rest[i] for i in with_t]
            if all(set(labs) <= set(output) for _, labs in mask):
                others = [op for i, op in enumerate(rest) if i not in with_t]
                carried = {lab for _, labs in [*others, (array, labels)] for lab in labs}
                inner = tuple(lab for lab in output if lab in carried)
                spread = contract([*others, (array, labels)], inner, sizes, scale=scale)
                return contract([*mask, (spread, inner)], output, sizes, fresh=fresh)
        if t in output and not with_t and p not in output and k not in output:
            inner = [lab for lab in output if lab != t]
            z = contract(rest, (*inner, p, k), sizes, scale=scale)
            shape = [sizes[lab] for lab in inner] + [T]

            def scatter(a, T=T, stride=stride, padding=padding):
                return unwindows_any(a, T, stride, padding)

            code = lambda a, T=T, s=stride, q=padding: f"unwindows({a[0]}, {T}, {s}, {q})"  # noqa: E731
            spread = apply(scatter, z, shape=shape, fresh=True, code=code)
            return contract([(spread, (*inner, t))], output, sizes, fresh=fresh)
    return None
