"""Compiled programs and the plan cache: same answers, right keys, linear work,
threads."""

import gc
import sys
import threading
import tracemalloc

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from benchmarks.run import mlp_spec
from tensorchain.arrays.cache import LRUCache
from tensorchain.contraction import paths
from tensorchain.language import shift
from tensorchain.runtime import calls
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error


@given(net=networks(), seed=st.integers(0, 2**16))
def test_compiled_equals_uncompiled_and_the_reshape_method(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    wrt = [*network.params, *network.inputs]
    compiled = network.compile_grad(net.of, wrt=wrt)(vals)
    direct = network.derivatives(net.of, wrt, vals)  # evaluated step by step, no trace
    for w in wrt:
        # The same steps, but the direct run copies values the compiled one
        # passes as views (it knows which arrays are new), and BLAS may sum a
        # copy and a transposed view in another order: equal to rounding.
        assert max_relative_error(compiled[w], direct.jacobians[w].array) < 1e-14
        assert max_relative_error(compiled[w], tc.reshape_method(network, net.of, w, vals)) < 1e-12
    np.testing.assert_array_equal(
        network.evaluate(vals)[net.of], network.forward(vals).values[net.of]
    )


def test_compiled_jacobian_keeps_deltas_symbolic():
    net = tc.parse(tc.ARTICLE)
    jac = net.compile_jacobian("a", wrt="W", dims={"n": 300, "m": 2})
    vals = net.random_values(seed=1, n=300, m=2)
    J = jac(vals)
    assert J.deltas == (("n", "n'"),)
    assert all(f.array.size <= 300 * 2 for t in J.terms for f in t.factors)
    np.testing.assert_allclose(J.array, tc.reshape_method(net, "a", "W", vals), atol=1e-14)


def test_the_cache_is_keyed_on_sizes_and_targets():
    net = tc.parse(tc.ARTICLE)
    small, large = net.random_values(n=3, m=2), net.random_values(n=5, m=4)
    for vals in (small, large, small):
        g = net.grad("C", values=vals)
        for w in ("W", "b"):
            assert g[w].shape == vals[w].shape
            assert max_relative_error(g[w], tc.reshape_method(net, "C", w, vals)) < 1e-12
    jz = net.jacobian("a", wrt="z", values=small)
    jb = net.jacobian("a", wrt="b", values=small)
    assert jz.shape == jb.shape == (3, 3)
    np.testing.assert_allclose(jz.array, tc.reshape_method(net, "a", "z", small))
    np.testing.assert_allclose(jb.array, tc.reshape_method(net, "a", "b", small))
    np.testing.assert_allclose(
        net.grad("C", wrt="x", values=small)["x"], tc.reshape_method(net, "C", "x", small)
    )
    keys = {(k[0], k[1], k[2], k[3]) for k in net._cache}
    assert ("grad", "C", ("W", "b"), (("m", 2), ("n", 3))) in keys
    assert ("grad", "C", ("W", "b"), (("m", 4), ("n", 5))) in keys


def test_a_compiled_function_refuses_other_sizes():
    net = tc.parse(tc.ARTICLE)
    grad = net.compile_grad("C", dims={"n": 3, "m": 2})
    with pytest.raises(tc.ShapeError, match=r"x has shape \(4,\) but this was compiled for \(2,\)"):
        grad(net.random_values(n=3, m=4))
    assert "steps" in repr(grad)


def test_compiled_results_do_not_alias_the_inputs():
    net = tc.parse("dim n = 3\ninput x[n]\nparam w[n]\nf = w[i] * x[i]")
    vals = net.random_values()
    g = net.grad("f", wrt="w", values=vals)["w"]
    np.testing.assert_array_equal(g, vals["x"])
    g[:] = 0.0
    assert np.all(vals["x"] != 0.0)


def test_gradient_work_grows_linearly_with_depth():
    # Counted, not timed: array steps of the compiled program and pairwise
    # contractions of the chain rule, for depths 4, 8, 16.
    steps, pairs = [], []
    for depth in (4, 8, 16):
        net = tc.parse(mlp_spec(depth, batch=2, width=3))
        steps.append(len(net.compile_grad("L")))
        result = net.derivatives("L", net.params, net.random_values())
        pairs.append(sum(len(c.info.contraction_list) for c in result.contractions))
    for counts in (steps, pairs):
        per_layer = (counts[1] - counts[0]) / 4
        assert counts[2] - counts[1] == 8 * per_layer  # exactly linear
        assert per_layer <= 12


# Issue 16, item 10: threads sharing one network (and one plan) while the
# cache of compiled programs evicts entries.
BATCHED = """dim B
dim n = 4
dim m = 3
input x[B, m]
param W[n, m]
param b[n]
z[s, i] = W[i, j] * x[s, j] + b[i]
a = tanh(z)
C = sum(a ^ 2)
"""


def run_in_threads(work, count: int = 8) -> list[BaseException]:
    """``work(k)`` in ``count`` threads started together; the exceptions raised."""
    errors: list[BaseException] = []
    barrier = threading.Barrier(count)

    def target(k: int) -> None:
        barrier.wait()
        try:
            work(k)
        except BaseException as err:
            errors.append(err)

    threads = [threading.Thread(target=target, args=(k,)) for k in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return errors


def test_threads_share_a_network_while_its_cache_evicts(monkeypatch):
    monkeypatch.setattr(calls, "CACHE_SIZE", 2)  # evict on almost every call
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        net = tc.parse(BATCHED)
        batches = {B: net.random_values(seed=B, B=B) for B in range(1, 9)}
        reference = tc.parse(BATCHED)
        expected = {B: reference.grad("C", values=v) for B, v in batches.items()}

        def work(k: int) -> None:
            for r in range(40):
                B = 1 + (k + r) % 8
                g = net.grad("C", values=batches[B])
                for w in ("W", "b"):
                    np.testing.assert_array_equal(g[w], expected[B][w])
                J = net.jacobian("a", "W", batches[B])
                assert J.shape == (B, 4, 4, 3)

        errors = run_in_threads(work)
    finally:
        sys.setswitchinterval(interval)
    assert not errors, errors[:3]
    assert len(net._cache) <= 2


def test_threads_call_one_plan_for_the_first_time_together():
    net = tc.parse(BATCHED)
    vals = net.random_values(seed=0, B=5)
    expected = tc.reshape_method(net, "a", "W", vals)
    for _ in range(5):
        plan = net.plan("a", "W", B=5)
        found: list[np.ndarray] = []
        errors = run_in_threads(lambda k, plan=plan, found=found: found.append(plan(vals).array))
        assert not errors, errors[:3]
        for J in found:
            assert max_relative_error(J, expected) < 1e-12


# Issue 16, item 12: every cache is bounded, so a loop over sizes holds a
# bounded amount of memory (each bound made small here, to reach it quickly).
CONV = """dim B
dim T
dim K = 3
dim P
input x[B, T]
param w[K]
shift S[P, K, T] stride 1 padding 1
h[s, p] = w[k] * S[p, k, t] * x[s, t]
L = sum(tanh(h) ^ 2)
"""


def test_a_loop_over_sizes_keeps_every_cache_and_the_memory_bounded(monkeypatch):
    monkeypatch.setattr(calls, "CACHE_SIZE", 4)
    monkeypatch.setattr(paths, "_EXPRESSIONS", LRUCache(32), raising=False)
    monkeypatch.setattr(shift, "_CONSTANTS", LRUCache(8), raising=False)
    monkeypatch.setattr(shift, "_SHIFTS", {})  # none from earlier tests' shift tensors
    mlp, conv = tc.parse(BATCHED), tc.parse(CONV)

    def step(k: int) -> None:  # a new batch size each time, 12 signal lengths in turn
        mlp.grad("C", values=mlp.random_values(seed=k, B=1 + k))
        conv.grad("L", values=conv.random_values(seed=k, B=1 + k, T=3 + k % 12))

    def held() -> int:
        gc.collect()
        return tracemalloc.get_traced_memory()[0]

    tracemalloc.start()
    try:
        for k in range(24):  # every cache full
            step(k)
        before = held()
        for k in range(24, 72):
            step(k)
        grown = held() - before
    finally:
        tracemalloc.stop()
    assert grown < 64 * 1024, f"{grown:,} bytes more after 48 more calls"
    for net in (mlp, conv):
        assert len(net._cache) <= 4 and len(net._checked) <= 4
    assert len(paths._EXPRESSIONS) <= 32
    assert len(shift._SHIFTS) <= 8 + 4  # those the cache keeps, and the programs'
