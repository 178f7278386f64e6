"""Every statement form parses and evaluates to what numpy computes directly."""

import re

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.functions import registry
from tensorchain.language.parser import parse_program
from tensorchain.language.syntax import show

HEADER = """
dim n = 3
dim m = 4
dim r = 2
input x[n]
input y[n]
input u[m]
param W[m, n]
param A[n, n]
param T[r, n, m]
param s
"""

# (statement, numpy reference from the values v)
FORMS = [
    ("t[i] = W[i, j] * x[j]", lambda v: v["W"] @ v["x"]),
    ("t[i] = W[i, j] * x[j] + u[i]", lambda v: v["W"] @ v["x"] + v["u"]),
    ("t[i, j] = W[i, j] - u[i] * x[j]", lambda v: v["W"] - np.outer(v["u"], v["x"])),
    ("t[j, i] = W[i, j]", lambda v: v["W"].T),
    ("t[i, j] = W[i, j] - W[i, k] * A[j, k]", lambda v: v["W"] - v["W"] @ v["A"].T),
    ("t = x[i] * A[i, j] * x[j]", lambda v: v["x"] @ v["A"] @ v["x"]),
    ("t[i] = A[i, i]", lambda v: np.diag(v["A"])),
    ("t = A[i, i]", lambda v: np.trace(v["A"])),
    ("t[k] = T[k, i, j] * x[i] * u[j]", lambda v: np.einsum("kij,i,j->k", v["T"], v["x"], v["u"])),
    ("t[i, j] = x[i] * y[j]", lambda v: np.outer(v["x"], v["y"])),
    ("t[i] = x[i] * s", lambda v: v["x"] * v["s"]),
    ("t[i, j] = W[i, j] + x[j]", lambda v: v["W"] + v["x"][None, :]),
    ("t = 0.5 * (x[i] - y[i]) ^ 2", lambda v: 0.5 * np.sum((v["x"] - v["y"]) ** 2)),
    ("t = 0.5 * (x[i] - y[i]) ** 2", lambda v: 0.5 * np.sum((v["x"] - v["y"]) ** 2)),
    ("t[i] = -x[i] + 2", lambda v: -v["x"] + 2),
    ("t[i] = x[i] / (1 + y[i] ^ 2)", lambda v: v["x"] / (1 + v["y"] ** 2)),
    ("t[i] = sum(x[j]) * y[i]", lambda v: v["x"].sum() * v["y"]),
    ("t = x + y", lambda v: v["x"] + v["y"]),
    ("t = x + x", lambda v: 2 * v["x"]),
    ("t[i] = x[i] - W[j, i] + x[i]", lambda v: 2 * v["x"] - v["W"].sum(0)),
    ("t = x - 2 * y", lambda v: v["x"] - 2 * v["y"]),
    ("t = x * y / 4", lambda v: v["x"] * v["y"] / 4),
    ("t = 1 - y", lambda v: 1 - v["y"]),
    ("t = -x", lambda v: -v["x"]),
    ("t = -x ^ 2", lambda v: -(v["x"] ** 2)),
    ("t = x ^ 3", lambda v: v["x"] ** 3),
    ("t = x / y", lambda v: v["x"] / v["y"]),
    ("t = s * W", lambda v: v["s"] * v["W"]),
    ("t = W * W - 1", lambda v: v["W"] * v["W"] - 1),
    ("t = sum(W)", lambda v: v["W"].sum()),
    ("t = mean(W * W)", lambda v: (v["W"] ** 2).mean()),
    ("t = sum(x * y) + mean(u)", lambda v: v["x"] @ v["y"] + v["u"].mean()),
    ("t = x[i] * y[i] + u[i]", lambda v: v["x"] @ v["y"] + v["u"].sum()),
    ("t[i] = sum(x[i]) * u[i]", lambda v: v["x"].sum() * v["u"]),
    ("t = sigmoid(x)", lambda v: 1 / (1 + np.exp(-v["x"]))),
    ("t = tanh(x)", lambda v: np.tanh(v["x"])),
    ("t = sigmoid(s) * tanh(s)", lambda v: np.tanh(v["s"]) / (1 + np.exp(-v["s"]))),
    ("t = x * sigmoid(0) + tanh(1)", lambda v: 0.5 * v["x"] + np.tanh(1)),
    ("t = relu(x)", lambda v: np.maximum(v["x"], 0)),
    ("t = exp(x)", lambda v: np.exp(v["x"])),
    ("t = log(exp(x) + 1)", lambda v: np.log(np.exp(v["x"]) + 1)),
    ("t = softplus(x)", lambda v: np.log1p(np.exp(v["x"]))),
    ("t = sin(x) + cos(y)", lambda v: np.sin(v["x"]) + np.cos(v["y"])),
    ("t = sqrt(square(x) + 1)", lambda v: np.sqrt(v["x"] ** 2 + 1)),
    ("t = abs(x)", lambda v: np.abs(v["x"])),
    ("t = 2 ^ 3 * x", lambda v: 8 * v["x"]),
    ("t = exp(0) + x", lambda v: 1 + v["x"]),
    ("t[i] = (W[i, j] * x[j] + W[i, j] * y[j])", lambda v: v["W"] @ (v["x"] + v["y"])),
    ("t[i] = sum(W[i, j] * x[j], j) + u[i]", lambda v: v["W"] @ v["x"] + v["u"]),
    (
        "t[i] = W[i, j] * (x[j]\n   + y[j])  # a statement may continue inside brackets",
        lambda v: v["W"] @ (v["x"] + v["y"]),
    ),
]


