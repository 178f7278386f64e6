"""Graph: tensors and lowered statements, what evaluation and the chain rule need.

A :class:`Graph` is the network after lowering: each tensor's dims, the
statements in order (:class:`~tensorchain.language.operations.Lowered`), and the dim of
every label of every statement. :class:`~tensorchain.network.Network` is a
graph parsed from spec text; :mod:`tensorchain.calculus.differentiate` builds graphs
directly (a network's derivative is again a graph), so that evaluation and
the chain rule run on both alike.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from ..arrays.backend import is_numpy
from ..language.domains import Domain
from ..language.operations import Lowered
from ..language.shift import shift_constant
from ..language.syntax import Pos
from .chain import (
    ChainResult,
    axis_names,
    forward_jacobian,
    network_jacobians,
    statement_jacobians,
)
from .forward import evaluate_statement
from .labeled import LabeledTensor


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the network: ``kind`` is ``"input"``, ``"param"``, ``"shift"`` (a
    constant the network makes, ``shift`` = (stride, padding)) or ``"defined"``;
    ``domain`` the values an input or param takes, where declared; ``index``:
    for an integer index tensor (``input ids[B] index V``), the dim whose
    positions it holds."""

    name: str
    kind: str
    dims: tuple[str, ...]
    pos: Pos
    shift: tuple[int, int] | None = None
    domain: Domain | None = None
    index: str | None = None


@dataclass
class Forward:
    """Values of one evaluation: tensors, dim sizes, and every node of every statement.

    A value is an array, or (in a derivative's graph, where a statement holds a
    Kronecker delta) a :class:`LabeledTensor` whose deltas stay symbolic."""

    values: dict[str, Any]
    sizes: dict[str, int]
    nodes: dict[str, dict[int, Any]]  # statement target -> id(node) -> value


