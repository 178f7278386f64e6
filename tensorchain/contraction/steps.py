"""Running a planned path: opt_einsum's pairwise steps, each chosen once.

:func:`executor` turns the path opt_einsum planned into a function of the
operands: BLAS-able pairs as one matrix product, products with nothing
summed as one multiply, pure reductions as ``np.add.reduce``, batch products
as stacked matrix products, anything else as ``np.einsum``; each step's
result laid out in memory as the next step reads it. The steps of a path are
then composed into one function written as Python source (:func:`_composed`).
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from typing import Any

import numpy as np
import opt_einsum as oe

from ..errors import PlanError
from .batched import batched_matmul
from .pairwise import NUMPY_OPS, Ops, is_broadcast_product, matmul, multiply, once


def executor(eq: str, shapes: tuple[tuple[int, ...], ...], info: Any, ops: Ops | None = None):
    """Run opt_einsum's planned pairwise steps with the least Python per call.

    The same steps as ``opt_einsum.contract`` with that path (BLAS-able pairs
    as one matrix product, the rest as ``np.einsum``), but every transpose and
    reshape is worked out here, once, instead of on every call. ``ops``: the
    library to run them with (numpy by default)."""
    ops = ops or NUMPY_OPS
    size: dict[str, int] = {}
    for term, shape in zip(eq.split("->")[0].split(","), shapes, strict=True):
        size.update(zip(term, shape, strict=True))
    steps = []
    layouts = _layouts(eq, info.contraction_list)
    for (inds, removed, step_eq, _, blas), layout in zip(
        info.contraction_list, layouts, strict=True
    ):
        inputs, out = step_eq.split("->")
        terms = inputs.split(",")
        if _is_gemm(blas, terms):
            fn = matmul(terms[0], terms[1], out, removed, size, layout, ops)
        elif len(terms) == 2 and is_broadcast_product(terms, out):
            fn = multiply(terms, out, size, ops)
        elif len(terms) == 1 and _is_reduction(terms[0], out):
            axes = tuple(k for k, c in enumerate(terms[0]) if c not in out)
            if ops.numpy:
                fn = functools.partial(np.add.reduce, axis=axes)
            else:
                fn = functools.partial(ops.reduce, axes=axes)
            fn.source = lambda a, axes=axes: f"np.add.reduce({a}, axis={axes})"
        elif ops.numpy and (batched := batched_matmul(terms, out, size)) is not None:
            fn = batched  # a product with batch indices: BLAS per batch entry
        else:
            letters = einsum_letters(step_eq)
            fn = functools.partial(np.einsum if ops.numpy else ops.einsum, letters)
            fn.source = lambda *a, e=letters: f"np.einsum({e!r}, {', '.join(a)})"
        steps.append((tuple(inds), fn))
    # Every step but a one-operand np.einsum (a transpose or diagonal: a view)
    # returns a new array.
    last = info.contraction_list[-1]
    fresh = not (
        len(last[2].split("->")[0].split(",")) == 1
        and isinstance(steps[-1][1], functools.partial)
        and steps[-1][1].func is np.einsum
    )

    def source(args: Sequence[str]) -> str:
        """The same steps as one numpy expression, given the operands' source."""
        operands = list(args)
        for inds, fn in steps:
            operands.append(fn.source(*[operands.pop(k) for k in inds]))
        return operands[0]

    if len(steps) == 1:
        ((inds, fn),) = steps
        if inds == (0,):
            return fn, fresh, source
        if inds == (1, 0):
            swapped = getattr(fn, "swapped", None)  # written again, taking (b, a)
            return swapped() if swapped else (lambda a, b: fn(b, a)), fresh, source
    return _composed(steps, len(shapes)), fresh, source


def scaled(fn: Any, count: int, k: int, scale: float) -> Any:
    """``fn`` of ``count`` operands with operand ``k`` multiplied by ``scale``
    first: for a function written here, the same written again with the
    multiplication in it (made once per operand and scale); else one closure
    for the common arities (no list per call)."""
    written = getattr(fn, "scaled", None)
    if written is not None:
        return written(k, scale)
    mul = np.multiply
    if count == 2:
        if k == 0:
            return lambda a, b: fn(mul(a, scale), b)
        return lambda a, b: fn(a, mul(b, scale))
    if count == 3:
        if k == 0:
            return lambda a, b, c: fn(mul(a, scale), b, c)
        if k == 1:
            return lambda a, b, c: fn(a, mul(b, scale), c)
        return lambda a, b, c: fn(a, b, mul(c, scale))

    def run(*arrays: np.ndarray) -> np.ndarray:
        arrays = list(arrays)
        arrays[k] = mul(arrays[k], scale)
        return fn(*arrays)

    return run


