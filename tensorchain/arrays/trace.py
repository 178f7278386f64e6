"""Compiled programs: trace the array operations of a computation once, replay them.

Everything tensorchain does to arrays goes through :func:`apply` (and
``plan.contract``, which calls it). Outside a trace ``apply(fn, *args)`` is
just ``fn(*args)``. Inside ``with tracing() as tape`` the arguments are
:class:`Slot` placeholders that carry only a shape; ``apply`` records the
step and returns a new slot. The resulting :class:`Program` replays the steps
on real arrays: no parsing, shape inference, label bookkeeping or path
finding is left, and each register is freed after its last use, so peak
memory is what the computation itself needs.

A program runs as a straight-line Python function written from its steps:
one assignment per step, ``r5 = _f3(r2, r4)``, over internal names only
(``r`` registers, ``_f`` steps, ``_c`` constants). The steps and constants
are passed in as objects, never written as source, and no text of the
network (not even a tensor name) is part of it; it is compiled once with
``compile()`` and kept with the program, one namespace per array library.
Programs of many steps are replayed by a loop over their steps for their
first calls (``compile()`` costs about 20 µs a step) and compiled once they
are called again and again.
"""

from __future__ import annotations

import contextlib
import functools
import math
import operator
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from typing import Any

import numpy as np

from .backend import backend_of, device_of, to_backend, using

#: Writes one step as numpy source, given the source of its arguments.
Code = Callable[[Sequence[str]], str]


class Slot:
    """A placeholder for a float64 array in a traced program."""

    __slots__ = ("fresh", "multiple", "reg", "shape")

    def __init__(self, reg: int, shape: tuple[int, ...], fresh: bool = False) -> None:
        self.reg = reg
        self.shape = tuple(int(s) for s in shape)
        self.fresh = fresh  # its step always returns a new array, a view of nothing
        # (c, slot) when its step computes c * slot: a contraction that reads it
        # reads slot instead and multiplies its own scale by c (plan.contract)
        self.multiple: tuple[float, Slot] | None = None

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def __repr__(self) -> str:
        return f"Slot(r{self.reg}, shape={self.shape})"


@dataclass(frozen=True)
class Step:
    fn: Callable[..., np.ndarray]
    args: tuple[int, ...]
    out: int
    free: tuple[int, ...]  # registers whose last use is this step
    numpy: Callable[..., np.ndarray] | None = None  # the same on numpy arrays, no dispatch
    bound: float | None = None  # |out| <= bound * prod(max(1, max |arg|)): see apply


@dataclass(frozen=True)
class Checks:
    """How a program's results are checked for NaN and infinity cheaply.

    ``direct`` are positions in the outputs whose entries are summed;
    ``bounded`` pairs a bound with positions in the probes (the arguments of
    the step that made an output much larger than they are): that output is
    finite if they are and ``bound * prod(max(1, max |probe|))`` stays far below the
    largest float, so it is never read (an explicit 1000 × 1000 Jacobian made
    from two 1000 × 10 factors is checked on 20,000 numbers, not 10⁶)."""

    direct: tuple[int, ...] = ()
    bounded: tuple[tuple[float, tuple[int, ...]], ...] = ()


