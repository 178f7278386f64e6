"""Derivatives of any order (``net.derivative``) against the independent
reference (dense jets), central differences of the next-lower derivative, JAX
when installed, and closed forms; and the derivative graphs they are built on."""

import ast
import importlib.util
import itertools
import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.calculus.differentiate import derivative_graph, split
from tensorchain.calculus.vjp import DERIVATIVES
from tensorchain.functions.registry import ELEMENTWISE
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error


def fd_of_derivative(net, of, wrt, values, eps=1e-5):
    """The last derivative of ``wrt`` by central differences of the one before."""
    base = {k: np.array(v, dtype=float) for k, v in values.items()}
    *head, last = wrt
    point = base[last]
    first = net.derivative(of, head, base).array
    out = np.zeros(first.shape + point.shape)
    for idx in np.ndindex(*point.shape):
        plus, minus = dict(base), dict(base)
        plus[last], minus[last] = point.copy(), point.copy()
        plus[last][idx] += eps
        minus[last][idx] -= eps
        diff = net.derivative(of, head, plus).array - net.derivative(of, head, minus).array
        out[(..., *idx)] = diff / (2 * eps)
    return out


@given(net=networks(max_layers=3, max_size=2), seed=st.integers(0, 2**16), data=st.data())
def test_third_derivatives_match_the_reference_and_differences(net, seed, data):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    targets = [*network.params, *network.inputs]
    wrt = tuple(data.draw(st.sampled_from(targets)) for _ in range(3))
    D = network.derivative(net.of, wrt, vals)
    assert D.shape == sum((network.shape(w) for w in wrt), ())
    ref = tc.reference_derivative(network, net.of, wrt, vals)
    assert max_relative_error(D.array, ref) < 1e-9
    assert max_relative_error(D.array, fd_of_derivative(network, net.of, wrt, vals)) < 1e-4
    if len(set(wrt)) == 1:  # symmetric under every permutation of its three groups
        k = len(network.shape(wrt[0]))
        for perm in itertools.permutations(range(3)):
            axes = [a for g in perm for a in range(g * k, (g + 1) * k)]
            np.testing.assert_allclose(D.array, D.array.transpose(axes), atol=1e-9)


@given(net=networks(max_layers=2, max_size=2), seed=st.integers(0, 2**16))
def test_third_derivative_of_a_tensor_output(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    of = [o for o in network.outputs if network.info(o).dims][-1]
    w = [*network.params, *network.inputs][0]
    D = network.derivative(of, (w, w, w), vals)
    ref = tc.reference_derivative(network, of, (w, w, w), vals)
    assert max_relative_error(D.array, ref) < 1e-9


@pytest.mark.skipif(importlib.util.find_spec("jax") is None, reason="jax not installed")
@given(net=networks(max_layers=3, max_size=2), seed=st.integers(0, 2**16))
def test_third_derivatives_match_jax(net, seed):
    """jax.jacfwd(jax.jacfwd(jax.jacrev(f))) of tensorchain's forward pass on JAX arrays."""
    import jax

    jax.config.update("jax_enable_x64", True)
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    w = [*network.params, *network.inputs][0]

    on_jax = {k: jax.numpy.asarray(v) for k, v in vals.items()}

    def f(x):
        return network.evaluate({**on_jax, w: x}, check_finite=False)[net.of]

    D = np.asarray(jax.jacfwd(jax.jacfwd(jax.jacrev(f)))(jax.numpy.asarray(vals[w])))
    assert max_relative_error(network.derivative(net.of, (w, w, w), vals).array, D) < 1e-9


def test_the_articles_third_derivative_keeps_its_deltas():
    net = tc.parse(tc.ARTICLE)
    n, m = 30, 4
    vals = net.random_values(seed=0, n=n, m=m)
    T = net.derivative("C", ("W", "W", "W"), vals)
    assert T.indices == ("n", "m", "n'", "m'", "n''", "m''")
    assert set(T.deltas) == {("n", "n'"), ("n", "n''")}
    assert all(len(t.deltas) == 2 for t in T.terms)  # no dense delta in any term
    assert T.stored_entries() <= n * m**3  # never n³·m³
    # closed form: δ(i,k) δ(i,p) x_j x_l x_q [σ'''(z)(a − y) + 3 σ''(z) σ'(z)]
    e = net.evaluate(vals)
    a, y, x = e["a"], e["y"], e["x"]
    s1 = a * (1 - a)
    s2 = s1 * (1 - 2 * a)
    s3 = s1 * (1 - 6 * a + 6 * a**2)
    c = s3 * (a - y) + 3 * s2 * s1
    expected = np.zeros((n, m, n, m, n, m))
    for i in range(n):
        expected[i, :, i, :, i, :] = c[i] * np.einsum("j,l,q->jlq", x, x, x)
    np.testing.assert_allclose(T.array, expected, rtol=1e-10, atol=1e-15)


def test_fourth_derivative_of_a_polynomial():
    net = tc.parse("dim n = 2\nparam x[n]\nf = x[i] ^ 4 + x[i] * x[i] * x[j] * x[j]")
    vals = {"x": np.array([0.5, -1.5])}
    D = net.derivative("f", ("x",) * 4, vals)
    # Σ x⁴ gives 24 on the diagonal; (Σ x²)² gives 8 (δ_ij δ_kl + δ_ik δ_jl + δ_il δ_jk)
    eye = np.eye(2)
    expected = 8 * (
        np.einsum("ij,kl->ijkl", eye, eye)
        + np.einsum("ik,jl->ijkl", eye, eye)
        + np.einsum("il,jk->ijkl", eye, eye)
    )
    for i in range(2):
        expected[i, i, i, i] += 24
    np.testing.assert_allclose(D.array, expected, atol=1e-12)
    assert max_relative_error(D.array, tc.reference_derivative(net, "f", ("x",) * 4, vals)) < 1e-12


def test_derivative_of_order_one_is_the_jacobian_and_order_two_the_hessian():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=5)
    np.testing.assert_array_equal(
        net.derivative("a", "W", vals).array, net.jacobian("a", "W", vals).array
    )
    np.testing.assert_array_equal(
        net.derivative("C", ("W", "b"), vals).array, net.hessian("C", "W", vals, wrt2="b").array
    )


