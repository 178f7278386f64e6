"""Selections (where, maximum, minimum, clip, max(0, z)), the functions erf,
gelu, log1p, expm1, logsigmoid, silu, the tensor exponent x ^ y, and
functions users register: values against closed forms and JAX, first and
second derivatives against the reshape method, the dense-jet reference,
central differences and JAX, in derive's printouts, generated code, compiled
plans and on JAX and dask values (issue 17, items 4 and 5)."""

import importlib.util
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.functions.special import erf, erfc, normal_cdf
from tensorchain.testing import max_relative_error

HAS_JAX = importlib.util.find_spec("jax") is not None
needs_jax = pytest.mark.skipif(not HAS_JAX, reason="jax not installed")


def jnp():
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax.numpy


def central(net, of, wrt, values, eps=1e-6):
    """d of / d wrt by central differences (of a scalar ``of``)."""
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
    out = np.zeros(base[wrt].shape)
    for idx in np.ndindex(*base[wrt].shape):
        plus, minus = dict(base), dict(base)
        plus[wrt], minus[wrt] = base[wrt].copy(), base[wrt].copy()
        plus[wrt][idx] += eps
        minus[wrt][idx] -= eps
        out[idx] = (net.evaluate(plus)[of] - net.evaluate(minus)[of]) / (2 * eps)
    return out


# --- the fault of the issue: a number where a tensor or index is expected ---------


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        ("max(0, z)", lambda z: np.maximum(0.0, z)),
        ("min(0, z)", lambda z: np.minimum(0.0, z)),
        ("max(z, -0.5)", lambda z: np.maximum(z, -0.5)),
        ("min(2 * 0.25, z)", lambda z: np.minimum(0.5, z)),
    ],
)
def test_max_and_min_with_a_number_are_elementwise(call, expected):
    """Failed before: `max(0, z)` (the way people write ReLU) was refused."""
    z = np.array([-1.5, 0.2, 0.7, -0.1])
    whole = tc.parse(f"dim n = 4\ninput z[n]\nr = {call}")
    np.testing.assert_array_equal(whole.evaluate({"z": z})["r"], expected(z))
    index = tc.parse(f"dim n = 4\ninput z[n]\nr[i] = {call.replace('z', 'z[i]')}")
    np.testing.assert_array_equal(index.evaluate({"z": z})["r"], expected(z))


@pytest.mark.parametrize(
    ("call", "message", "column"),
    [
        ("sum(0, z)", r"sum runs along indices of a tensor, but its first argument in", 5),
        ("softmax(0, n)", r"softmax runs along indices .* is the number 0; e\.g\. softmax\(", 5),
        ("logsumexp(1.5, n)", r"is the number 1\.5; e\.g\. logsumexp\(z\[s, k\], k\)", 5),
        ("max(0, z, n)", r"max runs along indices of a tensor, but its first argument", 5),
        ("cross_entropy(0, z, n)", r"cross_entropy\(z, y, k\) takes the logits z first", 5),
        ("sum(z, 0)", r"the arguments after the first of sum name the indices", 12),
        ("max(z, y)", r"y is a tensor: for the elementwise maximum of two tensors write", 5),
    ],
)
def test_a_number_or_tensor_where_an_index_is_expected_is_a_spec_error(call, message, column):
    """A number given for a tensor (or a tensor for an index) is named, with its
    line and column and what to write; no internal expansion is shown."""
    with pytest.raises(tc.SpecError, match=message) as caught:
        tc.parse(f"dim n = 2\ninput z[n]\ninput y[n]\nr = {call}")
    assert (caught.value.line, caught.value.column) == (4, column)
    assert "log_softmax" not in str(caught.value)


# --- selections ----------------------------------------------------------------------

SELECTION_NET = """
dim n = 5
param x[n]
param y[n]
a = maximum(x, y)
b = minimum(x, 0.3)
c = clip(y, -0.5, 0.5)
d = where(x >= y, x * y, 2 * x)
e = max(0, x)
L = sum(a * b + c * d + e * e * y)
"""


