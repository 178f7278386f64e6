"""Edges of the linear algebra (issue 18, the adversarial trial): a Kronecker
delta used as a value, singular matrices with numpy, dask and JAX values,
messages in the user's names, matrices singular to working precision, and
det's gradient (the adjugate) at rank-deficient matrices. References: numpy
with np.eye in place of the delta, cofactors from their definition, JAX,
central differences and the independent reference."""

import importlib.util
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.testing import finite_differences

HAS_JAX = importlib.util.find_spec("jax") is not None
HAS_DASK = importlib.util.find_spec("dask") is not None
#: Names tensorchain makes up, never meant for a user's eyes.
INTERNAL = re.compile(r"#\d|@|∂|\bt\d\b|\bo\d\b|\br'|\bc@|~\d|\.\d\b")


def matrix(n: int, rng, scale: float = 3.0) -> np.ndarray:
    return scale * np.eye(n) + 0.4 * rng.standard_normal((n, n))


def rank_deficient(n: int, rank: int, rng, complex_: bool = False) -> np.ndarray:
    """Q₁ diag(s) Q₂ᴴ with n − rank zero singular values."""

    def unitary():
        a = rng.standard_normal((n, n)) + (1j * rng.standard_normal((n, n)) if complex_ else 0)
        return np.linalg.qr(a)[0]

    s = np.concatenate([rng.uniform(0.5, 2.0, rank), np.zeros(n - rank)])
    return unitary() @ np.diag(s) @ unitary().conj().T


def cofactors(x: np.ndarray) -> np.ndarray:
    """∂ det X / ∂X[r, c] = (−1)^{r+c} det(X without row r and column c)."""
    n = len(x)
    if n == 1:
        return np.ones_like(x)
    out = np.empty_like(x)
    for r in range(n):
        for c in range(n):
            minor = np.delete(np.delete(x, r, axis=0), c, axis=1)
            out[r, c] = (-1) ** (r + c) * np.linalg.det(minor)
    return out


# --- 1. a delta as a value --------------------------------------------------

# (statements defining f from X[n, n] and x[n], f with the identity matrix eye)
DELTA_VALUES = [
    ("f = delta[i, j] ^ 2 * X[i, j]", lambda X, x, eye: np.sum(eye**2 * X)),
    ("f = exp(delta[i, j]) * X[i, j]", lambda X, x, eye: np.sum(np.exp(eye) * X)),
    ("f = x[i] * sqrt(delta[i, j]) * x[j]", lambda X, x, eye: x @ np.sqrt(eye) @ x),
    ("Y[i, j] = softmax(delta[i, j], j) * X[i, j]\nf = sum(Y ^ 2)", None),
    ("m[i] = max(delta[i, j], j) * x[i]\nf = sum(m ^ 2)", lambda X, x, eye: np.sum(x**2)),
    ("Y[i, j] = inv(delta[i, j], i, j) * X[i, j]\nf = sum(Y ^ 2)", None),
    ("Y[i, j] = cholesky(delta[i, j], i, j) * X[i, j]\nf = sum(Y ^ 2)", None),
    ("f = det(delta[i, j], i, j) * x[k] * x[k] + logdet(delta[i, j], i, j)", None),
    ("Y[j, k] = solve(X[i, j], delta[i, k], i, j)\nf = sum(Y ^ 2)", None),
    ("Y[k, j] = solve(X[i, j], delta[k, i], i, j)\nf = Y[k, j] * X[k, j]", None),
    ("y[j] = solve(delta[i, j], x[i], i, j)\nf = sum(y ^ 3)", lambda X, x, eye: np.sum(x**3)),
]


def _numpy_value(spec: str, X: np.ndarray, x: np.ndarray) -> float:
    """The same functions with np.eye in place of the delta (numpy's own)."""
    eye = np.eye(len(x))
    Xi = np.linalg.inv(X)
    exact = {
        "Y[i, j] = softmax(delta[i, j], j) * X[i, j]\nf = sum(Y ^ 2)": np.sum(
            (np.exp(eye) / np.exp(eye).sum(axis=1, keepdims=True) * X) ** 2
        ),
        "Y[i, j] = inv(delta[i, j], i, j) * X[i, j]\nf = sum(Y ^ 2)": np.sum((eye * X) ** 2),
        "Y[i, j] = cholesky(delta[i, j], i, j) * X[i, j]\nf = sum(Y ^ 2)": np.sum((eye * X) ** 2),
        "f = det(delta[i, j], i, j) * x[k] * x[k] + logdet(delta[i, j], i, j)": np.sum(x * x),
        "Y[j, k] = solve(X[i, j], delta[i, k], i, j)\nf = sum(Y ^ 2)": np.sum(
            np.linalg.solve(X, eye) ** 2
        ),
        "Y[k, j] = solve(X[i, j], delta[k, i], i, j)\nf = Y[k, j] * X[k, j]": np.sum(Xi.T * X),
    }
    if spec in exact:
        return exact[spec]
    return next(f for s, f in DELTA_VALUES if s == spec)(X, x, eye)


