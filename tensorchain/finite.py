"""Finite results: NaN or infinity in what a call returns is reported, with
the statement where non-finite values first appear.

Values are checked before any work (:func:`tensorchain.values.check_values`);
results are checked after it, by one pass over the arrays returned. Only when
a result is not finite is the network run again, step by step, to find the
first statement whose value (or local derivative) is not finite.

A compiled call on numpy values checks both at once, after the work
(:func:`all_finite`): one sum over the values and the results together, and
for a result much larger than what its last step multiplied (an explicit
Jacobian made of two thin factors) a bound from those factors instead of a
pass over it. Only when that finds something are the values and the
results checked as above, with the same warnings and errors.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import backend_of, to_numpy
from .errors import NonFiniteWarning, ValuesError
from .gather import Selection
from .labeled import LabeledTensor
from .program import Checks
from .values import _count, _count_non_finite, _finite

if TYPE_CHECKING:
    from .network import Network


#: Totals of at most this many entries are summed as one array (copying them
#: costs less than a reduction per array); larger ones array by array.
ONE_PASS_ENTRIES = 16384


class FiniteCheck:
    """The one pass of :func:`all_finite` for a program's calls on numpy
    values of fixed shapes (``value_shapes``) and ``dtype``, its work planned
    once: whether the values and the outputs it sums are few enough to sum
    as one array, and the vectors of ones each sum is a dot product with (a
    dot product never warns: an overflow or inf - inf just gives a
    non-finite number; np.sum would need np.errstate around it)."""

    def __init__(
        self,
        checks: Checks,
        value_shapes: Sequence[tuple[int, ...]],
        output_shapes: Sequence[tuple[int, ...]],
        dtype: np.dtype,
    ) -> None:
        self.checks = checks
        self.largest = float(np.finfo(dtype).max) * 1e-8  # far above what rounding can add
        sizes = [math.prod(shape) for shape in value_shapes]
        sizes += [math.prod(output_shapes[k]) for k in checks.direct]
        real = np.finfo(dtype).dtype  # float64 for complex128
        twice = 2 if dtype.kind == "c" else 1  # complex entries viewed as two reals
        self.joined: np.ndarray | None = None  # ones for the joined values and outputs
        self.each: list[np.ndarray] | None = None  # ones for each, in order
        if sum(sizes) <= ONE_PASS_ENTRIES:
            self.joined = np.ones(twice * sum(sizes), real)
        elif twice == 1:
            ones = np.ones(max(sizes), real)
            self.each = [ones[:n] for n in sizes]

    def __call__(
        self, values: Sequence[np.ndarray], outputs: Sequence[np.ndarray], probes: Sequence
    ) -> bool:
        """Whether the values and the results are all finite (False may also
        mean that a sum overflowed: the exact checks then decide)."""
        checks = self.checks
        if probes and not self._bounded(probes):
            return False
        arrays = [*values, *(outputs[k] for k in checks.direct)]
        if self.joined is not None:
            joined = np.concatenate(arrays, axis=None)
            if joined.dtype.kind == "c":
                joined = joined.view(joined.real.dtype)
            if joined.shape == self.joined.shape and joined.dtype == self.joined.dtype:
                return math.isfinite(np.vdot(joined, self.joined))
        elif self.each is not None and len(arrays) == len(self.each):
            seen = {id(p) for p in probes}  # a value that is a probe is checked already
            for a, ones in zip(arrays, self.each, strict=True):
                if id(a) in seen:
                    continue
                if a.dtype == ones.dtype:
                    if not math.isfinite(np.vdot(a, ones)):
                        return False
                elif not _sums_finite([a]):
                    return False
            return True
        return _sums_finite(arrays)

    def _bounded(self, probes: Sequence[np.ndarray]) -> bool:
        largest, norms = self.largest, []
        for p in probes:
            # ‖p‖ bounds max |p| and is finite exactly when p is (or overflows:
            # then the exact checks decide). A dot product never warns.
            square = abs(np.vdot(p, p))
            if not square < largest:  # inf or NaN (NaN compares false)
                return False
            norms.append(math.sqrt(square))
        for bound, positions in self.checks.bounded:
            total = bound
            for k in positions:
                total *= norms[k] if norms[k] > 1.0 else 1.0
            if not total < largest:
                return False
        return True


def all_finite(
    values: Sequence[np.ndarray],
    outputs: Sequence[np.ndarray],
    probes: Sequence[np.ndarray],
    checks: Checks,
    dtype: np.dtype,
) -> bool:
    """Whether the numpy ``values`` and a program's results are all finite:
    ``checks`` says which outputs to sum and which to bound by their
    ``probes`` (see :class:`tensorchain.program.Checks`). False may also mean
    that a sum overflowed; the exact checks then decide."""
    shapes = [np.shape(o) for o in outputs]
    return FiniteCheck(checks, [np.shape(v) for v in values], shapes, dtype)(
        values, outputs, probes
    )


def _sums_finite(arrays: Sequence[np.ndarray]) -> bool:
    if not arrays:
        return True
    with np.errstate(over="ignore", invalid="ignore"):
        return all(math.isfinite(np.add.reduce(a, axis=None).real) for a in arrays)


def result_arrays(result: Any) -> list[Any]:
    """The arrays a call returned: a dict's values, a LabeledTensor's factors
    (not its selections, whose integer positions are finite)."""
    if isinstance(result, Mapping):
        return [a for value in result.values() for a in result_arrays(value)]
    if isinstance(result, LabeledTensor):
        return [
            f.array for t in result.terms for f in t.factors if not isinstance(f.array, Selection)
        ]
    if isinstance(result, list | tuple):
        return [a for value in result for a in result_arrays(value)]
    return [result]


def check_results(
    net: Network,
    env: Mapping[str, Any],
    result: Any,
    what: str,
    of: str | None = None,
    strict: bool = False,
    stacklevel: int = 3,
) -> None:
    """Warn (:class:`NonFiniteWarning`), or raise :class:`ValuesError` with
    ``strict``, if ``result`` holds NaN or infinity, naming the statement where
    non-finite values first appear. Lazy (dask) results are not computed to
    check them."""
    given = {id(v) for v in env.values()}  # evaluate returns the values given too
    arrays = [a for a in result_arrays(result) if backend_of(a) != "dask" and id(a) not in given]
    if all(_finite(a) for a in arrays):
        return
    if not strict and any(_count(v != v) for v in env.values()):
        return  # NaN in the values: check_values has warned once already
    bad = sum(_count_non_finite(a) for a in arrays)
    total = sum(int(np.size(a)) for a in arrays)
    message = (
        f"{what} holds NaN or infinity ({bad:,} of {total:,} numbers);"
        f" {first_non_finite(net, env, of)}"
    )
    if strict:
        raise ValuesError(message)
    warnings.warn(
        message + " (strict=True makes this an error)", NonFiniteWarning, stacklevel=stacklevel
    )


def first_non_finite(net: Network, env: Mapping[str, Any], of: str | None = None) -> str:
    """Where non-finite values first appear, in words: the first statement
    (of those ``of`` depends on) whose value is not finite, else the first
    whose local derivative is not, else the products of the chain rule."""
    values = {name: np.asarray(to_numpy(value)) for name, value in env.items()}
    infinite = [name for name, v in values.items() if not np.isfinite(v).all()]
    inputs = (
        f" (infinite or NaN entries in the values of {', '.join(infinite)})" if infinite else ""
    )
    needed = upstream(net, of)
    statements = [s for s in net.statements if s.target in needed]
    with np.errstate(all="ignore"):
        forward = net.run_forward(dict(values), net.sizes(values))
        for stmt in statements:
            if not np.isfinite(forward.values[stmt.target]).all():
                return (
                    f"non-finite values first appear in {stmt.text} (line {stmt.pos.line}){inputs}"
                )
        for stmt in statements:
            local = net.local_jacobians(stmt.target, forward)
            for name, jac in local.items():
                if not all(np.isfinite(a).all() for a in jac.stored_arrays()):
                    return (
                        f"every value is finite, but non-finite values first appear in the"
                        f" derivative of {stmt.text} (line {stmt.pos.line}) by {name}{inputs}"
                    )
    return (
        "every value and every local derivative is finite, so the products of the"
        f" chain rule overflow{inputs}"
    )


def upstream(net: Network, of: str | None) -> set[str]:
    """The tensors ``of`` depends on, itself included (every tensor when ``of``
    is None)."""
    if of is None:
        return set(net.tensors)
    found = {of}
    for stmt in reversed(net.statements):
        if stmt.target in found:
            found.update(stmt.operands)
    return found
