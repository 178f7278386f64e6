"""Gradients of a batched two-layer network, checked three ways.
Run: python examples/mlp_gradients.py

What it teaches: load a spec file, pick sizes, take every parameter's
gradient in one call, and check each against the reshape method and central
finite differences (tensorchain.testing).
"""

from pathlib import Path

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

net = tc.load(Path(__file__).with_name("mlp_batched.tc"))
vals = net.random_values(seed=1, B=4, d=3, h=5, c=2)
grads = net.grad("L", values=vals)  # every param: W1, b1, W2, b2

for name, g in grads.items():
    vs_reshape = max_relative_error(g, tc.reshape_method(net, "L", name, vals))
    vs_fd = max_relative_error(g, finite_differences(net, "L", name, vals))
    print(
        f"{name:3} shape {g.shape}: vs reshape {vs_reshape:.1e}, vs finite differences {vs_fd:.1e}"
    )
    assert vs_reshape < 1e-12 and vs_fd < 1e-6
