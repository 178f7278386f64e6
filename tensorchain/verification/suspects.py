"""What a wrong gradient is consistent with: the diagnosis of :func:`check_gradient`.

Each suspect is a hypothesis about the user's code, tested by computing the
gradient it would give and comparing it with the user's at the tolerance of
the check. Two kinds:

* **whole gradients**: the exact one times a constant (−1: a sign; 2 or ½: a
  factor of 2; 1/B or B: a mean where the loss sums, or the reverse; any
  other constant, said as it is), the
  exact one transposed, or the exact one with the first or last slice of a
  dim left out of the values (an off-by-one in a sum over a batch);
* **one local derivative wrong**: the chain rule run again with one local
  Jacobian ``∂target/∂operand`` changed — its sign flipped, doubled or
  halved, left out (a path, or a term of the product rule, forgotten), one
  of its terms dropped, one of its factors transposed, or one factor left out
  (``σ'(z)`` forgotten) — and compared with the user's gradient by every
  tensor at once. These run at small sizes only (they are run after
  shrinking), where each costs one uncompiled chain rule.

Values are random, so a suspect that matches is almost surely the fault's
kind; several matching suspects are listed together.
"""

from __future__ import annotations

import itertools
from collections.abc import Iterator
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..calculus.chain import network_jacobians
from ..calculus.labeled import LabeledTensor
from ..language.gather import cast_values
from ..runtime.finite import upstream

if TYPE_CHECKING:
    from ..language.network_like import Computing
    from .gradient_report import Outcome

LOCAL_LIMIT = 20_000  # gradient entries up to which local suspects are tried
SHOWN = 6


def diagnose(
    net: Computing, of: str, wrts: tuple[str, ...], outcome: Outcome
) -> tuple[list[str], list[str]]:
    """The suspects that explain the failing example ``outcome``, and notes."""
    found = _whole(net, of, wrts, outcome)
    notes = []
    entries = sum(g.size for g in outcome.exact.values())
    if entries > LOCAL_LIMIT:
        notes.append(
            f"(which local derivative is wrong is tried at up to {LOCAL_LIMIT:,} gradient"
            f" entries, and this example has {entries:,}: let check_gradient draw the sizes"
            " to have it shrink the example first)"
        )
        return found, notes
    local = _local(net, of, wrts, outcome)
    found += local[:SHOWN]
    if len(local) > SHOWN:
        notes.append(f"({len(local) - SHOWN} more local derivatives would explain it too)")
    if not found and any(outcome.yours[w].shape == outcome.exact[w].shape for w in outcome.failed):
        notes.append(
            "no single wrong sign, factor, transpose, left-out term or local derivative"
            " explains the difference"
        )
    return found, notes


# --- whole gradients ---


def _factor_names(sizes: dict[str, int]) -> Iterator[tuple[float, str]]:
    yield -1.0, "the exact one with its sign flipped"
    yield 2.0, "twice the exact one (a factor of 2 too many)"
    yield 0.5, "half the exact one (a forgotten factor of 2, e.g. of a square's derivative?)"
    yield -2.0, "−2 times the exact one"
    yield -0.5, "−½ times the exact one"
    big = [(d, s) for d, s in sizes.items() if s > 2]
    for r in (1, 2):
        for group in itertools.combinations(big, r):
            n = int(np.prod([s for _, s in group]))
            dims = "·".join(d for d, _ in group)
            yield (
                1.0 / n,
                f"1/{dims} = 1/{n} times the exact one: a mean over {dims} where the loss"
                " has a sum",
            )
            yield (
                float(n),
                f"{dims} = {n} times the exact one: a sum over {dims} where the loss has a mean",
            )


def _whole(net: Computing, of: str, wrts: tuple[str, ...], outcome: Outcome) -> list[str]:
    found: dict[str, list[str]] = {}  # what -> the tensors whose gradient it describes
    for w in outcome.failed:
        yours, exact, tol = outcome.yours[w], outcome.exact[w], outcome.tolerance[w]
        if yours.shape != exact.shape:
            if yours.ndim == 2 and yours.shape == exact.shape[::-1] and tol.close(yours.T, exact):
                found.setdefault("the exact one transposed", []).append(w)
            continue
        if not np.any(exact):
            continue
        for c, text in _factor_names(outcome.sizes):
            if tol.close(yours, c * exact):
                found.setdefault(text, []).append(w)
                break
        else:  # some other constant factor (says nothing with one entry)
            if np.count_nonzero(exact) < 2:
                continue
            c = float(np.vdot(yours, exact) / np.vdot(exact, exact))
            if np.isfinite(c) and tol.close(yours, c * exact):
                if abs(c - 1) < 1e-3:  # not a factor: the same small relative error everywhere
                    text = (
                        f"(1 {'+' if c > 1 else '−'} {abs(c - 1):.2g}) times the exact one: a"
                        f" relative error of {abs(c - 1):.2g} in every entry (a constant or a"
                        " value rounded to lower precision?)"
                    )
                else:
                    text = f"{c:.6g} times the exact one"
                found.setdefault(text, []).append(w)
        if exact.ndim == 2 and exact.shape[0] == exact.shape[1] > 1 and tol.close(yours, exact.T):
            found.setdefault("the exact one transposed", []).append(w)
    out = []
    for text, names in found.items():
        if len(names) == 1:
            out.append(f"your gradient by {names[0]} is {text}")
        else:
            listed = f"{', '.join(names[:-1])} and {names[-1]}"
            out.append(f"your gradients by {listed} are each {text}")
    return out + _left_out(net, of, wrts, outcome)


