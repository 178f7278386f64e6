"""The article's derivation three ways: by hand with numpy, by the reshape
method, and as a labeled tensor chain. Run: python examples/article_by_hand.py

What it teaches: the article multiplies dC/da (1×n) · da/dz (n×n) · dz/dW
(n×(n×m), reshaped to n×nm) and reshapes the 1×nm result to n×m. tensorchain
keeps the deltas of da/dz and dz/dW symbolic, so the same gradient is the
einsum i,i,j->ij of three vectors.
"""

import numpy as np

import tensorchain as tc

n, m = 4, 3
net = tc.parse(tc.ARTICLE)
vals = net.random_values(seed=0, n=n, m=m)
x, y, W, b = vals["x"], vals["y"], vals["W"], vals["b"]

# 1. By hand, exactly as the article writes it.
z = W @ x + b
a = 1 / (1 + np.exp(-z))
dC_da = (a - y)[None, :]  # 1×n
da_dz = np.diag(a * (1 - a))  # n×n
dz_dW = np.zeros((n, n, m))  # n×(n×m): dz_i/dW_pq = δ(i,p) x_q
for i in range(n):
    dz_dW[i, i, :] = x
by_hand = (dC_da @ da_dz @ dz_dW.reshape(n, n * m)).reshape(n, m)

# 2. The reshape method, generalised to any network.
reshaped = tc.reshape_method(net, "C", "W", vals)

# 3. The labeled chain, contracted by opt_einsum.
labeled = net.grad("C", wrt=["W"], values=vals)["W"]

print("by hand (1×n · n×n · n×nm -> n×m):\n", by_hand)
print("max |reshape method − by hand| =", np.abs(reshaped - by_hand).max())
print("max |labeled chain − by hand|  =", np.abs(labeled - by_hand).max())
print("the labeled dz/dW stores", x.size, "numbers instead of", dz_dW.size)
print(net.jacobian("z", wrt="W", values=vals))
assert np.allclose(labeled, by_hand, rtol=1e-12, atol=1e-14)
assert np.allclose(reshaped, by_hand, rtol=1e-12, atol=1e-14)
