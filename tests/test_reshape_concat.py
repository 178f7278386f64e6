"""Reshapes (groups ``(h w)``) and concatenation (``concat``): values and
derivatives of every order against JAX (the model written again in
jax.numpy), central differences, the reshape method and the dense jets;
derivatives that never hold a dense reshape or concatenation factor; and the
errors, with their line and column."""

import importlib.util
import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.language.reindex import _REINDEX, group_tensor, offset_tensor
from tensorchain.testing import finite_differences, max_relative_error

HAS_JAX = importlib.util.find_spec("jax") is not None

# --- the constructs, each with the same model in jax.numpy --------------------

FLATTEN = """
dim B = 2
dim C = 2
dim H = 3
dim W = 2
dim c = 3
input p[B, C, H, W]
input y[B, c]
param V[c, (C H W)]
param v0[c]
f[b, (i h w)] = p[b, i, h, w]        # a CNN's flatten
z[b, j] = V[j, e] * tanh(f[b, e]) + v0[j]
L = cross_entropy(z, y, c)
"""


def flatten_jax(jnp, v):
    f = v["p"].reshape(v["p"].shape[0], -1)
    z = jnp.tanh(f) @ v["V"].T + v["v0"]
    logp = z - jnp.log(jnp.sum(jnp.exp(z), axis=1, keepdims=True))
    return jnp.mean(jnp.sum(-v["y"] * logp, axis=1))


HEADS = """
dim B = 2
dim T = 3
dim D = 4
dim nh = 2     # heads
dim k = 2      # head width
input X[B, T, D]
param Wq[D, (nh k)]
param Wk[D, (nh k)]
param Wo[(nh k), D]
Q[b, t, e] = X[b, t, d] * Wq[d, e]
K[b, t, e] = X[b, t, d] * Wk[d, e]
q[b, t, h, j] = Q[b, t, (h j)]       # multi-head attention's head split
kk[b, t, h, j] = K[b, t, (h j)]
S[b, h, t, u] = q[b, t, h, j] * kk[b, u, h, j]
A[b, h, t, u] = softmax(S[b, h, t, u], u)
o[b, t, h, j] = A[b, h, t, u] * q[b, u, h, j]
O[b, t, (h j)] = o[b, t, h, j]       # and the merge
Y[b, t, d] = O[b, t, e] * Wo[e, d]
L = sum(tanh(Y) ^ 2)
"""


def heads_jax(jnp, v):
    B, T, _ = v["X"].shape
    q = (v["X"] @ v["Wq"]).reshape(B, T, 2, 2)
    kk = (v["X"] @ v["Wk"]).reshape(B, T, 2, 2)
    S = jnp.einsum("bthj,buhj->bhtu", q, kk)
    A = jnp.exp(S - S.max(axis=3, keepdims=True))
    A = A / A.sum(axis=3, keepdims=True)
    o = jnp.einsum("bhtu,buhj->bthj", A, q).reshape(B, T, 4)
    return jnp.sum(jnp.tanh(o @ v["Wo"]) ** 2)


NAMED = """
dim B = 2
dim E = 6
dim h = 2
dim w = 3
input x[B, E]
param u[h]
x3[s, h, w] = x[s, (h w)]            # split: the sizes from the dims h and w
z[s, w] = u[h] * x3[s, h, w]
L = sum(sin(z))
"""


def named_jax(jnp, v):
    x3 = v["x"].reshape(-1, 2, 3)
    return jnp.sum(jnp.sin(jnp.einsum("h,shw->sw", v["u"], x3)))


CONCAT = """
dim B = 2
dim I = 2
dim J = 3
dim K = 1
input a[B, I]
param b[B, J]
param c0[K]
param U[(I + J + K), I]
cat[s, k] = concat(a[s, k], sigmoid(b[s, k]), c0[k], k)
z[s, i] = cat[s, k] * U[k, i]
L = sum(tanh(z) ^ 2)
"""


def concat_jax(jnp, v):
    B = v["a"].shape[0]
    parts = [v["a"], 1 / (1 + jnp.exp(-v["b"])), jnp.broadcast_to(v["c0"], (B, 1))]
    z = jnp.concatenate(parts, axis=1) @ v["U"]
    return jnp.sum(jnp.tanh(z) ** 2)


