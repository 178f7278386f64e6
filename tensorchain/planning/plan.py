"""``net.plan``: a derivative with a chosen contraction order, the
:class:`Plan` object. It says what the order costs (FLOPs, the largest
intermediate, peak memory, beside the reshape method's), shows it (its steps,
its tree as text or a picture), and is called on values: the forward pass, the
local derivatives and the planned contractions are traced once and replayed.
Each term's order comes from :mod:`tensorchain.planning.chain_orders`; with a
memory limit, an order other than ``"optimal"`` is refused when an
intermediate does not fit.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np
import opt_einsum as oe

from ..arrays.limits import format_bytes, get_memory_limit
from ..arrays.quiet import loud, quiet
from ..arrays.trace import Tape, tracing
from ..calculus.labeled import Factor, LabeledTensor, Term
from ..contraction.einsum import contract, equation
from ..errors import MemoryLimitError, PlanError, ShapeError
from ..runtime.compiled import MISS, cast_result, domain_check, dtype_of, typed_result
from ..runtime.fastcall import FastCall
from ..runtime.finite import check_results, dense_may_overflow
from ..runtime.leaves import placeholders
from .chain_orders import ORDERS, TermPlan, plan_term
from .pictures import pyplot

if TYPE_CHECKING:
    from ..calculus.chain import ChainResult
    from ..language.network_like import Differentiable


@dataclass
class Plan:
    """A derivative with a chosen contraction order: call it on values.

    ``flops``, ``largest`` (entries of the largest intermediate), ``peak_bytes``
    and ``steps`` describe it; ``reshape_flops`` and ``reshape_bytes`` are the
    reshape method's for the same derivative."""

    net: Differentiable
    of: str
    wrt: str
    order: str
    sizes: dict[str, int]
    terms: list[TermPlan]
    indices: tuple[str, ...]
    label_sizes: dict[str, int]
    planning_seconds: float
    reshape_flops: int
    reshape_bytes: int
    memory_limit: int | None = None
    _program: Any = field(default=None, repr=False)
    _traced: Any = field(default=None, repr=False)  # (tape, ChainResult) it was planned on
    _lock: Any = field(default_factory=threading.Lock, repr=False, compare=False)

    @property
    def flops(self) -> int:
        return sum(int(t.info.opt_cost) for t in self.terms)

    @property
    def largest(self) -> int:
        return max((int(t.info.largest_intermediate) for t in self.terms), default=0)

    @property
    def peak_bytes(self) -> int:
        """The factors plus the largest intermediate, in float64 bytes."""
        inputs = sum(
            math.prod(self.label_sizes[lab] for lab in labels)
            for t in self.terms
            for labels in t.labels
        )
        return 8 * (inputs + self.largest)

    @property
    def einsum(self) -> str:
        return " + ".join(t.equation for t in self.terms)

    @property
    def steps(self) -> list[str]:
        """Each contraction, with the chain-rule factors it combines."""
        out = []
        for t in self.terms:
            names = list(t.factors)
            for pair in t.path:
                chosen = [names[k] for k in pair]
                merged = f"({' · '.join(chosen)})"
                names = [n for k, n in enumerate(names) if k not in pair] + [merged]
                out.append(" · ".join(chosen))
        return out

    def tree(self) -> str:
        """The contraction tree as indented text, leaves the local Jacobians."""
        lines = []
        for t in self.terms:
            nodes: list[Any] = [(name, ()) for name in t.factors]
            costs = [contraction[2] for contraction in t.info.contraction_list]
            for pair, cost in zip(t.path, costs, strict=True):
                chosen = [nodes[k] for k in pair]
                nodes = [n for k, n in enumerate(nodes) if k not in pair] + [(cost, chosen)]
            if not nodes:
                lines.append(f"{t.coeff:g} (a constant term)")
                continue
            (root,) = nodes

            def show(node, depth: int) -> None:
                label, children = node
                lines.append("  " * depth + ("└ " if depth else "") + str(label))
                for child in children:
                    show(child, depth + 1)

            show(root, 0)
        return "\n".join(lines)

    def draw(self, path: str) -> None:
        """A PNG of the contraction tree: leaves the local Jacobians by name,
        each inner node a contraction with its FLOPs (needs matplotlib)."""
        plt = pyplot()
        nodes: list[tuple[float, float, str, list[int]]] = []  # x, depth, text, children

        def place(node: Any, depth: int, next_leaf: list[int]) -> int:
            label, children = node
            kids = [place(c, depth + 1, next_leaf) for c in children]
            if kids:
                x = sum(nodes[k][0] for k in kids) / len(kids)
            else:
                x, next_leaf[0] = float(next_leaf[0]), next_leaf[0] + 1
            nodes.append((x, depth, label, kids))
            return len(nodes) - 1

        leaf = [0]
        for t in self.terms:
            items: list[Any] = [(name, ()) for name in t.factors]
            for pair, step in zip(t.path, t.info.contraction_list, strict=True):
                chosen = [items[k] for k in pair]
                symbols = set(step[2].split("->")[0].replace(",", ""))
                flops = oe.helpers.flop_count(symbols, bool(step[1]), len(pair), t.info.size_dict)
                text = f"{step[2]}\n{flops:,} FLOPs" if len(pair) > 1 else step[2]
                items = [n for k, n in enumerate(items) if k not in pair] + [(text, chosen)]
            for root in items:
                place(root, 0, leaf)
        depth = max((d for _, d, _, _ in nodes), default=0)
        fig, ax = plt.subplots(figsize=(max(4, 1.6 * leaf[0]), max(3, 1.1 * (depth + 1))))
        for x, d, text, kids in nodes:
            for k in kids:
                ax.plot([x, nodes[k][0]], [-d, -nodes[k][1]], color="0.6", zorder=1)
            box = {"boxstyle": "round", "fc": "white" if kids else "#dbe9f6", "ec": "0.4"}
            ax.text(x, -d, text, ha="center", va="center", fontsize=7, bbox=box, zorder=2)
        ax.set_xlim(-1, max(leaf[0], 1))
        ax.set_ylim(-depth - 0.7, 0.7)
        ax.axis("off")
        ax.set_title(f"d{self.of}/d{self.wrt}, order {self.order}: {self.flops:,} FLOPs")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)

    def __call__(
        self, values: Mapping[str, Any], *, strict: bool = False, check_finite: bool = True
    ) -> LabeledTensor:
        """The derivative on ``values``, contracted in this plan's order: the
        forward pass, the local derivatives and the planned contractions are
        traced once, on the first call, and replayed (like ``compile_grad``).

        ``strict``: NaN or infinity in the values or the result is an error
        rather than a warning; ``check_finite=False`` skips those checks (one
        pass over the values and the result's factors; a result much larger
        than the factors its last contraction multiplies is bounded by them,
        not read).

        Values that need no conversion (a dict of numpy arrays of one float
        dtype, of the plan's shapes) are checked after the work, in that one
        pass, as :meth:`tensorchain.Compiled.fast` does."""
        if not strict and type(values) is dict and self._program is not None:
            result = self._fast(values, check_finite)
            if result is not MISS:
                return result
        env = self.net._check_values(values, strict, check_finite)
        if self._program is None:
            with self._lock:  # threads calling it first together compile it once
                if self._program is None:
                    self._program = self._compile()
        program, structure, shapes = self._program
        if any(env[name].shape != shape for name, shape in shapes.items()):
            raise ShapeError(
                f"this plan is for {self.sizes}, but the values have sizes"
                f" {self.net.sizes(env)}; make a plan for them with net.plan"
            )
        # Constants of the spec are float64: results are cast to the values' dtype.
        dtype = dtype_of(env)
        token = quiet()  # numpy's warnings off, as in every compiled run (tensorchain.arrays.quiet)
        try:
            arrays = program(env)
        finally:
            loud(token)
        arrays = [cast_result(a, dtype) for a in arrays]
        result = typed_result(structure.with_arrays(arrays, owned=program.fresh), env, dtype)
        if check_finite:
            check_results(self.net, env, result, f"d{self.of}/d{self.wrt}", self.of, strict)
        return result

    def _fast(self, values: dict, check_finite: bool) -> Any:
        """:meth:`tensorchain.Compiled.fast` for a plan, which takes values
        of any float dtype (one :class:`~tensorchain.runtime.fastcall.FastCall` per
        dtype, the last one used tried first)."""
        program, structure, _ = self._program
        calls = self.__dict__.setdefault("_calls", {})
        got = calls[None](values, check_finite) if None in calls else None
        if got is None:
            call = self._fast_call(values)
            if call is None:
                return MISS
            got = call(values, check_finite)
            if got is None:
                return MISS
            calls[None] = call
        outputs, _, finite = got
        dtype = next(iter(values.values())).dtype  # every value's: the call checked
        outputs = [
            o if type(o) is np.ndarray and o.dtype == dtype else cast_result(o, dtype)
            for o in outputs
        ]
        result = typed_result(structure.with_arrays(outputs, owned=program.fresh), values, dtype)
        if not finite or (check_finite and dense_may_overflow(result)):
            env = self.net._check_values(values)
            what = f"d{self.of}/d{self.wrt}"
            check_results(self.net, env, result, what, self.of)
        return result

    def _fast_call(self, values: dict) -> Any:
        """The call for the dtype of ``values`` (made once per dtype), or
        None where there is none (not numpy arrays of a real float dtype)."""
        first = next(iter(values.values()), None)
        if type(first) is not np.ndarray:
            return None
        dtype = first.dtype
        if dtype.kind != "f" or dtype.itemsize < 4 or self.net.indexes:
            return None  # integer positions are checked against their dim: the general path
        calls = self.__dict__["_calls"]
        if dtype not in calls:
            calls[dtype] = FastCall(self._program[0], dtype, domain_check(self.net)).call
        return calls[dtype]

    def _compile(self):
        traced, self._traced = self._traced, None
        if traced is None:  # not kept (an unpickled plan): derive the chain again
            traced = _derive(self.net, self.of, self.wrt, self.sizes)
            self._check_chain(traced[1].chains.get(self.wrt))
        tape, result = traced
        # The chain these terms were planned on, contracted on the same tape:
        # deriving it a second time could name and order its labels differently.
        with tracing(tape=tape):
            chain = result.chains.get(self.wrt)
            if chain is None:
                structure = result.jacobians[self.wrt]
                outputs = structure.stored_arrays()
            else:
                terms, outputs = [], []
                for t, plan in zip(chain.terms, self.terms, strict=True):
                    path = tuple(tuple(step) for step in plan.path)
                    data = contract(
                        [(f.array, f.labels) for f in t.factors],
                        plan.output,
                        chain.sizes,
                        optimize=path if len(t.factors) > 1 else None,
                        scale=plan.coeff,
                        fresh=True,
                    )
                    outputs.append(data)
                    factor = Factor(data, plan.output, f"d{self.of}/d{self.wrt}")
                    terms.append(Term(1.0, (factor,), plan.deltas))
                structure = LabeledTensor(chain.indices, chain.sizes, terms, canonicalize=False)
        program = tape.program(outputs)
        limit = get_memory_limit(self.memory_limit)
        if program.peak.bytes > limit:
            raise MemoryLimitError(
                f"d{self.of}/d{self.wrt} in this order would need about"
                f" {format_bytes(program.peak.bytes)} at its peak, more than the memory limit"
                f" of {format_bytes(limit)}; use the structured net.jacobian (or"
                " .to_dask on it), smaller sizes, or raise the limit",
                program.peak.bytes,
                limit,
            )
        shapes = {
            t.name: tuple(self.sizes[d] for d in t.dims)
            for t in self.net.tensors.values()
            if t.kind in ("input", "param")
        }
        return program, structure, shapes

    def __getstate__(self) -> dict[str, Any]:
        # The compiled program, the tape and the lock do not pickle: an unpickled
        # plan derives its chain again on its first call (and checks it).
        state = dict(self.__dict__)
        state.update(_program=None, _traced=None, _lock=None)
        state.pop("_calls", None)
        return state

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state, _lock=threading.Lock())

    def _check_chain(self, chain: LabeledTensor | None) -> None:
        """A chain derived again has the terms this plan was made for."""
        found = [] if chain is None else chain.terms
        if len(found) != len(self.terms) or any(
            equation([f.labels for f in t.factors], p.output) != p.equation or t.deltas != p.deltas
            for t, p in zip(found, self.terms, strict=False)
        ):
            raise PlanError(
                f"the chain of d{self.of}/d{self.wrt} no longer has the terms this plan"
                " was made for (a plan saved by another version of tensorchain?); make"
                " the plan again with net.plan"
            )

    def __repr__(self) -> str:
        return (
            f"<tc.Plan d{self.of}/d{self.wrt} order={self.order!r}: {self.flops:,} FLOPs,"
            f" largest intermediate {self.largest:,} entries>"
        )


