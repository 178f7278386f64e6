"""Products of derivatives (issue 7): per-sample gradient norms, the clipped
gradient sum of DP-SGD and the neural tangent kernel of tanh MLPs, against
``jax.vmap(jax.grad)``, ``torch.func.vmap(grad)``, JAX's Jacobian-contraction
NTK and numpy written by hand (materialised and structured)."""

from __future__ import annotations

import importlib.util

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure


def mlp_spec(widths: list[int], batch: int, per_sample: bool = True) -> str:
    """A tanh MLP ``widths[0] → ... → widths[-1]`` (linear last layer) on a
    batch; ``L[s] = ½ Σ_k (out[s, k] − y[s, k])²`` per sample."""
    lines = [f"dim B = {batch}"]
    lines += [f"dim w{k} = {w}" for k, w in enumerate(widths)]
    lines += ["input x[B, w0]", f"input y[B, w{len(widths) - 1}]"]
    prev = "x"
    for k in range(1, len(widths)):
        lines += [f"param W{k}[w{k}, w{k - 1}]", f"param b{k}[w{k}]"]
        z = "out" if k == len(widths) - 1 else f"z{k}"
        lines.append(f"{z}[s, i] = W{k}[i, j] * {prev}[s, j] + b{k}[i]")
        if z != "out":
            lines.append(f"a{k} = tanh(z{k})")
            prev = f"a{k}"
    if per_sample:
        lines.append("L[s] = 0.5 * (out[s, k] - y[s, k]) ^ 2")
    return "\n".join(lines)


def _params(v: dict, layers: int) -> list[str]:
    return [f"{p}{k}" for k in range(1, layers + 1) for p in ("W", "b")]


def _numpy_per_sample(v: dict, layers: int) -> dict[str, np.ndarray]:
    """Backprop with the batch kept apart: per-sample gradients, materialised."""
    acts = [v["x"]]
    for k in range(1, layers + 1):
        z = acts[-1] @ v[f"W{k}"].T + v[f"b{k}"]
        acts.append(z if k == layers else np.tanh(z))
    delta = acts[-1] - v["y"]
    grads = {}
    for k in range(layers, 0, -1):
        grads[f"W{k}"] = np.einsum("si,sj->sij", delta, acts[k - 1])
        grads[f"b{k}"] = delta
        if k > 1:
            delta = (delta @ v[f"W{k}"]) * (1.0 - acts[k - 1] ** 2)
    return grads


def _numpy_structured(v: dict, layers: int) -> np.ndarray:
    """The squared norms written by hand from the structure: ‖δ ⊗ a‖² = ‖δ‖² ‖a‖²."""
    acts = [v["x"]]
    for k in range(1, layers + 1):
        z = acts[-1] @ v[f"W{k}"].T + v[f"b{k}"]
        acts.append(z if k == layers else np.tanh(z))
    delta = acts[-1] - v["y"]
    total = np.zeros(len(delta))
    for k in range(layers, 0, -1):
        dd = np.einsum("si,si->s", delta, delta)
        total += dd * (np.einsum("sj,sj->s", acts[k - 1], acts[k - 1]) + 1.0)
        if k > 1:
            delta = (delta @ v[f"W{k}"]) * (1.0 - acts[k - 1] ** 2)
    return np.sqrt(total)


def _jax(v: dict, layers: int):
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    params = {name: jnp.asarray(v[name]) for name in _params(v, layers)}
    x, y = jnp.asarray(v["x"]), jnp.asarray(v["y"])

    def forward(p, xs):
        a = xs
        for k in range(1, layers + 1):
            a = a @ p[f"W{k}"].T + p[f"b{k}"]
            if k < layers:
                a = jnp.tanh(a)
        return a

    def loss(p, xs, ys):  # one sample
        return 0.5 * jnp.sum((forward(p, xs) - ys) ** 2)

    per_sample = jax.vmap(jax.grad(loss), in_axes=(None, 0, 0))
    return jax, jnp, params, x, y, forward, per_sample


def _memory_note(jax, fn, *args) -> str:
    """XLA's own forecast of a jitted function's scratch memory (tracemalloc
    does not see XLA's allocations)."""
    try:
        analysis = fn.lower(*args).compile().memory_analysis()
        return f"XLA temp {analysis.temp_size_in_bytes / 2**20:.0f} MiB"
    except Exception:  # not every backend reports it
        return ""


