"""Differentially private SGD on a synthetic two-class problem.
Run: python examples/dp_sgd.py

What it teaches: a per-sample loss L[s], each sample's gradient clipped to a
norm before summing (net.clipped_grad), without forming the per-sample
gradients; checked on the first step against the per-sample gradients of
the reshape method, clipped and summed by hand.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc

net = tc.load(Path(__file__).with_name("dp_sgd.tc"))
rng = np.random.default_rng(0)
B, params = 64, ["W1", "b1", "w2", "b2"]
values = net.random_values(seed=0)
values["W1"] *= 2.0


# Two Gaussian blobs, labels 0 and 1.
def batch() -> tuple[np.ndarray, np.ndarray]:
    y = rng.integers(0, 2, B).astype(float)
    x = rng.standard_normal((B, 2)) * 0.7 + np.where(y[:, None] == 1, 1.0, -1.0)
    return x, y


max_norm, noise, lr = 1.0, 0.5, 0.5

x, y = batch()
values.update(x=x, y=y)
clipped = net.clipped_grad("L", params, values, max_norm=max_norm)

# The same sum from dense per-sample gradients (the reshape method, by sample).
dense = {w: tc.reshape_method(net, "L", w, values).reshape(B, -1) for w in params}
norms = np.linalg.norm(np.concatenate(list(dense.values()), axis=1), axis=1)
scale = np.minimum(1.0, max_norm / norms)
worst = max(
    np.abs(clipped[w].ravel() - scale @ dense[w]).max() / np.abs(scale @ dense[w]).max()
    for w in params
)
print(f"step 0: clipped sum vs dense per-sample gradients: max rel. diff {worst:.1e}")
clipped_count = np.sum(norms > max_norm)
print(f"        {clipped_count} of {B} samples clipped (median norm {np.median(norms):.2f})")
assert worst < 1e-10

for step in range(1, 31):
    x, y = batch()
    values.update(x=x, y=y)
    clipped = net.clipped_grad("L", params, values, max_norm=max_norm)
    for w in params:  # the Gaussian mechanism, then a plain SGD step on the mean
        noisy = clipped[w] + noise * max_norm * rng.standard_normal(np.shape(values[w]))
        values[w] = values[w] - lr * noisy / B
    if step % 10 == 0:
        out = net.evaluate(values)
        accuracy = np.mean((out["logit"] > 0) == (y == 1))
        print(f"step {step}: mean loss {out['L'].mean():.3f}, accuracy {accuracy:.2f}")
assert accuracy > 0.8
