"""Faults found by a newcomer's trial and an adversarial trial of linear
algebra (issue 18) and verification (issue 19), one regression test each
(each failed before its fix)."""

import re
import subprocess
import sys

import numpy as np
import pytest

import tensorchain as tc
from tensorchain.verify import tensor_entry


def run(*args, cwd=None):
    return subprocess.run(
        [sys.executable, "-m", "tensorchain.cli", *args], capture_output=True, text=True, cwd=cwd
    )


def test_a_transposed_inverse_is_printed_once():
    """∂ logdet X/∂X = X⁻ᵀ was printed inv(X)ᵀ[j, i], which reads as X⁻¹[i, j]."""
    net = tc.parse("dim n = 3\nparam X[n, n]\nl = logdet(X)")
    v = net.random_values(seed=1)
    d = net.derive("l", "X", v)
    assert str(d) == "∂l/∂X[i, j] = inv(X)[j, i]"
    assert "ᵀ" not in d.latex() and r"\left(X\right)^{-1}" in d.latex()
    # the printed formula, read literally, is the gradient
    np.testing.assert_allclose(np.linalg.inv(v["X"]).T, net.grad("l", "X", v)["X"], rtol=1e-12)


def test_formula_letters_are_never_a_dim_or_tensor_name():
    """`res[p] · Xv[p, q]` used p, also the name of a dim of another size."""
    net = tc.parse(
        "dim p = 3\ndim q = 2\ndim i = 4\nparam X[p, q]\ninput y[p]\ninput z[i]"
        "\nres[a] = X[a, b] * y[a] * z[c]\nl = res[k] * res[k]"
    )
    d = net.derive("l", "X")
    letters = set(re.findall(r"\[([^\]]*)\]", str(d)))
    used = {c.strip() for group in letters for c in group.split(",")}
    assert not used & {"p", "q", "i", "X", "y"}, str(d)


def test_negative_terms_print_with_a_minus_and_equal_terms_add():
    net = tc.parse("dim n = 3\nparam X[n, n]\nY = inv(X)\nl = Y[i, j] * Y[j, i]")
    text = str(net.derive("l", "X"))
    assert "+ -" not in text and "(1 + 1)" not in text
    assert text.startswith("∂l/∂X[i, j] = -2 · ")


def test_entries_of_a_square_tensor_prime_the_repeated_dim():
    assert tensor_entry("S", ("n", "n"), (1, 0)) == "S[n=1, n'=0]"


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_check_gradient_refuses_sizes_that_are_not_positive_integers(bad):
    """dims={'n': 0} once gave a report blaming your gradient."""
    net = tc.parse("dim n\nparam w[n]\nf = sum(w ^ 2)")
    with pytest.raises(tc.ShapeError, match="dim n must be a positive integer"):
        tc.check_gradient(lambda v: 2 * v["w"], net, "f", dims={"n": bad})


def test_a_wrong_scalar_gradient_is_not_called_a_constant_factor():
    """With one entry every wrong value is 'c times the exact one'."""
    net = tc.parse("param s\nf = exp(s)")
    check = tc.check_gradient(lambda v: {"s": np.exp(v["s"]) * 1.37}, net, "f")
    assert not check.ok
    assert "times the exact one" not in str(check)


def test_a_gradient_of_the_wrong_shape_is_reported_plainly():
    net = tc.parse("dim n\ninput x[n]\nparam w[n]\nparam s\nf = sum(w * x) * s")
    check = tc.check_gradient(
        lambda v: {"w": np.sum(v["w"] * v["x"]) * 0 + v["x"] * v["s"], "s": np.zeros(1)}, net, "f"
    )
    text = str(check)
    assert "by s: yours has shape (1,), the gradient () (a scalar, like s)" in text
    assert "tolerance" not in text.split("by s:")[1].split("\n")[1]
    assert "no single wrong sign" not in text


def test_check_gradient_casts_given_values_to_the_dtype_asked_for():
    """dtype=float32 was ignored when values were given."""
    net = tc.parse("dim n = 3\nparam w[n]\nf = sum(w ^ 2)")
    seen = []

    def grad(v):
        seen.append(v["w"].dtype)
        return 2 * v["w"]

    check = tc.check_gradient(grad, net, "f", values=net.random_values(), dtype=np.float32)
    assert check.ok and seen == [np.float32] and "float32" in str(check)


def test_matrix_function_hints_are_spellings_that_parse():
    with pytest.raises(tc.SpecError) as err:
        tc.parse("dim n = 3\ndim b = 2\nparam X[b, n, n]\nY[s, i, j] = inv(X[s, i, j], j)")
    hint = re.search(r"e\.g\. (.*)", str(err.value).splitlines()[0])[1]
    tc.parse(f"dim n = 3\ndim b = 2\nparam X[b, n, n]\nY[s, i, j] = {hint}")
    with pytest.raises(tc.ShapeError) as err:
        tc.parse("dim n = 3\ndim m = 2\nparam X[n, m]\nl = logdet(X)")
    assert "#" not in str(err.value) and "last two axes of X are n=3 and m=2" in str(err.value)


def test_a_higher_derivative_report_names_no_part_after_the_whole(tmp_path):
    """`derive --order 2` printed parts of the derivative under the name of
    the derivative (∂²l/∂W∂W), internal names unexplained, and no value of a
    scalar one."""
    spec = tmp_path / "o2.tc"
    spec.write_text(
        "dim n = 3\nparam W[n, n]\ninput C[n, n]\nparam s\nR = inv(W)\nl = R[i,j]*C[j,i] * s^2\n"
    )
    out = run("derive", str(spec), "--order", "2").stdout
    assert "∂W∂W" not in out and "∂s∂s" not in out
    assert "arrays the chain rule contracted" in out
    assert "shape () (a scalar)" in out
    assert "where ∂l/∂(l.1) = R[i, j] * C[j, i]" in out
    value = float(re.search(r"∂²l/∂s² =\n\s*(\S+)", out)[1])
    net = tc.load(str(spec))
    v = net.random_values(seed=0)
    exact = 2 * np.einsum("ij,ji->", np.linalg.inv(v["W"]), v["C"])  # ∂²(k s²)/∂s² = 2k
    assert value == pytest.approx(exact, rel=1e-5)
