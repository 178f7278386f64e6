"""A CNN's flatten as a reshape: f[s, (o p q)] = a[s, o, p, q].
Run: python examples/cnn_flatten.py

What it teaches: a group ``(o p q)`` merges axes into one, row-major as
numpy's reshape (``q`` fastest), and the head declares its input axis as
the product dim ``(O R R)``, whose size follows O and R. The flatten's
Jacobian is a delta between the grouped axis and (o, p, q), kept symbolic
(a strided view of 2·G − 1 numbers, never G × O × R × R); a gradient flows
back through it as the opposite reshape, which costs nothing. Checked
against numpy's reshape, the reshape method, central differences and, when
it is installed, JAX.
"""

import importlib.util
from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

net = tc.load(Path(__file__).with_name("cnn_flatten.tc"))
values = net.random_values(seed=0)
values["y"] = np.eye(3)[[0, 2]]  # one-hot labels
print("sizes:", net.sizes(values))

out = net.evaluate(values)
print(f"f vs numpy's reshape: equal = {np.array_equal(out['f'], out['a'].reshape(2, -1))}")

J = net.jacobian("f", "a", values)
print(f"df/da: shape {J.shape}, stored {J.stored_entries()} numbers, dense {J.array.size}")
print(J)
print(net.derive("L", "a"))
for wrt in ("w", "b", "V", "v0"):
    g = net.grad("L", wrt, values)[wrt]
    vs_reshape = max_relative_error(g, tc.reshape_method(net, "L", wrt, values))
    vs_fd = max_relative_error(g, finite_differences(net, "L", wrt, values))
    print(f"∂L/∂{wrt}: vs reshape method {vs_reshape:.1e}, vs central differences {vs_fd:.1e}")
    assert vs_reshape < 1e-10 and vs_fd < 1e-6

if importlib.util.find_spec("jax") is not None:  # the same model, written in JAX
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def loss(v):
        x, w = v["x"][:, None], v["w"][:, None]  # one channel
        h = jax.lax.conv_general_dilated(x, w, (1, 1), "VALID")
        a = jnp.maximum(h + v["b"][None, :, None, None], 0.0)
        logits = a.reshape(2, -1) @ v["V"].T + v["v0"]
        logp = logits - jax.scipy.special.logsumexp(logits, axis=1, keepdims=True)
        return jnp.mean(jnp.sum(-v["y"] * logp, axis=1))

    grads = jax.grad(loss)({k: jnp.asarray(a) for k, a in values.items()})
    ours = net.grad("L", ["w", "b", "V", "v0"], values)
    worst = max(max_relative_error(ours[k], np.asarray(grads[k])) for k in ours)
    print(f"gradients vs jax.grad: max relative error {worst:.1e}")
    assert worst < 1e-10
