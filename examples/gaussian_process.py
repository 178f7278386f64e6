"""A Gaussian process's hyperparameters: gradient and Hessian, then a fit.
Run: python examples/gaussian_process.py

What it teaches: a kernel built in index form, log|K| and K⁻¹y written with
logdet and solve (an LU factorisation, K⁻¹ never formed for the value), the
gradient by the three log-hyperparameters against the closed form
½ tr((K⁻¹ − ααᵀ) ∂K/∂θ), their 3 × 3 Hessian against the independent
reference, and a few Newton steps on that Hessian.
"""

from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.testing import max_relative_error

net = tc.load(Path(__file__).with_name("gaussian_process.tc"))
rng = np.random.default_rng(0)
X = rng.uniform(-3.0, 3.0, (20, 2))
y = np.sin(X[:, 0]) * np.cos(X[:, 1]) + 0.1 * rng.standard_normal(20)
values = {"X": X, "y": y, "log_ell": np.log(2.0), "log_sf": 0.0, "log_sn": np.log(0.3)}
params = ["log_ell", "log_sf", "log_sn"]


def closed_form(v):
    """½ tr((K⁻¹ − ααᵀ) ∂K/∂θ) for each log-hyperparameter θ."""
    ell, sf, sn = np.exp(v["log_ell"]), np.exp(v["log_sf"]), np.exp(v["log_sn"])
    D = np.sum((v["X"][:, None, :] - v["X"][None, :, :]) ** 2, axis=-1)
    E = sf * np.exp(-0.5 * D / ell**2)
    Kinv = np.linalg.inv(E + sn * np.eye(len(D)))
    alpha = Kinv @ v["y"]
    W = 0.5 * (Kinv - np.outer(alpha, alpha))
    return np.array([np.sum(W * E * D) / ell**2, np.sum(W * E), sn * np.trace(W)])


g = net.grad("NLL", params, values)
gradient = np.array([float(g[p]) for p in params])
print("gradient by (log ℓ, log sf, log sn):", gradient.round(6))
assert max_relative_error(gradient, closed_form(values)) < 1e-10


def hessian(v):
    return np.array(
        [[float(net.hessian("NLL", a, v, wrt2=b).array) for b in params] for a in params]
    )


H = hessian(values)
reference = np.array(
    [[float(tc.reshape_hessian(net, "NLL", a, values, b)) for b in params] for a in params]
)
print("Hessian:\n", H.round(4))
assert max_relative_error(H, reference) < 1e-9

nll = float(net.evaluate(values)["NLL"])
for step in range(8):  # damped Newton on the hyperparameters
    g = net.grad("NLL", params, values)
    gradient = np.array([float(g[p]) for p in params])
    H = hessian(values)
    convex = np.all(np.linalg.eigvalsh(H) > 0)
    move = np.linalg.solve(H, gradient) if convex else gradient
    scale = 1.0
    while scale > 1e-4:  # halve the step until the likelihood improves
        trial = {**values, **{p: values[p] - scale * d for p, d in zip(params, move, strict=True)}}
        trial_nll = float(net.evaluate(trial)["NLL"])
        if trial_nll < nll:
            break
        scale /= 2
    values, nll = trial, trial_nll
    print(f"step {step}: NLL = {nll:.6f}, ‖gradient‖ = {np.linalg.norm(gradient):.2e}")
assert np.linalg.norm(gradient) < 1e-3  # a stationary point of the likelihood
