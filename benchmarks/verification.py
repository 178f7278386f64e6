"""Checking a user's own gradient (issue 19): ``tc.check_gradient`` on a
two-layer MLP whose hand-written numpy backward has one wrong entry, against
``torch.autograd.gradcheck`` of the same function (a custom
``torch.autograd.Function`` whose backward is that numpy code), in float64;
and in float32, an error of 1e-4 times the gradient's largest entry, which
tensorchain's check catches and float32 finite differences cannot separate
from their own error.

tensorchain's checks are timed from a fresh parse (a check runs once, and
its first call is what it costs): the numbers include compiling the
gradient for the sizes (the median of 3, after one untimed warm-up).
gradcheck is timed once.
"""

from __future__ import annotations

import importlib.util
import statistics
import time
import warnings

import numpy as np

import tensorchain as tc

from .harness import Row

NAMES = ("W1", "b1", "W2", "b2")


def spec(batch: int, width: int) -> str:
    return f"""\
dim B = {batch}
dim w = {width}
input x[B, w]
input y[B, w]
param W1[w, w]
param b1[w]
param W2[w, w]
param b2[w]
z1[s, i] = W1[i, j] * x[s, j] + b1[i]
a1 = sigmoid(z1)
z2[s, i] = W2[i, j] * a1[s, j] + b2[i]
L = sum((z2 - y) ^ 2)
"""


def backward(v: dict) -> dict:
    """The hand-written backward pass (numpy, any float dtype)."""
    x, y, W1, b1, W2, b2 = (v[k] for k in ("x", "y", *NAMES))
    a1 = 1 / (1 + np.exp(-(x @ W1.T + b1)))
    dz2 = 2 * (a1 @ W2.T + b2 - y)
    dz1 = dz2 @ W2 * a1 * (1 - a1)
    return {"W1": dz1.T @ x, "b1": dz1.sum(0), "W2": dz2.T @ a1, "b2": dz2.sum(0)}


def one_wrong(index: tuple[int, int], relative: float):
    """``backward`` with W1's gradient wrong at ``index`` by ``relative`` times
    the gradient's largest entry (the entry chosen in advance, like a bug)."""

    def wrong(v: dict) -> dict:
        g = backward(v)
        g["W1"][index] += relative * np.abs(g["W1"]).max()
        return g

    return wrong


def _check(batch: int, width: int, fn, dtype, rounds: int = 3):
    """The median time of ``rounds`` checks, each from a fresh parse (its
    compiling included), after one untimed check (the process's first
    passes through numpy, BLAS and the library's code); the last result."""
    times = []
    for k in range(rounds + 1):
        start = time.perf_counter()
        net = tc.parse(spec(batch, width))
        result = tc.check_gradient(fn, net, "L", dims={"B": batch, "w": width}, dtype=dtype)
        if k:
            times.append(time.perf_counter() - start)
    return statistics.median(times), result


def _torch_function(fn):
    """The loss as a ``torch.autograd.Function`` whose backward is ``fn``."""
    import torch

    class Loss(torch.autograd.Function):
        @staticmethod
        def forward(ctx, x, y, W1, b1, W2, b2):
            ctx.save_for_backward(x, y, W1, b1, W2, b2)
            a1 = torch.sigmoid(x @ W1.T + b1)
            return ((a1 @ W2.T + b2 - y) ** 2).sum()

        @staticmethod
        def backward(ctx, grad):
            saved = zip(("x", "y", *NAMES), ctx.saved_tensors, strict=True)
            values = {k: t.detach().numpy() for k, t in saved}
            g = fn(values)
            return None, None, *(grad * torch.from_numpy(g[k]) for k in NAMES)

    return Loss.apply


def _inputs(batch: int, width: int, dtype):
    import torch

    v = tc.parse(spec(batch, width)).random_values(seed=0)
    return tuple(
        torch.tensor(v[k].astype(dtype), requires_grad=k in NAMES) for k in ("x", "y", *NAMES)
    )


def _gradcheck(fn, inputs, **options) -> tuple[float, bool]:
    import torch

    start = time.perf_counter()
    with warnings.catch_warnings():  # float32 inputs: gradcheck warns that it will likely fail
        warnings.simplefilter("ignore", UserWarning)
        ok = torch.autograd.gradcheck(_torch_function(fn), inputs, raise_exception=False, **options)
    return time.perf_counter() - start, ok


def speed(batch: int, width: int) -> list[Row]:
    """One wrong entry found and named by check_gradient, against gradcheck (float64)."""
    case = f"check a hand-written backward, MLP 2 layers, batch {batch}, width {width}"
    index = (3 % width, 5 % width)
    wrong = one_wrong(index, 1e-3)  # large enough for gradcheck's tolerances too
    seconds, found = _check(batch, width, wrong, np.float64)
    named = [e[0] for m in found.mismatches for e in m.entries]
    rows = [
        Row(
            case,
            "tc.check_gradient, one wrong entry (float64)",
            seconds,
            note=f"found: {not found.ok}; named W1{list(named[0]) if named else '—'}"
            f" (wrong at W1{list(index)}); {found.examples} example(s)",
            ratio=1.0,
        )
    ]
    seconds, passed = _check(batch, width, backward, np.float64)
    rows.append(
        Row(
            case,
            "tc.check_gradient, the correct backward (float64)",
            seconds,
            note=f"passed: {passed.ok}; {passed.examples} examples",
            ratio=seconds / rows[0].seconds,
        )
    )
    if importlib.util.find_spec("torch") is None:
        rows[0].note += "; torch not installed (pip install '.[bench]'): no gradcheck"
        return rows
    import torch

    torch.set_num_threads(1)
    inputs = _inputs(batch, width, np.float64)
    seconds, ok = _gradcheck(wrong, inputs)
    rows.append(
        Row(
            case,
            "torch.autograd.gradcheck (float64)",
            seconds,
            note=f"found: {not ok}; says only that some entry differs",
            ratio=seconds / rows[0].seconds,
        )
    )
    seconds, ok = _gradcheck(wrong, inputs, fast_mode=True)
    rows.append(
        Row(
            case,
            "torch.autograd.gradcheck fast_mode (float64)",
            seconds,
            note=f"found: {not ok}; one random projection: pass or fail only",
            ratio=seconds / rows[0].seconds,
        )
    )
    return rows