REARRANGE = """
dim B = 2
dim H = 2
dim W = 3
input x[B, (H W)]
param m[(W H)]
z[s, (w h)] = x[s, (h w)]            # einops' rearrange 'b (h w) -> b (w h)'
u[s, e] = z[s, e] * m[e]
L = sum(exp(0.5 * u))
"""


def rearrange_jax(jnp, v):
    z = v["x"].reshape(2, 2, 3).transpose(0, 2, 1).reshape(2, 6)
    return jnp.sum(jnp.exp(0.5 * z * v["m"]))


CASES = {
    "flatten": (FLATTEN, flatten_jax),
    "heads": (HEADS, heads_jax),
    "named": (NAMED, named_jax),
    "concat": (CONCAT, concat_jax),
    "rearrange": (REARRANGE, rearrange_jax),
}


def values(net, seed=0):
    vals = net.random_values(seed=seed)
    if "y" in vals:  # a distribution over classes
        y = np.exp(vals["y"])
        vals["y"] = y / y.sum(axis=1, keepdims=True)
    return vals


def jax_grads(case, vals, wrts):
    import jax

    jax.config.update("jax_enable_x64", True)
    fn = CASES[case][1]
    args = {k: jax.numpy.asarray(v) for k, v in vals.items()}
    loss, grads = jax.jit(jax.value_and_grad(lambda a: fn(jax.numpy, a)))(args)
    return loss, {w: np.asarray(grads[w]) for w in wrts}


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
@pytest.mark.parametrize("case", CASES)
def test_values_and_gradients_agree_with_jax(case):
    net = tc.parse(CASES[case][0])
    vals = values(net)
    wrts = [*net.params, *net.inputs]
    loss, expected = jax_grads(case, vals, wrts)
    assert abs(float(net.evaluate(vals)["L"]) - float(loss)) < 1e-12 * max(1.0, abs(float(loss)))
    got = net.grad("L", wrts, vals)
    for w in wrts:
        assert max_relative_error(got[w], expected[w]) < 1e-12, w


@pytest.mark.parametrize("case", CASES)
def test_gradients_agree_with_the_reshape_method_and_differences(case):
    net = tc.parse(CASES[case][0])
    vals = values(net, seed=3)
    for w in [*net.params, *net.inputs]:
        g = net.grad("L", w, vals)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, vals)) < 1e-12, w
        assert max_relative_error(g, finite_differences(net, "L", w, vals)) < 1e-7, w


@pytest.mark.parametrize("case", CASES)
def test_hessians_through_them_agree_with_the_jets(case):
    """Reshapes and concatenations are linear (zero second derivative), and
    a Hessian through them is the Hessians around them, carried across."""
    net = tc.parse(CASES[case][0])
    vals = values(net, seed=5)
    w = net.params[0]
    H = net.hessian("L", w, vals)
    assert max_relative_error(H.array, tc.reshape_hessian(net, "L", w, vals)) < 1e-10
    other = [*net.params, *net.inputs][-1]
    mixed = net.hessian("L", w, vals, wrt2=other).array
    assert max_relative_error(mixed, tc.reshape_hessian(net, "L", w, vals, other)) < 1e-10


@pytest.mark.skipif(not HAS_JAX, reason="jax not installed")
def test_a_hessian_through_the_head_split_agrees_with_jax():
    import jax

    jax.config.update("jax_enable_x64", True)
    net = tc.parse(HEADS)
    vals = values(net, seed=2)
    args = {k: jax.numpy.asarray(v) for k, v in vals.items()}

    def f(wq):
        return heads_jax(jax.numpy, {**args, "Wq": wq})

    expected = np.asarray(jax.jit(jax.hessian(f))(args["Wq"]))
    assert max_relative_error(net.hessian("L", "Wq", vals).array, expected) < 1e-10


