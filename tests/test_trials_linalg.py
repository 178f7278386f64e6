"""Faults found by a newcomer's trial and an adversarial trial of linear
algebra (issue 18) and verification (issue 19), one regression test each
(each failed before its fix)."""

import importlib.util
import re
import subprocess
import sys

import numpy as np
import pytest

import tensorchain as tc
from tensorchain.verification.entries import tensor_entry


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


@pytest.mark.parametrize("batch", [2, 3])
def test_references_of_a_batched_det_with_signs_of_both_kinds(batch):
    """The references multiplied every batch entry by the sign of the whole
    batch's determinants (or raised when the batch size was not n)."""
    net = tc.parse(
        f"dim n = 2\ndim s = {batch}\nparam X[s, n, n]\nd[s] = det(X[s, i, j], i, j)"
        "\nL = sum(d * d * d)"
    )
    v = net.random_values(seed=3)
    v["X"][0] = np.diag([1.0, -1.0])  # det −1
    v["X"][1] = np.diag([2.0, 1.5])  # det 3
    dets = np.linalg.det(v["X"])
    closed = 3 * dets[:, None, None] ** 3 * np.linalg.inv(v["X"]).transpose(0, 2, 1)  # (MC 49)
    np.testing.assert_allclose(tc.reshape_method(net, "L", "X", v), closed, rtol=1e-10)
    np.testing.assert_allclose(
        tc.reference_derivative(net, "L", ("X",), v), closed, rtol=1e-10, atol=1e-12
    )
    assert net.verify("L", ["X", ("X", "X")], v, references=["reference"]).ok


def test_check_gradient_allows_for_the_condition_of_a_solve():
    """A correct backward pass through a solve (condition number 418) was
    failed: the tolerance did not grow with the condition number."""
    net = tc.parse("dim n\nparam X[n, n]\nparam b[n]\nx = solve(X, b)\nL = sum(x ^ 2)")

    def backward(v):
        x = np.linalg.solve(v["X"], v["b"])
        lam = np.linalg.solve(v["X"].T, 2 * x)
        return {"X": -np.outer(lam, x), "b": lam}

    rng = np.random.default_rng(7)
    u, _, vt = np.linalg.svd(rng.standard_normal((4, 4)))
    values = {"X": u @ np.diag([3.0, 1.0, 0.1, 3e-3]) @ vt, "b": rng.standard_normal(4)}
    assert np.linalg.cond(values["X"]) > 500
    assert tc.check_gradient(backward, net, "L", values=values).ok
    assert tc.check_gradient(backward, net, "L").ok

    def slightly_off(v):
        out = backward(v)
        out["b"] = out["b"] * (1 + 1e-6)
        return out

    text = str(tc.check_gradient(slightly_off, net, "L", values=values))
    assert "(1 + 1e-06) times the exact one: a relative error of 1e-06" in text
    assert "the condition number of a matrix" in text


def test_verify_takes_a_one_sided_derivative_at_a_kink_as_no_failure():
    """JAX takes abs′(0) = 1 where tensorchain takes 0: the JAX row failed."""
    pytest.importorskip("jax")
    net = tc.parse("dim n = 2\nparam x[n]\nf = sum(abs(x))")
    report = net.verify("f", "x", {"x": np.array([0.0, 1.0])})
    assert report.ok
    jax_row = next(r for r in report.rows if r.reference.startswith("jax"))
    assert jax_row.status == "kink" and "differs only at the 1 entry" in jax_row.note
    # a real difference away from the kink still fails
    net2 = tc.parse("dim n = 2\nparam x[n]\nf = sum(abs(x) * x)")
    assert net2.verify("f", "x", {"x": np.array([0.0, 1.0])}).ok


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"max_size": 0}, "max_size is a positive integer"),
        ({"examples": 0}, "examples is a positive integer"),
        ({"rtol": -1.0}, "rtol is a number ≥ 0"),
        ({"atol": float("nan")}, "atol is a number ≥ 0"),
        ({"dtype": np.float16}, "dtype is float32 or float64, got float16"),
        ({"values": {"w": np.array([1.0, np.nan, 2.0])}}, "the value of w holds NaN"),
    ],
)
def test_check_gradient_arguments_get_clear_errors(kwargs, message):
    net = tc.parse("dim n = 3\nparam w[n]\nf = sum(w ^ 2)")
    with pytest.raises(tc.ValuesError, match=re.escape(message)):
        tc.check_gradient(lambda v: 2 * v["w"], net, "f", **kwargs)


def test_a_ragged_gradient_and_a_missing_library_get_clear_errors():
    net = tc.parse("dim n = 3\nparam w[n]\nf = sum(w ^ 2)")
    with pytest.raises(tc.ValuesError, match="your gradient by w is not an array of numbers"):
        tc.check_gradient(lambda v: {"w": [[1.0, 2.0], [3.0]]}, net, "f")
    for library in ("torch", "jax"):
        if importlib.util.find_spec(library) is None:
            with pytest.raises(tc.ValuesError, match=f"{library} is not installed"):
                tc.check_gradient(lambda v: 2 * v["w"], net, "f", library=library)


@pytest.mark.parametrize("tolerance", [-1.0, float("nan"), 0.0])
def test_verify_refuses_a_tolerance_that_is_not_positive(tolerance):
    net = tc.parse("dim n = 3\nparam w[n]\nf = sum(w ^ 2)")
    with pytest.raises(tc.DerivativeError, match="tolerance is a number > 0"):
        net.verify("f", "w", tolerance=tolerance)
