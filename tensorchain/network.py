"""The facade: Network, parse and load, each a short call into the module that owns it."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .arrays.building import paused_gc
from .calculus.chain import ChainResult
from .calculus.from_spec import build
from .calculus.graph import Forward, Graph, TensorInfo
from .calculus.labeled import LabeledTensor
from .language.parser import parse_program
from .language.spec_file import check_text, read_spec
from .language.syntax import Program
from .planning.explore import Exploration, explore
from .planning.plan import Plan, make_plan
from .presentation.derivation import Derivation, derivations
from .runtime import calls
from .runtime.arguments import given_sizes, plan_sizes, tensor_info, wrt_one
from .runtime.compiled import Compiled
from .runtime.graphs import derivative_graph
from .runtime.sizes import network_sizes, resized_program, shape_of
from .runtime.values import checked_values, random_values
from .verification.verify import verify
from .verification.verify_report import VerifyReport


class Network(Graph):
    """A network parsed from the spec language.

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> vals = net.random_values(seed=0, n=4, m=3)
        >>> net.grad("C", wrt=["W"], values=vals)["W"].shape
        (4, 3)
    """

    def __init__(self, program: Program) -> None:
        build(self, program)  # its dims, derived dims, tensors and statements
        calls.keep_caches(self)

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

    def sizes(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, int]:
        """Every dim's size: spec defaults, overridden by the sizes given
        (``dims={"n": 4}`` or ``n=4``), then by ``values``' shapes.

        The result also names each derived dim (a merged axis ``(h j)``, a concatenated one
        ``(h + w)``) with its size, and every ``dims=`` takes it back as it is: a derived dim given
        is checked against its members (a :class:`ShapeError` when they disagree), and fixes a
        member the others leave open (``(h j)=6`` with ``h=2`` gives ``j=3``). Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim h = 2\\ndim j = 3\\nparam W[(h j)]\\nf = sum(W ^ 2)")
            >>> net.sizes()
            {'h': 2, 'j': 3, '(h j)': 6}
            >>> net.shape("W", dims=net.sizes())
            (6,)
        """
        return network_sizes(self, self._checked, values, given_sizes(dims, sizes))

    def with_sizes(self, dims: Mapping[str, int] | None = None, **sizes: int) -> Network:
        """The same network with the sizes given as its dims' defaults, in place of the spec's
        ``dim`` sizes. Sizes given with the values win over defaults, but a factor of a product dim
        shows in no value's shape (``H`` and ``K`` of ``Wq[D, (H K)]``): this is how to change it.
        Raises :class:`ShapeError` for an unknown dim or a size that is not a positive integer.
        Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim H = 4\\ndim K = 8\\nparam W[(H K)]\\nf = sum(W ^ 2)")
            >>> small = net.with_sizes(H=2, K=3)
            >>> small.sizes()["(H K)"], small.grad("f", values=small.random_values())["W"].shape
            (6, (6,))
        """
        return Network(resized_program(self, given_sizes(dims, sizes)))

    def shape(
        self, name: str, *, dims: Mapping[str, int] | None = None, **sizes: int
    ) -> tuple[int, ...]:
        """The shape of tensor ``name`` for the given (or default) dim sizes."""
        return shape_of(self, name, dims, sizes)

    def random_values(
        self,
        seed: int = 0,
        *,
        memory_limit: int | None = None,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, np.ndarray]:
        """Values for every input and param (float64): standard normal, or in the domain its
        declaration gives (``param s[n] positive``: ``exp(z / 2)``; ``unit``: ``σ(z)``;
        ``probability c``: a softmax of ``z`` along c; ``onehot c``: 1 at the largest ``z`` along c;
        ``spd``: ``G Gᵀ / n + I``), mapped from the same standard-normal draw ``z``, so a
        declaration changes no other tensor's values. An integer index tensor
        (``input ids[B] index V``) gets positions drawn uniformly (int64).

        Their total size is forecast first: above the memory limit (``memory_limit`` bytes, else the
        one in force) it raises :class:`MemoryLimitError` before anything is drawn. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse("dim n = 3\\nparam s[n] positive\\nf = sum(log(s))")
            >>> bool((net.random_values(seed=1)["s"] > 0).all())
            True
        """
        return random_values(self, seed, memory_limit, dims, sizes)

    def info(self, name: str) -> TensorInfo:
        """The :class:`TensorInfo` of ``name``, or an error listing the tensors."""
        return tensor_info(self, name)

    def _check_values(self, values, strict=False, check_finite=True) -> dict[str, np.ndarray]:
        return checked_values(self, values, strict, check_finite)

    def forward(self, values: Mapping[str, Any]) -> Forward:
        """Evaluate every statement, keeping the value of every node."""
        return calls.forward(self, values)

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
        return calls.evaluate(self, values, strict, check_finite, memory_limit)

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
        return calls.chain_rule(self, of, wrt, values, structured, mode)

    def derive(
        self,
        of: str,
        wrt: str | Sequence[str],
        values: Mapping[str, Any] | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> Derivation | dict[str, Derivation]:
        """The derivation of ``d of / d wrt``: index notation (``str``), ``.einsum``, ``.latex()``,
        ``.steps``, ``.matrix_form()`` and ``.to_python()``; for a list of ``wrt``, a dict of them.

        Symbolic (shapes only, from the sizes given or the spec's defaults)
        unless ``values`` are given. Example:
            >>> import tensorchain as tc
            >>> print(tc.parse(tc.ARTICLE).derive("C", "b"))
            ∂C/∂b[i] = 0.5 · 2 (a - y)[i] · σ'(z)[i]
        """
        return derivations(self, of, wrt, values, given_sizes(dims, sizes))

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
        return calls.jacobian(self, of, wrt, values, strict, check_finite, memory_limit)

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
        return calls.grad(self, of, wrt, values, strict, check_finite, memory_limit)

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
        (:mod:`tensorchain.calculus.differentiate`), the last a Jacobian of the chain rule; compiled
        once per (of, wrt, sizes, dtype) and reused. To contract the result with vectors without
        forming it (D³f[v, v, ·]), pass it to :func:`tensorchain.contract`. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> T = net.derivative("C", ("W", "W", "W"), net.random_values(n=4, m=3))
            >>> T.shape, T.deltas
            ((4, 3, 4, 3, 4, 3), (('n', "n'"), ('n', "n''")))

        Raises :class:`DerivativeError` for an unknown tensor or an empty ``wrt``.
        """
        return calls.derivative(self, of, wrt, values, strict, check_finite, memory_limit)

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
        return calls.hessian(self, of, wrt, values, wrt2, strict, check_finite, memory_limit)

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
        """The Hessian-vector product (d² of / d wrt²) · vector of a scalar ``of``, shaped like
        ``wrt``, without forming the Hessian: the gradient by ``wrt`` of ``Σ g · vector``, where
        ``g`` is ``of``'s gradient by ``wrt`` (reverse over reverse: two gradient passes). Compiled
        once per (of, wrt, sizes, dtype)."""
        return calls.hvp(self, of, wrt, vector, values, strict, check_finite, memory_limit)

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
        """Check ``∂ of / ∂ wrt`` against every reference at hand: the reshape method (or, from
        order 2, :func:`tc.reference_derivative`) where its memory forecast allows, central finite
        differences (a step per entry, Richardson extrapolation, kinks reported as such), and JAX's
        and PyTorch's autodiff of the same network when installed. ``wrt``: a name (at ``order``), a
        tuple (one derivative, ``("W", "W")`` the Hessian), a list of either, or None (every param
        ``of`` depends on). Values are drawn (seed ``seed``, sizes ``dims``/``**sizes``) when not
        given. Returns a :class:`~tensorchain.verification.verify.VerifyReport`: ``print`` it,
        ``.ok``, ``.rows``. See docs/verify.md. Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> net.verify("C", "W", references=["reference", "differences"]).ok
            True
        """
        options = {"order": order, "seed": seed, "tolerance": tolerance, "references": references}
        options.update(fd_entries=fd_entries, memory_limit=memory_limit)
        return verify(self, of, wrt, values, **options, dims=given_sizes(dims, sizes))

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
        return calls.product(self, "norms", of, wrt, values, {}, strict, memory_limit, check_finite)

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
        return calls.clipped(self, of, wrt, values, max_norm, strict, check_finite, memory_limit)

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
        return calls.product(self, "ntk", out, wrt, values, {}, strict, memory_limit, check_finite)

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
        return calls.gnvp(self, loss, out, wrt, vector, values, strict, check_finite, memory_limit)

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
        return make_plan(self, of, wrt, order, memory_limit, plan_sizes(self, of, wrt, dims, sizes))

    def explore(
        self, of: str, wrt: str, *, dims: Mapping[str, int] | None = None, **sizes: int
    ) -> Exploration:
        """Every order and strategy for ``d of / d wrt``, costed: see
        :class:`tensorchain.planning.explore.Exploration`."""
        wrt_one(wrt, "explore")
        return explore(self, of, wrt, dims=given_sizes(dims, sizes))

    def derivative_graph(self, of: str, wrt: Sequence[str]) -> tuple[Graph, str | None]:
        """The graph that computes ``∂ᵏ of / ∂wrt[0] … ∂wrt[k-1]`` and the name of
        that tensor in it (``None`` where it is zero); cached, for any sizes.
        See :mod:`tensorchain.calculus.differentiate`."""
        return derivative_graph(self, of, wrt)

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
        return calls.compile_grad(self, of, wrt, dims, sizes, dtype, memory_limit)

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
        return calls.compile_jacobian(self, of, wrt, dims, sizes, dtype, memory_limit)


def parse(text: str, path: str | None = None) -> Network:
    """Parse spec text into a :class:`Network` (``path``: the file it comes
    from, named in errors; :func:`load` gives it).

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse("dim n = 3\\ninput x[n]\\nf = sum(x ^ 2)")
        >>> net.grad("f", wrt="x", values={"x": [1.0, 2.0, 3.0]})["x"]
        array([2., 4., 6.])
    """
    check_text(text)
    with paused_gc():
        return Network(parse_program(text, path))


def load(path: str | Path) -> Network:
    """Read and parse a ``.tc`` spec file; its errors name the file."""
    return parse(read_spec(path), str(path))