@pytest.mark.parametrize(("statement", "reference"), FORMS, ids=[f[0] for f in FORMS])
def test_statement_evaluates_like_numpy(statement, reference):
    net = tc.parse(HEADER + statement)
    vals = net.random_values(seed=1)
    got = net.evaluate(vals)["t"]
    expected = reference(vals)
    assert got.shape == np.shape(expected)
    np.testing.assert_allclose(got, expected, rtol=1e-13, atol=1e-13)


@pytest.mark.parametrize(("statement", "reference"), FORMS, ids=[f[0] for f in FORMS])
def test_statement_derivatives_match_reshape_method(statement, reference):
    net = tc.parse(HEADER + statement)
    vals = net.random_values(seed=2)
    for w in ("x", "W", "s", "T"):
        J = net.jacobian("t", wrt=w, values=vals).array
        ref = tc.reshape_method(net, "t", w, vals)
        np.testing.assert_allclose(J, ref, rtol=1e-12, atol=1e-12)


def test_sigmoid_is_stable_at_extremes():
    net = tc.parse("dim n = 6\ninput x[n]\nt = sigmoid(x)")
    x = np.array([-np.inf, -1000.0, -30.0, 30.0, 1000.0, np.inf])
    got = net.evaluate({"x": x})["t"]
    expected = [0.0, 0.0, 1 / (1 + np.exp(30.0)), 1 / (1 + np.exp(-30.0)), 1.0, 1.0]
    # the limits exactly: σ(-inf) = 0 (it was 1.2e-308, e^-x being capped)
    np.testing.assert_allclose(got, expected, rtol=1e-14, atol=0)
    assert got[0] == got[1] == 0.0 and got[-1] == 1.0
    slope = np.diag(net.jacobian("t", wrt="x", values={"x": x}).array)
    expected = np.exp(-30.0) / (1 + np.exp(-30.0)) ** 2
    # σ' = y (1 − y) from the forward output, as frameworks do: accurate in
    # absolute terms, not relative ones where y rounds to 1.
    np.testing.assert_allclose(slope, [0.0, 0.0, expected, expected, 0.0, 0.0], rtol=0, atol=1e-16)
    assert slope[0] == 0.0  # exactly: it was 1.2e-308


INFINITE = np.array([-np.inf, -1000.0, -1.0, 0.0, 1.0, 1000.0, np.inf])


#: Each elementwise function callable by name, as JAX spells it (a new one goes here too).
JAX_NAMES = {
    "sigmoid": "jax.nn.sigmoid",
    "softplus": "jax.nn.softplus",
    "relu": "jax.nn.relu",
    "silu": "jax.nn.silu",
    "gelu": "jax.nn.gelu",
    "logsigmoid": "jax.nn.log_sigmoid",
    "erf": "jax.scipy.special.erf",
    "step": "heaviside",
}


def _jax_function(jax, func):
    spelled = JAX_NAMES.get(func, f"jax.numpy.{func}")
    if spelled == "heaviside":
        return lambda x: jax.numpy.heaviside(x, 0.0)
    if spelled == "jax.nn.gelu":
        return lambda x: jax.nn.gelu(x, approximate=False)
    target = jax
    for part in spelled.split(".")[1:]:
        target = getattr(target, part, None)
    assert target is not None, f"{func}: give its JAX counterpart in JAX_NAMES ({spelled} is none)"
    return target


