"""Faults found by a newcomer's trial of the features of issue 17 (index
tensors, reshapes and concatenation, selections, registered functions), one
regression test each (each failed before its fix)."""

import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.cli import main
from tensorchain.functions import registry

#: A product dim (h w) and a sum dim (h + w) in declarations, as language.md recommends.
GROUPED = """
dim B = 2
dim h = 2
dim w = 3
input a[B, (h w)]
param b[B, w]
param U[(h + w), h]
m[s, i, j] = a[s, (i j)]
t[s, i] = m[s, i, j] * b[s, j]
u[s, k] = concat(tanh(t[s, k]), b[s, k], k)
o[s, j] = u[s, k] * U[k, j]
L = sum(o ^ 2)
"""

#: An embedding and a classifier with integer labels: two index tensors, listed first.
CLASSIFIER = """
dim B = 3
dim V = 5
dim D = 2
dim c = 3
input ids[B] index V
input labels[B] index c
param E[V, D]
param W[c, D]
x[s, d] = E[ids[s], d]
logits[s, k] = W[k, d] * x[s, d]
loss = cross_entropy(logits, labels, c)
"""


def _reference_grad(net, of):
    """The gradient by the reshape method (an independent reference), as a user's function."""
    return lambda v: {w: tc.reshape_method(net, of, w, v) for w in net.params}


# --- 1. product and sum dims wherever sizes are given back ---


@given(st.integers(1, 3), st.integers(1, 3), st.integers(1, 3))
def test_sizes_round_trip_through_every_dims_argument(batch, h, w):
    net = tc.parse(GROUPED)
    sizes = net.sizes(B=batch, h=h, w=w)
    assert sizes["(h w)"] == h * w and sizes["(h + w)"] == h + w
    vals = net.random_values(seed=1, dims=sizes)
    assert vals["a"].shape == net.shape("a", dims=sizes) == (batch, h * w)
    assert net.shape("U", dims=sizes) == (h + w, h)
    grad = net.compile_grad("L", dims=sizes)(vals)
    for p in net.params:
        np.testing.assert_allclose(grad[p], tc.reshape_method(net, "L", p, vals), atol=1e-12)
    assert "∂L/∂U" in str(net.derive("L", "U", dims=sizes))
    net.plan("L", "U", dims=sizes)
    # a derived dim alone fixes a member the spec leaves open
    open_w = tc.parse(GROUPED.replace("dim w = 3", "dim w"))
    assert open_w.sizes(dims={"(h w)": 2 * w, "h": 2})["w"] == w


def test_a_derived_dim_that_disagrees_with_its_members_is_a_shape_error():
    net = tc.parse(GROUPED)
    sizes = net.sizes()
    with pytest.raises(
        tc.ShapeError, match=r"^dim \(h w\) is given as \(h w\)=7, but h·w = 2·3 = 6"
    ):
        net.random_values(dims={**sizes, "(h w)": 7})
    with pytest.raises(tc.ShapeError, match=r"dim \(h \+ w\) is given as \(h \+ w\)=4, but h \+ w"):
        net.shape("U", dims={"(h + w)": 4})
    with pytest.raises(tc.ShapeError, match=r"unknown dim '\(w h\)'.*derived \(h w\), \(h \+ w\)"):
        net.sizes(dims={"(w h)": 6})


def test_values_file_with_derived_dims_draws_the_rest(tmp_path, capsys):
    net = tc.parse(GROUPED)
    spec = tmp_path / "grouped.tc"
    spec.write_text(GROUPED)
    data = tmp_path / "a.npz"
    np.savez(data, a=np.random.default_rng(0).standard_normal((2, 6)))
    for command in (["derive"], ["hessian"], ["verify"]):
        assert main([*command, str(spec), "--values", str(data), "--wrt", "U"]) == 0
    out = capsys.readouterr().out
    assert "b, U drawn" in out
    assert tc.check_gradient(_reference_grad(net, "L"), net, "L", examples=3).ok


# --- 2. check_gradient with given values holding index tensors ---