class Tape:
    """The steps recorded so far; made by :func:`tracing`."""

    def __init__(self, itemsize: int = 8) -> None:
        # (fn, args, out, extra, numpy kernel, bound) per step
        self.steps: list[tuple] = []
        self.codes: list[Code | None] = []
        self.inputs: dict[str, int] = {}
        self.constants: dict[int, np.ndarray] = {}
        self.shapes: list[tuple[int, ...]] = []
        self.itemsize = itemsize
        self.memo: dict = {}  # results shared by every step that asks (see `shared`)

    def _new(self, shape: tuple[int, ...]) -> Slot:
        slot = Slot(len(self.shapes), shape)
        self.shapes.append(slot.shape)
        return slot

    def input(self, name: str, shape: tuple[int, ...]) -> Slot:
        slot = self._new(shape)
        self.inputs[name] = slot.reg
        return slot

    def register(self, value: Slot | np.ndarray) -> int:
        if isinstance(value, Slot):
            return value.reg
        slot = self._new(np.shape(value))
        self.constants[slot.reg] = np.asarray(value)
        return slot.reg

    def apply(
        self,
        fn: Callable[..., np.ndarray],
        args: Sequence,
        shape,
        fresh: bool,
        extra: int,
        code: Code | None,
        numpy: Callable[..., np.ndarray] | None = None,
        bound: float | None = None,
        multiple: tuple[float, Any] | None = None,
    ) -> Slot:
        regs = tuple(self.register(a) for a in args)
        out = self._new(tuple(shape))
        out.fresh = fresh
        if multiple is not None and isinstance(multiple[1], Slot):
            out.multiple = (float(multiple[0]), multiple[1])
        self.steps.append((fn, regs, out.reg, extra, numpy, bound))
        self.codes.append(code)
        return out

    def program(self, outputs: Sequence[Slot | np.ndarray]) -> Program:
        out_regs = tuple(self.register(o) for o in outputs)
        # Only the steps the outputs depend on (a Jacobian needs only part of
        # the forward pass, a gradient not the loss itself).
        needed = set(out_regs)
        live: list[int] = []
        for k in range(len(self.steps) - 1, -1, -1):
            if self.steps[k][2] in needed:
                live.append(k)
                needed.update(self.steps[k][1])
        self.steps = [self.steps[k] for k in reversed(live)]
        self.codes = [self.codes[k] for k in reversed(live)]
        inputs = set(self.inputs.values())
        checks, probes = self._checks(out_regs, inputs)
        last: dict[int, int] = {}
        for k, step in enumerate(self.steps):
            for a in step[1]:
                last[a] = k
        keep = set(out_regs) | set(self.constants) | inputs | set(probes)
        steps = tuple(
            Step(
                fn,
                args,
                out,
                tuple(sorted({a for a in args if last[a] == k and a not in keep})),
                numpy,
                bound,
            )
            for k, (fn, args, out, _, numpy, bound) in enumerate(self.steps)
        )
        return Program(
            steps,
            dict(self.inputs),
            dict(self.constants),
            out_regs,
            len(self.shapes),
            self._peak(steps),
            tuple(self.codes),
            tuple(isinstance(o, Slot) and o.fresh and o.reg not in inputs for o in outputs),
            tuple(self.shapes),
            tuple(step[3] for step in self.steps),
            checks,
            probes,
        )

    def _checks(self, out_regs: tuple[int, ...], inputs: set[int]) -> tuple[Checks, tuple]:
        """How to check the outputs for NaN and infinity (inputs, checked with
        the values, and constants are skipped), and the registers to keep for it."""
        made = {step[2]: step for step in self.steps}
        size = [math.prod(shape) for shape in self.shapes]
        direct: list[int] = []
        bounded: list[tuple[float, tuple[int, ...]]] = []
        probes: dict[int, int] = {}
        for k, reg in enumerate(out_regs):
            if reg in inputs or reg in self.constants or reg in out_regs[:k]:
                continue
            step = made.get(reg)
            if step is not None and step[5] is not None:
                args = step[1]
                if 4 * sum(size[a] for a in args) <= size[reg]:
                    positions = tuple(probes.setdefault(a, len(probes)) for a in args)
                    bounded.append((step[5], positions))
                    continue
            direct.append(k)
        return Checks(tuple(direct), tuple(bounded)), tuple(probes)

    def _peak(self, steps: tuple[Step, ...]) -> Peak:
        """The most bytes the steps hold at once (inputs not counted): every
        live result, plus the step's own output and its largest intermediate."""
        size = [math.prod(shape) * self.itemsize for shape in self.shapes]
        live, best = 0, Peak(0, 0, ())
        for k, (step, traced) in enumerate(zip(steps, self.steps, strict=True)):
            extra = traced[3]
            during = live + size[step.out] + extra * self.itemsize
            if during > best.bytes:
                best = Peak(during, k, self.shapes[step.out])
            live += size[step.out] - sum(size[a] for a in step.free)
        return best


@dataclass(frozen=True)
class Peak:
    """A forecast: ``bytes`` at the peak, and the shape of the array made then."""

    bytes: int
    step: int
    shape: tuple[int, ...]


_TAPE: ContextVar[Tape | None] = ContextVar("tensorchain_tape", default=None)


@contextlib.contextmanager
def tracing(itemsize: int = 8, tape: Tape | None = None) -> Iterator[Tape]:
    """Record every :func:`apply` inside the block on a new :class:`Tape`
    (``itemsize``: bytes per entry, for the memory forecast), or on ``tape``
    to go on recording where an earlier block stopped."""
    tape = Tape(itemsize) if tape is None else tape
    token = _TAPE.set(tape)
    try:
        yield tape
    finally:
        _TAPE.reset(token)


