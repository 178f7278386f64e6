"""The issue-17 models written in the language (examples/transformer_block.tc,
examples/cnn.tc) at small sizes: every param's gradient against the same model
written by hand in jax.numpy (benchmarks/models.py, which never calls
tensorchain) and against central differences; and the planning and runtime
faults the models exposed, each with a test that fails on the code before
its fix."""

import math

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from benchmarks import models
from tensorchain.contraction.batched import batched_matmul
from tensorchain.functions.special import gelu_cdf, normal_cdf
from tensorchain.testing import max_relative_error

SMALL_TRANSFORMER = {"B": 2, "T": 5, "D": 8, "H": 2, "K": 4, "F": 16, "V": 11, "c": 3}
SMALL_CNN = {"B": 2, "C": 2, "N": 6, "C1": 2, "C2": 3, "c": 3}


def transformer(seed: int = 1, **sizes):
    net = models.load("transformer_block.tc", **{**SMALL_TRANSFORMER, **sizes})
    return net, models.transformer_values(net, seed=seed)


def cnn(seed: int = 1, **sizes):
    net = models.load("cnn.tc", **{**SMALL_CNN, **sizes})
    return net, models.cnn_values(net, seed=seed)


def sources(program) -> list[str]:
    """Each step of a compiled program as numpy source, its arguments ``r<register>``."""
    return [
        code([f"r{a}" for a in step.args])
        for step, code in zip(program.steps, program.codes, strict=True)
        if code is not None
    ]


def jax_gradients(loss, values, params, data):
    pytest.importorskip("jax")
    return models.jax_grad(loss, values, params, data)()


@pytest.mark.parametrize("seed", [1, 2])
def test_transformer_gradient_agrees_with_jax(seed):
    pytest.importorskip("jax")
    net, v = transformer(seed)
    ours = net.grad("L", values=v)
    assert sorted(ours) == sorted(models.TRANSFORMER_PARAMS)
    loss = models.jax_transformer(SMALL_TRANSFORMER["H"])
    theirs = jax_gradients(loss, v, models.TRANSFORMER_PARAMS, ("ids", "labels"))
    for w in models.TRANSFORMER_PARAMS:
        assert max_relative_error(ours[w], np.asarray(theirs[w])) < 1e-10, w
    compiled = net.compile_grad("L")(v)
    for w in models.TRANSFORMER_PARAMS:
        np.testing.assert_array_equal(compiled[w], ours[w])


def test_transformer_loss_agrees_with_jax():
    pytest.importorskip("jax")
    import jax.numpy as jnp

    net, v = transformer()
    loss = models.jax_transformer(SMALL_TRANSFORMER["H"])
    p = {k: jnp.asarray(v[k]) for k in models.TRANSFORMER_PARAMS}
    expected = float(loss(p, jnp.asarray(v["ids"]), jnp.asarray(v["labels"])))
    assert net.evaluate(v)["L"] == pytest.approx(expected, rel=1e-13)


def test_transformer_numpy_by_hand_agrees():
    """The benchmark's hand-written numpy backprop (a competitor in its table)."""
    net, v = transformer()
    ours = net.grad("L", values=v)
    by_hand = models.numpy_transformer(v, SMALL_TRANSFORMER["H"])()
    for w in models.TRANSFORMER_PARAMS:
        assert max_relative_error(by_hand[w], ours[w]) < 1e-10, w


def test_transformer_gradient_against_central_differences():
    net, v = transformer()
    report = net.verify("L", values=v, references=["differences"], fd_entries=12)
    assert report.ok, str(report)
    assert {row.derivative for row in report.rows} >= {"∂L/∂E", "∂L/∂Wq", "∂L/∂g1", "∂L/∂W1"}


def test_transformer_heads_are_a_reshape():
    net, v = transformer()
    out = net.evaluate(v)
    B, T, H, K = (SMALL_TRANSFORMER[d] for d in "BTHK")
    np.testing.assert_array_equal(out["q"], out["Q"].reshape(B, T, H, K))
    np.testing.assert_array_equal(out["O"], out["o"].reshape(B, T, H * K))
    J = net.jacobian("q", "Q", v)  # δ(B, B') δ(T, T') symbolic: no B·T block stored
    assert J.stored_entries() <= (H * K) ** 2
    np.testing.assert_array_equal(J.array, tc.reshape_method(net, "q", "Q", v))


