"""Second order: Hessians (of scalars and of tensors), mixed blocks and
Hessian-vector products against the independent reference (dense jets,
:mod:`tensorchain.reference.jets`), central differences of the gradient or Jacobian,
JAX when installed, and closed forms; one regression test per reported fault."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error


def fd_of_jacobian(net, of, wrt, wrt2, values, eps=1e-6):
    """d (d of / d wrt) / d wrt2 by central differences of net.jacobian."""
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
    point = base[wrt2]
    first = net.jacobian(of, wrt, base).array
    out = np.zeros(first.shape + point.shape)
    for idx in np.ndindex(*point.shape):
        plus, minus = dict(base), dict(base)
        plus[wrt2], minus[wrt2] = point.copy(), point.copy()
        plus[wrt2][idx] += eps
        minus[wrt2][idx] -= eps
        g = net.jacobian(of, wrt, plus).array - net.jacobian(of, wrt, minus).array
        out[(..., *idx)] = g / (2 * eps)
    return out


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_hessians_match_the_reference_and_differences_of_the_gradient(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    targets = [*network.params, *network.inputs][:3]
    for w in targets:
        for w2 in targets:
            H = network.hessian(net.of, w, vals, wrt2=w2)
            assert H.shape == network.shape(w) + network.shape(w2)
            ref = tc.reshape_hessian(network, net.of, w, vals, wrt2=w2)
            assert max_relative_error(H.array, ref) < 1e-10
            assert max_relative_error(H.array, fd_of_jacobian(network, net.of, w, w2, vals)) < 1e-5
            if w2 == w:  # symmetric
                k = len(network.shape(w))
                axes = (*range(k, 2 * k), *range(k))
                np.testing.assert_allclose(H.array, H.array.transpose(axes), atol=1e-10)


@given(net=networks(max_layers=3, max_size=2), seed=st.integers(0, 2**16))
def test_hessians_of_a_tensor_output(net, seed):
    """d²h/dw dw2 of the last hidden activation h (a tensor)."""
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    of = [o for o in network.outputs if network.info(o).dims][-1]
    targets = [*network.params, *network.inputs][:2]
    for w in targets:
        for w2 in targets:
            H = network.hessian(of, w, vals, wrt2=w2)
            assert H.shape == network.shape(of) + network.shape(w) + network.shape(w2)
            ref = tc.reshape_hessian(network, of, w, vals, wrt2=w2)
            assert max_relative_error(H.array, ref) < 1e-10
            assert max_relative_error(H.array, fd_of_jacobian(network, of, w, w2, vals)) < 1e-5


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_hvp_equals_the_hessian_times_the_vector(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    rng = np.random.default_rng(seed)
    for w in network.params[:2]:
        v = rng.standard_normal(network.shape(w))
        H = tc.reshape_hessian(network, net.of, w, vals)
        k = v.ndim
        expected = np.tensordot(H, v, axes=(list(range(k, 2 * k)), list(range(k))))
        np.testing.assert_allclose(network.hvp(net.of, w, v, vals), expected, atol=1e-10)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_hessians_match_jax(net, seed):
    """jax.jacfwd(jax.jacrev(...)) of tensorchain's forward pass run on JAX arrays."""
    import jax

    jax.config.update("jax_enable_x64", True)
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    w = [*network.params, *network.inputs][0]

    on_jax = {k: jax.numpy.asarray(v) for k, v in vals.items()}

    def f(x):
        return network.evaluate({**on_jax, w: x}, check_finite=False)[net.of]

    H = np.asarray(jax.jacfwd(jax.jacrev(f))(jax.numpy.asarray(vals[w])))
    assert max_relative_error(network.hessian(net.of, w, vals).array, H) < 1e-10


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