def test_a_third_derivative_contracted_with_vectors_without_forming_it():
    net = tc.parse("dim n = 4\nparam x[n]\nf = sum(tanh(x) ^ 3)")
    vals = net.random_values(seed=3)
    v = np.arange(1.0, 5.0)
    T = net.derivative("f", ("x", "x", "x"), vals)
    contracted = tc.contract("i j k, j, k -> i", T, v, v).array
    np.testing.assert_allclose(contracted, np.einsum("ijk,j,k->i", T.array, v, v), rtol=1e-12)


def test_derivative_errors():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values()
    with pytest.raises(tc.DerivativeError, match=r"derivative needs at least one wrt tensor"):
        net.derivative("C", (), vals)
    with pytest.raises(tc.DerivativeError, match=r"unknown tensor 'V'; this network has"):
        net.derivative("C", ("W", "V"), vals)


def test_derivative_graphs_are_built_once_and_do_not_depend_on_sizes():
    net = tc.parse(tc.ARTICLE)
    g1 = net.derivative_graph("C", ("W",))
    net.hessian("C", "W", net.random_values(n=2, m=2))
    net.hessian("C", "W", net.random_values(n=5, m=3))
    assert net.derivative_graph("C", ("W",)) is g1


def test_every_elementwise_function_has_a_derivative_as_operations():
    assert set(DERIVATIVES) == set(ELEMENTWISE)


def test_split_is_idempotent_and_derivative_names_never_meet_user_names():
    net = tc.parse(tc.ARTICLE)
    once = split(net)
    twice = split(once)
    assert [s.text for s in once.statements] == [s.text for s in twice.statements]
    graph, name = derivative_graph(net, "C", "W")
    new = set(graph.tensors) - set(net.tensors)
    assert name in new
    # every generated name holds a character a spec cannot use in a name
    assert all(any(c in n for c in ".∂⟨") for n in new)


def test_the_reference_shares_no_code_with_what_it_checks():
    """No module of the reference imports the chain rule, the rules, the
    function registry or its array code, labeled tensors, evaluation, compiled
    programs or the transformation."""
    imported = set()  # modules named from the package root
    for path in sorted((Path(tc.__file__).parent / "reference").glob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                imported.add(("reference." if node.level == 1 else "") + (node.module or ""))
    checked = {
        "calculus.chain",
        "calculus.rules",
        "calculus.matrix_rules",
        "calculus.graph",
        "functions.registry",
        "functions.kernels",
        "functions.matrix",
        "calculus.labeled",
        "calculus.forward",
        "runtime.compiled",
        "calculus.differentiate",
        "calculus.vjp",
        "calculus.terms",
        "calculus.factors",
        "calculus.compact",
        "calculus.dense",
        "functions.along",
    }
    assert not imported & checked, imported & checked


def test_a_structured_derivative_stores_less_than_dense_where_it_can():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=0, n=16, m=3)
    T = net.derivative("C", ("W", "W", "W"), vals)
    assert T.stored_entries() < math.prod(T.shape) / 100


@given(net=networks(max_layers=3, max_size=2), seed=st.integers(0, 2**16), data=st.data())
def test_every_statement_of_a_derivative_graph_evaluates_as_the_reference_does(net, seed, data):
    """The graph of a second derivative holds Kronecker deltas, evaluated as
    structured values; each statement agrees with the reference's dense value."""
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    targets = [*network.params, *network.inputs]
    wrt = tuple(data.draw(st.sampled_from(targets)) for _ in range(2))
    graph, _ = network.derivative_graph(net.of, wrt)
    env = network._check_values(vals)
    forward = graph.run_forward(dict(env), network.sizes(env), structured=True)
    for stmt in graph.statements:
        value = forward.values[stmt.target]
        value = value.array if isinstance(value, tc.LabeledTensor) else np.asarray(value)
        reference = tc.reference_derivative(graph, stmt.target, (), vals)
        assert max_relative_error(value, reference) < 1e-12, stmt.text


