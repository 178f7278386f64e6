"""Integer index tensors (issue 17, item 2): the gradient of an embedding
classifier (token ids, a mean over the sequence, a linear head,
cross-entropy on integer labels) against numpy by hand (``np.take`` and a
flat ``np.add.at``), the same model with the lookup written as a product
with a dense one-hot matrix given as data (the workaround before integer
indices), and ``jax.jit(jax.grad)``."""

from __future__ import annotations

import importlib.util

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure


def spec(batch: int, length: int, vocab: int, width: int, classes: int, one_hot: bool) -> str:
    lookup = (
        "x[s, t, d] = H[s, t, v] * E[v, d]"  # H: the one-hot of the ids, as data
        if one_hot
        else "x[s, t, d] = E[ids[s, t], d]"
    )
    ids = "input H[B, L, V]" if one_hot else "input ids[B, L] index V"
    labels = "input Y[B, c]" if one_hot else "input labels[B] index c"
    loss = "cross_entropy(logits, Y, c)" if one_hot else "cross_entropy(logits, labels, c)"
    return "\n".join(
        [
            f"dim B = {batch}",
            f"dim L = {length}",
            f"dim V = {vocab}",
            f"dim D = {width}",
            f"dim c = {classes}",
            ids,
            labels,
            "param E[V, D]",
            "param W[c, D]",
            lookup,
            "h[s, d] = mean(x[s, t, d], t)",
            "logits[s, k] = W[k, d] * tanh(h[s, d])",
            f"C = {loss}",
        ]
    )


def embedding(batch: int, length: int, vocab: int, width: int, classes: int, rounds: int):
    net = tc.parse(spec(batch, length, vocab, width, classes, one_hot=False))
    v = net.random_values(seed=0)
    ids, labels = v["ids"], v["labels"]

    def by_hand() -> dict:
        x = np.take(v["E"], ids, axis=0)
        h = x.mean(axis=1)
        a = np.tanh(h)
        z = a @ v["W"].T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = p
        dz[np.arange(batch), labels] -= 1.0
        dz /= batch
        dW = dz.T @ a
        dh = (dz @ v["W"]) * (1.0 - a * a) / length
        # add.at on the flat table: numpy's fast path (adding whole rows is ~9x slower)
        dE = np.zeros(vocab * width)
        at = (ids.reshape(-1, 1) * width + np.arange(width)).reshape(-1)
        np.add.at(dE, at, np.repeat(dh, length, axis=0).reshape(-1))
        return {"E": dE.reshape(vocab, width), "W": dW}

    def flat(r: dict) -> np.ndarray:
        return np.concatenate([np.ravel(np.asarray(r["E"])), np.ravel(np.asarray(r["W"]))])

    compiled = net.compile_grad("C", ["E", "W"])
    generated: dict = {}
    from tensorchain.presentation.derivation import module_source

    derivations = [net.derive("C", w) for w in ("E", "W")]
    exec(module_source(derivations, names=["gradient"], joint=True), generated)
    competitors = [
        Competitor("numpy by hand (take, add.at)", by_hand, flat),
        Competitor("tensorchain grad", lambda: net.grad("C", ["E", "W"], v), flat),
        Competitor("tensorchain compiled", lambda: compiled(v), flat),
        Competitor(
            "tensorchain compiled, check_finite=False",
            lambda: compiled(v, check_finite=False),
            flat,
        ),
        Competitor(
            "tensorchain generated numpy",
            lambda: generated["gradient"](**{k: v[k] for k in ("ids", "labels", "E", "W")}),
            flat,
        ),
    ]
    notes = []
    if batch * length * vocab <= 3 * 10**7:  # the one-hot as data: B·L·V numbers
        dense = tc.parse(spec(batch, length, vocab, width, classes, one_hot=True))
        dv = {"H": np.eye(vocab)[ids], "Y": np.eye(classes)[labels], "E": v["E"], "W": v["W"]}
        competitors.append(
            Competitor(
                "tensorchain, one-hot matrix as data",
                lambda: dense.grad("C", ["E", "W"], dv),
                flat,
            )
        )
    else:
        notes.append("the one-hot as data would hold B·L·V numbers: left out")
    if importlib.util.find_spec("jax") is not None:
        competitors.append(_jax(v, batch))
    else:
        notes.append("jax not installed (pip install '.[bench]')")
    case = f"embedding classifier B={batch}, L={length}, V={vocab}, D={width}, c={classes}"
    rows = measure(case, competitors, rounds=rounds)
    rows[0].note = "; ".join(notes)
    return rows


def _jax(v: dict, batch: int) -> Competitor:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    ids, labels = jnp.asarray(v["ids"]), jnp.asarray(v["labels"])
    E, W = jnp.asarray(v["E"]), jnp.asarray(v["W"])

    def loss(E, W):
        h = jnp.tanh(jnp.take(E, ids, axis=0).mean(axis=1))
        logp = jax.nn.log_softmax(h @ W.T, axis=1)
        return -jnp.take_along_axis(logp, labels[:, None], axis=1).mean()

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))

    def run():
        return jax.block_until_ready(grad(E, W))

    return Competitor(
        "jax.jit(jax.grad)",
        run,
        lambda r: np.concatenate([np.ravel(np.asarray(r[0])), np.ravel(np.asarray(r[1]))]),
        memory=False,
    )


def rows(quick: bool) -> list[Row]:
    if quick:
        return embedding(4, 3, 20, 4, 3, rounds=2)
    return embedding(64, 32, 10000, 128, 10, rounds=7) + embedding(256, 16, 50000, 64, 10, rounds=5)