@pytest.mark.parametrize("spec", [s for s, _ in DELTA_VALUES])
@given(n=st.integers(1, 4), seed=st.integers(0, 2**16))
def test_a_delta_used_as_a_value_is_the_identity_matrix(spec, n, seed):
    """Functions of delta[i, j] (elementwise, along an index, matrix functions,
    solve with the identity on either side) have the values of the same
    functions of np.eye, and their gradients and Hessians agree with the
    reshape method and the independent reference (raised a raw TypeError or
    ValueError before)."""
    rng = np.random.default_rng(seed)
    net = tc.parse(f"dim n = {n}\nparam X[n, n]\nparam x[n]\n{spec}")
    v = {"X": matrix(n, rng), "x": rng.standard_normal(n)}
    np.testing.assert_allclose(net.evaluate(v)["f"], _numpy_value(spec, v["X"], v["x"]), 1e-12)
    for w in ("X", "x"):
        np.testing.assert_allclose(
            net.grad("f", w, v)[w], tc.reshape_method(net, "f", w, v), rtol=1e-10, atol=1e-12
        )
    H = net.hessian("f", "X", v).array
    np.testing.assert_allclose(H, tc.reference_derivative(net, "f", ("X", "X"), v), 1e-9, 1e-11)


def test_solve_with_the_identity_is_the_inverse_and_its_gradient_the_closed_form():
    """solve(A, delta[i, k], i, j) is A⁻¹ read at [j, k]; ∂ Σ Y² / ∂A =
    −2 Yᵀ Y Yᵀ (Matrix Cookbook eq. 59), and central differences agree."""
    rng = np.random.default_rng(3)
    net = tc.parse(
        "dim n = 4\nparam A[n, n]\nY[j, k] = solve(A[i, j], delta[i, k], i, j)\nf = sum(Y ^ 2)"
    )
    A = matrix(4, rng)
    Y = np.linalg.inv(A)
    np.testing.assert_allclose(net.evaluate({"A": A})["Y"], Y, rtol=1e-13)
    g = net.grad("f", "A", {"A": A})["A"]
    np.testing.assert_allclose(g, -2 * Y.T @ Y @ Y.T, rtol=1e-11)
    fd = finite_differences(net, "f", "A", {"A": A})
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-8)
    message = "solve needs a square matrix, but index 'i' is n=3 (axis 0 of A) and index 'j' is m=2"
    with pytest.raises(tc.ShapeError, match=re.escape(message)):  # the user's i and j
        tc.parse("dim n = 3\ndim m = 2\nparam A[n, m]\nY[j, k] = solve(A[i, j], delta[i, k], i, j)")


@pytest.mark.parametrize(
    ("statement", "column", "message"),
    [
        (
            "Y[i, j] = X[i, j] / delta[i, j]",
            19,
            "X[i, j] / delta[i, j] divides by zero where delta[i, j] is 0 (off the diagonal,"
            " i ≠ j): the Kronecker delta is 0 off its diagonal; to keep the diagonal multiply"
            " instead, e.g. X[i, j] * delta[i, j]",
        ),
        (
            "Y[a, b] = log(delta[a, b]) * X[a, b]",
            11,
            "log(delta[a, b]) is -infinite where delta[a, b] is 0 (off the diagonal, a ≠ b)",
        ),
        ("Y[i, j] = delta[i, j] ^ -1 * X[i, j]", 23, "is infinite where delta[i, j] is 0"),
        ("Y[i, j] = sqrt(-delta[i, j]) * X[i, j]", 11, "is NaN where delta[i, j] is 1:"),
        (  # zero off the diagonal whatever the other factors
            "Y[i, k] = X[i, k] / (delta[i, j] * X[j, k])",
            19,
            "X[i, k] / (delta[i, j] * X[j, k]) divides by zero where delta[i, j] is 0",
        ),
        (
            "Y[i, k] = X[i, j] / (2 * delta[i, j] * delta[j, k])",
            19,
            "divides by zero where delta[i, j] is 0 (off the diagonal, i ≠ j):",
        ),
    ],
)
def test_a_function_of_a_delta_that_is_not_finite_is_a_spec_error(statement, column, message):
    """Division by a delta (or log, a negative power, sqrt of −δ) is undefined
    where the delta is 0 or 1: a SpecError at the user's line and column."""
    with pytest.raises(tc.SpecError, match=re.escape(message)) as info:
        tc.parse(f"dim n = 3\nparam X[n, n]\n{statement}")
    assert (info.value.line, info.value.column) == (3, column)
    fine = tc.parse("dim n = 3\nparam X[n, n]\nf = X[i, j] / (delta[i, j] + 1)")  # never 0
    X = np.arange(9.0).reshape(3, 3)
    np.testing.assert_allclose(fine.evaluate({"X": X})["f"], np.sum(X / (np.eye(3) + 1)))


