"""tensorchain on torch values, on the GPU when there is one.

    python -m benchmarks.devices [--device cuda] [--dtype float32] [--quick] [--out FILE]

Every competitor runs on the same device, in the same process, with the
same values; a GPU competitor is timed up to ``torch.cuda.synchronize()``.
The baseline of each case is torch itself (autograd, or ``torch.func``),
and tensorchain on numpy (the CPU) is a row of its own for scale. Cases: the
MLP gradient of ``python -m benchmarks`` (depth 4, batch 256, width 512)
and two dense Hessians (xᵀAx, logistic regression). Needs torch and
array-api-compat (``pip install '.[torch,bench]'``).
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure, table
from .run import _flat, logistic_regression, mlp_spec


def _sync(device: str):
    import torch

    if device.startswith("cuda"):
        return torch.cuda.synchronize
    return lambda: None


def _on(values: dict, device: str, dtype) -> dict:
    import torch

    return {
        k: torch.as_tensor(np.asarray(a), dtype=dtype, device=device) for k, a in values.items()
    }


def _numpy(r) -> np.ndarray:
    return r.detach().cpu().numpy() if hasattr(r, "detach") else np.asarray(r)


def mlp(device: str, dtype, depth: int, batch: int, width: int, rounds: int) -> list[Row]:
    import torch

    net = tc.parse(mlp_spec(depth, batch, width))
    v = net.random_values(seed=0)
    tv = _on(v, device, dtype)
    sync = _sync(device)
    params = []
    for k in range(depth):
        params += [tv[f"W{k}"].clone().requires_grad_(), tv[f"b{k}"].clone().requires_grad_()]

    def autograd():
        a = tv["x"]
        for k in range(depth):
            a = torch.sigmoid(a @ params[2 * k].T + params[2 * k + 1])
        out = torch.autograd.grad(0.5 * ((a - tv["y"]) ** 2).sum(), params)
        sync()
        return {f"{p}{k}": out[2 * k + (p == "b")] for k in range(depth) for p in ("W", "b")}

    def grad():
        g = net.grad("L", values=tv)
        sync()
        return g

    compiled = net.compile_grad("L", dims={})

    def replay():
        g = compiled(tv, check_finite=False)
        sync()
        return g

    flat = lambda r: _flat({k: _numpy(a) for k, a in r.items()}, depth)  # noqa: E731
    competitors = [
        Competitor(f"torch autograd ({device})", autograd, flat, memory=False),
        Competitor(f"tensorchain grad, torch values ({device})", grad, flat, memory=False),
        Competitor(f"tensorchain compiled, torch values ({device})", replay, flat, memory=False),
        Competitor("tensorchain grad, numpy (CPU)", lambda: net.grad("L", values=v), flat),
    ]
    return measure(f"MLP depth {depth}, batch {batch}, width {width}", competitors, rounds=rounds)


def hessians(device: str, dtype, n: int, samples: int, features: int, rounds: int) -> list[Row]:
    import torch
    from torch.func import hessian

    sync = _sync(device)
    rows: list[Row] = []
    quad = tc.parse(f"dim n = {n}\ninput x[n]\nparam A[n, n]\nf = x[i] * A[i, j] * x[j]")
    v = quad.random_values(seed=0)
    tv = _on(v, device, dtype)

    def timed(fn):
        def run():
            r = fn()
            sync()
            return r

        return run

    competitors = [
        Competitor(
            f"torch.func.hessian ({device})",
            timed(lambda: hessian(lambda x: x @ tv["A"] @ x)(tv["x"])),
            _numpy,
            memory=False,
        ),
        Competitor(
            f"tensorchain hessian .array, torch values ({device})",
            timed(lambda: quad.hessian("f", "x", tv).array),
            _numpy,
            memory=False,
        ),
        Competitor("closed form A + Aᵀ, numpy (CPU)", lambda: v["A"] + v["A"].T, _numpy),
    ]
    rows += measure(f"Hessian of xᵀAx, n={n}", competitors, rounds=rounds)

    logistic, v = logistic_regression(samples, features)
    tv = _on(v, device, dtype)

    def loss(w):
        p = torch.sigmoid(tv["X"] @ w)
        return -torch.sum(tv["y"] * torch.log(p) + (1 - tv["y"]) * torch.log(1 - p))

    competitors = [
        Competitor(
            f"torch.func.hessian ({device})", timed(lambda: hessian(loss)(tv["w"])), _numpy, False
        ),
        Competitor(
            f"tensorchain hessian .array, torch values ({device})",
            timed(lambda: logistic.hessian("L", "w", tv).array),
            _numpy,
            memory=False,
        ),
        Competitor(
            "tensorchain hessian .array, numpy (CPU)",
            lambda: logistic.hessian("L", "w", v).array,
            _numpy,
        ),
    ]
    rows += measure(
        f"Hessian, logistic regression {samples}×{features}", competitors, rounds=rounds
    )
    return rows


def card(device: str) -> str:
    import torch

    if device.startswith("cuda"):
        props = torch.cuda.get_device_properties(torch.device(device))
        return f"{props.name}, {props.total_memory / 2**30:.0f} GiB; torch {torch.__version__}"
    return f"CPU ({device}); torch {torch.__version__}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.devices", description=__doc__)
    parser.add_argument("--device", default=None, help="a torch device (default: cuda if any)")
    parser.add_argument("--dtype", default="float64", choices=["float64", "float32"])
    parser.add_argument("--quick", action="store_true", help="small sizes, few rounds")
    parser.add_argument("--out", type=Path, help="also write the Markdown table to this file")
    args = parser.parse_args(argv)
    import torch

    device = args.device or ("cuda" if torch.cuda.is_available() else "cpu")
    dtype = getattr(torch, args.dtype)
    if args.quick:
        rows = mlp(device, dtype, 2, 8, 16, rounds=2) + hessians(device, dtype, 16, 32, 8, rounds=2)
    else:
        rows = mlp(device, dtype, 4, 256, 512, rounds=9)
        rows += hessians(device, dtype, 2048, 2048, 256, rounds=9)
    text = f"Device: {card(device)}; {args.dtype}\n\n{table(rows)}\n"
    print(text)
    if args.out:
        args.out.write_text(text, encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
