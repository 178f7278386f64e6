"""Matrix factorisation and logistic regression: gradients against closed forms.
Run: python examples/classic_models.py

What it teaches: small models have textbook gradients; tensorchain's agree
with them and with the reshape method, and its Hessian of logistic
regression is Xᵀ diag(p (1 − p)) X / B.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import max_relative_error

here = Path(__file__).parent

mf = tc.load(here / "matrix_factorisation.tc")
v = mf.random_values(seed=0)
g = mf.grad("C", ["U", "V"], v)
R = v["X"] - v["U"] @ v["V"].T
closed = {"U": -2 * R @ v["V"], "V": -2 * R.T @ v["U"]}  # ∂/∂U Σ R² = −2 R V
for w in ("U", "V"):
    e1 = max_relative_error(g[w], closed[w])
    e2 = max_relative_error(g[w], tc.reshape_method(mf, "C", w, v))
    print(f"matrix factorisation ∂C/∂{w}: vs closed form {e1:.1e}, vs reshape method {e2:.1e}")
    assert e1 < 1e-12 and e2 < 1e-12
print(mf.derive("C", "U"))

lr = tc.load(here / "logistic_regression.tc")
v = lr.random_values(seed=1)
v["y"] = (v["y"] > 0).astype(float)
p = 1 / (1 + np.exp(-(v["x"] @ v["w"] + v["b"])))
g = lr.grad("C", "w", v)["w"]
closed = v["x"].T @ (p - v["y"]) / 16  # ∂C/∂w = Xᵀ (p − y) / B
print(f"logistic regression ∂C/∂w: vs closed form {max_relative_error(g, closed):.1e}")
assert max_relative_error(g, closed) < 1e-12
H = lr.hessian("C", "w", v).array
closed_h = v["x"].T @ np.diag(p * (1 - p)) @ v["x"] / 16
error = max_relative_error(H, closed_h)
print(f"logistic regression Hessian by w: vs Xᵀ diag(p(1−p)) X / B {error:.1e}")
assert error < 1e-12
print(lr.derive("C", "w"))
