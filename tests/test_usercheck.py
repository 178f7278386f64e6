"""tc.check_gradient and assert_gradient_close: a catalogue of deliberately
wrong backward functions, each caught, pinpointed by named index and
diagnosed, each correct counterpart passing; float32, torch and JAX user
code; shrinking with and without hypothesis."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.testing import assert_gradient_close
from tensorchain.verification import search as example_search

MLP = """\
dim B
dim w
dim m
input x[B, m]
input y[B, w]
param W1[w, m]
param b1[w]
param W2[w, w]
param b2[w]
z1[s, i] = W1[i, j] * x[s, j] + b1[i]
a1 = sigmoid(z1)
z2[s, i] = W2[i, j] * a1[s, j] + b2[i]
L = sum((z2 - y) ^ 2)
"""

PRODUCT = """\
dim B
dim n
dim m
input x[B, m]
param W[n, m]
z[s, i] = W[i, j] * x[s, j]
a = tanh(z)
p = z * a
L = sum(p)
"""


def mlp_backward(v, bug=None):
    """The 2-layer network's backward pass by hand; ``bug`` makes one mistake."""
    x, y, W1, b1, W2, b2 = (v[k] for k in ("x", "y", "W1", "b1", "W2", "b2"))
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    z2 = a1 @ W2.T + b2
    dz2 = (z2 - y) if bug == "factor 2" else 2 * (z2 - y)
    da1 = dz2 @ W2.T if bug == "transpose" else dz2 @ W2
    if bug == "sign":
        dz1 = da1 * a1 * (a1 - 1)
    elif bug == "sigmoid'":
        dz1 = da1
    else:
        dz1 = da1 * a1 * (1 - a1)
    grads = {"W1": dz1.T @ x, "b1": dz1.sum(0), "W2": dz2.T @ a1, "b2": dz2.sum(0)}
    if bug == "off by one":
        grads["b2"] = dz2[:-1].sum(0)
    if bug == "mean":
        grads["W2"] = dz2.T @ a1 / len(x)
    return grads


def product_backward(v, bug=None):
    z = v["x"] @ v["W"].T
    a = np.tanh(z)
    dz = a if bug == "product rule" else a + z * (1 - a * a)
    return {"W": dz.T @ v["x"]}


MLP_NET, PRODUCT_NET = tc.parse(MLP), tc.parse(PRODUCT)

CATALOGUE = [
    ("transpose", MLP_NET, mlp_backward, "∂z2/∂a1 with its factor W2 transposed", "W1[w="),
    ("sign", MLP_NET, mlp_backward, "∂a1/∂z1 with the wrong sign", "b1[w="),
    ("factor 2", MLP_NET, mlp_backward, "∂L/∂z2 half what it is", "W2[w="),
    ("off by one", MLP_NET, mlp_backward, "the last B (B=2) left out of the sum over B", "b2[w="),
    (
        "mean",
        MLP_NET,
        mlp_backward,
        "times the exact one: a mean over B where the loss has a sum",
        "W2[w=",
    ),
    ("sigmoid'", MLP_NET, mlp_backward, "∂a1/∂z1 without its factor σ'(z1)", "W1[w="),
    ("product rule", PRODUCT_NET, product_backward, "∂p/∂a left out", "W[n="),
]


@pytest.mark.parametrize(
    ("bug", "net", "backward", "diagnosis", "entry"), CATALOGUE, ids=[c[0] for c in CATALOGUE]
)
def test_a_wrong_backward_is_caught_pinpointed_and_diagnosed(bug, net, backward, diagnosis, entry):
    result = tc.check_gradient(lambda v: backward(v, bug), net, "L")
    assert not result.ok
    text = str(result)
    assert f"    {entry}" in text  # a differing entry, by named index
    assert "yours" in text and "exact" in text
    assert diagnosis in text, text
    assert result.mismatches and all(m.count > 0 for m in result.mismatches)


@pytest.mark.parametrize(
    "net, backward", [(MLP_NET, mlp_backward), (PRODUCT_NET, product_backward)]
)
def test_the_correct_backward_passes(net, backward):
    result = tc.check_gradient(backward, net, "L")
    assert result.ok, result
    assert result.examples >= 15
    assert "agrees with the exact one" in str(result)


