"""Issue 20's newcomer trial: a loop whose batch size changes keeps the
cheap call, and a compiled function takes memory_limit= as the docs say."""

from __future__ import annotations

import numpy as np
import pytest

import tensorchain as tc
from tensorchain.network import Network

MLP = """
dim B = 8
dim n = 3
dim h = 4
input x[B, n]
input y[B]
param W1[h, n]
param W2[h]
z[s, k] = W1[k, j] * x[s, j]
a = tanh(z)
p[s] = W2[k] * a[s, k]
L = 0.5 * sum((p - y) ^ 2)
"""


def test_a_loop_over_a_few_batch_sizes_stays_on_the_cheap_path(monkeypatch):
    net = tc.parse(MLP)
    sizes = (5, 8, 13)
    values = {B: net.random_values(seed=B, B=B) for B in sizes}
    expected = {B: tc.reshape_method(net, "L", "W1", values[B]) for B in sizes}
    for B in sizes:  # first calls: compiled once per size
        net.grad("L", "W1", values[B])
    general = []
    checks = Network._check_values
    monkeypatch.setattr(
        Network, "_check_values", lambda self, *a, **k: general.append(1) or checks(self, *a, **k)
    )
    for B in sizes * 3:
        got = net.grad("L", "W1", values[B])["W1"]
        assert np.allclose(got, expected[B], rtol=1e-12, atol=1e-14)
    assert general == []  # every call found its program without the general checks


def test_a_compiled_function_takes_a_memory_limit_per_call():
    net = tc.parse(MLP)
    grad = net.compile_grad("L", dims={"B": 8})
    values = net.random_values(seed=0)
    with pytest.raises(tc.MemoryLimitError, match="memory limit"):
        grad(values, memory_limit=100)
    with pytest.raises(tc.MemoryLimitError):
        grad(values, memory_limit=100, strict=True)  # the general path too
    got = grad(values, memory_limit=10**9)["W1"]
    assert np.allclose(got, tc.reshape_method(net, "L", "W1", values), rtol=1e-12, atol=1e-14)
