"""Jacobians and gradients against the reshape method and finite differences."""

import dataclasses

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.functions.registry import (
    CALLABLE,
    ELEMENTWISE,
    NUMPY_DERIVATIVES,
    PIECEWISE_CONSTANT,
)
from tensorchain.strategies import networks
from tensorchain.testing import finite_differences, max_relative_error

EXACT = 1e-12  # against the reshape method (float64)
NUMERIC = 1e-6  # against central differences

ARTICLE = tc.parse(tc.ARTICLE)


@given(n=st.integers(1, 6), m=st.integers(1, 6), seed=st.integers(0, 2**16))
def test_article_gradient_matches_reshape_and_finite_differences(n, m, seed):
    vals = ARTICLE.random_values(seed=seed, n=n, m=m)
    g = ARTICLE.grad("C", wrt=["W", "b"], values=vals)
    for w in ("W", "b"):
        assert g[w].shape == vals[w].shape
        assert max_relative_error(g[w], tc.reshape_method(ARTICLE, "C", w, vals)) < EXACT
        fd = finite_differences(ARTICLE, "C", w, vals)
        assert max_relative_error(g[w], fd) < NUMERIC


@given(
    n=st.integers(1, 5),
    m=st.integers(1, 5),
    seed=st.integers(0, 2**16),
    of=st.sampled_from(["z", "a", "C"]),
    wrt=st.sampled_from(["W", "b", "x", "y", "z"]),
)
def test_article_jacobians_of_every_pair(n, m, seed, of, wrt):
    vals = ARTICLE.random_values(seed=seed, n=n, m=m)
    J = ARTICLE.jacobian(of, wrt=wrt, values=vals)
    ref = tc.reshape_method(ARTICLE, of, wrt, vals)
    assert J.array.shape == ref.shape == ARTICLE.shape(of, n=n, m=m) + ARTICLE.shape(wrt, n=n, m=m)
    assert max_relative_error(J.array, ref) < EXACT
    if wrt != "z":
        assert max_relative_error(J.array, finite_differences(ARTICLE, of, wrt, vals)) < NUMERIC


def test_a_gradient_never_holds_a_dense_delta():
    n, m = 3000, 2  # a dense n×n delta would be 9 million entries
    vals = ARTICLE.random_values(n=n, m=m)
    result = ARTICLE.derivatives("C", ["W", "b"], vals)
    for w in ("W", "b"):
        for term in result.chains[w].terms:
            assert all(f.array.size <= n for f in term.factors)
    assert result.contractions
    assert all(c.largest_intermediate <= n * m for c in result.contractions)
    a = ARTICLE.evaluate(vals)["a"]
    closed_form = np.outer((a - vals["y"]) * a * (1 - a), vals["x"])
    assert max_relative_error(result.jacobians["W"].array, closed_form) < EXACT


def test_article_structure_keeps_deltas_symbolic():
    vals = ARTICLE.random_values(n=5, m=3)
    J = ARTICLE.jacobian("a", wrt="W", values=vals)
    assert J.indices == ("n", "n'", "m")
    assert J.deltas == (("n", "n'"),)
    # Stored: σ'(z)[n] and x[m] apart (n + m numbers), not n×m, nor the n×n×m array.
    (term,) = J.terms
    assert sorted(f.array.size for f in term.factors) == [3, 5]
    z = vals["W"] @ vals["x"] + vals["b"]
    s = 1 / (1 + np.exp(-z))
    dense = np.einsum("nk,n,m->nkm", np.eye(5), s * (1 - s), vals["x"])
    np.testing.assert_allclose(J.array, dense, rtol=1e-12)
    result = ARTICLE.derivatives("C", ["W"], vals)
    (contraction,) = result.contractions
    assert contraction.equation == "a,a,b->ab"
    assert contraction.names == ("dC/da", "da/dz", "dz/dW")


