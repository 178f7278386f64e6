"""Value domains (``param s[n] positive``, ``input y[B, c] onehot c``, ...):
draws inside each domain, given values checked, finite differences that
never step outside, ``--values FILE.npz``, and the messages of each error.

References are independent of the code under test: numpy's own checks of
each domain (``eigvalsh``, ``cholesky``, sums), closed-form derivatives,
and the reshape method."""

import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.cli import main
from tensorchain.language.domains import KINDS, room
from tensorchain.reference.differences import central_differences
from tensorchain.strategies import networks
from tensorchain.testing import finite_differences, max_relative_error

DECLARED = {
    "positive": "param t[B, n] positive",
    "nonnegative": "param t[B, n] nonnegative",
    "unit": "input t[B, n] unit",
    "probability": "input t[B, n] probability n",
    "onehot": "input t[B, n] onehot n",
    "spd": "param t[B, n, n] spd",
}


def spec(declaration: str, body: str = "f = sum(t)") -> str:
    return f"dim B\ndim n\ninput x[B, n]\n{declaration}\n{body}\n"


def inside(kind: str, t: np.ndarray) -> bool:
    """numpy's own test of each domain, written apart from tensorchain.language.domains."""
    if kind == "positive":
        return bool(np.all(t > 0))
    if kind == "nonnegative":
        return bool(np.all(t >= 0))
    if kind == "unit":
        return bool(np.all((t > 0) & (t < 1)))
    if kind == "probability":
        return bool(np.all(t >= 0) and np.allclose(t.sum(axis=-1), 1, rtol=0, atol=1e-12))
    if kind == "onehot":
        return bool(np.all((t == 0) | (t == 1)) and np.all(t.sum(axis=-1) == 1))
    np.linalg.cholesky(t)  # raises unless positive definite
    return bool(np.array_equal(t, np.swapaxes(t, -1, -2)))


# --- draws ---


def test_every_modifier_is_tested():
    assert set(DECLARED) == set(KINDS)


@pytest.mark.parametrize("kind", sorted(DECLARED))
@given(b=st.integers(1, 4), n=st.integers(1, 5), seed=st.integers(0, 2**32 - 1))
def test_draws_lie_in_their_domain_and_leave_other_draws_alone(kind, b, n, seed):
    net = tc.parse(spec(DECLARED[kind]))
    vals = net.random_values(seed=seed, B=b, n=n)
    assert vals["t"].shape == net.shape("t", B=b, n=n)
    assert vals["t"].dtype == np.float64
    assert inside(kind, vals["t"])
    net.evaluate(vals)  # given back, they pass the check
    # the same standard-normal draw, mapped: the other tensors' values are unchanged
    bare = tc.parse(spec(DECLARED[kind].rsplit("]", 1)[0] + "]"))
    plain = bare.random_values(seed=seed, B=b, n=n)
    assert np.array_equal(plain["x"], vals["x"])
    if kind in ("positive", "nonnegative"):
        np.testing.assert_allclose(np.log(vals["t"]), plain["t"] / 2, rtol=1e-12, atol=1e-15)


def test_onehot_draws_cover_every_class():
    net = tc.parse("dim B = 400\ndim c = 4\ninput y[B, c] onehot c\nf = sum(y)")
    counts = net.random_values(seed=0)["y"].sum(axis=0)
    assert counts.sum() == 400 and counts.min() > 60  # about 100 each


def test_a_scalar_in_a_domain_is_a_0_d_array():
    net = tc.parse("param s positive\nf = log(s)")
    value = net.random_values(seed=3)["s"]
    assert isinstance(value, np.ndarray) and value.shape == () and value > 0


# --- the command line and drawn values of derive, verify and check_gradient ---

LOG_SQRT = "dim n = 4\ninput x[n]\nparam s[n]{}\nf = sum(x * log(s) + sqrt(s))\n"


