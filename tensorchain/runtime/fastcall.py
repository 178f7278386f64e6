"""The cheap call of a compiled program on numpy values (issue 20).

A call whose values need no conversion (a dict of numpy arrays of one real
float dtype, of the program's shapes, naming exactly its inputs) needs none
of the general checks of :mod:`tensorchain.runtime.values` before the work: a
:class:`FastCall` is a function written for one program and dtype that takes
the inputs out of the values, compares their types, dtypes and shapes with
the program's as one tuple, runs the program, and checks the values and the
results for NaN and infinity in one pass after it: one number, the sum of
the squares of every value and result (a dot product: it never warns; small
arrays joined first, large ones read where they are), finite exactly when
they all are unless it overflows, when the exact checks decide. A result much
larger than the factors of its last step is bounded by their norms instead
of read (see :class:`tensorchain.arrays.trace.Checks`). The source is written
here from the program's shapes and checks, over internal names only (``r``
registers, ``o`` outputs, ``p`` probes, ``_`` helpers and constants passed
in as objects, no literal); nothing of the network's text is in it.

When the values do not fit (another dtype, library, shape or name) the call
returns None and the caller takes the general path; when the pass finds
something, the caller makes the general checks after the work, with their
warnings and errors (see :func:`tensorchain.runtime.finite.check_results`)."""

from __future__ import annotations

import math
import operator
from collections.abc import Callable, Mapping
from typing import Any

import numpy as np

from ..arrays import trace as program_module
from ..arrays.quiet import loud, quiet
from ..arrays.trace import Program

#: Values and results of at most this many entries each are joined into
#: one array for the pass (copying them costs less than a call per array);
#: larger ones are read where they are.
JOIN_ENTRIES = 1024

#: What a call returns: the outputs, the probes, and whether the pass found
#: everything finite (True when not asked to check).
Result = tuple[list, list, bool]


class FastCall:
    """``call(values, check_finite)`` for one program on numpy values of
    ``dtype``: a short program's steps are written into the call itself, a
    long one's call runs :meth:`Program.numpy_function` (replayed step by
    step for its first calls). The result is a :data:`Result`, or None when
    the values need the general path. ``before(values)``, when given, runs
    once the values fit and before any work, unless told not to check (the
    domains of declarations such as ``param s[n] positive``, which raise)."""

    def __init__(
        self,
        program: Program,
        dtype: np.dtype,
        before: Callable[[Mapping], None] | None = None,
    ) -> None:
        self.dtype = np.dtype(dtype)
        names = list(program.inputs)
        shapes = [program.shapes[program.inputs[n]] for n in names]
        inline = len(program.steps) <= program_module.EAGER_STEPS
        space: dict[str, Any] = program.numpy_namespace() if inline else {}
        self.source = _source(program, inline, before is not None, space)
        space.update(
            {
                "__builtins__": {},
                "_take": _getter(tuple(names)),
                "_sig": tuple(x for s in shapes for x in (np.ndarray, self.dtype, s)),
                "_n": len(names),
                "_type": type,
                "_len": len,
                "_errors": (KeyError, TypeError, AttributeError),
                "_vdot": np.vdot,
                "_cat": np.concatenate,
                "_sqrt": math.sqrt,
                "_one": 1.0,
                "_L": float(np.finfo(self.dtype).max) * 1e-8,  # far above what rounding adds
                "_function": program.numpy_function,
                "_quiet": quiet,
                "_loud": loud,
                "_before": before,
            }
        )
        exec(compile(self.source, "<tensorchain call>", "exec"), space)  # our own source
        self.call: Callable[[Mapping, bool], Result | None] = space["_call"]


def _sizes(program: Program) -> list[int]:
    """The entries of each array the pass sums: the values, the direct outputs."""
    values = [math.prod(program.shapes[r]) for r in program.inputs.values()]
    direct = program.checks.direct
    return values + [math.prod(program.shapes[program.outputs[k]]) for k in direct]


def shapes_of(program: Program) -> list[tuple[int, ...]]:
    """The shapes of the program's inputs, in order."""
    return [program.shapes[r] for r in program.inputs.values()]


def _getter(names: tuple[str, ...]) -> Callable[[Mapping], tuple]:
    if len(names) == 1:
        (name,) = names
        return lambda values: (values[name],)
    if not names:
        return lambda values: ()
    return operator.itemgetter(*names)