@pytest.mark.parametrize("seed", [1, 2])
def test_cnn_gradient_agrees_with_jax(seed):
    pytest.importorskip("jax")
    net, v = cnn(seed)
    ours = net.grad("L", values=v)
    assert sorted(ours) == sorted(models.CNN_PARAMS)
    theirs = jax_gradients(models.jax_cnn(), v, models.CNN_PARAMS, ("x", "labels"))
    for w in models.CNN_PARAMS:
        assert max_relative_error(ours[w], np.asarray(theirs[w])) < 1e-10, w


def test_cnn_odd_sizes_agree_with_jax():
    """An odd image size: the last row and column are left out of the pooling."""
    pytest.importorskip("jax")
    net, v = cnn(3, N=7, B=3)
    assert net.sizes(v)["Q"] == 3
    ours = net.grad("L", values=v)
    theirs = jax_gradients(models.jax_cnn(), v, models.CNN_PARAMS, ("x", "labels"))
    for w in models.CNN_PARAMS:
        assert max_relative_error(ours[w], np.asarray(theirs[w])) < 1e-10, w


def test_cnn_gradient_against_central_differences():
    net, v = cnn()
    report = net.verify("L", values=v, references=["differences"], fd_entries=12)
    assert report.ok, str(report)


def test_example_sizes_are_the_issues():
    sizes = tc.load(models.EXAMPLES / "transformer_block.tc").sizes()
    assert (sizes["B"], sizes["T"], sizes["D"], sizes["H"]) == (8, 64, 128, 4)
    assert sizes["(H K)"] == sizes["D"]


# --- faults the models exposed -----------------------------------------------------


FACTORS = "dim D = 6\ndim H = 4\ndim K = 8\ninput x[D]\nparam W[D, (H K)]\n"
FACTORS += "y[e] = x[d] * W[d, e]\nq[h, k] = y[(h k)]\nL = sum(tanh(q) ^ 2)\n"


def test_with_sizes_gives_the_factors_of_a_product_dim():
    """H and K show in no value's shape (W's axis is H·K long): values drawn
    at H=2, K=3 are refused by the spec's defaults, and taken by the network
    with those sizes."""
    net = tc.parse(FACTORS)
    small = net.with_sizes(H=2, K=3)
    v = small.random_values(seed=0)
    assert v["W"].shape == (6, 6) and small.sizes()["(H K)"] == 6
    with pytest.raises(tc.ShapeError, match=r"dim \(H K\) has size 6 in the values, but H·K"):
        net.grad("L", values=v)
    g = small.grad("L", values=v)["W"]
    assert max_relative_error(g, tc.reshape_method(small, "L", "W", v)) < 1e-12
    assert net.sizes()["H"] == 4  # the network itself is unchanged


@pytest.mark.parametrize(
    ("sizes", "message"),
    [({"Z": 3}, r"unknown dim 'Z'; this network's dims are D, H, K"), ({"H": 0}, r"dim H must")],
)
def test_with_sizes_refuses_what_is_not_a_size(sizes, message):
    with pytest.raises(tc.ShapeError, match=message):
        tc.parse(FACTORS).with_sizes(sizes)


def test_command_line_dims_give_the_factors_of_a_product_dim(tmp_path, capsys):
    """``tensorchain derive --dims H=2,K=3`` used to draw values at those sizes
    and then refuse them against the spec's defaults."""
    from tensorchain.cli import main

    spec = tmp_path / "heads.tc"
    spec.write_text(FACTORS, encoding="utf-8")
    assert main(["derive", str(spec), "--dims", "H=2,K=3"]) == 0
    out = capsys.readouterr().out
    assert "(H K)=6" in out and "max |tensorchain − reshape method|" in out