def test_nan_is_a_difference():
    def backward(v):
        g = mlp_backward(v)
        g["b2"][0] = np.nan
        return g

    result = tc.check_gradient(backward, MLP_NET, "L")
    assert "b2[w=0]: yours nan, exact" in str(result)


def test_a_gradient_off_by_any_constant_factor():
    def backward(v):
        return {"W": 1.01 * product_backward(v)["W"]}

    result = tc.check_gradient(backward, PRODUCT_NET, "L")
    assert "your gradient by W is 1.01 times the exact one" in str(result)


def test_the_failure_is_shrunk_to_the_smallest_sizes(monkeypatch):
    """W2 transposed makes no difference at w = 1: the smallest failing
    example has w = 2 and every other size 1, with and without hypothesis."""
    found = tc.check_gradient(lambda v: mlp_backward(v, "transpose"), MLP_NET, "L")
    assert found.sizes == {"B": 1, "w": 2, "m": 1}
    monkeypatch.setattr(example_search, "_use_hypothesis", lambda: False)
    plain = tc.check_gradient(lambda v: mlp_backward(v, "transpose"), MLP_NET, "L", seed=3)
    assert plain.sizes == {"B": 1, "w": 2, "m": 1}
    assert "∂z2/∂a1 with its factor W2 transposed" in str(plain)
    unshrunk = tc.check_gradient(
        lambda v: mlp_backward(v, "transpose"), MLP_NET, "L", seed=3, shrink=False
    )
    assert unshrunk.sizes == unshrunk.first_sizes and unshrunk.sizes["w"] >= 2


def test_one_wrong_entry_at_fixed_sizes_is_named():
    def backward(v):
        g = mlp_backward(v)
        g["W1"][3, 5] += 1e-6 * np.abs(g["W1"]).max()
        return g

    result = tc.check_gradient(backward, MLP_NET, "L", dims={"B": 8, "w": 16, "m": 16})
    assert not result.ok
    (m,) = result.mismatches
    assert (m.wrt, m.count, m.total) == ("W1", 1, 256)
    assert m.entries[0][0] == (3, 5)
    assert "by W1: 1 of 256 entries differ\n    W1[w=3, m=5]: yours" in str(result)
    assert "by b1, W2, b2: agrees" in str(result)


def test_float32_code_against_the_exact_float64_gradient():
    """Correct float32 code passes with tolerances from its dtype; an error of
    1e-4 times the largest entry, in that entry, is caught."""
    dims = {"B": 8, "w": 32, "m": 32}
    assert tc.check_gradient(mlp_backward, MLP_NET, "L", dtype=np.float32).ok
    assert tc.check_gradient(mlp_backward, MLP_NET, "L", dtype=np.float32, dims=dims).ok

    def off(v):
        g = mlp_backward(v)
        worst = np.unravel_index(np.argmax(np.abs(g["W1"])), g["W1"].shape)
        g["W1"][worst] *= 1 + 1e-4
        return g

    result = tc.check_gradient(off, MLP_NET, "L", dtype=np.float32, dims=dims)
    assert not result.ok
    assert result.mismatches[0].count == 1
    assert result.dtype == np.float32
    assert "float32, numpy arrays" in str(result)


def test_a_transposed_gradient_of_another_shape():
    def backward(v):
        g = mlp_backward(v)
        g["W1"] = g["W1"].T
        return g

    result = tc.check_gradient(backward, MLP_NET, "L", dims={"m": 3, "w": 2})
    text = str(result)
    assert (
        "by W1: yours has shape (3, 2), the gradient (2, 3) (like W1[w of 2, m of 3]):"
        " the transpose" in text
    )
    assert "your gradient by W1 is the exact one transposed" in text


