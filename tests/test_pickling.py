"""Everything public pickles (dask's distributed scheduler and multiprocessing
ship objects by pickle): caches are dropped and rebuilt, results unchanged."""

import multiprocessing
import pickle

import numpy as np
import pytest
from hypothesis import given

import tensorchain as tc
from tensorchain.strategies import networks

BATCHED = """dim B = 3
dim n = 4
dim m = 3
input x[B, m]
param W[n, m]
param b[n]
z[s, i] = W[i, j] * x[s, j] + b[i]
a = tanh(z)
L[s] = 0.5 * sum(a[s, i] ^ 2, i)
C = sum(L)
"""


def round_trip(obj):
    return pickle.loads(pickle.dumps(obj))


def test_a_network_pickles_after_every_kind_of_call():
    net = tc.parse(BATCHED)
    vals = net.random_values(seed=1)
    expected = {
        "grad": net.grad("C", values=vals)["W"],
        "jacobian": net.jacobian("a", "W", vals).array,
        "hessian": net.hessian("C", "b", vals).array,
        "ntk": net.ntk("a", values=vals).array,
        "norms": net.per_sample_grad_norms("L", values=vals),
        "plan": net.plan("a", "W")(vals).array,
        "evaluate": net.evaluate(vals)["C"],
    }
    back = round_trip(net)
    assert len(back._cache) == 0  # dropped, rebuilt on the next call
    found = {
        "grad": back.grad("C", values=vals)["W"],
        "jacobian": back.jacobian("a", "W", vals).array,
        "hessian": back.hessian("C", "b", vals).array,
        "ntk": back.ntk("a", values=vals).array,
        "norms": back.per_sample_grad_norms("L", values=vals),
        "plan": back.plan("a", "W")(vals).array,
        "evaluate": back.evaluate(vals)["C"],
    }
    for name, value in expected.items():
        np.testing.assert_array_equal(found[name], value, err_msg=name)


def test_compiled_functions_pickle_with_their_limits():
    net = tc.parse(BATCHED)
    vals = net.random_values(seed=2)
    grad = net.compile_grad("C", wrt=["W", "b"], dims={"B": 3})
    jac = net.compile_jacobian("a", "W", dims={"B": 3}, memory_limit=10**6)
    forward = net.compile_grad("C", dims={"B": 3}, dtype=np.float32)
    for f in (grad, jac, forward):
        f(vals)  # used before it is shipped
        g = round_trip(f)
        assert len(g) == len(f) and g.memory_limit == f.memory_limit and g.dtype == f.dtype
        a, b = f(vals), g(vals)
        if isinstance(a, dict):
            for w in a:
                np.testing.assert_array_equal(b[w], a[w])
        else:
            np.testing.assert_array_equal(b.array, a.array)


def test_plans_pickle_before_and_after_their_first_call():
    net = tc.parse(BATCHED)
    vals = net.random_values(seed=3)
    for order in ("optimal", "forward", "greedy"):
        fresh = net.plan("a", "W", order=order)
        called = net.plan("a", "W", order=order)
        expected = called(vals).array
        for plan in (fresh, called):
            back = round_trip(plan)
            assert (back.flops, back.einsum, back.tree()) == (plan.flops, plan.einsum, plan.tree())
            np.testing.assert_array_equal(back(vals).array, expected)


def test_derivations_labeled_tensors_and_explorations_pickle():
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=4)
    for d in (net.derive("C", "W"), net.derive("a", "W", vals)):
        back = round_trip(d)
        assert (str(back), back.einsum, back.latex()) == (str(d), d.einsum, d.latex())
        assert back.to_python() == d.to_python()
    J = net.jacobian("a", "W", vals)
    J.array  # noqa: B018 - cached, then pickled with it
    back = round_trip(J)
    assert back.deltas == J.deltas
    np.testing.assert_array_equal(back.array, J.array)
    exploration = net.explore("C", "W")
    assert str(round_trip(exploration)) == str(exploration)


def _grad_in_another_process(compiled, vals):
    return compiled(vals)["W"]


def test_a_compiled_gradient_runs_in_a_spawned_process():
    net = tc.parse(BATCHED)
    vals = net.random_values(seed=5)
    grad = net.compile_grad("C", dims={"B": 3})
    with multiprocessing.get_context("spawn").Pool(1) as pool:
        found = pool.apply(_grad_in_another_process, (grad, vals))
    np.testing.assert_array_equal(found, grad(vals)["W"])


@given(networks())
def test_drawn_networks_and_their_compiled_gradients_pickle(drawn):
    net = tc.parse(drawn.text)
    vals = net.random_values(seed=0)
    wrt = [*net.params, *net.inputs]
    expected = net.grad(drawn.of, wrt, vals)
    grad = net.compile_grad(drawn.of, wrt)
    plan = net.plan(drawn.of, wrt[0])
    J = plan(vals).array
    for w, g in round_trip(net).grad(drawn.of, wrt, vals).items():
        np.testing.assert_array_equal(g, expected[w])
    for w, g in round_trip(grad)(vals).items():
        np.testing.assert_array_equal(g, expected[w])
    np.testing.assert_array_equal(round_trip(plan)(vals).array, J)


def test_an_unpickled_plan_whose_chain_changed_is_refused():
    net = tc.parse(BATCHED)
    plan = round_trip(net.plan("a", "W"))
    plan.terms[0].equation = "ab->ab"  # as if saved by another version
    with pytest.raises(tc.PlanError, match=r"da/dW no longer has the terms this plan was made"):
        plan(net.random_values())
