"""Network: declarations, statements, sizes, forward evaluation and derivatives."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from .arrays import limits
from .arrays.backend import as_value, astype, zeros_like_values
from .arrays.building import paused_gc
from .arrays.cache import LRUCache
from .arrays.quiet import loud, quiet
from .calculus.chain import ChainResult
from .calculus.differentiate import VECTOR as HVP_VECTOR
from .calculus.differentiate import derivative_graph, hvp_graph
from .calculus.graph import Forward, Graph, TensorInfo
from .calculus.labeled import LabeledTensor
from .calculus.products import MAX_NORM, VECTOR
from .errors import (
    DerivativeError,
    ShapeError,
    SpecError,
    ValuesError,
)
from .language.domains import bind_domain, draw
from .language.gather import (
    as_positions,
    check_positions,
    declared_index,
    draw_positions,
    refuse_positions,
)
from .language.lower import lower
from .language.operations import DELTA
from .language.parser import parse_program
from .language.reindex import Derived, derived_sizes, product_dim, sum_dim
from .language.shapes import Binding, bind_labels, check_given_dims, value_sizes
from .language.shift import shift_sizes
from .language.syntax import Assign, DimDecl, Group, Pos, ShiftDecl, TensorDecl
from .language.syntax import Program as SpecProgram
from .language.user_function_calls import check_calls
from .runtime.compiled import (
    CACHE_SIZE,
    GRAPH_CACHE_SIZE,
    HOT_PROGRAMS,
    MISS,
    Compiled,
    compile_program,
    compiled_dtype,
    dtype_of,
)
from .runtime.finite import check_results
from .runtime.values import _finite as finite
from .runtime.values import check_values, check_vector, forecast_values

if TYPE_CHECKING:
    from .planning.explore import Exploration
    from .planning.plan import Plan
    from .presentation.derivation import Derivation
    from .verification.verify_report import VerifyReport


#: What a call computes, in words, for messages (``per-sample gradient norms by ids ...``).
_CALLS = {
    "grad": "a gradient",
    "hvp": "a Hessian-vector product",
    "gnvp": "a Gauss–Newton product",
    "norms": "per-sample gradient norms",
    "clipped": "a clipped gradient",
    "ntk": "a neural tangent kernel",
}


class Network(Graph):
    """A network parsed from the spec language.

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> vals = net.random_values(seed=0, n=4, m=3)
        >>> net.grad("C", wrt=["W"], values=vals)["W"].shape
        (4, 3)
    """

    def __init__(self, program: SpecProgram) -> None:
        super().__init__({}, [], {})
        self.program = program
        check_calls(program)  # names of registered functions it calls, refused elsewhere
        self.dims: dict[str, int | None] = {}
        self.derived: dict[str, Derived] = {}  # dims of merged and concatenated axes
        self._bindings: dict[str, dict[str, Binding]] = {}
        self._checked = LRUCache(CACHE_SIZE)  # sizes whose statements are checked
        self._cache = LRUCache(CACHE_SIZE)  # compiled programs, shared by threads
        self._graphs = LRUCache(GRAPH_CACHE_SIZE)  # derivatives' graphs, for any sizes
        # (kind, of, wrt as given) -> the compiled program the last such call
        # used: the next call tries it first (Compiled.fast), with no sizes
        # inferred and no cache key built from them.
        self._hot = LRUCache(CACHE_SIZE)  # per call's key: the last programs it used
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

    def _check_new(self, name: str, pos: Pos) -> None:
        if name == DELTA:
            raise self.program.error(
                "'delta' is the built-in Kronecker delta (delta[i, j]); give this tensor"
                " another name",
                pos,
            )
        if name in self.tensors:
            old = self.tensors[name]
            raise self.program.error(
                f"{name!r} is already {'defined' if old.kind == 'defined' else 'declared'}"
                f" on line {old.pos.line}; every tensor is defined once, so give this"
                " one a new name",
                pos,
            )

    def _check_axes(self, name: str, count: int, pos: Pos) -> None:
        if count > limits.MAX_AXES:
            raise self.program.error(
                f"{name} has {count} axes, more than {limits.MAX_AXES} (numpy's einsum names"
                " each axis of an array with one of 52 letters); merge some of its axes",
                pos,
                ShapeError,
            )

    def _declare(self, st: TensorDecl | ShiftDecl) -> None:
        self._check_new(st.name, st.pos)
        self._check_axes(st.name, len(st.axes), st.pos)
        for axis in (m for a in st.axes for m in (a.members if isinstance(a, Group) else (a,))):
            if axis.name not in self.dims:
                raise self.program.error(
                    f"unknown dim {axis.name!r} in the declaration of {st.name}; declare"
                    f" it first with 'dim {axis.name} = 4' (or 'dim {axis.name}' to take"
                    " its size from the values)",
                    axis.pos,
                )
        dims = tuple(
            (sum_dim if a.added else product_dim)([m.name for m in a.members], self.derived)
            if isinstance(a, Group)
            else a.name
            for a in st.axes
        )
        if isinstance(st, ShiftDecl):
            info = TensorInfo(st.name, "shift", dims, st.pos, (st.stride, st.padding))
        else:
            domain = bind_domain(self.program, st, self.dims)
            index = declared_index(self.program, st, self.dims)
            info = TensorInfo(st.name, st.kind, dims, st.pos, domain=domain, index=index)
        self.tensors[st.name] = info

    def _define(self, st: Assign) -> None:
        self._check_new(st.target, st.pos)
        stmt = lower(self.program, st, self.axes, self.indexes, self.dims)
        self._check_axes(st.target, len(stmt.labels), st.pos)
        defaults = {d: s for d, s in self.dims.items() if s is not None}
        bound = bind_labels(
            self.program, stmt, self.axes, defaults, self.indexes, self.dims, self.derived
        )
        dims = tuple(bound[lab].dim for lab in stmt.labels)
        self.tensors[st.target] = TensorInfo(st.target, "defined", dims, st.pos)
        self._bindings[st.target] = bound
        self.add_statement(stmt, {lab: b.dim for lab, b in bound.items()})

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
        (``dims={"n": 4}`` or ``n=4``), then by ``values``' shapes.

        The result also names each derived dim (a merged axis ``(h j)``, a
        concatenated one ``(h + w)``) with its size, and every ``dims=``
        takes it back as it is: a derived dim given is checked against its
        members (a :class:`ShapeError` when they disagree), and fixes a
        member the others leave open (``(h j)=6`` with ``h=2`` gives ``j=3``).
        Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim h = 2\\ndim j = 3\\nparam W[(h j)]\\nf = sum(W ^ 2)")
            >>> net.sizes()
            {'h': 2, 'j': 3, '(h j)': 6}
            >>> net.shape("W", dims=net.sizes())
            (6,)
        """
        dims = given_sizes(dims, sizes)
        check_given_dims(dims, self.dims, self.derived)
        sizes = {d: s for d, s in self.dims.items() if s is not None}
        sizes.update((d, int(s)) for d, s in dims.items())
        sizes.update(value_sizes(self.tensors, self.dims, sizes, dims, values or {}))
        shift_sizes(self, sizes)
        derived_sizes(self.derived, sizes, dims)
        missing = [d for d in self.dims if d not in sizes]
        if missing:
            raise ShapeError(
                f"dim {missing[0]} has no size: give it in the spec (dim {missing[0]} = 8),"
                f" as an argument ({missing[0]}=8), or through the values"
            )
        self._checked.get(tuple(sorted(sizes.items())), lambda: self._bind_all(sizes))
        return sizes

    def _bind_all(self, sizes: dict[str, int]) -> bool:
        """Check every statement's index sizes (raises on a mismatch)."""
        for stmt in self.statements:
            bind_labels(self.program, stmt, self.axes, sizes, self.indexes, self.dims, self.derived)
        return True

    def with_sizes(self, dims: Mapping[str, int] | None = None, **sizes: int) -> Network:
        """The same network with the sizes given as its dims' defaults, in place
        of the spec's ``dim`` sizes. Sizes given with the values win over
        defaults, but a factor of a product dim shows in no value's shape
        (``H`` and ``K`` of ``Wq[D, (H K)]``): this is how to change it.
        Raises :class:`ShapeError` for an unknown dim or a size that is not a
        positive integer. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim H = 4\\ndim K = 8\\nparam W[(H K)]\\nf = sum(W ^ 2)")
            >>> small = net.with_sizes(H=2, K=3)
            >>> small.sizes()["(H K)"], small.grad("f", values=small.random_values())["W"].shape
            (6, (6,))
        """
        given = given_sizes(dims, sizes)
        check_given_dims(given, self.dims)
        statements = tuple(
            replace(st, size=int(given[st.name]))
            if isinstance(st, DimDecl) and st.name in given
            else st
            for st in self.program.statements
        )
        return Network(replace(self.program, statements=statements))

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
        """Values for every input and param (float64): standard normal, or
        in the domain its declaration gives (``param s[n] positive``:
        ``exp(z / 2)``; ``unit``: ``σ(z)``; ``probability c``: a softmax of
        ``z`` along c; ``onehot c``: 1 at the largest ``z`` along c; ``spd``:
        ``G Gᵀ / n + I``), mapped from the same standard-normal draw ``z``,
        so a declaration changes no other tensor's values. An integer index
        tensor (``input ids[B] index V``) gets positions drawn uniformly (int64).

        Their total size is forecast first: above the memory limit
        (``memory_limit`` bytes, else the one in force) it raises
        :class:`MemoryLimitError` before anything is drawn. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim n = 3\\nparam s[n] positive\\nf = sum(log(s))")
            >>> bool((net.random_values(seed=1)["s"] > 0).all())
            True
        """
        if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
            raise ValuesError(f"the seed is a whole number of at least 0, got {seed!r}")
        sizes = self.sizes(dims=dims, **sizes)
        leaves = [t for t in self.tensors.values() if t.kind in ("input", "param")]
        shapes = {t.name: tuple(sizes[d] for d in t.dims) for t in leaves}
        forecast_values(shapes, sizes, memory_limit)
        rng = np.random.default_rng(seed)
        indexes = self.indexes  # integer positions, drawn within their dim
        return {
            name: draw_positions(rng, shape, sizes[indexes[name]])
            if name in indexes
            else draw(self.tensors[name].domain, rng.standard_normal(shape), sizes)
            for name, shape in shapes.items()
        }

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

    def _check_values(
        self, values: Mapping[str, Any], strict: bool = False, check_finite: bool = True
    ) -> dict[str, np.ndarray]:
        env = check_values(self, values, strict, check_finite)
        if self.indexes:  # every position within its dim
            sizes = self.sizes(env)
            for name, dim in self.indexes.items():
                check_positions(name, env[name], dim, sizes[dim])
                env[name] = as_positions(env[name])
        return env

    def forward(self, values: Mapping[str, Any]) -> Forward:
        """Evaluate every statement, keeping the value of every node."""
        env = self._check_values(values)
        return self.run_forward(env, self.sizes(env))

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
        key = ("forward", "", ())
        result = self._fast(key, values, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        env = self._check_values(values, strict, check_finite)
        compiled = self._compiled("forward", "", (), self.sizes(env), dtype_of(env))
        result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
        self._remember(key, compiled)
        return result

    # --- derivatives ---

    def derivatives(
        self,
        of: str,
        wrt: Sequence[str],
        values: Mapping[str, Any] | Forward,
        structured: bool = False,
        mode: str = "reverse",
    ) -> ChainResult:
        """The chain rule for ``d of / d w`` for each ``w``, with everything it did
        (``structured``: see :func:`tensorchain.calculus.chain.network_jacobians`;
        ``mode="forward"``: accumulated from one ``w`` towards ``of``)."""
        self.info(of)
        for w in wrt:
            self.info(w)
        refuse_positions(self, wrt)
        if mode not in ("reverse", "forward") or (mode == "forward" and len(wrt) != 1):
            raise DerivativeError(
                f"mode is 'reverse' or 'forward' (for one wrt tensor), got {mode!r} with"
                f" {len(wrt)} wrt tensors"
            )
        forward = values if isinstance(values, Forward) else self.forward(values)
        return super().derivatives(of, wrt, forward, structured, mode)

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
        from .presentation.derivation import derive

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
        key = ("jacobian", of, wrt) if isinstance(wrt, str) else None
        result = self._fast(key, values, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        self.info(of)
        targets = (wrt,) if isinstance(wrt, str) else self._wrt_list(wrt)
        refuse_positions(self, targets, "a Jacobian")
        env = self._check_values(values, strict, check_finite)
        sizes, dtype = self.sizes(env), dtype_of(env)
        out = {}
        for w in targets:
            compiled = self._compiled("jacobian", of, (w,), sizes, dtype)
            out[w] = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
        if key is None:
            return out
        self._remember(key, compiled)
        return out[wrt]

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
        key = _key("grad", of, wrt)
        result = self._fast(key, values, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        targets = self._grad_targets(of, wrt)
        if values is None:
            raise ValuesError("grad needs values: net.grad(of, wrt, values=...)")
        env = self._check_values(values, strict, check_finite)
        compiled = self._compiled("grad", of, targets, self.sizes(env), dtype_of(env))
        result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
        self._remember(key, compiled)
        return result

    def derivative(
        self,
        of: str,
        wrt: str | Sequence[str],
        values: Mapping[str, Any],
        *,
        strict: bool = False,
        check_finite: bool = True,
        memory_limit: int | None = None,
    ) -> LabeledTensor:
        """The k-th derivative ``∂ᵏ of / ∂wrt[0] … ∂wrt[k-1]`` as a :class:`LabeledTensor`
        of shape ``of.shape + wrt[0].shape + … + wrt[k-1].shape``, for any k ≥ 1 and
        any ``of`` (scalar or tensor); Kronecker deltas stay symbolic at every order.

        The first k − 1 derivatives are graphs built from the network
        (:mod:`tensorchain.calculus.differentiate`), the last a Jacobian of the chain rule;
        compiled once per (of, wrt, sizes, dtype) and reused. To contract the
        result with vectors without forming it (D³f[v, v, ·]), pass it to
        :func:`tensorchain.contract`. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> T = net.derivative("C", ("W", "W", "W"), net.random_values(n=4, m=3))
            >>> T.shape, T.deltas
            ((4, 3, 4, 3, 4, 3), (('n', "n'"), ('n', "n''")))

        Raises :class:`DerivativeError` for an unknown tensor or an empty ``wrt``.
        """
        key = _key("derivative", of, wrt)
        result = self._fast(key, values, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        wrts = self._wrt_tuple(wrt)
        self.info(of)
        env = self._check_values(values, strict, check_finite)
        sizes = self.sizes(env)
        kind = "jacobian" if len(wrts) == 1 else "derivative"
        compiled = self._compiled(kind, of, wrts, sizes, dtype_of(env))
        result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
        self._remember(key, compiled)
        return result

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
        """d² of / d wrt d wrt2, shape ``of.shape + wrt.shape + wrt2.shape``
        (``wrt2`` defaults to ``wrt``; two tensors give a mixed block; ``of`` may
        be a scalar or a tensor): :meth:`derivative` with ``(wrt, wrt2)``.

        It is the Jacobian by ``wrt2`` of ``of``'s derivative graph
        (:mod:`tensorchain.calculus.differentiate`), so deltas stay symbolic: the
        Hessian of the article by ``W`` is δ(n, n') times an n×m×m block. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> H = net.hessian("C", "W", net.random_values(n=4, m=3))
            >>> H.indices, H.deltas
            (('n', 'm', "n'", "m'"), (('n', "n'"),))
        """
        self._wrt_one(wrt, "hessian")
        wrt2 = wrt if wrt2 is None else wrt2
        self._wrt_one(wrt2, "hessian")
        return self.derivative(
            of,
            (wrt, wrt2),
            values,
            strict=strict,
            check_finite=check_finite,
            memory_limit=memory_limit,
        )

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
        """The Hessian-vector product (d² of / d wrt²) · vector of a scalar ``of``,
        shaped like ``wrt``, without forming the Hessian: the gradient by ``wrt``
        of ``Σ g · vector``, where ``g`` is ``of``'s gradient by ``wrt``
        (reverse over reverse: two gradient passes). Compiled once per
        (of, wrt, sizes, dtype)."""
        key = ("hvp", of, wrt)
        found = {HVP_VECTOR: (vector, False)}
        result = self._fast_with(key, values, found, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        self._wrt_one(wrt, "hvp")
        self._grad_targets(of, [wrt], "hvp")
        env = self._check_values(values, strict, check_finite)
        sizes = self.sizes(env)
        shape = tuple(sizes[d] for d in self.tensors[wrt].dims)
        vector = check_vector(vector, env, shape, wrt, "hvp", strict, check_finite)
        if self.hvp_graph(of, wrt)[1] is None:  # of does not depend on wrt
            return zeros_like_values(shape, env)
        compiled = self._compiled("hvp", of, (wrt,), sizes, dtype_of(env))
        result = compiled.run({**env, HVP_VECTOR: vector}, memory_limit, check_finite=False)
        if check_finite and finite(vector):  # a non-finite vector has been reported
            check_results(self, env, result, compiled.what, of, strict)
        self._remember(key, compiled)
        return result

    def verify(
        self,
        of: str,
        wrt: Any = None,
        values: Mapping[str, Any] | None = None,
        *,
        order: int = 1,
        seed: int = 0,
        tolerance: float | None = None,
        references: Sequence[str] = ("reference", "differences", "jax", "torch"),
        fd_entries: int = 1000,
        memory_limit: int | None = None,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> VerifyReport:
        """Check ``∂ of / ∂ wrt`` against every reference at hand: the reshape
        method (or, from order 2, :func:`tc.reference_derivative`) where its
        memory forecast allows, central finite differences (a step per entry,
        Richardson extrapolation, kinks reported as such), and JAX's and
        PyTorch's autodiff of the same network when installed. ``wrt``: a name
        (at ``order``), a tuple (one derivative, ``("W", "W")`` the Hessian), a
        list of either, or None (every param ``of`` depends on). Values are
        drawn (seed ``seed``, sizes ``dims``/``**sizes``) when not given.
        Returns a :class:`~tensorchain.verification.verify_report.VerifyReport`: ``print`` it,
        ``.ok``, ``.rows``. See docs/verify.md. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> net.verify("C", "W", references=["reference", "differences"]).ok
            True
        """
        from .verification.verify import verify

        return verify(
            self,
            of,
            wrt,
            values,
            order=order,
            seed=seed,
            tolerance=tolerance,
            references=references,
            fd_entries=fd_entries,
            memory_limit=memory_limit,
            dims=given_sizes(dims, sizes),
        )

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
        key = ("gnvp", (loss, out), (wrt,))
        found = {VECTOR: (vector, False)}
        result = self._fast_with(key, values, found, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
        self._wrt_one(wrt, "gnvp")
        self._grad_targets(loss, [out], "gnvp")
        self.info(wrt)
        env = self._check_values(values, strict, check_finite)
        shape = tuple(self.sizes(env)[d] for d in self.tensors[wrt].dims)
        vector = check_vector(vector, env, shape, wrt, "Gauss–Newton", strict, check_finite)
        if self.derivative_graph(loss, (out,))[1] is None:
            return zeros_like_values(shape, values)  # the loss does not depend on out
        extra = {VECTOR: vector}
        return self._product(
            "gnvp", (loss, out), [wrt], values, extra, strict, memory_limit, check_finite
        )

    def _product(self, kind, of, wrt, values, extra, strict, memory_limit, check_finite) -> Any:
        key = _key(kind, of, wrt)
        if kind != "gnvp":  # gnvp tried the fast path itself, with its vector
            found = {name: (value, True) for name, value in extra.items()}
            result = self._fast_with(key, values, found, strict, check_finite, memory_limit)
            if result is not MISS:
                return result
        if values is None:
            raise ValuesError(f"{kind} needs values")
        targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or self.params)
        for w in targets:
            self.info(w)
        refuse_positions(self, targets, _CALLS.get(kind, f"the {kind}"))
        for name in of if isinstance(of, tuple) else (of,):
            self.info(name)
        env = self._check_values(values, strict, check_finite)
        dtype = dtype_of(env)
        compiled = self._compiled(kind, of, targets, self.sizes(env), dtype)
        with np.errstate(over="ignore"):  # a bound past float32's range is inf: no bound
            env = {**env, **{k: astype(as_value(v, env), dtype) for k, v in extra.items()}}
        result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
        self._remember(key, compiled)
        return result

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
        :mod:`tensorchain.planning.chain_orders`): ``"reverse"``, ``"forward"``, ``"optimal"``
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
        from .planning.plan import make_plan

        self._wrt_one(wrt, "plan")
        self.info(of)
        self.info(wrt)
        refuse_positions(self, [wrt], "a plan of a derivative")
        return make_plan(self, of, wrt, order, memory_limit, given_sizes(dims, sizes))

    def explore(
        self, of: str, wrt: str, *, dims: Mapping[str, int] | None = None, **sizes: int
    ) -> Exploration:
        """Every order and strategy for ``d of / d wrt``, costed: see
        :class:`tensorchain.planning.explore.Exploration`."""
        from .planning.explore import explore

        self._wrt_one(wrt, "explore")
        return explore(self, of, wrt, dims=given_sizes(dims, sizes))

    def derivative_graph(self, of: str, wrt: Sequence[str]) -> tuple[Graph, str | None]:
        """The graph that computes ``∂ᵏ of / ∂wrt[0] … ∂wrt[k-1]`` and the name of
        that tensor in it (``None`` where it is zero); cached, for any sizes.
        See :mod:`tensorchain.calculus.differentiate`."""
        if isinstance(wrt, str):
            wrt = (wrt,)
        self.info(of)
        for w in wrt:
            self.info(w)
        refuse_positions(self, wrt)
        if not wrt:
            return self, of

        def build() -> tuple[Graph, str | None]:
            graph, out = self.derivative_graph(of, wrt[:-1])
            return (graph, None) if out is None else derivative_graph(graph, out, wrt[-1])

        return self._graphs.get((of, tuple(wrt)), build)

    def hvp_graph(self, of: str, wrt: str) -> tuple[Graph, str | None]:
        """``of``'s derivative graph by ``wrt`` with one more statement, the
        scalar ``Σ g · v`` for an input ``v`` shaped like ``wrt``; its name."""

        def build() -> tuple[Graph, str | None]:
            graph, g = self.derivative_graph(of, (wrt,))
            return (graph, None) if g is None else hvp_graph(graph, g, wrt)

        return self._graphs.get((of, (wrt,), "hvp"), build)

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
            "grad", of, targets, self.sizes(dims=dims, **sizes), compiled_dtype(dtype)
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
        compiled = self._compiled("jacobian", of, (wrt,), sizes, compiled_dtype(dtype))
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

    def _wrt_tuple(self, wrt: Any) -> tuple[str, ...]:
        if isinstance(wrt, str):
            wrts: tuple = (wrt,)
        elif isinstance(wrt, Sequence) and all(isinstance(w, str) for w in wrt):
            wrts = tuple(wrt)
        else:
            raise DerivativeError(
                f"wrt is a tensor name or a sequence of them (one per order), got {wrt!r}"
            )
        if not wrts:
            raise DerivativeError(
                "derivative needs at least one wrt tensor, e.g. wrt=('W', 'W') for the Hessian"
            )
        for w in wrts:
            self.info(w)
        refuse_positions(self, wrts)
        return wrts

    def _grad_targets(
        self, of: str, wrt: str | Sequence[str] | None, what: str = "grad"
    ) -> tuple[str, ...]:
        info = self.info(of)
        if info.dims:
            total = free_name(self, "total", "loss", f"{of}_total")
            raise DerivativeError(
                f"{what} needs a scalar, but {of} has shape [{', '.join(info.dims)}]; use"
                f" net.jacobian({of!r}, wrt=...) or net.derivative({of!r}, wrt=(...)) for"
                f" the full derivative, or reduce {of} to a scalar first with a new"
                f" statement (e.g. {total} = sum({of}))"
            )
        if wrt is not None and not isinstance(wrt, str) and len(wrt) == 0:
            raise DerivativeError(
                f"{what}: wrt is an empty list; name the tensors, or leave wrt out for every param"
            )
        targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or self.params)
        if not targets:
            raise DerivativeError(f"no wrt given and {of!r}'s network has no params")
        for w in targets:
            self.info(w)
        refuse_positions(self, targets, _CALLS.get(what, f"the {what}"))
        return targets

    def _fast(
        self,
        key: tuple | None,
        values: Any,
        strict: bool,
        check_finite: bool,
        memory_limit: int | None,
    ) -> Any:
        """The result of a call through one of the programs the last calls with
        ``key`` used (see :meth:`Compiled.fast`), or :data:`MISS`: the values need the
        general checks (or ``strict`` asks for them before any work)."""
        if strict or key is None or type(values) is not dict:
            return MISS
        try:
            recent = self._hot.peek(key)
        except TypeError:  # an unhashable argument: the general path says what is wrong
            return MISS
        for compiled in recent or ():
            result = compiled.fast(values, check_finite, memory_limit)
            if result is not MISS:
                return result
        return MISS

    def _fast_with(
        self,
        key: tuple | None,
        values: Any,
        extra: dict[str, tuple[Any, bool]],
        strict: bool,
        check_finite: bool,
        memory_limit: int | None,
    ) -> Any:
        """:meth:`_fast` for a program with more inputs: ``extra`` maps each
        to its value and whether it is a number the caller checked (a bound,
        made a 0-d array of the program's dtype); a product's vector must be
        a numpy array of the program's dtype and shape, as the values must."""
        if strict or key is None or type(values) is not dict:
            return MISS
        try:
            recent = self._hot.peek(key)
        except TypeError:
            return MISS
        for compiled in recent or ():
            token = quiet()  # a bound past float32's range is inf: no bound
            try:
                given = {
                    name: np.asarray(value, compiled.dtype) if number else value
                    for name, (value, number) in extra.items()
                }
            finally:
                loud(token)
            result = compiled.fast(values, check_finite, memory_limit, extra=given)
            if result is not MISS:
                return result
        return MISS

    def _remember(self, key: tuple | None, compiled: Compiled) -> None:
        """Keep ``compiled`` first among the programs calls with ``key`` try
        (the last :data:`HOT_PROGRAMS` used: a loop over a few batch sizes or
        dtypes finds its program without the general path)."""
        if key is not None:  # arguments the general path accepted: hashable
            recent = self._hot.peek(key) or ()
            kept = (compiled, *(c for c in recent if c is not compiled))
            self._hot.put(key, kept[:HOT_PROGRAMS])

    def _compiled(
        self, kind: str, of: Any, wrt: tuple[str, ...], sizes: dict[str, int], dtype: np.dtype
    ) -> Compiled:
        """The cached compiled program for (kind, of, wrt, sizes, dtype), built on a miss."""
        key = (kind, of, wrt, tuple(sorted(sizes.items())), dtype.str)

        def build() -> Compiled:
            with paused_gc():
                return compile_program(self, kind, of, wrt, sizes, dtype)

        return self._cache.get(key, build)


def _key(kind: str, of: Any, wrt: Any) -> tuple | None:
    """The key of a call's fast path: ``wrt`` as given (a list as a tuple);
    None where it cannot be one (an iterator: reading it would use it up)."""
    if wrt is None or isinstance(wrt, str):
        return (kind, of, wrt)
    if type(wrt) in (list, tuple):
        return (kind, of, tuple(wrt))
    return None


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
    with paused_gc():
        return Network(parse_program(text, path))


def load(path: str | Path) -> Network:
    """Read and parse a ``.tc`` spec file; its errors name the file."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except UnicodeDecodeError as err:
        bad = err.object[err.start : err.start + 1]
        raise SpecError(
            f"{path} is not UTF-8 text (byte {err.start} is {bad!r}); a spec is a text"
            " file: save it as UTF-8"
        ) from None
    return parse(text, str(path))