class Graph:
    """Tensors, statements in order, and the dim of every label of each statement."""

    def __init__(
        self,
        tensors: dict[str, TensorInfo],
        statements: Sequence[Lowered],
        label_dims: dict[str, dict[str, str]],
    ) -> None:
        self.tensors = tensors
        self.statements = list(statements)
        self.label_dims = label_dims
        self._by_target = {s.target: s for s in self.statements}

    @property
    def axes(self) -> Mapping[str, tuple[str, ...]]:
        """Each tensor's dims: a view, so that reading it costs nothing (a copy
        per statement made building a network quadratic in its length)."""
        return _Axes(self.tensors)

    @property
    def indexes(self) -> Mapping[str, str]:
        """Each integer index tensor, and the dim whose positions it holds: a
        view, so that asking costs nothing (a dict made per statement made
        parsing quadratic in the network's length)."""
        return _Indexes(self.tensors)

    def statement(self, target: str) -> Lowered:
        """The statement that defines ``target``."""
        return self._by_target[target]

    def add_statement(self, stmt: Lowered, dims: dict[str, str]) -> None:
        from ..language.operations import Size, walk

        self.statements.append(stmt)
        self._by_target[stmt.target] = stmt
        sized = {n.key: n.dim for n in walk(stmt.root) if isinstance(n, Size)}
        self.label_dims[stmt.target] = {**dims, **sized} if sized else dims

    def label_sizes(self, target: str, sizes: Mapping[str, int]) -> dict[str, int]:
        """The size of every index label in ``target``'s statement, given dim sizes."""
        return {lab: sizes[d] for lab, d in self.label_dims[target].items()}

    def run_forward(
        self, env: dict[str, Any], sizes: dict[str, int], structured: bool = False
    ) -> Forward:
        """Evaluate every statement on ``env`` (inputs and params), keeping the
        value of every node for the derivative rules. A statement that holds a
        Kronecker delta is dense (a ``diag``) unless ``structured``, which a
        derivative's graph asks for: its deltas then stay symbolic."""
        nodes = {}
        for t in self.tensors.values():
            if t.kind == "shift":
                env[t.name] = shift_constant(*(sizes[d] for d in t.dims), *t.shift)
        for stmt in self.statements:
            label_sizes = self.label_sizes(stmt.target, sizes)
            value, nodes[stmt.target] = evaluate_statement(stmt, env, label_sizes)
            if not structured and isinstance(value, LabeledTensor):
                value = value._dense()
            env[stmt.target] = value
        return Forward(env, sizes, nodes)

    def local_jacobians(self, target: str, forward: Forward) -> dict[str, LabeledTensor]:
        """d target / d operand for each tensor used by ``target``'s statement,
        with axes named after dims (``z[n]`` by ``W[n, m]``: ``n, n', m``)."""
        stmt = self.statement(target)
        label_sizes = self.label_sizes(target, forward.sizes)
        found = statement_jacobians(stmt, forward.nodes[target], label_sizes)
        out = {}
        for name, jac in found.items():
            a, b = axis_names(self.tensors[target].dims, self.tensors[name].dims)
            out[name] = jac.rename((*a, *b))
        return out

    def derivatives(
        self,
        of: str,
        wrt: Sequence[str],
        forward: Forward,
        structured: bool = False,
        mode: str = "reverse",
    ) -> ChainResult:
        """The chain rule for ``d of / d w`` for each ``w``, with everything it did
        (``structured``: see :func:`tensorchain.calculus.chain.network_jacobians`);
        ``mode="forward"`` accumulates from one ``w`` towards ``of`` instead
        (:func:`tensorchain.calculus.chain.forward_jacobian`)."""
        cache: dict[str, dict[str, LabeledTensor]] = {}

        def local_fn(stmt: Lowered) -> dict[str, LabeledTensor]:
            if stmt.target not in cache:
                cache[stmt.target] = self.local_jacobians(stmt.target, forward)
            return cache[stmt.target]

        if mode == "forward":
            (w,) = wrt
            result = forward_jacobian(
                self.statements, self.axes, forward.sizes, local_fn, of, w, structured
            )
        else:
            result = network_jacobians(
                self.statements, self.axes, forward.sizes, local_fn, of, list(wrt), structured
            )
        # A derivative that is zero (no path from w to of) is dense in the
        # values' library, as every other result: JAX values, a JAX zero.
        arrays = (v for v in forward.values.values() if not isinstance(v, LabeledTensor))
        like = next((v for v in arrays if not is_numpy(v)), None)
        if like is not None:
            for w, J in result.jacobians.items():
                if not J.terms and J.like is None:
                    result.jacobians[w] = LabeledTensor.zeros(J.indices, J.sizes, like=like)
        return result


class _Axes(Mapping):
    """Tensor name -> its dims, read through to the tensors."""

    __slots__ = ("_tensors",)

    def __init__(self, tensors: Mapping[str, TensorInfo]) -> None:
        self._tensors = tensors

    def __getitem__(self, name: str) -> tuple[str, ...]:
        return self._tensors[name].dims

    def __contains__(self, name: object) -> bool:
        return name in self._tensors

    def __iter__(self):
        return iter(self._tensors)

    def __len__(self) -> int:
        return len(self._tensors)


class _Indexes(Mapping):
    """Index tensor name -> the dim whose positions it holds, read through to
    the tensors (a lookup is one dict lookup; its length reads them all)."""

    __slots__ = ("_tensors",)

    def __init__(self, tensors: Mapping[str, TensorInfo]) -> None:
        self._tensors = tensors

    def __getitem__(self, name: str) -> str:
        index = self._tensors[name].index
        if index is None:
            raise KeyError(name)
        return index

    def __contains__(self, name: object) -> bool:
        info = self._tensors.get(name)  # type: ignore[call-overload]
        return info is not None and info.index is not None

    def __iter__(self):
        return (name for name, t in self._tensors.items() if t.index is not None)

    def __len__(self) -> int:
        return sum(1 for t in self._tensors.values() if t.index is not None)


def leaf_names(graph: Graph) -> list[str]:
    """The inputs and params of ``graph``, in declaration order."""
    return [t.name for t in graph.tensors.values() if t.kind in ("input", "param")]
