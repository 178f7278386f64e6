"""Functions along named indices (softmax, log_softmax, logsumexp, max, min,
sum and mean over some indices) and the loss shorthands: values against numpy
written here, Jacobians against the reshape method and central differences,
Hessians against differences of the gradient, and the plan of a classifier."""

import numpy as np
import pytest
from hypothesis import assume, given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

LETTERS = "ijk"
DIMS = "abc"


def reference(func, z, axes):
    """Each function by its definition (no max shift: the test values are small)."""
    if func in ("sum", "mean"):
        return getattr(np, func)(z, axis=axes)
    if func in ("max", "min"):
        return getattr(np, func)(z, axis=axes)
    total = np.sum(np.exp(z), axis=axes, keepdims=True)
    if func == "softmax":
        return np.exp(z) / total
    if func == "log_softmax":
        return z - np.log(total)
    return np.squeeze(np.log(total), axis=axes)  # logsumexp


FUNCS = ["softmax", "log_softmax", "logsumexp", "max", "min", "sum", "mean"]


@st.composite
def along_cases(draw):
    rank = draw(st.integers(1, 3))
    sizes = [draw(st.integers(1, 4)) for _ in range(rank)]
    func = draw(st.sampled_from(FUNCS))
    axes = draw(st.lists(st.integers(0, rank - 1), min_size=1, max_size=rank, unique=True))
    index_form = draw(st.booleans())
    return func, sizes, sorted(axes), index_form


def spec_for(func, sizes, axes, index_form):
    rank = len(sizes)
    lines = [f"dim {DIMS[k]} = {sizes[k]}" for k in range(rank)]
    lines.append(f"input z[{', '.join(DIMS[:rank])}]")
    reduces = func not in ("softmax", "log_softmax")
    if index_form:
        idx = ", ".join(LETTERS[:rank])
        kept = [LETTERS[k] for k in range(rank) if not (reduces and k in axes)]
        left = f"[{', '.join(kept)}]" if kept else ""
        named = ", ".join(LETTERS[k] for k in axes)
        lines.append(f"y{left} = {func}(z[{idx}], {named})")
    else:
        lines.append(f"y = {func}(z, {', '.join(DIMS[k] for k in axes)})")
    return "\n".join(lines)


@given(along_cases(), st.integers(0, 2**16))
def test_functions_along_indices_match_numpy_reshape_and_differences(case, seed):
    func, sizes, axes, index_form = case
    net = tc.parse(spec_for(func, sizes, axes, index_form))
    vals = net.random_values(seed=seed)
    z = vals["z"]
    if func in ("max", "min"):  # away from ties, where the derivative jumps
        flat = np.sort(z.ravel())
        assume(len(flat) < 2 or np.min(np.diff(flat)) > 1e-3)
    expected = reference(func, z, tuple(axes))
    np.testing.assert_allclose(net.evaluate(vals)["y"], expected, rtol=1e-12, atol=1e-14)
    J = net.jacobian("y", "z", vals)
    assert max_relative_error(J.array, tc.reshape_method(net, "y", "z", vals)) < 1e-12
    assert max_relative_error(J.array, finite_differences(net, "y", "z", vals)) < 1e-7


def test_softmax_jacobian_is_two_structured_terms():
    net = tc.parse("dim B = 5\ndim c = 7\ninput z[B, c]\np[s, k] = softmax(z[s, k], k)")
    J = net.jacobian("p", "z", net.random_values())
    # δ(s, s') [p δ(k, k') − p p']: 5·7 numbers per term, never a 7×7 block per sample.
    assert J.deltas == (("B", "B'"),)
    assert max(f.array.size for t in J.terms for f in t.factors) == 5 * 7


def test_max_splits_the_derivative_between_ties():
    net = tc.parse("dim n = 4\ninput z[n]\nm = max(z, n)")
    vals = {"z": np.array([1.0, 3.0, 3.0, 2.0])}
    np.testing.assert_array_equal(net.grad("m", "z", vals)["z"], [0.0, 0.5, 0.5, 0.0])


CLASSIFIER = tc.parse(
    "dim B\ndim d\ndim h\ndim c\ninput x[B, d]\ninput y[B, c]\n"
    "param W1[h, d]\nparam b1[h]\nparam W2[c, h]\n"
    "z1[s, i] = W1[i, j] * x[s, j] + b1[i]\na1 = relu(z1)\n"
    "z2[s, k] = W2[k, i] * a1[s, i]\n"
    "C = cross_entropy(z2, y, c)\n"
)


