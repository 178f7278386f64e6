"""Faults found by a newcomer's trial and an adversarial trial of the fixes of
issue 16, one regression test each (each failed before its fix)."""

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorchain as tc
from tensorchain.cli import main
from tensorchain.presentation.derivation import module_source

ARTICLE = tc.parse(tc.ARTICLE)


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tensorchain.cli", *args], capture_output=True, text=True
    )


def test_a_compiled_function_never_casts_values_silently():
    """Complex values into a float64 program once lost their imaginary part."""
    vals = ARTICLE.random_values(seed=0)
    complex_vals = {k: a + 0.3j * a for k, a in vals.items()}
    grad = ARTICLE.compile_grad("C", "W", n=4, m=3)
    with pytest.raises(tc.ValuesError, match=r"compiled for float64 values, but these are"):
        grad(complex_vals)
    as32 = {k: a.astype(np.float32) for k, a in vals.items()}
    np.testing.assert_allclose(grad(as32)["W"], ARTICLE.grad("C", "W", vals)["W"], rtol=1e-6)
    right = ARTICLE.compile_grad("C", "W", n=4, m=3, dtype=np.complex128)(complex_vals)["W"]
    np.testing.assert_allclose(right, ARTICLE.grad("C", "W", complex_vals)["W"])
    for bad in ("banana", np.int32):
        with pytest.raises(tc.ValuesError, match=r"tensorchain compiles for float32, float64"):
            ARTICLE.compile_grad("C", "W", n=4, m=3, dtype=bad)


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
def test_softmax_under_jax_jit():
    """The limit at +inf once asked a traced value for its truth value."""
    import jax

    jax.config.update("jax_enable_x64", True)
    net = tc.parse("dim n = 3\nparam z[n]\np = softmax(z, n)\nL = sum(p * p)")
    z = np.array([0.1, 0.5, -0.2])
    jitted = jax.jit(lambda v: net.grad("L", "z", v)["z"])
    np.testing.assert_allclose(
        np.asarray(jitted({"z": jax.numpy.asarray(z)})), net.grad("L", "z", {"z": z})["z"]
    )


def test_derive_refuses_an_unaffordable_reference_before_computing(capsys, monkeypatch):
    def never(*args, **kwargs):
        raise AssertionError("the derivation ran before the forecast refused it")

    monkeypatch.setattr(tc.Network, "forward", never)
    tc.set_memory_limit(2**20)
    try:
        assert main(["derive", "--dims", "n=5000,m=3"]) == 9
    finally:
        tc.set_memory_limit(None)
    captured = capsys.readouterr()
    assert "the reshape method for dC/dW would hold" in captured.err
    assert "local derivatives" not in captured.out  # refused before the derivation ran


@pytest.mark.parametrize("call", ["sum(2, n)", "logsumexp(0, n)", "softmax(0, n)"])
def test_a_function_along_indices_of_a_number(call):
    net_text = f"dim n = 2\ninput z[n]\nr = {call}"
    with pytest.raises(tc.SpecError, match=r"runs along indices of a tensor, but its first"):
        tc.parse(net_text)


def test_a_tensor_with_more_axes_than_einsum_letters():
    axes, idx = ", ".join(["u"] * 53), ", ".join(f"i{k}" for k in range(53))
    with pytest.raises(tc.ShapeError, match=r"T has 53 axes, more than 52"):
        tc.parse(f"dim u = 1\nparam T[{axes}]\nparam x[u]\nf = T[{idx}] * x[i0]")


def test_blocks_and_chains_check_their_sizes():
    J = ARTICLE.jacobian("a", "W", ARTICLE.random_values(n=2, m=3))
    with pytest.raises(tc.ShapeError, match=r"block range \(-1, 2\) of axis n"):
        J.block([(-1, 2), (0, 2), (0, 3)])
    with pytest.raises(tc.ShapeError, match=r"one \(start, stop\) range per axis: 3"):
        J.block([(0, 1)])
    with pytest.raises(tc.ShapeError, match=r"their sizes must agree"):
        J.chain(J, 2)


def test_references_check_their_arguments():
    net = tc.parse("dim n = 2\nparam x[n]\nf = sum(softplus(x))")
    with pytest.raises(tc.ValuesError, match=r"softplus .* has no complex derivative"):
        tc.reference_derivative(net, "f", "x", {"x": np.ones(2) + 1j})
    with pytest.raises(tc.DerivativeError, match=r"reshape_hessian takes tensor names"):
        tc.reshape_hessian(ARTICLE, "C", ["W"], ARTICLE.random_values())


def test_command_line_arguments(tmp_path):
    assert run("paths", "--of", "nope").returncode == 7
    assert "unknown tensor 'nope'" in run("hessian", "--of", "nope").stderr
    assert re.search(r"sizes: m=2, n=5", run("derive", "--dims", "n=5", "--dims", "m=2").stdout)
    twice = run("derive", "--dims", "n=5", "--dims", "n=2")
    assert twice.returncode == 2 and "dim n is given twice" in twice.stderr
    assert run("derive", "--dims", "=4").returncode == 2
    empty = run("derive", "--wrt", "")
    assert empty.returncode == 2 and "names no tensor" in empty.stderr
    spaced = run("derive", "--dims", "n=4", "m=3")
    assert spaced.returncode == 2 and "'m=3' is not a file" in spaced.stderr
    plot = run("paths", "--plot", str(tmp_path / "missing" / "x.png"))
    assert (plot.returncode == 1 and "cannot write" in plot.stderr) or plot.returncode == 1


def test_a_summed_factor_prints_its_sum():
    net = tc.parse("dim n = 3\nparam x[n]\nparam w\nf = sum(tanh(x)) * w")
    assert str(net.derive("f", "w")) == "∂f/∂w = Σ(tanh(x))"


def test_arguments_of_the_python_api():
    vals = ARTICLE.random_values()
    with pytest.raises(tc.DerivativeError, match=r"expected a tensor name"):
        ARTICLE.jacobian(["a", "z"], "W", vals)
    for bad in ("1GB", -5):
        with pytest.raises(tc.PlanError, match=r"a memory limit is a positive whole number"):
            ARTICLE.grad("C", values=vals, memory_limit=bad)
    with pytest.raises(tc.ValuesError, match=r"the seed is a whole number"):
        ARTICLE.random_values(seed="a")
    with pytest.raises(tc.DerivativeError, match=r"wrt is an empty list"):
        ARTICLE.grad("C", [], vals)
    tc.set_memory_limit(1.5e9)
    try:
        assert tc.get_memory_limit() == 1_500_000_000
    finally:
        tc.set_memory_limit(None)


def test_generated_code_refuses_other_sizes():
    source = module_source([ARTICLE.derive("C", "W", n=4, m=3)], names=["g"])
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own generated code
    vals = ARTICLE.random_values(n=5, m=3)
    with pytest.raises(ValueError, match=r"y has shape \(5,\) but this code was generated for"):
        namespace["g"](**vals)