def _selection_jax(v):
    np_ = jnp()
    a = np_.maximum(v["x"], v["y"])
    b = np_.minimum(v["x"], 0.3)
    c = np_.clip(v["y"], -0.5, 0.5)
    d = np_.where(v["x"] >= v["y"], v["x"] * v["y"], 2 * v["x"])
    e = np_.maximum(0.0, v["x"])
    return np_.sum(a * b + c * d + e * e * v["y"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_selections_agree_with_the_references(seed):
    net = tc.parse(SELECTION_NET)
    v = net.random_values(seed=seed)
    for w in ("x", "y"):
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-14
        assert max_relative_error(g, central(net, "L", w, v)) < 1e-7
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-14
    H = net.hessian("L", "x", v, "y").array
    assert max_relative_error(H, tc.reference_derivative(net, "L", ("x", "y"), v)) < 1e-14


@needs_jax
@pytest.mark.parametrize("seed", [0, 3])
def test_selections_agree_with_jax(seed):
    import jax

    net = tc.parse(SELECTION_NET)
    v = net.random_values(seed=seed)
    on = {k: jnp().asarray(a) for k, a in v.items()}
    assert abs(net.evaluate(v)["L"] - float(_selection_jax(on))) < 1e-13
    grads = jax.jit(jax.grad(_selection_jax))(on)
    hess = jax.jit(jax.hessian(_selection_jax))(on)
    for w in ("x", "y"):
        assert max_relative_error(net.grad("L", w, v)[w], np.asarray(grads[w])) < 1e-14
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, np.asarray(hess[w][w])) < 1e-14


@needs_jax
def test_ties_share_the_derivative_as_jax_does():
    """maximum, minimum and clip give ½ to each side at a tie (like JAX and like
    max along an index); max(0, z) at z = 0 too, where relu(z) gives 0."""
    import jax

    x = np.array([0.0, 1.0, 0.5, -2.0, 0.25])
    y = np.array([0.0, 1.0, 0.75, -2.0, -3.0])
    net = tc.parse(
        "dim n = 5\nparam x[n]\ninput y[n]\n"
        "L = sum(maximum(x, y) + 2 * minimum(y, x) + 3 * clip(x, -2, 1) + max(0, x) + relu(x))"
    )
    g = net.grad("L", "x", {"x": x, "y": y})["x"]

    def f(x):
        np_ = jnp()
        return np_.sum(
            np_.maximum(x, y)
            + 2 * np_.minimum(y, x)
            + 3 * np_.clip(x, -2, 1)
            + np_.maximum(0.0, x)
            + jax.nn.relu(x)
        )

    np.testing.assert_allclose(g, np.asarray(jax.grad(f)(jnp().asarray(x))), rtol=0, atol=1e-15)
    # the ties by hand: ½ + 2·½ + 3·(½ at -2 and 1, else 1) + ½ at 0 (relu: 0)
    np.testing.assert_allclose(
        g, [0.5 + 1 + 3 + 0.5, 0.5 + 1 + 1.5 + 1 + 1, 2 + 3 + 1 + 1, 1.5 + 1.5, 1 + 3 + 1 + 1]
    )


def test_where_keeps_what_it_does_not_choose_out_of_the_value():
    """where(x > 0, log(x), 0) is finite where x ≤ 0, value and gradient."""
    net = tc.parse("dim n = 3\nparam x[n]\nL = sum(where(x > 0, log(x), 0) + maximum(x, 1))")
    x = np.array([-1.0, 2.0, 0.5])
    with np.errstate(invalid="ignore", divide="ignore"):
        values = net.evaluate({"x": x})  # the log of -1 is computed, then not chosen
        g = net.grad("L", "x", {"x": x})["x"]
    assert values["L"] == pytest.approx(math.log(2.0) + math.log(0.5) + 1 + 2 + 1)
    np.testing.assert_allclose(g, [0.0, 0.5 + 1.0, 2.0])


def test_maximum_propagates_nan_and_where_compares_like_numpy():
    net = tc.parse(
        "dim n = 3\ninput x[n]\ninput y[n]\n"
        "a = maximum(x, y)\nb = where(x == y, 1, 0)\nc = where(x != y, 1, 0)\nd = minimum(x, y)"
    )
    x, y = np.array([np.nan, 1.0, 2.0]), np.array([1.0, np.nan, 2.0])
    with pytest.warns(tc.NonFiniteWarning):
        out = net.evaluate({"x": x, "y": y})
    np.testing.assert_array_equal(out["a"], np.maximum(x, y))
    np.testing.assert_array_equal(out["d"], np.minimum(x, y))
    np.testing.assert_array_equal(out["b"], np.where(x == y, 1.0, 0.0))
    np.testing.assert_array_equal(out["c"], np.where(x != y, 1.0, 0.0))


def test_selections_broadcast_in_index_form():
    """Each operand of where carries some of the indices; the mask of the
    condition x[i] > W[i, j] is over [i, j], the chosen y[i] is summed over j."""
    net = tc.parse(
        "dim n = 3\ndim m = 4\nparam x[n]\nparam y[n]\nparam W[n, m]\n"
        "e[i, j] = where(x[i] > W[i, j], y[i], W[i, j] * x[i])\n"
        "f[i] = where(W[i, j] <= 0.2, y[i], x[i])\nL = sum(e * e) + sum(f * f)"
    )
    v = net.random_values(seed=5)
    x, y, W = v["x"], v["y"], v["W"]
    e = np.where(x[:, None] > W, y[:, None], W * x[:, None])
    f = np.where(W <= 0.2, y[:, None], x[:, None]).sum(axis=1)
    out = net.evaluate(v)
    np.testing.assert_allclose(out["e"], e)
    np.testing.assert_allclose(out["f"], f)
    for w in ("x", "y", "W"):
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-14
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-14


@pytest.mark.parametrize(
    ("text", "message", "column"),
    [
        ("r = z > 0", r"a comparison \(>\) is only the condition of where", 7),
        ("r = (z > 0)", r"a comparison \(>\) is only the condition of where", 8),
        ("r = sigmoid(z >= 0)", r"z >= 0 is a comparison; it is only the condition of where", 15),
        ("r = where(z, z, 0)", r"the first argument of where is a comparison", 11),
        ("r = where(z = 0, z, 0)", r"'=' defines a tensor; to compare, write ==", 13),
        (
            "r = where(z > 0 > 1, z, 0)",
            r"only the condition of where\(cond, a, b\) and compares",
            17,
        ),
        ("r = where(z > 0, z)", r"where takes 3 arguments \(condition, a, b\), 2 given", 5),
        ("r = clip(z, 1, -1)", r"clip\(x, lo, hi\) needs lo ≤ hi, but clip\(z, 1, -1\) has lo", 5),
        ("r = maximum(z, W)", r"z has 1 axis but W has 2; 'maximum' needs equal shapes", 5),
        ("r = z ! 0", r"comparisons > < >= <= == !=", 7),
    ],
)
def test_selection_errors_say_what_to_write(text, message, column):
    with pytest.raises(tc.SpecError, match=message) as caught:
        tc.parse(f"dim n = 2\ninput z[n]\nparam W[n, n]\n{text}")
    assert (caught.value.line, caught.value.column) == (4, column)


# --- the new functions ---------------------------------------------------------------

FUNCTIONS = {  # name -> (value, f', f'') in closed form, from math
    "erf": (
        math.erf,
        lambda x: 2 / math.sqrt(math.pi) * math.exp(-x * x),
        lambda x: -4 * x / math.sqrt(math.pi) * math.exp(-x * x),
    ),
    "gelu": (
        lambda x: x * 0.5 * math.erfc(-x / math.sqrt(2)),
        lambda x: (
            0.5 * math.erfc(-x / math.sqrt(2)) + x * math.exp(-x * x / 2) / math.sqrt(2 * math.pi)
        ),
        lambda x: (2 - x * x) * math.exp(-x * x / 2) / math.sqrt(2 * math.pi),
    ),
    "log1p": (math.log1p, lambda x: 1 / (1 + x), lambda x: -1 / (1 + x) ** 2),
    "expm1": (math.expm1, math.exp, math.exp),
    "logsigmoid": (
        lambda x: -math.log1p(math.exp(-x)),
        lambda x: 1 / (1 + math.exp(x)),
        lambda x: -math.exp(x) / (1 + math.exp(x)) ** 2,
    ),
    "silu": (
        lambda x: x / (1 + math.exp(-x)),
        lambda x: (1 + math.exp(-x) + x * math.exp(-x)) / (1 + math.exp(-x)) ** 2,
        lambda x: (  # σ' (2 + x (1 − 2σ))
            (s := 1 / (1 + math.exp(-x))) * (1 - s) * (2 + x * (1 - 2 * s))
        ),
    ),
}


@pytest.mark.parametrize("func", sorted(FUNCTIONS))
def test_functions_match_their_closed_forms(func):
    f, df, d2f = FUNCTIONS[func]
    x = np.array([-3.0 if func != "log1p" else -0.9, -0.7, 0.1, 0.4, 2.5])
    net = tc.parse(f"dim n = 5\nparam x[n]\ny = {func}(x)\nL = sum({func}(x))")
    np.testing.assert_allclose(net.evaluate({"x": x})["y"], [f(t) for t in x], rtol=4e-15)
    g = net.grad("L", "x", {"x": x})["x"]
    np.testing.assert_allclose(g, [df(t) for t in x], rtol=1e-14)
    H = net.hessian("L", "x", {"x": x}).array
    np.testing.assert_allclose(np.diag(H), [d2f(t) for t in x], rtol=1e-13, atol=1e-15)
    assert max_relative_error(H, tc.reshape_hessian(net, "L", "x", {"x": x})) < 1e-14
    T = net.derivative("L", ("x", "x", "x"), {"x": x}).array
    ref = tc.reference_derivative(net, "L", ("x", "x", "x"), {"x": x})
    assert max_relative_error(T, ref) < 1e-13


@needs_jax
def test_functions_agree_with_jax():
    import jax

    np_ = jnp()
    text = """
dim n = 4
dim m = 3
input u[m]
param W[n, m]
param s[n]
z[i] = W[i, j] * u[j] + s[i]
p = sigmoid(s) ^ z
a = gelu(z) * erf(z) + silu(z) - logsigmoid(z) + expm1(z) * log1p(square(z)) + p
L = sum(a * a)
"""

    def f(W, s, u):
        z = W @ u + s
        p = jax.nn.sigmoid(s) ** z
        a = (
            jax.nn.gelu(z, approximate=False) * jax.scipy.special.erf(z)
            + jax.nn.silu(z)
            - jax.nn.log_sigmoid(z)
            + np_.expm1(z) * np_.log1p(z * z)
            + p
        )
        return np_.sum(a * a)

    net = tc.parse(text)
    v = net.random_values(seed=7)
    args = [np_.asarray(v[k]) for k in ("W", "s", "u")]
    assert abs(net.evaluate(v)["L"] - float(f(*args))) < 1e-12 * abs(float(f(*args)))
    grads = jax.jit(jax.grad(f, argnums=(0, 1)))(*args)
    hessians = jax.jit(jax.hessian(f, argnums=(0, 1)))(*args)
    for k, w in enumerate(("W", "s")):
        assert max_relative_error(net.grad("L", w, v)[w], np.asarray(grads[k])) < 1e-13
        H = np.asarray(hessians[k][k])
        assert max_relative_error(net.hessian("L", w, v).array, H) < 1e-12
        assert max_relative_error(net.grad("L", w, v)[w], central(net, "L", w, v)) < 1e-6


def test_erf_is_accurate_to_the_last_digits():
    """Cody's approximations against the C library's erf and erfc (one number
    at a time): relative error below 1e-15 wherever the result is normal."""
    x = np.concatenate(
        [
            np.linspace(-30, 30, 20001),
            np.geomspace(1e-300, 30, 5000),
            -np.geomspace(1e-300, 30, 5000),
            [0.0, 0.46875, 4.0, 26.5],
        ]
    )
    exact = np.array([math.erf(t) for t in x])
    exact_c = np.array([math.erfc(t) for t in x])
    normal = exact_c > np.finfo(float).tiny
    assert np.max(np.abs(erf(x) - exact) / np.maximum(np.abs(exact), 1e-300)) < 1e-15
    assert np.max(np.abs(erfc(x) - exact_c)[normal] / exact_c[normal]) < 1e-15
    assert np.all(np.abs(erfc(x)[~normal]) < 1e-307)
    phi = np.array([0.5 * math.erfc(-t / math.sqrt(2)) for t in x])
    ok = phi > np.finfo(float).tiny
    # x/√2 is rounded once, which Φ's relative sensitivity x² turns into x² ε
    error = np.abs(normal_cdf(x) - phi)[ok] / phi[ok]
    assert np.all(error < 4e-16 * (1 + x[ok] ** 2))
    np.testing.assert_array_equal(erf(np.array([np.inf, -np.inf, 0.0])), [1.0, -1.0, 0.0])
    np.testing.assert_array_equal(erfc(np.array([np.inf, -np.inf])), [0.0, 2.0])
    assert np.isnan(erf(np.array([np.nan]))).all() and np.isnan(erfc(np.nan))
    assert erf(np.float32(0.5)).dtype == np.float32 and erf(np.ones((2, 3))).shape == (2, 3)


def test_erf_on_the_array_api_path_matches_numpys():
    """The same formulas written with array-API operations only (the path
    torch, JAX and dask values take) give the same numbers."""
    compat = pytest.importorskip("array_api_compat")
    xp = compat.array_namespace(np.ones(1))
    assert xp is not np
    x = np.concatenate([np.linspace(-30, 30, 2001), [np.inf, -np.inf, 26.6, -4.0, 4.0]])
    np.testing.assert_allclose(erf(x, xp), [math.erf(t) for t in x], rtol=1e-15, atol=0)
    np.testing.assert_allclose(erfc(x, xp), [math.erfc(t) for t in x], rtol=1e-15, atol=1e-300)
    assert np.isnan(erf(np.array([np.nan]), xp)).all()


def test_log1p_and_expm1_keep_their_digits_near_zero():
    net = tc.parse("dim n = 2\ninput x[n]\na = log1p(x)\nb = expm1(x)")
    x = np.array([1e-12, -1e-15])
    out = net.evaluate({"x": x})
    np.testing.assert_allclose(out["a"], [math.log1p(t) for t in x], rtol=1e-15)
    np.testing.assert_allclose(out["b"], [math.expm1(t) for t in x], rtol=1e-15)
    net = tc.parse("dim n = 2\ninput x[n]\nc = logsigmoid(x)")
    big = net.evaluate({"x": np.array([-800.0, 800.0])})["c"]
    np.testing.assert_allclose(big, [-800.0, -math.exp(-800.0)], rtol=1e-15)


def test_a_tensor_exponent_is_exp_of_y_log_x():
    net = tc.parse("dim n = 3\nparam x[n]\nparam y[n]\np = x ^ y\nq = 2 ^ y\nL = sum(p * q)")
    v = {"x": np.array([0.5, 1.5, 2.0]), "y": np.array([-0.3, 1.2, 2.5])}
    out = net.evaluate(v)
    np.testing.assert_allclose(out["p"], v["x"] ** v["y"], rtol=1e-15)
    np.testing.assert_allclose(out["q"], 2.0 ** v["y"], rtol=1e-15)
    for w in ("x", "y"):
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, central(net, "L", w, v)) < 1e-8
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-14
    x, y = v["x"], v["y"]
    np.testing.assert_allclose(
        net.grad("L", "y", v)["y"], x**y * 2**y * (np.log(x) + np.log(2.0)), rtol=1e-14
    )


