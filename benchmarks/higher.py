"""Derivatives of any order (issue 15): a third derivative and the second
derivative of a tensor against JAX's nested transformations, the time to
build a Hessian (the first call) against ``jax.jit``'s first call, and one
matrix product in each library (the BLAS each competitor runs on)."""

from __future__ import annotations

import importlib.util
import time

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure


def tanh_mlp(depth: int, width: int) -> str:
    """``f = Σ tanh(W_d … tanh(W_1 x))``: a scalar of the input ``x``."""
    lines = [f"dim w = {width}", "input x[w]"]
    prev = "x"
    for k in range(1, depth + 1):
        lines += [f"param W{k}[w, w]", f"z{k}[i] = W{k}[i, j] * {prev}[j]", f"a{k} = tanh(z{k})"]
        prev = f"a{k}"
    lines.append(f"f = sum({prev})")
    return "\n".join(lines)


def _jax():
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def third_derivative(depth: int, width: int, rounds: int) -> list[Row]:
    net = tc.parse(tanh_mlp(depth, width))
    v = net.random_values(seed=0)
    v = {k: a / np.sqrt(width) if k.startswith("W") else a for k, a in v.items()}
    competitors = [
        Competitor(
            "tensorchain derivative .array",
            lambda: net.derivative("f", ("x", "x", "x"), v).array,
            lambda r: r,
        )
    ]
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy
        Ws = [jnp.asarray(v[f"W{k}"]) for k in range(1, depth + 1)]

        def f(x):
            for W in Ws:
                x = jnp.tanh(W @ x)
            return jnp.sum(x)

        d3 = jax.jit(jax.jacfwd(jax.jacfwd(jax.jacrev(f))))
        x = jnp.asarray(v["x"])
        competitors.append(
            Competitor(
                "jax.jit(jacfwd(jacfwd(jacrev)))",
                lambda: jax.block_until_ready(d3(x)),
                np.asarray,
                memory=False,
            )
        )
    return measure(
        f"third derivative by x, tanh MLP depth {depth}, width {width}", competitors, rounds
    )


def softmax_hessian(n: int, rounds: int) -> list[Row]:
    net = tc.parse(f"dim n = {n}\nparam x[n]\np = softmax(x, n)")
    v = net.random_values(seed=0)

    def closed() -> np.ndarray:
        e = np.exp(v["x"] - v["x"].max())
        p = e / e.sum()
        d = np.eye(n) - p  # d[j, k] = δ_jk − p_k
        return p[:, None, None] * d[:, :, None] * d[:, None, :] - np.einsum("i,j,jk->ijk", p, p, d)

    competitors = [
        Competitor("numpy closed form", closed, lambda r: r),
        Competitor(
            "tensorchain hessian .array", lambda: net.hessian("p", "x", v).array, lambda r: r
        ),
        Competitor("tensorchain hessian (structured)", lambda: net.hessian("p", "x", v)),
    ]
    jax = _jax()
    if jax is not None:
        h = jax.jit(jax.hessian(jax.nn.softmax))
        x = jax.numpy.asarray(v["x"])
        competitors.append(
            Competitor(
                "jax.jit(jax.hessian)",
                lambda: jax.block_until_ready(h(x)),
                np.asarray,
                memory=False,
            )
        )
    return measure(f"d²p/dx² of p = softmax(x), n={n}", competitors, rounds)


def first_call(depth: int, batch: int, width: int) -> list[Row]:
    """The first ``hessian`` call on a new network (building the derivative's
    graph, tracing and planning it, and running it once) against ``jax.jit``'s
    first call of ``jax.hessian`` (tracing and compiling). Single runs: a
    first call happens once."""
    from .run import mlp_spec

    spec = mlp_spec(depth, batch, width)
    rows = []
    start = time.perf_counter()
    net = tc.parse(spec)
    v = net.random_values(seed=0)
    net.hessian("L", "W0", v)
    rows.append(
        Row(
            f"first Hessian call, MLP depth {depth}, batch {batch}, width {width}",
            "tensorchain parse + first hessian",
            time.perf_counter() - start,
        )
    )
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy
        p = {k: jnp.asarray(a) for k, a in v.items()}

        def loss(W0):
            a = p["x"]
            for k in range(depth):
                W = W0 if k == 0 else p[f"W{k}"]
                a = jax.nn.sigmoid(a @ W.T + p[f"b{k}"])
            return 0.5 * jnp.sum((a - p["y"]) ** 2)

        start = time.perf_counter()
        jax.block_until_ready(jax.jit(jax.hessian(loss))(p["W0"]))
        rows.append(
            Row(rows[0].case, "jax.jit(jax.hessian) first call", time.perf_counter() - start)
        )
    base = rows[0].seconds
    for row in rows:
        row.ratio = row.seconds / base
    return rows


def matmul(rounds: int) -> list[Row]:
    """One (256 × 512) · (512 × 512) product: numpy's BLAS against XLA's."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((256, 512)), rng.standard_normal((512, 512))
    competitors = [Competitor("numpy a @ b", lambda: a @ b, lambda r: r)]
    jax = _jax()
    if jax is not None:
        ja, jb = jax.numpy.asarray(a), jax.numpy.asarray(b)
        mm = jax.jit(lambda x, y: x @ y)
        competitors.append(
            Competitor(
                "jax.jit(a @ b)", lambda: jax.block_until_ready(mm(ja, jb)), np.asarray, False
            )
        )
    return measure("one matrix product 256×512 · 512×512", competitors, rounds)


def rows(quick: bool) -> list[Row]:
    if quick:
        return (
            third_derivative(2, 4, rounds=2)
            + softmax_hessian(8, rounds=2)
            + first_call(2, 2, 4)
            + matmul(rounds=2)
        )
    return (
        third_derivative(3, 32, rounds=7)
        + softmax_hessian(256, rounds=7)
        + first_call(16, 8, 16)
        + matmul(rounds=9)
    )
