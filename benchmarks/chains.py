"""Chain orders (issue 5): the optimal order against forward and reverse on
random Jacobian chains, the wide–narrow explicit Jacobian against JAX and
numpy by hand, and the planning time of a 16-layer chain."""

from __future__ import annotations

import importlib.util
import statistics
import time

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure


def tanh_chain_spec(widths: list[int]) -> str:
    lines = [f"dim w{k} = {w}" for k, w in enumerate(widths)] + ["input x[w0]"]
    prev = "x"
    for k in range(1, len(widths)):
        lines += [f"param W{k}[w{k}, w{k - 1}]", f"z{k}[i] = W{k}[i, j] * {prev}[j]"]
        lines.append(f"a{k} = tanh(z{k})")
        prev = f"a{k}"
    return "\n".join(lines)


def random_chains(count: int, seed: int = 0) -> list[list[int]]:
    """Widths of ``count`` chains: 3 to 12 layers, each width drawn from 5 to 500
    (log-uniform, so that wide–narrow patterns are common)."""
    rng = np.random.default_rng(seed)
    chains = []
    for _ in range(count):
        layers = int(rng.integers(3, 13))
        widths = np.exp(rng.uniform(np.log(5), np.log(500), layers + 1)).astype(int)
        chains.append([int(w) for w in widths])
    return chains


def order_ratios(count: int, execute: int) -> tuple[list[str], dict]:
    """FLOPs of the better pure mode over the optimal order's, on random chains;
    wall-clock of both executed on the first ``execute`` chains."""
    flop_ratios, wall_ratios = [], []
    for k, widths in enumerate(random_chains(count)):
        net = tc.parse(tanh_chain_spec(widths))
        out = f"a{len(widths) - 1}"
        plans = {o: net.plan(out, "x", order=o) for o in ("optimal", "forward", "reverse")}
        pure = min(("forward", "reverse"), key=lambda o: plans[o].flops)
        flop_ratios.append(plans[pure].flops / plans["optimal"].flops)
        if k < execute:
            v = net.random_values(seed=k)
            times = {}
            for o in ("optimal", pure):
                plans[o](v)  # compile
                runs = []
                for _ in range(5):
                    start = time.perf_counter()
                    plans[o](v)
                    runs.append(time.perf_counter() - start)
                times[o] = statistics.median(runs)
            wall_ratios.append(times[pure] / times["optimal"])
    summary = {
        "median": statistics.median(flop_ratios),
        "max": max(flop_ratios),
        "never worse": all(r >= 1 for r in flop_ratios),
        "wall median": statistics.median(wall_ratios) if wall_ratios else None,
        "wall max": max(wall_ratios) if wall_ratios else None,
    }
    lines = [
        f"random chains: {count} (3–12 layers, widths 5–500, seed 0)",
        f"  better pure mode / optimal, FLOPs: median {summary['median']:.2f},"
        f" max {summary['max']:.2f}; optimal never worse: {summary['never worse']}",
    ]
    if wall_ratios:
        lines.append(
            f"  wall clock, executed on numpy ({len(wall_ratios)} chains): median"
            f" {summary['wall median']:.2f}, max {summary['wall max']:.2f}"
        )
    return lines, summary


def wide_narrow(layers: int, wide: int, narrow: int, rounds: int) -> list[Row]:
    """The explicit Jacobian of ``layers`` tanh layers whose widths alternate
    ``wide``, ``narrow``, ..., ``wide`` (``layers`` even)."""
    widths = [wide if k % 2 == 0 else narrow for k in range(layers + 1)]
    net = tc.parse(tanh_chain_spec(widths))
    out = f"a{layers}"
    v = net.random_values(seed=0)
    W = [v[f"W{k}"] for k in range(1, layers + 1)]

    def local_factors() -> list[np.ndarray]:
        a, out = v["x"], []
        for Wk in W:
            a = np.tanh(Wk @ a)
            out.append((1 - a * a)[:, None] * Wk)  # diag(tanh') W_k
        return out

    def numpy_reverse() -> np.ndarray:
        M = local_factors()
        J = M[-1]
        for Mk in reversed(M[:-1]):
            J = J @ Mk
        return J

    def numpy_best() -> np.ndarray:
        # Narrow products first: M_{k+1} M_k with a wide inner index is narrow × narrow.
        M = local_factors()
        inner = M[0]  # narrow × wide
        for k in range(1, layers - 1, 2):
            inner = (M[k + 1] @ M[k]) @ inner
        return M[-1] @ inner

    plans = {o: net.plan(out, "x", order=o) for o in ("optimal", "reverse")}
    competitors = [
        Competitor("numpy, best order by hand", numpy_best, lambda r: r),
        Competitor("numpy, reverse order", numpy_reverse, lambda r: r),
        Competitor("tensorchain plan, optimal", lambda: plans["optimal"](v).array, lambda r: r),
        Competitor(
            "… check_finite=False",
            lambda: plans["optimal"](v, check_finite=False).array,
            lambda r: r,
        ),
        Competitor("tensorchain plan, reverse", lambda: plans["reverse"](v).array, lambda r: r),
    ]
    if importlib.util.find_spec("jax") is not None:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        Wj = [jnp.asarray(Wk) for Wk in W]
        xj = jnp.asarray(v["x"])

        def f(x):
            for Wk in Wj:
                x = jnp.tanh(Wk @ x)
            return x

        for name, transform in (("jacrev", jax.jacrev), ("jacfwd", jax.jacfwd)):
            jitted = jax.jit(transform(f))
            competitors.append(
                Competitor(
                    f"jax.jit(jax.{name})",
                    lambda jitted=jitted: jax.block_until_ready(jitted(xj)),
                    np.asarray,
                    memory=False,
                )
            )
    case = f"explicit Jacobian, {layers} tanh layers {wide}↔{narrow}"
    rows = measure(case, competitors, rounds=rounds)
    rows[2].note = f"{plans['optimal'].flops:,} FLOPs"
    rows[4].note = f"{plans['reverse'].flops:,} FLOPs"
    return rows


def planning_time(layers: int) -> str:
    widths = [64 if k % 2 == 0 else 8 for k in range(layers + 1)]
    net = tc.parse(tanh_chain_spec(widths))
    runs = []
    for _ in range(5):
        start = time.perf_counter()
        net.plan(f"a{layers}", "x", order="optimal")
        runs.append(time.perf_counter() - start)
    median = statistics.median(runs) * 1e3
    return f"planning a {layers}-layer chain with order='optimal': {median:.1f} ms"


def report(quick: bool) -> tuple[list[Row], list[str]]:
    if quick:
        lines, _ = order_ratios(6, execute=2)
        return wide_narrow(4, 40, 4, rounds=2), [*lines, planning_time(4)]
    lines, _ = order_ratios(200, execute=30)
    return wide_narrow(8, 1000, 10, rounds=41), [*lines, planning_time(16)]