def test_derive_with_log_and_sqrt_of_a_positive_param_has_no_nan(tmp_path, capsys):
    plain, declared = tmp_path / "plain.tc", tmp_path / "positive.tc"
    plain.write_text(LOG_SQRT.format(""))
    declared.write_text(LOG_SQRT.format(" positive"))
    assert main(["derive", str(plain)]) == 3  # standard normal: a log of a negative entry
    err = capsys.readouterr().err
    assert err.endswith(
        "non-finite values first appear in f = sum(x * log(s) + sqrt(s)) (line 4) (the values"
        " were drawn standard normal: declare which values a tensor takes, e.g. 'param s[n]"
        " positive', or give them with --values FILE.npz)\n"
    )
    assert main(["derive", str(declared)]) == 0
    out = capsys.readouterr().out
    assert "values: standard normal, seed 0 (s positive: drawn in its domain)" in out
    assert "nan" not in out
    (agreement,) = re.findall(r"max \|tensorchain − reshape method\| = (\S+)", out)
    assert float(agreement) < 1e-12
    assert main(["hessian", str(declared), "--wrt", "s"]) == 0
    assert "nan" not in capsys.readouterr().out


def test_verify_and_check_gradient_draw_in_the_domain():
    net = tc.parse(LOG_SQRT.format(" positive"))

    def closed_form(v):
        return {"s": v["x"] / v["s"] + 0.5 / np.sqrt(v["s"])}

    report = net.verify("f", "s", references=["reference", "differences"])
    assert report.ok and "(s positive: drawn in its domain)" in report.values_note
    assert tc.check_gradient(closed_form, net, "f", "s").ok
    wrong = tc.check_gradient(lambda v: {"s": v["x"] / v["s"]}, net, "f", "s")
    assert not wrong.ok


def test_the_nan_fallback_shifts_only_tensors_without_a_domain():
    net = tc.parse("dim n = 3\nparam s[n] unit\nparam w[n]\nf = sum(log(s) + sqrt(w))")
    report = net.verify("f", ["s", "w"], references=["reference"])
    assert report.values_note == "|standard normal| + 0.5 for w, seed 0 (standard normal gave NaN)"
    assert report.ok


# --- finite differences stay inside the domain ---


def recording(f, domain_test):
    """``f`` that fails the test if it is ever evaluated outside the domain."""

    def g(x):
        assert domain_test(x), x
        return f(x)

    return g


@given(
    st.lists(st.one_of(st.floats(1e-12, 1e-3), st.floats(1e-3, 1e3)), min_size=1, max_size=6).map(
        np.array
    )
)
def test_differences_of_positive_values_stay_positive(x):
    net = tc.parse(f"dim n = {x.size}\nparam s[n] positive\nf = sum(log(s))")
    steps = room(net.info("s").domain, x)
    f = recording(lambda v: np.sum(np.log(v)), lambda v: np.all(v > 0))
    for j in range(x.size):  # the tolerance scaled by each entry's derivative, as verify does
        d = central_differences(f, x, [j], atol=1e-6 * max(1.0, 1 / x[j]), room=steps)
        assert d.checked[j]
        np.testing.assert_allclose(d.value[j], 1 / x[j], rtol=1e-6)


@given(st.lists(st.floats(0.0, 1.0), min_size=1, max_size=6).map(np.array))
def test_differences_at_the_closed_boundary_are_one_sided(x):
    """A probability (closed at 0 and 1): entries at 0 or 1 move inwards only."""
    net = tc.parse("dim c\ninput q[c] probability c\nf = sum(q)")
    domain = net.info("q").domain
    fn = recording(lambda v: np.sum(v**3 + np.sin(3 * v)), lambda v: np.all((v >= 0) & (v <= 1)))
    d = central_differences(fn, x, room=room(domain, x))
    exact = 3 * x**2 + 3 * np.cos(3 * x)
    assert d.checked.all()
    assert np.all(np.abs(d.value - exact) <= 1e-7)


def test_spd_steps_keep_the_matrix_positive_definite():
    net = tc.parse("dim n = 3\nparam K[n, n] spd\nf = logdet(K)")
    K = np.diag([1e-4, 1.0, 3.0]) + 1e-5  # nearly singular, still positive definite
    fn = recording(
        lambda v: np.linalg.slogdet(v)[1],
        lambda v: np.linalg.eigvalsh((v + v.T) / 2)[0] > 0,
    )
    d = central_differences(fn, K, room=room(net.info("K").domain, K), atol=1e-6 * 1e4)
    assert max_relative_error(d.value, np.linalg.inv(K).T) < 1e-6