def per_sample_norms(widths: list[int], batch: int, rounds: int) -> list[Row]:
    layers = len(widths) - 1
    net = tc.parse(mlp_spec(widths, batch))
    v = net.random_values(seed=0)
    wrt = _params(v, layers)
    competitors = []
    note = {}
    if importlib.util.find_spec("jax") is not None:
        jax, jnp, params, x, y, _, per_sample = _jax(v, layers)

        def norms(p, xs, ys):
            grads = per_sample(p, xs, ys)
            leaves = jax.tree_util.tree_leaves(grads)
            return jnp.sqrt(sum(jnp.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in leaves))

        jitted = jax.jit(norms)
        note["JAX norm of jit(vmap(grad))"] = _memory_note(jax, jitted, params, x, y)
        competitors.append(
            Competitor(
                "JAX norm of jit(vmap(grad))",
                lambda: jax.block_until_ready(jitted(params, x, y)),
                np.asarray,
                memory=False,
            )
        )
    if importlib.util.find_spec("torch") is not None:
        competitors.append(_torch_norms(v, layers))

    def materialised() -> np.ndarray:
        grads = _numpy_per_sample(v, layers)
        return np.sqrt(sum(np.sum(g.reshape(batch, -1) ** 2, axis=1) for g in grads.values()))

    competitors += [
        Competitor("numpy per-sample grads, then norms", materialised, lambda r: r),
        Competitor("numpy by hand, ‖δ‖·‖a‖", lambda: _numpy_structured(v, layers), lambda r: r),
        Competitor(
            "tensorchain per_sample_grad_norms",
            lambda: net.per_sample_grad_norms("L", wrt, v),
            lambda r: r,
        ),
    ]
    case = f"per-sample grad norms, tanh MLP {'-'.join(map(str, widths))}, batch {batch}"
    rows = measure(case, competitors, rounds=rounds)
    for r in rows:
        r.note = note.get(r.name, "")
    grads_bytes = sum(g.nbytes for g in _numpy_per_sample(v, layers).values())
    rows[-1].note = f"per-sample gradients would be {grads_bytes / 2**20:.0f} MiB"
    return rows


def _torch_norms(v: dict, layers: int) -> Competitor:
    import torch
    from torch.func import grad, vmap

    torch.set_num_threads(1)
    params = {name: torch.tensor(v[name]) for name in _params(v, layers)}
    x, y = torch.tensor(v["x"]), torch.tensor(v["y"])

    def loss(p, xs, ys):
        a = xs
        for k in range(1, layers + 1):
            a = a @ p[f"W{k}"].T + p[f"b{k}"]
            if k < layers:
                a = torch.tanh(a)
        return 0.5 * torch.sum((a - ys) ** 2)

    per_sample = vmap(grad(loss), in_dims=(None, 0, 0))

    def run():
        grads = per_sample(params, x, y)
        return torch.sqrt(sum(g.reshape(len(g), -1).pow(2).sum(1) for g in grads.values()))

    return Competitor("torch.func norm of vmap(grad)", run, lambda r: r.numpy(), memory=False)


