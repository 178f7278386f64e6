"""One pairwise step of a planned contraction, written once and run many times.

A pair that BLAS can take (:func:`matmul`) is one ``np.dot`` of two matrices
with its transposes and reshapes worked out when it is planned; a pair with
nothing summed (:func:`multiply`) is one broadcast ``np.multiply``. On numpy
each is a function written as Python source and compiled (its names
internal), so a call runs no Python beyond the product itself; on another
library the same steps go through its array-API namespace (:class:`Ops`).
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import xp_of

#: Broadcast products of at least this many entries are made in C order
#: whatever their operands' layout (later steps read them as laid out).
C_ORDER_ENTRIES = 4096


class Ops:
    """The few array operations a planned contraction needs, from one
    library: numpy's own, or another library's through its array-API
    namespace (einsum steps through opt_einsum's dispatch)."""

    def __init__(self, library: str = "numpy") -> None:
        self.numpy = library == "numpy"
        if self.numpy:  # reductions and einsum steps call numpy directly
            self.dot = np.dot
            self.permute = lambda a, perm: a.transpose(perm)
            return
        xp = xp_of(library)
        self.dot = xp.matmul
        self.permute = lambda a, perm: xp.permute_dims(a, tuple(perm))
        self.reduce = lambda a, axes: xp.sum(a, axis=axes)
        self.einsum = lambda eq, *arrays: oe.contract(eq, *arrays, backend=library)
        self.reshape = lambda a, shape: xp.reshape(a, tuple(shape))
        self.broadcast = lambda a, shape: xp.broadcast_to(a, tuple(shape))


NUMPY_OPS = Ops()


def once(make: Any) -> Any:
    """``make(k, scale)``, made once per (k, scale)."""
    made: dict[tuple[int, float], Any] = {}

    def get(k: int, scale: float) -> Any:
        key = (k, scale)
        if key not in made:
            made[key] = make(k, scale)
        return made[key]

    return get


def _dot_shape(a: tuple[int, ...], b: tuple[int, ...]) -> tuple[int, ...]:
    """The shape of ``np.dot`` of operands of these shapes (1-D or 2-D)."""
    return a[:-1] + b[1:]


_OPERAND = {"a": re.compile(r"\ba\b"), "b": re.compile(r"\bb\b")}


def _written(expression: str, names: dict[str, Any], swap: bool = False) -> Any:
    """A function ``run(a, b)`` returning ``expression``, written and compiled
    (its names internal: ``a``, ``b``, and the objects ``names`` passes in);
    ``run.swapped()`` makes the same taking ``(b, a)``, ``run.scaled(k, c)``
    the same with operand ``k`` multiplied by ``c`` first."""
    space: dict[str, Any] = {
        "__builtins__": {},
        "_dot": np.dot,
        "_multiply": np.multiply,
        "_C": "C",
        **names,
    }
    params = ("b", "a") if swap else ("a", "b")
    python = f"def run({', '.join(params)}):\n    return {expression}\n"
    exec(compile(python, "<tensorchain contraction>", "exec"), space)  # our own source
    run = space["run"]
    run.python = python  # for the test that it holds internal names only

    def scaled(k: int, scale: float) -> Any:
        x = params[k]
        text = _OPERAND[x].sub(f"_multiply({x}, _k)", expression, count=1)
        return _written(text, {**names, "_k": scale}, swap)

    if "_k" not in names:
        run.scaled = once(scaled)
        run.swapped = lambda: _written(expression, names, swap=not swap)
    return run


def matmul(left: str, right: str, out: str, removed, size: dict[str, int], layout=None, ops=None):
    """``einsum(left,right->out)`` for a pair with no shared kept index, as one
    ``np.dot`` of two matrices with precomputed transposes and reshapes; the
    result is laid out in memory in ``layout`` order (a view in ``out`` order)."""
    summed = [s for s in left if s in removed]
    free_l = [s for s in left if s not in removed]
    free_r = [s for s in right if s not in removed]
    perm_l = [left.index(s) for s in free_l + summed]
    perm_r = [right.index(s) for s in summed + free_r]
    m = math.prod(size[s] for s in free_l)
    k = math.prod(size[s] for s in summed)
    n = math.prod(size[s] for s in free_r)
    keep_l, keep_r = perm_l == sorted(perm_l), perm_r == sorted(perm_r)
    natural = free_l + free_r
    swapped = free_r + free_l
    shape = [size[s] for s in out]

    # A transposed 2-D operand goes to BLAS as a view (np.dot passes the
    # transpose flag); reshaping it would copy it first.
    flat_l = not (len(left) == 2 and len(free_l) == 1)
    flat_r = not (len(right) == 2 and len(free_r) == 1)

    ops = ops or NUMPY_OPS
    dot, permute = ops.dot, ops.permute

    def matrices(a: np.ndarray, b: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        a2 = a if keep_l else permute(a, perm_l)
        b2 = b if keep_r else permute(b, perm_r)
        return (a2.reshape(m, k) if flat_l else a2), (b2.reshape(k, n) if flat_r else b2)

    def source(a: str, b: str, swap: bool, reshape: list[int], perm: list[int] | None) -> str:
        a2 = a if keep_l else _transposed(a, perm_l)
        b2 = b if keep_r else _transposed(b, perm_r)
        a2 = f"{a2}.reshape({m}, {k})" if flat_l else a2
        b2 = f"{b2}.reshape({k}, {n})" if flat_r else b2
        if swap:
            text = f"np.dot({_transposed(b2, [1, 0])}, {_transposed(a2, [1, 0])})"
        else:
            text = f"np.dot({a2}, {b2})"
        if list(reshape) != ([n, m] if swap else [m, n]):
            text = f"{text}.reshape({tuple(reshape)})"
        return _transposed(text, perm) if perm is not None else text

    def with_source(fn, swap: bool, reshape: list[int], perm: list[int] | None = None):
        fn.source = lambda a, b: source(a, b, swap, reshape, perm)
        return fn

    def numpy_run(swap: bool, reshape: list[int], perm: list[int] | None):
        """The product on numpy arrays: a function written with only the
        reshapes and transposes it needs (a vector stays a vector:
        matrix-vector BLAS; no reshape where np.dot's result has the shape)."""
        a_shape, b_shape = (m, k), (k, n)
        left, right, names = "a", "b", {}
        if not keep_l:
            if tuple(perm_l) == (1, 0):  # a matrix's transpose: .T, no tuple read
                left = f"{left}.T"
            else:
                left, names["_pl"] = f"{left}.transpose(_pl)", tuple(perm_l)
        if flat_l:
            a_shape = (k,) if m == 1 and n > 1 else (m, k)
            if a_shape != tuple(size[s] for s in free_l + summed):
                left, names["_sl"] = f"{left}.reshape(_sl)", a_shape
        if not keep_r:
            if tuple(perm_r) == (1, 0):
                right = f"{right}.T"
            else:
                right, names["_pr"] = f"{right}.transpose(_pr)", tuple(perm_r)
        if flat_r:
            b_shape = (k,) if n == 1 and m > 1 else (k, n)
            if b_shape != tuple(size[s] for s in summed + free_r):
                right, names["_sr"] = f"{right}.reshape(_sr)", b_shape
        if swap:
            text, shape = f"_dot({right}.T, {left}.T)", _dot_shape(b_shape[::-1], a_shape[::-1])
        else:
            text, shape = f"_dot({left}, {right})", _dot_shape(a_shape, b_shape)
        if shape != tuple(reshape):
            text, names["_to"] = f"{text}.reshape(_to)", tuple(reshape)
        if perm is not None and list(perm) != sorted(perm):
            text, names["_po"] = f"{text}.transpose(_po)", tuple(perm)
        return with_source(_written(text, names), swap, reshape, perm)

    if ops.numpy:
        if layout is not None and list(layout) != list(out) and list(layout) in (natural, swapped):
            first = list(layout)
            to_out = [first.index(c) for c in out]
            return numpy_run(first != natural, [size[c] for c in first], to_out)
        if list(out) == natural:
            return numpy_run(False, [size[s] for s in out], None)
        if list(out) == swapped:
            return numpy_run(True, [size[s] for s in out], None)
        return numpy_run(False, [size[s] for s in natural], [natural.index(s) for s in out])

    if layout is not None and list(layout) != list(out) and list(layout) in (natural, swapped):
        first = list(layout)
        to_out = [first.index(c) for c in out]
        first_shape = [size[c] for c in first]
        if first == natural:
            return with_source(
                lambda a, b: permute(dot(*matrices(a, b)).reshape(first_shape), to_out),
                False,
                first_shape,
                to_out,
            )

        def run_laid_out(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            a2, b2 = matrices(a, b)
            return permute(dot(b2.T, a2.T).reshape(first_shape), to_out)

        return with_source(run_laid_out, True, first_shape, to_out)
    if list(out) == natural:
        return with_source(lambda a, b: dot(*matrices(a, b)).reshape(shape), False, shape)
    if list(out) == swapped:

        def run_swapped(a: np.ndarray, b: np.ndarray) -> np.ndarray:
            a2, b2 = matrices(a, b)
            return dot(b2.T, a2.T).reshape(shape)

        return with_source(run_swapped, True, shape)
    perm_o = [natural.index(s) for s in out]
    natural_shape = [size[s] for s in natural]
    return with_source(
        lambda a, b: permute(dot(*matrices(a, b)).reshape(natural_shape), perm_o),
        False,
        natural_shape,
        perm_o,
    )


_TRANSPOSE = re.compile(r"^(.*)\.transpose\(\(([0-9, ]*)\)\)$")


def _transposed(text: str, perm: Sequence[int]) -> str:
    """``text.transpose(perm)`` as source, merged with a transpose it ends with
    (and dropped when the two cancel)."""
    match = _TRANSPOSE.match(text)
    if match:
        inner = [int(p) for p in match[2].split(",") if p.strip()]
        text, perm = match[1], [inner[p] for p in perm]
    if list(perm) == sorted(perm):
        return text
    return f"{text}.transpose({tuple(perm)})"


def is_broadcast_product(terms: list[str], out: str) -> bool:
    """A step that only multiplies entries (nothing summed, no diagonal)."""
    return all(len(set(t)) == len(t) for t in terms) and set("".join(terms)) == set(out)


def multiply(terms: list[str], out: str, size: dict[str, int], ops=None):
    """``einsum(a,b->out)`` with nothing summed as one broadcast ``np.multiply``."""
    plans = []
    for term in terms:
        order = [c for c in out if c in term]
        perm = [term.index(c) for c in order]
        view = [size[c] if c in term else 1 for c in out]
        plans.append((None if perm == sorted(perm) else perm, view))
    (perm_a, view_a), (perm_b, view_b) = plans
    full = [size[c] for c in out]

    ops = ops or NUMPY_OPS
    if ops.numpy:
        # Every axis of out is in a or b (a broadcast product), so the product
        # has its shape; C order, whatever the operands' layout, where large.
        names: dict[str, Any] = {}
        operands = []
        for name, perm, view, term in (
            ("a", perm_a, view_a, terms[0]),
            ("b", perm_b, view_b, terms[1]),
        ):
            text = name
            if perm is not None:
                text, names[f"_p{name}"] = f"{text}.transpose(_p{name})", tuple(perm)
            trailing = perm is None and out.endswith(term)  # broadcast as it is
            if len(term) != len(out) and not trailing:
                text, names[f"_v{name}"] = f"{text}.reshape(_v{name})", tuple(view)
            operands.append(text)
        # C order costs 0.45 µs a call (a keyword): asked for where layout matters
        order = ", order=_C" if math.prod(full) >= C_ORDER_ENTRIES else ""
        run = _written(f"_multiply({operands[0]}, {operands[1]}{order})", names)

    else:

        def run(a, b):
            a = ops.reshape(a if perm_a is None else ops.permute(a, perm_a), view_a)
            b = ops.reshape(b if perm_b is None else ops.permute(b, perm_b), view_b)
            result = a * b
            return result if list(result.shape) == full else ops.broadcast(result, full)

    whole_a, whole_b = (len(t) == len(out) for t in terms)  # has every axis of out

    def operand(x: str, perm: list[int] | None, view: list[int], whole: bool) -> str:
        x = x if perm is None else _transposed(x, perm)
        return x if whole else f"{x}.reshape({tuple(view)})"

    def source(a: str, b: str) -> str:
        a, b = operand(a, perm_a, view_a, whole_a), operand(b, perm_b, view_b, whole_b)
        return f"np.multiply({a}, {b}, order='C')"  # every axis of out is in one of them

    run.source = source
    return run
