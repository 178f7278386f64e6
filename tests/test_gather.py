"""Integer index tensors, gathers and constant positions (issue 17, item 2).

References: the reshape method (which builds the dense one-hot itself),
central differences, the dense jets of ``tc.reference_derivative`` for second
order, and JAX running an independent formulation (``jnp.take``,
``take_along_axis``) where it is installed.
"""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.language.gather import Selection
from tensorchain.testing import finite_differences, max_relative_error

TIGHT = 1e-10

CLASSIFIER = """
dim B = 6
dim V = 9
dim D = 4
dim c = 3
input ids[B] index V
input labels[B] index c
param T[V, D]
param W[c, D]
e[s, d] = T[ids[s], d]
h = tanh(e)
z[s, k] = W[k, d] * h[s, d]
L = cross_entropy(z, labels, c)
"""


def _jax():
    if importlib.util.find_spec("jax") is None:
        pytest.skip("jax not installed")
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _close(a, b, tol=TIGHT):
    assert max_relative_error(np.asarray(a), np.asarray(b)) < tol


# --- the examples (each failed before) -----------------------------


def test_cross_entropy_takes_integer_labels():
    """``cross_entropy(z, labels, c)`` with ``labels[B]`` failed with a message
    about its internal expansion; it is the mean of -log_softmax at the label."""
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=3)
    z = net.evaluate(vals)["z"]
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    expected = -logp[np.arange(6), vals["labels"]].mean()
    assert abs(net.evaluate(vals)["L"] - expected) < 1e-12
    for w in ("T", "W"):
        _close(net.grad("L", w, vals)[w], tc.reshape_method(net, "L", w, vals))


def test_constant_position_is_an_index():
    """``x[s, 0, k]`` gave "expected an index name, found the number 0"."""
    net = tc.parse("dim B = 2\ndim K = 3\ndim n = 4\nparam x[B, K, n]\ny[s, k] = x[s, 0, k]\n")
    vals = net.random_values(seed=1)
    assert np.array_equal(net.evaluate(vals)["y"], vals["x"][:, 0, :])


def test_embedding_lookup():
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=0)
    assert np.array_equal(net.evaluate(vals)["e"], vals["T"][vals["ids"]])


# --- references ---------------------------------------------------------------


def test_classifier_against_jax():
    """The gradient of an embedding classifier with integer labels equals
    jax.grad of the same model written with jnp.take and take_along_axis."""
    jax = _jax()
    jnp = jax.numpy
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=5)

    def loss(T, W):
        h = jnp.tanh(jnp.take(T, vals["ids"], axis=0))
        z = h @ W.T
        logp = jax.nn.log_softmax(z, axis=1)
        return -jnp.mean(jnp.take_along_axis(logp, vals["labels"][:, None], axis=1))

    expected = jax.grad(loss, argnums=(0, 1))(vals["T"], vals["W"])
    got = net.grad("L", ["T", "W"], vals)
    _close(got["T"], expected[0])
    _close(got["W"], expected[1])


def test_gathers_against_finite_differences_and_the_reshape_method():
    spec = """
    dim B = 3
    dim L = 2
    dim V = 5
    dim D = 2
    input ids[B, L] index V
    param T[V, D]
    param A[V, V]
    e[b, l, d] = T[ids[b, l], d]
    f[b, l] = A[ids[b, l], ids[b, l]] + A[ids[b, l], 0]
    g = sum(sin(e) * e) + sum(f * f)
    """
    net = tc.parse(spec)
    vals = net.random_values(seed=2)
    for w in ("T", "A"):
        got = net.grad("g", w, vals)[w]
        _close(got, tc.reshape_method(net, "g", w, vals))
        assert np.allclose(got, finite_differences(net, "g", w, vals), atol=1e-6)


def test_nll_and_index_form_cross_entropy():
    spec = """
    dim B = 4
    dim c = 5
    input labels[B] index c
    input p[B, c]
    param z[B, c]
    a = nll(log_softmax(z, c), labels, c)
    b = cross_entropy(z[s, k], labels[s], k)
    d = nll(z, p, c)
    """
    net = tc.parse(spec)
    vals = net.random_values(seed=4)
    out = net.evaluate(vals)
    z = vals["z"]
    logp = z - np.log(np.exp(z).sum(axis=1, keepdims=True))
    picked = logp[np.arange(4), vals["labels"]]
    assert abs(out["a"] + picked.mean()) < 1e-12
    assert abs(out["b"] + picked.mean()) < 1e-12
    assert abs(out["d"] + (vals["p"] * z).sum(axis=1).mean()) < 1e-12
    for of in ("a", "b"):
        _close(net.grad(of, "z", vals)["z"], tc.reshape_method(net, of, "z", vals))


