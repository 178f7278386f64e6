"""``tc.check_gradient``: a user's own gradient code against the exact derivative.

The user's function takes the values (a dict of numpy, torch or JAX arrays)
and returns its gradients. Sizes and values are drawn (with hypothesis when it
is installed, plain random draws otherwise), the gradients compared with
tensorchain's, computed in float64 at the same values; on a mismatch the
sizes are shrunk to the smallest that still fail, and the report names the
entries that differ by index and, where it can be told, what the difference
is consistent with (:mod:`tensorchain.verification.suspects`: a sign, a factor of 2, a
mean for a sum, a term left out of a batch sum, a transposed factor of one
local derivative, ...).

Tolerances come from the dtype the user's code computes in (ε its machine
epsilon): an entry agrees when ``|yours − exact| ≤ 16 ε · magnitude + atol ·
max |exact|``. ``magnitude`` is the gradient with every local derivative's
entries made positive — the size of the terms the chain rule adds, which
rounding errors scale with (it is ``|exact|`` where nothing cancels).
``atol = max(2 ε, 10 · noise)``, where ``noise`` is the largest difference,
relative to ``max |exact|``, between tensorchain run in float32 and the exact
float64 result at the same values, scaled by ``ε / ε(float32)``: the rounding
error this network's gradient actually has, forward pass included.
"""

from __future__ import annotations

import math
import random
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..calculus.chain import network_jacobians
from ..calculus.labeled import LabeledTensor
from ..calculus.rules import dense
from ..errors import ShapeError, ValuesError
from ..functions.along import ALONG
from ..language.domains import drawn_note, shifted
from ..language.gather import Selection, cast_values
from ..language.lower import Along, Solve, walk
from ..language.shapes import check_given_dims
from ..runtime.arguments import grad_targets
from ..runtime.compiled import dtype_of
from .suspects import LOCAL_LIMIT
from .suspects import diagnose as find_suspects
from .verify import sci, tensor_entry, x64

if TYPE_CHECKING:
    from ..language.network_like import Computing

EPS32 = float(np.finfo(np.float32).eps)
SHOWN = 5  # differing entries listed per tensor
LIBRARIES = ("numpy", "torch", "jax")


@dataclass
class Tolerance:
    """An entry agrees when ``|yours − exact| ≤ rtol · magnitude + atol · scale``:
    ``magnitude`` is the gradient's magnitude (the chain rule with every local
    derivative's entries made positive), ``scale`` is ``max |exact|``."""

    rtol: float
    atol: float
    magnitude: np.ndarray
    scale: float
    condition: float = 1.0  # the largest condition number of a matrix inverted

    def limits(self) -> np.ndarray:
        return self.rtol * self.magnitude + self.atol * self.scale

    def close(self, yours: np.ndarray, other: np.ndarray) -> bool:
        """Whether ``yours`` agrees with ``other`` (the exact gradient, or a suspect's)."""
        yours, other = np.asarray(yours), np.asarray(other)
        if yours.shape != other.shape or yours.shape != self.magnitude.shape:
            return False
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.all(np.abs(yours - other) <= self.limits()))

    def __str__(self) -> str:
        text = f"|yours − exact| ≤ {sci(self.rtol)} · magnitude + {sci(self.atol)} · max|exact|"
        if self.condition > 1.0:
            text += f"; the first grown by {self.condition:.3g}, the condition number of a matrix"
        return text


@dataclass
class Mismatch:
    """Where the user's gradient by ``wrt`` differs from the exact one."""

    wrt: str
    dims: tuple[str, ...]
    expected_shape: tuple[int, ...]
    shape: tuple[int, ...]
    count: int = 0  # entries that differ
    total: int = 0
    entries: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)
    where: str = ""  # the index values all differences share, e.g. "w=2"

    def lines(self) -> list[str]:
        head = f"by {self.wrt}"
        if self.shape != self.expected_shape:
            like = tensor_entry(self.wrt, self.dims, self.expected_shape).replace("=", " of ")
            like = f"a scalar, like {self.wrt}" if not self.dims else f"like {like}"
            out = [
                f"{head}: yours has shape {self.shape}, the gradient {self.expected_shape} ({like})"
            ]
            if self.shape == self.expected_shape[::-1] and len(self.shape) > 1:
                out[0] += ": the transpose's shape"
            return out
        out = [f"{head}: {self.count:,} of {self.total:,} entries differ" + (
            f", all where {self.where}" if self.where else ""
        )]  # fmt: skip
        for index, yours, exact in self.entries:
            entry = tensor_entry(self.wrt, self.dims, index)
            out.append(f"  {entry}: yours {yours:.6g}, exact {exact:.6g}")
        if self.count > len(self.entries):
            out.append(f"  … and {self.count - len(self.entries):,} more")
        return out