def test_third_derivatives_through_a_concatenation_and_a_merge():
    net = tc.parse(
        "dim I = 2\ndim J = 2\ninput a[I]\nparam b[J]\n"
        "c[k] = concat(a[k], b[k] ^ 2, k)\n"
        "m[(k l)] = c[k] * c[l]\nL = sum(sin(m))\n"
    )
    vals = net.random_values(seed=1)
    T = net.derivative("L", ("b", "a", "b"), vals)
    expected = tc.reference_derivative(net, "L", ("b", "a", "b"), vals)
    assert max_relative_error(T.array, expected) < 1e-10


# --- structure: the constants are never dense, never read ----------------------


@given(st.lists(st.integers(1, 4), min_size=1, max_size=3))
def test_the_group_constant_is_its_definition(members):
    G = int(np.prod(members))
    R = group_tensor((G, *members))
    assert np.array_equal(R, np.eye(G).reshape(G, *members))
    low, high = np.lib.array_utils.byte_bounds(R)
    assert not R.flags.writeable and high - low <= (2 * G - 1) * R.itemsize  # a view of 2G - 1


@given(st.integers(1, 5), st.integers(0, 4), st.integers(0, 4))
def test_the_offset_constant_is_its_definition(n, before, after):
    K = before + n + after
    E = offset_tensor(K, n, before)
    expected = np.concatenate([np.zeros((before, n)), np.eye(n), np.zeros((after, n))])
    assert np.array_equal(E, expected)
    low, high = np.lib.array_utils.byte_bounds(E)
    assert not E.flags.writeable and high - low <= (K + n - 1) * E.itemsize


def test_derivatives_store_no_dense_reshape_or_concat_factor():
    net = tc.parse(FLATTEN)
    vals = values(net)
    J = net.jacobian("f", "p", vals)  # δ[(C H W), C', H', W'] · δ(B, B')
    assert J.deltas == (("B", "B'"),)
    G = 2 * 3 * 2
    assert J.stored_entries() == 2 * G - 1  # the vector under the view, never G·G
    assert np.array_equal(J.array, np.eye(2 * G).reshape(2, G, 2, 2, 3, 2))
    (term,) = J.terms
    (factor,) = term.factors
    assert id(factor.array) in _REINDEX and factor.name == "δ"
    cat = tc.parse(CONCAT)
    cvals = cat.random_values(seed=0)
    Jc = cat.jacobian("cat", "b", cvals)  # δ+2[(I + J + K), J] · σ'(b) · δ(B, B')
    assert Jc.stored_entries() <= (6 + 3 - 1) + 2 * 3
    H = cat.hessian("L", "b", cvals)
    dense_E = 6 * 3
    assert all(
        id(f.array) in _REINDEX or f.array.size < dense_E * 2 for t in H.terms for f in t.factors
    )


def test_compiled_programs_never_read_the_constants():
    """A gradient through a flatten, a head split and a concatenation runs
    reshapes and slices: no step takes a constant, and nothing is as large as
    a dense reshape factor (G × G)."""
    for spec in (FLATTEN, HEADS, CONCAT):
        net = tc.parse(spec)
        for w in [*net.params, *net.inputs]:
            program = net.compile_grad("L", [w]).program
            constants = {r for r, a in program.constants.items() if id(a) in _REINDEX}
            assert not [s for s in program.steps if constants & set(s.args)], w
    net = tc.parse(FLATTEN.replace("dim H = 3", "dim H = 30").replace("dim W = 2", "dim W = 20"))
    program = net.compile_grad("L", ["p"]).program
    G = 2 * 30 * 20
    assert max(map(np.prod, program.shapes)) < G * G / 100


def test_plans_in_every_order_agree():
    net = tc.parse(HEADS)
    vals = values(net)
    expected = tc.reshape_method(net, "L", "Wq", vals)
    for order in ("reverse", "forward", "optimal", "greedy"):
        got = net.plan("L", "Wq", order=order)(vals).array
        assert max_relative_error(got, expected) < 1e-12, order


# --- derive: index notation, LaTeX, generated code, the command line ----------