def test_second_derivatives_through_max_follow_the_selected_entry():
    """f = max_j(x_j)² + Σ x: the Hessian is 2 on the maximum's diagonal entry
    (the share of the maximum is piecewise constant: its derivative is 0, as JAX has it)."""
    net = tc.parse("dim n = 3\nparam x[n]\nm = max(x[j], j)\nf = m ^ 2 + sum(x)")
    vals = {"x": np.array([0.3, 1.5, -2.0])}
    np.testing.assert_allclose(net.hessian("f", "x", vals).array, np.diag([0.0, 2.0, 0.0]))
    np.testing.assert_allclose(net.hvp("f", "x", np.ones(3), vals), [0.0, 2.0, 0.0])


# --- regression tests: each failed before derivatives became graph transformations


COPIES = [
    "y = x",
    "y = x ^ 1",
    "y = 1 * x",
    "y = x + 0",
    "y = (x)",
    "y[i] = x[i]",
]


@pytest.mark.parametrize("copy", COPIES)
def test_hvp_and_hessian_through_a_copy(copy):
    """A statement that only renames a tensor was dropped: hvp returned zeros
    and hessian failed on a line the user never wrote."""
    net = tc.parse(f"dim n = 3\nparam x[n]\n{copy}\nz = y * y\ns = sum(z)")
    vals = {"x": np.array([1.0, -2.0, 0.5])}
    np.testing.assert_allclose(net.hessian("s", "x", vals).array, 2 * np.eye(3))
    np.testing.assert_allclose(net.hvp("s", "x", np.array([1.0, 2.0, 3.0]), vals), [2, 4, 6])


def test_hvp_through_a_copy_before_a_stack_of_layers_and_the_article_with_a_copy():
    stack = tc.parse(
        "dim n = 3\ninput x[n]\nparam W[n, n]\nh0 = x\n"
        "z1[i] = W[i, j] * h0[j]\nh1 = tanh(z1)\nz2[i] = W[i, j] * h1[j]\nh2 = tanh(z2)\n"
        "L = sum(h2 ^ 2)"
    )
    article = tc.parse(
        tc.ARTICLE.replace("a = sigmoid(z)", "a = sigmoid(z)\na2 = a").replace(
            "(a - y)", "(a2 - y)"
        )
    )
    for net, of, w in ((stack, "L", "x"), (stack, "L", "W"), (article, "C", "W")):
        vals = net.random_values(seed=4)
        v = np.random.default_rng(0).standard_normal(vals[w].shape)
        H = tc.reshape_hessian(net, of, w, vals)
        k = v.ndim
        expected = np.tensordot(H, v, axes=(list(range(k, 2 * k)), list(range(k))))
        assert np.abs(expected).max() > 1e-3  # not trivially zero
        np.testing.assert_allclose(net.hvp(of, w, v, vals), expected, rtol=1e-10, atol=1e-12)
        assert max_relative_error(net.hessian(of, w, vals).array, H) < 1e-12


def test_a_constant_diagonal_does_not_block_the_hessian():
    net = tc.parse("dim n = 3\ninput A[n, n]\nparam x[n]\nf = x[i] * x[i] + A[j, j]")
    np.testing.assert_allclose(net.hessian("f", "x", net.random_values()).array, 2 * np.eye(3))


def test_hessian_through_the_trace_of_a_parameter_is_two_delta_delta():
    net = tc.parse("dim n = 3\nparam X[n, n]\nt = X[i, i]\nf = t ^ 2")
    H = net.hessian("f", "X", net.random_values())
    assert set(H.deltas) == {("n", "n'"), ("n''", "n'''")}
    assert H.stored_entries() == 0  # 2·δ(n, n')·δ(n'', n'''): a coefficient and deltas
    np.testing.assert_allclose(H.array, 2 * np.einsum("ij,kl->ijkl", np.eye(3), np.eye(3)))
    diag = tc.parse("dim n = 3\nparam V[n, n]\nv[a] = V[a, a]\nf = sum(sin(v))")
    vals = diag.random_values(seed=2)
    expected = np.zeros((3, 3, 3, 3))
    for a in range(3):
        expected[a, a, a, a] = -np.sin(vals["V"][a, a])
    np.testing.assert_allclose(diag.hessian("f", "V", vals).array, expected, atol=1e-15)


