"""Dense results block by block: every block of a labeled tensor equals the
same slice of its dense array, and a dask array of blocks computes a result
larger than the memory limit chunk by chunk."""

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from test_labeled import terms  # the tests folder is on sys.path

import tensorchain as tc
from tensorchain.calculus.labeled import LabeledTensor


@given(terms(), terms(), st.data())
def test_every_block_is_the_slice_of_the_dense_array(first, second, data):
    (axes1, sizes1, term1), (axes2, sizes2, term2) = first, second
    A = LabeledTensor(axes1, sizes1, [term1])
    B = LabeledTensor(axes2, sizes2, [term2])
    for t in (A, B):
        ranges = []
        for size in t.shape:
            start = data.draw(st.integers(0, size - 1))
            ranges.append((start, data.draw(st.integers(start + 1, size))))
        index = tuple(slice(a, b) for a, b in ranges)
        np.testing.assert_allclose(t.block(ranges), t.array[index], rtol=1e-12, atol=1e-13)


MLP = tc.parse(
    "dim B = 6\ndim d = 5\ndim h = 4\ndim c = 3\ninput x[B, d]\nparam W1[h, d]\n"
    "param W2[c, h]\nz1[s, i] = W1[i, j] * x[s, j]\na1 = tanh(z1)\n"
    "out[s, k] = W2[k, i] * a1[s, i]\n"
)


def test_a_jacobian_larger_than_the_memory_limit_chunk_by_chunk():
    da = pytest.importorskip("dask.array")
    vals = MLP.random_values(seed=4)
    J = MLP.jacobian("out", "W1", vals)  # (B, c, h, d), deltas on B
    dense_bytes = 8 * int(np.prod(J.shape))
    with pytest.raises(tc.MemoryLimitError):
        J.dense(memory_limit=dense_bytes // 4)
    lazy = J.to_dask(chunks=(2, 2, 2, 2))
    assert lazy.shape == J.shape and lazy.numblocks == (3, 2, 2, 3)
    # Each chunk holds at most 16 numbers; reductions never need the whole array.
    per_sample = lazy.sum(axis=(2, 3)).compute(scheduler="synchronous")
    reference = J.dense(memory_limit=10 * dense_bytes)
    np.testing.assert_allclose(per_sample, reference.sum(axis=(2, 3)), rtol=1e-12)
    np.testing.assert_allclose(lazy.compute(scheduler="threads"), reference, rtol=1e-12)
    assert isinstance(lazy, da.Array)


def test_a_hessian_by_blocks():
    pytest.importorskip("dask.array")
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=1, n=5, m=4)
    H = net.hessian("C", "W", vals)
    np.testing.assert_allclose(
        H.to_dask(chunks=(2, 3, 2, 3)).compute(),
        tc.reshape_hessian(net, "C", "W", vals),
        rtol=1e-12,
    )


def test_values_from_two_array_libraries_are_refused():
    da = pytest.importorskip("dask.array")
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(n=3, m=2)
    vals["x"] = da.from_array(vals["x"])
    with pytest.raises(tc.ValuesError, match=r"values mix array libraries: x is a dask array"):
        net.grad("C", "W", vals)
