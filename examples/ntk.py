"""The neural tangent kernel of a two-layer network.
Run: python examples/ntk.py

What it teaches: Θ[s, k, t, l] = Σ_θ ∂out[s, k]/∂θ · ∂out[t, l]/∂θ from
net.ntk, planned as one contraction per parameter without per-sample
Jacobians; checked against the dense Jacobians of the reshape method
contracted with numpy; then the kernel's spectrum and a kernel regression fit.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc

net = tc.load(Path(__file__).with_name("ntk.tc"))
values = net.random_values(seed=3)
B, c = values["x"].shape[0], values["W2"].shape[0]
params = ["W1", "b1", "W2"]

theta = net.ntk("out", params, values)
print(f"Θ has shape {theta.shape}, stored as {theta.stored_entries()} numbers")

dense = 0.0
for w in params:
    J = tc.reshape_method(net, "out", w, values).reshape(B, c, -1)
    dense = dense + np.einsum("skp,tlp->sktl", J, J)
error = np.abs(theta.array - dense).max() / np.abs(dense).max()
print(f"vs dense per-sample Jacobians (reshape method): max rel. diff {error:.1e}")
assert error < 1e-10

K = theta.array.reshape(B * c, B * c)
eigenvalues = np.linalg.eigvalsh(K)
print("eigenvalues of the NTK matrix:", np.array2string(eigenvalues[::-1], precision=3))
assert eigenvalues.min() > -1e-10 * eigenvalues.max()  # a Gram matrix: positive semidefinite

# Kernel regression with Θ: the linearised network's fit of targets in one solve.
targets = np.sin(values["x"] @ np.ones((3, c)))
alpha = np.linalg.solve(K + 1e-6 * np.eye(B * c), targets.ravel())
print(f"kernel regression residual on the batch: {np.abs(K @ alpha - targets.ravel()).max():.1e}")
