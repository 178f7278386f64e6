"""net.verify and tensorchain verify: tensorchain's derivatives against the
reshape method, the dense reference, finite differences, JAX and PyTorch;
the finite differences against closed forms; kinks reported as kinks; a
wrong result pinpointed by named index."""

import importlib.util

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.cli import main
from tensorchain.reference.differences import central_differences
from tensorchain.strategies import jacobian_networks, networks
from tensorchain.verification import verify as verify_module

HAVE = {lib: importlib.util.find_spec(lib) is not None for lib in ("jax", "torch")}
EVERY = ["reference", "differences", *(lib for lib, ok in HAVE.items() if ok)]


# --- central differences ---


def test_differences_agree_with_closed_forms_within_their_error_estimate():
    x = np.array([1.0, -2.0, 0.3, 30.0, -7.5])
    d = central_differences(lambda v: np.sin(3 * v) + v**3, x)
    exact = np.diag(3 * np.cos(3 * x) + 3 * x**2)
    assert np.all(np.abs(d.value - exact) <= d.error)
    assert np.max(np.abs(d.value - exact)) < 1e-8
    assert not d.kink.any()
    assert d.checked.all()


def test_differences_mark_a_kink_within_the_step():
    x = np.array([0.0, 1e-6, 0.5, -1e-7, -0.5])
    d = central_differences(lambda v: np.sum(np.abs(v)), x, atol=1e-6)
    assert d.kink.tolist() == [True, True, False, True, False]
    assert np.allclose(d.value[[2, 4]], [1.0, -1.0])


def test_differences_of_a_sample_of_entries():
    x = np.arange(6.0)
    d = central_differences(lambda v: v**2, x, entries=[1, 4])
    assert d.checked.tolist() == [False, True, False, False, True, False]
    assert np.isnan(d.value[:, 0]).all()
    assert np.allclose(d.value[:, 4], np.eye(6)[4] * 8.0)


# --- verify ---


def test_verify_the_article_against_every_reference():
    net = tc.parse(tc.ARTICLE)
    report = net.verify("C", references=EVERY)
    assert report.ok, report
    assert [r.derivative for r in report.rows] == ["∂C/∂W"] * len(EVERY) + ["∂C/∂b"] * len(EVERY)
    assert {r.status for r in report.rows} == {"pass"}
    by = {(r.derivative, r.reference): r for r in report.rows}
    assert by["∂C/∂W", "reshape method"].max_abs < 1e-15
    assert by["∂C/∂W", "finite differences"].max_abs < 1e-9
    assert by["∂C/∂W", "reshape method"].worst.startswith("∂C/∂W[n=")
    text = str(report)
    assert "every reference agrees" in text
    assert "passes when max abs ≤ 1e-9 · max(1, |ref|): reshape method" in text
    html = report._repr_html_()
    assert html.count("<tr>") == len(report.rows) + 1 and "every reference agrees" in html


def test_verify_names_what_it_could_not_run():
    net = tc.parse(tc.ARTICLE)
    report = net.verify("C", "z", references=EVERY)
    rows = {r.reference: r for r in report.rows}
    assert rows["reshape method"].status == "pass"
    assert rows["finite differences"].status == "not run"
    assert "z is computed by the network" in rows["finite differences"].note
    assert report.ok
    nothing = net.verify("C", "z", references=["differences"])
    assert not nothing.ok
    assert "nothing was verified" in str(nothing)


def test_verify_jacobians_and_higher_orders():
    net = tc.parse(tc.ARTICLE)
    report = net.verify("a", "W", references=EVERY)
    assert report.ok, report
    assert report.rows[0].worst.startswith("∂a[n=")
    hessian = net.verify("C", ("W", "b"), references=EVERY)
    assert hessian.ok, hessian
    assert hessian.rows[0].reference == "dense reference"
    assert hessian.rows[1].reference == "finite differences of ∂C/∂W"
    third = net.verify("C", "b", order=3, references=["reference", "differences"])
    assert third.ok and third.rows[0].derivative == "∂³C/∂b³"


def test_verify_draws_positive_values_where_the_network_needs_them():
    net = tc.parse("dim n = 3\ninput x[n]\nf = sum(log(x) * sqrt(x))")
    report = net.verify("f", references=["reference", "differences"])
    assert report.ok, report
    assert "|standard normal| + 0.5" in report.values_note


def test_a_kink_at_the_drawn_point_is_reported_as_such_not_as_a_failure():
    net = tc.parse("dim n = 4\ninput x[n]\nparam w[n]\nz = w * x\nf = sum(relu(z)) + sum(z * z)")
    values = net.random_values(seed=1)
    values["x"][2] = 0.0  # z[2] = 0: relu's kink, crossed by moving x[2]
    report = net.verify("f", "x", values, references=EVERY)
    rows = {r.reference: r for r in report.rows}
    fd = rows["finite differences"]
    assert fd.status == "kink"
    assert "a kink within the step at 1 entry (first ∂f/∂x[n=2])" in fd.note
    assert fd.max_abs < 1e-9  # every other entry agrees
    assert report.ok
    assert all(r.status == "pass" for r in report.rows if r is not fd)


def test_differences_that_are_nowhere_reliable_judge_nothing():
    net = tc.parse("dim n = 3\ninput x[n]\nf = sum(sin(10000 * x))")
    report = net.verify("f", "x", references=["reference", "differences"])
    fd = report.rows[1]
    assert fd.status == "not run" and fd.max_abs is None
    assert "3 entries not compared: their estimated error stays above" in fd.note
    assert report.ok  # the reshape method agrees