def float32(batch: int, width: int, small: tuple[int, int]) -> list[Row]:
    """An error of 1e-4 · max |g| in float32: tensorchain's check against the
    error of float32 central differences (gradcheck's numerical Jacobian)."""
    index = (3 % width, 5 % width)
    wrong = one_wrong(index, 1e-4)
    case = f"float32, one entry wrong by 1e-4 · g_max, batch {batch}, width {width}"
    seconds, found = _check(batch, width, wrong, np.float32)
    _, correct = _check(batch, width, backward, np.float32)
    tol = correct.tolerance["W1"]
    rows = [
        Row(
            case,
            "tc.check_gradient (float32 against exact float64)",
            seconds,
            note=f"wrong entry found: {not found.ok}; correct code passes: {correct.ok};"
            f" tolerance on W1: {tol.rtol:.0e} · magnitude + {tol.atol:.0e} · g_max",
            ratio=1.0,
        )
    ]
    noise = _differences_noise(batch, width, index)
    rows.append(
        Row(
            case,
            "central differences in float32 (as gradcheck)",
            None,
            note=f"their error on W1's entries, at the best of eps = 1e-2 … 1e-4:"
            f" {noise:.1e} · g_max, {'above' if noise > 1e-4 else 'below'} the"
            " 1e-4 · g_max to find",
        )
    )
    if importlib.util.find_spec("torch") is None:
        return rows
    b, w = small
    wrong_small = one_wrong((3 % w, 5 % w), 1e-4)
    inputs = _inputs(b, w, np.float32)
    found, separated = [], False
    for eps in (1e-2, 1e-3):
        passing = None
        for tol in (1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 0.1, 0.3, 1.0, 3.0):
            ok_correct = _gradcheck(backward, inputs, eps=eps, atol=tol, rtol=tol)[1]
            ok_wrong = _gradcheck(wrong_small, inputs, eps=eps, atol=tol, rtol=tol)[1]
            separated |= ok_correct and not ok_wrong
            if ok_correct:
                passing = (tol, ok_wrong)
                break
        if passing is None:
            found.append(f"eps {eps:g}: the correct code fails at every atol = rtol up to 3")
        else:
            tol, ok_wrong = passing
            found.append(
                f"eps {eps:g}: the correct code passes from atol = rtol = {tol:g}, where the"
                f" wrong one {'passes too' if ok_wrong else 'fails'}"
            )
    verdict = "" if separated else "; no eps and tolerance pass the correct and fail the wrong"
    rows.append(
        Row(
            f"float32, one entry wrong by 1e-4 · g_max, batch {b}, width {w}",
            "torch.autograd.gradcheck (float32)",
            None,
            note="; ".join(found) + verdict,
        )
    )
    return rows


def _differences_noise(batch: int, width: int, index: tuple[int, int]) -> float:
    """The largest error of float32 central differences of the loss by 64
    entries of W1 (the wrong one among them), relative to max |g|, at the
    best step of 1e-2, 1e-3 and 1e-4."""
    net = tc.parse(spec(batch, width))
    v = {k: a.astype(np.float32) for k, a in net.random_values(seed=0).items()}
    exact = net.grad("L", "W1", {k: a.astype(np.float64) for k, a in v.items()})["W1"]
    scale = np.abs(exact).max()
    rng = np.random.default_rng(0)
    entries = [index] + [tuple(rng.integers(0, width, 2)) for _ in range(63)]

    def loss(W1: np.ndarray) -> np.float32:
        a1 = 1 / (1 + np.exp(-(v["x"] @ W1.T + v["b1"])))
        return np.sum((a1 @ v["W2"].T + v["b2"] - v["y"]) ** 2, dtype=np.float32)

    best = np.inf
    for eps in (1e-2, 1e-3, 1e-4):
        worst = 0.0
        for i, j in entries:
            plus, minus = v["W1"].copy(), v["W1"].copy()
            plus[i, j] += np.float32(eps)
            minus[i, j] -= np.float32(eps)
            step = float(plus[i, j]) - float(minus[i, j])  # the step float32 made
            fd = (float(loss(plus)) - float(loss(minus))) / step
            worst = max(worst, abs(fd - exact[i, j]) / scale)
        best = min(best, worst)
    return best


def rows(quick: bool) -> list[Row]:
    for library in ("hypothesis", "torch"):  # imported once per process: not timed
        if importlib.util.find_spec(library) is not None:
            importlib.import_module(library)
    if quick:
        return speed(4, 8) + float32(4, 8, (2, 4))
    return speed(64, 256) + float32(64, 256, (16, 32))
