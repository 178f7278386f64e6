"""Ranges of positions (the offset index ``x[s, j + 1, k]``) and dim sizes as
numbers (``size(K)``): values against numpy's slicing, derivatives against the
reshape method, central differences, the dense jets and JAX; structure (no
dense constant stored); derive's printouts and generated code; the errors."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

RANGE = """
dim B = 2
dim T = 6
dim j = 3
dim K = 2
dim c = 2
param x[B, T, K]
param W[c, K]
y[s, j, k] = x[s, j + 2, k]            # x[:, 2:5, :]
z[s, j, o] = W[o, k] * x[s, j + 1, k]
h[s, j, o] = tanh(z[s, j, o]) * y[s, j, m]
L = sum(h ^ 2)
"""


def range_numpy(v):
    y = v["x"][:, 2:5, :]
    h = np.tanh(np.einsum("ok,sjk->sjo", v["W"], v["x"][:, 1:4, :])) * y.sum(-1, keepdims=True)
    return y, h


def test_an_offset_index_reads_a_range_of_positions():
    net = tc.parse(RANGE)
    v = net.random_values(seed=0)
    out = net.evaluate(v)
    y, _ = range_numpy(v)
    assert np.array_equal(out["y"], y)
    assert net.shape("y") == (2, 3, 2)


def test_gradients_hessians_and_jacobians_through_a_range():
    net = tc.parse(RANGE)
    v = net.random_values(seed=1)
    for w in ("x", "W"):
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-12, w
        assert max_relative_error(g, finite_differences(net, "L", w, v)) < 1e-7, w
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-10, w
    mixed = net.hessian("L", "x", v, wrt2="W").array
    assert max_relative_error(mixed, tc.reshape_hessian(net, "L", "x", v, "W")) < 1e-10
    T3 = net.derivative("L", ("x", "W", "x"), v)
    assert (
        max_relative_error(T3.array, tc.reference_derivative(net, "L", ("x", "W", "x"), v)) < 1e-9
    )


def test_the_jacobian_of_a_range_stores_the_offset_constant_only():
    net = tc.parse(RANGE)
    v = net.random_values(seed=0)
    J = net.jacobian("y", "x", v)  # δ+2[T, j] · δ(B, B') · δ(K, K')
    assert J.stored_entries() == 6 + 3 - 1  # the vector under the strided view, never 6 · 3
    assert np.array_equal(J.array, tc.reshape_method(net, "y", "x", v))
    expected = np.zeros((2, 3, 2, 2, 6, 2))
    for s, j, k in np.ndindex(2, 3, 2):
        expected[s, j, k, s, j + 2, k] = 1.0
    assert np.array_equal(J.array, expected)


def test_compiled_plans_and_every_order_agree():
    from tensorchain.language.reindex import _REINDEX

    net = tc.parse(RANGE)
    v = net.random_values(seed=2)
    expected = tc.reshape_method(net, "L", "x", v)
    compiled = net.compile_grad("L", ["x"])
    assert max_relative_error(compiled(v)["x"], expected) < 1e-12
    constants = {r for r, a in compiled.program.constants.items() if id(a) in _REINDEX}
    assert not [s for s in compiled.program.steps if constants & set(s.args)]  # slices, pads
    for order in ("reverse", "forward", "optimal"):
        got = net.plan("L", "x", order=order)(v).array
        assert max_relative_error(got, expected) < 1e-12, order


def test_derive_prints_the_offset_and_generates_numpy_code():
    net = tc.parse(RANGE)
    v = net.random_values(seed=3)
    d = net.derive("L", "x")
    assert re.search(r"δ\+2\[\w, \w\]", str(d)) and re.search(r"δ\+1\[\w, \w\]", str(d))
    assert r"\delta^{+2}" in d.latex()
    namespace: dict = {}
    exec(compile(d.to_python("g"), "<generated>", "exec"), namespace)  # our own code
    got = namespace["g"](x=v["x"], W=v["W"])
    assert max_relative_error(got, tc.reshape_method(net, "L", "x", v)) < 1e-12
    from tensorchain.language.show_lowered import show_lowered

    stmt = net.statement("y")
    assert (
        show_lowered(stmt.target, stmt.labels, stmt.root) == "y[i, j, k] = δ[l, j + 2] * x[i, l, k]"
    )


def test_the_range_dim_comes_from_another_tensor_or_the_values():
    net = tc.parse("dim T\ndim n = 2\nparam x[T]\nparam w[n]\ny[j] = x[j + 1] * w[j]\nL = sum(y)")
    v = {"x": np.arange(5.0), "w": np.array([2.0, 3.0])}
    assert np.array_equal(net.evaluate(v)["y"], np.array([2.0, 6.0]))
    g = net.grad("L", "x", v)["x"]
    assert np.array_equal(g, np.array([0.0, 2.0, 3.0, 0.0, 0.0]))
    with pytest.raises(tc.ShapeError, match=r"position 2 is past its end"):
        net.evaluate({"x": np.arange(2.0), "w": np.ones(2)})


def test_j_plus_zero_is_the_first_positions():
    net = tc.parse("dim T = 4\ndim j = 2\nparam x[T]\ny[j] = x[j - 0]\nz[j] = x[j + 0]\nL = sum(y)")
    v = net.random_values(seed=0)
    out = net.evaluate(v)
    assert np.array_equal(out["y"], v["x"][:2]) and np.array_equal(out["z"], v["x"][:2])


# --- the errors -------------------------------------------------------------

BASE = "dim B = 2\ndim T = 5\ndim j = 3\ndim K = 2\nparam x[B, T, K]\n"

ERRORS = [
    ("y[s, j, k] = x[s, 1:3, k]", tc.SpecError, 19, r"x\[\.\.\., j \+ 1, \.\.\.\].*dim j = 2"),
    ("y[s, k] = x[s, 1:, k]", tc.SpecError, 16, r"j \+ 1.*dim j = the size of that axis - 1"),
    (
        "y[s, j, k] = x[s, j + 3, k]",
        tc.ShapeError,
        19,
        r"positions 3 to 5 \(j runs over dim j = 3\) of axis 1 of x, which has T = 5"
        r" positions.*position 5 is past its end; use a dim of at most 2 for j"
        r".*offset of at most 2",
    ),
    ("y[s, i, j, k] = x[s, i + j, k]", tc.SpecError, 26, r"adds two indices.*shift tensor"),
    ("y[s, j, k] = x[s, j - 1, k]", tc.SpecError, 21, r"before the start of the axis"),
    ("y[s, j, k] = x[s, j + 1.5, k]", tc.SpecError, 23, r"an offset is a whole number"),
    ("y[s, j + 1, k] = x[s, j, k]", tc.SpecError, 8, r"offset is read on the right side only"),
    ("y[s, q, k] = x[s, q + 1, k]", tc.ShapeError, 19, r"'q' has no size.*dim q = 2"),
    ("y[s, j, k] = x[s, 1 + j, k]", tc.SpecError, 19, r"write the index first.*j \+ 1"),
    ("y[s, j, k] = x[s, j + 1 + 1, k]", tc.SpecError, 25, r"an index plus one whole number"),
    ("y[s, j, k] = x[s, j + 9, k]", tc.ShapeError, 19, r"use an offset below 5"),
    (
        "y = x / size(Q)",
        tc.SpecError,
        9,
        r"'Q' is not a declared dim \(declared dims: B, T, j, K\)",
    ),
    ("y = x / size(x)", tc.SpecError, 9, r"'x' is a tensor \(axes \[B, T, K\]\), not a dim"),
]


@pytest.mark.parametrize(("line", "cls", "column", "message"), ERRORS)
def test_errors_name_the_place_the_sizes_and_what_to_write(line, cls, column, message):
    with pytest.raises(cls, match=message) as info:
        tc.parse(BASE + line)
    assert (info.value.line, info.value.column) == (6, column)


def test_size_is_reserved_for_the_language():
    with pytest.raises(tc.SpecError, match="built-in"):
        tc.register_function("size", np.sin, np.cos)


# --- drawn networks ---------------------------------------------------------


@st.composite
def range_networks(draw):
    """A chain of offset reads (each a range of the previous tensor's axis,
    with a tanh or a product with a param) on a batch, with its sizes and the
    numpy slices that compute it."""
    T = draw(st.integers(1, 6))
    dims, decls, lines, steps = {"B": draw(st.integers(1, 2)), "T0": T}, [], [], []
    for n in range(draw(st.integers(1, 3))):
        size = dims[f"T{n}"]
        m = draw(st.integers(1, size))
        start = draw(st.integers(0, size - m))
        dims[f"T{n + 1}"] = m
        src = f"t{n - 1}" if n else "x"
        if draw(st.booleans()):
            j = f"T{n + 1}"  # an index named after its dim takes that dim
            lines.append(f"t{n}[s, {j}] = tanh({src}[s, {j} + {start}])")
            steps.append(("tanh", start, m))
        else:
            decls.append(f"param w{n}[T{n + 1}]")
            lines.append(f"t{n}[s, j] = {src}[s, j + {start}] * w{n}[j]")
            steps.append(("w", start, m, f"w{n}"))
    spec = "\n".join(
        [f"dim {d} = {s}" for d, s in dims.items()]
        + ["input x[B, T0]", *decls, *lines, f"L = sum(sin(t{len(lines) - 1}) ^ 2)"]
    )
    return spec, steps


def range_forward(v, steps):
    t = v["x"]
    for step in steps:
        part = t[:, step[1] : step[1] + step[2]]
        t = np.tanh(part) if step[0] == "tanh" else part * v[step[3]]
    return np.sum(np.sin(t) ** 2)


@given(range_networks(), st.integers(0, 2**16))
def test_drawn_ranges_agree_with_numpy_the_reshape_method_and_differences(drawn, seed):
    spec, steps = drawn
    net = tc.parse(spec)
    v = net.random_values(seed=seed)
    assert abs(net.evaluate(v)["L"] - range_forward(v, steps)) < 1e-10, spec
    for w in ["x", *net.params]:
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-10, (spec, w)
        assert max_relative_error(g, finite_differences(net, "L", w, v)) < 1e-6, (spec, w)


@given(range_networks(), st.integers(0, 2**16))
def test_drawn_ranges_second_order(drawn, seed):
    spec, _ = drawn
    net = tc.parse(spec)
    v = net.random_values(seed=seed)
    w = net.params[-1] if net.params else "x"
    H = net.hessian("L", w, v).array
    assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-9, spec


# --- size(K) ------------------------------------------------------------------

ATTENTION = """
dim B = 2
dim T = 3
dim K = 4
param q[B, T, K]
param kk[B, T, K]
scores[s, t, u] = q[s, t, k] * kk[s, u, k] / sqrt(size(K))
A[s, t, u] = softmax(scores[s, t, u], u)
L = sum(A * scores) + size(T) * sum(q)
"""


def test_size_is_the_dim_size_known_at_run_time():
    net = tc.parse(ATTENTION)
    for K in (4, 9):
        v = net.random_values(seed=K, K=K)
        scores = np.einsum("stk,suk->stu", v["q"], v["kk"]) / np.sqrt(K)
        assert max_relative_error(net.evaluate(v)["scores"], scores) < 1e-14
    free = tc.parse("dim K\nparam x[K]\ny = x / size(K)\nL = sum(y)")
    assert np.allclose(free.evaluate({"x": np.ones(5)})["y"], 0.2)  # K = 5 from the value


def test_size_has_zero_derivative_and_agrees_with_the_references():
    net = tc.parse(ATTENTION)
    v = net.random_values(seed=1)
    for w in ("q", "kk"):
        g = net.grad("L", w, v)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, v)) < 1e-12, w
        assert max_relative_error(g, finite_differences(net, "L", w, v)) < 1e-7, w
        H = net.hessian("L", w, v).array
        assert max_relative_error(H, tc.reshape_hessian(net, "L", w, v)) < 1e-10, w
    compiled = net.compile_grad("L", ["q"])
    assert max_relative_error(compiled(v)["q"], net.grad("L", "q", v)["q"]) < 1e-12


def test_derive_prints_size_symbolically_and_writes_the_number_into_code():
    net = tc.parse(ATTENTION)
    d = net.derive("L", "q")
    assert "1/sqrt(size(K))" in str(d) and "size(T)" in str(d)
    assert r"\frac{1}{\sqrt{K}}" in d.latex()
    source = d.to_python("g")
    assert "np.sqrt" not in source and "0.5" in source  # folded for K = 4
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own code
    v = net.random_values(seed=4)
    got = namespace["g"](q=v["q"], kk=v["kk"])
    assert max_relative_error(got, tc.reshape_method(net, "L", "q", v)) < 1e-12


def test_float32_values_stay_float32():
    net = tc.parse(ATTENTION)
    v = {k: a.astype(np.float32) for k, a in net.random_values(seed=0).items()}
    assert net.evaluate(v)["scores"].dtype == np.float32
    assert net.grad("L", "q", v)["q"].dtype == np.float32


# --- JAX ----------------------------------------------------------------------


def test_ranges_and_sizes_agree_with_jax():
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    jnp = jax.numpy
    net = tc.parse(RANGE)
    v = net.random_values(seed=7)

    def f(a):
        y = a["x"][:, 2:5, :]
        h = jnp.tanh(jnp.einsum("ok,sjk->sjo", a["W"], a["x"][:, 1:4, :]))
        return jnp.sum((h * y.sum(-1, keepdims=True)) ** 2)

    args = {k: jnp.asarray(a) for k, a in v.items()}
    grads = jax.grad(f)(args)
    for w in ("x", "W"):
        assert max_relative_error(net.grad("L", w, v)[w], np.asarray(grads[w])) < 1e-12
    H = np.asarray(jax.hessian(lambda x: f({**args, "x": x}))(args["x"]))
    assert max_relative_error(net.hessian("L", "x", v).array, H) < 1e-10
    on_jax = net.grad("L", ["x", "W"], args)  # JAX values in, JAX values out
    assert max_relative_error(np.asarray(on_jax["x"]), np.asarray(grads["x"])) < 1e-12
    att = tc.parse(ATTENTION)
    av = att.random_values(seed=8)

    def g(a):
        s = jnp.einsum("stk,suk->stu", a["q"], a["kk"]) / jnp.sqrt(4.0)
        return jnp.sum(jax.nn.softmax(s, axis=-1) * s) + 3 * jnp.sum(a["q"])

    aargs = {k: jnp.asarray(a) for k, a in av.items()}
    expected = jax.grad(g)(aargs)
    for w in ("q", "kk"):
        assert max_relative_error(att.grad("L", w, av)[w], np.asarray(expected[w])) < 1e-12


def test_dask_values():
    pytest.importorskip("dask")
    pytest.importorskip("array_api_compat")
    import dask.array as da

    net = tc.parse(RANGE)
    v = net.random_values(seed=9)
    other = {k: da.from_array(a, chunks=1) for k, a in v.items()}
    got = net.grad("L", ["x", "W"], other)
    for w in ("x", "W"):
        assert max_relative_error(np.asarray(got[w]), net.grad("L", w, v)[w]) < 1e-12


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("L = sum(x ^ 2) / size((H W))", r"size takes one declared dim.*size\(H\) \* size\(W\)"),
        ("L = sum(x ^ 2) / size(H W)", r"found a second name 'W'.*size\(H\) \* size\(W\)"),
        ("y[b, (h w)] = x[b, h + 0, w]", r"group \(h w\) has no size.*offset index.*dim h = 2"),
    ],
)
def test_trial_messages_for_size_and_group_offsets(statement, message):
    """The messages a trial of offsets and size() found confusing (issue 17)."""
    decl = "param x[B, (H W)]" if "size" in statement else "param x[B, H, W]"
    spec = f"dim B = 2\ndim H = 2\ndim W = 3\n{decl}\n{statement}\n"
    with pytest.raises(tc.SpecError, match=message) as caught:
        tc.parse(spec)
    assert caught.value.line == 5


def test_an_offset_inside_an_index_tensor_says_what_to_write_instead():
    spec = "dim V = 7\ndim B = 3\ndim j = 2\nparam E[V]\ninput ids[B] index V\n"
    with pytest.raises(tc.SpecError, match=r"read whole; gather by all of them") as caught:
        tc.parse(spec + "z[j] = E[ids[j + 1]]\n")
    assert "left side" not in str(caught.value)
    net = tc.parse(spec + "g[s] = E[ids[s]]\nz[j] = g[j + 1]\nL = sum(z ^ 2)\n")  # what it says
    values = {"E": np.arange(7.0), "ids": np.array([1, 4, 6])}
    assert np.array_equal(net.evaluate(values)["z"], [4.0, 6.0])
    expected = np.zeros(7)
    expected[[4, 6]] = 2 * np.array([4.0, 6.0])
    assert np.array_equal(net.grad("L", "E", values)["E"], expected)
