"""LabeledTensor against dense arrays built with explicit identity matrices."""

import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.calculus.labeled import LabeledTensor
from tensorchain.calculus.terms import Factor, Term


def dense(term: Term, indices, sizes):
    """The term as a dense array: every delta an explicit np.eye."""
    letters = {}
    for lab in [*indices, *(lab for f in term.factors for lab in f.labels), *sum(term.deltas, ())]:
        letters.setdefault(lab, string.ascii_letters[len(letters)])
    ops, subs = [], []
    for f in term.factors:
        ops.append(f.array)
        subs.append("".join(letters[lab] for lab in f.labels))
    for a, b in term.deltas:
        ops.append(np.eye(sizes[a]))
        subs.append(letters[a] + letters[b])
    out = "".join(letters[i] for i in indices)
    if not ops:
        return term.coeff * np.ones([sizes[i] for i in indices])
    full = np.einsum(f"{','.join(subs)}->{out}", *ops) if out or ops else 1.0
    # labels of the output that appear in no operand broadcast as ones
    missing = [i for i in indices if letters[i] not in "".join(subs)]
    if missing:
        raise AssertionError("draw only terms whose axes all appear")
    return term.coeff * full


@st.composite
def terms(draw):
    n_axes = draw(st.integers(1, 4))
    axes = [f"a{k}" for k in range(n_axes)]
    size = {a: draw(st.integers(1, 3)) for a in axes}
    summed = [f"s{k}" for k in range(draw(st.integers(0, 2)))]
    size.update({s: draw(st.integers(1, 3)) for s in summed})
    deltas = []
    pool = [*axes, *summed]
    for _ in range(draw(st.integers(0, 3)) if len(pool) > 1 else 0):
        a, b = draw(st.lists(st.sampled_from(pool), min_size=2, max_size=2, unique=True))
        if size[a] == size[b]:
            deltas.append((a, b))
    # every label appears in some factor or delta
    uncovered = [lab for lab in pool if all(lab not in d for d in deltas)]
    factors = []
    rng = np.random.default_rng(draw(st.integers(0, 1000)))
    for k in range(draw(st.integers(0, 2))):
        labels = tuple(draw(st.lists(st.sampled_from(pool), min_size=0, max_size=3)))
        factors.append(Factor(rng.standard_normal([size[lab] for lab in labels]), labels, f"F{k}"))
    if uncovered:
        labels = tuple(uncovered)
        factors.append(Factor(rng.standard_normal([size[lab] for lab in labels]), labels, "G"))
    coeff = draw(st.sampled_from([1.0, -2.0, 0.5]))
    return axes, size, Term(coeff, tuple(factors), tuple(deltas))


@given(terms())
def test_array_equals_the_dense_product_with_identity_matrices(drawn):
    axes, sizes, term = drawn
    t = LabeledTensor(axes, sizes, [term])
    np.testing.assert_allclose(t.array, dense(term, axes, sizes), rtol=1e-12, atol=1e-12)
    # delta elimination leaves deltas only between axes
    for a, b in (d for tt in t.terms for d in tt.deltas):
        assert a in axes and b in axes


@given(terms(), terms())
def test_sum_of_two_tensors(first, second):
    axes, sizes, term = first
    axes2, sizes2, term2 = second
    if [sizes[a] for a in axes] != [sizes2[a] for a in axes2]:
        return
    rename = {lab: f"{lab}_" for lab in {*sizes2}}
    t1 = LabeledTensor(axes, sizes, [term])
    t2 = LabeledTensor(
        [rename[a] for a in axes2],
        {rename[k]: v for k, v in sizes2.items()},
        [term2.rename(rename)],
    )
    total = t1 + t2
    np.testing.assert_allclose(total.array, t1.array + t2.array, rtol=1e-12, atol=1e-12)
    np.testing.assert_allclose(total.contracted().array, total.array, rtol=1e-12, atol=1e-12)


@given(terms(), terms(), st.integers(0, 2))
def test_chain_is_tensordot(first, second, k):
    axes, sizes, term = first
    axes2, sizes2, term2 = second
    k = min(k, len(axes), len(axes2))
    if [sizes[a] for a in axes[len(axes) - k :]] != [sizes2[a] for a in axes2[:k]]:
        return
    t1 = LabeledTensor(axes, sizes, [term])
    t2 = LabeledTensor(axes2, sizes2, [term2])
    expected = np.tensordot(t1.array, t2.array, axes=k)
    chained = t1.chain(t2, k)
    assert chained.shape == expected.shape
    np.testing.assert_allclose(chained.array, expected, rtol=1e-11, atol=1e-11)
    np.testing.assert_allclose(chained.contracted().array, expected, rtol=1e-11, atol=1e-11)


def test_a_trace_multiplies_by_the_size():
    t = LabeledTensor.identity(["i", "j"], {"i": 5, "j": 5})
    traced = t.chain(LabeledTensor.identity(["p", "q"], {"p": 5, "q": 5}), 2)
    assert traced.shape == ()
    assert traced.array == 5.0


def test_repr_shows_names_sizes_and_symbolic_deltas():
    sizes = {"i": 3, "k": 3, "m": 2}
    t = LabeledTensor(
        ["i", "k", "m"], sizes, [Term(1.0, (Factor(np.ones(2), ("m",), "x"),), (("i", "k"),))]
    )
    assert repr(t) == "LabeledTensor[i=3, k=3, m=2]; symbolic δ: (i, k)\n  = x[m] · δ(i, k)"
    assert t.indices == ("i", "k", "m")
    assert t.shape == (3, 3, 2)
    assert t.ndim == 3


def test_array_is_the_only_place_a_delta_becomes_dense():
    net = tc.parse(tc.ARTICLE)
    J = net.jacobian("a", wrt="z", values=net.random_values(n=1000, m=2))
    (term,) = J.terms
    assert J.deltas == (("n", "n'"),)
    assert [f.array.shape for f in term.factors] == [(1000,)]
    assert J.array.shape == (1000, 1000)


def test_a_missing_rule_names_the_operation(monkeypatch):
    from tensorchain.calculus import rules
    from tensorchain.language.operations import Map

    monkeypatch.delitem(rules.RULES, Map)
    net = tc.parse(tc.ARTICLE)
    with pytest.raises(
        tc.DerivativeError, match=r"no derivative rule for the operation Map \(\(a - y\)\^2\)"
    ):
        net.grad("C", values=net.random_values())


def test_axis_names_must_be_distinct():
    with pytest.raises(ValueError, match="axis names must be distinct"):
        LabeledTensor(["i", "i"], {"i": 2}, [])


def test_rename_never_captures_a_summed_label():
    """Renaming the axes to a name a summed label already has made the two
    one index (a forward-mode Jacobian of h3 = W3 · h2(W1) came out wrong:
    its summed ``n`` met the new axis ``n``)."""
    sizes = {"a": 2, "n": 3}
    W = np.arange(6.0).reshape(2, 3)
    v = np.array([1.0, 2.0, 3.0])
    t = LabeledTensor(
        ["a"], sizes, [Term(1.0, (Factor(W, ("a", "n"), "W"), Factor(v, ("n",), "v")))]
    )
    renamed = t.rename(["n"])
    assert np.allclose(renamed.array, W @ v)