def test_verify_and_the_testing_differences_stay_inside_given_values():
    net = tc.parse(
        "dim n = 3\nparam s[n] positive\nparam r[n] nonnegative\nparam p[n] unit\n"
        "f = sum(log(s)) + sum(sqrt(r + 1) * r) + sum(log(p) + log(1 - p))"
    )
    vals = {
        "s": np.array([1e-7, 1e-4, 2.0]),
        "r": np.array([0.0, 1e-9, 3.0]),
        "p": np.array([1e-9, 0.5, 1 - 2**-20]),  # within a standard step of both ends
    }
    report = net.verify("f", ["s", "r", "p"], vals, references=["reference", "differences"])
    assert report.ok
    for row in report.rows:
        assert row.status == "pass", row
        assert "not compared" not in row.note
    exact = {
        "s": 1 / vals["s"],
        "r": np.sqrt(vals["r"] + 1) + vals["r"] / (2 * np.sqrt(vals["r"] + 1)),
        "p": 1 / vals["p"] - 1 / (1 - vals["p"]),
    }
    for w, g in exact.items():
        fd = finite_differences(net, "f", w, vals)
        assert max_relative_error(fd, g) < 1e-5, w


def test_onehot_values_are_not_differenced():
    net = tc.parse(
        "dim B = 3\ndim c = 4\ninput z[B, c]\ninput y[B, c] onehot c\nL = cross_entropy(z, y, c)"
    )
    vals = net.random_values(seed=1)
    report = net.verify("L", ["z", "y"], vals, references=["reference", "differences"])
    assert report.ok
    (row,) = [r for r in report.rows if r.reference == "finite differences" and "y" in r.derivative]
    assert row.status == "not run"
    assert "y is declared onehot c: its values are discrete" in row.note
    with pytest.raises(tc.ValuesError, match=r"finite differences by y: it is declared onehot c"):
        finite_differences(net, "L", "y", vals)
    # the derivative by y itself exists (by each entry), as the reshape method's
    ref = tc.reshape_method(net, "L", "y", vals)
    assert max_relative_error(net.grad("L", "y", vals)["y"], ref) < 1e-12


@settings(max_examples=15)
@given(drawn=networks(max_layers=3, max_size=3, domains=True), seed=st.integers(0, 2**16))
def test_drawn_networks_with_domains_agree_with_both_references(drawn, seed):
    net = tc.parse(drawn.text)
    vals = net.random_values(seed=seed)
    for w in [*net.params, *net.inputs]:
        grad = net.jacobian(drawn.of, w, vals).array
        assert max_relative_error(grad, tc.reshape_method(net, drawn.of, w, vals)) < 1e-10, w
        domain = net.info(w).domain
        if domain is None or domain.kind != "onehot":
            assert max_relative_error(grad, finite_differences(net, drawn.of, w, vals)) < 1e-5, w


# --- the Gaussian with an spd covariance (examples/gaussian_nll.tc) ---


def test_gaussian_nll_gradient_by_its_covariance_is_the_cookbook_closed_form():
    net = tc.load("examples/gaussian_nll.tc")

    def cookbook(v):  # Matrix Cookbook eq. 8.1 (the derivative by each entry)
        S_inv = np.linalg.inv(v["S"])
        r = v["x"] - v["mu"]
        return {
            "mu": -S_inv @ r.sum(axis=0),
            "S": 0.5 * len(r) * S_inv - 0.5 * S_inv @ (r.T @ r) @ S_inv,
        }

    assert tc.check_gradient(cookbook, net, "NLL", dims={"B": 16}).ok
    vals = net.random_values(seed=4)
    assert inside("spd", vals["S"])
    g = net.grad("NLL", values=vals)
    for w, exact in cookbook(vals).items():
        assert max_relative_error(g[w], exact) < 1e-10, w


# --- given values outside the domain ---


def outside(declaration: str, value, body: str = "f = sum(t)", **sizes):
    net = tc.parse(f"dim B = 2\ndim n = 3\n{declaration}\n{body}")
    vals = net.random_values(seed=0, **sizes)
    vals["t"] = np.asarray(value, dtype=float)
    with pytest.raises(tc.ValuesError) as info:
        net.evaluate(vals)
    return str(info.value)


