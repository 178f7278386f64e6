"""Contracting labeled operands with opt_einsum, and the cost of each contraction.

Labels are any strings; they become einsum symbols through
``opt_einsum.get_symbol``, so more than 52 distinct labels work. The path is
planned once per equation and shapes (:mod:`tensorchain.contraction.paths`)
and run by steps written once (:mod:`tensorchain.contraction.steps`).
"""

from __future__ import annotations

import functools
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import constant, copy, namespace
from ..arrays.trace import Slot, apply, is_fresh
from ..language.gather import contract_select
from ..language.reindex import contract_reindex
from ..language.shift import contract_shift
from .paths import planned
from .steps import scaled

Operand = tuple[np.ndarray, Sequence[str]]


def equation(inputs: Sequence[Sequence[str]], output: Sequence[str]) -> str:
    """The einsum string, with symbols given in order of first appearance."""
    symbols: dict[str, str] = {}
    for labels in (*inputs, output):
        for label in labels:
            symbols.setdefault(label, oe.get_symbol(len(symbols)))
    lhs = ",".join("".join(symbols[lab] for lab in labels) for labels in inputs)
    return f"{lhs}->{''.join(symbols[lab] for lab in output)}"


@dataclass(frozen=True)
class Contraction:
    """One opt_einsum contraction as it ran: what it combined and what it cost."""

    equation: str
    names: tuple[str, ...]
    optimizer: str
    flops: int
    largest_intermediate: int
    info: Any  # opt_einsum.contract.PathInfo

    def steps(self) -> list[str]:
        return [step[2] for step in self.info.contraction_list]