def apply(
    fn: Callable[..., np.ndarray],
    *args,
    shape: Sequence[int],
    fresh: bool = False,
    extra: int = 0,
    code: Code | None = None,
    numpy: Callable[..., np.ndarray] | None = None,
    bound: float | None = None,
    multiple: tuple[float, Any] | None = None,
):
    """``fn(*args)`` now, or recorded as a step of the current trace.

    ``fresh`` promises that ``fn`` returns a new array that nothing else holds;
    ``extra`` is how many entries ``fn`` holds besides its output (the largest
    intermediate of a contraction), for the memory forecast; ``code`` writes
    the step as numpy source, given its arguments' source (for
    :meth:`Program.source`); ``numpy`` is the same step for numpy arrays
    only, without the dispatch ``fn`` does for other libraries; ``bound``
    promises ``|out| <= bound * prod(max(1, max |arg|))`` for every entry and
    every intermediate (a product of its arguments summed over at most
    ``bound`` terms, times a coefficient at most ``bound``), so the result
    is finite when the arguments are and that is small; ``multiple=(c, x)``
    says that the result is ``c * x`` (2 x, the derivative of x²), so that a
    contraction of it contracts ``x`` and scales by ``c`` instead (the step
    is then left out of the program unless something else reads it)."""
    tape = _TAPE.get()
    if tape is None:
        return fn(*args)
    return tape.apply(fn, args, shape, fresh, extra, code, numpy, bound, multiple)


def tracing_now() -> bool:
    """Whether a trace is recording (a step's numpy form is worth making)."""
    return _TAPE.get() is not None


def shared(key: tuple, args: Sequence, make: Callable[[], Any]) -> Any:
    """``make()``, computed once per trace for the same ``key`` and traced
    arguments ``args`` (an inverse that several local derivatives use is
    computed once); outside a trace, ``make()`` every time."""
    tape = _TAPE.get()
    if tape is None or not all(isinstance(a, Slot) for a in args):
        return make()
    full = (*key, *(a.reg for a in args))
    if full not in tape.memo:
        tape.memo[full] = make()
    return tape.memo[full]


def linear_source(pairs: Sequence[tuple[float, str]]) -> str:
    """``c1 * a + c2 * b - ...`` as readable source (no ``1.0 *``, signs folded)."""
    text = ""
    for c, a in pairs:
        term = a if abs(c) == 1.0 else f"{abs(c)!r} * {a}"
        if not text:
            text = f"-{term}" if c < 0 else term
        else:
            text += f" - {term}" if c < 0 else f" + {term}"
    return text


def _literal(value: np.ndarray) -> str:
    value = np.asarray(value)
    if value.ndim == 0:
        return f"np.asarray({value.item()!r})"
    return f"np.array({value.tolist()!r})"


def is_fresh(value) -> bool:
    """Whether a traced value is known to be a new array nothing else holds."""
    return isinstance(value, Slot) and value.fresh


_NUMPY = ("numpy", "None")

#: Programs of at most this many steps are compiled on their first call.
EAGER_STEPS = 2048
#: Longer ones are replayed step by step this many times first (compile()
#: costs about 20 µs a step, the replay loop about 0.3 µs a step more a call).
CALLS_BEFORE_COMPILING = 64