@pytest.mark.parametrize(
    ("declaration", "value", "message"),
    [
        (
            "param t[n] positive", [1.0, 0.0, 2.0],
            "the value of t is outside its domain: t[1] = 0, but 'param t[n] positive'"
            " (line 3) takes values > 0; give values inside the domain, or change the"
            " declaration",
        ),
        ("param t[n] nonnegative", [1.0, 0.0, -1e-300], "t[2] = -1e-300, but"),
        ("input t[B, n] unit", [[0.5, 0.5, 0.5], [0.5, 1.0, 0.5]], "t[1, 1] = 1, but"),
        (
            "input t[B, n] probability n", [[0.5, 0.5, 0.0], [0.5, 0.4, 0.2]],
            "t[1, :] sums to 1.1, but 'input t[B, n] probability n' (line 3) takes values"
            " ≥ 0 summing to 1 along n;",
        ),
        ("input t[B, n] probability n", [[1.5, -0.5, 0.0], [1, 0, 0]], "t[0, 0] = 1.5, but"),
        (
            "input t[B, n] onehot n", [[0, 1, 0], [1, 0, 1]],
            "t[1, :] holds 2 ones, but 'input t[B, n] onehot n' (line 3) takes one 1 along n"
            " and zeros elsewhere;",
        ),
        ("input t[B, n] onehot n", [[0, 0, 0], [1, 0, 0]], "t[0, :] holds no 1, but"),
        ("input t[B, n] onehot n", [[0, 0.9, 0], [1, 0, 0]], "t[0, 1] = 0.9, but"),
        (
            "param t[n, n] spd", [[2, 1, 0], [1.5, 2, 0], [0, 0, 2]],
            "t[0, 1] = 1 while t[1, 0] = 1.5, but 'param t[n, n] spd' (line 3) takes"
            " symmetric positive definite matrices (its last two axes);",
        ),
        (
            "param t[B, n, n] spd", [np.eye(3), np.diag([1.0, -2.0, 3.0])],
            "t[1, :, :] has smallest eigenvalue -2, but",
        ),
        ("param t[n, n] spd", np.diag([1.0, 0.0, 1.0]), "t has smallest eigenvalue 0, but"),
    ],
)  # fmt: skip
def test_values_outside_the_domain_name_the_entry(declaration, value, message):
    assert message in outside(declaration, value)


def test_tolerances_of_sums_and_symmetry():
    q = np.array([[0.2, 0.3, 0.5 + 5e-7], [1 / 3, 1 / 3, 1 / 3]])
    net = tc.parse("dim B = 2\ndim n = 3\ninput t[B, n] probability n\nf = sum(t)")
    net.evaluate({"t": q})  # 5e-7 off: within 1e-6
    net.evaluate({"t": q.astype(np.float32)})
    off = q + np.array([[0, 0, 1e-4], [0, 0, 0]])
    net.evaluate({"t": off.astype(np.float32)})  # float32: within √eps
    with pytest.raises(tc.ValuesError, match=r"t\[0, :\] sums to 1.0001"):
        net.evaluate({"t": off})


def test_nan_in_a_declared_tensor_warns_as_nan_does_and_checks_can_be_skipped():
    net = tc.parse("dim n = 2\nparam s[n] positive\nf = sum(log(s))")
    with pytest.warns(tc.NonFiniteWarning):
        net.evaluate({"s": np.array([np.nan, 1.0])})
    # check_finite=False skips the passes over the values, the domain's too
    with np.errstate(invalid="ignore"):
        f = net.evaluate({"s": np.array([-1.0, 1.0])}, check_finite=False)["f"]
    assert np.isnan(f)


def test_complex_values_of_a_declared_tensor_are_refused():
    net = tc.parse("dim n = 2\nparam s[n] positive\nf = sum(s * s)")
    with pytest.raises(tc.ValuesError, match=r"the value of s is complex, but 'param s\[n\]"):
        net.evaluate({"s": np.array([1.0 + 1j, 2.0])})


def test_verify_checks_given_values():
    net = tc.parse("dim n = 2\nparam s[n] positive\nf = sum(s * s)")
    with pytest.raises(tc.ValuesError, match=r"s\[0\] = -1, but"):
        net.verify("f", "s", {"s": np.array([-1.0, 2.0])})