# --- derive, generated code, compiled plans, other libraries ------------------------

EVERYTHING = """
dim n = 4
dim m = 3
input u[m]
param W[n, m]
param b[n]
param s[n]
z[i] = W[i, j] * u[j] + b[i]
r = max(0, z)
g = gelu(z) + silu(r) - logsigmoid(z) + erf(z)
c = clip(g, -1, 1) + where(z > 0.5, log1p(square(z)), expm1(z))
p = sigmoid(s) ^ sigmoid(z)
L = sum(c * p)
"""


def test_derive_prints_index_notation_latex_and_code_that_runs():
    net = tc.parse(EVERYTHING)
    v = net.random_values(seed=2)
    d = net.derive("L", "b")
    text = str(d)
    for piece in ("([0 < z] + ½[0 = z])", "(Φ(z) + z φ(z))", "2/√π exp(-z²)", "σ(-z)"):
        assert piece in "\n".join(d.steps), piece
    assert "[z > 0.5]" in "\n".join(d.steps) and text.startswith("∂L/∂b[i] =")
    latex = net.derive("L", "W").latex()
    assert latex.startswith(r"\frac{\partial L}{\partial {W}_{ij}}")
    for w in ("W", "b", "s"):
        namespace: dict = {}
        exec(net.derive("L", w).to_python(), namespace)  # numpy alone, nothing of tensorchain
        got = namespace[f"grad_L_{w}"](**v)
        assert max_relative_error(got, tc.reshape_method(net, "L", w, v)) < 1e-14
    steps = "\n".join(net.derive("L", "s").steps)
    assert "exp(sigmoid(z)·log(sigmoid(s)))" in steps