def test_sizes_are_said_honestly():
    from tensorchain.calculus.labeled import LabeledTensor
    from tensorchain.calculus.terms import Factor, Term
    from tensorchain.presentation.report import sizes_text

    sizes = {"i": 4, "j": 4}
    a, b = np.ones(4), np.ones((4, 4))
    small = LabeledTensor(("i", "j"), sizes, [Term(1.0, (Factor(a, ("i",), "a"),), (("i", "j"),))])
    assert sizes_text(small) == "stores 4 numbers for 16 dense entries (4.0× fewer)"
    same = LabeledTensor(("i", "j"), sizes, [Term(1.0, (Factor(b, ("i", "j"), "b"),))])
    assert "as many as its dense entries" in sizes_text(same)
    more = LabeledTensor(
        ("i", "j"),
        sizes,
        [Term(1.0, (Factor(b, ("i", "j"), "b"),)), Term(1.0, (Factor(a, ("i",), "a"),))],
    )
    assert sizes_text(more) == (
        "stores 20 numbers, more than its 16 dense entries: at these sizes the dense"
        " array (.array) is the smaller form"
    )
    # two terms with one delta structure: added into one array by smallest()
    two = LabeledTensor(
        ("i", "j"),
        sizes,
        [Term(1.0, (Factor(b, ("i", "j"), "b"),)), Term(2.0, (Factor(b, ("i", "j"), "c"),))],
    )
    assert two.stored_entries() == 32 and two.smallest().stored_entries() == 16
    np.testing.assert_array_equal(two.smallest().array, 3 * b)
    assert "0×" not in sizes_text(LabeledTensor(("i", "j"), sizes, []))


def test_derivatives_through_a_zeroth_power_are_zero_not_nan():
    """x ^ 0 once gave 0 · 0⁻¹ = NaN at x = 0 in grad and in derivative."""
    net = tc.parse("dim n = 2\nparam x[n]\nparam y[n]\nL = sum(y * x ^ 0)")
    vals = {"x": np.array([0.0, 2.0]), "y": np.ones(2)}
    np.testing.assert_array_equal(net.grad("L", "x", vals)["x"], [0.0, 0.0])
    np.testing.assert_array_equal(net.derivative("L", ("y", "x"), vals).array, np.zeros((2, 2)))
    np.testing.assert_array_equal(net.derivative("L", ("x", "x"), vals).array, np.zeros((2, 2)))


def test_derivative_arguments_are_checked():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values()
    with pytest.raises(tc.DerivativeError, match=r"wrt is a tensor name or a sequence of them"):
        net.derivative("C", 3, vals)
    with pytest.raises(tc.DerivativeError, match=r"unknown tensor 'Q'"):
        net.derivative_graph("C", ("Q",))
    _, name = net.derivative_graph("C", "W")  # a name, not its letters
    assert name == "∂C/∂W"
    with pytest.raises(tc.ValuesError, match=r"values are missing b"):
        tc.reference_derivative(net, "C", "W", {k: v for k, v in vals.items() if k != "b"})
    with pytest.raises(tc.ValuesError, match=r"'a' in values is not an input or param"):
        tc.reference_derivative(net, "C", "W", {**vals, "a": np.ones(4)})
    with pytest.raises(tc.ValuesError, match=r"the value of x has dtype <U1"):
        tc.reference_derivative(net, "C", "W", {**vals, "x": np.array(["a", "b", "c"])})
    as32 = {k: v.astype(np.float32) for k, v in vals.items()}
    assert tc.reference_derivative(net, "C", ("W", "W"), as32).dtype == np.float32


def test_complex_values_with_max_are_refused():
    net = tc.parse("dim n = 3\nparam x[n]\nm = max(x[j], j)\nf = m ^ 2")
    with pytest.raises(tc.ValuesError, match=r"complex values: max \(line 3\) has no complex"):
        net.hessian("f", "x", {"x": np.ones(3) + 1j})


@given(net=networks(max_layers=4, max_size=3), seed=st.integers(0, 2**16))
def test_forward_accumulation_agrees_with_the_reshape_method(net, seed):
    """The chain rule from wrt towards of (used for a derivative's last
    Jacobian when its result is the wider side) on first-order Jacobians."""
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    forward = network.forward(vals)
    hidden = [o for o in network.outputs if network.info(o).dims][-2:]
    for of in [*hidden, net.of]:
        for w in [*network.params, *network.inputs][:3]:
            for structured in (False, True):
                result = network.derivatives(of, [w], forward, structured=structured)
                fwd = network.derivatives(of, [w], forward, structured, mode="forward")
                ref = tc.reshape_method(network, of, w, vals)
                assert max_relative_error(fwd.jacobians[w].array, ref) < 1e-10
                assert max_relative_error(result.jacobians[w].array, ref) < 1e-10