@dataclass
class GradientCheck:
    """What :func:`check_gradient` found. ``ok``; ``str(check)`` is the report
    (the message of :func:`tensorchain.testing.assert_gradient_close`). On a
    failure: ``sizes`` and ``values`` of the smallest failing example (shrunk
    from ``first_sizes``), ``mismatches`` per tensor, ``diagnosis``."""

    ok: bool
    of: str
    wrt: tuple[str, ...]
    examples: int
    dtype: np.dtype
    library: str
    tolerance: dict[str, Tolerance]
    sizes: dict[str, int] = field(default_factory=dict)
    first_sizes: dict[str, int] = field(default_factory=dict)
    drawn: str = ""  # how the failing example's values were drawn, or "given"
    values: dict[str, np.ndarray] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diagnosed_at: str = ""  # the sizes of the example diagnosed, when not those shown

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        wrts = ", ".join(self.wrt)
        if self.ok:
            return (
                f"check_gradient: your gradient of {self.of} by {wrts} agrees with the exact one"
                f" on {self.examples} example{'s' * (self.examples != 1)} ({self.dtype},"
                f" {self.library})"
            )
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        lines = [
            f"check_gradient: your gradient of {self.of} differs from the exact one",
            f"  at sizes {sizes} (values: {self.drawn}; {self.dtype}, {self.library} arrays)",
        ]
        if self.first_sizes and self.first_sizes != self.sizes:
            first = ", ".join(f"{d}={s}" for d, s in self.first_sizes.items())
            lines.append(f"  shrunk from the first failing example, at sizes {first}")
        differing = {m.wrt for m in self.mismatches}
        for m in self.mismatches:
            lines += [f"  {line}" for line in m.lines()]
            if m.shape == m.expected_shape:
                lines.append(f"    (tolerance {self.tolerance[m.wrt]})")
        agreeing = [w for w in self.wrt if w not in differing]
        if agreeing:
            lines.append(f"  by {', '.join(agreeing)}: agrees")
        if self.diagnosis:
            at = f" (tried at sizes {self.diagnosed_at})" if self.diagnosed_at else ""
            lines.append(f"  the difference is consistent with{at}:")
            lines += [f"    - {d}" for d in self.diagnosis]
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


# --- the user's function ---


def _require(library: str) -> None:
    """A ValuesError when ``library`` (torch or jax) is not installed."""
    import importlib.util

    if library != "numpy" and importlib.util.find_spec(library) is None:
        raise ValuesError(
            f"library={library!r} passes {library} arrays to your function, but {library} is"
            f" not installed here; install it (pip install {library}) or pass numpy arrays"
            " (library='numpy')"
        )


def _to_library(values: Mapping[str, np.ndarray], library: str) -> dict[str, Any]:
    arrays = {k: np.array(v) for k, v in values.items()}  # copies: the user may write to them
    if library == "torch":
        import torch

        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    if library == "jax":
        import jax.numpy as jnp

        return {k: jnp.asarray(v) for k, v in arrays.items()}
    return arrays


def _to_numpy(array: Any, what: str = "") -> np.ndarray:
    if hasattr(array, "detach"):  # torch, possibly requiring grad or on a device
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (ValueError, TypeError) as err:
        raise ValuesError(
            f"{what or 'an array'} is not an array of numbers ({type(array).__name__}:"
            f" {str(err).splitlines()[0]}); return one numpy, torch or JAX array per tensor"
        ) from None