def test_verify_dims_give_the_factors_of_a_product_dim():
    report = tc.parse(FACTORS).verify("L", "W", dims={"H": 2, "K": 3})
    assert report.ok and "H=2, K=3" in str(report)


def test_attention_gradient_makes_no_array_larger_than_its_scores():
    """Where softmax's two terms meet, A·(v[u, k] − o[t, k]) shares A and the
    incoming gradient; taking them out added v and o over [t, u, k] — an array
    T·K times larger than the scores (33 MB at the issue's sizes), built on
    every call. The terms are now contracted one by one."""
    net, _ = transformer()
    B, T, H, K = (SMALL_TRANSFORMER[d] for d in "BTHK")
    program = net.compile_grad("L").program
    largest = max(math.prod(s) for s in program.shapes)
    V, D, F = (SMALL_TRANSFORMER[d] for d in "VDF")
    assert largest <= max(B * H * T * T, B * T * F, V * D, D * F)
    assert largest < B * T * H * K * T  # the size of the array it made


def _sum_of_terms(indices, sizes, terms):
    from tensorchain.calculus.labeled import LabeledTensor
    from tensorchain.calculus.terms import Factor, Term

    return LabeledTensor(
        indices,
        sizes,
        [Term(c, tuple(Factor(a, labs, name) for a, labs, name in fs)) for c, fs in terms],
        canonicalize=False,
    )


def test_factoring_takes_out_shared_factors_when_the_sum_is_small():
    """X·u + X·v is still X·(u + v): one product with X, not two."""
    rng = np.random.default_rng(0)
    X, u, v = rng.standard_normal((6, 5)), rng.standard_normal(5), rng.standard_normal(5)
    J = _sum_of_terms(
        ("i",),
        {"i": 6, "j": 5},
        [
            (1.0, [(X, ("i", "j"), "X"), (u, ("j",), "u")]),
            (-2.0, [(X, ("i", "j"), "X"), (v, ("j",), "v")]),
        ],
    )
    F = J.factored()
    assert len(F.terms) == 1 and any(f.array is X for f in F.terms[0].factors)
    np.testing.assert_allclose(F.array, X @ (u - 2 * v), rtol=1e-13)


def test_factoring_keeps_terms_whose_sum_would_broadcast():
    """A·g·V[u, k] − A·g·O[t, k] (softmax's two terms in attention's gradient):
    V and O added over [t, u, k] would be larger than anything in the sum."""
    rng = np.random.default_rng(0)
    T, K = 6, 4
    A, g = rng.standard_normal((T, T)), rng.standard_normal((T, K))
    V, out = rng.standard_normal((T, K)), rng.standard_normal((T, K))
    shared = [(A, ("t", "u"), "A"), (g, ("t", "k"), "g")]
    J = _sum_of_terms(
        ("t", "u"),
        {"t": T, "u": T, "k": K},
        [(1.0, [*shared, (V, ("u", "k"), "V")]), (-1.0, [*shared, (out, ("t", "k"), "O")])],
    )
    F = J.factored()
    assert len(F.terms) == 2
    assert max(f.array.size for t in F.terms for f in t.factors) <= T * T
    expected = A * (g @ V.T - (g * out).sum(axis=1)[:, None])
    np.testing.assert_allclose(F.contracted().array, expected, rtol=1e-12)


def test_convolution_input_gradient_never_reads_the_shift_tensor():
    """The gradient by a convolution's input, times the ReLU mask of the layer
    below, used to contract the shift tensors as dense P×K×T matrices (the mask
    also carries the input's position, so the scatter-add did not apply); the
    mask now multiplies the scatter-add's result."""
    from tensorchain.language.shift import _SHIFTS

    net, _ = cnn()
    program = net.compile_grad("L").program
    shifts = [c for c in program.constants.values() if id(c) in _SHIFTS]
    assert not shifts
    codes = sources(program)
    assert any(code.startswith("unwindows(") for code in codes)


