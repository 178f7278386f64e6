"""Second order: Hessians, mixed blocks and Hessian-vector products against
the reshape method on the gradient network, central differences of the
gradient, and closed forms."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error


def fd_of_grad(net, of, wrt, wrt2, values, eps=1e-6):
    """d grad_wrt / d wrt2 by central differences of net.grad."""
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
    point = base[wrt2]
    out = np.zeros(np.shape(base[wrt]) + point.shape)
    for idx in np.ndindex(*point.shape):
        plus, minus = dict(base), dict(base)
        plus[wrt2], minus[wrt2] = point.copy(), point.copy()
        plus[wrt2][idx] += eps
        minus[wrt2][idx] -= eps
        g = net.grad(of, wrt, plus)[wrt] - net.grad(of, wrt, minus)[wrt]
        out[(..., *idx)] = g / (2 * eps)
    return out


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_hessians_match_the_reshape_method_and_differences_of_the_gradient(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    targets = [*network.params, *network.inputs][:3]
    for w in targets:
        for w2 in targets:
            H = network.hessian(net.of, w, vals, wrt2=w2)
            assert H.shape == network.shape(w) + network.shape(w2)
            ref = tc.reshape_hessian(network, net.of, w, vals, wrt2=w2)
            assert max_relative_error(H.array, ref) < 1e-10
            assert max_relative_error(H.array, fd_of_grad(network, net.of, w, w2, vals)) < 1e-5
            if w2 == w:  # symmetric
                k = len(network.shape(w))
                axes = (*range(k, 2 * k), *range(k))
                np.testing.assert_allclose(H.array, H.array.transpose(axes), atol=1e-10)


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_hvp_equals_the_hessian_times_the_vector(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    rng = np.random.default_rng(seed)
    for w in network.params[:2]:
        v = rng.standard_normal(network.shape(w))
        H = network.hessian(net.of, w, vals).array
        k = v.ndim
        expected = np.tensordot(H, v, axes=(list(range(k, 2 * k)), list(range(k))))
        np.testing.assert_allclose(network.hvp(net.of, w, v, vals), expected, atol=1e-10)


def test_article_hessian_is_a_delta_times_a_block():
    net = tc.parse(tc.ARTICLE)
    n, m = 50, 4
    vals = net.random_values(seed=0, n=n, m=m)
    H = net.hessian("C", "W", vals)
    assert H.indices == ("n", "m", "n'", "m'")
    assert H.deltas == (("n", "n'"),)
    assert H.stored_entries() <= n * m * m  # the n×m×m block, never (n·m)²
    # closed form: ∂²C/∂W[i,j]∂W[k,l] = δ(i,k) x_j x_l [σ'(z)² + (a − y) σ''(z)]
    e = net.evaluate(vals)
    a, y, x = e["a"], e["y"], e["x"]
    s1 = a * (1 - a)
    s2 = s1 * (1 - 2 * a)
    block = (s1**2 + (a - y) * s2)[:, None, None] * np.outer(x, x)[None]
    expected = np.einsum("ijl,ik->ijkl", block, np.eye(n))
    np.testing.assert_allclose(H.array, expected, rtol=1e-12, atol=1e-15)


def test_quadratic_form_hessian_is_a_plus_a_transpose():
    net = tc.parse("dim n = 5\ninput x[n]\nparam A[n, n]\nf = x[i] * A[i, j] * x[j]")
    vals = net.random_values(seed=1)
    H = net.hessian("f", "x", vals)
    np.testing.assert_allclose(H.array, vals["A"] + vals["A"].T, rtol=1e-14)
    mixed = net.hessian("f", "x", vals, wrt2="A").array  # d²f/dx_k dA_ij
    expected = np.einsum("ki,j->kij", np.eye(5), vals["x"]) + np.einsum(
        "kj,i->kij", np.eye(5), vals["x"]
    )
    np.testing.assert_allclose(mixed, expected, rtol=1e-14)


def test_logistic_regression_hessian_is_xt_diag_x():
    net = tc.parse(
        "dim s = 20\ndim f = 4\ninput X[s, f]\ninput y[s]\nparam w[f]\n"
        "z[n] = X[n, j] * w[j]\np = sigmoid(z)\n"
        "L = -sum(y * log(p) + (1 - y) * log(1 - p))\n"
    )
    vals = net.random_values(seed=3)
    vals["y"] = (vals["y"] > 0).astype(float)
    p = 1 / (1 + np.exp(-(vals["X"] @ vals["w"])))
    expected = vals["X"].T @ np.diag(p * (1 - p)) @ vals["X"]
    np.testing.assert_allclose(net.hessian("L", "w", vals).array, expected, rtol=1e-10)


def test_second_derivatives_of_relu_and_abs_are_zero_almost_everywhere():
    net = tc.parse("dim n = 3\ninput x[n]\nf = sum(relu(x) * x + abs(x))")
    vals = {"x": np.array([-1.5, 0.5, 2.0])}
    # f = Σ relu(x) x + |x|: d²/dx² = 2·[x > 0] on the diagonal
    np.testing.assert_allclose(net.hessian("f", "x", vals).array, np.diag([0.0, 2.0, 2.0]))


def test_hessian_errors():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values()
    with pytest.raises(tc.DerivativeError, match=r"grad needs a scalar, but a has shape"):
        net.hessian("a", "W", vals)
    with pytest.raises(
        tc.ShapeError, match=r"the vector has shape \(2,\) but W has shape \(4, 3\)"
    ):
        net.hvp("C", "W", np.zeros(2), vals)
    diag = tc.parse("dim n = 2\nparam A[n, n]\nf = sum(sigmoid(A[i, i]))")
    with pytest.raises(
        tc.DerivativeError,
        match=r"second derivatives through the diagonal of A \(line 3, which defines f\)",
    ):
        diag.hessian("f", "A", diag.random_values())