def test_check_gradient_takes_given_values_with_index_tensors(tmp_path, capsys):
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=1)
    assert list(vals)[:2] == ["ids", "labels"]  # integers first: the dtype came from them
    check = tc.check_gradient(_reference_grad(net, "loss"), net, "loss", values=vals)
    assert check.ok and check.dtype == np.float64
    as32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in vals.items()}
    check = tc.check_gradient(_reference_grad(net, "loss"), net, "loss", values=as32)
    assert check.ok and check.dtype == np.float32
    # a float value first, then labels: labels are never cast to float
    floats_first = {k: vals[k] for k in ("E", "W", "ids", "labels")}
    seen = []

    def grad(v):
        seen.append(v["labels"].dtype)
        return _reference_grad(net, "loss")(v)

    assert tc.check_gradient(grad, net, "loss", values=floats_first).ok
    assert all(d.kind == "i" for d in seen)
    # and from the command line
    spec, data = tmp_path / "cls.tc", tmp_path / "v.npz"
    spec.write_text(CLASSIFIER)
    np.savez(data, **floats_first)
    module = tmp_path / "refgrad17.py"
    module.write_text(
        "import tensorchain as tc\n"
        f"net = tc.parse({CLASSIFIER!r})\n"
        "def backward(v):\n"
        "    return {w: tc.reshape_method(net, 'loss', w, v) for w in net.params}\n"
    )
    argv = ["verify", str(spec), "--against", f"{module}:backward", "--values", str(data)]
    assert main(argv) == 0
    assert "agrees with the exact one" in capsys.readouterr().out


# --- 3. verify with a registered function written with numpy ---


def _softplus17(x):
    return np.logaddexp(0.0, x)


def _sigmoid17(x):
    return 1.0 / (1.0 + np.exp(-x))


def _mish17(x):
    return x * np.tanh(_softplus17(x))


def _dmish17(x):
    t = np.tanh(_softplus17(x))
    return t + x * (1.0 - t**2) * _sigmoid17(x)


def _d2mish17(x):
    t, s = np.tanh(_softplus17(x)), _sigmoid17(x)
    dt = (1.0 - t**2) * s
    return 2.0 * dt + x * (-2.0 * t * dt * s + (1.0 - t**2) * s * (1.0 - s))


@pytest.fixture
def registered():
    names = []

    def register(name, *fns, **kw):
        tc.register_function(name, *fns, **kw)
        names.append(name)

    yield register
    for name in names:
        tc.unregister_function(name)


MISH = "dim n = 3\ndim m = 2\nparam W[m, n]\ninput x[n]\nh[i] = W[i, j] * x[j]\nL = sum(mish17(h))"


def test_verify_reports_a_library_that_cannot_run_a_registered_function(registered):
    pytest.importorskip("jax")
    registered("myexp17", np.exp, np.exp, d2f=np.exp)  # numpy's own: run as jax.numpy.exp
    net = tc.parse("dim n = 3\nparam x[n]\nL = sum(myexp17(x))")
    for order in (1, 2):
        report = net.verify("L", "x", order=order)
        (row,) = [r for r in report.rows if r.reference.startswith("jax")]
        assert row.status == "pass" and report.ok
    registered("mish17", _mish17, _dmish17, d2f=_d2mish17)
    net = tc.parse(MISH)
    for order in (1, 2):
        report = net.verify("L", "W", order=order)
        (row,) = [r for r in report.rows if r.reference.startswith("jax")]
        assert row.status == "not run"
        assert "mish17 (registered with tc.register_function) computes with numpy" in row.note
        assert report.ok  # the reference and finite differences ran, and agree
    assert "write f, df and d2f with operators" in str(report)


# --- 4. generated code for a registered function carries what it needs ---


def test_generated_code_carries_the_helpers_of_a_registered_function(registered):
    registered("mish17", _mish17, _dmish17, d2f=_d2mish17)
    net = tc.parse(MISH)
    vals = net.random_values(seed=2)
    source = net.derive("L", "W").to_python()
    assert "def _softplus17(x):" in source and "def _sigmoid17(x):" in source
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own output
    out = namespace["grad_L_W"](W=vals["W"], x=vals["x"])
    np.testing.assert_allclose(out, tc.reshape_method(net, "L", "W", vals), rtol=1e-12)


def _closure17():
    k = 3.0
    return lambda x: k * x


