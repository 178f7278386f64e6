"""Finiteness checks of structured results and where warnings point (issue 20's
adversarial trial): a result finite as stored whose dense form overflows is
reported on every path, numpy's own warnings do not leak, and every
NonFiniteWarning names the caller's line, on a first call and a cached one."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.runtime.finite import dense_bound

HESSIAN = """
dim n = 3
dim m = 2
input x[m]
param W[n, m]
q[i] = W[i, j] * x[j] * x[j]
L = sum(q) * sum(q)
"""

# a[s, i] = z² has the Jacobian 2·z[s, i]·x[s, j]·δ(i, i'): two factors kept apart
SQUARE = """
dim B = 2
dim n = 5
dim m = 6
input x[B, m]
param W[n, m]
z[s, i] = W[i, j] * x[s, j]
a = z ^ 2
"""


def _calls(net: tc.Network, kind: str, of: str, wrt: str, values: dict):
    if kind == "hessian":
        return lambda **kw: net.hessian(of, wrt, values, **kw)
    if kind == "jacobian":
        return lambda **kw: net.jacobian(of, wrt, values, **kw)
    if kind == "compiled":
        compiled = net.compile_jacobian(of, wrt, dims=net.sizes(values))
        return lambda **kw: compiled(values, **kw)
    plan = net.plan(of, wrt)
    return lambda **kw: plan(values, **kw)


@pytest.mark.parametrize(
    ("spec", "of", "wrt", "x", "kind"),
    [
        (HESSIAN, "L", "W", np.array([1e77, -1e77]), "hessian"),
        (SQUARE, "a", "W", np.full((2, 6), 1e160), "jacobian"),
        (SQUARE, "a", "W", np.full((2, 6), 1e160), "compiled"),
        (SQUARE, "a", "W", np.full((2, 6), 1e160), "plan"),
    ],
    ids=["hessian-coefficient", "jacobian-two-factors", "compiled", "plan"],
)
def test_dense_overflow_is_reported_on_every_call(spec, of, wrt, x, kind):
    net = tc.parse(spec)
    values = net.random_values(seed=0)
    values["x"] = x
    call = _calls(net, kind, of, wrt, values)
    for _ in range(3):  # the first call, then the cached ones
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            result = call()
            dense = result.array
        kinds = [w.category for w in caught]
        assert kinds == [tc.NonFiniteWarning], [str(w.message) for w in caught]
        assert caught[0].filename == __file__
        assert not np.isfinite(dense).all()  # the numbers themselves are right: inf
        with pytest.raises(tc.ValuesError, match=r"NaN|overflows"):
            call(strict=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            call(check_finite=False)  # asked not to check: silent


def test_large_finite_structured_results_are_not_flagged():
    net = tc.parse(SQUARE)
    values = net.random_values(seed=1)
    values["x"] = np.full((2, 6), 1e100)  # dense entries about 1e200: finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(3):
            J = net.jacobian("a", "W", values)
            assert np.isfinite(J.array).all()
            plan = net.plan("a", "W")
            assert np.isfinite(plan(values).array).all()


@given(
    scale=st.floats(1e-3, 1e3),
    sizes=st.tuples(st.integers(1, 3), st.integers(1, 4), st.integers(1, 4)),
    seed=st.integers(0, 2**16),
)
@settings(max_examples=25, deadline=None)
def test_dense_bound_bounds_every_dense_entry(scale, sizes, seed):
    """Σ |coeff| Π max|factor| against the dense array, on structured
    Jacobians and Hessians with deltas, several factors and coefficients."""
    B, n, m = sizes
    net = tc.parse(SQUARE.replace("dim B = 2", f"dim B = {B}").replace("dim n = 5", f"dim n = {n}"))
    values = net.random_values(seed=seed, m=m)
    values["x"] = values["x"] * scale
    for result in (net.jacobian("a", "W", values), net.jacobian("a", "x", values)):
        dense = result.array
        assert np.abs(dense).max() <= dense_bound(result) * (1 + 1e-12)


def test_clipping_bound_past_float32_range_is_silent():
    net = tc.parse(
        "dim B = 3\ndim n = 2\ninput x[B, n]\nparam W[n]\nz[s] = W[j] * x[s, j]\nC = sum(z)\n"
    )
    values = {k: v.astype(np.float32) for k, v in net.random_values(seed=2).items()}
    expected = net.grad("C", "W", {k: v.astype(np.float64) for k, v in values.items()})
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # numpy's "overflow encountered in cast" would raise
        for _ in range(3):
            got = net.clipped_grad("z", None, values, 1e300)["W"]
            # no clipping at that bound: the plain sum of per-sample gradients
            assert np.allclose(got, expected["W"], rtol=1e-5)


MLP = """
dim n = 3
dim m = 2
input x[m]
param W[n, m]
z[i] = W[i, j] * x[j]
a = tanh(z)
L = sum(a ^ 2)
"""


@pytest.mark.parametrize(
    "entry", ["grad", "jacobian", "hessian", "evaluate", "compile_grad", "plan", "hvp"]
)
def test_warnings_name_the_callers_line(entry):
    net = tc.parse(MLP)
    values = net.random_values(seed=3)
    values["x"] = np.array([np.nan, 1.0])
    calls = {
        "grad": lambda: net.grad("L", "W", values),
        "jacobian": lambda: net.jacobian("a", "W", values),
        "hessian": lambda: net.hessian("L", "W", values),
        "evaluate": lambda: net.evaluate(values),
        "compile_grad": lambda: compiled(values),
        "plan": lambda: plan(values),
        "hvp": lambda: net.hvp("L", "W", np.ones((3, 2)), values),
    }
    compiled = net.compile_grad("L", "W", dims=net.sizes(values))
    plan = net.plan("a", "W")
    for _ in range(3):  # the first call and the cached ones take different paths
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            calls[entry]()
        assert caught, entry
        assert {w.filename for w in caught} == {__file__}, [w.filename for w in caught]
