"""tc.contract on labeled tensors against np.einsum on their dense arrays."""

import string

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_labeled import terms  # the tests folder is on sys.path

import tensorchain as tc
from tensorchain.calculus.labeled import LabeledTensor


@given(terms(), terms(), st.data())
def test_contract_equals_einsum_of_the_dense_arrays(first, second, data):
    (axes1, sizes1, term1), (axes2, sizes2, term2) = first, second
    A = LabeledTensor(axes1, sizes1, [term1])
    B = LabeledTensor(axes2, sizes2, [term2])
    # Name A's axes a0.., then join some of B's axes to A's of equal size.
    names_a = [string.ascii_lowercase[k] for k in range(A.ndim)]
    names_b = []
    for k, size in enumerate(B.shape):
        joinable = [
            n for n, s in zip(names_a, A.shape, strict=True) if s == size and n not in names_b
        ]
        join = joinable and data.draw(st.booleans())
        names_b.append(data.draw(st.sampled_from(joinable)) if join else string.ascii_uppercase[k])
    every = list(dict.fromkeys(names_a + names_b))
    out = data.draw(st.lists(st.sampled_from(every), unique=True, max_size=len(every)))
    spec = f"{' '.join(names_a)}, {' '.join(names_b)} -> {' '.join(out)}"
    got = tc.contract(spec, A, B)
    expected = np.einsum(f"{''.join(names_a)},{''.join(names_b)}->{''.join(out)}", A.array, B.array)
    np.testing.assert_allclose(got.array, expected, rtol=1e-11, atol=1e-11)


def test_per_sample_gradient_norms_of_a_dense_layer_never_form_sample_by_weights():
    net = tc.parse(
        "dim B = 64\ndim n = 32\ndim m = 16\ninput x[B, m]\ninput y[B, n]\nparam W[n, m]\n"
        "z[s, i] = W[i, j] * x[s, j]\nL[s] = 0.5 * (z[s, i] - y[s, i]) ^ 2\n"
    )
    vals = net.random_values(seed=0)
    # The structured per-sample Jacobian: a cotangent times x, no B×n×m array.
    r = net.derivatives("L", ["W"], vals)
    lazy = r.chains["W"]
    log: list = []
    norms = tc.contract("s i j, s i j -> s", lazy, lazy, log=log)
    assert all(c.largest_intermediate < 64 * 32 * 16 for c in log)
    e = net.evaluate(vals)
    per_sample = np.einsum("si,sj->sij", e["z"] - e["y"], e["x"])
    np.testing.assert_allclose(
        norms.array, np.einsum("sij,sij->s", per_sample, per_sample), rtol=1e-12
    )


def test_contract_keeps_deltas_between_output_axes():
    net = tc.parse(tc.ARTICLE)
    J = net.jacobian("a", "z", net.random_values(n=6, m=2))  # σ'(z)[i] δ(i, k)
    JJ = tc.contract("i k, k l -> i l", J, J)
    assert JJ.deltas == (("i", "l"),)
    np.testing.assert_allclose(JJ.array, J.array @ J.array, rtol=1e-14)


@pytest.mark.parametrize(
    ("spec", "shapes", "cls", "message"),
    [
        ("i j, j k", [(2, 3), (3, 2)], tc.SpecError, r"has no '->'"),
        ("i j -> i", [(2, 3), (3, 2)], tc.SpecError, r"names 1 operands but 2 were given"),
        ("i, j -> i", [(2, 3), (3, 2)], tc.ShapeError, r"operand 1 has 2 axes \[a0, a1\] but 1"),
        ("i j, j k -> q", [(2, 3), (3, 2)], tc.SpecError, r"output axis 'q' is not an axis"),
        ("i j, j k -> i", [(2, 3), (2, 2)], tc.ShapeError, r"axis 'j' is 3 in operand 1 but 2"),
    ],
)
def test_contract_errors(spec, shapes, cls, message):
    with pytest.raises(cls, match=message):
        tc.contract(spec, *[np.ones(s) for s in shapes])


MLP2 = tc.parse(
    "dim B\ndim d\ndim h\ndim c\ninput x[B, d]\ninput y[B, c]\n"
    "param W1[h, d]\nparam b1[h]\nparam W2[c, h]\n"
    "z1[s, i] = W1[i, j] * x[s, j] + b1[i]\na1 = tanh(z1)\nz2[s, k] = W2[k, i] * a1[s, i]\n"
    "L[s] = 0.5 * (z2[s, k] - y[s, k]) ^ 2\n"
)

sizes = st.fixed_dictionaries({d: st.integers(1, 6) for d in ("B", "d", "h", "c")})


def per_sample_reference(net, vals, wrt):
    """Each sample's gradient by the reshape method (dense), by parameter."""
    return {w: tc.reshape_method(net, "L", w, vals) for w in wrt}


