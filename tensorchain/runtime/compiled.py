"""Compiled programs of a network: traced once per (kind, target, wrt, sizes,
dtype), cached by the network, replayed on values.

A call on values that need no conversion (a dict of numpy arrays of the
program's float dtype and shapes) takes :meth:`Compiled.fast`: the shapes
compared as one tuple, the program run, and one pass for NaN and infinity
over the values and the results together (:mod:`tensorchain.runtime.fastcall`);
only when that pass finds something, or the values need converting, are the
general checks of :mod:`tensorchain.runtime.values` and :mod:`tensorchain.runtime.finite` made,
with their warnings and errors."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import astype, numpy_dtype
from ..arrays.building import paused_gc
from ..arrays.limits import format_bytes, get_memory_limit
from ..arrays.trace import Program, tracing
from ..calculus.labeled import LabeledTensor
from ..errors import MemoryLimitError, ShapeError, ValuesError
from ..language.domains import check_domains
from .fastcall import FastCall
from .finite import check_results, dense_may_overflow
from .graphs import hvp_graph
from .higher import last_jacobian
from .leaves import leaf_shapes, placeholders
from .values import checked_values

if TYPE_CHECKING:
    from ..language.network_like import Differentiable


CACHE_SIZE = 64
#: Programs one call site tries on the fast path, the last used first (a loop
#: over a few batch sizes or dtypes finds its program there).
HOT_PROGRAMS = 4
GRAPH_CACHE_SIZE = 32  # derivatives' graphs kept per network (they do not depend on sizes)


def compiled_dtype(dtype: Any) -> np.dtype:
    """A dtype to compile for: float32, float64, complex64 or complex128."""
    try:
        dt = np.dtype(dtype)
    except TypeError:
        dt = None
    if dt is None or dt.kind not in "fc" or dt.itemsize < 4:
        raise ValuesError(
            f"dtype={dtype!r}: tensorchain compiles for float32, float64, complex64 or"
            " complex128 values"
        )
    return dt


def dtype_of(env: Mapping[str, Any]) -> np.dtype:
    """The (numpy) dtype of checked values, all of which have the same but the
    integer positions of index tensors (float64 when there are only those)."""
    for value in env.values():
        dtype = numpy_dtype(value)
        if dtype.kind in "fc":
            return dtype
    return np.dtype(np.float64)


def typed_result(result: Any, env: Mapping[str, Any], dtype: np.dtype) -> Any:
    """``result`` as the values' dtype promises: a :class:`LabeledTensor` is
    made dense in ``dtype`` (its deltas too), and a zero one (no terms) in the
    values' library."""
    if isinstance(result, LabeledTensor):
        result.dtype = np.dtype(dtype)
        if not result.terms:
            result.like = next(iter(env.values()), None)
    return result


def cast_result(array: Any, dtype: np.dtype) -> Any:
    """A result array in ``dtype``; integer positions (a selection's, in a
    structured result) stay integers."""
    return array if numpy_dtype(array).kind in "iu" else astype(array, dtype)


def _cast(finish, dtype: np.dtype):
    """``finish`` with every result array in ``dtype`` (constants of the spec
    are float64, so a float32 computation may be promoted on the way)."""

    def cast(arrays: list[np.ndarray]) -> Any:
        return finish([cast_result(a, dtype) for a in arrays])

    cast.uncast = finish  # for results known to be numpy arrays of ``dtype`` already
    return cast


#: What :meth:`Compiled.fast` returns when the values need the general path.
MISS = object()


def domain_check(net: Differentiable) -> Any:
    """The check of values against the domains of ``net``'s declarations
    (:func:`tensorchain.language.domains.check_domains`), or None where none is declared."""
    if not any(t.domain is not None for t in net.tensors.values()):
        return None
    return functools.partial(check_domains, net)


def _never(values: Any, check_finite: bool) -> None:
    """The fast call of a program that has none: the values never fit."""
    return None