def contract(
    operands: Sequence[Operand],
    output: Sequence[str],
    sizes: dict[str, int],
    names: Sequence[str] | None = None,
    optimize: Any = None,
    log: list[Contraction] | None = None,
    scale: float = 1.0,
    fresh: bool = False,
) -> np.ndarray:
    """``scale * einsum(operands -> output)``; labels of ``output`` found in no
    operand are broadcast. With ``log``, the path and its cost are appended.
    With ``fresh``, the result is a new writable array (never a view of an
    operand); otherwise it may be one.

    Goes through :func:`program.apply`, so inside a trace it is recorded.
    A shift tensor (:mod:`tensorchain.language.shift`) is applied as a gather or a
    scatter where it can be, never read as an array; so is a selection
    (:mod:`tensorchain.language.gather`), always."""
    if any(isinstance(a, Slot) and a.multiple is not None for a, _ in operands):
        operands, scale = _unscaled(operands, scale)
    done = contract_select(
        operands,
        output,
        sizes,
        # a path given was planned for the operands with the selection among them
        functools.partial(contract, names=None, log=log, optimize=None),
        scale,
        fresh,
    )
    if done is not None:
        return done
    if len(operands) > 1 and not isinstance(optimize, tuple):  # not an explicit path
        done = contract_shift(
            operands,
            output,
            sizes,
            functools.partial(contract, names=None, optimize=optimize, log=log),
            scale,
            fresh,
        )
        if done is not None:
            return done
    if len(operands) > 1:  # a reshape or a concatenation: never read (an explicit path is
        # for the operands as given, so the rest is planned again)
        plain = None if isinstance(optimize, tuple) else optimize
        done = contract_reindex(
            operands,
            output,
            sizes,
            functools.partial(contract, names=None, optimize=plain, log=log),
            scale,
            fresh,
        )
        if done is not None:
            return done
    present = {lab for _, labels in operands for lab in labels}
    inner = [lab for lab in output if lab in present]
    arrays = [a for a, _ in operands]
    full = tuple(sizes[lab] for lab in output)
    view = (
        None
        if len(inner) == len(output)
        else [sizes[lab] if lab in present else 1 for lab in output]
    )
    if not operands:
        if fresh:
            return apply(
                lambda: constant(np.full(full, scale)),
                shape=full,
                fresh=True,
                code=lambda a: f"np.full({full}, {scale!r})",
            )
        return apply(
            lambda: constant(np.broadcast_to(np.asarray(scale, dtype=float), full)),
            shape=full,
            code=lambda a: f"np.broadcast_to(np.asarray({scale!r}), {full})",
        )
    # Each entry of the result sums this many products of one entry of each
    # operand, times the scale: what bounds it for the finiteness check.
    terms = math.prod(sizes[lab] for lab in present - set(output))
    if len(operands) == 1 and tuple(operands[0][1]) == tuple(output):
        if scale == 1.0 and (not fresh or is_fresh(arrays[0])):
            return arrays[0]  # the identity: nothing to do
        return apply(
            lambda a: scale * a if scale != 1.0 else copy(a),
            arrays[0],
            shape=full,
            fresh=True,
            code=lambda a: f"{scale!r} * {a[0]}" if scale != 1.0 else f"{a[0]}.copy()",
            numpy=functools.partial(np.multiply, scale) if scale != 1.0 else np.copy,
            bound=max(abs(scale), 1.0),
        )
    eq = equation([labels for _, labels in operands], inner)
    shapes = tuple(tuple(a.shape) for a in arrays)
    plan = planned(eq, shapes, optimize)
    expr, new_array, info, opt, expr_source = (
        plan.run,
        plan.fresh,
        plan.info,
        plan.name,
        plan.source,
    )
    bound = max(abs(scale), 1.0) * terms
    # Intermediates of a path of several steps, for the memory forecast.
    extra = int(info.largest_intermediate) if len(info.contraction_list) > 1 else 0
    if log is not None and len(operands) > 1:
        names = tuple(names or [f"T{k}" for k in range(len(arrays))])
        flops, largest = int(info.opt_cost), int(info.largest_intermediate)
        log.append(Contraction(eq, names, opt, flops, largest, info))

    # A scale is applied to the smallest operand, the cheapest place for it.
    smallest = min(range(len(shapes)), key=lambda k: math.prod(shapes[k]))

    def code(args: Sequence[str]) -> str:
        """The planned steps as numpy source (the path baked in, step by step)."""
        args = list(args)
        if scale != 1.0:
            args[smallest] = f"{scale!r} * {args[smallest]}"
        text = expr_source(args)
        if view is not None:
            text = f"np.array(np.broadcast_to(np.reshape({text}, {tuple(view)}), {full}))"
        elif fresh and not new_array:
            text = f"np.array({text})"
        return text

    if scale == 1.0 and view is None and (new_array or not fresh):
        return apply(
            expr,
            *arrays,
            shape=full,
            fresh=new_array,
            extra=extra,
            code=code,
            numpy=plan.numpy,
            bound=bound,
        )

    def run(*arrays: np.ndarray) -> np.ndarray:
        if scale != 1.0:
            arrays = list(arrays)
            arrays[smallest] = scale * arrays[smallest]
        result = expr(*arrays)
        if not isinstance(result, np.ndarray | np.generic):  # another library: never written
            xp = namespace(result)
            return xp.broadcast_to(xp.reshape(result, view), full) if view else result
        return finished(result, arrays)

    def finished(result: np.ndarray, arrays) -> np.ndarray:
        if view is not None:
            result = np.broadcast_to(np.reshape(result, view), full)
        if fresh and (
            view is not None
            or (not new_array and any(np.may_share_memory(result, a) for a in arrays))
        ):
            result = np.array(result)
        return result

    run_numpy = plan.numpy
    if view is not None or (fresh and not new_array):

        def run_numpy(*arrays: np.ndarray) -> np.ndarray:
            if scale != 1.0:
                arrays = list(arrays)
                arrays[smallest] = np.multiply(arrays[smallest], scale)
            return finished(plan.numpy(*arrays), arrays)

    elif scale != 1.0:
        run_numpy = scaled(plan.numpy, len(arrays), smallest, scale)

    return apply(
        run, *arrays, shape=full, fresh=fresh, extra=extra, code=code, numpy=run_numpy, bound=bound
    )


def _unscaled(operands: Sequence[Operand], scale: float) -> tuple[list[Operand], float]:
    """Traced operands that are multiples ``c * x`` replaced by ``x``, and
    their factors ``c`` taken into the scale (one step fewer a call)."""
    out = []
    for a, labels in operands:
        while isinstance(a, Slot) and a.multiple is not None:
            c, a = a.multiple
            scale *= c
        out.append((a, labels))
    return out, scale
