"""The cheap call of a compiled program on numpy values (issue 20).

A call whose values need no conversion (a dict of numpy arrays of one real
float dtype, of the program's shapes, naming exactly its inputs) needs none
of the general checks of :mod:`tensorchain.values` before the work: a
:class:`FastCall` is a function written for one program and dtype that takes
the inputs out of the values, compares their types, dtypes and shapes with
the program's as one tuple, runs the program, and checks the values and the
results for NaN and infinity in one pass after it (a dot product with ones:
a sum is finite exactly when every term is, unless it overflows, and a dot
product never warns). Its source is written here from the program's shapes
and checks, over internal names only (``v`` values, ``o`` outputs, ``_``
helpers and constants passed in as objects, no literal); nothing of the
network's text is in it.

When the values do not fit (another dtype, library, shape or name) the call
returns None and the caller takes the general path; when the pass finds
something, the caller makes the general checks after the work, with their
warnings and errors (see :func:`tensorchain.finite.check_results`)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from .program import Checks, Program

#: Values and results of at most this many entries in all are summed as one
#: joined array (copying them costs less than a call per array); larger ones
#: array by array.
ONE_PASS_ENTRIES = 16384

#: What a call returns: the outputs, the probes, and whether the pass found
#: everything finite (True when not asked to check).
Result = tuple[list, list, bool]


class FastCall:
    """``call(values, check_finite, run)`` for one program on numpy values of
    one dtype: ``run`` is the program's function (:meth:`Program.numpy_function`);
    the result is a :data:`Result`, or None when the values need the general
    path. ``names``: the program's inputs in order; ``shapes``: theirs."""

    def __init__(
        self,
        program: Program,
        names: Sequence[str],
        shapes: Sequence[tuple[int, ...]],
        dtype: np.dtype,
    ) -> None:
        self.dtype = np.dtype(dtype)
        outputs = [program.shapes[r] for r in program.outputs]
        self.source = _source(len(names), list(shapes), program.checks, outputs)
        space: dict[str, Any] = {
            "__builtins__": {},
            "_get": _getter(tuple(names)),
            "_sig": tuple(x for s in shapes for x in (np.ndarray, self.dtype, tuple(s))),
            "_n": len(names),
            "_type": type,
            "_len": len,
            "_errors": (KeyError, TypeError, AttributeError),
            "_isfinite": math.isfinite,
            "_vdot": np.vdot,
            "_cat": np.concatenate,
            "_each": _each_finite,
            "_bounded": _Bounded(program.checks, self.dtype),
        }
        total = sum(math.prod(s) for s in shapes) + sum(
            math.prod(outputs[k]) for k in program.checks.direct
        )
        space["_ones"] = np.ones(total, self.dtype)
        exec(compile(self.source, "<tensorchain call>", "exec"), space)  # our own source
        self.call: Callable[[Mapping, bool, Callable], Result | None] = space["_call"]


def _getter(names: tuple[str, ...]) -> Callable[[Mapping], tuple]:
    if len(names) == 1:
        (name,) = names
        return lambda values: (values[name],)
    if not names:
        return lambda values: ()
    import operator

    return operator.itemgetter(*names)


def _source(
    count: int,
    shapes: list[tuple[int, ...]],
    checks: Checks,
    outputs: list[tuple[int, ...]],
) -> str:
    """The call as Python source (see :class:`FastCall`)."""
    values = [f"v{k}" for k in range(count)]
    lines = ["def _call(_values, _check, _run):"]
    if values:
        lines += [
            "    try:",
            f"        {', '.join(values)}{',' if count == 1 else ''} = _get(_values)",
            "        _s = ("
            + ", ".join(f"_type({v}), {v}.dtype, {v}.shape" for v in values)
            + ("," if count == 1 else "")
            + ")",
            "    except _errors:",
            "        return None",
            "    if _s != _sig or _len(_values) != _n:",
            "        return None",
        ]
    else:
        lines += ["    if _len(_values) != _n:", "        return None"]
    lines += [
        "    _out, _probes = _run(_values)",
        "    if not _check:",
        "        return _out, _probes, True",
    ]
    tests = []
    if checks.bounded:
        tests.append("_bounded(_probes)")
    summed = [(v, len(s)) for v, s in zip(values, shapes, strict=True)]
    summed += [(f"o{k}", len(outputs[k])) for k in checks.direct]
    if checks.direct:  # every output named, so that no index is written
        names = [f"o{k}" for k in range(len(outputs))]
        lines.append(f"    {', '.join(names)}{',' if len(names) == 1 else ''} = _out")
    if summed:
        size = sum(math.prod(s) for s in shapes) + sum(math.prod(outputs[k]) for k in checks.direct)
        if size <= ONE_PASS_ENTRIES:
            # np.concatenate ravels 1-D arrays for free; others as views first
            parts = [a if ndim == 1 else f"{a}.ravel()" for a, ndim in summed]
            tests.append(f"_isfinite(_vdot(_cat(({', '.join(parts)},)), _ones))")
        else:
            tests.append(f"_each(({', '.join(a for a, _ in summed)},))")
    lines.append(f"    return _out, _probes, {' and '.join(tests) or 'True'}")
    return "\n".join(lines) + "\n"


def _each_finite(arrays: Sequence[np.ndarray]) -> bool:
    """Whether each array's sum is finite (an overflow reads as not finite)."""
    with np.errstate(over="ignore", invalid="ignore"):
        return all(math.isfinite(np.add.reduce(a, axis=None)) for a in arrays)


class _Bounded:
    """Whether the outputs :attr:`Checks.bounded` covers are finite, from
    the norms of their probes (see :class:`tensorchain.program.Checks`)."""

    def __init__(self, checks: Checks, dtype: np.dtype) -> None:
        self.bounded = checks.bounded
        self.largest = float(np.finfo(dtype).max) * 1e-8  # far above what rounding adds

    def __call__(self, probes: Sequence[np.ndarray]) -> bool:
        largest, norms = self.largest, []
        for p in probes:
            # ‖p‖ bounds max |p| and is finite exactly when p is (or overflows:
            # then the exact checks decide). A dot product never warns.
            square = abs(np.vdot(p, p))
            if not square < largest:  # inf or NaN (NaN compares false)
                return False
            norms.append(math.sqrt(square))
        for bound, positions in self.bounded:
            total = bound
            for k in positions:
                total *= norms[k] if norms[k] > 1.0 else 1.0
            if not total < largest:
                return False
        return True