@dataclass(frozen=True, eq=False)
class Program:
    """A straight-line program of array steps, replayed by calling it."""

    steps: tuple[Step, ...]
    inputs: dict[str, int]
    constants: dict[int, np.ndarray]
    outputs: tuple[int, ...]
    registers: int
    peak: Peak  # the memory forecast
    codes: tuple[Code | None, ...] = ()
    fresh: tuple[bool, ...] = ()  # per output: a new array nothing else holds
    shapes: tuple[tuple[int, ...], ...] = ()  # per register
    extras: tuple[int, ...] = ()  # per step: entries held besides its output
    checks: Checks = Checks()  # how its results are checked for NaN and infinity
    probes: tuple[int, ...] = ()  # registers kept for those checks

    def __call__(self, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        return self.run(values)[0]

    def run(self, values: Mapping[str, np.ndarray]) -> tuple[list, list]:
        """The outputs on ``values``, and the probes (see :class:`Checks`)."""
        first = next(iter(values.values()), None)
        if first is None or isinstance(first, np.ndarray):
            found = self._functions.get(_NUMPY)
            return (found or self._function("numpy", None))(values)
        # Another array library: constants moved to it (once per device), and
        # steps with no array argument make arrays of it.
        library, device = backend_of(first), device_of(first)
        with using(library, device):
            return self._function(library, device)(values)

    def numpy_function(self) -> Callable[[Mapping], tuple[list, list]]:
        """:meth:`run` for values known to be numpy arrays."""
        return self._functions.get(_NUMPY) or self._function("numpy", None)

    def _function(self, library: str, device: Any) -> Callable[[Mapping], tuple[list, list]]:
        """The program for one library and device: the compiled function, or
        for a long program's first calls the replay loop."""
        key = (library, str(device))
        found = self._functions.get(key)
        if found is not None:
            return found
        with self._lock:
            calls = self._calls[key] = self._calls.get(key, 0) + 1
            if key not in self._spaces:
                self._spaces[key] = self._namespace(library, device)
            if len(self.steps) > EAGER_STEPS and calls <= CALLS_BEFORE_COMPILING:
                return functools.partial(self._replay, self._spaces[key])
            found = self._functions.get(key)
            if found is None:
                namespace = dict(self._spaces.pop(key))
                exec(self._code, namespace)  # our own source: internal names only
                found = self._functions[key] = namespace["_run"]
            return found

    def _namespace(self, library: str, device: Any) -> dict[str, Any]:
        """The objects the source names: each step's function (its numpy form
        on numpy) as ``_f<k>``, each constant as ``_c<register>``, and
        ``_get``, which takes the inputs from the values."""
        space: dict[str, Any] = {"__builtins__": {}}
        names = list(self.inputs)
        if names:
            space["_get"] = operator.itemgetter(*names)
        for k, step in enumerate(self.steps):
            fast = step.numpy if library == "numpy" else None
            space[f"_f{k}"] = fast if fast is not None else step.fn
        for reg, value in self.constants.items():
            moved = value if library == "numpy" else to_backend(value, library, device)
            space[f"_c{reg}"] = moved
        return space

    @functools.cached_property
    def _code(self) -> Any:
        return compile(self.python, "<tensorchain program>", "exec")

    @property
    def python(self) -> str:
        """The program as the source of a Python function ``_run(values) ->
        (outputs, probes)``: one line per step, each register freed after its
        last use; every name in it is internal (``r`` registers, ``_f`` steps,
        ``_c`` constants, ``_get``), and it holds no literal."""
        lines = ["def _run(_values):"]
        regs = list(self.inputs.values())
        if len(regs) == 1:
            lines.append(f"    r{regs[0]} = _get(_values)")
        elif regs:
            lines.append(f"    {', '.join(f'r{r}' for r in regs)} = _get(_values)")
        lines += self.body()
        outputs = ", ".join(map(self.ref, self.outputs))
        probes = ", ".join(map(self.ref, self.probes))
        lines.append(f"    return [{outputs}], [{probes}]")
        return "\n".join(lines) + "\n"

    def body(self) -> list[str]:
        """The steps as lines of a function's body, from the inputs in their
        registers: one assignment per step, ``r5 = _f3(r2, r4)``, each
        register freed after its last use."""
        lines = []
        for k, step in enumerate(self.steps):
            lines.append(f"    r{step.out} = _f{k}({', '.join(map(self.ref, step.args))})")
            if step.free:
                lines.append(f"    del {', '.join(f'r{a}' for a in step.free)}")
        return lines

    def ref(self, reg: int) -> str:
        """A register's name in :attr:`python`: ``_c`` for a constant, else ``r``."""
        return f"_c{reg}" if reg in self.constants else f"r{reg}"

    def numpy_namespace(self) -> dict[str, Any]:
        """The objects :meth:`body` names, for numpy values (see :meth:`_namespace`)."""
        return self._namespace("numpy", None)

    def _replay(self, space: dict[str, Any], values: Mapping) -> tuple[list, list]:
        """The same as the compiled function, by a loop over the steps."""
        regs: list = [None] * self.registers
        for reg in self.constants:
            regs[reg] = space[f"_c{reg}"]
        for name, reg in self.inputs.items():
            regs[reg] = values[name]
        for k, step in enumerate(self.steps):
            regs[step.out] = space[f"_f{k}"](*[regs[a] for a in step.args])
            for a in step.free:
                regs[a] = None
        return [regs[r] for r in self.outputs], [regs[r] for r in self.probes]

    @functools.cached_property
    def _functions(self) -> dict[tuple[str, str], Callable]:
        return {}

    @functools.cached_property
    def _calls(self) -> dict[tuple[str, str], int]:
        return {}

    @functools.cached_property
    def _spaces(self) -> dict[tuple[str, str], dict[str, Any]]:
        return {}

    @functools.cached_property
    def _lock(self) -> threading.Lock:
        return threading.Lock()

    def source(self, names: Mapping[int, str]) -> tuple[list[str], list[str]]:
        """The program as numpy statements: ``(lines, outputs)``, one assignment
        per step. ``names`` names registers (inputs and chosen steps); the rest
        are ``t1, t2, ...``; constants are written as literals."""
        var: dict[int, str] = dict(names)
        for reg, value in self.constants.items():
            var[reg] = _literal(value)
        lines, count = [], 0
        taken = set(names.values())  # the temporaries never shadow a named tensor
        for step, code in zip(self.steps, self.codes, strict=True):
            if code is None:
                raise ValueError(f"step {step.fn!r} has no source form")
            if step.out not in var:
                count += 1
                while f"t{count}" in taken:
                    count += 1
                var[step.out] = f"t{count}"
            lines.append(f"{var[step.out]} = {code([var[a] for a in step.args])}")
            if step.free:  # free memory as the compiled program does
                lines.append(f"del {', '.join(var[a] for a in step.free)}")
        return lines, [var[r] for r in self.outputs]

    def __len__(self) -> int:
        return len(self.steps)