@pytest.mark.parametrize(("stride", "padding"), [(1, 0), (2, 1), (3, 2)])
def test_input_gradient_through_a_function_below_a_convolution(stride, padding):
    """The scatter-add with a factor on the input's positions (tanh' here):
    the reshape method agrees, and no program step reads the shift tensor."""
    from tensorchain.language.shift import _SHIFTS

    net = tc.parse(
        f"""
dim B = 2
dim C = 2
dim T = 9
dim K = 3
dim O = 2
dim P
input u[B, C, T]
param w[O, C, K]
shift S[P, K, T] stride {stride} padding {padding}
x = tanh(u)
y[s, o, p] = w[o, c, k] * S[p, k, t] * x[s, c, t]
L = sum(sin(y))
"""
    )
    v = net.random_values(seed=stride)
    g = net.grad("L", "u", v)["u"]
    assert max_relative_error(g, tc.reshape_method(net, "L", "u", v)) < 1e-12
    program = net.compile_grad("L", "u").program
    assert not [c for c in program.constants.values() if id(c) in _SHIFTS]


def test_convolution_windows_are_gathered_once():
    """The kernel's gradient reads the windows (im2col) the forward pass made."""
    net, _ = cnn()
    program = net.compile_grad("L").program
    gathers = [code for code in sources(program) if code.startswith("windows(")]
    assert gathers and len(set(gathers)) == len(gathers)


def test_gelu_derivative_reuses_its_forward_value():
    net = tc.parse("dim n = 5\nparam z[n]\na = gelu(z)\nL = sum(a * a)")
    program = net.compile_grad("L").program
    assert sum("normal_cdf(" in code for code in sources(program)) == 1
    z = np.array([-3.0, -0.5, 0.0, 0.7, 2.0])
    g = net.grad("L", values={"z": z})["z"]
    cdf = np.array([0.5 * math.erfc(-t / math.sqrt(2)) for t in z])
    dgelu = cdf + z * np.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    np.testing.assert_allclose(g, 2 * z * cdf * dgelu, rtol=1e-14)


def test_gelu_cdf_is_phi_everywhere():
    x = np.concatenate(
        [
            np.linspace(-40, 40, 4001),
            [0.0, -0.0, 1e-310, -1e-310, 5e-324, np.inf, -np.inf, -38.5, -37.0, 1e-8],
        ]
    )
    with np.errstate(invalid="ignore"):  # gelu(-inf) = -inf · 0: NaN
        y = x * normal_cdf(x)
    got = gelu_cdf(x, y)
    # Φ itself, evaluated: within an ulp or two, and exactly where y / x is not used
    np.testing.assert_allclose(got, normal_cdf(x), rtol=1e-15, atol=0)
    # and against the C library's erfc, to the error that rounding −x/√2 brings
    # (relative x² · eps, the slope of log Φ times the argument's rounding)
    near = np.abs(x) <= 8
    expected = np.array([0.5 * math.erfc(-t / math.sqrt(2)) for t in x[near]])
    assert np.all(np.abs(got[near] / expected - 1) <= 2e-15 * (1 + x[near] ** 2))
    assert np.isnan(gelu_cdf(np.array([np.nan]), np.array([np.nan]))).all()
    np.testing.assert_array_equal(gelu_cdf(np.float64(0.0), np.float64(0.0)), 0.5)
    x32 = np.array([-2.0, 0.0, 1.0], dtype=np.float32)
    got32 = gelu_cdf(x32, x32 * normal_cdf(x32))
    np.testing.assert_allclose(got32, normal_cdf(x32.astype(float)), rtol=1e-6)


@st.composite
def batched_pairs(draw):
    """Two operands with batch, summed and free indices in drawn orders."""
    letters = iter("abcdefgh")
    groups = {
        kind: [next(letters) for _ in range(draw(st.integers(lo, 2)))]
        for kind, lo in (("batch", 1), ("summed", 1), ("left", 0), ("right", 0))
    }
    size = {c: draw(st.integers(1, 4)) for g in groups.values() for c in g}
    a = draw(st.permutations(groups["batch"] + groups["summed"] + groups["left"]))
    b = draw(st.permutations(groups["batch"] + groups["summed"] + groups["right"]))
    out = draw(st.permutations(groups["batch"] + groups["left"] + groups["right"]))
    return "".join(a), "".join(b), "".join(out), size