# --- the grammar ---


@pytest.mark.parametrize(
    ("declaration", "message", "column"),
    [
        (
            "param t[n] positiv",
            "unknown modifier 'positiv' in the declaration of t; did you mean 'positive'? A"
            " declaration may end with one of: positive, nonnegative, unit, probability DIM,"
            " onehot DIM, spd (e.g. param t[n] positive)", 12,
        ),
        ("input t[n] simplex n", "unknown modifier 'simplex' in the declaration of t; did you"
         " mean 'probability'?", 12),
        ("input t[n] bounded", "unknown modifier 'bounded' in the declaration of t; a", 12),
        ("input t[n] onehot q", "unknown dim 'q' after 'onehot'; declare it first with"
         " 'dim q = 4', or name one of the dims of t", 19),
        ("param t[n] positive unit", "t has two modifiers, 'positive' and 'unit'; a tensor"
         " takes one domain", 21),
        ("param t[n] onehot n", "onehot values are discrete, so a param t could not be"
         " differentiated or updated; declare it as data", 12),
        ("input t[n] onehot", "expected a dim name after 'onehot' (e.g. onehot c), found the"
         " end of the line", 18),
        ("input t[n] onehot B", "onehot does not fit t: B is the dim it runs along, but the"
         " tensor [n] has no axis of dim B", 19),
        ("input t[n, n] probability n", "probability does not fit t: n is the dim it runs"
         " along, but the tensor [n, n] has 2 axes of dim n", 27),
        ("param t[n, B] spd", "spd does not fit t: the matrix is the last two axes, which must"
         " have the same dim (K[n, n], or K[B, n, n] for a batch of matrices), but the tensor"
         " is [n, B]", 15),
        ("param t spd", "but the tensor is a scalar", 9),
        ("param t[n] u[n]", "put one declaration on each line", 12),
        ("param t[n] positive = 2", "expected the end of the line after the statement", 21),
    ],
)  # fmt: skip
def test_modifier_errors_point_at_the_word(declaration, message, column):
    with pytest.raises(tc.SpecError) as info:
        tc.parse(f"dim B = 2\ndim n = 3\n{declaration}\nf = sum(t)")
    assert message in str(info.value)
    assert (info.value.line, info.value.column) == (3, column)


def test_a_declared_domain_is_on_the_tensor_info():
    net = tc.parse("dim B\ndim c\ninput y[B, c] onehot c\nparam K[B, c, c] spd\nf = sum(y)")
    assert str(net.info("y").domain) == "onehot c" and net.info("y").domain.axes == (1,)
    assert str(net.info("K").domain) == "spd" and net.info("K").domain.axes == (1, 2)
    assert net.info("f").domain is None


# --- --values FILE.npz ---

DOMAINS_SPEC = (
    "dim B = 3\ndim n = 2\ndim c = 3\ninput x[B, n]\ninput y[B, c] onehot c\n"
    "param W[c, n] \nparam s[c] positive\n"
    "z[b, k] = W[k, j] * x[b, j] * s[k]\nL = cross_entropy(z, y, c) + sum(log(s))\n"
)


def derive_output(capsys, *args) -> list[str]:
    assert main(["derive", *args]) == 0
    return [line for line in capsys.readouterr().out.splitlines() if not line.startswith("values:")]


def test_values_file_round_trip(tmp_path, capsys):
    path = tmp_path / "net.tc"
    path.write_text(DOMAINS_SPEC)
    net = tc.load(path)
    drawn = net.random_values(seed=7)
    np.savez(tmp_path / "all.npz", **drawn)
    # the same values read from the file: the same report, line for line
    assert derive_output(capsys, str(path), "--values", str(tmp_path / "all.npz")) == (
        derive_output(capsys, str(path), "--seed", "7")
    )
    # a file with some of the values: the rest drawn (same seed, same sizes)
    mine = {"x": np.arange(6.0).reshape(3, 2), "s": np.array([0.5, 1.0, 2.0])}
    np.savez(tmp_path / "some.npz", **mine)
    np.savez(tmp_path / "merged.npz", **{**net.random_values(seed=2), **mine})
    assert main(["derive", str(path), "--values", str(tmp_path / "some.npz"), "--seed", "2"]) == 0
    out = capsys.readouterr().out
    note = (
        f"values: x, s from {tmp_path / 'some.npz'}; y, W drawn: standard normal, seed 2"
        " (y onehot c: drawn in its domain)"
    )
    assert note in out
    assert [line for line in out.splitlines() if not line.startswith("values:")] == (
        derive_output(capsys, str(path), "--values", str(tmp_path / "merged.npz"))
    )