def test_second_order_through_gathers():
    """Hessians through a gather (the any-order machinery) against the dense
    jets of the reference, which build the one-hot themselves."""
    net = tc.parse(CLASSIFIER.replace("dim V = 9", "dim V = 4").replace("dim B = 6", "dim B = 3"))
    vals = net.random_values(seed=7)
    for wrt in (("T", "T"), ("T", "W"), ("W", "W")):
        H = net.derivative("L", wrt, vals)
        _close(H.array, tc.reference_derivative(net, "L", wrt, vals))
    third = net.derivative("L", ("T", "W", "T"), vals)  # the any-order machinery
    _close(third.array, tc.reference_derivative(net, "L", ("T", "W", "T"), vals), 1e-9)
    v = np.random.default_rng(0).standard_normal(vals["T"].shape)
    H = tc.reference_derivative(net, "L", ("T", "T"), vals)
    _close(net.hvp("L", "T", v, vals), np.tensordot(H, v, axes=2))


# --- structure: a gather's derivative is never a dense one-hot -------------


def test_the_derivative_of_a_gather_stores_no_one_hot():
    B, V, D = 40, 1000, 3
    net = tc.parse(
        f"dim B = {B}\ndim V = {V}\ndim D = {D}\ninput ids[B] index V\nparam T[V, D]\n"
        "e[s, d] = T[ids[s], d]\nL = sum(e ^ 2)\n"
    )
    vals = net.random_values(seed=0)
    J = net.jacobian("e", "T", vals)
    selections = [f.array for t in J.terms for f in t.factors if isinstance(f.array, Selection)]
    assert len(selections) == 1 and J.deltas == (("D", "D'"),)
    assert J.stored_entries() == B  # the positions, not B·V
    assert not any(
        isinstance(a, np.ndarray) and a.size >= B * V
        for t in J.terms
        for f in t.factors
        for a in [f.array]
    )
    # The compiled gradient holds no array of B·V entries at any step.
    grad = net.compile_grad("L", "T")
    assert max(int(np.prod(s)) for s in grad.program.shapes) < B * V
    _close(grad(vals)["T"], _scatter(vals["ids"], 2 * vals["T"][vals["ids"]], V))
    # Only the dense array of the Jacobian itself holds the one-hot.
    _close(J.array, np.einsum("sv,dD->sdvD", np.eye(V)[vals["ids"]], np.eye(D)))


def _scatter(ids, rows, V):
    out = np.zeros((V, rows.shape[1]))
    for i, r in zip(ids, rows, strict=True):
        out[i] += r
    return out


# --- values -----------------------------------------------------------------


def test_random_values_draw_positions_and_differences_leave_them():
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=11)
    for name, size in (("ids", 9), ("labels", 3)):
        assert vals[name].dtype.kind == "i" and vals[name].min() >= 0 and vals[name].max() < size
    report = net.verify("L", references=["reference", "differences"])
    assert report.ok, str(report)


@pytest.mark.parametrize(
    ("bad", "message"),
    [
        (
            np.array([0, 1, 2, 9, 1, 0]),
            r"^ids\[3\] = 9 is not a position along V: ids holds positions 0 to 8 of dim V = 9$",
        ),
        (np.array([0, -1, 2, 3, 1, 0]), r"^ids\[1\] = -1 is not a position along V"),
        (
            np.array([0, 1, 2, 3, 1, 0.0]),
            r"^the value of ids has dtype float64, but ids holds positions along V",
        ),
    ],
)
def test_values_out_of_range_or_not_integers(bad, message):
    net = tc.parse(CLASSIFIER)
    vals = {**net.random_values(seed=0), "ids": bad}
    with pytest.raises(tc.ValuesError, match=message):
        net.grad("L", "T", vals)
    with pytest.raises(tc.ValuesError, match=message):
        net.evaluate(vals)


def test_two_dimensional_positions_name_the_entry():
    net = tc.parse(
        "dim B = 2\ndim L = 3\ndim V = 4\ninput ids[B, L] index V\nparam T[V]\n"
        "e[b, l] = T[ids[b, l]]\n"
    )
    vals = {"ids": np.array([[0, 1, 2], [3, 7, 5]]), "T": np.zeros(4)}
    with pytest.raises(tc.ValuesError, match=r"ids\[1, 1\] = 7 is not a position .* \(2 entries"):
        net.evaluate(vals)