def _gradients_numpy(result: Any) -> Any:
    """The user's result with its arrays as numpy arrays (read inside a JAX x64 context)."""
    if isinstance(result, Mapping):
        return {k: _to_numpy(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [_to_numpy(v) for v in result]
    return _to_numpy(result)


def _gradients(result: Any, wrts: Sequence[str], net: Computing) -> dict[str, np.ndarray]:
    """The user's gradients by name: a dict, one array (one wrt), or a sequence in wrt order."""
    if isinstance(result, Mapping):
        unknown = [k for k in result if k not in net.tensors]
        if unknown:
            raise ValuesError(
                f"your function returned a gradient for {unknown[0]!r}, which the network"
                f" does not have; its tensors are {', '.join(net.tensors)}"
            )
        missing = [w for w in wrts if w not in result]
        if missing:
            raise ValuesError(
                f"your function returned no gradient for {', '.join(missing)} (it returned"
                f" {', '.join(map(str, result)) or 'an empty dict'}); return a dict with"
                f" every tensor checked: {', '.join(wrts)}"
            )
        return {w: _to_numpy(result[w], f"your gradient by {w}") for w in wrts}
    if isinstance(result, list | tuple):
        if len(result) != len(wrts):
            raise ValuesError(
                f"your function returned {len(result)} gradients for {len(wrts)} tensors"
                f" ({', '.join(wrts)}); return one per tensor, in that order, or a dict"
            )
        return {w: _to_numpy(g, f"your gradient by {w}") for w, g in zip(wrts, result, strict=True)}
    if len(wrts) == 1:
        return {wrts[0]: _to_numpy(result, f"your gradient by {wrts[0]}")}
    raise ValuesError(
        f"your function returned one {type(result).__name__} for {len(wrts)} tensors;"
        f" return a dict from name to gradient ({', '.join(wrts)})"
    )


# --- one example ---


@dataclass
class Outcome:
    sizes: dict[str, int]
    drawn: str  # how the values were drawn ("given" when they were)
    values: dict[str, np.ndarray]  # in the user's dtype
    yours: dict[str, np.ndarray]
    exact: dict[str, np.ndarray]
    tolerance: dict[str, Tolerance]
    failed: list[str]  # tensors whose gradient differs


class _Checker:
    def __init__(
        self,
        fn: Callable[[dict[str, Any]], Any],
        net: Computing,
        of: str,
        wrts: tuple[str, ...],
        dtype: np.dtype,
        library: str,
        rtol: float | None,
        atol: float | None,
    ) -> None:
        self.fn, self.net, self.of, self.wrts = fn, net, of, wrts
        self.dtype, self.library = dtype, library
        self.rtol, self.atol = rtol, atol
        self.count = 0

    def exact(self, values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        wide = cast_values(self.net, values, np.float64)
        return self.net.grad(self.of, list(self.wrts), wide, check_finite=False)

    def noise(self, values: Mapping[str, np.ndarray], exact: dict) -> dict[str, float]:
        """Per tensor: the largest rounding error of tensorchain's gradient in
        float32 relative to max |exact|, scaled to the user's precision."""
        narrow = cast_values(self.net, values, np.float32)
        if self.dtype != np.float32:  # exact at the values rounded to float32
            exact = self.exact(narrow)
        with np.errstate(all="ignore"):
            got = self.net.grad(self.of, list(self.wrts), narrow, check_finite=False)
        scale = float(np.finfo(self.dtype).eps) / EPS32
        out = {}
        for w in self.wrts:
            size = float(np.max(np.abs(exact[w]), initial=0.0)) or 1.0
            err = np.abs(got[w].astype(np.float64) - exact[w])
            worst = float(np.max(err, initial=0.0)) / size
            out[w] = worst * scale if math.isfinite(worst) else 0.0
        return out

    def tolerance(self, values, exact, yours) -> dict[str, Tolerance]:
        out = {}
        noise = None if self.atol is not None else self.noise(values, exact)
        magnitude, condition = self.magnitude(values)
        for w in self.wrts:
            dt = self.dtype
            got = yours[w].dtype
            if got.kind == "f" and np.finfo(got).eps > np.finfo(dt).eps:
                dt = got  # returned in a narrower dtype than computed
            eps = float(np.finfo(dt).eps)
            rtol = 16 * eps * condition if self.rtol is None else self.rtol
            atol = max(2 * eps, 10 * noise[w]) if self.atol is None else self.atol
            scale = float(np.max(np.abs(exact[w]), initial=0.0)) or 1.0
            out[w] = Tolerance(rtol, atol, magnitude[w], scale, condition)
        return out

    def magnitude(self, values: Mapping[str, np.ndarray]) -> tuple[dict[str, np.ndarray], float]:
        """The gradient with every coefficient and every local derivative's
        entries made positive: rounding errors of a chain of products and
        sums scale with it (it is at least |exact|, and much more where
        terms cancel); and the largest condition number of a matrix the
        network inverts, factors or solves with (1 when none), by which the
        rounding errors of inverses and solves grow (Higham, *Accuracy and
        Stability of Numerical Algorithms*, 2nd ed., ch. 14)."""
        wide = cast_values(self.net, values, np.float64)
        with np.errstate(all="ignore"):
            forward = self.net.forward(wide)
            cache: dict[str, dict[str, LabeledTensor]] = {}

            def positive(stmt: Any) -> dict[str, LabeledTensor]:
                if stmt.target not in cache:
                    cache[stmt.target] = {
                        op: _positive(jac)
                        for op, jac in self.net.local_jacobians(stmt.target, forward).items()
                    }
                return cache[stmt.target]

            result = network_jacobians(
                self.net.statements,
                self.net.axes,
                forward.sizes,
                positive,
                self.of,
                list(self.wrts),
            )
            magnitude = {w: np.abs(np.asarray(result.jacobians[w].array)) for w in self.wrts}
            return magnitude, _condition(self.net, forward)

    def _call(self, values: dict[str, np.ndarray]) -> Any:
        if self.library != "jax" or self.dtype != np.float64:
            return self.fn(_to_library(values, self.library))
        import jax

        with x64(jax):  # float64 JAX arrays, the user's setting restored after
            return _gradients_numpy(self.fn(_to_library(values, "jax")))

    def run(self, values: dict[str, np.ndarray], sizes: dict, drawn: str) -> Outcome:
        self.count += 1
        sizes = {d: sizes[d] for d in self.net.dims if d in sizes}  # in the spec's order
        try:
            result = self._call(values)
        except Exception as err:
            where = ", ".join(f"{d}={s}" for d, s in sizes.items())
            err.add_note(f"(raised by your function, called by check_gradient at sizes {where})")
            raise
        yours = _gradients(result, self.wrts, self.net)
        for w, g in yours.items():
            if g.dtype.kind not in "biuf":
                raise ValuesError(
                    f"your gradient by {w} has dtype {g.dtype}; check_gradient compares real"
                    " gradients (numbers)"
                )
        exact = self.exact(values)
        tolerance = self.tolerance(values, exact, yours)
        failed = [w for w in self.wrts if not tolerance[w].close(yours[w], exact[w])]
        return Outcome(sizes, drawn, values, yours, exact, tolerance, failed)


def _condition(net: Computing, forward: Any) -> float:
    """The largest 2-norm condition number of the matrices of ``inv``, ``det``,
    ``logdet``, ``cholesky`` and ``solve`` in one evaluation (1 when none)."""
    worst = 1.0
    for stmt in net.statements:
        for node in walk(stmt.root):
            if isinstance(node, Solve):
                arg, row, col = node.matrix, node.row, node.col
            elif isinstance(node, Along) and node.func in ALONG and ALONG[node.func].matrix:
                arg, (row, col) = node.arg, node.axes
            else:
                continue
            value = forward.nodes[stmt.target].get(id(arg))
            if value is None:
                continue
            a = np.asarray(dense(value))
            a = np.moveaxis(a, [arg.labels.index(row), arg.labels.index(col)], [-2, -1])
            with np.errstate(all="ignore"):
                kappa = np.linalg.cond(a) if a.size else np.ones(1)
            kappa = np.where(np.isfinite(kappa), kappa, 1.0)
            worst = max(worst, float(np.max(kappa, initial=1.0)))
    return worst


def _positive(jac: LabeledTensor) -> LabeledTensor:
    terms = [
        replace(
            t,
            coeff=abs(t.coeff),
            factors=tuple(
                f if isinstance(f.array, Selection) else replace(f, array=np.abs(f.array))
                for f in t.factors
            ),
        )
        for t in jac.terms
    ]
    return LabeledTensor(jac.indices, jac.sizes, terms, canonicalize=False)


def _mismatch(
    net: Computing, w: str, yours: np.ndarray, exact: np.ndarray, tol: Tolerance
) -> Mismatch:
    dims = net.tensors[w].dims
    m = Mismatch(w, dims, exact.shape, yours.shape)
    if yours.shape != exact.shape:
        return m
    with np.errstate(invalid="ignore"):
        diff = np.abs(yours.astype(np.float64) - exact)
        bad = ~(diff <= tol.limits())
    m.total, m.count = exact.size, int(bad.sum())
    order = np.argsort(np.where(bad, np.nan_to_num(diff, nan=np.inf), -1.0), axis=None)[::-1]
    for flat in order[: min(SHOWN, m.count)]:
        index = tuple(int(i) for i in np.unravel_index(flat, exact.shape))
        m.entries.append((index, float(yours[index]), float(exact[index])))
    where = []
    for k, d in enumerate(dims):
        hit = np.unique(np.argwhere(bad)[:, k])
        if exact.shape[k] > 1 and len(hit) <= max(1, exact.shape[k] // 4):
            where.append(f"{d}={'/'.join(str(int(i)) for i in hit)}")
    if m.count > 1:
        m.where = ", ".join(where)
    return m


# --- drawing and shrinking ---


def _free_dims(net: Computing, fixed: Mapping[str, int]) -> list[str]:
    """The dims drawn: used by an input or param, not given, not computed by
    a shift, and not a member of a derived dim given (those take the spec's
    sizes or follow from the derived one)."""
    computed = {t.dims[0] for t in net.tensors.values() if t.kind == "shift"}
    computed.update(m for d in fixed if d in net.derived for m in net.derived[d][1])
    used = {d for t in net.tensors.values() if t.kind in ("input", "param") for d in t.dims}
    return [d for d in net.dims if d in used and d not in fixed and d not in computed]


def _draw(
    net: Computing, of: str, sizes: dict[str, int], seed: int, dtype: np.dtype
) -> tuple[dict, str] | None:
    """Values as ``random_values`` draws them, standard normal or in each
    declared domain (``|v| + 0.5`` for those without a domain where the draw
    makes ``of`` NaN: a log or a square root of a negative number), in
    ``dtype``; None for sizes the network does not take (a kernel longer
    than its input)."""
    try:
        full = net.sizes(dims=sizes)
    except ShapeError:
        return None
    values = net.random_values(seed=seed, dims=full)
    drawn = drawn_note(net, seed)
    with np.errstate(all="ignore"):
        if not np.all(np.isfinite(net.evaluate(values, check_finite=False)[of])):
            values, drawn = shifted(net, values, seed)
    return cast_values(net, values, dtype), drawn


def _use_hypothesis() -> bool:
    """Hypothesis draws and shrinks when it is installed, except inside a
    hypothesis test (a search nested in another is refused by hypothesis)."""
    try:
        from hypothesis.control import currently_in_test_context
    except ImportError:
        return False
    return not currently_in_test_context()


def _search(
    check: Callable[[dict, int], bool],
    free: list[str],
    fixed: dict[str, int],
    max_size: int,
    examples: int,
    seed: int,
    shrink: bool,
) -> tuple[dict, int, dict, int] | None:
    """The first failing (sizes, seed) and the smallest one shrunk from it, or None."""
    first: list[tuple[dict, int]] = []
    raised: list[BaseException] = []

    def fails(sizes: dict, vseed: int) -> bool:
        if not raised:
            try:
                bad = check({**fixed, **sizes}, vseed)
            except Exception as err:
                raised.append(err)
        if raised:  # the user's function raised: stop the search (one place, every time)
            raise _Stop
        if bad and not first:
            first.append(({**fixed, **sizes}, vseed))
        return bad

    if free and _use_hypothesis():
        from hypothesis import HealthCheck, Phase, find, settings
        from hypothesis import strategies as st
        from hypothesis.errors import NoSuchExample

        # the k-th draw of values, not a seed: shrinking it is a few steps to 0
        strategy = st.tuples(
            st.fixed_dictionaries({d: st.integers(1, max_size) for d in free}),
            st.integers(0, examples).map(lambda k: _value_seed(seed, k)),
        )
        phases = [Phase.generate, Phase.shrink] if shrink else [Phase.generate]
        config = settings(
            max_examples=examples,
            database=None,
            deadline=None,
            phases=phases,
            suppress_health_check=list(HealthCheck),
        )
        try:
            sizes, vseed = find(
                strategy, lambda ex: fails(*ex), settings=config, random=random.Random(seed)
            )
        except NoSuchExample:
            return None
        except Exception:
            if raised:
                raise raised[0] from None
            raise
        return (*first[0], {**fixed, **sizes}, vseed)
    try:
        return _plain_search(fails, free, fixed, max_size, examples, seed, shrink, first)
    except _Stop:
        raise raised[0] from None


def _value_seed(seed: int, k: int) -> int:
    """The seed of the ``k``-th draw of values."""
    return int(np.random.SeedSequence([seed, k]).generate_state(1)[0])


class _Stop(Exception):
    """The user's function raised: the search stops, and that error is raised."""


def _plain_search(fails, free, fixed, max_size, examples, seed, shrink, first):
    """Random sizes and seeds, then a greedy shrink: each dim made as small as
    it still fails, until nothing shrinks."""
    rng = np.random.default_rng(seed)
    for k in range(examples):
        sizes = {d: int(rng.integers(1, max_size + 1)) for d in free}
        vseed = _value_seed(seed, k)
        if fails(sizes, vseed):
            break
    else:
        return None
    shrinking = shrink
    while shrinking:
        shrinking = False
        for d in free:
            for smaller in sorted({1, sizes[d] // 2, sizes[d] - 1}):
                if 1 <= smaller < sizes[d] and fails({**sizes, d: smaller}, vseed):
                    sizes[d], shrinking = smaller, True
                    break
    return (*first[0], {**fixed, **sizes}, vseed)


# --- the call ---


def check_gradient(
    fn: Callable[[dict[str, Any]], Any],
    net: Computing,
    of: str,
    wrt: str | Sequence[str] | None = None,
    *,
    values: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
    dtype: Any = None,
    library: str = "numpy",
    examples: int | None = None,
    max_size: int = 5,
    seed: int = 0,
    shrink: bool = True,
    diagnose: bool = True,
    rtol: float | None = None,
    atol: float | None = None,
) -> GradientCheck:
    """Check your gradient function ``fn`` against the exact gradient of ``of``.

    ``fn(values)`` takes a dict from every input and param name to an array
    (``library``: ``"numpy"``, ``"torch"`` or ``"jax"``, in ``dtype``:
    float64 by default, the values' own dtype when ``values`` are given and
    ``dtype`` is not) and
    returns the gradients by ``wrt`` (default: every param): a dict by name,
    a sequence in ``wrt`` order, or one array for one tensor.

    Without ``values``, sizes are drawn for every dim not fixed by ``dims``
    (1 to ``max_size``) and values as ``net.random_values`` draws them
    (standard normal, or in the domain a declaration gives), ``examples``
    times (default 20, or 5 when every size is fixed; with hypothesis when it
    is installed); the first failure is shrunk to the smallest sizes that
    still fail (``shrink``). With ``values``, that one example is checked.
    ``rtol``/``atol`` override the tolerances from the dtype (see the module).

    Returns a :class:`GradientCheck`: ``.ok``, and ``str()`` naming the
    entries that differ and, with ``diagnose``, what the difference is
    consistent with. Example:
        >>> import numpy as np, tensorchain as tc
        >>> net = tc.parse("dim n\\ninput x[n]\\nparam w[n]\\nf = sum(w * x) ^ 2")
        >>> def grad(v):  # the factor 2 forgotten
        ...     return {"w": np.sum(v["w"] * v["x"]) * v["x"]}
        >>> tc.check_gradient(grad, net, "f", "w").ok
        False
    """
    if not callable(fn):
        raise ValuesError(
            f"check_gradient takes your gradient function first, got {type(fn).__name__};"
            " to compare arrays you have, use tensorchain.testing.assert_gradient_close"
        )
    wrts = grad_targets(net, of, wrt, "check_gradient")
    if library not in LIBRARIES:
        raise ValuesError(f"library is one of {', '.join(LIBRARIES)}, got {library!r}")
    _require(library)
    for name, given, least in (("max_size", max_size, 1), ("examples", examples, 1)):
        if given is None and name == "examples":
            continue
        if not isinstance(given, int | np.integer) or isinstance(given, bool) or given < least:
            raise ValuesError(f"{name} is a positive integer, got {given!r}")
    for name, given in (("rtol", rtol), ("atol", atol)):
        if given is not None and not (isinstance(given, int | float) and 0 <= given < math.inf):
            raise ValuesError(f"{name} is a number ≥ 0, got {given!r}")
    fixed = dict(dims or {})
    check_given_dims(fixed, net.dims, net.derived)
    free = _free_dims(net, fixed)
    if values is not None:
        given = {k: _to_numpy(v, f"the value of {k}") for k, v in values.items()}
        for k, v in given.items():
            if v.dtype.kind in "fc" and not np.all(np.isfinite(v)):
                raise ValuesError(
                    f"the value of {k} holds NaN or infinity; check_gradient compares gradients"
                    " at finite values: give finite ones"
                )
        env = net._check_values(given)
        net.sizes(env, dims=fixed)  # sizes given must agree with the values
        if dtype is None:  # the float values' (index tensors hold integer positions)
            dtype = dtype_of(env)
    dtype = np.dtype(np.float64 if dtype is None else dtype)
    if dtype not in (np.float32, np.float64):
        raise ValuesError(
            f"check_gradient compares real gradients; dtype is float32 or float64, got {dtype}"
        )
    checker = _Checker(fn, net, of, wrts, dtype, library, rtol, atol)
    if values is not None:
        env = cast_values(net, env, dtype)
        outcome = checker.run(env, net.sizes(env), "given")
        if not outcome.failed:
            return _passed(checker, outcome.tolerance)
        return _failed(checker, outcome, outcome, outcome if diagnose else None)
    if examples is None:
        examples = 20 if free else 5
    outcomes: dict[tuple, Outcome] = {}

    def check(sizes: dict, vseed: int) -> bool:
        key = (tuple(sorted(sizes.items())), vseed)
        if key not in outcomes:
            drawn = _draw(net, of, sizes, vseed, dtype)
            if drawn is None:
                return False
            outcomes[key] = checker.run(drawn[0], net.sizes(dims=sizes), drawn[1])
        return bool(outcomes[key].failed)

    found = _search(check, free, fixed, max_size, examples, seed, shrink)
    if found is None:
        tolerance = next(iter(outcomes.values())).tolerance if outcomes else {}
        result = _passed(checker, tolerance)
        if not outcomes:
            result.ok = False
            result.notes.append("no example could be drawn: every size drawn was refused")
        return result
    first_sizes, first_seed, sizes, vseed = found
    first = outcomes[(tuple(sorted(first_sizes.items())), first_seed)]
    smallest = outcomes[(tuple(sorted(sizes.items())), vseed)]
    # The diagnosis wants every drawn dim of at least 3 (a transpose or a
    # batch sum is invisible at size 1, a mean over 2 looks like a factor ½).
    wide = {**first_sizes, **{d: max(first_sizes[d], min(3, max_size)) for d in free}}
    raised = None
    try:
        check(wide, first_seed)
    except Exception as err:  # most likely your function's: reported in the notes
        raised = f"{type(err).__name__}: {err}"
    failing = [o for o in outcomes.values() if o.failed]
    informative = max(
        failing,
        key=lambda o: (
            sum(g.size for g in o.exact.values()) <= LOCAL_LIMIT,
            min((o.sizes[d] for d in free), default=0),
            sum(g.size for g in o.exact.values()),
        ),
    )
    result = _failed(checker, smallest, first, informative if diagnose else None)
    if diagnose and raised is not None:
        at = ", ".join(f"{d}={s}" for d, s in wide.items())
        result.notes.append(f"(the diagnosis could not use sizes {at}: {raised})")
    return result


def _passed(checker: _Checker, tolerance: dict[str, Tolerance]) -> GradientCheck:
    return GradientCheck(
        True, checker.of, checker.wrts, checker.count, checker.dtype, checker.library, tolerance
    )


def _failed(
    checker: _Checker, outcome: Outcome, first: Outcome, diagnosed: Outcome | None
) -> GradientCheck:
    net = checker.net
    result = GradientCheck(
        False,
        checker.of,
        checker.wrts,
        checker.count,
        checker.dtype,
        checker.library,
        outcome.tolerance,
        sizes=outcome.sizes,
        first_sizes=first.sizes,
        drawn=outcome.drawn,
        values=outcome.values,
    )
    for w in outcome.failed:
        result.mismatches.append(
            _mismatch(net, w, outcome.yours[w], outcome.exact[w], outcome.tolerance[w])
        )
    if diagnosed is not None:
        result.diagnosis, result.notes = find_suspects(net, checker.of, checker.wrts, diagnosed)
        if diagnosed.sizes != outcome.sizes:
            at = ", ".join(f"{d}={s}" for d, s in diagnosed.sizes.items())
            result.diagnosed_at = at
    return result