def test_second_derivative_of_softmax():
    """d²p_i/dx_j dx_k = p_i [(δ_ij − p_j)(δ_ik − p_k) − p_j (δ_jk − p_k)]."""
    net = tc.parse("dim n = 5\nparam x[n]\np = softmax(x, n)")
    vals = net.random_values(seed=7)
    p = np.exp(vals["x"]) / np.exp(vals["x"]).sum()
    eye = np.eye(5)
    expected = np.einsum("i,ij,ik->ijk", p, eye - p, eye - p) - np.einsum(
        "i,j,jk->ijk", p, p, eye - p
    )
    D = net.hessian("p", "x", vals)
    assert D.shape == (5, 5, 5)
    np.testing.assert_allclose(D.array, expected, atol=1e-15)


def test_a_hessian_is_finite_where_an_unrelated_forward_value_is_infinite():
    """f = Σ (x·u + x²) is linear in x through u: its Hessian is 2I even where u
    is infinite (once NaN: a structural zero was multiplied by x·u = inf)."""
    net = tc.parse("dim n = 2\nparam x[n]\ninput u[n]\nf = sum(x * u + x ^ 2)")
    vals = {"x": np.array([1.0, 2.0]), "u": np.array([np.inf, 1.0])}
    H = net.hessian("f", "x", vals, check_finite=False)
    np.testing.assert_array_equal(H.array, 2 * np.eye(2))
    np.testing.assert_array_equal(net.hvp("f", "x", np.ones(2), vals, check_finite=False), [2, 2])


def test_user_names_like_internal_ones_do_not_collide():
    net = tc.parse(
        "dim n = 2\nparam x[n]\nparam __g_x[n]\ninput __v[n]\nparam o0[n]\n"
        "__x_1 = x * __g_x * __v\n__s = sum(__x_1 * x * o0)"
    )
    vals = net.random_values(seed=1)
    for w2 in ("x", "__g_x", "o0"):
        ref = tc.reshape_hessian(net, "__s", "x", vals, wrt2=w2)
        assert max_relative_error(net.hessian("__s", "x", vals, wrt2=w2).array, ref) < 1e-12
    v = np.array([1.0, -1.0])
    np.testing.assert_allclose(
        net.hvp("__s", "x", v, vals), tc.reshape_hessian(net, "__s", "x", vals) @ v, rtol=1e-12
    )


def test_a_tensor_used_by_many_statements():
    """x used by 120 statements: its adjoint is a sum of 121 terms (once refused
    as an expression nesting more than 100 levels)."""
    lines = ["dim n = 2", "param x[n]", "s0 = x"]
    lines += [f"s{k} = s{k - 1} + x ^ 2" for k in range(1, 121)]
    net = tc.parse("\n".join([*lines, "L = sum(s120)"]))
    vals = {"x": np.array([0.5, -1.0])}
    np.testing.assert_allclose(net.hessian("L", "x", vals).array, 240 * np.eye(2))
    np.testing.assert_allclose(net.hvp("L", "x", np.ones(2), vals), [240, 240])


def test_hessian_errors():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values()
    with pytest.raises(tc.DerivativeError, match=r"hvp needs a scalar, but a has shape \[n\]"):
        net.hvp("a", "W", np.zeros((4, 3)), vals)
    with pytest.raises(
        tc.ShapeError, match=r"the vector has shape \(2,\) but W has shape \(4, 3\)"
    ):
        net.hvp("C", "W", np.zeros(2), vals)
    with pytest.raises(tc.DerivativeError, match=r"unknown tensor 'V'"):
        net.hessian("C", "W", vals, wrt2="V")