@given(st.fixed_dictionaries({d: st.integers(1, 5) for d in "Bdhc"}), st.integers(0, 2**16))
def test_classifier_gradients_and_hessian(dims, seed):
    vals = CLASSIFIER.random_values(seed=seed, **dims)
    vals["y"] = np.abs(vals["y"]) / np.abs(vals["y"]).sum(axis=1, keepdims=True)
    assume(np.all(np.abs(vals["x"] @ vals["W1"].T + vals["b1"]) > 1e-4))  # away from relu's kink
    for w in ("W1", "W2"):
        g = CLASSIFIER.grad("C", w, vals)[w]
        assert max_relative_error(g, tc.reshape_method(CLASSIFIER, "C", w, vals)) < 1e-12
        assert max_relative_error(g, finite_differences(CLASSIFIER, "C", w, vals)) < 1e-7
    H = CLASSIFIER.hessian("C", "W2", vals).array
    fd = np.zeros_like(H)
    eps = 1e-5
    for idx in np.ndindex(*vals["W2"].shape):
        plus, minus = dict(vals), dict(vals)
        plus["W2"], minus["W2"] = vals["W2"].copy(), vals["W2"].copy()
        plus["W2"][idx] += eps
        minus["W2"][idx] -= eps
        diff = CLASSIFIER.grad("C", "W2", plus)["W2"] - CLASSIFIER.grad("C", "W2", minus)["W2"]
        fd[(..., *idx)] = diff / (2 * eps)
    assert max_relative_error(H, fd) < 1e-6


def test_the_losses_expand_to_their_definitions():
    net = tc.parse(
        "dim B = 3\ndim c = 4\ninput z[B, c]\ninput y[B, c]\n"
        "L1 = mse(z, y)\nL2 = bce(z, y)\nL3 = cross_entropy(z, y, c)\n"
    )
    vals = net.random_values(seed=1)
    z, y = vals["z"], vals["y"]
    e = net.evaluate(vals)
    np.testing.assert_allclose(e["L1"], np.mean((z - y) ** 2), rtol=1e-13)
    np.testing.assert_allclose(e["L2"], np.mean(np.log1p(np.exp(z)) - y * z), rtol=1e-13)
    log_p = z - np.log(np.sum(np.exp(z), axis=1, keepdims=True))
    np.testing.assert_allclose(e["L3"], np.mean(np.sum(-y * log_p, axis=1)), rtol=1e-13)
    texts = [s.text for s in net.statements]
    assert texts == [
        "L1 = mean((z - y)^2)",
        "L2 = mean(softplus(z) - y * z)",
        "L3 = mean(sum(-y * log_softmax(z, c), c))",
    ]


def test_a_classifier_gradient_forms_no_class_by_class_block():
    dims = {"B": 256, "d": 8, "h": 16, "c": 1000}
    grad = CLASSIFIER.compile_grad("C", ["W1", "W2"], dims=dims)
    program = grad.program
    biggest = max(max(map(np.prod, program.shapes)), max(program.extras, default=0))
    assert biggest < 1000 * 1000  # no c×c block, for any sample
    vals = CLASSIFIER.random_values(seed=0, **dims)
    g = grad(vals)["W2"]
    z1 = np.maximum(vals["x"] @ vals["W1"].T + vals["b1"], 0)
    z2 = z1 @ vals["W2"].T
    p = np.exp(z2 - z2.max(1, keepdims=True))
    p /= p.sum(1, keepdims=True)
    # d/dz2 of mean_s Σ_k −y log softmax = (p Σ_k y − y) / B
    dz2 = (p * vals["y"].sum(1, keepdims=True) - vals["y"]) / 256
    np.testing.assert_allclose(g, dz2.T @ z1, rtol=1e-10, atol=1e-14)