def test_compiled_plans_and_every_order():
    net = tc.parse(EVERYTHING)
    v = net.random_values(seed=4)
    grad = net.compile_grad("L", wrt=["W", "s"], dims={"n": 4, "m": 3})
    got = grad(v)
    for w in ("W", "s"):
        assert max_relative_error(got[w], tc.reshape_method(net, "L", w, v)) < 1e-14
    for wrt in (("b", "b"), ("W", "s"), ("b", "b", "b")):
        D = net.derivative("L", wrt, v).array
        assert max_relative_error(D, tc.reference_derivative(net, "L", wrt, v)) < 1e-13


@pytest.mark.parametrize("library", ["jax", "dask"])
def test_on_jax_and_dask_values(library):
    pytest.importorskip(library)
    if library == "dask":
        pytest.importorskip("array_api_compat")
        import dask.array as da

        convert, back = (lambda a: da.from_array(a, chunks=2)), (lambda r: np.asarray(r.compute()))
    else:
        np_ = jnp()
        convert, back = np_.asarray, np.asarray
    net = tc.parse(EVERYTHING)
    v = net.random_values(seed=6)
    other = {k: convert(a) for k, a in v.items()}
    expected = net.evaluate(v)
    got = net.evaluate(other)
    for name in net.outputs:
        assert max_relative_error(back(got[name]), expected[name]) < 1e-14, name
    for w in ("W", "s"):
        g = back(net.grad("L", w, other)[w])
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-14
    H = back(net.hessian("L", "b", other).array)
    assert max_relative_error(H, tc.reshape_hessian(net, "L", "b", v)) < 1e-14