def test_a_function_of_a_delta_that_is_zero_at_zero_stays_a_symbolic_delta():
    """sin(2 δ) = sin(2) δ and δ ^ 3 = δ: the Jacobian of Y = f(δ) ∘ X by X is
    then a delta too, n numbers stored, not an n × n array (it was dense)."""
    n = 5
    for f, scale in (("sin(2 * delta[i, j])", np.sin(2.0)), ("delta[i, j] ^ 3", 1.0)):
        net = tc.parse(f"dim n = {n}\nparam X[n, n]\nY[i, j] = {f} * X[i, j]")
        X = np.arange(n * n, dtype=float).reshape(n, n)
        np.testing.assert_allclose(net.evaluate({"X": X})["Y"], scale * np.eye(n) * X)
        J = net.jacobian("Y", "X", {"X": X})
        assert J.stored_entries() <= n
        np.testing.assert_allclose(J.array, tc.reshape_method(net, "Y", "X", {"X": X}))


# --- 2. singular matrices with dask and JAX values ---------------------------

SINGULAR_SPECS = [
    ("Y[s, i, j] = inv(X[s, i, j], i, j)\nL = sum(Y)", "evaluate", False),
    ("Y[s, i, j] = cholesky(X[s, i, j], i, j)\nL = sum(Y)", "evaluate", True),
    ("y[s, j] = solve(X[s, i, j], b[s, i], i, j)\nL = sum(y)", "evaluate", False),
    ("l[s] = logdet(X[s, i, j], i, j)\nL = sum(l)", "grad", False),
    ("y[s, j] = solve(X[s, i, j], b[s, i], i, j)\nL = sum(y ^ 2)", "grad", False),
]


def _singular_case(spec: str, negative: bool):
    net = tc.parse(f"dim s = 3\ndim n = 2\nparam X[s, n, n]\ninput b[s, n]\n{spec}")
    X = np.stack([np.eye(2), 2 * np.eye(2), np.ones((2, 2))])  # the last one is singular
    if negative:
        X[2] = -np.eye(2)  # not positive definite
    return net, {"X": X, "b": np.ones((3, 2))}


def _run(net, what: str, values):
    if what == "evaluate":
        return net.evaluate(values)["L"]
    return net.grad("L", "X", values)["X"]


@pytest.mark.skipif(not HAS_DASK, reason="dask not installed")
@pytest.mark.parametrize(("spec", "what", "negative"), SINGULAR_SPECS)
def test_dask_values_give_numpys_values_error(spec, what, negative):
    """A singular (or not positive definite) matrix among dask values raises,
    when computed, the ValuesError numpy values raise at once (numpy's
    LinAlgError before), naming the same batch entry."""
    import dask.array as da

    net, v = _singular_case(spec, negative)
    with pytest.raises(tc.ValuesError) as expected:
        _run(net, what, v)
    assert "at s=2" in str(expected.value)
    lazy = {k: da.from_array(a, chunks=1) for k, a in v.items()}
    with pytest.raises(tc.ValuesError) as found:
        np.asarray(_run(net, what, lazy).compute())
    assert str(found.value) == str(expected.value)


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
def test_jax_values_give_numpys_values_error_outside_jit_and_nan_under_it():
    """jax.numpy.linalg does not raise (inf, NaN or rounding noise); tensorchain
    checks concrete JAX values as numpy's and raises the same ValuesError
    (logdet's gradient and a matrix singular to working precision gave NaN or
    noise before); under jax.jit, values are traced, have no numbers to check,
    and the result is what jax gives."""
    import jax

    jax.config.update("jax_enable_x64", True)
    for spec, what, negative in SINGULAR_SPECS:
        net, v = _singular_case(spec, negative)
        with pytest.raises(tc.ValuesError) as expected:
            _run(net, what, v)
        with pytest.raises(tc.ValuesError) as found:
            _run(net, what, {k: jax.numpy.asarray(a) for k, a in v.items()})
        assert str(found.value) == str(expected.value)
    net = tc.parse("dim n = 4\nparam X[n, n]\nY = inv(X)")
    with pytest.raises(tc.ValuesError, match="singular to working precision"):
        net.evaluate({"X": jax.numpy.asarray(_ill(4, 1e-18))})
    net, v = _singular_case(SINGULAR_SPECS[0][0], False)
    jv = {k: jax.numpy.asarray(a) for k, a in v.items()}
    out = np.asarray(jax.jit(lambda values: net.evaluate(values)["Y"])(jv))
    assert not np.isfinite(out[2]).all()
    np.testing.assert_allclose(out[:2], np.linalg.inv(v["X"][:2]))