def test_values_file_sets_the_sizes_and_feeds_verify_and_hessian(tmp_path, capsys):
    path = tmp_path / "net.tc"
    path.write_text(DOMAINS_SPEC)
    net = tc.load(path)
    big = net.random_values(seed=1, B=5)
    np.savez(tmp_path / "v.npz", x=big["x"])
    assert main(["derive", str(path), "--values", str(tmp_path / "v.npz")]) == 0
    assert "sizes: B=5, n=2, c=3" in capsys.readouterr().out
    assert main(["hessian", str(path), "--wrt", "s", "--values", str(tmp_path / "v.npz")]) == 0
    assert f"values: x from {tmp_path / 'v.npz'}; y, W, s drawn" in capsys.readouterr().out
    assert main(["verify", str(path), "--values", str(tmp_path / "v.npz")]) == 0
    capsys.readouterr()


@pytest.mark.parametrize(
    ("arrays", "message"),
    [
        ({"q": np.ones(3)}, "the array 'q' names no tensor; the arrays are named after the"
         " inputs and params, x, y, W, s"),
        ({"L": np.ones(())}, "the array 'L' is computed by the network"),
        ({"s": np.ones(2)}, "dim c is 3 (axis 0 of W, the spec's dim c = 3) but axis 0 of s"
         " has size 2; make the values agree"),
        ({"s": np.ones((3, 1))}, "s is declared with 1 axis [c=3] but its value has shape (3, 1)"),
        ({"s": np.array(["a", "b", "c"])}, "the array 's' has dtype <U1; values are numbers"),
        ({"s": np.array([1.0, -1.0, 2.0])}, "s[1] = -1, but 'param s[c] positive' (line 7)"),
        ({"y": np.eye(3) * 2}, "y[0, 0] = 2, but 'input y[B, c] onehot c' (line 5)"),
    ],
)  # fmt: skip
def test_bad_values_files_name_the_file_and_the_array(tmp_path, capsys, arrays, message):
    path = tmp_path / "net.tc"
    path.write_text(DOMAINS_SPEC)
    np.savez(tmp_path / "v.npz", **arrays)
    if "y" not in arrays and "s" in arrays and arrays["s"].shape == (2,):
        np.savez(tmp_path / "v.npz", **arrays, W=np.ones((3, 2)))
    assert main(["derive", str(path), "--values", str(tmp_path / "v.npz")]) == 6
    err = capsys.readouterr().err
    assert err.startswith(f"tensorchain: error: {tmp_path / 'v.npz'}: "), err
    assert message in err


def test_values_files_are_never_unpickled(tmp_path, capsys):
    path = tmp_path / "net.tc"
    path.write_text(DOMAINS_SPEC)
    np.savez(tmp_path / "obj.npz", s=np.array([{}, 1, 2], dtype=object))
    assert main(["derive", str(path), "--values", str(tmp_path / "obj.npz")]) == 6
    assert "the array 's' cannot be read without unpickling it" in capsys.readouterr().err
    (tmp_path / "pickle.npz").write_bytes(b"\x80\x04K\x01.")  # a pickle, not an archive
    assert main(["derive", str(path), "--values", str(tmp_path / "pickle.npz")]) == 6
    assert "it is not a .npz file of arrays" in capsys.readouterr().err
    np.save(tmp_path / "one.npy", np.ones(3))
    assert main(["derive", str(path), "--values", str(tmp_path / "one.npy")]) == 6
    assert "holds one array, not one per tensor" in capsys.readouterr().err
    assert main(["derive", str(path), "--values", str(tmp_path / "none.npz")]) == 1
    assert "cannot read" in capsys.readouterr().err