def test_derive_prints_the_factors_and_generates_numpy_code():
    net = tc.parse(CONCAT)
    vals = values(net)
    d = net.derive("L", "b")
    assert re.search(r"δ\+2\[\w, j\]", str(d))  # b's part starts after a's 2 entries
    assert r"\delta^{+2}" in d.latex()
    namespace: dict = {}
    exec(compile(d.to_python("g"), "<generated>", "exec"), namespace)  # our own code
    args = {k: vals[k] for k in ("a", "b", "c0", "U")}
    assert max_relative_error(namespace["g"](**args), net.grad("L", "b", vals)["b"]) < 1e-12
    flat = tc.parse(FLATTEN)
    d = flat.derive("L", "p")
    assert re.search(r"δ\[\w, j, k, l\]", str(d))  # the flatten's delta, by p's axes
    fvals = values(flat)
    source = d.to_python("g")
    assert "np.reshape(" in source and "np.array([" not in source  # no constant written out
    namespace = {}
    exec(compile(source, "<generated>", "exec"), namespace)
    got = namespace["g"](**{k: fvals[k] for k in ("p", "y", "V", "v0")})
    assert max_relative_error(got, flat.grad("L", "p", fvals)["p"]) < 1e-12


def test_the_lowered_statement_shows_the_groups_and_offsets():
    from tensorchain.language.show_lowered import show_lowered

    net = tc.parse(CONCAT)
    stmt = net.statement("cat")
    text = show_lowered(stmt.target, stmt.labels, stmt.root, net.label_dims["cat"])
    assert text == (  # each part placed after the sizes of those before it
        "cat[i, j] = a[i, k] * δ[j, k] + sigmoid(b[i, l]) * δ[j, l + I] + c0[m] * δ[j, m + I + J]"
    )
    stmt = tc.parse(FLATTEN).statement("f")
    assert "δ[j, (k l m)]" in show_lowered(stmt.target, stmt.labels, stmt.root)


def test_the_command_line_derives_through_a_flatten(tmp_path, capsys):
    from tensorchain.cli import main

    spec = tmp_path / "cnn.tc"
    spec.write_text(FLATTEN)
    main(["derive", str(spec), "--of", "L", "--wrt", "p"])
    out = capsys.readouterr().out
    assert "(C H W)=12" in out and "δ[" in out
    assert "reshape method" in out


# --- other array libraries -------------------------------------------------------


@pytest.mark.parametrize("library", ["jax", "dask"])
def test_jax_and_dask_values(library):
    pytest.importorskip(library)
    if library == "dask":
        pytest.importorskip("array_api_compat")
        import dask.array as da

        def on(a):
            return da.from_array(a, chunks=1)
    else:
        import jax

        jax.config.update("jax_enable_x64", True)

        def on(a):
            return jax.numpy.asarray(a)

    for spec in (NAMED, CONCAT):
        net = tc.parse(spec)
        vals = values(net)
        other = {k: on(v) for k, v in vals.items()}
        wrts = [*net.params, *net.inputs]
        got, expected = net.grad("L", wrts, other), net.grad("L", wrts, vals)
        for w in wrts:
            assert type(got[w]).__module__.split(".")[0].replace("jaxlib", "jax") == library
            assert max_relative_error(np.asarray(got[w]), expected[w]) < 1e-12
        H = net.hessian("L", wrts[0], other).array
        assert max_relative_error(np.asarray(H), net.hessian("L", wrts[0], vals).array) < 1e-12


# --- drawn networks ------------------------------------------------------------