def clipped_sum(widths: list[int], batch: int, rounds: int) -> list[Row]:
    layers = len(widths) - 1
    net = tc.parse(mlp_spec(widths, batch))
    v = net.random_values(seed=0)
    wrt = _params(v, layers)
    max_norm = float(np.median(net.per_sample_grad_norms("L", wrt, v)))
    competitors = []

    def flat(grads) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(grads[w])) for w in wrt])

    if importlib.util.find_spec("jax") is not None:
        jax, jnp, params, x, y, _, per_sample = _jax(v, layers)

        def clipped(p, xs, ys):
            grads = per_sample(p, xs, ys)
            norms = jnp.sqrt(
                sum(jnp.sum(g.reshape(len(g), -1) ** 2, axis=1) for g in grads.values())
            )
            scale = jnp.minimum(1.0, max_norm / norms)
            return {w: jnp.tensordot(scale, g, axes=1) for w, g in grads.items()}

        jitted = jax.jit(clipped)
        competitors.append(
            Competitor(
                "JAX jit(vmap(grad)), clip, sum",
                lambda: jax.block_until_ready(jitted(params, x, y)),
                flat,
                memory=False,
            )
        )

    def by_hand() -> dict:
        grads = _numpy_per_sample(v, layers)
        norms = np.sqrt(sum(np.sum(g.reshape(batch, -1) ** 2, axis=1) for g in grads.values()))
        scale = np.minimum(1.0, max_norm / norms)
        return {w: np.tensordot(scale, g, axes=1) for w, g in grads.items()}

    competitors += [
        Competitor("numpy per-sample grads, clip, sum", by_hand, flat),
        Competitor(
            "tensorchain clipped_grad",
            lambda: net.clipped_grad("L", wrt, v, max_norm=max_norm),
            flat,
        ),
    ]
    case = f"clipped gradient sum, tanh MLP {'-'.join(map(str, widths))}, batch {batch}"
    return measure(case, competitors, rounds=rounds)


def ntk(widths: list[int], batch: int, rounds: int, dense_numpy: bool = True) -> list[Row]:
    layers = len(widths) - 1
    net = tc.parse(mlp_spec(widths, batch, per_sample=False))
    v = net.random_values(seed=0)
    wrt = _params(v, layers)
    competitors = []
    if importlib.util.find_spec("jax") is not None:
        jax, jnp, params, x, _, forward, _ = _jax(v, layers)

        def kernel(p, xs):
            # Jacobian contraction: per-sample Jacobians, then Σ_θ J J.
            jac = jax.vmap(jax.jacrev(forward), in_axes=(None, 0))(p, xs)
            leaves = jax.tree_util.tree_leaves(jac)
            return sum(
                jnp.einsum(
                    "skp,tlp->sktl", J.reshape(*J.shape[:2], -1), J.reshape(*J.shape[:2], -1)
                )
                for J in leaves
            )

        jitted = jax.jit(kernel)
        competitors.append(
            Competitor(
                "JAX jit, Jacobian contraction",
                lambda: jax.block_until_ready(jitted(params, x)),
                np.asarray,
                memory=False,
            )
        )

    def dense() -> np.ndarray:
        """Per-sample Jacobians of out (materialised), contracted with numpy."""
        acts = [v["x"]]
        for k in range(1, layers + 1):
            z = acts[-1] @ v[f"W{k}"].T + v[f"b{k}"]
            acts.append(z if k == layers else np.tanh(z))
        c = widths[-1]
        delta = np.broadcast_to(np.eye(c), (batch, c, c))  # ∂out[s, k]/∂z[s, i]
        theta = np.zeros((batch, c, batch, c))
        for k in range(layers, 0, -1):
            J = np.einsum("ski,sj->skij", delta, acts[k - 1]).reshape(batch, c, -1)
            theta += np.einsum("skp,tlp->sktl", J, J) + np.einsum("ski,tli->sktl", delta, delta)
            if k > 1:
                delta = (delta @ v[f"W{k}"]) * (1.0 - acts[k - 1] ** 2)[:, None, :]
        return theta

    if dense_numpy:  # 97 s at batch 64, width 512: only in the quick run
        competitors.append(Competitor("numpy per-sample Jacobians, contracted", dense, lambda r: r))
    competitors.append(
        Competitor("tensorchain ntk", lambda: net.ntk("out", wrt, v).array, lambda r: r)
    )
    case = f"NTK, tanh MLP {'-'.join(map(str, widths))}, batch {batch}"
    return measure(case, competitors, rounds=rounds)


def rows(quick: bool) -> list[Row]:
    if quick:
        return (
            per_sample_norms([6, 5, 3], 4, rounds=2)
            + clipped_sum([6, 5, 3], 4, rounds=2)
            + ntk([6, 5, 3], 4, rounds=2)
        )
    return (
        per_sample_norms([512, 512, 10], 256, rounds=7)
        + per_sample_norms([512, 512, 512, 512, 10], 256, rounds=5)
        + clipped_sum([512, 512, 10], 256, rounds=7)
        + ntk([512, 512, 10], 64, rounds=3, dense_numpy=False)
    )