def test_generated_code_refuses_what_it_cannot_carry(registered):
    registered("scaled17", _closure17(), lambda x: 0.0 * x + 3.0)
    net = tc.parse("dim n = 3\nparam x[n]\nL = sum(scaled17(x) ^ 2)")
    with pytest.raises(
        tc.DerivativeError, match=r"uses k from the function around it.*self-contained"
    ):
        net.derive("L", "x").to_python()
    assert np.allclose(net.grad("L", "x", {"x": np.ones(3)})["x"], 18.0)  # computing works


# --- 5. result dtypes with index tensors ---


def test_float32_values_with_integer_ids_give_float32_results():
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=4)
    as32 = {k: v.astype(np.float32) if v.dtype.kind == "f" else v for k, v in vals.items()}
    results = {
        "jacobian": (net.jacobian("logits", "E", as32).array, ("logits", ("E",))),
        "hessian": (net.hessian("loss", "E", as32).array, ("loss", ("E", "E"))),
        "mixed": (net.derivative("loss", ("W", "E"), as32).array, ("loss", ("W", "E"))),
    }
    for array, (of, wrts) in results.values():
        assert array.dtype == np.float32
        exact = tc.reference_derivative(net, of, wrts, vals)
        np.testing.assert_allclose(array, exact, rtol=1e-4, atol=1e-5)
    assert {g.dtype for g in net.grad("loss", values=as32).values()} == {np.dtype(np.float32)}


@pytest.mark.parametrize("statement", ["y[s] = ids[s] * w[s]\nL = sum(y)", "L = sum(ids * w)"])
def test_an_index_tensor_is_not_a_number(statement):
    text = f"dim B = 3\ndim n = 4\ninput ids[B] index n\nparam w[B]\n{statement}"
    with pytest.raises(
        tc.SpecError, match=r"ids is an index tensor: it holds positions along n, not numbers"
    ):
        tc.parse(text)


def test_an_index_tensor_may_be_compared():
    net = tc.parse(
        "dim B = 4\ndim n = 4\ninput ids[B] index n\nparam w[B]\n"
        "y[s] = where(ids[s] == 0, w[s], 2 * w[s])\nL = sum(y ^ 2)"
    )
    ids, w = np.array([0, 2, 0, 3]), np.array([0.5, -1.0, 2.0, 0.25], dtype=np.float32)
    g = net.grad("L", "w", {"ids": ids, "w": w})["w"]
    assert g.dtype == np.float32
    np.testing.assert_allclose(g, np.where(ids == 0, 2.0, 8.0) * w)  # d/dw (c w)² = 2c² w


# --- 6. registered functions from the command line ---


def test_the_command_line_imports_a_module_that_registers_functions(tmp_path, capsys):
    spec = tmp_path / "me.tc"
    spec.write_text("dim n = 3\nparam x[n]\nL = sum(myexp17(x))\n")
    module = tmp_path / "reg17.py"
    module.write_text(
        "import numpy as np\nimport tensorchain as tc\n"
        "tc.register_function('myexp17', np.exp, np.exp, d2f=np.exp)\n"
        "def backward(v):\n    return {'x': np.exp(v['x'])}\n"
    )
    try:
        assert main(["derive", str(spec)]) == 4
        assert "--import a module that registers it" in capsys.readouterr().err
        assert main(["derive", str(spec), "--import", str(module)]) == 0
        tc.unregister_function("myexp17")
        assert main(["hessian", str(spec), "--import", str(module)]) == 0
        tc.unregister_function("myexp17")
        # --against imports its module before the spec is read
        assert main(["verify", str(spec), "--against", f"{module}:backward"]) == 0
        capsys.readouterr()
        bad = tmp_path / "bad17.py"
        bad.write_text("raise ValueError('boom')\n")
        assert main(["derive", str(spec), "--import", str(bad)]) == 2
        err = capsys.readouterr().err
        assert f"--import {bad}: importing it raised ValueError: boom ({bad}, line 1)" in err
        assert main(["derive", str(spec), "--import", "no_such_module17"]) == 2
        assert "no module named 'no_such_module17'" in capsys.readouterr().err
    finally:
        if "myexp17" in registry.CALLABLE:
            tc.unregister_function("myexp17")


# --- 7. printouts ---


