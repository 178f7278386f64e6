"""Single-head self-attention: the softmax over keys inside a chain.
Run: python examples/attention.py

What it teaches: softmax(scores[s, t, u], u) normalises over keys for every
query; its Jacobian is δ(s, s') δ(t, t') [A δ(u, u') − A A'], two terms with
no T×T block per query. The query weights' gradient runs through it and
agrees with the reshape method and central differences.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

net = tc.load(Path(__file__).with_name("attention.tc"))
values = net.random_values(seed=0)

J = net.jacobian("A", "scores", values)
print(f"dA/dscores: shape {J.shape}, {len(J.terms)} terms, symbolic δ {J.deltas}")
print(f"  stored: {J.stored_entries()} numbers (dense: {J.array.size})")

print(net.derive("L", "Wq", values).matrix_form())
for w in ("Wq", "Wk", "Wv"):
    g = net.grad("L", w, values)[w]
    vs_reshape = max_relative_error(g, tc.reshape_method(net, "L", w, values))
    vs_fd = max_relative_error(g, finite_differences(net, "L", w, values))
    print(f"∂L/∂{w}: vs reshape method {vs_reshape:.1e}, vs central differences {vs_fd:.1e}")
    assert vs_reshape < 1e-10 and vs_fd < 1e-6
print("attention of sample 0, query 0 over the keys:", np.round(net.evaluate(values)["A"][0, 0], 3))