def _composed(
    steps: Sequence[tuple[tuple[int, ...], Any]],
    count: int,
    scale: tuple[int, float] | None = None,
) -> Any:
    """The pairwise steps as one function of ``count`` operands: written as
    Python over internal names (``a`` operands, ``t`` results, ``s`` steps,
    ``_k`` a scale, passed in as objects) and compiled, so a call runs no
    loop or list. ``scale``: (operand, factor) to multiply first."""
    names = [f"a{k}" for k in range(count)]
    lines = [f"def run({', '.join(names)}):"]
    space: dict[str, Any] = {"__builtins__": {}, "_multiply": np.multiply}
    if scale is not None:
        lines.append(f"    a{scale[0]} = _multiply(a{scale[0]}, _k)")
        space["_k"] = scale[1]
    for j, (inds, fn) in enumerate(steps):
        args = [names.pop(k) for k in inds]
        space[f"s{j}"] = fn
        lines.append(f"    t{j} = s{j}({', '.join(args)})")
        done = [a for a in args if a.startswith("t")]
        if done:  # an intermediate is freed once used, as the memory forecast assumes
            lines.append(f"    del {', '.join(done)}")
        names.append(f"t{j}")
    lines.append(f"    return {names[0]}")
    python = "\n".join(lines) + "\n"
    exec(compile(python, "<tensorchain contraction>", "exec"), space)
    run = space["run"]
    run.python = python  # for the test that it holds internal names only
    if scale is None:
        run.scaled = once(lambda k, factor: _composed(steps, count, (k, factor)))
    return run


def _is_gemm(blas: Any, terms: Sequence[str]) -> bool:
    return bool(blas) and "EINSUM" not in blas and len(terms) == 2


def _layouts(eq: str, contraction_list: Sequence[tuple]) -> list[list[str]]:
    """The memory order of each step's result (labels, slowest first).

    A result multiplied next by a matrix product is laid out as that product
    reads it without a transpose: ``[free, summed]`` for the left factor,
    ``[summed, free]`` for the right (BLAS is a quarter slower on transposed
    operands of a thin product). Any other result follows the final output's
    order, so that elementwise steps see operands with one layout."""
    final = eq.split("->")[1]
    inputs = len(eq.split("->")[0].split(","))
    operands = list(range(-inputs, 0))  # an input is negative, a step's result its number
    consumer: dict[int, tuple[int, int]] = {}
    for s, (inds, *_) in enumerate(contraction_list):
        for position, k in enumerate(inds):
            source = operands.pop(k)
            if source >= 0:
                consumer[source] = (s, position)
        operands.append(s)
    layouts: list[list[str]] = [[] for _ in contraction_list]
    for s in reversed(range(len(contraction_list))):
        out = contraction_list[s][2].split("->")[1]
        layouts[s] = sorted(out, key=lambda c: final.index(c) if c in final else len(eq))
        if s not in consumer:
            continue
        c, position = consumer[s]
        _, removed, step_eq, _, blas = contraction_list[c]
        terms = step_eq.split("->")[0].split(",")
        if not _is_gemm(blas, terms):
            continue
        # The consumer's result is laid out as asked when it is one of the two
        # orders a product gives (free_l + free_r or the reverse).
        free_l = [x for x in terms[0] if x not in removed]
        free_r = [x for x in terms[1] if x not in removed]
        consumer_out = step_eq.split("->")[1]
        wanted = layouts[c]
        if wanted not in (free_l + free_r, free_r + free_l):
            wanted = list(consumer_out)
            if wanted not in (free_l + free_r, free_r + free_l):
                wanted = free_l + free_r
        free = [x for x in wanted if x in terms[position]]
        summed = [x for x in terms[0] if x in removed]
        if free == wanted[: len(free)]:
            layouts[s] = free + summed
        elif free == wanted[len(wanted) - len(free) :]:
            layouts[s] = summed + free
    return layouts


def _is_reduction(term: str, out: str) -> bool:
    """A one-operand step that only sums axes away, keeping the rest in order."""
    return len(set(term)) == len(term) and [c for c in term if c in out] == list(out)


def einsum_letters(eq: str) -> str:
    """``eq`` with ascii letters only, as ``np.einsum`` needs (52 at most)."""
    try:
        return oe.parser.convert_to_valid_einsum_chars(eq)
    except ValueError:
        raise PlanError(
            "generated numpy code writes each contraction as one np.einsum, which"
            f" takes at most 52 distinct indices; {eq!r} has more"
        ) from None