def test_integer_label_cross_entropy_prints_no_stray_summed_index(capsys):
    net = tc.parse(CLASSIFIER)
    d = net.derive("loss", "W")
    local = next(str(v) for k, v in d.result.locals.items() if k == ("loss", "logits"))
    assert "softmax(logits, c)[B, c]" in local and "δ(labels[B], i)" not in local
    assert not any(re.search(r"δ\(labels\[\w+\], [a-z]\) · softmax", s) for s in d.steps)
    vals = net.random_values(seed=3)
    np.testing.assert_allclose(
        net.jacobian("loss", "W", vals).array, tc.reshape_method(net, "loss", "W", vals)
    )
    # a selection summed over both its indices is a count: Σ_s Σ_k δ(ids[s], k) = B
    counted = tc.parse(
        "dim B = 3\ndim V = 4\ninput ids[B] index V\nparam w\nparam u[B]\n"
        "L = w * delta[k, ids[s]] + u[s] * delta[k, ids[s]] * w"
    )
    v = counted.random_values(seed=0)
    assert str(counted.derive("L", "w")) == "∂L/∂w = u[p] + 3"
    assert np.isclose(counted.grad("L", "w", v)["w"], 3 + v["u"].sum())


ATTENTION = """
dim B = 2
dim T = 3
dim D = 4
dim nh = 2
dim k = 2
input x[B, T, D]
param Wq[(nh k), D]
param Wk[(nh k), D]
param Wv[(nh k), D]
param Wo[D, (nh k)]
Q[b, t, e] = Wq[e, d] * x[b, t, d]
K[b, t, e] = Wk[e, d] * x[b, t, d]
Vv[b, t, e] = Wv[e, d] * x[b, t, d]
q[b, t, h, j] = Q[b, t, (h j)]
kk[b, t, h, j] = K[b, t, (h j)]
v[b, t, h, j] = Vv[b, t, (h j)]
sc[b, h, t, u] = 0.7071067811865476 * q[b, t, h, j] * kk[b, u, h, j]
p[b, h, t, u] = softmax(sc[b, h, t, u], u)
o[b, t, h, j] = p[b, h, t, u] * v[b, u, h, j]
O[b, t, (h j)] = o[b, t, h, j]
y[b, t, d] = Wo[d, e] * O[b, t, e]
L = sum(y ^ 2)
"""


def test_generated_index_names_never_look_like_the_users():
    net = tc.parse(ATTENTION)
    for w in net.params:
        text = str(net.derive("L", w))
        assert not re.search(r"\b[a-z]\d+\b", text), text  # no s8, s9
        used = set(re.findall(r"softmax\(\w+, (\w+)\)", text))
        brackets = {i for group in re.findall(r"\[([^\]]*)\]", text) for i in group.split(", ")}
        assert not used & brackets, text  # the u of softmax(sc, u) is no index of the formula


def test_gelu_derivatives_print_phi_alike():
    from tensorchain.presentation.report import hessian_report

    net = tc.parse("dim n = 3\nparam x[n]\nparam W[n, n]\nh[i] = W[i, j] * x[j]\nL = sum(gelu(h))")
    vals = net.random_values(seed=1)
    text, diff = hessian_report(net, "L", "x", "x", vals)
    assert diff < 1e-12
    assert "Φ(" in text and "φ(" in text
    assert "normal_cdf" not in text and "0.398942" not in text
    H3 = net.derivative("L", ("x", "x", "x"), vals).array  # through φ' = −x φ
    np.testing.assert_allclose(H3, tc.reference_derivative(net, "L", ("x", "x", "x"), vals))


def test_structured_hessians_name_their_blocks_apart_from_tensors():
    net = tc.parse(tc.ARTICLE)
    H = net.hessian("C", "W", net.random_values(seed=0))
    assert "G₁[n] · G₂[m, m'] · δ(n, n')" in str(H)


def test_drawn_positions_and_scalars_print_as_they_are(tmp_path, capsys):
    spec = tmp_path / "cls.tc"
    spec.write_text(CLASSIFIER)
    assert main(["derive", str(spec), "--wrt", "W"]) == 0
    out = capsys.readouterr().out
    assert "values: standard normal, seed 0 (ids, labels: positions drawn uniformly)\n" in out
    scalar = tmp_path / "s.tc"
    scalar.write_text("dim n = 3\ninput y[n]\nparam s2 positive\nL = sum(y ^ 2) / s2 + log(s2)\n")
    assert main(["derive", str(scalar)]) == 0
    out = capsys.readouterr().out
    assert "∂L/∂s2 = " in out and "∂L/∂s2[]" not in out and "shape () (a scalar)" in out
    assert "0 matrix products: none" in out and "largest matrix 1 entry" in out
    assert re.search(r"einsum: .*\(\S+ of dL/ds2, \S+ of dL/ds2\)", out)


