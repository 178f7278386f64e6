"""Network: declarations, statements, sizes, forward evaluation and derivatives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from . import limits
from .backend import as_value, astype, zeros_like_values
from .chain import ChainResult, axis_names, network_jacobians, statement_jacobians
from .compiled import CACHE_SIZE, Compiled, compile_program, dtype_of
from .errors import (
    DerivativeError,
    ShapeError,
    SpecError,
    ValuesError,
)
from .evaluate import evaluate_statement
from .gradnet import gradient_spec
from .labeled import LabeledTensor
from .lower import Lowered, lower
from .products import MAX_NORM, VECTOR
from .shapes import Binding, bind_labels, value_sizes
from .shift import shift_constant, shift_sizes
from .spec import Assign, DimDecl, Pos, ShiftDecl, TensorDecl, parse_program
from .spec import Program as SpecProgram
from .values import check_values, forecast_values

if TYPE_CHECKING:
    from .derivation import Derivation
    from .explore import Exploration
    from .paths import Plan


@dataclass(frozen=True)
class TensorInfo:
    """A tensor of the network: ``kind`` is ``"input"``, ``"param"``, ``"shift"`` (a
    constant the network makes, ``shift`` = (stride, padding)) or ``"defined"``."""

    name: str
    kind: str
    dims: tuple[str, ...]
    pos: Pos
    shift: tuple[int, int] | None = None


@dataclass
class Forward:
    """Values of one evaluation: tensors, dim sizes, and every node of every statement."""

    values: dict[str, np.ndarray]
    sizes: dict[str, int]
    nodes: dict[str, dict[int, np.ndarray]]  # statement target -> id(node) -> value


class Network:
    """A network parsed from the spec language.

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> vals = net.random_values(seed=0, n=4, m=3)
        >>> net.grad("C", wrt=["W"], values=vals)["W"].shape
        (4, 3)
    """

    def __init__(self, program: SpecProgram) -> None:
        self.program = program
        self.dims: dict[str, int | None] = {}
        self.tensors: dict[str, TensorInfo] = {}
        self.statements: list[Lowered] = []
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._checked: set[tuple[tuple[str, int], ...]] = set()
        self._cache: dict[tuple, Compiled] = {}
        self._gradnets: dict[tuple, tuple[Network, dict[str, str]]] = {}
        dim_pos: dict[str, Pos] = {}
        for st in program.statements:
            if isinstance(st, DimDecl):
                if st.name in self.dims:
                    raise program.error(
                        f"dim {st.name!r} is already declared on line {dim_pos[st.name].line}",
                        st.pos,
                    )
                self.dims[st.name], dim_pos[st.name] = st.size, st.pos
            elif isinstance(st, TensorDecl | ShiftDecl):
                self._declare(st)
            else:
                self._define(st)

    # --- building ---

    @property
    def axes(self) -> dict[str, tuple[str, ...]]:
        return {name: t.dims for name, t in self.tensors.items()}

    def _check_new(self, name: str, pos: Pos) -> None:
        if name in self.tensors:
            old = self.tensors[name]
            raise self.program.error(
                f"{name!r} is already {'defined' if old.kind == 'defined' else 'declared'}"
                f" on line {old.pos.line}; every tensor is defined once, so give this"
                " one a new name",
                pos,
            )

    def _declare(self, st: TensorDecl | ShiftDecl) -> None:
        self._check_new(st.name, st.pos)
        for axis in st.axes:
            if axis.name not in self.dims:
                raise self.program.error(
                    f"unknown dim {axis.name!r} in the declaration of {st.name}; declare"
                    f" it first with 'dim {axis.name} = 4' (or 'dim {axis.name}' to take"
                    " its size from the values)",
                    axis.pos,
                )
        dims = tuple(a.name for a in st.axes)
        if isinstance(st, ShiftDecl):
            info = TensorInfo(st.name, "shift", dims, st.pos, (st.stride, st.padding))
        else:
            info = TensorInfo(st.name, st.kind, dims, st.pos)
        self.tensors[st.name] = info

    def _define(self, st: Assign) -> None:
        self._check_new(st.target, st.pos)
        stmt = lower(self.program, st, self.axes)
        defaults = {d: s for d, s in self.dims.items() if s is not None}
        bound = bind_labels(self.program, stmt, self.axes, defaults)
        dims = tuple(bound[lab].dim for lab in stmt.labels)
        self.tensors[st.target] = TensorInfo(st.target, "defined", dims, st.pos)
        self.statements.append(stmt)
        self._bindings[st.target] = bound

    # --- what the network has ---

    @property
    def inputs(self) -> list[str]:
        return [t.name for t in self.tensors.values() if t.kind == "input"]

    @property
    def params(self) -> list[str]:
        return [t.name for t in self.tensors.values() if t.kind == "param"]

    @property
    def outputs(self) -> list[str]:
        """Defined tensors, in the order of their statements."""
        return [s.target for s in self.statements]

    def __str__(self) -> str:
        return "\n".join(line.rstrip() for line in self.program.lines).strip("\n")

    def __repr__(self) -> str:
        return f"Network(inputs={self.inputs}, params={self.params}, outputs={self.outputs})"

    # --- sizes and values ---

    def sizes(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, int]:
        """Every dim's size: spec defaults, overridden by the sizes given
        (``dims={"n": 4}`` or ``n=4``), then by ``values``' shapes."""
        dims = given_sizes(dims, sizes)
        for d, s in dims.items():
            if d not in self.dims:
                raise ShapeError(
                    f"unknown dim {d!r}; this network's dims are {', '.join(self.dims)}"
                )
            if not isinstance(s, (int, np.integer)) or isinstance(s, bool) or s < 1:
                raise ShapeError(f"dim {d} must be a positive integer, got {s!r}")
            if s > limits.MAX_DIM:
                raise ShapeError(
                    f"dim {d}={s} is larger than the limit {limits.MAX_DIM:,}"
                    " (tensorchain.limits.MAX_DIM)"
                )
        sizes = {d: s for d, s in self.dims.items() if s is not None}
        sizes.update((d, int(s)) for d, s in dims.items())
        sizes.update(value_sizes(self.tensors, self.dims, sizes, dims, values or {}))
        shift_sizes(self, sizes)
        missing = [d for d in self.dims if d not in sizes]
        if missing:
            raise ShapeError(
                f"dim {missing[0]} has no size: give it in the spec (dim {missing[0]} = 8),"
                f" as an argument ({missing[0]}=8), or through the values"
            )
        key = tuple(sorted(sizes.items()))
        if key not in self._checked:
            for stmt in self.statements:
                bind_labels(self.program, stmt, self.axes, sizes)
            self._checked.add(key)
        return sizes

    def shape(
        self, name: str, *, dims: Mapping[str, int] | None = None, **sizes: int
    ) -> tuple[int, ...]:
        """The shape of tensor ``name`` for the given (or default) dim sizes."""
        sizes = self.sizes(dims=dims, **sizes)
        return tuple(sizes[d] for d in self.info(name).dims)

    def random_values(
        self,
        seed: int = 0,
        *,
        memory_limit: int | None = None,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, np.ndarray]:
        """Standard-normal values for every input and param (float64).

        Their total size is forecast first: above the memory limit
        (``memory_limit`` bytes, else the one in force) it raises
        :class:`MemoryLimitError` before anything is drawn."""
        sizes = self.sizes(dims=dims, **sizes)
        leaves = [t for t in self.tensors.values() if t.kind in ("input", "param")]
        shapes = {t.name: tuple(sizes[d] for d in t.dims) for t in leaves}
        forecast_values(shapes, sizes, memory_limit)
        rng = np.random.default_rng(seed)
        return {name: rng.standard_normal(shape) for name, shape in shapes.items()}

    def info(self, name: str) -> TensorInfo:
        """The :class:`TensorInfo` of ``name``, or an error listing the tensors."""
        if not isinstance(name, str):
            raise DerivativeError(
                f"expected a tensor name (a str), got {name!r}; this network has"
                f" {', '.join(self.tensors)}"
            )
        if name not in self.tensors:
            raise DerivativeError(
                f"unknown tensor {name!r}; this network has {', '.join(self.tensors)}"
            )
        return self.tensors[name]

    def label_sizes(self, target: str, sizes: Mapping[str, int]) -> dict[str, int]:
        """The size of every index label in ``target``'s statement, given dim sizes."""
        return {lab: sizes[b.dim] for lab, b in self._bindings[target].items()}

    def _check_values(
        self, values: Mapping[str, Any], strict: bool = False, check_finite: bool = True
    ) -> dict[str, np.ndarray]:
        return check_values(self, values, strict, check_finite)

    def _run_forward(self, env: dict[str, Any], sizes: dict[str, int]) -> Forward:
        nodes = {}
        for t in self.tensors.values():
            if t.kind == "shift":
                env[t.name] = shift_constant(*(sizes[d] for d in t.dims), *t.shift)
        for stmt in self.statements:
            label_sizes = self.label_sizes(stmt.target, sizes)
            env[stmt.target], nodes[stmt.target] = evaluate_statement(stmt, env, label_sizes)
        return Forward(env, sizes, nodes)

    def forward(self, values: Mapping[str, Any]) -> Forward:
        """Evaluate every statement, keeping the value of every node."""
        env = self._check_values(values)
        return self._run_forward(env, self.sizes(env))

    def evaluate(
        self,
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Every tensor's value: the inputs and params given, and every defined one.

        The forward pass is compiled once per set of sizes and reused."""
        env = self._check_values(values, strict, check_finite)
        compiled = self._compiled("forward", "", (), self.sizes(env), dtype_of(env))
        return compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)

    # --- derivatives ---

    def local_jacobians(self, target: str, forward: Forward) -> dict[str, LabeledTensor]:
        """d target / d operand for each tensor used by ``target``'s statement,
        with axes named after dims (``z[n]`` by ``W[n, m]``: ``n, n', m``)."""
        stmt = next(s for s in self.statements if s.target == target)
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
        values: Mapping[str, Any] | Forward,
        structured: bool = False,
    ) -> ChainResult:
        """The chain rule for ``d of / d w`` for each ``w``, with everything it did
        (``structured``: see :func:`tensorchain.chain.network_jacobians`)."""
        self.info(of)
        for w in wrt:
            self.info(w)
        forward = values if isinstance(values, Forward) else self.forward(values)
        cache: dict[str, dict[str, LabeledTensor]] = {}

        def local_fn(stmt: Lowered) -> dict[str, LabeledTensor]:
            if stmt.target not in cache:
                cache[stmt.target] = self.local_jacobians(stmt.target, forward)
            return cache[stmt.target]

        return network_jacobians(
            self.statements, self.axes, forward.sizes, local_fn, of, list(wrt), structured
        )

    def derive(
        self,
        of: str,
        wrt: str | Sequence[str],
        values: Mapping[str, Any] | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> Derivation | dict[str, Derivation]:
        """The derivation of ``d of / d wrt``: index notation (``str``), ``.einsum``,
        ``.latex()``, ``.steps``, ``.matrix_form()`` and ``.to_python()``; for a
        list of ``wrt``, a dict of them.

        Symbolic (shapes only, from the sizes given or the spec's defaults)
        unless ``values`` are given. Example:
            >>> import tensorchain as tc
            >>> print(tc.parse(tc.ARTICLE).derive("C", "b"))
            ∂C/∂b[i] = 0.5 · 2 (a - y)[i] · σ'(z)[i]
        """
        from .derivation import derive

        dims = given_sizes(dims, sizes)
        if isinstance(wrt, str):
            return derive(self, of, wrt, values, dims)
        return {w: derive(self, of, w, values, dims) for w in self._wrt_list(wrt)}

    def jacobian(
        self,
        of: str,
        wrt: str | Sequence[str],
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> LabeledTensor | dict[str, LabeledTensor]:
        """d of / d wrt as a :class:`LabeledTensor` of shape ``of.shape + wrt.shape``
        (for a list of ``wrt``, a dict of them).

        Compiled once per (of, wrt, sizes) and reused. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> J = net.jacobian("z", wrt="W", values=net.random_values(n=4, m=3))
            >>> J.array.shape
            (4, 4, 3)
        """
        targets = (wrt,) if isinstance(wrt, str) else self._wrt_list(wrt)
        env = self._check_values(values, strict, check_finite)
        sizes, dtype = self.sizes(env), dtype_of(env)
        out = {
            w: self._compiled("jacobian", of, (w,), sizes, dtype).run(
                env, memory_limit, strict=strict, check_finite=check_finite
            )
            for w in targets
        }
        return out[wrt] if isinstance(wrt, str) else out

    def grad(
        self,
        of: str,
        wrt: str | Sequence[str] | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> dict[str, np.ndarray]:
        """The gradient of the scalar ``of``: a dict of arrays shaped like each ``wrt``.

        ``wrt`` defaults to every param. The whole computation is compiled once
        per (of, wrt, sizes) and reused. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> g = net.grad("C", values=net.random_values(n=4, m=3))
            >>> sorted(g), g["W"].shape
            (['W', 'b'], (4, 3))
        """
        targets = self._grad_targets(of, wrt)
        if values is None:
            raise ValuesError("grad needs values: net.grad(of, wrt, values=...)")
        env = self._check_values(values, strict, check_finite)
        compiled = self._compiled("grad", of, targets, self.sizes(env), dtype_of(env))
        return compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)

    def hessian(
        self,
        of: str,
        wrt: str,
        values: Mapping[str, Any],
        wrt2: str | None = None,
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> LabeledTensor:
        """d² of / d wrt d wrt2 for a scalar ``of``, shape ``wrt.shape + wrt2.shape``
        (``wrt2`` defaults to ``wrt``; two tensors give a mixed block).

        It is the Jacobian of ``of``'s gradient network (:mod:`tensorchain.gradnet`)
        by ``wrt2``, so deltas stay symbolic: the Hessian of the article by ``W``
        is δ(n, n') times an n×m×m block. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> H = net.hessian("C", "W", net.random_values(n=4, m=3))
            >>> H.indices, H.deltas
            (('n', 'm', "n'", "m'"), (('n', "n'"),))
        """
        self._wrt_one(wrt)
        wrt2 = wrt if wrt2 is None else wrt2
        self._wrt_one(wrt2)
        self._grad_targets(of, [wrt, wrt2])
        env = self._check_values(values, strict, check_finite)
        sizes = self.sizes(env)
        gradnet, adjoints = self.gradient_network(of, sizes)
        names = axis_names(self.tensors[wrt].dims, self.tensors[wrt2].dims)
        indices = (*names[0], *names[1])
        if wrt not in adjoints:
            shape_sizes = [sizes[d] for d in (*self.tensors[wrt].dims, *self.tensors[wrt2].dims)]
            zero_sizes = dict(zip(indices, shape_sizes, strict=True))
            return LabeledTensor.zeros(indices, zero_sizes, like=next(iter(env.values()), None))
        J = gradnet.jacobian(
            adjoints[wrt], wrt2, env, memory_limit=memory_limit, check_finite=False
        )
        return J.rename(indices)

    def hvp(
        self,
        of: str,
        wrt: str,
        vector: Any,
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> np.ndarray:
        """The Hessian-vector product (d² of / d wrt²) · vector, shaped like ``wrt``,
        without forming the Hessian: the gradient by ``wrt`` of ``Σ g · vector``,
        where ``g`` is ``of``'s gradient by ``wrt`` (two gradient passes)."""
        self._wrt_one(wrt)
        self._grad_targets(of, [wrt])
        env = self._check_values(values, strict, check_finite)
        sizes = self.sizes(env)
        key = ("hvp", of, wrt, tuple(sorted(sizes.items())))
        if key not in self._gradnets:
            text, adjoints = gradient_spec(self, of, sizes)
            if wrt not in adjoints:  # of does not depend on wrt
                return zeros_like_values(tuple(sizes[d] for d in self.tensors[wrt].dims), env)
            dims = self.tensors[wrt].dims
            axes = f"[{', '.join(dims)}]" if dims else ""
            ks = ", ".join(f"k{a}" for a in range(len(dims)))
            g = f"{adjoints[wrt]}[{ks}]" if dims else adjoints[wrt]
            v = f"__v[{ks}]" if dims else "__v"
            self._gradnets[key] = (parse(f"{text}input __v{axes}\n__s = {g} * {v}\n"), {})
        net, _ = self._gradnets[key]
        vector = as_value(vector, env)
        if tuple(vector.shape) != tuple(sizes[d] for d in self.tensors[wrt].dims):
            raise ShapeError(
                f"the vector has shape {vector.shape} but {wrt} has shape"
                f" {self.shape(wrt, **sizes)}; an hvp vector is shaped like wrt"
            )
        vals = {**env, "__v": vector}  # checked but the vector
        return net.grad("__s", wrt, vals, memory_limit=memory_limit, check_finite=check_finite)[wrt]

    def per_sample_grad_norms(
        self,
        of: str,
        wrt: Sequence[str] | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> np.ndarray:
        """For a per-sample loss ``of[s]``, each sample's gradient norm over all of
        ``wrt`` (default: every param), without forming per-sample gradients.

        Compiled once per (of, wrt, sizes) like a gradient. Example:
            >>> import numpy as np, tensorchain as tc
            >>> net = tc.parse(
            ...     "dim B\\ndim n\\ndim m\\ninput x[B, m]\\nparam W[n, m]\\n"
            ...     "L[s] = W[i, j] * x[s, j]"
            ... )
            >>> vals = net.random_values(B=5, n=3, m=4)
            >>> norms = net.per_sample_grad_norms("L", ["W"], vals)  # ‖1 ⊗ x[s]‖
            >>> np.allclose(norms, np.sqrt(3) * np.linalg.norm(vals["x"], axis=1))
            True
        """
        return self._product("norms", of, wrt, values, {}, strict, memory_limit, check_finite)

    def clipped_grad(
        self,
        of: str,
        wrt: Sequence[str] | None = None,
        values: Mapping[str, Any] | None = None,
        max_norm: float = 1.0,
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> dict[str, np.ndarray]:
        """Σ_s g_s · min(1, max_norm / ‖g_s‖) for a per-sample loss ``of[s]``, where
        ``g_s`` is sample s's gradient over all of ``wrt`` (the DP-SGD sum); no
        per-sample gradient is formed when the structure allows it."""
        if not (isinstance(max_norm, int | float | np.floating) and max_norm > 0):
            raise DerivativeError(f"max_norm must be a positive number, got {max_norm!r}")
        extra = {MAX_NORM: np.asarray(max_norm)}
        return self._product("clipped", of, wrt, values, extra, strict, memory_limit, check_finite)

    def ntk(
        self,
        out: str,
        wrt: Sequence[str] | None = None,
        values: Mapping[str, Any] | None = None,
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> LabeledTensor:
        """The neural tangent kernel Θ = Σ_θ ∂out/∂θ · ∂out/∂θ over ``wrt``
        (default: every param), shape ``out.shape + out.shape``, deltas symbolic;
        each parameter's Jacobian contracted with itself as one planned network."""
        return self._product("ntk", out, wrt, values, {}, strict, memory_limit, check_finite)

    def gnvp(
        self,
        loss: str,
        out: str,
        wrt: str,
        vector: Any,
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> np.ndarray:
        """The Gauss–Newton product Jᵀ H J v, shaped like ``wrt`` (``J = ∂out/∂wrt``,
        ``H = ∂²loss/∂out²``): three contractions, neither J nor H made dense."""
        self._wrt_one(wrt)
        self._grad_targets(loss, [out])
        vector = as_value(vector, values)
        shape = self.shape(wrt, **self.sizes(values))
        if tuple(vector.shape) != shape:
            raise ShapeError(
                f"the vector has shape {vector.shape} but {wrt} has shape {shape};"
                " a Gauss–Newton vector is shaped like wrt"
            )
        if out not in self.gradient_network(loss, self.sizes(values))[1]:
            return zeros_like_values(shape, values)  # the loss does not depend on out
        extra = {VECTOR: vector}
        return self._product(
            "gnvp", (loss, out), [wrt], values, extra, strict, memory_limit, check_finite
        )

    def _product(self, kind, of, wrt, values, extra, strict, memory_limit, check_finite) -> Any:
        if values is None:
            raise ValuesError(f"{kind} needs values")
        targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or self.params)
        for w in targets:
            self.info(w)
        for name in of if isinstance(of, tuple) else (of,):
            self.info(name)
        env = self._check_values(values, strict, check_finite)
        dtype = dtype_of(env)
        compiled = self._compiled(kind, of, targets, self.sizes(env), dtype)
        env = {**env, **{k: astype(as_value(v, env), dtype) for k, v in extra.items()}}
        return compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)

    def plan(
        self,
        of: str,
        wrt: str,
        order: Any = "optimal",
        memory_limit: int | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> Plan:
        """``d of / d wrt`` with a chosen contraction order (see
        :mod:`tensorchain.paths`): ``"reverse"``, ``"forward"``, ``"optimal"``
        (the cheapest bracketing of the chain, by dynamic programming), an
        opt_einsum strategy or PathOptimizer. Call the plan on values. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> plan = net.plan("C", "W", order="optimal", n=4, m=3)
            >>> plan.flops <= net.plan("C", "W", order="forward", n=4, m=3).flops
            True
            >>> plan(net.random_values(n=4, m=3)).array.shape
            (4, 3)
        """
        from .paths import make_plan

        self._wrt_one(wrt, "plan")
        self.info(of)
        self.info(wrt)
        return make_plan(self, of, wrt, order, memory_limit, given_sizes(dims, sizes))

    def explore(
        self, of: str, wrt: str, *, dims: Mapping[str, int] | None = None, **sizes: int
    ) -> Exploration:
        """Every order and strategy for ``d of / d wrt``, costed: see
        :class:`tensorchain.explore.Exploration`."""
        from .explore import explore

        self._wrt_one(wrt, "explore")
        return explore(self, of, wrt, dims=given_sizes(dims, sizes))

    def gradient_network(self, of: str, sizes: Mapping[str, int]) -> tuple[Network, dict[str, str]]:
        """``of``'s gradient written as a network (for the given sizes), and the
        name of each tensor's adjoint in it; cached. See :mod:`tensorchain.gradnet`."""
        key = ("grad", of, tuple(sorted(sizes.items())))
        if key not in self._gradnets:
            text, adjoints = gradient_spec(self, of, sizes)
            self._gradnets[key] = (parse(text), adjoints)
        return self._gradnets[key]

    def compile_grad(
        self,
        of: str,
        wrt: str | Sequence[str] | None = None,
        dims: Mapping[str, int] | None = None,
        memory_limit: int | None = None,
        dtype: Any = np.float64,
        **sizes: int,
    ) -> Compiled:
        """``grad`` compiled for fixed sizes: a callable from values to gradients.

        Every path is found and every shape checked here, once; calling it only
        replays array operations. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> grad = net.compile_grad("C", wrt=["W", "b"], dims={"n": 4, "m": 3})
            >>> grad(net.random_values(n=4, m=3))["W"].shape
            (4, 3)
        """
        targets = self._grad_targets(of, wrt)
        compiled = self._compiled(
            "grad", of, targets, self.sizes(dims=dims, **sizes), np.dtype(dtype)
        )
        return compiled.limited(memory_limit)

    def compile_jacobian(
        self,
        of: str,
        wrt: str,
        dims: Mapping[str, int] | None = None,
        memory_limit: int | None = None,
        dtype: Any = np.float64,
        **sizes: int,
    ) -> Compiled:
        """``jacobian`` compiled for fixed sizes: a callable from values to a
        :class:`LabeledTensor` (deltas still symbolic)."""
        self._wrt_one(wrt, "compile_jacobian")
        sizes = self.sizes(dims=dims, **sizes)
        compiled = self._compiled("jacobian", of, (wrt,), sizes, np.dtype(dtype))
        return compiled.limited(memory_limit)

    def _wrt_one(self, wrt: Any, call: str = "this call") -> None:
        if not isinstance(wrt, str):
            raise DerivativeError(
                f"{call} takes one wrt tensor (a str), got {wrt!r}; call it once per tensor"
            )

    def _wrt_list(self, wrt: Any) -> tuple[str, ...]:
        """A list (or tuple) of tensor names, each known."""
        if isinstance(wrt, Mapping) or not isinstance(wrt, Sequence) or not wrt:
            raise DerivativeError(f"wrt is a tensor name or a non-empty list of them, got {wrt!r}")
        for w in wrt:
            self.info(w)
        return tuple(wrt)

    def _grad_targets(self, of: str, wrt: str | Sequence[str] | None) -> tuple[str, ...]:
        info = self.info(of)
        if info.dims:
            total = free_name(self, "L", "loss", f"{of}_total")
            raise DerivativeError(
                f"grad needs a scalar, but {of} has shape [{', '.join(info.dims)}]; use"
                f" net.jacobian({of!r}, wrt=...) for the full Jacobian, or reduce {of}"
                f" to a scalar first (e.g. {total} = sum({of}))"
            )
        targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or self.params)
        if not targets:
            raise DerivativeError(f"no wrt given and {of!r}'s network has no params")
        for w in targets:
            self.info(w)
        return targets

    def _compiled(
        self, kind: str, of: Any, wrt: tuple[str, ...], sizes: dict[str, int], dtype: np.dtype
    ) -> Compiled:
        """The cached compiled program for (kind, of, wrt, sizes, dtype), built on a miss."""
        key = (kind, of, wrt, tuple(sorted(sizes.items())), dtype.str)
        hit = self._cache.pop(key, None)
        if hit is None:
            hit = compile_program(self, kind, of, wrt, sizes, dtype)
        self._cache[key] = hit  # most recently used last
        while len(self._cache) > CACHE_SIZE:
            del self._cache[next(iter(self._cache))]
        return hit


def given_sizes(dims: Mapping[str, int] | None, sizes: Mapping[str, int]) -> dict[str, int]:
    """Sizes given as ``dims={"n": 4}``, as keywords ``n=4``, or both (they must
    agree): every call that takes sizes takes them both ways."""
    if dims is None:
        return dict(sizes)
    if not isinstance(dims, Mapping):
        raise ShapeError(
            f"dims= takes a dict of sizes like {{'n': 4}}, got {dims!r}; or give the sizes"
            " as keywords, n=4"
        )
    for d, s in sizes.items():
        if d in dims and dims[d] != s:
            raise ShapeError(f"dim {d} is given twice: {dims[d]} in dims= and {d}={s}")
    return {**dims, **sizes}


def free_name(net: Network, *candidates: str) -> str:
    """The first of ``candidates`` that names no tensor of ``net`` (for hints)."""
    for name in candidates:
        if name not in net.tensors:
            return name
    k = 1
    while f"{candidates[-1]}{k}" in net.tensors:
        k += 1
    return f"{candidates[-1]}{k}"


def parse(text: str, path: str | None = None) -> Network:
    """Parse spec text into a :class:`Network` (``path``: the file it comes
    from, named in errors; :func:`load` gives it).

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse("dim n = 3\\ninput x[n]\\nf = sum(x ^ 2)")
        >>> net.grad("f", wrt="x", values={"x": [1.0, 2.0, 3.0]})["x"]
        array([2., 4., 6.])
    """
    if not isinstance(text, str):
        raise SpecError(f"parse takes the spec text as a str, got {type(text).__name__}")
    return Network(parse_program(text, path))


def load(path: str | Path) -> Network:
    """Read and parse a ``.tc`` spec file; its errors name the file."""
    return parse(Path(path).read_text(encoding="utf-8"), str(path))
