"""Linear algebra: inv, det, logdet, cholesky, trace, solve and delta, against
identities of the Matrix Cookbook (Petersen & Pedersen, 2012, chapter 2,
written here from the identities, each checked against its closed form),
the independent reference (dense jets from the defining identities), central
differences, and JAX when installed; first and second order, batched and not."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

N = 3
RNG = np.random.default_rng(7)


def well_conditioned(n: int, rng=RNG) -> np.ndarray:
    """3 I plus a small non-symmetric perturbation: invertible, far from singular."""
    return 3.0 * np.eye(n) + 0.4 * rng.standard_normal((n, n))


def spd(n: int, rng=RNG) -> np.ndarray:
    """Q diag(d) Qᵀ with d in [0.5, 2]: symmetric positive definite."""
    q, _ = np.linalg.qr(rng.standard_normal((n, n)))
    return q @ np.diag(rng.uniform(0.5, 2.0, n)) @ q.T


def values(net, spd_names=(), seed=0):
    rng = np.random.default_rng(seed)
    vals = net.random_values(seed=seed)
    for name, v in vals.items():
        if v.ndim >= 2 and v.shape[-1] == v.shape[-2]:
            make = spd if name in spd_names else well_conditioned
            batch = int(np.prod(v.shape[:-2]))
            vals[name] = np.stack([make(v.shape[-1], rng) for _ in range(batch)]).reshape(v.shape)
    return vals


inv = np.linalg.inv
det = np.linalg.det
HEAD = f"dim n = {N}\nparam X[n, n]\ninput A[n, n]\ninput B[n, n]\ninput C[n, n]\n"
HEAD += "input a[n]\ninput b[n]\n"

# (name, statements defining the scalar f, closed form of ∂f/∂X from the values)
COOKBOOK = [
    ("49: ∂det(X)/∂X = det(X) X⁻ᵀ", "f = det(X)", lambda v: det(v["X"]) * inv(v["X"]).T),
    (
        "51: ∂det(AXB)/∂X = det(AXB) X⁻ᵀ",
        "M[i, l] = A[i, j] * X[j, k] * B[k, l]\nf = det(M)",
        lambda v: det(v["A"] @ v["X"] @ v["B"]) * inv(v["X"]).T,
    ),
    (
        "53: ∂det(X²)/∂X = 2 det(X²) X⁻ᵀ",
        "M[i, k] = X[i, j] * X[j, k]\nf = det(M)",
        lambda v: 2 * det(v["X"] @ v["X"]) * inv(v["X"]).T,
    ),
    (
        "54: ∂det(XᵀAX)/∂X = 2 det(XᵀAX) X⁻ᵀ",
        "M[i, l] = X[j, i] * A[j, k] * X[k, l]\nf = det(M)",
        lambda v: 2 * det(v["X"].T @ v["A"] @ v["X"]) * inv(v["X"]).T,
    ),
    ("57: ∂ln|det X|/∂X = X⁻ᵀ", "f = logdet(X)", lambda v: inv(v["X"]).T),
    (
        "55: ∂ln|det XᵀX|/∂X = 2 X⁻ᵀ",
        "M[i, k] = X[j, i] * X[j, k]\nf = logdet(M)",
        lambda v: 2 * inv(v["X"]).T,
    ),
    (
        "61: ∂aᵀX⁻¹b/∂X = −X⁻ᵀ a bᵀ X⁻ᵀ",
        "Y = inv(X)\nf = a[i] * Y[i, j] * b[j]",
        lambda v: -inv(v["X"]).T @ np.outer(v["a"], v["b"]) @ inv(v["X"]).T,
    ),
    (
        "61 through solve: ∂aᵀ(X⁻¹b)/∂X",
        "y[j] = solve(X[i, j], b[i], i, j)\nf = a[j] * y[j]",
        lambda v: -inv(v["X"]).T @ np.outer(v["a"], v["b"]) @ inv(v["X"]).T,
    ),
    (
        "62: ∂det(X⁻¹)/∂X = −det(X⁻¹) X⁻ᵀ",
        "Y = inv(X)\nf = det(Y)",
        lambda v: -det(inv(v["X"])) * inv(v["X"]).T,
    ),
    (
        "63: ∂Tr(AX⁻¹B)/∂X = −(X⁻¹BAX⁻¹)ᵀ",
        "Y = inv(X)\nf = A[i, j] * Y[j, k] * B[k, i]",
        lambda v: -(inv(v["X"]) @ v["B"] @ v["A"] @ inv(v["X"])).T,
    ),
    (
        "64: ∂Tr((X + A)⁻¹)/∂X = −((X + A)⁻² )ᵀ",
        "S = X + A\nY = inv(S)\nf = trace(Y)",
        lambda v: -(inv(v["X"] + v["A"]) @ inv(v["X"] + v["A"])).T,
    ),
    ("99: ∂Tr(X)/∂X = I", "f = trace(X)", lambda v: np.eye(N)),
    ("100: ∂Tr(XA)/∂X = Aᵀ", "f = X[i, j] * A[j, i]", lambda v: v["A"].T),
    ("101: ∂Tr(AXB)/∂X = AᵀBᵀ", "f = A[i, j] * X[j, k] * B[k, i]", lambda v: v["A"].T @ v["B"].T),
    ("102: ∂Tr(AXᵀB)/∂X = BA", "f = A[i, j] * X[k, j] * B[k, i]", lambda v: v["B"] @ v["A"]),
    ("103: ∂Tr(XᵀA)/∂X = A", "f = X[j, i] * A[j, i]", lambda v: v["A"]),
    ("106: ∂Tr(X²)/∂X = 2Xᵀ", "f = X[i, j] * X[j, i]", lambda v: 2 * v["X"].T),
    (
        "107: ∂Tr(X²B)/∂X = (XB + BX)ᵀ",
        "f = X[i, j] * X[j, k] * B[k, i]",
        lambda v: (v["X"] @ v["B"] + v["B"] @ v["X"]).T,
    ),
    (
        "108: ∂Tr(XᵀBX)/∂X = BX + BᵀX",
        "f = X[j, i] * B[j, k] * X[k, i]",
        lambda v: v["B"] @ v["X"] + v["B"].T @ v["X"],
    ),
    (
        "111: ∂Tr(XBXᵀ)/∂X = XBᵀ + XB",
        "f = X[i, j] * B[j, k] * X[i, k]",
        lambda v: v["X"] @ v["B"].T + v["X"] @ v["B"],
    ),
    (
        "113: ∂Tr(AXBX)/∂X = AᵀXᵀBᵀ + BᵀXᵀAᵀ",
        "f = A[i, j] * X[j, k] * B[k, l] * X[l, i]",
        lambda v: v["A"].T @ v["X"].T @ v["B"].T + v["B"].T @ v["X"].T @ v["A"].T,
    ),
    ("114: ∂Tr(XᵀX)/∂X = 2X", "f = X[i, j] * X[i, j]", lambda v: 2 * v["X"]),
    (
        "115: ∂Tr(BᵀXᵀCXB)/∂X = CᵀXBBᵀ + CXBBᵀ",
        "f = B[j, i] * X[k, j] * C[k, l] * X[l, m] * B[m, i]",
        lambda v: (v["C"].T + v["C"]) @ v["X"] @ v["B"] @ v["B"].T,
    ),
    (
        "117: ∂Tr(AXBXᵀC)/∂X = AᵀCᵀXBᵀ + CAXB",
        "f = A[i, j] * X[j, k] * B[k, l] * X[m, l] * C[m, i]",
        lambda v: v["A"].T @ v["C"].T @ v["X"] @ v["B"].T + v["C"] @ v["A"] @ v["X"] @ v["B"],
    ),
    (
        "121: ∂Tr(X³)/∂X = 3(X²)ᵀ",
        "f = X[i, j] * X[j, k] * X[k, i]",
        lambda v: 3 * (v["X"] @ v["X"]).T,
    ),
    (
        "diag(v) with delta: ∂ ln|det(A + diag v)| / ∂v = diag((A + diag v)⁻¹)",
        "D[i, j] = A[i, j] + a[i] * delta[i, j]\nf = logdet(D)",
        None,  # by a, below
    ),
]


@pytest.mark.parametrize(("name", "spec", "closed"), COOKBOOK, ids=[c[0][:40] for c in COOKBOOK])
def test_cookbook_gradients(name, spec, closed):
    net = tc.parse(HEAD + spec + "\n")
    vals = values(net)
    wrt = "X" if closed is not None else "a"
    g = net.grad("f", wrt, vals)[wrt]
    expected = closed(vals) if closed is not None else np.diag(inv(vals["A"] + np.diag(vals["a"])))
    np.testing.assert_allclose(g, expected, rtol=1e-10, atol=1e-12)
    assert max_relative_error(g, tc.reshape_method(net, "f", wrt, vals)) < 1e-11
    assert max_relative_error(g, finite_differences(net, "f", wrt, vals)) < 1e-6


@pytest.mark.parametrize(("name", "spec", "closed"), COOKBOOK, ids=[c[0][:40] for c in COOKBOOK])
def test_cookbook_second_derivatives(name, spec, closed):
    net = tc.parse(HEAD + spec + "\n")
    vals = values(net, seed=1)
    wrt = "X" if closed is not None else "a"
    for w2 in (wrt, "A"):
        H = net.hessian("f", wrt, vals, wrt2=w2)
        assert max_relative_error(H.array, tc.reshape_hessian(net, "f", wrt, vals, w2)) < 1e-10


def test_closed_form_hessians():
    """∂²ln|det X|/∂X_ij∂X_kl = −X⁻¹_jk X⁻¹_li (Cookbook 57, differentiated
    with 60), and the Hessian of aᵀX⁻¹b."""
    net = tc.parse(HEAD + "f = logdet(X)\nY = inv(X)\ng = a[i] * Y[i, j] * b[j]\n")
    vals = values(net, seed=3)
    y = inv(vals["X"])
    np.testing.assert_allclose(
        net.hessian("f", "X", vals).array, -np.einsum("jk,li->ijkl", y, y), rtol=1e-12
    )
    # ∂²(aᵀX⁻¹b)/∂X_ij∂X_kl = (X⁻ᵀa)_k (X⁻¹)_li (X⁻¹b)_j + (X⁻ᵀa)_i (X⁻¹)_jk (X⁻¹b)_l
    u, w = y.T @ vals["a"], y @ vals["b"]
    expected = np.einsum("k,li,j->ijkl", u, y, w) + np.einsum("i,jk,l->ijkl", u, y, w)
    np.testing.assert_allclose(net.hessian("g", "X", vals).array, expected, rtol=1e-11)


def test_gaussian_negative_log_likelihood():
    """½ ln|Σ| + ½ (x − μ)ᵀ Σ⁻¹ (x − μ): ∂/∂Σ = ½ (Σ⁻¹ − Σ⁻¹ r rᵀ Σ⁻¹) for
    symmetric Σ (Cookbook 8.1.1), ∂/∂μ = −Σ⁻¹ r."""
    net = tc.parse(
        "dim n = 4\nparam S[n, n]\nparam mu[n]\ninput x[n]\nr = x - mu\n"
        "z[j] = solve(S[i, j], r[i], i, j)\nld = logdet(S)\nL = 0.5 * ld + 0.5 * r[j] * z[j]\n"
    )
    vals = values(net, spd_names=("S",), seed=4)
    S, r = vals["S"], vals["x"] - vals["mu"]
    Si = inv(S)
    g = net.grad("L", ["S", "mu"], vals)
    np.testing.assert_allclose(g["S"], 0.5 * (Si - Si @ np.outer(r, r) @ Si), rtol=1e-10)
    np.testing.assert_allclose(g["mu"], -Si @ r, rtol=1e-10)
    assert (
        max_relative_error(
            net.hessian("L", "S", vals).array, tc.reshape_hessian(net, "L", "S", vals)
        )
        < 1e-10
    )


def test_cholesky_log_determinant_and_solves():
    """ln det A = 2 Σ ln L_ii (its gradient A⁻¹ for symmetric A), and L⁻¹ b."""
    net = tc.parse(
        "dim n = 4\nparam A[n, n]\ninput b[n]\nLc = cholesky(A)\n"
        "ld[i] = Lc[i, j] * delta[i, j]\nf = 2 * sum(log(ld))\n"
        "y[j] = solve(Lc[i, j], b[i], i, j)\ng = sum(y ^ 2)\n"
    )
    vals = values(net, spd_names=("A",), seed=5)
    A = vals["A"]
    np.testing.assert_allclose(net.evaluate(vals)["f"], np.linalg.slogdet(A)[1], rtol=1e-12)
    np.testing.assert_allclose(net.grad("f", "A", vals)["A"], inv(A), rtol=1e-10)
    for of in ("f", "g"):
        assert (
            max_relative_error(net.grad(of, "A", vals)["A"], finite_differences(net, of, "A", vals))
            < 1e-6
        )
        H = net.hessian(of, "A", vals).array
        assert max_relative_error(H, tc.reshape_hessian(net, of, "A", vals)) < 1e-9


def test_batched_matrices():
    net = tc.parse(
        "dim s = 3\ndim n = 3\nparam X[s, n, n]\ninput b[s, n]\n"
        "x[t, j] = solve(X[t, i, j], b[t, i], i, j)\nd[t] = logdet(X[t, i, j], i, j)\n"
        "Y[t, i, j] = inv(X[t, i, j], i, j)\nL = sum(x ^ 2) + sum(d) + sum(Y * Y)\n"
    )
    vals = values(net, seed=6)
    g = net.grad("L", "X", vals)["X"]
    for t in range(3):  # each batch entry on its own
        one = tc.parse(
            "dim n = 3\nparam X[n, n]\ninput b[n]\nx[j] = solve(X[i, j], b[i], i, j)\n"
            "Y = inv(X)\nL = sum(x ^ 2) + logdet(X) + sum(Y * Y)\n"
        )
        single = {"X": vals["X"][t], "b": vals["b"][t]}
        np.testing.assert_allclose(g[t], one.grad("L", "X", single)["X"], rtol=1e-11)
    H = net.hessian("L", "X", vals)
    assert ("s", "s'") in H.deltas  # batch entries do not mix
    assert max_relative_error(H.array, tc.reshape_hessian(net, "L", "X", vals)) < 1e-10


def test_the_jacobian_of_an_inverse_is_two_factors():
    n = 40
    net = tc.parse(f"dim n = {n}\nparam X[n, n]\nY[i, j] = inv(X[i, j], i, j)")
    vals = values(net)
    J = net.jacobian("Y", "X", vals)
    assert J.stored_entries() <= 2 * n * n  # −Y ⊗ Yᵀ: never the n⁴ array
    small = tc.parse("dim n = 3\nparam X[n, n]\nY[i, j] = inv(X[i, j], i, j)")
    sv = values(small)
    np.testing.assert_allclose(
        small.jacobian("Y", "X", sv).array,
        -np.einsum("ia,bj->ijab", inv(sv["X"]), inv(sv["X"])),
        rtol=1e-12,
    )


def test_the_hessian_of_logdet_is_stored_in_order_n_squared():
    n = 32
    net = tc.parse(f"dim n = {n}\nparam X[n, n]\nf = logdet(X)")
    H = net.hessian("f", "X", values(net))
    assert H.stored_entries() <= 4 * n * n


def test_singular_matrices_are_a_values_error():
    net = tc.parse(
        "dim s = 2\ndim n = 2\nparam X[s, n, n]\nY[t, i, j] = inv(X[t, i, j], i, j)\nL = sum(Y)"
    )
    X = np.stack([np.eye(2), np.ones((2, 2))])  # the second is singular
    with pytest.raises(
        tc.ValuesError,
        match=r"inv of X\[t, i, j\] \(line 4: Y\[t, i, j\] = inv\(X\[t, i, j\], i, j\)\): the"
        r" matrix at t=1 is singular",
    ):
        net.grad("L", "X", {"X": X})
    chol = tc.parse("dim n = 2\nparam A[n, n]\nL = sum(cholesky(A))")
    with pytest.raises(tc.ValuesError, match=r"the matrix is not positive definite"):
        chol.grad("L", "A", {"A": -np.eye(2)})
    solve = tc.parse("dim n = 2\nparam A[n, n]\ninput b[n]\nx = solve(A, b)\nL = sum(x)")
    with pytest.raises(tc.ValuesError, match=r"solve of A .*: the matrix is singular"):
        solve.grad("L", "A", {"A": np.zeros((2, 2)), "b": np.ones(2)})


def test_spec_errors_of_matrix_functions():
    cases = [
        (
            "dim n = 2\ndim m = 3\nparam X[n, m]\nY[i, j] = inv(X[i, j], i, j)",
            r"inv needs a square matrix, but index 'i' is n=2 \(axis 0 of X\) and index 'j' is m=3",
        ),
        ("dim n = 2\nparam x[n]\nd = det(x)", r"det needs a matrix, but x has 1 axis"),
        ("dim n = 2\nparam X[n, n]\nY[i, j] = inv(X[i, j], i)", r"inv runs along two indices"),
        (
            "dim n = 2\nparam X[n, n]\nY = inv(X, n, n)",
            r"in whole-tensor form inv takes the last two axes",
        ),
        (
            "dim n = 2\nparam A[n, n]\nparam b[n]\nx[i] = solve(A[i, j], b[j], i, j)",
            r"the right side is indexed by the rows",
        ),
        ("dim n = 2\nparam delta[n]", r"'delta' is the built-in Kronecker delta"),
        ("dim n = 2\nparam v[n]\nD = v * delta", r"delta is the Kronecker delta"),
        ("dim n = 2\nparam v[n]\nD[i, j] = delta[i, j]", r"neither index indexes a tensor"),
    ]
    for spec, message in cases:
        with pytest.raises(tc.SpecError, match=message):
            tc.parse(spec)


def test_newton_step():
    """x − H⁻¹ g with solve: the step of a quadratic lands on its minimum."""
    net = tc.parse(
        "dim n = 3\ninput H[n, n]\ninput c[n]\nparam x[n]\n"
        "g[i] = H[i, j] * x[j] - c[i]\nstep[j] = solve(H[i, j], g[i], i, j)\nnew = x - step\n"
        "L = 0.5 * sum(new ^ 2)\n"
    )
    vals = values(net, spd_names=("H",), seed=8)
    new = net.evaluate(vals)["new"]
    np.testing.assert_allclose(new, np.linalg.solve(vals["H"], vals["c"]), rtol=1e-12)
    # the step does not depend on x: ∂L/∂x = 0 (x − H⁻¹(Hx − c) = H⁻¹c)
    np.testing.assert_allclose(net.grad("L", "x", vals)["x"], np.zeros(3), atol=1e-12)


@given(
    n=st.integers(1, 3),
    ops=st.lists(
        st.sampled_from(["inv", "cholesky", "square", "solve", "shift"]), min_size=1, max_size=3
    ),
    seed=st.integers(0, 2**16),
)
def test_drawn_matrix_networks(n, ops, seed):
    """Chains of matrix functions of a well-conditioned symmetric positive
    definite X (Q diag(d) Qᵀ, d in [0.5, 2]): gradients and Hessians against
    the reference and central differences."""
    lines = [f"dim n = {n}", "param X[n, n]", "input v[n]", "M0 = 2 * X"]
    for k, op in enumerate(ops, start=1):
        prev, cur = f"M{k - 1}", f"M{k}"
        if op == "inv":
            lines.append(f"{cur} = inv({prev})")
        elif op == "cholesky":
            lines.append(f"C{k}[i, j] = {prev}[i, l] * {prev}[j, l] + delta[i, j]")
            lines.append(f"{cur} = cholesky(C{k})")
        elif op == "square":
            lines.append(f"{cur}[i, j] = {prev}[i, l] * {prev}[l, j] + delta[i, j]")
        elif op == "solve":
            lines.append(f"w{k}[j] = solve({prev}[i, j], v[i], i, j)")
            lines.append(f"{cur}[i, j] = {prev}[i, j] + 0.1 * w{k}[i] * w{k}[j]")
        else:
            lines.append(f"{cur}[i, j] = {prev}[i, j] + 2 * delta[i, j]")
    last = f"M{len(ops)}"
    lines.append(f"P[i, j] = {last}[i, l] * {last}[j, l] + delta[i, j]")
    lines.append(f"L = logdet(P) + sum({last} ^ 2) + trace({last})")
    net = tc.parse("\n".join(lines) + "\n")
    rng = np.random.default_rng(seed)
    vals = {"X": spd(n, rng), "v": rng.standard_normal(n)}
    g = net.grad("L", "X", vals)["X"]
    assert max_relative_error(g, tc.reshape_method(net, "L", "X", vals)) < 1e-9
    assert max_relative_error(g, finite_differences(net, "L", "X", vals)) < 1e-5
    H = net.hessian("L", "X", vals).array
    assert max_relative_error(H, tc.reshape_hessian(net, "L", "X", vals)) < 1e-8


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_against_jax():
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    net = tc.parse(
        "dim n = 4\nparam X[n, n]\ninput b[n]\nY = inv(X)\nx[j] = solve(X[i, j], b[i], i, j)\n"
        "C = cholesky(X)\nL = logdet(X) + sum(Y ^ 2) + sum(x ^ 3) + sum(C ^ 2) + det(X)\n"
    )
    vals = values(net, spd_names=("X",), seed=9)

    def f(X):
        S = 0.5 * (X + X.T)
        C = jnp.linalg.cholesky(S)
        x = jnp.linalg.solve(X, vals["b"])
        return (
            jnp.linalg.slogdet(X)[1]
            + jnp.sum(jnp.linalg.inv(X) ** 2)
            + jnp.sum(x**3)
            + jnp.sum(C**2)
            + jnp.linalg.det(X)
        )

    X = jnp.asarray(vals["X"])
    assert max_relative_error(net.grad("L", "X", vals)["X"], np.asarray(jax.grad(f)(X))) < 1e-10
    H = np.asarray(jax.hessian(f)(X))
    assert max_relative_error(net.hessian("L", "X", vals).array, H) < 1e-9
    T = np.asarray(jax.jacfwd(jax.hessian(f))(X))
    assert max_relative_error(net.derivative("L", ("X",) * 3, vals).array, T) < 1e-8


def test_complex_values():
    """inv, det and solve are holomorphic (their derivatives hold for complex
    values); log |det| and the Cholesky factor are not, and are refused."""
    net = tc.parse(
        "dim n = 3\nparam X[n, n]\ninput b[n]\nd = det(X)\nx[j] = solve(X[i, j], b[i], i, j)\n"
        "Y = inv(X)\nf = d + sum(x ^ 2) + sum(Y)\n"
    )
    X = well_conditioned(3) + 0.3j * RNG.standard_normal((3, 3))
    vals = {"X": X, "b": RNG.standard_normal(3) + 0.2j}
    Xi = inv(X)
    x = Xi @ vals["b"]
    expected = det(X) * Xi.T - 2 * np.outer(Xi.T @ x, x) - Xi.T @ np.ones((3, 3)) @ Xi.T
    np.testing.assert_allclose(net.grad("f", "X", vals)["X"], expected, rtol=1e-10)
    for spec in ("l = logdet(X)", "C = cholesky(X)\nl = sum(C)"):
        bad = tc.parse(f"dim n = 2\nparam X[n, n]\n{spec}\n")
        with pytest.raises(tc.ValuesError, match=r"complex values: .* has no complex derivative"):
            bad.grad("l", "X", {"X": np.eye(2) + 0.1j})


def test_a_wrong_matrix_rule_is_caught_by_the_reference(monkeypatch):
    """The reference's matrix functions come from their defining identities
    (tensorchain.reference.matrix_jets), not from the rules: with the rules'
    inverse transposed (logdet's gradient X⁻¹ for X⁻ᵀ), the chain rule's
    gradient is wrong and the references' are not."""
    from tensorchain.calculus import matrix_rules
    from tensorchain.functions.matrix import inv_along

    text = "dim n = 3\ninput X_wrong[n, n]\nf_wrong = logdet(X_wrong)"
    x = well_conditioned(N, np.random.default_rng(3))
    vals = {"X_wrong": x}
    right = inv(x).T  # the Matrix Cookbook, eq. 57

    def transposed(a, axes):
        return np.swapaxes(inv_along(a, axes), *axes)

    transposed.__name__ = "inv_along"  # its twin for other libraries is found by name
    monkeypatch.setattr(matrix_rules, "inv_along", transposed)
    net = tc.parse(text)
    wrong = net.grad("f_wrong", "X_wrong", vals)["X_wrong"]
    assert max_relative_error(wrong, right.T) < 1e-12  # the wrong rule is used
    for reference in (
        tc.reshape_method(net, "f_wrong", "X_wrong", vals),
        tc.reference_derivative(net, "f_wrong", ("X_wrong",), vals),
    ):
        assert max_relative_error(reference, right) < 1e-12
        assert max_relative_error(wrong, reference) > 0.01