@pytest.mark.skipif(importlib.util.find_spec("torch") is None, reason="torch is not installed")
def test_a_custom_torch_autograd_function():
    import torch

    class Loss(torch.autograd.Function):
        bug = False

        @staticmethod
        def forward(ctx, x, y, W1, b1, W2, b2):
            a1 = torch.sigmoid(x @ W1.T + b1)
            z2 = a1 @ W2.T + b2
            ctx.save_for_backward(x, y, a1, z2, W2)
            return ((z2 - y) ** 2).sum()

        @staticmethod
        def backward(ctx, g):
            x, y, a1, z2, W2 = ctx.saved_tensors
            dz2 = 2 * g * (z2 - y)
            da1 = dz2 @ (W2.T if Loss.bug else W2)
            dz1 = da1 * a1 * (1 - a1)
            return None, None, dz1.T @ x, dz1.sum(0), dz2.T @ a1, dz2.sum(0)

    names = ["W1", "b1", "W2", "b2"]

    def grads(v):
        params = [v[k].requires_grad_() for k in names]
        return torch.autograd.grad(Loss.apply(v["x"], v["y"], *params), params)

    assert tc.check_gradient(grads, MLP_NET, "L", library="torch").ok
    Loss.bug = True
    result = tc.check_gradient(grads, MLP_NET, "L", library="torch", dtype=np.float32)
    assert not result.ok
    assert "∂z2/∂a1 with its factor W2 transposed" in str(result)
    assert "float32, torch arrays" in str(result)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax is not installed")
def test_jax_gradients_in_float64():
    import jax
    import jax.numpy as jnp

    def loss(W1, b1, W2, b2, x, y):
        return jnp.sum((jax.nn.sigmoid(x @ W1.T + b1) @ W2.T + b2 - y) ** 2)

    def grads(v):
        return jax.grad(loss, argnums=(0, 1, 2, 3))(
            *(v[k] for k in ("W1", "b1", "W2", "b2", "x", "y"))
        )

    before = jax.config.jax_enable_x64  # other tests may have turned it on
    jax.config.update("jax_enable_x64", False)
    try:
        result = tc.check_gradient(grads, MLP_NET, "L", library="jax", examples=5)
        assert not jax.config.jax_enable_x64  # the user's setting is left as it was
    finally:
        jax.config.update("jax_enable_x64", before)
    assert result.ok, result
    assert result.tolerance["W1"].rtol < 1e-14  # float64 arrays reached the function


def test_inside_a_hypothesis_test():
    @settings(max_examples=2)
    @given(st.integers(0, 5))
    def test(seed):
        assert not tc.check_gradient(lambda v: mlp_backward(v, "sign"), MLP_NET, "L", seed=seed)

    test()


def test_assert_gradient_close():
    assert_gradient_close(mlp_backward, MLP_NET, "L")
    with pytest.raises(AssertionError, match=r"(?s)by W2: .*W2\[w=\d, w'=\d\]: yours.*1/B"):
        assert_gradient_close(lambda v: mlp_backward(v, "mean"), MLP_NET, "L")
    values = MLP_NET.random_values(seed=2, B=4, w=3, m=2)
    grads = mlp_backward(values, "sign")
    with pytest.raises(AssertionError, match=r"(?s)b1\[w=\d\]: yours .*wrong sign"):
        assert_gradient_close(grads, MLP_NET, "L", values=values)
    assert_gradient_close(mlp_backward(values), MLP_NET, "L", values=values)
    with pytest.raises(TypeError, match=r"give the values your gradients were computed at"):
        assert_gradient_close(grads, MLP_NET, "L")


def test_bad_use_is_a_clear_error():
    with pytest.raises(tc.ValuesError, match=r"takes your gradient function first, got dict"):
        tc.check_gradient({}, MLP_NET, "L")
    with pytest.raises(
        tc.ValuesError, match=r"returned no gradient for W2, b2 \(it returned W1, b1\)"
    ):
        tc.check_gradient(lambda v: {k: mlp_backward(v)[k] for k in ("W1", "b1")}, MLP_NET, "L")
    with pytest.raises(tc.ValuesError, match=r"returned 2 gradients for 4 tensors"):
        tc.check_gradient(lambda v: [v["W1"], v["b1"]], MLP_NET, "L")
    with pytest.raises(tc.DerivativeError, match=r"check_gradient needs a scalar, but z2 has"):
        tc.check_gradient(mlp_backward, MLP_NET, "z2")
    with pytest.raises(tc.ValuesError, match=r"library is one of numpy, torch, jax"):
        tc.check_gradient(mlp_backward, MLP_NET, "L", library="cupy")
    with pytest.raises(ZeroDivisionError) as raised:
        tc.check_gradient(lambda v: 1 / 0, MLP_NET, "L")
    assert "called by check_gradient at sizes" in raised.value.__notes__[0]