@given(batched_pairs(), st.integers(0, 2**32 - 1))
def test_batched_matmul_is_einsum(pair, seed):
    a, b, out, size = pair
    rng = np.random.default_rng(seed)
    x = rng.standard_normal([size[c] for c in a])
    y = rng.standard_normal([size[c] for c in b])
    run = batched_matmul([a, b], out, size)
    assert run is not None
    expected = np.einsum(f"{a},{b}->{out}", x, y)
    np.testing.assert_allclose(run(x, y), expected, rtol=1e-12, atol=1e-12)
    namespace = {"np": np, "x": x, "y": y}
    np.testing.assert_allclose(eval(run.source("x", "y"), namespace), expected, atol=1e-12)


@pytest.mark.parametrize(
    ("terms", "out"),
    [
        (["ij", "jk"], "ik"),  # no batch index: a plain matrix product
        (["bij", "bij"], "bij"),  # nothing summed: an elementwise product
        (["bii", "bij"], "bj"),  # a diagonal
        (["bijz", "bjk"], "bik"),  # z summed over one operand alone
    ],
)
def test_batched_matmul_leaves_other_steps_alone(terms, out):
    size = dict.fromkeys("bijkz", 2)
    assert batched_matmul(terms, out, size) is None


def test_attention_products_run_as_stacked_matrix_products():
    net, _ = transformer()
    codes = sources(net.compile_grad("L").program)
    assert not any("np.einsum" in code for code in codes)
    assert sum("np.matmul" in code for code in codes) >= 6  # forward 2, backward 4


@st.composite
def reductions(draw):
    """An array (with ties and, sometimes, NaN) and the axes to reduce."""
    shape = draw(st.lists(st.integers(1, 4), min_size=1, max_size=5))
    axes = tuple(sorted(draw(st.sets(st.integers(0, len(shape) - 1), min_size=1))))
    rng = np.random.default_rng(draw(st.integers(0, 2**32 - 1)))
    x = rng.integers(-2, 3, shape).astype(float)  # small integers: many ties
    if draw(st.booleans()):
        x.flat[draw(st.integers(0, x.size - 1))] = np.nan
    return x, axes


@given(reductions())
def test_reductions_over_a_few_entries_are_numpys(case):
    """max, min and the tie count along short axes (a pooling window) as
    slices combined pairwise: the same values as numpy's reductions."""
    from tensorchain.functions.along import along_few, extreme_share, max_along, min_along

    x, axes = case
    np.testing.assert_array_equal(max_along(x, axes), np.max(x, axis=axes))
    np.testing.assert_array_equal(min_along(x, axes), np.min(x, axis=axes))
    np.testing.assert_array_equal(along_few(x, axes, np.add, np.sum), np.sum(x, axis=axes))
    y = np.max(x, axis=axes)
    hit = x == np.expand_dims(y, axes)
    with np.errstate(invalid="ignore"):  # a slice with NaN has no maximum to share
        expected = hit / np.sum(hit, axis=axes, keepdims=True)
        np.testing.assert_array_equal(extreme_share(x, y, axes), expected)


def test_a_zero_derivative_is_in_the_values_library():
    """The chain rule run on JAX values (not compiled) gave a numpy zero for a
    param with no path to the output (found by tests/test_backends.py's drawn
    networks): it is now JAX's, as every other result."""
    jnp = pytest.importorskip("jax.numpy")
    net = tc.parse("dim n = 2\ninput x[n]\nparam g\nparam W[n, n]\nh = g * x\nL = sum(W ^ 2)")
    v = {k: jnp.asarray(a) for k, a in net.random_values(seed=0).items()}
    J = net.derivatives("L", ["g", "W"], net.forward(v)).jacobians
    assert type(J["g"].array).__module__.startswith("jax")
    assert not np.asarray(J["g"].array).any()
    assert type(J["W"].array).__module__.startswith("jax")