@given(dims=sizes, seed=st.integers(0, 2**16), wrt=st.sampled_from([["W1", "b1", "W2"], ["W1"]]))
def test_per_sample_norms_and_clipped_sums_equal_the_dense_computation(dims, seed, wrt):
    vals = MLP2.random_values(seed=seed, **dims)
    dense = per_sample_reference(MLP2, vals, wrt)
    flat = np.concatenate([dense[w].reshape(dims["B"], -1) for w in wrt], axis=1)
    norms = np.linalg.norm(flat, axis=1)
    np.testing.assert_allclose(MLP2.per_sample_grad_norms("L", wrt, vals), norms, rtol=1e-12)
    max_norm = float(np.median(norms))
    clip = np.where(norms > 0, np.minimum(1.0, max_norm / np.maximum(norms, 1e-300)), 1.0)
    got = MLP2.clipped_grad("L", wrt, vals, max_norm=max_norm)
    for w in wrt:
        expected = np.tensordot(clip, dense[w], axes=1)
        np.testing.assert_allclose(got[w], expected, rtol=1e-12, atol=1e-14)


def test_per_sample_jacobian_stays_an_outer_product():
    vals = MLP2.random_values(B=7, d=5, h=6, c=3)
    J = MLP2.jacobian("L", "W1", vals)  # dL[s]/dW1[i, j] = g[s, i] · x[s, j]
    assert J.shape == (7, 6, 5)
    assert J.stored_entries() == 7 * 6 + 7 * 5
    np.testing.assert_allclose(J.array, tc.reshape_method(MLP2, "L", "W1", vals), rtol=1e-12)


def test_compiled_per_sample_products_never_form_sample_by_weights():
    dims = {"B": 64, "d": 16, "h": 32, "c": 3}
    vals = MLP2.random_values(**dims)
    MLP2.per_sample_grad_norms("L", ["W1", "W2"], vals)
    MLP2.clipped_grad("L", ["W1", "W2"], vals, max_norm=0.1)
    sizes = MLP2.sizes(vals)
    for kind in ("norms", "clipped"):
        key = (kind, "L", ("W1", "W2"), tuple(sorted(sizes.items())), "<f8")
        program = MLP2._cache[key].program
        biggest = max(max(map(np.prod, program.shapes), default=0), max(program.extras, default=0))
        assert biggest < 64 * 32 * 3  # B·h·c: no B×h×d nor B×c×h
        assert biggest >= 32 * 16  # the clipped sum itself is h×d


def test_per_sample_products_need_a_per_sample_loss():
    with pytest.raises(tc.DerivativeError, match=r"per-sample products need a per-sample loss"):
        tc.parse(tc.ARTICLE).per_sample_grad_norms("C", ["W"], tc.parse(tc.ARTICLE).random_values())


OUT = tc.parse(
    "dim B\ndim d\ndim h\ndim c\ninput x[B, d]\ninput y[B, c]\n"
    "param W1[h, d]\nparam b1[h]\nparam W2[c, h]\nparam b2[c]\n"
    "z1[s, i] = W1[i, j] * x[s, j] + b1[i]\na1 = tanh(z1)\n"
    "out[s, k] = W2[k, i] * a1[s, i] + b2[k]\n"
    "L = 0.5 * sum((out - y) ^ 2) + 0.1 * sum(out ^ 4)\n"
)


@given(dims=sizes, seed=st.integers(0, 2**16))
def test_ntk_equals_the_dense_jacobians_contracted(dims, seed):
    vals = OUT.random_values(seed=seed, **dims)
    B, c = dims["B"], dims["c"]
    wrt = OUT.params
    expected = 0.0
    for w in wrt:
        J = tc.reshape_method(OUT, "out", w, vals).reshape(B, c, -1)
        expected = expected + np.einsum("skp,tlp->sktl", J, J)
    theta = OUT.ntk("out", wrt, vals)
    assert theta.shape == (B, c, B, c)
    np.testing.assert_allclose(theta.array, expected, rtol=1e-12, atol=1e-12)


@given(dims=sizes, seed=st.integers(0, 2**16))
def test_gauss_newton_product_equals_jt_h_j_v(dims, seed):
    vals = OUT.random_values(seed=seed, **dims)
    rng = np.random.default_rng(seed)
    n = dims["B"] * dims["c"]
    for w in ("W1", "b2"):
        v = rng.standard_normal(vals[w].shape)
        J = tc.reshape_method(OUT, "out", w, vals).reshape(n, -1)
        H = tc.reshape_hessian(OUT, "L", "out", vals).reshape(n, n)
        expected = (J.T @ H @ J @ v.ravel()).reshape(v.shape)
        np.testing.assert_allclose(
            OUT.gnvp("L", "out", w, v, vals), expected, rtol=1e-10, atol=1e-12
        )