def test_a_wrong_result_fails_every_row_and_is_pinpointed(monkeypatch):
    """verify can fail: tensorchain's result made wrong in one entry."""
    real = verify_module._result

    def wrong(net, of, wrts, env, limit):
        out = real(net, of, wrts, env, limit).copy()
        out[2, 1] += 1e-3
        return out

    monkeypatch.setattr(verify_module, "_result", wrong)
    report = tc.parse(tc.ARTICLE).verify("C", "W", references=EVERY)
    assert not report.ok
    assert {r.status for r in report.rows} == {"fail"}
    assert {r.worst for r in report.rows} == {"∂C/∂W[n=2, m=1]"}
    assert all(abs(r.max_abs - 1e-3) < 1e-8 for r in report.rows)
    assert "DISAGREES with reshape method (∂C/∂W)" in str(report)


def test_nan_is_a_disagreement(monkeypatch):
    real = verify_module._result
    monkeypatch.setattr(
        verify_module, "_result", lambda *a: np.where(real(*a) > 0, np.nan, real(*a))
    )
    report = tc.parse(tc.ARTICLE).verify("C", "b", references=["reference"])
    assert not report.ok
    assert report.rows[0].worst.endswith("(NaN or infinity)")


def test_the_reshape_method_is_left_out_where_its_forecast_is_too_large():
    net = tc.parse(tc.ARTICLE)
    report = net.verify(
        "C", "W", references=["reference", "differences"], memory_limit=2**20, n=64, m=64
    )
    rows = {r.reference: r for r in report.rows}
    assert rows["reshape method"].status == "not run"
    assert "memory limit" in rows["reshape method"].note
    assert rows["finite differences"].status == "pass"
    assert "1,000 of W's 4,096 entries, drawn" in rows["finite differences"].note
    assert report.ok


def test_verify_refuses_what_it_cannot_do():
    net = tc.parse(tc.ARTICLE)
    with pytest.raises(tc.DerivativeError, match=r"references is a list of reference"):
        net.verify("C", references=["reshape"])
    with pytest.raises(tc.DerivativeError, match=r"order is a whole number of at least 1"):
        net.verify("C", "W", order=0)
    with pytest.raises(tc.DerivativeError, match=r"one derivative of order 2 already"):
        net.verify("C", ("W", "W"), order=2)
    with pytest.raises(tc.DerivativeError, match=r"unknown tensor 'V'"):
        net.verify("C", "V")


# --- the rows agree with each other on drawn networks ---


def _agree(drawn, references, wrt=None, seed=0):
    net = tc.parse(drawn.text)
    values = net.random_values(seed=seed)
    report = net.verify(drawn.of, wrt, values, references=references)
    ran = {r.reference for r in report.rows if r.status != "not run"}
    assert report.ok, f"{drawn}\n{report}"
    assert {"reshape method", "finite differences"} <= ran


CHEAP = [r for r in EVERY if r != "jax"]  # JAX compiles each operation for each new shape


@settings(max_examples=10)
@given(networks(max_layers=3, max_size=3), st.integers(0, 2**16))
def test_verify_rows_agree_on_drawn_networks(drawn, seed):
    _agree(drawn, CHEAP, seed=seed)


@settings(max_examples=5)
@given(jacobian_networks())
def test_verify_rows_agree_on_drawn_jacobians(drawn):
    _agree(drawn, CHEAP, "W1")


@pytest.mark.skipif(not HAVE["jax"], reason="jax is not installed")
@settings(max_examples=3)
@given(networks(max_layers=2, max_size=3))
def test_verify_jax_rows_agree_on_drawn_networks(drawn):
    _agree(drawn, ["reference", "differences", "jax"])


# --- the command line ---


def test_cli_verify_exit_statuses(tmp_path, capsys, monkeypatch):
    assert main(["verify", "--wrt", "b"]) == 0
    assert "every reference agrees" in capsys.readouterr().out
    net = tc.parse(tc.ARTICLE)
    values = net.random_values()
    values["x"][0] = np.nan
    np.savez(tmp_path / "nan.npz", **values)
    assert main(["verify", "--wrt", "b", "--values", str(tmp_path / "nan.npz")]) == 3
    assert "DISAGREES" in capsys.readouterr().out
    (tmp_path / "bad.npz").write_text("not an npz")
    assert main(["verify", "--values", str(tmp_path / "bad.npz")]) == 6
    assert "cannot read values from" in capsys.readouterr().err


def test_cli_verify_against_user_code(tmp_path, capsys, monkeypatch):
    (tmp_path / "mygrad.py").write_text(
        "import numpy as np\n"
        "def backward(v):\n"
        "    a = 1 / (1 + np.exp(-(v['W'] @ v['x'] + v['b'])))\n"
        "    d = (a - v['y']) * a * (1 - a)\n"
        "    return {'W': np.outer(d, v['x']), 'b': d}\n"
        "def wrong(v):\n"
        "    g = backward(v)\n"
        "    return {'W': g['W'], 'b': -g['b']}\n"
    )
    monkeypatch.chdir(tmp_path)
    assert main(["verify", "--against", "mygrad:backward"]) == 0
    assert "agrees with the exact one on 20 examples" in capsys.readouterr().out
    assert main(["verify", "--against", "mygrad.py:wrong", "--dtype", "float32"]) == 10
    out = capsys.readouterr().out
    assert "by b: 1 of 1 entries differ" in out
    assert "your gradient by b is the exact one with its sign flipped" in out
    assert main(["verify", "--against", "nosuch:backward"]) == 2
    assert "no module named 'nosuch'" in capsys.readouterr().err
    assert main(["verify", "--against", "mygrad:nothing"]) == 2
    assert "mygrad has no function 'nothing'" in capsys.readouterr().err
    with pytest.raises(SystemExit) as exit_:
        main(["verify", "--against", "mygrad:backward", "--order", "2"])
    assert exit_.value.code == 2