@given(net=networks(), seed=st.integers(0, 2**16))
def test_random_networks_match_reshape_method(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    for w in [*network.params, *network.inputs]:
        J = network.jacobian(net.of, wrt=w, values=vals)
        ref = tc.reshape_method(network, net.of, w, vals)
        assert max_relative_error(J.array, ref) < EXACT, w
    if network.params:
        assert set(network.grad(net.of, values=vals)) == set(network.params)


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_random_networks_match_finite_differences(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    g = network.grad(net.of, wrt=[*network.params, *network.inputs], values=vals)
    for w, value in g.items():
        assert max_relative_error(value, finite_differences(network, net.of, w, vals)) < 1e-5, w


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_jacobians_of_intermediate_tensors(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    for of in network.outputs:
        for w in network.params[:2]:
            J = network.jacobian(of, wrt=w, values=vals)
            assert max_relative_error(J.array, tc.reshape_method(network, of, w, vals)) < EXACT


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # d/dx of xᵀAx is (A + Aᵀ)x: the same tensor twice in one term.
        (
            "dim n = 3\ninput x[n]\nparam A[n, n]\nf = x[i] * A[i, j] * x[j]",
            "quadratic",
        ),
        # diagonal extraction: d tr(A) / dA = I
        ("dim n = 3\nparam A[n, n]\nf = A[i, i]", "trace"),
    ],
)
def test_closed_forms(text, expected):
    net = tc.parse(text)
    vals = net.random_values(seed=3)
    if expected == "quadratic":
        A, x = vals["A"], vals["x"]
        g = net.grad("f", wrt=["x", "A"], values=vals)
        np.testing.assert_allclose(g["x"], (A + A.T) @ x, rtol=1e-13)
        np.testing.assert_allclose(g["A"], np.outer(x, x), rtol=1e-13)
    else:
        np.testing.assert_array_equal(net.grad("f", values=vals)["A"], np.eye(3))


def test_a_bias_broadcast_over_the_batch_sums_over_the_batch():
    # Found by hypothesis: the batch index of d sum(h)/dh is broadcast on both
    # sides of the chain step and must still be summed (a factor B).
    net = tc.parse(
        "dim n = 2\ndim B = 3\ninput x[B, n]\nparam W[n, n]\nparam b[n]\n"
        "h[s, i] = W[i, j] * x[s, j] + b[i]\nL = sum(h)\n"
    )
    vals = net.random_values(seed=1)
    np.testing.assert_allclose(net.grad("L", wrt="b", values=vals)["b"], [3.0, 3.0])
    np.testing.assert_allclose(
        net.grad("L", wrt="W", values=vals)["W"], np.tile(vals["x"].sum(0), (2, 1))
    )


def test_gradient_of_a_tensor_the_output_does_not_depend_on_is_zero():
    net = tc.parse("dim n = 2\ninput x[n]\nparam w[n]\nparam u[n]\nf = sum(w * x)")
    g = net.grad("f", values=net.random_values())
    np.testing.assert_array_equal(g["u"], np.zeros(2))


def test_jacobian_of_a_tensor_by_itself_is_the_identity():
    J = ARTICLE.jacobian("a", wrt="a", values=ARTICLE.random_values(n=3, m=2))
    assert J.deltas == (("n", "n'"),)
    np.testing.assert_array_equal(J.array, np.eye(3))


SCALAR_VALUES = [0.7, np.float64(0.7), np.array(0.7), np.float32(0.7)]


@pytest.mark.parametrize("func", CALLABLE)
@pytest.mark.parametrize("value", SCALAR_VALUES, ids=lambda v: type(v).__name__)
def test_the_uncompiled_path_takes_a_scalar_input(func, value):
    """forward, derivatives, derive(values) and the reshape method, on a scalar
    input through every function, agree with the compiled grad and central
    differences (a 0-d value used to come back as a Python float)."""
    net = tc.parse(f"input s\nt = {func}(tanh(s) + 1.5) * s")
    vals = {"s": value}
    g = net.grad("t", "s", vals)["s"]
    fd = finite_differences(net, "t", "s", vals)
    assert max_relative_error(g, fd) < NUMERIC
    forward = net.forward(vals)
    assert forward.values["t"] == pytest.approx(net.evaluate(vals)["t"])
    for got in (
        net.derivatives("t", ["s"], vals).jacobians["s"].array,
        net.derivatives("t", ["s"], forward).jacobians["s"].array,
        tc.reshape_method(net, "t", "s", vals),
    ):
        assert max_relative_error(got, g) < 1e-6  # float32 values run in float32
    assert str(net.derive("t", "s", vals)).startswith("∂t/∂s")


@pytest.mark.parametrize("name", list(ELEMENTWISE))
@pytest.mark.parametrize("dtype", [np.float32, np.float64])
def test_every_function_keeps_a_numpy_scalar_a_numpy_value(name, dtype):
    f = ELEMENTWISE[name]
    for x in (dtype(0.7), np.array(0.7, dtype=dtype)):
        y = f.value(x, 3.0)
        dy = f.derivative(x, y, 3.0)
        for out in (y, dy):
            assert isinstance(out, np.ndarray | np.generic), (name, type(out))
            assert out.shape == () and out.dtype == dtype, (name, out.dtype)


SIZED_CALLS = {
    "sizes": lambda net, **s: net.sizes(**s),
    "shape": lambda net, **s: net.shape("W", **s),
    "random_values": lambda net, **s: {k: v.shape for k, v in net.random_values(**s).items()},
    "derive": lambda net, **s: str(net.derive("C", "W", **s).matrix_form()),
    "plan": lambda net, **s: net.plan("C", "W", **s).flops,
    "explore": lambda net, **s: [p.flops for p in net.explore("C", "W", **s).plans],
    "compile_grad": lambda net, **s: net.compile_grad("C", **s).sizes,
    "compile_jacobian": lambda net, **s: net.compile_jacobian("a", "W", **s).sizes,
}


@pytest.mark.parametrize("call", list(SIZED_CALLS))
def test_every_call_that_takes_sizes_takes_them_both_ways(call):
    """One convention: dims={...}, keywords, or both (which must agree)."""
    f = SIZED_CALLS[call]
    expected = f(ARTICLE, n=5, m=2)
    assert f(ARTICLE, dims={"n": 5, "m": 2}) == expected
    assert f(ARTICLE, dims={"n": 5}, m=2) == expected
    assert f(ARTICLE, n=5, m=2) != f(ARTICLE, n=4, m=3)  # the sizes are used
    with pytest.raises(tc.ShapeError, match=r"^dim n is given twice: 5 in dims= and n=4$"):
        f(ARTICLE, dims={"n": 5}, n=4)
    with pytest.raises(tc.ShapeError, match=r"^dims= takes a dict of sizes like \{'n': 4\}"):
        f(ARTICLE, dims=[("n", 5)])


def test_a_dim_named_like_a_parameter_is_given_through_dims():
    net = tc.parse("dim seed\ndim order\ninput x[seed, order]\nf = sum(x)")
    assert net.random_values(dims={"seed": 2, "order": 3}, seed=1)["x"].shape == (2, 3)
    assert net.plan("f", "x", "reverse", dims={"seed": 2, "order": 3}).sizes == {
        "seed": 2,
        "order": 3,
    }


def test_every_call_that_takes_wrt_takes_a_name_or_a_list_where_it_makes_sense():
    vals = ARTICLE.random_values(seed=4)
    # per-tensor results: a name gives one, a list a dict keyed by name
    both = ARTICLE.derive("C", ["W", "b"])
    assert list(both) == ["W", "b"] and str(both["W"]) == str(ARTICLE.derive("C", "W"))
    with_values = ARTICLE.derive("C", ("W", "b"), vals, n=4, m=3)
    assert with_values["b"].numeric and str(with_values["b"]) == str(ARTICLE.derive("C", "b"))
    jac = ARTICLE.jacobian("a", ["W", "x"], vals)
    assert list(jac) == ["W", "x"]
    for w in ("W", "x"):
        np.testing.assert_array_equal(jac[w].array, ARTICLE.jacobian("a", w, vals).array)
    grads = ARTICLE.grad("C", ["W", "b"], vals)
    assert list(grads) == ["W", "b"] and list(ARTICLE.grad("C", "W", vals)) == ["W"]
    # one result of several tensors: a name or a list
    np.testing.assert_allclose(
        ARTICLE.ntk("a", "W", vals).array, ARTICLE.ntk("a", ["W"], vals).array
    )
    # one object for one derivative: one name, and a list says so
    for call, make in (
        ("plan", lambda w: ARTICLE.plan("C", w)),
        ("explore", lambda w: ARTICLE.explore("C", w)),
        ("compile_jacobian", lambda w: ARTICLE.compile_jacobian("C", w)),
    ):
        with pytest.raises(
            tc.DerivativeError,
            match=rf"^{call} takes one wrt tensor \(a str\), got \['W', 'b'\]; call it once per",
        ):
            make(["W", "b"])
    with pytest.raises(tc.ShapeError, match=r"dim n is 5 \(n=5 given as an argument\) but axis 0"):
        ARTICLE.derive("C", "W", vals, n=5)  # sizes given with values must agree
    with pytest.raises(tc.DerivativeError, match=r"wrt is a tensor name or a non-empty list"):
        ARTICLE.derive("C", [])
    with pytest.raises(tc.DerivativeError, match=r"^unknown tensor 'Q'"):
        ARTICLE.jacobian("C", ["W", "Q"], vals)


#: Functions whose registry derivative a numpy program calls (no numpy-only
#: form of it takes its place) and is not zero almost everywhere.
_PATCHABLE = [
    name
    for name in CALLABLE
    if name in ELEMENTWISE and name not in NUMPY_DERIVATIVES and name not in PIECEWISE_CONSTANT
]


@pytest.mark.parametrize("name", _PATCHABLE)
def test_a_wrong_rule_in_the_registry_is_caught_by_the_reference(name, monkeypatch):
    """The references keep their own derivatives (tensorchain.reference.functions):
    with the registry's f' doubled, the chain rule's gradient doubles and the
    references' do not, so the comparison of the two fails."""
    text = f"dim n = 3\ninput x_wrong[n]\nf_wrong = sum({name}(x_wrong))"
    values = {"x_wrong": np.array([0.3, 0.7, 1.2])}
    right = tc.parse(text).grad("f_wrong", "x_wrong", values)["x_wrong"]
    entry = ELEMENTWISE[name]
    doubled = dataclasses.replace(entry, derivative=lambda x, y, p: 2.0 * entry.derivative(x, y, p))
    monkeypatch.setitem(ELEMENTWISE, name, doubled)
    net = tc.parse(text)
    wrong = net.grad("f_wrong", "x_wrong", values)["x_wrong"]
    assert max_relative_error(wrong, 2.0 * right) < EXACT  # the registry's rule is used
    for reference in (
        tc.reshape_method(net, "f_wrong", "x_wrong", values),
        tc.reference_derivative(net, "f_wrong", ("x_wrong",), values),
    ):
        assert max_relative_error(reference, right) < EXACT
        assert max_relative_error(wrong, reference) > 0.4
    assert not net.verify("f_wrong", "x_wrong", values, references=["reference"]).ok
