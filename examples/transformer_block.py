"""A transformer block written in the language, at the sizes of issue 17.
Run: python examples/transformer_block.py

What it teaches: a real model is a short spec. Token ids pick rows of an
embedding table (``E[ids[s, t], d]``, a gather), layer norm is three
statements in index form, the four heads are split from one projection by a
reshape (``q[s, t, h, k] = Q[s, t, (h k)]``) and merged back the same way,
attention is ``softmax`` over the keys, the MLP applies the exact GELU, and the
loss is ``cross_entropy`` on integer labels. ``net.compile_grad`` turns the
gradient by all 16 params into one straight-line program of numpy calls;
it agrees with central differences, and a few steps of gradient descent
learn a token classification task. tests/test_models.py checks the same
spec against a hand-written JAX model.
"""

import time
from pathlib import Path

import numpy as np

import tensorchain as tc

net = tc.load(Path(__file__).with_name("transformer_block.tc"))
sizes = net.sizes()
print("sizes:", ", ".join(f"{d}={n}" for d, n in sizes.items()))

# Values as a model is initialised: matrices scaled by 1/sqrt(fan-in), gains 1.
values = net.random_values(seed=0)
for w in ("Wq", "Wk", "Wv", "Wo", "W1", "W2", "U"):
    values[w] = values[w] / np.sqrt(values[w].shape[0])
for w in ("g1", "g2"):
    values[w] = np.ones_like(values[w])
for w in ("n1", "n2", "b1", "b2", "u0"):
    values[w] = np.zeros_like(values[w])
values["E"] *= 0.5
# The task: a token's class is its id modulo c, but only in sequences whose
# first token is even; in the others, the class of the token before it.
ids = values["ids"]
previous = np.roll(ids, 1, axis=1) % sizes["c"]
values["labels"] = np.where(ids[:, :1] % 2 == 0, ids % sizes["c"], previous)

out = net.evaluate(values)
B, T, H, K = (sizes[d] for d in "BTHK")
assert np.array_equal(out["q"], out["Q"].reshape(B, T, H, K))  # the head split: a reshape
print(f"attention weights: {out['A'].shape}, each row sums to 1:", np.allclose(out["A"].sum(-1), 1))

grad = net.compile_grad("L")
peak = grad.program.peak.bytes / 2**20
print(f"compiled gradient: {len(grad)} numpy steps, forecast peak {peak:.1f} MiB")
start = time.perf_counter()
g = grad(values)
print(f"one gradient by all {len(g)} params: {1e3 * (time.perf_counter() - start):.0f} ms")

# Central differences on a few drawn entries of some params, at full size.
report = net.verify("L", ["E", "Wq", "g1", "W1"], values, references=["differences"], fd_entries=3)
print(report)
assert report.ok

# A few steps of gradient descent with momentum: the loss falls.
params = net.params
velocity = {w: np.zeros_like(values[w]) for w in params}
losses = []
for _ in range(20):
    g = grad(values)
    for w in params:
        velocity[w] = 0.9 * velocity[w] - 0.2 * g[w]
        values[w] = values[w] + velocity[w]
    losses.append(float(net.evaluate(values)["L"]))
print("loss every 5 steps:", " ".join(f"{loss:.3f}" for loss in losses[::5]))
assert losses[-1] < 0.7 * losses[0]
