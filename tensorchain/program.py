"""Compiled programs: trace the array operations of a computation once, replay them.

Everything tensorchain does to arrays goes through :func:`apply` (and
``plan.contract``, which calls it). Outside a trace ``apply(fn, *args)`` is
just ``fn(*args)``. Inside ``with tracing() as tape`` the arguments are
:class:`Slot` placeholders that carry only a shape; ``apply`` records the
step and returns a new slot. The resulting :class:`Program` replays the steps
on real arrays: no parsing, shape inference, label bookkeeping or path
finding is left, and each register is freed after its last use, so peak
memory is what the computation itself needs.
"""

from __future__ import annotations

import contextlib
import functools
import math
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

    __slots__ = ("fresh", "reg", "shape")

    def __init__(self, reg: int, shape: tuple[int, ...], fresh: bool = False) -> None:
        self.reg = reg
        self.shape = tuple(int(s) for s in shape)
        self.fresh = fresh  # its step always returns a new array, a view of nothing

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


class Tape:
    """The steps recorded so far; made by :func:`tracing`."""

    def __init__(self, itemsize: int = 8) -> None:
        self.steps: list[tuple[Callable[..., np.ndarray], tuple[int, ...], int, int]] = []
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
    ) -> Slot:
        regs = tuple(self.register(a) for a in args)
        out = self._new(tuple(shape))
        out.fresh = fresh
        self.steps.append((fn, regs, out.reg, extra))
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
        last: dict[int, int] = {}
        for k, (_, args, _, _) in enumerate(self.steps):
            for a in args:
                last[a] = k
        keep = set(out_regs) | set(self.constants) | set(self.inputs.values())
        steps = tuple(
            Step(fn, args, out, tuple(sorted({a for a in args if last[a] == k} - keep)))
            for k, (fn, args, out, _) in enumerate(self.steps)
        )
        return Program(
            steps,
            dict(self.inputs),
            dict(self.constants),
            out_regs,
            len(self.shapes),
            self._peak(steps),
            tuple(self.codes),
            tuple(
                isinstance(o, Slot) and o.fresh and o.reg not in self.inputs.values()
                for o in outputs
            ),
            tuple(self.shapes),
            tuple(extra for _, _, _, extra in self.steps),
        )

    def _peak(self, steps: tuple[Step, ...]) -> Peak:
        """The most bytes the steps hold at once (inputs not counted): every
        live result, plus the step's own output and its largest intermediate."""
        size = [math.prod(shape) * self.itemsize for shape in self.shapes]
        live, best = 0, Peak(0, 0, ())
        for k, (step, (_, _, _, extra)) in enumerate(zip(steps, self.steps, strict=True)):
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
):
    """``fn(*args)`` now, or recorded as a step of the current trace.

    ``fresh`` promises that ``fn`` returns a new array that nothing else holds;
    ``extra`` is how many entries ``fn`` holds besides its output (the largest
    intermediate of a contraction), for the memory forecast; ``code`` writes
    the step as numpy source, given its arguments' source (for
    :meth:`Program.source`)."""
    tape = _TAPE.get()
    if tape is None:
        return fn(*args)
    return tape.apply(fn, args, shape, fresh, extra, code)


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

    def __call__(self, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        regs: list = [None] * self.registers
        first = next(iter(values.values()), None)
        if first is None or isinstance(first, np.ndarray):
            for reg, value in self.constants.items():
                regs[reg] = value
            return self._run(regs, values)
        # Another array library: constants moved to it (once per device), and
        # steps with no array argument make arrays of it.
        library, device = backend_of(first), device_of(first)
        key = (library, str(device))
        if key not in self._moved:
            self._moved[key] = {
                reg: to_backend(value, library, device) for reg, value in self.constants.items()
            }
        for reg, value in self._moved[key].items():
            regs[reg] = value
        with using(library, device):
            return self._run(regs, values)

    def _run(self, regs: list, values: Mapping[str, np.ndarray]) -> list[np.ndarray]:
        for name, reg in self.inputs.items():
            regs[reg] = values[name]
        for fn, args, out, free in self._flat:
            regs[out] = fn(*[regs[a] for a in args])
            for a in free:
                regs[a] = None
        return [regs[r] for r in self.outputs]

    @functools.cached_property
    def _moved(self) -> dict[tuple[str, str], dict[int, object]]:
        return {}

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

    @functools.cached_property
    def _flat(self) -> tuple[tuple, ...]:
        return tuple((s.fn, s.args, s.out, s.free) for s in self.steps)

    def __len__(self) -> int:
        return len(self.steps)