def test_zero_hessian_and_hvp_where_of_does_not_depend_on_wrt():
    net = tc.parse("dim n = 2\nparam x[n]\nparam y[n]\nf = sum(x ^ 2)")
    vals = net.random_values()
    H = net.hessian("f", "y", vals)
    assert H.shape == (2, 2) and not H.terms
    np.testing.assert_array_equal(H.array, np.zeros((2, 2)))
    np.testing.assert_array_equal(net.hvp("f", "y", np.ones(2), vals), np.zeros(2))
    np.testing.assert_array_equal(net.hessian("f", "x", vals, wrt2="y").array, np.zeros((2, 2)))


def test_complex_values_with_a_size_one_dim():
    """Once a numpy UFuncTypeError (complex output cast to float64) at n = 1."""
    net = tc.parse(
        "dim n = 1\nparam W1[n]\nparam W2[n]\nz[i, j] = W2[i] * W1[j]\nL = sum(z) + sum(W1 ^ 2)"
    )
    vals = {k: a + 0.5j for k, a in net.random_values(seed=2).items()}
    np.testing.assert_allclose(net.hessian("L", "W1", vals).array, [[2.0]])
    np.testing.assert_allclose(net.hessian("L", "W1", vals, wrt2="W2").array, [[1.0]])
    np.testing.assert_allclose(net.hvp("L", "W1", np.array([1.0 + 1j]), vals), [2.0 + 2j])


def test_a_complex_sum_whose_first_term_is_a_real_constant():
    """1 − x at n = 1 once summed in place into the real constant's array."""
    net = tc.parse("dim n = 1\ninput x[n]\nt[i] = 1 - x[i]\nh = sigmoid(t)\nL = sum(h ^ 2)")
    vals = {"x": np.array([0.5j])}
    np.testing.assert_allclose(net.evaluate(vals)["t"], [1 - 0.5j])
    ref = tc.reshape_hessian(net, "L", "x", vals)
    np.testing.assert_allclose(net.hessian("L", "x", vals).array, ref, rtol=1e-12)


def test_hvp_by_an_intermediate_tensor():
    """wrt may be a defined tensor (once a KeyError in the compiled hvp)."""
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=2)
    v = np.arange(1.0, 5.0)
    expected = tc.reshape_hessian(net, "C", "z", vals) @ v
    np.testing.assert_allclose(net.hvp("C", "z", v, vals), expected, rtol=1e-12)


def test_a_products_vector_is_checked_like_the_values():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values()
    with pytest.raises(tc.ValuesError, match=r"the hvp vector has dtype <U3; it must hold numbers"):
        net.hvp("C", "W", "abc", vals)
    with pytest.raises(tc.ValuesError, match=r"the hvp vector is complex but the values are real"):
        net.hvp("C", "W", 1j * np.ones((4, 3)), vals)
    with pytest.raises(tc.ValuesError, match=r"the hvp vector has non-finite entries"):
        net.hvp("C", "W", np.full((4, 3), np.nan), vals, strict=True)
    with pytest.warns(tc.NonFiniteWarning, match=r"the hvp vector has non-finite entries"):
        net.hvp("C", "W", np.full((4, 3), np.nan), vals)
    with pytest.raises(
        tc.DerivativeError, match=r"hvp takes one wrt tensor \(a str\), got \['W', 'b'\]"
    ):
        net.hvp("C", ["W", "b"], np.ones(3), vals)
    with pytest.raises(tc.ValuesError, match=r"the Gauss–Newton vector is complex"):
        net.gnvp("C", "a", "W", 1j * np.ones((4, 3)), vals)


def test_functions_along_indices_of_complex_values():
    """softmax, log_softmax and logsumexp of complex values (once a TypeError:
    the limit at +inf tested with np.isposinf, which complex values lack)."""
    net = tc.parse(
        "dim n = 3\nparam x[n]\np = softmax(x, n)\nq[i] = log_softmax(x[i], i)\n"
        "r = sum(p * q)\nL = r + logsumexp(x[j], j)"
    )
    vals = {"x": np.array([0.3 + 0.2j, -0.5 + 0.1j, 1.0 - 0.3j])}
    ref = tc.reshape_hessian(net, "L", "x", vals)
    assert max_relative_error(net.hessian("L", "x", vals).array, ref) < 1e-12