@st.composite
def networks(draw):
    """A chain of merges, splits, concatenations (with a new param) and tanh on
    a batch, drawn with its sizes, and the steps that compute its value with
    numpy's reshape and concatenate."""
    dims = {"B": draw(st.integers(1, 2))}
    axes = []  # per axis: its size, and its members' sizes where it is a merge
    for a in range(draw(st.integers(1, 3))):
        dims[f"A{a}"] = draw(st.integers(1, 3))
        axes.append((dims[f"A{a}"], None))
    decls = [f"input x[B, {', '.join(f'A{a}' for a in range(len(axes)))}]"]
    lines, steps = [], []
    for n in range(draw(st.integers(1, 4))):
        ops = ["tanh", "concat"] + (["merge"] if len(axes) > 1 else [])
        ops += ["split"] if any(m for _, m in axes) else []
        op = draw(st.sampled_from(ops))
        idx = [f"i{k}" for k in range(len(axes))]
        src = f"t{n - 1}" if n else "x"
        if op == "tanh":
            lines.append(f"t{n} = tanh({src})")
            steps.append(("tanh",))
        elif op == "merge":
            k = draw(st.integers(0, len(axes) - 2))
            members = [*(axes[k][1] or [axes[k][0]]), *(axes[k + 1][1] or [axes[k + 1][0]])]
            axes[k : k + 2] = [(int(np.prod(members)), members)]
            left = [*idx[:k], f"({idx[k]} {idx[k + 1]})", *idx[k + 2 :]]
            lines.append(f"t{n}[s, {', '.join(left)}] = {src}[s, {', '.join(idx)}]")
            steps.append(("merge", k))
        elif op == "split":
            k = draw(st.sampled_from([j for j, (_, m) in enumerate(axes) if m]))
            members = axes[k][1]
            names = [f"m{j}" for j in range(len(members))]
            axes[k : k + 1] = [(m, None) for m in members]
            right = [*idx[:k], f"({' '.join(names)})", *idx[k + 1 :]]
            left = [*idx[:k], *names, *idx[k + 1 :]]
            lines.append(f"t{n}[s, {', '.join(left)}] = {src}[s, {', '.join(right)}]")
            steps.append(("split", k, members))
        else:  # a param of its own size along axis k, the others' sizes as dims of its own
            k = draw(st.integers(0, len(axes) - 1))
            extra = draw(st.integers(1, 3))
            own = []
            for j, (size, _) in enumerate(axes):
                dims[f"P{n}_{j}"] = extra if j == k else size
                own.append(f"P{n}_{j}")
            decls.append(f"param P{n}[B, {', '.join(own)}]")
            axes[k] = (axes[k][0] + extra, None)
            body = ", ".join(idx)
            lines.append(f"t{n}[s, {body}] = concat({src}[s, {body}], P{n}[s, {body}], {idx[k]})")
            steps.append(("concat", k, f"P{n}"))
    spec = "\n".join(
        [f"dim {d} = {size}" for d, size in dims.items()]
        + decls
        + lines
        + [f"L = sum(sin(t{len(lines) - 1}))"]
    )
    return spec, steps


def numpy_forward(vals, steps):
    t = vals["x"]
    for step in steps:
        if step[0] == "tanh":
            t = np.tanh(t)
        elif step[0] == "merge":
            k = step[1] + 1
            t = t.reshape(*t.shape[:k], t.shape[k] * t.shape[k + 1], *t.shape[k + 2 :])
        elif step[0] == "split":
            k = step[1] + 1
            t = t.reshape(*t.shape[:k], *step[2], *t.shape[k + 1 :])
        else:
            t = np.concatenate([t, vals[step[2]]], axis=step[1] + 1)
    return np.sum(np.sin(t))


@given(networks(), st.integers(0, 2**16))
def test_drawn_networks_agree_with_numpy_the_reshape_method_and_differences(drawn, seed):
    spec, steps = drawn
    net = tc.parse(spec)
    vals = net.random_values(seed=seed)
    assert abs(net.evaluate(vals)["L"] - numpy_forward(vals, steps)) < 1e-10
    for w in [*net.params, "x"]:
        g = net.grad("L", w, vals)[w]
        assert max_relative_error(g, tc.reshape_method(net, "L", w, vals)) < 1e-10, (spec, w)
        assert max_relative_error(g, finite_differences(net, "L", w, vals)) < 1e-6, (spec, w)


@given(networks(), st.integers(0, 2**16))
def test_drawn_networks_second_order(drawn, seed):
    spec, _ = drawn
    net = tc.parse(spec)
    vals = net.random_values(seed=seed)
    w = net.params[-1] if net.params else "x"
    H = net.hessian("L", w, vals).array
    assert max_relative_error(H, tc.reshape_hessian(net, "L", w, vals)) < 1e-9, spec