def _left_out(net: Computing, of: str, wrts: tuple[str, ...], outcome: Outcome) -> list[str]:
    """The exact gradient with the first or last slice of a dim left out of
    every value that has it: an off-by-one in a sum over that dim."""
    failed = outcome.failed
    if any(outcome.yours[w].shape != outcome.exact[w].shape for w in failed):
        return []
    found = []
    used = {d for w in failed for d in net.tensors[w].dims}
    wide = cast_values(net, outcome.values, np.float64)
    for d, size in outcome.sizes.items():
        if size < 2 or d in used or not any(d in net.tensors[k].dims for k in wide):
            continue
        for s, which in ((size - 1, "last"), (0, "first")):
            cut = {}
            for k, v in wide.items():
                for axis in reversed([a for a, dim in enumerate(net.tensors[k].dims) if dim == d]):
                    v = np.delete(v, s, axis=axis)
                cut[k] = v
            try:
                g = net.grad(of, list(wrts), cut, check_finite=False)
            except Exception:  # the network does not take that size
                continue
            for c in (1.0, size / (size - 1), (size - 1) / size):
                if all(outcome.tolerance[w].close(outcome.yours[w], c * g[w]) for w in failed):
                    found.append(
                        f"the exact gradient with the {which} {d} ({d}={s}) left out of the"
                        f" sum over {d}: an off-by-one, e.g. range({d} - 1) or a [:-1]"
                        if which == "last"
                        else f"the exact gradient with the first {d} ({d}=0) left out of the"
                        f" sum over {d}: an off-by-one, e.g. range(1, {d}) or a [1:]"
                    )
                    break
            else:
                continue
            break
    return found


# --- one local derivative ---


def _mutations(jac: LabeledTensor) -> Iterator[tuple[LabeledTensor, str]]:
    """Changed versions of one local Jacobian and what each would mean."""
    yield jac.scale(-1.0), "with the wrong sign"
    yield jac.scale(0.5), "half what it is (a forgotten factor of 2?)"
    yield jac.scale(2.0), "twice what it is"
    yield LabeledTensor.zeros(jac.indices, jac.sizes), "left out"
    terms = list(jac.terms)
    if len(terms) > 1:
        for k, t in enumerate(terms):
            rest = terms[:k] + terms[k + 1 :]
            name = "·".join(f.name for f in t.factors) or "1"
            yield (
                LabeledTensor(jac.indices, jac.sizes, rest, canonicalize=False),
                f"without its term {name} (a term of the product rule forgotten)",
            )
    for k, t in enumerate(terms):
        for j, factor in enumerate(t.factors):
            shape = factor.array.shape
            for a, b in itertools.combinations(range(len(shape)), 2):
                if shape[a] != shape[b] or shape[a] < 2:
                    continue
                swapped = replace(factor, array=np.swapaxes(np.asarray(factor.array), a, b))
                what = "transposed" if len(shape) == 2 else f"with its axes {a} and {b} swapped"
                yield (
                    _with_factor(jac, terms, k, j, swapped),
                    f"with its factor {factor.name} {what}",
                )
            others = {lab for f in t.factors if f is not factor for lab in f.labels}
            others |= {lab for pair in t.deltas for lab in pair}
            if factor.labels and set(factor.labels) <= others:
                yield (
                    _with_factor(jac, terms, k, j, None),
                    f"without its factor {factor.name} (a forgotten derivative?)",
                )


def _with_factor(jac: LabeledTensor, terms: list, k: int, j: int, factor: Any) -> LabeledTensor:
    t = terms[k]
    factors = list(t.factors)
    if factor is None:
        del factors[j]
    else:
        factors[j] = factor
    changed = [*terms[:k], replace(t, factors=tuple(factors)), *terms[k + 1 :]]
    return LabeledTensor(jac.indices, jac.sizes, changed, canonicalize=False)


def _local(
    net: Computing,
    of: str,
    wrts: tuple[str, ...],
    outcome: Outcome,
) -> list[str]:
    values = cast_values(net, outcome.values, np.float64)
    with np.errstate(all="ignore"):
        forward = net.forward(values)
    down = set(wrts)
    for stmt in net.statements:
        if any(op in down for op in stmt.operands):
            down.add(stmt.target)
    needed = upstream(net, of)
    on_path = [s for s in net.statements if s.target in down and s.target in needed]
    locals_: dict[str, dict[str, LabeledTensor]] = {}

    def local_of(target: str) -> dict[str, LabeledTensor]:
        if target not in locals_:
            locals_[target] = net.local_jacobians(target, forward)
        return locals_[target]

    def gradient(changed: str, op: str, jac: LabeledTensor) -> dict[str, np.ndarray]:
        def local_fn(stmt: Any) -> dict[str, LabeledTensor]:
            found = local_of(stmt.target)
            return {**found, op: jac} if stmt.target == changed else found

        result = network_jacobians(
            net.statements, net.axes, forward.sizes, local_fn, of, list(wrts)
        )
        return {w: np.asarray(result.jacobians[w].array, dtype=np.float64) for w in wrts}

    def explains(g: dict[str, np.ndarray]) -> bool:
        return all(outcome.tolerance[w].close(outcome.yours[w], g[w]) for w in wrts)

    found = []
    with np.errstate(all="ignore"):
        for stmt in on_path:
            for op in stmt.operands:
                if op not in down:
                    continue
                base = local_of(stmt.target)[op]
                for jac, what in _mutations(base):
                    where = f"in {stmt.text.strip()} (line {stmt.pos.line})"
                    text = f"∂{stmt.target}/∂{op} {what}, {where}"
                    if explains(gradient(stmt.target, op, jac)):
                        found.append(text)
    return found
