"""A softmax classifier: derive, check, train.
Run: python examples/softmax_classifier.py

What it teaches: cross_entropy expands into the language's own statement,
log_softmax's Jacobian stays a sum of two structured terms, and the gradient
of the loss agrees with the reshape method; then a few steps of gradient
descent on three Gaussian blobs.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import max_relative_error

net = tc.load(Path(__file__).with_name("softmax_classifier.tc"))
print(net.statements[-1].text)  # what cross_entropy stands for
derivation = net.derive("C", "W2")
print(derivation)
print("\n".join(derivation.steps[:2]))  # the loss's local derivative: two terms

rng = np.random.default_rng(0)
centres = rng.standard_normal((3, 4)) * 2.5
labels = rng.integers(0, 3, 32)
values = net.random_values(seed=1)
values["x"] = centres[labels] + rng.standard_normal((32, 4))
values["y"] = np.eye(3)[labels]

params = ["W1", "b1", "W2", "b2"]
grads = net.grad("C", params, values)
worst = max(max_relative_error(grads[w], tc.reshape_method(net, "C", w, values)) for w in params)
print(f"gradients vs the reshape method: max rel. diff {worst:.1e}")
assert worst < 1e-10

for step in range(1, 61):
    grads = net.grad("C", params, values)
    for w in params:
        values[w] = values[w] - 0.5 * grads[w]
    if step % 20 == 0:
        out = net.evaluate(values)
        accuracy = np.mean(out["logits"].argmax(axis=1) == labels)
        print(f"step {step}: loss {out['C']:.3f}, accuracy {accuracy:.2f}")
assert accuracy > 0.9