class Compiled:
    """A forward pass or derivative compiled for fixed sizes; call it on values.

    ``len(compiled)`` is the number of array operations it replays.
    """

    def __init__(
        self,
        net: Differentiable,
        shapes,
        sizes,
        program: Program,
        finish,
        what: str,
        dtype,
        recipe: tuple[str, Any, tuple[str, ...]] = ("", None, ()),
    ) -> None:
        self.net = net
        self.recipe = recipe  # (kind, of, wrt): what compile_program made it from
        of = recipe[1]
        # the tensor computed, for messages (None: every one; gnvp: (loss, out))
        self.of: str | None = of[0] if isinstance(of, tuple) else of or None
        self.what = what
        self.dtype = np.dtype(dtype)
        self.memory_limit: int | None = None
        self.shapes: dict[str, tuple[int, ...]] = shapes
        self.sizes: dict[str, int] = dict(sizes)
        self.program = program
        self.finish = finish
        self._call: Any = None  # fast(): the FastCall's function (made on the first)
        self._uncast: bool | None = None  # the outputs are arrays of dtype already (numpy)

    def fast(
        self,
        values: Any,
        check_finite: bool = True,
        memory_limit: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Any:
        """The result on ``values`` when they are a dict of numpy arrays of this
        program's (real) dtype and shapes, checked as the general path checks
        them (``strict=False``); :data:`MISS` when they need that path (see
        :mod:`tensorchain.runtime.fastcall`). ``extra``: more inputs of the program
        (a product's vector), which must fit as the values do; with them,
        values or results that are not finite return :data:`MISS` too, after
        the work, for the general path to do it again with its own checks."""
        call = self._call
        if call is None:
            call = self._call = self._fast_call()
        limit = memory_limit if memory_limit is not None else self.memory_limit
        if self.program.peak.bytes > get_memory_limit(limit):
            return MISS  # the general path says why
        got = call(values if extra is None else {**values, **extra}, check_finite)
        if got is None:
            return MISS
        outputs, _, finite = got
        if not self._uncast:
            if self._uncast is None:
                dtype = self.dtype
                self._uncast = all(type(o) is np.ndarray and o.dtype == dtype for o in outputs)
            if not self._uncast:
                outputs = [cast_result(o, self.dtype) for o in outputs]
        result = self.finish.uncast(outputs)
        if isinstance(result, LabeledTensor):
            result = typed_result(result, values, self.dtype)
            finite = finite and not (check_finite and dense_may_overflow(result))
        if not finite:
            if extra is not None:
                return MISS
            # The general checks, after the work: the values' NaN warns as it
            # would have before it, then the results are checked.
            env = checked_values(self.net, values)
            check_results(self.net, env, result, self.what, self.of)
        return result

    def _fast_call(self) -> Any:
        """The program's :class:`~tensorchain.runtime.fastcall.FastCall` for this
        dtype; where there is none (complex values), a call that never fits."""
        if self.dtype.kind != "f" or self.dtype.itemsize < 4 or self.net.indexes:
            return _never  # complex values; integer positions (checked against their dim)
        return FastCall(self.program, self.dtype, domain_check(self.net)).call

    def run(
        self,
        env: dict[str, np.ndarray],
        memory_limit: int | None = None,
        *,
        strict: bool = False,
        check_finite: bool = True,
    ) -> Any:
        """Replay on values already checked by the network, after checking the
        memory forecast against the limit; then, with ``check_finite``, check
        that the results are finite (see :func:`tensorchain.runtime.finite.check_results`)."""
        self.check_memory(memory_limit)
        # NaN and infinity are reported by the results' check (NonFiniteWarning,
        # naming the statement), or were asked not to be: numpy's own warnings
        # would only repeat it, or flag a branch that where() discards.
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            arrays = self.program(env)
        result = typed_result(self.finish(arrays), env, self.dtype)
        if check_finite:
            check_results(self.net, env, result, self.what, self.of, strict)
        return result

    def check_memory(self, memory_limit: int | None = None) -> None:
        """Raise :class:`MemoryLimitError` if the forecast peak exceeds the limit."""
        limit = get_memory_limit(memory_limit if memory_limit is not None else self.memory_limit)
        peak = self.program.peak
        if peak.bytes > limit:
            sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
            raise MemoryLimitError(
                f"{self.what} would need about {format_bytes(peak.bytes)} at its peak"
                f" (an array of shape {peak.shape} among others), more than the memory"
                f" limit of {format_bytes(limit)}; use smaller sizes than {sizes}, fewer"
                " targets, or the structured net.jacobian, or raise the limit with"
                " memory_limit= or tc.set_memory_limit",
                peak.bytes,
                limit,
            )

    def __call__(
        self,
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> Any:
        """The program on ``values`` (``strict``: NaN or infinity is an error
        rather than a warning; ``check_finite=False``: no such check, a pass
        over the values saved; ``memory_limit``: bytes, for this call, else the
        one it was compiled with, else the limit in force)."""
        if not strict and type(values) is dict:
            result = self.fast(values, check_finite, memory_limit)
            if result is not MISS:
                return result
        env = checked_values(self.net, values, strict, check_finite)
        given = dtype_of(env)
        if given.kind == "c" and self.dtype.kind != "c":  # never drop a complex part
            raise ValuesError(
                f"{self.what} was compiled for {self.dtype} values, but these are {given};"
                f" compile it with dtype=np.{given}, or call net.grad / net.jacobian, which"
                " compile once per dtype"
            )
        indexes = self.net.indexes  # integer positions stay integers
        env = {n: a if n in indexes else astype(a, self.dtype) for n, a in env.items()}
        for name, shape in self.shapes.items():
            if tuple(env[name].shape) != shape:
                sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
                raise ShapeError(
                    f"{name} has shape {env[name].shape} but this was compiled for"
                    f" {shape} ({sizes}); compile again for the new sizes, or call"
                    " net.grad / net.jacobian, which keep one compiled plan per size"
                )
        return self.run(env, memory_limit, strict=strict, check_finite=check_finite)

    def limited(self, memory_limit: int | None) -> Compiled:
        """This program with its own memory limit (checked on every call)."""
        if memory_limit is None:
            return self
        clone = Compiled(
            self.net,
            self.shapes,
            self.sizes,
            self.program,
            self.finish,
            self.what,
            self.dtype,
            self.recipe,
        )
        clone.memory_limit = memory_limit
        clone.check_memory()  # refuse now rather than on the first call
        return clone

    def __reduce__(self) -> tuple:
        # The program holds closures: pickle what it was compiled from, and
        # compile it again (through the network's cache) when unpickled.
        return _recompile, (self.net, self.recipe, self.sizes, self.dtype.str, self.memory_limit)

    def __len__(self) -> int:
        return len(self.program)

    def __repr__(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        return f"<compiled tensorchain program: {len(self)} steps, {sizes}>"


def compile_program(
    net: Differentiable,
    kind: str,
    of: Any,
    wrt: tuple[str, ...],
    sizes: dict[str, int],
    dtype: np.dtype,
) -> Compiled:
    """Trace ``kind`` of ``net`` for fixed sizes and dtype into a :class:`Compiled`
    program: "forward", "grad", "jacobian" (structured: see
    :meth:`LabeledTensor.compacted`), "derivative" (of order ``len(wrt)``, the
    Jacobian of a derivative's graph), "hvp", or a product of
    :mod:`tensorchain.calculus.products` ("norms", "clipped", "ntk", "gnvp")."""
    shapes = leaf_shapes(net, sizes)
    if kind == "derivative":
        return _compile_derivative(net, of, wrt, sizes, dtype, shapes)
    try:
        return _compile(net, kind, of, wrt, sizes, dtype, shapes)
    except MemoryLimitError as error:
        shape = getattr(error, "dense_shape", None)
        if shape is None:
            raise
        raise MemoryLimitError(
            f"{_what(kind, of, wrt)} ({' × '.join(map(str, shape))} entries) would need"
            f" {format_bytes(error.forecast)}, more than the memory limit of"
            f" {format_bytes(error.limit)}; use smaller sizes, or raise the limit with"
            " tc.set_memory_limit",
            error.forecast,
            error.limit,
        ) from None


def _compile(net, kind, of, wrt, sizes, dtype, shapes) -> Compiled:
    """:func:`compile_program` for every kind but ``derivative``."""
    from ..calculus.differentiate import VECTOR
    from ..calculus.products import BUILDERS

    with tracing(dtype.itemsize) as tape:
        env = placeholders(net, tape, sizes)
        if kind in ("derivative", "hvp"):
            graph, out = net.derivative_graph(of, wrt[:-1])
            if kind == "hvp":
                graph, out = hvp_graph(net, of, wrt[0])
                shape = tuple(sizes[d] for d in net.tensors[wrt[0]].dims)
                env[VECTOR] = tape.input(VECTOR, shape)
        else:
            graph, out = net, of
        derived = graph is not net  # a derivative's graph keeps its deltas symbolic
        forward = graph.run_forward(env, sizes, structured=derived) if out is not None else None
        if kind == "hvp":
            result = graph.derivatives(out, wrt, forward)
            outputs = [result.jacobians[wrt[0]].array]

            def finish(arrays: list[np.ndarray]) -> Any:
                return arrays[0]

        elif kind == "forward":
            names = list(forward.values)
            outputs = [forward.values[n] for n in names]

            def finish(arrays: list[np.ndarray]) -> Any:
                return dict(zip(names, arrays, strict=True))

        elif kind == "grad":
            result = net.derivatives(of, wrt, forward)
            outputs = [result.jacobians[w].array for w in wrt]

            def finish(arrays: list[np.ndarray]) -> Any:
                return dict(zip(wrt, arrays, strict=False))  # as many: its outputs

            if len(wrt) == 1:
                (only,) = wrt

                def finish(arrays: list[np.ndarray]) -> Any:
                    return {only: arrays[0]}

        elif kind == "jacobian":
            structure = net.derivatives(of, wrt, forward, structured=True).jacobians[wrt[0]]
            structure = structure.smallest()
            outputs = structure.stored_arrays()

            def finish(arrays: list[np.ndarray]) -> Any:
                return structure.with_arrays(arrays, dtype, owned)

        else:
            outputs, finish = BUILDERS[kind](net, tape, forward, of, wrt)

    program = tape.program(outputs)
    owned = program.fresh  # which results are new arrays (no copy in .array)
    what = _what(kind, of, wrt)
    return Compiled(net, shapes, sizes, program, _cast(finish, dtype), what, dtype, (kind, of, wrt))


def cached_program(
    net: Differentiable, kind: str, of: Any, wrt: tuple[str, ...], sizes: dict, dtype: np.dtype
) -> Compiled:
    """``net``'s compiled program for (kind, of, wrt, sizes, dtype), from its
    cache (``net._cache``), compiled on a miss."""
    key = (kind, of, wrt, tuple(sorted(sizes.items())), dtype.str)

    def build() -> Compiled:
        with paused_gc():
            return compile_program(net, kind, of, wrt, sizes, dtype)

    return net._cache.get(key, build)


def _recompile(net: Differentiable, recipe, sizes, dtype: str, memory_limit: int | None):
    """A pickled :class:`Compiled`, compiled again (through the network's cache)."""
    kind, of, wrt = recipe
    return cached_program(net, kind, of, wrt, dict(sizes), np.dtype(dtype)).limited(memory_limit)


def _compile_derivative(net, of, wrt, sizes, dtype, shapes) -> Compiled:
    """A derivative of order ``len(wrt)``: the Jacobian by ``wrt[-1]`` of the
    graph of the first ``len(wrt) − 1``, traced with the chain rule in reverse
    and, where the result is wider than ``wrt[-1]``, forward too (``jacrev``
    or ``jacfwd``); the program that makes fewer numbers is kept (forward wins
    for a third derivative of a dense network, reverse where deltas keep the
    reverse chain small)."""
    graph, out = net.derivative_graph(of, wrt[:-1])
    wide = math.prod(sizes[d] for d in graph.tensors[out].dims) if out is not None else 0
    narrow = math.prod(sizes[d] for d in net.tensors[wrt[-1]].dims)
    best = None
    for mode in ("reverse", "forward") if wide > narrow else ("reverse",):
        with tracing(dtype.itemsize) as tape:
            env = placeholders(net, tape, sizes)
            forward = graph.run_forward(env, sizes, structured=True) if out is not None else None
            structure = last_jacobian(net, graph, out, forward, of, wrt, sizes, mode)
            outputs = structure.stored_arrays()
        program = tape.program(outputs)
        work = sum(math.prod(program.shapes[step.out]) for step in program.steps)
        if best is None or work < best[0]:
            best = (work, program, structure)
    _, program, structure = best
    owned = program.fresh  # which results are new arrays (no copy in .array)

    def finish(arrays: list[np.ndarray]) -> Any:
        return structure.with_arrays(arrays, dtype, owned)

    what = _what("derivative", of, wrt)
    recipe = ("derivative", of, wrt)
    return Compiled(net, shapes, sizes, program, _cast(finish, dtype), what, dtype, recipe)


def _what(kind: str, of: Any, wrt: tuple[str, ...]) -> str:
    """What a program computes, for messages."""
    if kind == "forward":
        return "the forward pass"
    if kind == "grad":
        return f"the gradient of {of} by {', '.join(wrt)}"
    if kind == "jacobian":
        return f"d{of}/d{wrt[0]}"
    if kind == "derivative":
        return f"the derivative of {of} by {', '.join(wrt)}"
    if kind == "hvp":
        return f"the Hessian-vector product of {of} by {wrt[0]}"
    if kind == "gnvp":
        return f"the Gauss–Newton product of {of[0]} through {of[1]}"
    product = {"norms": "per-sample gradient norms", "clipped": "clipped gradient sum"}
    return f"the {product.get(kind, kind.upper())} of {of} by {', '.join(wrt)}"