def test_complex_values_are_refused_by_selections_and_erf():
    for text in ("f = sum(max(0, x))", "f = sum(erf(x))"):
        net = tc.parse(f"dim n = 2\nparam x[n]\n{text}")
        with pytest.raises(tc.ValuesError, match=r"complex values"):
            net.grad("f", "x", {"x": np.array([1 + 1j, 2.0])})


# --- registered functions -----------------------------------------------------------


def softsign(x):
    return x / (1.0 + np.abs(x))


def d_softsign(x):
    return 1.0 / (1.0 + np.abs(x)) ** 2


@pytest.fixture
def registered():
    tc.register_function(
        "softsign",
        softsign,
        d_softsign,
        lambda x: -2.0 * np.sign(x) / (1.0 + np.abs(x)) ** 3,
        latex=r"\operatorname{ss}",
    )
    tc.register_function("cube", lambda x: x * x * x, lambda x: 3.0 * x * x)
    yield
    tc.unregister_function("softsign")
    tc.unregister_function("cube")


USER_NET = """
dim n = 3
param x[n]
param W[n, n]
h[i] = W[i, j] * x[j]
a = softsign(h)
L = sum(a * cube(x))
"""


def test_a_registered_function_in_every_derivative(registered):
    net = tc.parse(USER_NET)
    v = net.random_values(seed=3)
    x, W = v["x"], v["W"]
    h = W @ x
    expected = (d_softsign(h) * x**3)[:, None] * x[None, :]  # dL/dW by hand
    np.testing.assert_allclose(net.grad("L", "W", v)["W"], expected, rtol=1e-14)
    assert max_relative_error(net.grad("L", "W", v)["W"], central(net, "L", "W", v)) < 1e-8
    H = net.hessian("L", "W", v).array
    assert max_relative_error(H, tc.reshape_hessian(net, "L", "W", v)) < 1e-14
    d = net.derive("L", "W")
    assert str(d) == "∂L/∂W[i, j] = cube(x)[i] · softsign'(h)[i] · x[j]"
    assert r"{\operatorname{ss}'(h)}_{i}" in d.latex()
    namespace: dict = {}
    exec(net.derive("L", "x").to_python(), namespace)
    assert "d_cube = lambda x: 3.0 * x * x" in net.derive("L", "x").to_python()
    assert max_relative_error(namespace["grad_L_x"](**v), net.grad("L", "x", v)["x"]) < 1e-15


