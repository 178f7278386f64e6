"""A convolution written as one einsum term with a shift tensor.
Run: python examples/conv1d.py

What it teaches: ``shift S[P, K, T] stride 2 padding 2`` is the sliding
window S[p, k, t] = [t = 2p + k − 2]; the convolution
h[s, o, p] = w[o, i, k] S[p, k, t] x[s, i, t] is one einsum term, its
Jacobians by the kernel (S · x) and by the input (w · S) stay structured, and
no compiled step ever reads S: contractions with it run as a gather
(im2col) or a scatter (col2im). Checked against a direct loop, the reshape
method and central differences.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import finite_differences, max_relative_error

net = tc.load(Path(__file__).with_name("conv1d.tc"))
values = net.random_values(seed=0)
print("sizes:", net.sizes(values))

# The convolution by a direct loop over output positions.
x, w = values["x"], values["w"]
padded = np.pad(x, ((0, 0), (0, 0), (2, 2)))
direct = np.stack(
    [np.einsum("oik,sik->so", w, padded[:, :, 2 * p : 2 * p + 5]) for p in range(8)], axis=-1
)
h = net.evaluate(values)["h"]
print(f"h vs a direct loop: max abs diff {np.abs(h - direct - values['b'][:, None]).max():.1e}")

J = net.jacobian("h", "x", values)
print(f"dh/dx: shape {J.shape}, stored {J.stored_entries()} numbers, dense {J.array.size}")
print(net.derive("L", "w", values))
for wrt in ("w", "b", "V", "x"):
    g = net.grad("L", wrt, values)[wrt]
    vs_reshape = max_relative_error(g, tc.reshape_method(net, "L", wrt, values))
    vs_fd = max_relative_error(g, finite_differences(net, "L", wrt, values))
    print(f"∂L/∂{wrt}: vs reshape method {vs_reshape:.1e}, vs central differences {vs_fd:.1e}")
    assert vs_reshape < 1e-10 and vs_fd < 1e-6