@pytest.mark.parametrize(
    "call",
    [
        lambda net, v: net.grad("L", ["ids"], v),
        lambda net, v: net.jacobian("z", "labels", v),
        lambda net, v: net.derivative("L", ("T", "ids"), v),
        lambda net, v: net.derive("L", "ids"),
        lambda net, v: finite_differences(net, "L", "ids", v),
    ],
)
def test_derivatives_by_positions_are_refused(call):
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=0)
    with pytest.raises(
        tc.DerivativeError,
        match=r"by (ids|labels) (is|are) not defined: .* holds integer positions",
    ):
        call(net, vals)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("param ids[B] index V", r"declared 'param' but holds integer positions"),
        ("input ids[B] index W", r"unknown dim 'W' after 'index'"),
        ("input ids index V", r"has no axes; an index tensor has at least one axis"),
        (
            "input ids[B] index V\nparam T[D]\ne[s] = T[ids[s]]",
            r"ids holds positions along dim V, but axis 0 of T is dim D",
        ),
        ("input x[B]\nparam T[V]\ne[s] = T[x[s]]", r"x holds numbers, not positions"),
        (
            "input ids[B] index V\nparam T[V]\ne[s] = T[ids]",
            r"ids is an index tensor: .* write its indices too, T\[\.\.\., ids\[s\], \.\.\.\]",
        ),
        ("input ids[B] index V\nparam T[V]\ne[s] = T[ids[s, t]]", r"ids has 1 axis \[B\]"),
        ("param T[V]\ne = T[-1]", r"negative positions .* write the position from 0"),
        (
            "param T[V]\ne = T[5]",
            r"position 5 is past the end of axis 0 of T \(dim V = 3\): positions run from 0 to 2",
        ),
        ("param T[V]\ne[k] = delta[k, 0]", r"the index 'k' indexes no tensor"),
    ],
)
def test_spec_errors(text, message):
    with pytest.raises(tc.SpecError, match=message) as err:
        tc.parse(f"dim B = 2\ndim V = 3\ndim D = 2\n{text}\n")
    assert err.value.line is not None and not re.search(r"@\d|#\d|__", str(err.value))


# --- every route: derive, generated code, plans, JAX, dask ------------------


def test_derive_prints_the_selection_and_its_code_runs():
    net = tc.parse(CLASSIFIER)
    d = net.derive("L", "T")
    assert str(d).startswith("∂L/∂T[i, j] = ") and "δ(ids[p], i)" in str(d)
    assert r"\delta_{\mathrm{ids}_{p} i}" in d.latex()
    dz = net.derive("L", "W")
    assert "T[ids[p], " not in str(dz)  # h is its own tensor
    vals = net.random_values(seed=9)
    for wrt in ("T", "W"):
        namespace: dict = {}
        exec(net.derive("L", wrt).to_python("f"), namespace)  # generated source only
        _close(namespace["f"](**vals), tc.reshape_method(net, "L", wrt, vals))


def test_picked_tensors_print_with_their_positions():
    net = tc.parse(
        "dim B = 2\ndim V = 3\ndim D = 2\ninput ids[B] index V\nparam T[V, D]\n"
        "param w[D]\ne[s] = T[ids[s], d] * w[d] + T[0, d] * w[d]\n"
    )
    d = net.derive("e", "w")
    assert "T[ids[p], " in str(d) or "T[ids[i], " in str(d)
    assert "T[0, " in str(d)


def test_plans_compiled_and_float32():
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=1)
    expected = tc.reshape_method(net, "L", "T", vals)
    for order in ("reverse", "forward", "optimal"):
        _close(net.plan("L", "T", order=order)(vals).array, expected)
    small = {k: v if k in ("ids", "labels") else v.astype(np.float32) for k, v in vals.items()}
    g = net.grad("L", "T", small)["T"]
    assert g.dtype == np.float32 and max_relative_error(g, expected) < 1e-5
    _close(net.compile_grad("L", ["T", "W"])(vals)["T"], expected)


def test_jax_and_dask_values():
    jax = _jax()
    net = tc.parse(CLASSIFIER)
    vals = net.random_values(seed=2)
    expected = {w: tc.reshape_method(net, "L", w, vals) for w in ("T", "W")}
    on_jax = {k: jax.numpy.asarray(v) for k, v in vals.items()}
    g = net.grad("L", ["T", "W"], on_jax)
    for w in ("T", "W"):
        assert type(g[w]).__module__.startswith("jax")
        _close(np.asarray(g[w]), expected[w])
    jitted = jax.jit(lambda v: net.grad("L", "T", v)["T"])
    _close(np.asarray(jitted(on_jax)), expected["T"])
    if importlib.util.find_spec("dask") is None:
        return
    import dask.array as da

    on_dask = {k: da.from_array(v, chunks=2) for k, v in vals.items()}
    g = net.grad("L", ["T", "W"], on_dask)
    for w in ("T", "W"):
        _close(np.asarray(g[w]), expected[w])


# --- property: drawn networks with gathers ---------------------------------


