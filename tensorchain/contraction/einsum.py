"""Contracting labeled operands with opt_einsum, and the cost of each contraction.

Labels are any strings; they become einsum symbols through
``opt_einsum.get_symbol``, so more than 52 distinct labels work. By default
the path is the cheaper (in FLOPs) of ``'greedy'`` and ``'dp'``, and
``'greedy'`` alone past 12 operands: ``'optimal'`` is wrong on chains with
diagonal factors (opt_einsum #167), ``'dp'`` skips some paths that multiply two
vectors on one index first (``a,a,b->ab``: 24 FLOPs against greedy's 16), and
``'dp'`` grows exponentially when many vectors share one index.
"""

from __future__ import annotations

import functools
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import common, constant, copy, is_numpy, namespace, xp_of
from ..arrays.cache import LRUCache
from ..arrays.trace import Slot, apply, is_fresh
from ..errors import PlanError
from ..language.gather import contract_select
from ..language.reindex import contract_reindex
from ..language.shift import contract_shift
from .batched import batched_matmul

Operand = tuple[np.ndarray, Sequence[str]]

DP_LIMIT = 12

#: Broadcast products of at least this many entries are made in C order
#: whatever their operands' layout (later steps read them as laid out).
C_ORDER_ENTRIES = 4096


def plan_path(eq: str, shapes: Sequence[tuple[int, ...]], optimize: Any = None):
    """``(path, PathInfo, optimizer name)`` for ``eq`` on operands of ``shapes``:
    the given optimizer, or the cheaper of greedy and dp."""
    if optimize is not None:
        path, info = oe.contract_path(eq, *shapes, optimize=optimize, shapes=True)
        return path, info, str(optimize)
    names = ("greedy", "dp") if len(shapes) <= DP_LIMIT else ("greedy",)
    best = None
    for name in names:
        path, info = oe.contract_path(eq, *shapes, optimize=name, shapes=True)
        key = (int(info.opt_cost), int(info.largest_intermediate))
        if best is None or key < best[0]:
            best = (key, path, info, name)
    assert best is not None
    return best[1], best[2], best[3]


#: How many planned contractions (equation, shapes, optimizer) are kept.
PATH_CACHE_SIZE = 1024
_EXPRESSIONS = LRUCache(PATH_CACHE_SIZE)


def _expression(eq: str, shapes: tuple[tuple[int, ...], ...], optimize: Any):
    _, info, name = plan_path(eq, shapes, optimize)
    run_numpy, fresh, source = _executor(eq, shapes, info)
    others: dict[str, Any] = {}  # the same steps with another library's functions

    def run(*arrays: Any) -> Any:
        if is_numpy(*arrays):
            return run_numpy(*arrays)
        library, arrays = common(arrays)
        if library not in others:
            others[library] = _executor(eq, shapes, info, Ops(library))[0]
        return others[library](*arrays)

    # Another library's result may be a view of an operand (never written to).
    return Planned(run, fresh, info, name, source, run_numpy)


@dataclass(frozen=True)
class Planned:
    """A planned contraction: ``run`` on arrays of any library, ``numpy`` on
    numpy arrays only (no dispatch), ``fresh`` whether it always returns a
    new array, opt_einsum's ``info``, the optimizer's ``name``, and ``source``
    writing it as numpy source."""

    run: Any
    fresh: bool
    info: Any
    name: str
    source: Any
    numpy: Any


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


_NUMPY = Ops()


def _executor(eq: str, shapes: tuple[tuple[int, ...], ...], info: Any, ops: Ops | None = None):
    """Run opt_einsum's planned pairwise steps with the least Python per call.

    The same steps as ``opt_einsum.contract`` with that path (BLAS-able pairs
    as one matrix product, the rest as ``np.einsum``), but every transpose and
    reshape is worked out here, once, instead of on every call. ``ops``: the
    library to run them with (numpy by default)."""
    ops = ops or _NUMPY
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
            fn = _matmul(terms[0], terms[1], out, removed, size, layout, ops)
        elif len(terms) == 2 and _is_broadcast_product(terms, out):
            fn = _multiply(terms, out, size, ops)
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
            letters = _einsum_letters(step_eq)
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


def _scaled(fn: Any, count: int, k: int, scale: float) -> Any:
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
        run.scaled = _once(lambda k, factor: _composed(steps, count, (k, factor)))
    return run


def _once(make: Any) -> Any:
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
        run.scaled = _once(scaled)
        run.swapped = lambda: _written(expression, names, swap=not swap)
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


def _matmul(left: str, right: str, out: str, removed, size: dict[str, int], layout=None, ops=None):
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

    ops = ops or _NUMPY
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


def _is_broadcast_product(terms: list[str], out: str) -> bool:
    """A step that only multiplies entries (nothing summed, no diagonal)."""
    return all(len(set(t)) == len(t) for t in terms) and set("".join(terms)) == set(out)


def _multiply(terms: list[str], out: str, size: dict[str, int], ops=None):
    """``einsum(a,b->out)`` with nothing summed as one broadcast ``np.multiply``."""
    plans = []
    for term in terms:
        order = [c for c in out if c in term]
        perm = [term.index(c) for c in order]
        view = [size[c] if c in term else 1 for c in out]
        plans.append((None if perm == sorted(perm) else perm, view))
    (perm_a, view_a), (perm_b, view_b) = plans
    full = [size[c] for c in out]

    ops = ops or _NUMPY
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


def planned(eq: str, shapes: tuple[tuple[int, ...], ...], optimize: Any = None) -> Planned:
    """The :class:`Planned` contraction ``eq`` of operands of ``shapes``,
    cached on (equation, shapes, optimizer), so a path is found once."""
    key = (eq, shapes, optimize)
    try:
        hash(key)
    except TypeError:  # an unhashable custom optimizer: plan without the cache
        return _expression(*key)
    return _EXPRESSIONS.get(key, lambda: _expression(*key))


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
        run_numpy = _scaled(plan.numpy, len(arrays), smallest, scale)

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


def _einsum_letters(eq: str) -> str:
    """``eq`` with ascii letters only, as ``np.einsum`` needs (52 at most)."""
    try:
        return oe.parser.convert_to_valid_einsum_chars(eq)
    except ValueError:
        raise PlanError(
            "generated numpy code writes each contraction as one np.einsum, which"
            f" takes at most 52 distinct indices; {eq!r} has more"
        ) from None
