"""An embedding classifier with integer token ids and integer class labels.
Run: python examples/token_classifier.py

What it teaches: ``input ids[B, L] index V`` declares integer positions,
``E[ids[s, t], d]`` looks rows up (a gather), and ``cross_entropy`` takes
integer labels. The derivative by the table is a selection, ``δ(ids[p, q], i)``,
kept symbolic: the Jacobian of the lookup stores the B·L positions, not a
B·L×V one-hot, and the gradient is one scatter-add. The gradients agree with
the reshape method (which builds the one-hot itself) and central
differences; then gradient descent learns which tokens mark which class.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

net = tc.load(Path(__file__).with_name("token_classifier.tc"))
print(net.statements[-1].text)  # the expansion, with the labels' one-hot
print(net.derive("C", "E"))  # ∂C/∂E[i, j] = ... · δ(ids[p, q], i)

# Three classes; class k's sequences draw most tokens from the words v ≡ k (mod 3).
rng = np.random.default_rng(0)
B, L, V = 32, 8, 60
labels = rng.integers(0, 3, B)
marked = rng.integers(0, V // 3, (B, L)) * 3 + labels[:, None]
noise = rng.integers(0, V, (B, L))
ids = np.where(rng.random((B, L)) < 0.6, marked, noise)
sizes = {"B": B, "L": L, "V": V, "D": 16}  # larger than the spec's defaults
values = {**net.random_values(seed=1, **sizes), "ids": ids, "labels": labels}
values["E"] = 0.1 * values["E"]

J = net.jacobian("x", "E", values)
print(f"d x / d E: shape {J.shape}, stores {J.stored_entries()} numbers (the positions)")
assert J.stored_entries() == B * L

params = ["E", "W", "b"]
grads = net.grad("C", params, values)
worst = max(max_relative_error(grads[w], tc.reshape_method(net, "C", w, values)) for w in params)
print(f"gradients vs the reshape method: max rel. diff {worst:.1e}")
assert worst < 1e-10
fd = finite_differences(net, "C", "W", values)
assert np.allclose(grads["W"], fd, atol=1e-7)
assert not grads["E"][np.setdiff1d(np.arange(V), ids)].any()  # unused words: zero rows

for step in range(1, 151):
    grads = net.grad("C", params, values)
    for w in params:
        values[w] = values[w] - 2.0 * grads[w]
    if step % 50 == 0:
        out = net.evaluate(values)
        accuracy = np.mean(out["logits"].argmax(axis=1) == labels)
        print(f"step {step}: loss {out['C']:.3f}, accuracy {accuracy:.2f}")
assert accuracy > 0.9