@st.composite
def gather_networks(draw):
    """A network that gathers rows of a table by drawn positions (one or two
    index axes), picks along a diagonal and at a constant position, inside a
    drawn function, and ends in a sum or in a cross-entropy on drawn integer
    labels; with its values."""
    V, D, B, c = (draw(st.integers(1, n)) for n in (5, 3, 4, 3))
    two = draw(st.booleans())
    at = "b, l" if two else "b"
    axes = "B, L" if two else "B"
    k = draw(st.integers(0, V - 1))
    f = draw(st.sampled_from(["tanh", "sin", "sigmoid"]))
    labelled = draw(st.booleans())
    loss = (
        f"z[{at}, k] = W[k, d] * h[{at}, d]\ng = cross_entropy(z, labels, c)"
        if labelled
        else "g = sum(h * h) + sum(h)"
    )
    spec = f"""
    dim B = {B}
    dim L = 2
    dim V = {V}
    dim D = {D}
    dim c = {c}
    input ids[{axes}] index V
    input labels[{axes}] index c
    param T[V, D]
    param A[{axes}, V]
    param W[c, D]
    e[{at}, d] = T[ids[{at}], d] * A[{at}, ids[{at}]] + T[{k}, d]
    h = {f}(e)
    {loss}
    """
    net = tc.parse(spec)
    rng = np.random.default_rng(draw(st.integers(0, 2**16)))
    shape = (B, 2) if two else (B,)
    vals = {
        "ids": rng.integers(0, V, size=shape),
        "labels": rng.integers(0, c, size=shape),
        "T": rng.standard_normal((V, D)),
        "A": rng.standard_normal((*shape, V)),
        "W": rng.standard_normal((c, D)),
    }
    return net, vals


@given(gather_networks())
def test_drawn_gather_networks(case):
    net, vals = case
    for w in ("T", "A"):
        got = net.grad("g", w, vals)[w]
        _close(got, tc.reshape_method(net, "g", w, vals))
        assert np.allclose(got, finite_differences(net, "g", w, vals), atol=1e-5)
    H = net.derivative("g", ("T", "A"), vals)
    _close(H.array, tc.reference_derivative(net, "g", ("T", "A"), vals), 1e-9)


@pytest.mark.parametrize(
    "loss",
    [
        "cross_entropy(z, labels, c)",
        "cross_entropy(z[s, k], labels[s], k)",
        "nll(z[s, k], labels[s], k)",
    ],
)
def test_float_labels_without_the_classes_are_refused(loss):
    """Float targets without the class axis were broadcast over the classes
    silently in index form, and in whole-tensor form refused with a message
    about the shorthand's expansion; both now name the declaration to use."""
    with pytest.raises(tc.ShapeError, match=r"do not run along the classes .* index c"):
        tc.parse(f"dim B = 4\ndim c = 3\ninput labels[B]\nparam z[B, c]\nL = {loss}\n")


def test_a_one_hot_used_as_a_tensor():
    """``delta[k, labels[s]]`` outside a product (a sum, a function, a
    statement of its own) is the dense one-hot there."""
    net = tc.parse(
        "dim B = 3\ndim c = 4\ninput labels[B] index c\nparam z[B, c]\n"
        "H[s, k] = delta[k, labels[s]]\nN[s, k] = exp(delta[k, labels[s]]) * z[s, k]\n"
        "M[s, k] = 2 * delta[k, labels[s]] + z[s, k]\nP = sum(N * M) + sum(H * z)\n"
    )
    vals = net.random_values(seed=0)
    hot = np.eye(4)[vals["labels"]]
    out = net.evaluate(vals)
    assert np.array_equal(out["H"], hot)
    _close(out["N"], np.exp(hot) * vals["z"])
    _close(net.grad("P", "z", vals)["z"], tc.reshape_method(net, "P", "z", vals))
    _close(net.hessian("P", "z", vals).array, tc.reference_derivative(net, "P", ("z", "z"), vals))


def test_check_gradient_and_the_command_line(capsys):
    net = tc.parse(CLASSIFIER)

    def by_hand(v):
        h = np.tanh(v["T"][v["ids"]])
        z = h @ v["W"].T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        p[np.arange(len(v["ids"])), v["labels"]] -= 1.0
        dz = p / len(v["ids"])
        dT = np.zeros_like(v["T"])
        np.add.at(dT, v["ids"], (dz @ v["W"]) * (1.0 - h * h))
        return {"T": dT, "W": dz.T @ h}

    assert tc.check_gradient(by_hand, net, "L", examples=5).ok
    wrong = tc.check_gradient(
        lambda v: {**by_hand(v), "T": 2 * by_hand(v)["T"]}, net, "L", examples=5
    )
    assert not wrong.ok
    from tensorchain.cli import main

    spec = Path(__file__).parent.parent / "examples" / "token_classifier.tc"
    assert main(["derive", str(spec), "--wrt", "E"]) == 0
    out = capsys.readouterr().out
    assert "δ(ids[B, L], V)" in out and "max |tensorchain − reshape method| = " in out