@pytest.mark.parametrize(
    ("line", "message"),
    [
        (
            "p[s, k] = softmax(z[s, k], q)",
            r"softmax along 'q', but z\[s, k\] has the indices \[s, k\]",
        ),
        ("p = softmax(z, q)", r"softmax along 'q', but z has the dims \[B, c\]; name one of those"),
        ("p = softmax(z)", r"softmax runs along named indices: write softmax\(z\[s, k\], k\)"),
        ("p = softmax(z, 2)", r"2 is not a name"),
        ("p = softmax(z, c, c)", r"an index is named twice"),
        ("p = mse(z)", r"mse takes 2 arguments \(a, b\), 1 given in mse\(z\)"),
    ],
)
def test_wrong_use_names_what_was_written(line, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.parse(f"dim B = 2\ndim c = 3\ninput z[B, c]\n{line}")


def test_a_dim_used_twice_needs_index_form():
    with pytest.raises(tc.ShapeError, match=r"z has 2 axes of dim 'n'; write the statement in"):
        tc.parse("dim n = 2\ninput z[n, n]\np = softmax(z, n)")


def test_generated_code_of_a_classifier_runs_alone():
    dims = {"B": 4, "d": 3, "h": 5, "c": 6}
    vals = CLASSIFIER.random_values(seed=2, **dims)
    d = CLASSIFIER.derive("C", "W1", **dims)
    namespace: dict = {}
    exec(compile(d.to_python(), "<generated>", "exec"), namespace)  # code tensorchain wrote
    got = namespace["grad_C_W1"](**vals)
    np.testing.assert_allclose(got, CLASSIFIER.grad("C", "W1", vals)["W1"], rtol=1e-12)
    assert "import tensorchain" not in d.to_python()


@pytest.mark.parametrize("one_statement", [True, False])
def test_nested_sums_of_terms_do_not_multiply_out(one_statement):
    depth = 12
    if one_statement:
        expr = "z[s, k]"
        for _ in range(depth):
            expr = f"softmax({expr}, k)"
        lines = [f"p{depth}[s, k] = {expr}"]
    else:
        lines = ["p0 = z"] + [f"p{d + 1}[s, k] = softmax(p{d}[s, k], k)" for d in range(depth)]
    net = tc.parse("dim B = 3\ndim c = 4\ninput z[B, c]\n" + "\n".join(lines))
    vals = net.random_values(seed=5)
    J = net.jacobian(f"p{depth}", "z", vals)
    # 2^12 terms if multiplied out; added as they arise, one per delta structure.
    assert len(J.terms) <= 2
    assert len(net.compile_jacobian(f"p{depth}", "z")) < 40 * depth
    assert max_relative_error(J.array, tc.reshape_method(net, f"p{depth}", "z", vals)) < 1e-12


@pytest.mark.parametrize(
    ("z", "lse", "softmax", "log_softmax", "grad"),
    [
        # all masked: logsumexp -inf (as JAX), softmax 0/0 has no limit
        ([-np.inf, -np.inf], -np.inf, [np.nan, np.nan], [np.nan, np.nan], [np.nan, np.nan]),
        # one +inf entry: the limits (JAX gives NaN for all but logsumexp)
        ([np.inf, 0.0], np.inf, [1.0, 0.0], [0.0, -np.inf], [1.0, 0.0]),
        # several +inf entries: no limit
        ([np.inf, np.inf], np.inf, [np.nan, np.nan], [np.nan, np.nan], [np.nan, np.nan]),
        # a mask: what every framework gives
        ([0.0, -np.inf], 0.0, [1.0, 0.0], [0.0, -np.inf], [1.0, 0.0]),
    ],
)
def test_functions_along_an_index_follow_their_limits_at_infinity(
    z, lse, softmax, log_softmax, grad
):
    net = tc.parse(
        "dim n = 2\ninput z[n]\np = softmax(z, n)\nq = log_softmax(z, n)\nl = logsumexp(z[i], i)"
    )
    vals = {"z": np.array(z)}
    with np.errstate(all="ignore"):
        out = net.evaluate(vals, check_finite=False)
        g = net.grad("l", "z", vals, check_finite=False)["z"]  # softmax, from logsumexp's value
    np.testing.assert_array_equal(out["l"], lse)
    np.testing.assert_array_equal(out["p"], softmax)
    np.testing.assert_array_equal(out["q"], log_softmax)
    np.testing.assert_array_equal(g, grad)
    for library in ("dask",):  # the array-API twins give the same
        pytest.importorskip("array_api_compat")
        da = pytest.importorskip(f"{library}.array")
        with np.errstate(all="ignore"):
            lazy = net.evaluate({"z": da.from_array(np.array(z), chunks=1)}, check_finite=False)
            for name, expected in (("l", lse), ("p", softmax), ("q", log_softmax)):
                np.testing.assert_array_equal(np.asarray(lazy[name].compute()), expected)


def test_generated_code_follows_the_same_limits():
    from tensorchain.presentation.derivation import module_source

    net = tc.parse("dim n = 2\ninput z[n]\nl = logsumexp(z[i], i) + sum(sigmoid(z[j]))")
    namespace: dict = {}
    exec(
        compile(module_source([net.derive("l", "z")], names=["g"]), "<generated>", "exec"),
        namespace,
    )
    z = np.array([np.inf, -np.inf])
    with np.errstate(all="ignore"):
        np.testing.assert_array_equal(namespace["g"](z), [1.0, 0.0])  # one-hot + σ'(±inf) = 0
        np.testing.assert_array_equal(
            net.grad("l", "z", {"z": z}, check_finite=False)["z"], [1.0, 0.0]
        )