# --- 3. messages in the user's names -----------------------------------------


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        (
            "dim n = 3\ndim m = 2\nparam A[n, m]\nparam b[n]\nx = solve(A, b)",
            "solve needs a square matrix, but the last two axes of A are n=3 and m=2",
        ),
        (
            "dim n = 3\ndim m = 2\nparam X[n, m]\nt = trace(X)",
            "trace needs a square matrix, but the last two axes of X are n=3 and m=2",
        ),
        (
            "dim n = 3\ndim m = 2\nparam X[n, m]\nt = trace(X[a, b], a, b)",
            "trace needs a square matrix, but index 'a' is n=3 (axis 0 of X) and index 'b' is"
            " m=2 (axis 1 of X)",
        ),
        (
            "dim n = 3\ndim m = 2\nparam A[n, n]\nparam b[m]\nx = solve(A, b)",
            "solve(A, b) needs as many rows in b as in A (A x = b), but axis 0 of A is n=3 and"
            " axis 0 of b is m=2",
        ),
    ],
)
def test_shape_errors_of_matrix_functions_name_the_users_call(spec, message):
    """ "r is n=3 and #0 is m=2" and "delta needs…" were the trial's messages."""
    with pytest.raises(tc.ShapeError, match=re.escape(message)) as info:
        tc.parse(spec)
    assert not INTERNAL.search(str(info.value).splitlines()[0])


@pytest.mark.parametrize(
    ("spec", "of", "wrt", "order", "message"),
    [
        (  # the Hessian's graph inverts X for logdet's derivative
            "dim s = 2\ndim n = 3\nparam X[s, n, n]\nl[s] = logdet(X[s, i, j], i, j)\nL = sum(l)",
            "L",
            "X",
            2,
            "logdet of X[s, i, j] (line 4: l[s] = logdet(X[s, i, j], i, j)): the matrix at s=1"
            " is singular; log |det| is -inf there and its derivative, the inverse transposed,"
            " is undefined; check the values, or regularise it (e.g. + 1e-6 * delta[i, j])",
        ),
        (  # whole-tensor form: the batch entry named by its dim
            "dim B = 2\ndim n = 3\nparam X[B, n, n]\nd = det(X)\nL = sum(d)",
            "L",
            "X",
            2,
            "det of X (line 4: d = det(X)): the matrix at B=1 is singular; the gradient of det"
            " there is the adjugate, but its second and higher derivatives are computed only at"
            " invertible matrices",
        ),
        (
            "dim B = 2\ndim n = 3\nparam X[B, n, n]\nY = inv(X)\nL = sum(Y)",
            "L",
            "X",
            1,
            "inv of X (line 4: Y = inv(X)): the matrix at B=1 is singular",
        ),
        (  # the derivative's graph solves with the matrix transposed
            "dim B = 2\ndim n = 3\nparam X[B, n, n]\nparam b[B, n]\n"
            "y[u, j] = solve(X[u, p, j], b[u, p], p, j)\nL = sum(y ^ 2)",
            "L",
            "b",
            2,
            "solve of X[u, p, j] (line 5: y[u, j] = solve(X[u, p, j], b[u, p], p, j)): the"
            " matrix at u=1 is singular; solve needs an invertible matrix; check the values, or"
            " regularise it (e.g. + 1e-6 * delta[p, j])",
        ),
    ],
)
def test_singular_matrices_in_derivatives_are_named_in_the_users_words(
    spec, of, wrt, order, message
):
    """A derivative's graph computes inverses and solves the user never wrote;
    the message quotes the user's call, line and index (or dim) names (it
    quoted "∂L/∂X[i, j, k] = …" and "t0=1" before)."""
    net = tc.parse(spec)
    v = net.random_values(seed=0)
    v["X"] = np.stack([3 * np.eye(3), np.ones((3, 3))])
    with pytest.raises(tc.ValuesError) as info, np.errstate(divide="ignore"):
        net.derivative(of, (wrt,) * order, v)
    assert str(info.value).startswith(message)
    assert not INTERNAL.search(str(info.value))


