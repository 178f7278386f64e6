"""Per-call overhead (issue 20): a gradient called in a loop on a small
network, against the numpy one would write by hand, the numpy tensorchain
generates, ``jax.jit(jax.grad)`` and torch; first calls against ``jax.jit``'s
first call; and how parsing and the first gradient grow with the network."""

from __future__ import annotations

import importlib.util
import time

import numpy as np

import tensorchain as tc
from tensorchain.presentation.derivation import module_source

from .harness import Competitor, Row, measure


def _jax():
    if importlib.util.find_spec("jax") is None:
        return None
    import jax

    jax.config.update("jax_enable_x64", True)
    return jax


def _torch():
    if importlib.util.find_spec("torch") is None:
        return None
    import torch

    torch.set_num_threads(1)
    return torch


def article(n: int, rounds: int, with_reshape: bool = False) -> list[Row]:
    """The gradient of the article's C by W at n = m."""
    net = tc.parse(tc.ARTICLE)
    v = net.random_values(seed=0, n=n, m=n)
    x, y, W, b = v["x"], v["y"], v["W"], v["b"]

    def by_hand() -> np.ndarray:
        a = 1.0 / (1.0 + np.exp(-(W @ x + b)))
        return np.outer((a - y) * a * (1.0 - a), x)

    namespace: dict = {}
    source = module_source([net.derive("C", "W", n=n, m=n)], names=["grad"])
    exec(compile(source, "<generated>", "exec"), namespace)  # code tensorchain wrote
    generated = namespace["grad"]
    compiled = net.compile_grad("C", wrt=["W"], dims={"n": n, "m": n})
    competitors = [
        Competitor("numpy, by hand", by_hand, lambda r: r),
        Competitor("tensorchain generated numpy", lambda: generated(**v), lambda r: r),
        Competitor("tensorchain compiled", lambda: compiled(v), lambda r: r["W"]),
        Competitor("tensorchain grad", lambda: net.grad("C", "W", v), lambda r: r["W"]),
        Competitor(
            "… grad, check_finite=False",
            lambda: net.grad("C", "W", v, check_finite=False),
            lambda r: r["W"],
        ),
    ]
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy
        xj, yj, Wj, bj = (jnp.asarray(a) for a in (x, y, W, b))

        def loss(W):
            return 0.5 * jnp.sum((jax.nn.sigmoid(W @ xj + bj) - yj) ** 2)

        grad = jax.jit(jax.grad(loss))
        competitors.append(
            Competitor(
                "jax.jit(jax.grad)",
                lambda: jax.block_until_ready(grad(Wj)),
                np.asarray,
                memory=False,
            )
        )
    torch = _torch()
    if torch is not None:
        xt, yt, bt = (torch.tensor(a) for a in (x, y, b))
        Wt = torch.tensor(W, requires_grad=True)

        def autograd():
            loss = 0.5 * ((torch.sigmoid(Wt @ xt + bt) - yt) ** 2).sum()
            return torch.autograd.grad(loss, Wt)[0]

        competitors.append(
            Competitor("torch autograd", autograd, lambda r: r.numpy(), memory=False)
        )
    if with_reshape:
        competitors.append(
            Competitor("reshape method", lambda: tc.reshape_method(net, "C", "W", v), lambda r: r)
        )
    return measure(f"article n=m={n}", competitors, rounds=rounds)


def first_calls(depth: int, batch: int, width: int) -> list[Row]:
    """Parse and the first gradient (every W and b), and parse and the first
    Hessian by W0, against ``jax.jit``'s first call of each (trace and
    compile). Single runs: a first call happens once."""
    from .run import mlp_spec

    spec = mlp_spec(depth, batch, width)
    case = f"first call, MLP depth {depth}, batch {batch}, width {width}"
    rows = []
    for what in ("gradient", "Hessian by W0"):
        start = time.perf_counter()
        net = tc.parse(spec)
        v = net.random_values(seed=0)
        if what == "gradient":
            net.grad("L", values=v)
        else:
            net.hessian("L", "W0", v)
        rows.append(Row(case, f"tensorchain parse + first {what}", time.perf_counter() - start))
    jax = _jax()
    if jax is not None:
        jnp = jax.numpy
        p = {k: jnp.asarray(a) for k, a in v.items()}

        def loss(params, W0):
            a = p["x"]
            for k in range(depth):
                W = W0 if k == 0 else params[f"W{k}"]
                a = jax.nn.sigmoid(a @ W.T + params[f"b{k}"])
            return 0.5 * jnp.sum((a - p["y"]) ** 2)

        start = time.perf_counter()
        jax.block_until_ready(jax.jit(jax.grad(loss, argnums=(0, 1)))(p, p["W0"]))
        rows.insert(1, Row(case, "jax.jit(jax.grad) first call", time.perf_counter() - start))
        start = time.perf_counter()
        jax.block_until_ready(jax.jit(jax.hessian(loss, argnums=1))(p, p["W0"]))
        rows.append(Row(case, "jax.jit(jax.hessian) first call", time.perf_counter() - start))
    base = rows[0].seconds
    for row in rows:
        row.ratio = row.seconds / base
    return rows


def tied_chain(statements: int) -> str:
    """A tanh chain of width 4 whose layers all use one weight W, ending in a
    scalar L: ``statements`` statements in all."""
    lines = ["dim n = 4", "input x[n]", "param W[n, n]"]
    prev = "x"
    for k in range(1, (statements - 1) // 2 + 1):
        lines += [f"z{k}[i] = W[i, j] * {prev}[j]", f"a{k} = tanh(z{k})"]
        prev = f"a{k}"
    return "\n".join([*lines, f"L = sum({prev})"])


def growth(sizes: tuple[int, ...]) -> tuple[list[Row], list[str]]:
    """Parse and the first gradient of the tied tanh chain at each size (one
    run each), and the growth from one size to the next."""
    rows, totals = [], []
    for n in sizes:
        start = time.perf_counter()
        net = tc.parse(tied_chain(n))
        parsed = time.perf_counter()
        v = {k: 0.3 * a for k, a in net.random_values(seed=0).items()}
        net.grad("L", "W", v)
        done = time.perf_counter()
        case = f"tanh chain, tied weight, {n:,} statements"
        rows.append(Row(case, "tensorchain parse", parsed - start))
        rows.append(Row(case, "tensorchain first gradient", done - parsed))
        rows.append(Row(case, "parse + first gradient", done - start))
        totals.append(done - start)
    notes = [
        f"parse + first gradient, {a:,} → {b:,} statements: {tb / ta:.1f} ×"
        for a, b, ta, tb in zip(sizes, sizes[1:], totals, totals[1:], strict=False)
    ]
    return rows, notes


def rows(quick: bool) -> tuple[list[Row], list[str]]:
    from .run import _mlp

    if quick:
        out = article(4, rounds=3)
        out += first_calls(2, 2, 4)
        more, notes = growth((20, 80))
        return out + more, notes
    out = article(4, rounds=21, with_reshape=True) + article(64, rounds=15, with_reshape=True)
    out += _mlp(4, 1, 4, rounds=21)
    out += first_calls(16, 8, 16)
    more, notes = growth((80, 800, 8000))
    return out + more, notes