def _source(program: Program, inline: bool, before: bool, space: dict[str, Any]) -> str:
    """The call as Python source (see :class:`FastCall`; ``before``: the
    checks of the values' domains, made before any work unless told not to
    check); the constants it names are put in ``space``."""
    values = [f"r{reg}" for reg in program.inputs.values()]
    lines = ["def _call(_values, _check):"]
    if values:
        comma = "," if len(values) == 1 else ""
        lines += [
            "    try:",
            f"        {', '.join(values)}{comma} = _take(_values)",
            "        _s = ("
            + ", ".join(f"_type({v}), {v}.dtype, {v}.shape" for v in values)
            + f"{comma})",
            "    except _errors:",
            "        return None",
            "    if _s != _sig or _len(_values) != _n:",
            "        return None",
        ]
    else:
        lines += ["    if _len(_values) != _n:", "        return None"]
    if before:
        lines += ["    if _check:", "        _before(_values)"]
    # The work with numpy's warnings off, as every compiled run (tensorchain.arrays.quiet)
    lines += ["    _t = _quiet()", "    try:"]
    if inline:
        lines += ["    " + line for line in program.body()]
        outputs = [program.ref(r) for r in program.outputs]
        lines.append(f"        _out = [{', '.join(outputs)}]")
        lines.append(f"        _probes = [{', '.join(map(program.ref, program.probes))}]")
    else:
        lines.append("        _out, _probes = _function()(_values)")
        outputs = [f"o{k}" for k in range(len(program.outputs))]
    lines += ["    finally:", "        _loud(_t)"]
    if not inline and program.checks.direct:  # every output named: no index written
        lines.append(f"    {', '.join(outputs)}{',' if len(outputs) == 1 else ''} = _out")
    lines += ["    if not _check:", "        return _out, _probes, True"]
    # One number: the sum of the squares of every value, direct output and
    # probe (small arrays joined first, large ones read where they are). It is
    # finite exactly when they all are (or it overflows: entries past about
    # 1e150, when the exact checks decide), and its root bounds every probe's
    # norm, so an output much larger than the factors of its last step (an
    # explicit Jacobian of thin factors) is finite when bound * Π max(1, ‖p‖)
    # stays far below the largest float: it is never read.
    checks = program.checks
    arrays = [(v, len(s)) for v, s in zip(values, shapes_of(program), strict=True)]
    arrays += [(outputs[k], len(program.shapes[program.outputs[k]])) for k in checks.direct]
    sizes = _sizes(program)
    if checks.bounded:
        probes = [program.ref(r) for r in program.probes]
        if not inline:
            probes = [f"p{k}" for k in range(len(program.probes))]
            lines.append(f"    {', '.join(probes)}{',' if len(probes) == 1 else ''} = _probes")
        named = {a for a, _ in arrays}  # an input that is a probe is summed once
        for p, reg in zip(probes, program.probes, strict=True):
            if p not in named:
                arrays.append((p, len(program.shapes[reg])))
                sizes.append(math.prod(program.shapes[reg]))
    small = [(a, ndim) for (a, ndim), n in zip(arrays, sizes, strict=True) if n <= JOIN_ENTRIES]
    sums = [f"_vdot({a}, {a})" for (a, _), n in zip(arrays, sizes, strict=True) if n > JOIN_ENTRIES]
    if len(small) == 1:
        sums.insert(0, f"_vdot({small[0][0]}, {small[0][0]})")
    elif small:  # np.concatenate takes 1-D arrays as they are; others as flat views
        parts = [a if ndim == 1 else f"{a}.ravel()" for a, ndim in small]
        lines.append(f"    _j = _cat(({', '.join(parts)},))")
        sums.insert(0, "_vdot(_j, _j)")
    if not sums:
        lines.append("    return _out, _probes, True")
        return "\n".join(lines) + "\n"
    lines.append(f"    _q = {' + '.join(sums)}")
    tests = ["_q < _L"]  # False for inf and NaN
    if checks.bounded:
        lines.append("    _r = _sqrt(_q) if _q > _one else _one")
        for j, (bound, positions) in enumerate(checks.bounded):
            space[f"_B{j}"] = bound
            tests.append(f"_B{j}{' * _r' * len(positions)} < _L")
    lines.append(f"    return _out, _probes, {' and '.join(tests)}")
    return "\n".join(lines) + "\n"