# --- 4. logdet at a singular matrix, inv singular to working precision -------


def test_logdet_of_a_singular_matrix_is_minus_infinity_and_its_gradient_an_error():
    """As numpy's slogdet and jax.numpy.linalg.slogdet: log |det| = −inf (with
    the warning any non-finite value gets); its derivative is undefined."""
    net = tc.parse("dim n = 2\nparam X[n, n]\nl = logdet(X)")
    X = np.ones((2, 2))
    with pytest.warns(tc.NonFiniteWarning, match=r"first appear in l = logdet\(X\)"):
        assert net.evaluate({"X": X})["l"] == np.linalg.slogdet(X)[1] == -np.inf
    with pytest.raises(
        tc.ValuesError, match="its derivative, the inverse transposed, is undefined"
    ):
        net.grad("l", "X", {"X": X})
    with pytest.raises(tc.ValuesError, match="is -inf there"):
        tc.reshape_method(net, "l", "X", {"X": X})


def _ill(n: int, smallest: float, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    q1, q2 = (np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(2))
    return q1 @ np.diag(np.geomspace(1.0, smallest, n)) @ q2.T


@pytest.mark.parametrize(
    "spec",
    [
        "Y = inv(X)\nL = sum(Y)",
        "y = solve(X, b)\nL = sum(y)",
        "y[j] = solve(X[i, j], b[i], i, j)\nL = sum(y)",
    ],
)
def test_a_matrix_singular_to_working_precision_is_a_values_error(spec):
    """Condition number 1e18 > 1/eps: numpy returns rounding noise without a
    word; tensorchain raises, and says how ill-conditioned the matrix is."""
    net = tc.parse(f"dim n = 4\nparam X[n, n]\ninput b[n]\n{spec}")
    v = {"X": _ill(4, 1e-18), "b": np.ones(4)}
    with pytest.raises(tc.ValuesError, match=r"is singular to working precision \(its condition"):
        net.evaluate(v)
    # float32's working precision, 1/eps = 8.4e6: condition number 1e9, exact in float32
    small = {"X": np.eye(4, dtype=np.float32)[[2, 0, 3, 1]] * [1, 2, 1, 1e-9], "b": v["b"]}
    small = {k: np.asarray(a, dtype=np.float32) for k, a in small.items()}
    with pytest.raises(tc.ValuesError, match=r"condition number 2e\+09 is beyond 1/eps = 8.4e\+06"):
        net.evaluate(small)
    for smallest in (1e-6, 1e-11):  # ill-conditioned, but invertible: as numpy
        v["X"] = _ill(4, smallest)
        Y = net.evaluate(v)[spec.split(" ", 1)[0].split("[")[0]]
        expected = np.linalg.inv(v["X"]) if "inv" in spec else np.linalg.solve(v["X"], v["b"])
        np.testing.assert_allclose(Y, expected, rtol=1e-12)


# --- 5. det's gradient at rank-deficient matrices: the adjugate ---------------


@given(
    n=st.integers(1, 5),
    deficit=st.integers(1, 5),
    batch=st.integers(1, 3),
    seed=st.integers(0, 2**16),
)
def test_the_gradient_of_det_at_a_rank_deficient_matrix_is_the_cofactor_matrix(
    n, deficit, batch, seed
):
    """∂ det X / ∂X = adj(X)ᵀ, finite at every matrix: against the cofactors
    from their definition, central differences (det is a polynomial), and the
    reference; a batch mixes invertible and singular matrices (the gradient
    raised "the matrix is singular" before)."""
    rng = np.random.default_rng(seed)
    rank = max(0, n - deficit)
    X = np.stack(
        [rank_deficient(n, rank, rng) if k % 2 == 0 else matrix(n, rng) for k in range(batch)]
    )
    net = tc.parse(
        f"dim s = {batch}\ndim n = {n}\nparam X[s, n, n]\nd[s] = det(X[s, i, j], i, j)\nL = sum(d)"
    )
    g = net.grad("L", "X", {"X": X})["X"]
    for k in range(batch):
        np.testing.assert_allclose(g[k], cofactors(X[k]), rtol=1e-9, atol=1e-12)
    fd = finite_differences(net, "L", "X", {"X": X})
    np.testing.assert_allclose(g, fd, rtol=1e-6, atol=1e-7 * max(1.0, np.abs(g).max()))
    np.testing.assert_allclose(g, tc.reshape_method(net, "L", "X", {"X": X}), rtol=1e-9, atol=1e-12)


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
def test_the_gradient_of_det_at_rank_deficient_matrices_agrees_with_jax():
    """jax.grad(jnp.linalg.det) at matrices of every rank below n, with numpy
    values and with JAX values."""
    import jax

    jax.config.update("jax_enable_x64", True)
    for n, rank in [(2, 1), (3, 2), (3, 1), (4, 3), (5, 2), (4, 0)]:
        X = rank_deficient(n, rank, np.random.default_rng(n + rank))
        net = tc.parse(f"dim n = {n}\nparam X[n, n]\nd = det(X)")
        expected = np.asarray(jax.grad(jax.numpy.linalg.det)(jax.numpy.asarray(X)))
        g = net.grad("d", "X", {"X": X})["X"]
        np.testing.assert_allclose(g, expected, rtol=1e-9, atol=1e-12)
        J = net.jacobian("d", "X", {"X": jax.numpy.asarray(X)})
        np.testing.assert_allclose(np.asarray(J.array), expected, rtol=1e-9, atol=1e-12)


def test_the_adjugate_of_a_rank_n_minus_1_matrix_in_closed_form():
    """X of rank n − 1 built as Q₁ diag(s₁, …, sₙ₋₁, 0) Q₂ᵀ, with unit null
    vectors X y = 0 and zᵀ X = 0: adj(X) = det(Q₁) det(Q₂) s₁ ⋯ sₙ₋₁ · y zᵀ
    (X adj(X) = adj(X) X = det(X) I = 0 makes it a multiple of y zᵀ); with
    rotations, and with signed permutations (an exact zero pivot, which
    raised "singular" before)."""
    rng = np.random.default_rng(11)
    n = 4
    s = np.array([2.0, 1.5, 0.5, 0.0])
    rotations = [np.linalg.qr(rng.standard_normal((n, n)))[0] for _ in range(2)]
    permutations = [np.eye(n)[[2, 0, 3, 1]] * [1, -1, 1, 1], np.eye(n)[[1, 3, 0, 2]]]
    net = tc.parse(f"dim n = {n}\nparam X[n, n]\nd = det(X)")
    for q1, q2 in (rotations, permutations):
        X = q1 @ np.diag(s) @ q2.T
        y, z = q2[:, -1], q1[:, -1]  # X y = 0, zᵀ X = 0
        adj = np.prod(s[:-1]) * np.linalg.det(q1) * np.linalg.det(q2) * np.outer(y, z)
        np.testing.assert_allclose(net.grad("d", "X", {"X": X})["X"], adj.T, atol=1e-12)


def test_the_gradient_of_det_of_a_complex_singular_matrix():
    """Holomorphic: ∂ det X / ∂X[r, c] = adj(X)[c, r], no conjugate; a
    rotated matrix of rank 2 and one with a zero row (an exact zero pivot)."""
    rng = np.random.default_rng(5)
    net = tc.parse("dim n = 3\nparam X[n, n]\nd = det(X)")
    zero_row = rng.standard_normal((3, 3)) + 1j * rng.standard_normal((3, 3))
    zero_row[1] = 0
    for X in (rank_deficient(3, 2, rng, complex_=True), zero_row):
        J = net.jacobian("d", "X", {"X": X}).array
        np.testing.assert_allclose(J, cofactors(X), atol=1e-12)


def test_the_generated_code_of_det_computes_the_adjugate_too():
    net = tc.parse("dim n = 3\nparam X[n, n]\nd = det(X)")
    source = net.derive("d", "X").to_python("g")
    assert "import tensorchain" not in source
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # code tensorchain wrote
    X = rank_deficient(3, 1, np.random.default_rng(2))
    np.testing.assert_allclose(namespace["g"](X), cofactors(X), atol=1e-12)
