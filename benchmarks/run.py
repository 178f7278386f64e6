"""The benchmark cases: the article's network and deep sigmoid MLPs, tensorchain
against hand-written numpy, the reshape method, JAX and PyTorch.

Run ``python -m benchmarks`` (``--quick`` for a fast smoke run, ``--out FILE``
to write the Markdown table). JAX and PyTorch come from the ``bench`` extra and
are skipped with a note when missing. Everything runs in this one process,
pinned to one core with one BLAS thread (``benchmarks.pin_one_core``).
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import platform
import time
from pathlib import Path

import numpy as np

import tensorchain as tc
from tensorchain.reference.reshape import reshape_cost

from . import chains, gather, higher, linalg, models, overhead, products, reshapes, verification
from .harness import Competitor, Row, measure, peak, table


def _article(n: int, with_reshape: bool, rounds: int) -> list[Row]:
    net = tc.parse(tc.ARTICLE)
    v = net.random_values(seed=0, n=n, m=n)
    x, y, W, b = v["x"], v["y"], v["W"], v["b"]

    def by_hand() -> np.ndarray:
        a = 1.0 / (1.0 + np.exp(-(W @ x + b)))
        return np.outer((a - y) * a * (1.0 - a), x)

    compiled = net.compile_grad("C", wrt=["W"], dims={"n": n, "m": n})
    competitors = [
        Competitor("numpy, by hand", by_hand, lambda r: r),
        Competitor("tensorchain grad", lambda: net.grad("C", "W", v), lambda r: r["W"]),
        Competitor("tensorchain compiled", lambda: compiled(v), lambda r: r["W"]),
    ]
    if with_reshape:
        competitors.append(
            Competitor("reshape method", lambda: tc.reshape_method(net, "C", "W", v), lambda r: r)
        )
    return measure(f"article n=m={n}", competitors, rounds=rounds)


def _article_large(n: int) -> list[Row]:
    net = tc.parse(tc.ARTICLE)
    v = net.random_values(seed=0, n=n, m=n)
    net.grad("C", "W", v)  # compile
    start = time.perf_counter()
    g = net.grad("C", "W", v)["W"]
    seconds = time.perf_counter() - start
    bytes_ = peak(lambda: net.grad("C", "W", v))
    a = 1.0 / (1.0 + np.exp(-(v["W"] @ v["x"] + v["b"])))
    error = float(np.abs(g - np.outer((a - v["y"]) * a * (1 - a), v["x"])).max())
    cost = reshape_cost(net, "C", "W", net.sizes(v))
    w_mib = v["W"].nbytes / 2**20
    return [
        Row(
            f"article n=m={n}",
            "tensorchain grad",
            seconds,
            bytes_,
            error,
            note=f"peak = {bytes_ / 2**20 / w_mib:.2f} × size of W ({w_mib:.0f} MiB)",
        ),
        Row(
            f"article n=m={n}",
            "reshape method (forecast, not run)",
            None,
            cost.largest * 8,
            note=f"{cost.flops:.3g} FLOPs; its n×(n·m) matrix alone is"
            f" {cost.largest * 8 / 2**30:.0f} GiB",
        ),
    ]


def logistic_regression(samples: int, features: int) -> tuple[tc.Network, dict]:
    """The logistic regression loss and values: labels 0 or 1, weights scaled
    to keep p inside (0, 1) in float64."""
    net = tc.parse(
        f"dim s = {samples}\ndim f = {features}\ninput X[s, f]\ninput y[s]\nparam w[f]\n"
        "z[n] = X[n, j] * w[j]\np = sigmoid(z)\nL = -sum(y * log(p) + (1 - y) * log(1 - p))\n"
    )
    v = net.random_values(seed=0)
    v["y"] = (v["y"] > 0).astype(float)
    v["w"] = v["w"] / np.sqrt(features)
    return net, v


def mlp_spec(depth: int, batch: int, width: int) -> str:
    lines = [f"dim B = {batch}", f"dim w = {width}", "input x[B, w]", "input y[B, w]"]
    prev = "x"
    for k in range(depth):
        lines += [
            f"param W{k}[w, w]",
            f"param b{k}[w]",
            f"z{k}[s, i] = W{k}[i, j] * {prev}[s, j] + b{k}[i]",
            f"a{k} = sigmoid(z{k})",
        ]
        prev = f"a{k}"
    lines.append(f"L = 0.5 * sum(({prev} - y) ^ 2)")
    return "\n".join(lines)


def _flat(grads: dict, depth: int) -> np.ndarray:
    return np.concatenate(
        [np.ravel(np.asarray(grads[f"{p}{k}"])) for k in range(depth) for p in ("W", "b")]
    )


def _mlp(depth: int, batch: int, width: int, rounds: int) -> list[Row]:
    net = tc.parse(mlp_spec(depth, batch, width))
    v = net.random_values(seed=0)
    x, y = v["x"], v["y"]

    def backprop() -> dict:
        acts = [x]
        for k in range(depth):
            acts.append(1.0 / (1.0 + np.exp(-(acts[-1] @ v[f"W{k}"].T + v[f"b{k}"]))))
        grads = {}
        delta = acts[-1] - y
        for k in reversed(range(depth)):
            delta = delta * acts[k + 1] * (1.0 - acts[k + 1])
            grads[f"W{k}"] = delta.T @ acts[k]
            grads[f"b{k}"] = delta.sum(axis=0)
            if k:
                delta = delta @ v[f"W{k}"]
        return grads

    compiled = net.compile_grad("L", dims={})
    flat = lambda r: _flat(r, depth)  # noqa: E731
    generated = _generated(net, depth)
    competitors = [
        Competitor("numpy backprop, by hand", backprop, flat),
        Competitor("tensorchain grad", lambda: net.grad("L", values=v), flat),
        Competitor("tensorchain compiled", lambda: compiled(v), flat),
        Competitor("tensorchain generated numpy", lambda: generated(v), flat),
    ]
    notes = []
    if importlib.util.find_spec("jax") is not None:
        competitors.append(_jax_mlp(v, depth))
    else:
        notes.append("jax not installed (pip install '.[bench]')")
    if importlib.util.find_spec("torch") is not None:
        competitors.append(_torch_mlp(v, depth))
    else:
        notes.append("torch not installed (pip install '.[bench]')")
    rows = measure(f"MLP depth {depth}, batch {batch}, width {width}", competitors, rounds=rounds)
    if notes:
        rows[0].note = "; ".join(notes)
    return rows


def _generated(net: tc.Network, depth: int):
    """The numpy function tensorchain writes for every param's gradient at once
    (``tensorchain derive --emit python``)."""
    from tensorchain.presentation.derivation import module_source

    params = [f"{p}{k}" for k in range(depth) for p in ("W", "b")]
    source = module_source([net.derive("L", p) for p in params], names=["grads"], joint=True)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # code tensorchain wrote
    return lambda v: namespace["grads"](**v)


def _jax_mlp(v: dict, depth: int) -> Competitor:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    params = [(jnp.asarray(v[f"W{k}"]), jnp.asarray(v[f"b{k}"])) for k in range(depth)]
    x, y = jnp.asarray(v["x"]), jnp.asarray(v["y"])

    def loss(params, x, y):
        a = x
        for W, b in params:
            a = jax.nn.sigmoid(a @ W.T + b)
        return 0.5 * jnp.sum((a - y) ** 2)

    grad = jax.jit(jax.grad(loss))

    def run():
        return jax.block_until_ready(grad(params, x, y))

    def result(r):
        return np.concatenate([np.ravel(np.asarray(t)) for pair in r for t in pair])

    return Competitor("jax.jit(jax.grad)", run, result, memory=False)


def _torch_mlp(v: dict, depth: int) -> Competitor:
    import torch

    torch.set_num_threads(1)
    params = []
    for k in range(depth):
        params += [
            torch.tensor(v[f"W{k}"], requires_grad=True),
            torch.tensor(v[f"b{k}"], requires_grad=True),
        ]
    x, y = torch.tensor(v["x"]), torch.tensor(v["y"])

    def run():
        a = x
        for k in range(depth):
            a = torch.sigmoid(a @ params[2 * k].T + params[2 * k + 1])
        loss = 0.5 * ((a - y) ** 2).sum()
        return torch.autograd.grad(loss, params)

    def result(r):
        return np.concatenate([t.detach().numpy().ravel() for t in r])

    return Competitor("torch autograd", run, result, memory=False)


def _hessians(n_quad: int, samples: int, features: int, n_article: int, rounds: int) -> list[Row]:
    """Dense Hessians against the closed form (and JAX, PyTorch), the article's
    structured Hessian, and a Hessian-vector product."""
    rows: list[Row] = []
    have_jax = importlib.util.find_spec("jax") is not None
    have_torch = importlib.util.find_spec("torch") is not None

    quad = tc.parse(f"dim n = {n_quad}\ninput x[n]\nparam A[n, n]\nf = x[i] * A[i, j] * x[j]")
    v = quad.random_values(seed=0)
    competitors = [
        Competitor("numpy closed form A + Aᵀ", lambda: v["A"] + v["A"].T, lambda r: r),
        Competitor(
            "tensorchain hessian .array", lambda: quad.hessian("f", "x", v).array, lambda r: r
        ),
    ]
    if have_jax:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        A, x = jnp.asarray(v["A"]), jnp.asarray(v["x"])
        h = jax.jit(jax.hessian(lambda x, A: x @ A @ x))
        competitors.append(
            Competitor(
                "jax.jit(jax.hessian)",
                lambda: jax.block_until_ready(h(x, A)),
                np.asarray,
                memory=False,
            )
        )
    if have_torch:
        import torch
        from torch.func import hessian

        At, xt = torch.tensor(v["A"]), torch.tensor(v["x"])
        competitors.append(
            Competitor(
                "torch.func.hessian",
                lambda: hessian(lambda x: x @ At @ x)(xt),
                lambda r: r.numpy(),
                memory=False,
            )
        )
    rows += measure(f"Hessian of xᵀAx, n={n_quad}", competitors, rounds=rounds)

    logistic, v = logistic_regression(samples, features)
    X = v["X"]

    def closed():
        p = 1.0 / (1.0 + np.exp(-(X @ v["w"])))
        return (X.T * (p * (1.0 - p))) @ X

    competitors = [
        Competitor("numpy closed form Xᵀ diag(p(1−p)) X", closed, lambda r: r),
        Competitor(
            "tensorchain hessian .array", lambda: logistic.hessian("L", "w", v).array, lambda r: r
        ),
    ]
    if have_jax:
        Xj, yj, wj = (jnp.asarray(v[k]) for k in ("X", "y", "w"))

        def loss(w):
            p = jax.nn.sigmoid(Xj @ w)
            return -jnp.sum(yj * jnp.log(p) + (1 - yj) * jnp.log(1 - p))

        hl = jax.jit(jax.hessian(loss))
        competitors.append(
            Competitor(
                "jax.jit(jax.hessian)",
                lambda: jax.block_until_ready(hl(wj)),
                np.asarray,
                memory=False,
            )
        )
    rows += measure(
        f"Hessian, logistic regression {samples}×{features}", competitors, rounds=rounds
    )

    net = tc.parse(tc.ARTICLE)
    v = net.random_values(seed=0, n=n_article, m=n_article)
    competitors = [Competitor("tensorchain hessian (structured)", lambda: net.hessian("C", "W", v))]
    if have_jax:
        Wj, bj, xj, yj = (jnp.asarray(v[k]) for k in ("W", "b", "x", "y"))
        ha = jax.jit(jax.hessian(lambda W: 0.5 * jnp.sum((jax.nn.sigmoid(W @ xj + bj) - yj) ** 2)))
        competitors.append(
            Competitor(
                "jax.jit(jax.hessian) (dense)", lambda: jax.block_until_ready(ha(Wj)), memory=False
            )
        )
    rows += measure(f"article Hessian by W, n=m={n_article}", competitors, rounds=rounds)
    return rows


def _hvp(depth: int, batch: int, width: int, rounds: int) -> list[Row]:
    """A Hessian-vector product by W0 on the sigmoid MLP, against JAX's
    forward-over-reverse ``jvp(grad)``."""
    net = tc.parse(mlp_spec(depth, batch, width))
    v = net.random_values(seed=0)
    vector = np.random.default_rng(1).standard_normal(v["W0"].shape)
    competitors = []
    if importlib.util.find_spec("jax") is not None:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        params = {k: jnp.asarray(a) for k, a in v.items()}

        def loss(W0):
            a = params["x"]
            for k in range(depth):
                W = W0 if k == 0 else params[f"W{k}"]
                a = jax.nn.sigmoid(a @ W.T + params[f"b{k}"])
            return 0.5 * jnp.sum((a - params["y"]) ** 2)

        hvp = jax.jit(lambda w, t: jax.jvp(jax.grad(loss), (w,), (t,))[1])
        w0, t0 = params["W0"], jnp.asarray(vector)
        competitors.append(
            Competitor(
                "jax.jit(jvp(grad))",
                lambda: jax.block_until_ready(hvp(w0, t0)),
                np.asarray,
                memory=False,
            )
        )
    competitors.append(
        Competitor("tensorchain hvp", lambda: net.hvp("L", "W0", vector, v), lambda r: r)
    )
    rows = measure(
        f"Hessian-vector product by W0, MLP depth {depth}, batch {batch}, width {width}",
        competitors,
        rounds=rounds,
    )
    if len(competitors) == 1:
        rows[0].note = "jax not installed (pip install '.[bench]'): no baseline"
    return rows


def machine() -> str:
    model = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    versions = [f"Python {platform.python_version()}", f"numpy {np.__version__}"]
    for name in ("opt_einsum", "jax", "torch"):
        if importlib.util.find_spec(name) is not None:
            versions.append(f"{name} {importlib.import_module(name).__version__}")
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    pinning = "pinned to one core" if cores == 1 else f"{cores} cores, not pinned"
    blas = os.environ.get("OPENBLAS_NUM_THREADS", "default")
    return f"{model}; {pinning}; BLAS threads: {blas}; float64; " + ", ".join(versions)


#: Groups of cases ``--only`` selects: the per-call overhead and first calls
#: (issue 20), large gradients, second and higher order, linear algebra,
#: verification, products, gathers, reshapes, models, chain orders.
GROUPS = (
    "overhead",
    "large",
    "second",
    "linalg",
    "verification",
    "products",
    "gather",
    "reshapes",
    "models",
    "chains",
)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--quick", action="store_true", help="small sizes, few rounds (a smoke run)"
    )
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    parser.add_argument(
        "--only",
        choices=GROUPS,
        action="append",
        help="run only this group of cases (repeat for several; default: all)",
    )
    args = parser.parse_args(argv)
    quick, only = args.quick, set(args.only or GROUPS)
    rows: list[Row] = []
    notes: list[str] = []
    if "overhead" in only:
        more, lines = overhead.rows(quick)
        rows, notes = rows + more, notes + lines
    if "large" in only:
        if quick:
            rows += _mlp(2, 8, 16, rounds=3)
        else:
            rows += _article(512, True, rounds=3)
            rows += _article_large(4096)
            for depth in (4, 16):
                rows += _mlp(depth, 256, 512, rounds=9)
    if "second" in only:
        if quick:
            rows += _hessians(8, 16, 4, 4, rounds=2)
            rows += _hvp(2, 8, 16, rounds=2)
        else:
            rows += _hessians(2048, 2048, 256, 64, rounds=5)
            rows += _hvp(4, 256, 512, rounds=5)
        rows += higher.rows(quick=quick)
    for group in (linalg, verification, products, gather, reshapes, models):
        if group.__name__.rsplit(".", 1)[-1] in only:
            rows += group.rows(quick=quick)
    if "chains" in only:
        more, lines = chains.report(quick=quick)
        rows, notes = rows + more, notes + lines
    text = f"Machine: {machine()}\n\n{table(rows)}\n\n" + "\n".join(notes) + "\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0