def make_plan(
    net: Differentiable,
    of: str,
    wrt: str,
    order: Any = "optimal",
    memory_limit: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> Plan:
    """See :meth:`Network.plan` (``dims``: the sizes given)."""
    from ..reference.reshape import reshape_cost

    named = isinstance(order, str) and (
        order in ORDERS
        or order in ("optimal-einsum", "cotengra")
        or order in oe.paths._PATH_OPTIONS
    )
    if not named and not isinstance(order, oe.paths.PathOptimizer):
        raise PlanError(
            f"unknown order {order!r}; use one of the chain orders {', '.join(ORDERS)},"
            " 'optimal-einsum' (opt_einsum's exhaustive 'optimal'), 'cotengra', an"
            " opt_einsum strategy"
            f" ({', '.join(o for o in sorted(oe.paths._PATH_OPTIONS) if o != 'optimal')})"
            " or an opt_einsum.paths.PathOptimizer"
        )
    sizes = net.sizes(dims=dims)
    start = time.perf_counter()
    tape, result = _derive(net, of, wrt, sizes)
    chain = result.chains.get(wrt)
    limit = None if memory_limit is None else memory_limit // 8
    terms = []
    if chain is not None:
        for term in list(chain.terms):
            terms.append(plan_term(chain, term, order, limit))
    seconds = time.perf_counter() - start
    if limit is not None and order != "optimal":
        for t in terms:
            if int(t.info.largest_intermediate) > limit:
                raise PlanError(
                    f"order {order!r} needs an intermediate of"
                    f" {int(t.info.largest_intermediate):,} entries, more than the memory"
                    f" limit of {format_bytes(memory_limit)}; use order='optimal', which"
                    " picks the cheapest order within the limit"
                )
    cost = reshape_cost(net, of, wrt, sizes)
    indices = chain.indices if chain is not None else ()
    label_sizes = dict(chain.sizes) if chain is not None else {}
    name = order if isinstance(order, str) else type(order).__name__
    return Plan(
        net,
        of,
        wrt,
        name,
        sizes,
        terms,
        indices,
        label_sizes,
        seconds,
        int(cost.flops),
        int(cost.largest) * 8,
        memory_limit,
        _traced=(tape, result),
    )


def _derive(
    net: Differentiable, of: str, wrt: str, sizes: dict[str, int]
) -> tuple[Tape, ChainResult]:
    """The chain of ``d of / d wrt`` on placeholders, and the tape it was traced on."""
    with tracing() as tape:
        forward = net.run_forward(placeholders(net, tape, sizes), sizes)
        return tape, net.derivatives(of, [wrt], forward)
