"""A small CNN classifier written in the language, at MNIST's sizes.
Run: python examples/cnn.py

What it teaches: two 3×3 convolutions are each one einsum term with two
shift tensors (``w[o, i, k, l] * S[p, k, y] * S[q, l, z] * x[s, i, y, z]``),
2×2 max pooling gathers each window onto its own axes and takes ``max`` along
them, the flatten is a reshape (``f[s, (o p q)]``) and the loss is
``cross_entropy`` on integer labels. The shift tensors are never read: the
forward pass gathers windows (im2col) once, the gradient by a kernel reads
them again, and the gradient by an image scatters back (col2im), with the
ReLU's mask applied after. The gradient agrees with central differences, and
gradient descent learns to tell ten synthetic patterns apart.
tests/test_models.py checks the same spec against ``jax.lax.conv_general_dilated``.
"""

import re
import time
from pathlib import Path

import numpy as np

import tensorchain as tc

net = tc.load(Path(__file__).with_name("cnn.tc"))
sizes = net.sizes()
print("sizes:", ", ".join(f"{d}={n}" for d, n in sizes.items()))

# Ten classes of 28×28 images: class k is a bright 7×7 square at one of ten
# places, in noise.
rng = np.random.default_rng(0)
B, N = sizes["B"], sizes["N"]
labels = rng.integers(0, 10, B)
corners = [(3 + 7 * (k % 3), 2 + 7 * (k // 3) % 21) for k in range(10)]
x = 0.3 * rng.standard_normal((B, 1, N, N))
for s, k in enumerate(labels):
    r, c = corners[k]
    x[s, 0, r : r + 7, c : c + 7] += 1.0
values = {**net.random_values(seed=1), "x": x, "labels": labels}
for w in ("w1", "w2"):
    values[w] = values[w] / np.sqrt(np.prod(values[w].shape[1:]))
values["U"] = values["U"] / np.sqrt(values["U"].shape[1])
for w in ("b1", "b2", "u0"):
    values[w] = 0.1 * values[w]

out = net.evaluate(values)
pooled = out["a2"].reshape(B, 16, 14, 2, 14, 2).max(axis=(3, 5))  # numpy's 2×2 max pooling
assert np.array_equal(out["m"], pooled)
print("max pooling equals numpy's:", True)

grad = net.compile_grad("L")
steps = grad.program.steps
codes = [c([f"r{a}" for a in s.args]) for s, c in zip(steps, grad.program.codes, strict=True)]
gathers = sum(bool(re.search(r"(?<!un)windows\(", c)) for c in codes)
scatters = sum("unwindows(" in c for c in codes)
print(
    f"compiled gradient: {len(grad)} numpy steps; {gathers} gather windows (im2col),"
    f" {scatters} scatter them back (col2im)"
)
start = time.perf_counter()
g = grad(values)
print(f"one gradient by all {len(g)} params: {1e3 * (time.perf_counter() - start):.0f} ms")

# Central differences on drawn entries. By w1 most entries are not compared at
# this size: among 200,000 ReLU inputs some lie within a step of the kink, and
# verify reports such differences as unreliable rather than comparing them.
report = net.verify("L", ["w2", "U"], values, references=["differences"], fd_entries=3)
print(report)
assert report.ok

LEARNING_RATE = 0.05
params = net.params
velocity = {w: np.zeros_like(values[w]) for w in params}
losses = [float(out["L"])]
for _ in range(12):
    g = grad(values)
    for w in params:
        velocity[w] = 0.9 * velocity[w] - LEARNING_RATE * g[w]
        values[w] = values[w] + velocity[w]
    losses.append(float(net.evaluate(values)["L"]))
print("loss every 3 steps:", " ".join(f"{loss:.3f}" for loss in losses[::3]))
assert losses[-1] < 0.5 * losses[0]