@pytest.mark.parametrize("func", [f for f in registry.CALLABLE if f in registry.ELEMENTWISE])
def test_functions_at_infinity_agree_with_jax(func):
    """Values and gradients at ±inf follow the limits, as JAX computes them
    (NaN where JAX has NaN: sin and cos have no limit), for every elementwise
    function callable by name."""
    jax = pytest.importorskip("jax")
    jax.config.update("jax_enable_x64", True)
    import jax.scipy.special

    jnp = jax.numpy
    f = _jax_function(jax, func)
    net = tc.parse(f"dim n\ninput x[n]\nt = {func}(x)\nL = sum(t)")
    # 0 is left out where it is a kink: abs and relu take 0 there (docs/language.md), JAX 1 and 0
    x = INFINITE[INFINITE != 0] if func in ("abs", "sign", "step") else INFINITE
    with np.errstate(all="ignore"):  # exp(1000) = inf is the value asked for
        value = net.evaluate({"x": x}, check_finite=False)["t"]
        grad = net.grad("L", "x", {"x": x}, check_finite=False)["x"]
    np.testing.assert_allclose(value, np.asarray(f(x)), rtol=1e-14)
    np.testing.assert_allclose(grad, np.asarray(jax.grad(lambda x: jnp.sum(f(x)))(x)), rtol=1e-14)


def test_comments_blank_lines_and_dims_without_default():
    net = tc.parse("# a comment\n\ndim B   # size from values\ninput x[B]\n\nf = sum(x)  # end\n")
    assert net.dims == {"B": None}
    assert net.evaluate({"x": np.arange(5.0)})["f"] == 10.0
    assert net.shape("x", B=7) == (7,)


def test_values_override_dim_defaults():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(n=6, m=2)
    assert net.evaluate(vals)["z"].shape == (6,)
    assert net.sizes(vals) == {"m": 2, "n": 6}


def test_parse_and_load_agree(tmp_path):
    path = tmp_path / "article.tc"
    path.write_text(tc.ARTICLE)
    assert str(tc.load(path)) == str(tc.parse(tc.ARTICLE))
    assert tc.load(path).outputs == ["z", "a", "C"]


def test_network_lists_its_tensors():
    net = tc.parse(tc.ARTICLE)
    assert net.inputs == ["x", "y"]
    assert net.params == ["W", "b"]
    assert net.tensors["z"].dims == ("n",)
    assert net.tensors["C"].dims == ()
    assert "outputs=['z', 'a', 'C']" in repr(net)


def test_summing_inside_a_function_warns_with_the_two_statement_form():
    with pytest.warns(tc.SpecWarning, match=r"line 12: .*h\[i\] = W\[i, j\] \* x\[j\] then"):
        tc.parse(HEADER.replace("param s", "") + "t[i] = sigmoid(W[i, j] * x[j])")


def test_a_sum_of_squares_does_not_warn():
    tc.parse(HEADER + "t = 0.5 * (x[i] - y[i]) ^ 2")  # warnings are errors here


NAMES = st.sampled_from(["x", "y", "W", "zz"])
NUMBERS = st.integers(0, 9).map(float)


def _exprs():
    leaf = st.one_of(NAMES, NUMBERS.map(lambda v: f"{v:g}"))
    return st.recursive(
        leaf,
        lambda inner: st.one_of(
            st.tuples(inner, st.sampled_from(["+", "-", "*", "/", "^"]), inner).map(
                lambda t: f"({t[0]} {t[1]} {t[2]})"
            ),
            inner.map(lambda e: f"-{e}"),
            inner.map(lambda e: f"tanh({e})"),
        ),
        max_leaves=8,
    )


@given(_exprs())
def test_printing_an_expression_parses_back_to_the_same_tree(text):
    first = parse_program(f"t = {text}").statements[0].expr
    again = parse_program(f"t = {show(first)}").statements[0].expr
    assert show(again) == show(first)
    assert _strip(again) == _strip(first)


def _strip(e):
    """The tree without positions."""
    fields = getattr(e, "__dataclass_fields__", None)
    if fields is None:
        return tuple(_strip(x) for x in e) if isinstance(e, tuple) else e
    return (type(e).__name__, *(_strip(getattr(e, f)) for f in fields if f != "pos"))