# --- errors ------------------------------------------------------------------

SPLIT = "dim B = 2\ndim D = 30\ndim h = 4\ndim w = 8\ninput y[B, D]\n"


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            SPLIT + "x[s, h, w] = y[s, (h w)]\n",
            6,
            19,
            r"the group \(h w\) does not fit its axis: axis 1 of y has D=30, but h·w = 4·8 = 32",
        ),
        (
            SPLIT + "x[s, h, v] = y[s, (h v)]\n",
            6,
            19,
            r"the index 'v' of the group \(h v\) has no size \(unknown dim 'v'\)",
        ),
        (
            SPLIT + "x[s, h, w] = y[s, (h w w)]\n",
            6,
            24,
            r"the index 'w' appears twice in y\[s, \(h w w\)\]; in a tensor with a group each",
        ),
        ("dim H = 3\ninput x[H]\ny[(h h)] = x[h]\n", 3, 6, r"index 'h' appears twice on the left"),
        (
            "dim B = 2\ndim H = 3\ndim W = 4\ninput x[B, H, W]\ny[s, (h w), (w h)] = x[s, h, w]\n",
            5,
            14,
            r"index 'w' appears twice on the left side \(an index is grouped once\)",
        ),
        (
            "dim B = 2\ndim H = 3\ninput x[B, H]\ny[(h w)] = x[s, (s h)]\n",
            4,
            18,
            r"the index 's' appears twice in x\[s, \(s h\)\]",
        ),
        (
            "dim H = 3\ninput x[H]\nparam V[(H Z)]\n",
            3,
            12,
            r"unknown dim 'Z' in the declaration of V",
        ),
        ("dim H = 3\ninput x[H]\ny[(h)] = x[h]\n", 3, 3, r"the group \(h\) has 1 name"),
        (
            "dim H = 3\ninput x[H]\ny[(h + k)] = x[h]\n",
            3,
            3,
            r"\(h \+ k\) adds dims, which only a declaration does",
        ),
        (
            "dim H = 3\ndim W = 4\ndim K = 6\ninput a[H]\ninput b[W]\nparam u[K]\n"
            "c[k] = concat(a[k], b[k], k) * u[k]\n",
            7,
            8,
            r"concat along 'k': axis 0 of u has K=6, but the parts have H \+ W = 3 \+ 4 = 7",
        ),
        (
            "dim H = 3\ndim W = 4\ninput a[H]\ninput b[W]\nc[k] = concat(a[k], b[j], k)\n",
            5,
            21,
            r"each part of concat is indexed by 'k', the index it is joined along, but b\[j\]",
        ),
        (
            "dim H = 3\ninput a[H]\nc[k] = concat(a[k], k)\n",
            3,
            8,
            r"concat takes two or more tensors, then the index they are joined along",
        ),
        (
            "dim H = 3\ninput a[H]\nc = concat(a, a, H)\n",
            3,
            5,
            r"concat joins tensors along a named index: write the statement in index form",
        ),
    ],
)
def test_errors_name_the_place(text, line, column, message):
    with pytest.raises(tc.SpecError, match=message) as info:
        tc.parse(text).random_values()
    assert (info.value.line, info.value.column) == (line, column)
    assert "@" not in str(info.value) and "#" not in str(info.value)  # no internal names


def test_sizes_of_a_product_dim_from_the_values():
    net = tc.parse("dim B = 2\ndim H = 4\ndim K\ninput Q[B, (H K)]\nq[s, h, k] = Q[s, (h k)]\n")
    assert net.sizes({"Q": np.zeros((2, 12))})["K"] == 3  # inferred: 12 / 4
    with pytest.raises(tc.ShapeError, match=r"dim \(H K\) has size 13 in the values, which no"):
        net.sizes({"Q": np.zeros((2, 13))})
    fixed = tc.parse("dim B = 2\ndim H = 4\ndim K = 3\ninput Q[B, (H K)]\n")
    with pytest.raises(tc.ShapeError, match=r"size 13 in the values, but H·K = 4·3 = 12"):
        fixed.sizes({"Q": np.zeros((2, 13))})