def test_a_registered_function_without_d2f_refuses_second_order(registered):
    net = tc.parse(USER_NET)
    v = net.random_values(seed=3)
    with pytest.raises(tc.DerivativeError, match=r"the second derivative of cube is unknown"):
        net.hessian("L", "x", v)
    with pytest.raises(tc.DerivativeError, match=r"derivative of order 3 of softsign"):
        net.derivative("L", ("W", "W", "W"), v)


def test_a_registered_function_on_jax_values(registered):
    np_ = pytest.importorskip("jax") and jnp()
    net = tc.parse(USER_NET.replace("softsign(h)", "sigmoid(h)"))
    v = net.random_values(seed=8)
    g = net.grad("L", "W", {k: np_.asarray(a) for k, a in v.items()})["W"]
    assert max_relative_error(np.asarray(g), tc.reshape_method(net, "L", "W", v)) < 1e-14


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("sigmoid", r"cannot register 'sigmoid': it is a built-in function"),
        ("where", r"cannot register 'where': it is a built-in function"),
        ("softmax", r"it is a built-in function"),
        ("input", r"cannot register 'input': it is a keyword of the language"),
        ("delta", r"it is a keyword of the language"),
        ("lambda", r"it is a Python keyword"),
        ("np", r"it is a name generated code uses"),
        ("2x", r"a function name is an identifier"),
        ("__f", r"names starting with __ are reserved"),
    ],
)
def test_registering_a_name_that_is_taken_is_an_error(name, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.register_function(name, np.sin, np.cos)


def test_registering_checks_the_functions():
    with pytest.raises(tc.SpecError, match=r"df must be a function of an array, got int"):
        tc.register_function("bad", np.sin, 3)
    with pytest.raises(tc.SpecError, match=r"f\(x\) returned shape \(\) for x of shape \(3,\)"):
        tc.register_function("bad", np.sum, np.cos)
    with pytest.raises(tc.SpecError, match=r"unknown function 'bad'"):
        tc.parse("dim n = 2\nparam x[n]\nf = sum(bad(x))")


# --- drawn networks --------------------------------------------------------------------

LAYERS = (
    "gelu({a})",
    "erf({a})",
    "silu({a})",
    "logsigmoid({a})",
    "log1p(square({a}))",
    "expm1(tanh({a}))",
    "sigmoid({b}) ^ tanh({a})",
    "max(0, {a}) + {a}",
    "maximum({a}, {b})",
    "minimum({a}, 0.1)",
    "clip({a}, -0.3, 0.8)",
    "where({a} > {b}, {a} * {b}, sin({a}))",
    "where({a} <= 0.2, {b}, 0.5 * {a})",
)


@st.composite
def function_networks(draw):
    """A few layers, each a dense map then one of the new functions or
    selections of it and an earlier activation; a scalar loss at the end."""
    n = draw(st.integers(1, 3))
    lines = [f"dim n = {n}", "param x[n]"]
    acts = ["x"]
    for k in range(1, draw(st.integers(1, 3)) + 1):
        lines.append(f"param W{k}[n, n]")
        lines.append(f"z{k}[i] = W{k}[i, j] * {acts[-1]}[j]")
        layer = draw(st.sampled_from(LAYERS))
        other = draw(st.sampled_from(acts))
        lines.append(f"h{k} = " + layer.format(a=f"z{k}", b=other))
        acts.append(f"h{k}")
    lines.append(f"L = sum(square({acts[-1]}) + {acts[-1]})")
    return "\n".join(lines) + "\n"


@settings(max_examples=20)
@given(text=function_networks(), seed=st.integers(0, 2**16))
def test_drawn_networks_agree_with_the_reshape_method_and_the_reference(text, seed):
    net = tc.parse(text)
    v = net.random_values(seed=seed)
    for w in net.params:
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-12, w
    w = net.params[-1]
    H = net.hessian("L", w, v).array
    assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-12


def test_an_unregistered_function_stays_in_the_networks_parsed_with_it():
    tc.register_function("twice", lambda x: 2 * x, lambda x: 0 * x + 2)
    net = tc.parse("dim n = 2\nparam x[n]\nf = sum(twice(x))")
    assert net.evaluate({"x": np.array([1.0, 2.0])})["f"] == 6.0
    later = tc.parse("dim n = 2\nparam x[n]\nf = sum(twice(x))")
    tc.unregister_function("twice")
    assert net.evaluate({"x": np.array([1.0, 3.0])})["f"] == 8.0  # parsed with it
    assert later.evaluate({"x": np.array([1.0, 3.0])})["f"] == 8.0
    with pytest.raises(tc.SpecError, match=r"unknown function 'twice'"):
        tc.parse("dim n = 2\nparam x[n]\nf = sum(twice(x))")


def test_generated_code_names_a_registered_function_without_source():
    import functools

    tc.register_function("scaled", np.ones_like, functools.partial(np.full_like, fill_value=2.0))
    try:
        net = tc.parse("dim n = 2\nparam x[n]\nf = sum(scaled(x))")
        assert net.grad("f", "x", {"x": np.array([1.0, 2.0])})["x"].tolist() == [2.0, 2.0]
        with pytest.raises(tc.DerivativeError, match=r"generated code copies the source of"):
            net.derive("f", "x").to_python()
    finally:
        tc.unregister_function("scaled")
    tc.register_function("sinus", np.sin, np.cos, lambda x: -np.sin(x))
    try:
        net = tc.parse("dim n = 2\nparam x[n]\nf = sum(sinus(x))")
        source = net.derive("f", "x").to_python()
        assert "d_sinus = np.cos" in source
        namespace: dict = {}
        exec(source, namespace)
        np.testing.assert_allclose(namespace["grad_f_x"](np.array([0.5, 1.0])), np.cos([0.5, 1.0]))
    finally:
        tc.unregister_function("sinus")
