"""Linear algebra (issue 18): a Gaussian process's likelihood gradient by its
hyperparameters against the closed form written by hand in numpy and
``jax.jit(jax.grad)``, the structured Hessian of ``log |det X|`` against
``jax.hessian``, and the cost of refusing matrices singular to working
precision: tensorchain's ``inv`` and ``solve`` (with their O(n²) checks)
against numpy's."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.functions import matrix

from .harness import Competitor, Row, measure

GP = (Path(__file__).parent.parent / "examples" / "gaussian_process.tc").read_text(encoding="utf-8")


def _jax():
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def gp_values(n: int, d: int = 2, seed: int = 0) -> dict[str, np.ndarray]:
    rng = np.random.default_rng(seed)
    return {
        "X": rng.uniform(-2.0, 2.0, (n, d)),
        "y": rng.standard_normal(n),
        "log_ell": np.asarray(np.log(0.8)),
        "log_sf": np.asarray(0.0),
        "log_sn": np.asarray(np.log(0.1)),
    }


def gp_closed_form(v: dict[str, np.ndarray]) -> np.ndarray:
    """∂NLL/∂θ = ½ tr((K⁻¹ − ααᵀ) ∂K/∂θ) for θ = log ℓ, log sf, log sn."""
    ell, sf, sn = np.exp(v["log_ell"]), np.exp(v["log_sf"]), np.exp(v["log_sn"])
    X = v["X"]
    sq = np.sum(X * X, axis=1)
    D = np.maximum(sq[:, None] + sq[None, :] - 2.0 * X @ X.T, 0.0)
    E = sf * np.exp(-0.5 * D / ell**2)
    K = E + sn * np.eye(len(X))
    Kinv = np.linalg.inv(K)
    alpha = Kinv @ v["y"]
    W = 0.5 * (Kinv - np.outer(alpha, alpha))
    return np.array([np.sum(W * E * D) / ell**2, np.sum(W * E), sn * np.trace(W)])


def gp_gradient(n: int, rounds: int) -> list[Row]:
    net = tc.parse(GP)
    v = gp_values(n)
    params = ("log_ell", "log_sf", "log_sn")

    def ours() -> np.ndarray:
        g = net.grad("NLL", params, v)
        return np.array([float(g[p]) for p in params])

    competitors = [
        Competitor(
            "numpy closed form ½ tr((K⁻¹ − ααᵀ) ∂K/∂θ)", lambda: gp_closed_form(v), lambda r: r
        ),
        Competitor("tensorchain grad", ours, lambda r: r),
    ]
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy
        X, y = jnp.asarray(v["X"]), jnp.asarray(v["y"])

        def nll(theta):
            ell, sf, sn = jnp.exp(theta)
            D = jnp.sum((X[:, None, :] - X[None, :, :]) ** 2, axis=-1)
            K = sf * jnp.exp(-0.5 * D / ell**2) + sn * jnp.eye(len(X))
            return 0.5 * y @ jnp.linalg.solve(K, y) + 0.5 * jnp.linalg.slogdet(K)[1]

        grad = jax.jit(jax.grad(nll))
        theta = jnp.asarray([float(v[p]) for p in params])
        competitors.append(
            Competitor(
                "jax.jit(jax.grad)", lambda: jax.block_until_ready(grad(theta)), np.asarray, False
            )
        )
    return measure(f"GP likelihood gradient by 3 hyperparameters, n={n}", competitors, rounds)


def logdet_hessian(n: int, rounds: int) -> list[Row]:
    net = tc.parse(f"dim n = {n}\nparam X[n, n]\nf = logdet(X)")
    rng = np.random.default_rng(1)
    v = {"X": 3.0 * np.eye(n) + 0.3 * rng.standard_normal((n, n))}
    competitors = [Competitor("tensorchain hessian (structured)", lambda: net.hessian("f", "X", v))]
    jax = _jax()
    if jax is not None:
        h = jax.jit(jax.hessian(lambda X: jax.numpy.linalg.slogdet(X)[1]))
        X = jax.numpy.asarray(v["X"])
        competitors.append(
            Competitor(
                "jax.jit(jax.hessian) (dense)", lambda: jax.block_until_ready(h(X)), memory=False
            )
        )
    rows = measure(f"Hessian of log|det X| by X, n={n}", competitors, rounds)
    stored = net.hessian("f", "X", v).stored_entries()
    rows[0].note = f"stores {stored:,} numbers ({stored / n**2:.0f} n²); dense is n⁴ = {n**4:,}"
    return rows


def singular_checks(shapes: list[tuple[int, ...]], rounds: int) -> list[Row]:
    """numpy's ``inv`` and ``solve`` (one right side) against tensorchain's
    (:func:`tensorchain.functions.matrix.inv_along`,
    :func:`~tensorchain.functions.matrix.solve_labeled`),
    which also refuse a matrix singular to working precision: the price of the check."""
    rng = np.random.default_rng(2)
    out: list[Row] = []
    for shape in shapes:
        n, axes = shape[-1], (len(shape) - 2, len(shape) - 1)
        a = 3.0 * np.eye(n) + 0.4 * rng.standard_normal(shape)
        b = rng.standard_normal((*shape[:-1], 1))
        perm = tuple(range(len(shape)))
        size = " × ".join(map(str, shape))
        out += measure(
            f"inv of {size}",
            [
                Competitor("numpy.linalg.inv", lambda a=a: np.linalg.inv(a), np.asarray),
                Competitor(
                    "tensorchain inv (checked)",
                    lambda a=a, axes=axes: matrix.inv_along(a, axes),
                    np.asarray,
                ),
            ],
            rounds,
        )
        out += measure(
            f"solve of {size}, one right side",
            [
                Competitor(
                    "numpy.linalg.solve", lambda a=a, b=b: np.linalg.solve(a, b), np.asarray
                ),
                Competitor(
                    "tensorchain solve (checked)",
                    lambda a=a, b=b, p=perm: matrix.solve_labeled(a, b, p, p, b.shape, p),
                    np.asarray,
                ),
            ],
            rounds,
        )
    return out


def rows(quick: bool) -> list[Row]:
    if quick:
        return (
            gp_gradient(16, rounds=2)
            + logdet_hessian(4, rounds=2)
            + singular_checks([(100, 3, 3), (8, 8)], rounds=2)
        )
    return (
        gp_gradient(512, rounds=9)
        + logdet_hessian(64, rounds=7)
        + singular_checks([(10_000, 3, 3), (64, 64), (512, 512)], rounds=15)
    )