def test_a_term_broadcast_over_axes_of_size_one_keeps_the_shape():
    # Regression: b[o] was added by plain numpy broadcasting when s and p had size 1,
    # making y (1, 2, 2) instead of (1, 2, 1).
    net = tc.parse(
        "dim S\ndim O\ndim P\ninput x[S, O, P]\ninput b[O]\ny[s, o, p] = x[s, o, p] + b[o]"
    )
    vals = net.random_values(S=1, O=2, P=1)
    np.testing.assert_array_equal(net.evaluate(vals)["y"], vals["x"] + vals["b"][None, :, None])


PAREN_CASES = [
    "z[i] = (W[i, j] * x[j] + u[i])",
    "z[i] = 1 * (W[i, j] * x[j] + u[i])",
    "z = (x[i] + 1)",
    "z = 1 * (x[i] + 1)",
    "z[i] = 2 * (W[i, j] * x[j] - u[i]) * u[i]",
]


@pytest.mark.parametrize("statement", PAREN_CASES)
def test_an_index_summed_over_a_sum_that_not_every_term_carries_is_refused(statement):
    """(e) means 1 * (e): its summed index is never broadcast over a term that
    lacks it in silence (once (e) was e's top-level terms, 1 * (e) not)."""
    text = f"dim n = 3\ndim m = 2\ninput x[m]\ninput u[n]\nparam W[n, m]\n{statement}"
    with pytest.raises(tc.SpecError, match=r"is summed over .*; but .* does not carry"):
        tc.parse(text)


@given(st.sampled_from(["W[i, j] * x[j] * u[i]", "W[i, j] * x[j] + W[i, j] * x[j]", "u[i] - 2"]))
def test_parentheses_and_one_times_lower_alike(inner):
    """`(e)` and `1 * (e)` lower to the same operations and values."""
    head = "dim n = 3\ndim m = 2\ninput x[m]\ninput u[n]\nparam W[n, m]\n"
    a = tc.parse(head + f"z[i] = ({inner})")
    b = tc.parse(head + f"z[i] = 1 * ({inner})")
    vals = a.random_values(seed=3)
    np.testing.assert_array_equal(a.evaluate(vals)["z"], b.evaluate(vals)["z"])
    assert a.statements[-1].root.labels == b.statements[-1].root.labels


def test_the_refusal_spells_both_meanings_and_both_parse():
    """The two spellings the message offers are accepted and mean Wx + b and
    Wx + m·b, computed here with numpy."""
    head = "dim n = 3\ndim m = 2\ninput x[m]\ninput u[n]\nparam W[n, m]\n"
    with pytest.raises(tc.SpecError) as err:
        tc.parse(head + "z[i] = (u[i] - W[i, j] * x[j])")
    first = str(err.value).splitlines()[0]
    inside, outside = re.search(
        r"Say which is meant: (.*) \(the sum over j inside\) or (.*) \(added once per j\)", first
    ).groups()
    net_in, net_out = tc.parse(head + f"z[i] = {inside}"), tc.parse(head + f"z[i] = {outside}")
    v = net_in.random_values(seed=4)
    np.testing.assert_allclose(net_in.evaluate(v)["z"], v["u"] - v["W"] @ v["x"])
    np.testing.assert_allclose(net_out.evaluate(v)["z"], 2 * v["u"] - v["W"] @ v["x"])


def test_a_function_along_a_dim_of_a_scalar_says_what_is_wrong():
    """Found by the fuzzing test: an IndexError instead of this message."""
    with pytest.raises(
        tc.ShapeError,
        match=r"softmax along 'n', but h has the dims \[\]; give it a tensor with that axis",
    ):
        tc.parse("dim n = 2\ninput x\nh = sigmoid(x)\np = softmax(h, n)\n")


@pytest.mark.parametrize(
    ("line", "reason"),
    [
        ("param W[B + 1]", "a declaration names one dim per axis"),
        ("y[s + 1] = x[s]", "the left side names each axis with an index"),
        ("z[s] = x[ids[s + 1]]", "an index tensor's positions are read whole"),
    ],
)
def test_an_offset_where_none_can_be_says_why_there(line, reason):
    """An offset index in a declaration, on the left side and inside an index
    tensor's pick: each refusal gives the reason of its own place."""
    spec = f"dim B = 3\ndim V = 4\ninput x[V]\ninput ids[B] index V\n{line}\n"
    with pytest.raises(tc.SpecError, match=re.escape(reason)) as caught:
        tc.parse(spec)
    assert caught.value.line == 5
