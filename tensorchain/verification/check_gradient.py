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

This module holds the call and the check of one example; the report is in
:mod:`~tensorchain.verification.gradient_report`, the examples drawn and
shrunk in :mod:`~tensorchain.verification.search`, the user's arrays in and
out in :mod:`~tensorchain.verification.user_gradients`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import replace
from typing import TYPE_CHECKING, Any

import numpy as np

from ..calculus.chain import network_jacobians
from ..calculus.factors import dense
from ..calculus.labeled import LabeledTensor
from ..errors import ValuesError
from ..functions.along import ALONG
from ..language.gather import Selection, cast_values
from ..language.operations import Along, Solve, walk
from ..language.shapes import check_given_dims
from ..runtime.arguments import grad_targets
from ..runtime.compiled import dtype_of
from .autodiff import x64
from .gradient_report import GradientCheck, Mismatch, Outcome, Tolerance
from .search import draw, free_dims, search
from .suspects import LOCAL_LIMIT
from .suspects import diagnose as find_suspects
from .user_gradients import LIBRARIES, gradients, numpy_gradients, require, to_library, to_numpy

if TYPE_CHECKING:
    from ..language.network_like import Computing

EPS32 = float(np.finfo(np.float32).eps)
SHOWN = 5  # differing entries listed per tensor


# --- one example ---


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
            return self.fn(to_library(values, self.library))
        import jax

        with x64(jax):  # float64 JAX arrays, the user's setting restored after
            return numpy_gradients(self.fn(to_library(values, "jax")))

    def run(self, values: dict[str, np.ndarray], sizes: dict, drawn: str) -> Outcome:
        self.count += 1
        sizes = {d: sizes[d] for d in self.net.dims if d in sizes}  # in the spec's order
        try:
            result = self._call(values)
        except Exception as err:
            where = ", ".join(f"{d}={s}" for d, s in sizes.items())
            err.add_note(f"(raised by your function, called by check_gradient at sizes {where})")
            raise
        yours = gradients(result, self.wrts, self.net.tensors)
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
    require(library)
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
    free = free_dims(net, fixed)
    if values is not None:
        given = {k: to_numpy(v, f"the value of {k}") for k, v in values.items()}
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
            drawn = draw(net, of, sizes, vseed, dtype)
            if drawn is None:
                return False
            outcomes[key] = checker.run(drawn[0], net.sizes(dims=sizes), drawn[1])
        return bool(outcomes[key].failed)

    found = search(check, free, fixed, max_size, examples, seed, shrink)
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