# --- 8. messages ---


def test_messages_about_positions_name_the_tensor_and_the_file(tmp_path, capsys):
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=0)
    with pytest.raises(tc.ValuesError, match=r"np\.asarray\(ids, dtype=np\.int64\)"):
        net.grad("loss", values={**vals, "ids": vals["ids"].astype(float)})
    spec, data = tmp_path / "cls.tc", tmp_path / "d.npz"
    spec.write_text(CLASSIFIER)
    for bad, message in (
        ({"ids": vals["ids"].astype(float)}, "the value of ids has dtype float64"),
        ({"labels": np.array([0, 1, 5])}, "labels[2] = 5 is not a position along c"),
    ):
        np.savez(data, **bad)
        assert main(["derive", str(spec), "--values", str(data)]) == 6
        assert capsys.readouterr().err.startswith(f"tensorchain: error: {data}: {message}")


def test_unregister_function_refuses_what_it_cannot_remove(registered):
    for name, why in (
        ("tanh", "it is a built-in function"),
        ("nope17", "it is not a registered function"),
    ):
        with pytest.raises(tc.SpecError, match=rf"cannot unregister '{name}': {why}"):
            tc.unregister_function(name)


def test_a_function_named_like_an_index_or_a_tensor_is_safe(registered):
    """A registered name may be an index or tensor name elsewhere, but a spec
    that calls it and also names a tensor so is refused at the call."""
    registered("i", _cube17, _dcube17, d2f=_d2cube17)
    registered("x", np.sin, np.cos, d2f=lambda v: -np.sin(v))
    with pytest.raises(tc.SpecError, match="'x' is both a registered function"):
        tc.parse(
            "dim n = 3\ndim m = 2\nparam x[n]\ninput W[m, n]\nh[a] = W[a, j] * x[j]\n"
            "L = sum(i(h[k]) * x(h[k]), k)"
        )
    net = tc.parse(
        "dim n = 3\ndim m = 2\nparam v[n]\ninput W[m, n]\nh[a] = W[a, j] * v[j]\n"
        "L = sum(i(h[k]) * x(h[k]), k)"
    )
    vals = net.random_values(seed=0)
    g = net.grad("L", "v", vals)["v"]
    np.testing.assert_allclose(g, tc.reshape_method(net, "L", "v", vals), rtol=1e-12)
    namespace = {}
    exec(compile(net.derive("L", "v").to_python(), "<generated>", "exec"), namespace)
    np.testing.assert_allclose(namespace["grad_L_v"](v=vals["v"], W=vals["W"]), g, rtol=1e-12)


def _cube17(v):
    return v**3


def _dcube17(v):
    return 3 * v**2


def _d2cube17(v):
    return 6 * v


# --- 9. docs ---


def test_every_example_is_listed_in_examples_md():
    root = Path(__file__).parent.parent
    listed = (root / "docs" / "examples.md").read_text(encoding="utf-8")
    files = sorted(p.name for p in (root / "examples").iterdir() if p.suffix in (".tc", ".py"))
    assert [f for f in files if f"`{f}`" not in listed] == []


def test_out_of_range_positions_under_jit_are_what_the_docs_say():
    """language.md: outside jit they are refused; under jax.jit nothing is
    checked, and a position past the end picks NaN."""
    jax = pytest.importorskip("jax")
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=0)
    vals["ids"] = np.array([0, 7, 1])  # V = 5
    with pytest.raises(tc.ValuesError, match=r"ids\[1\] = 7 is not a position along V"):
        net.evaluate(vals)
    from tensorchain.verification.autodiff import x64

    with x64(jax):
        traced = {k: jax.numpy.asarray(a) for k, a in vals.items()}
        x = jax.jit(lambda v: net.evaluate(v)["x"])(traced)
    x = np.asarray(x)
    assert np.isnan(x[1]).all() and np.isfinite(x[[0, 2]]).all()
