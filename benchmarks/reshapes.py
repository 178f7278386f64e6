"""Reshapes and concatenation (issue 17, item 3): the gradient of a CNN's
flatten and linear head and of a concatenation feeding a layer, tensorchain
against numpy by hand, JAX, and the workaround the language had before, a
constant 0/1 matrix passed in as data (read by every contraction)."""

from __future__ import annotations

import importlib.util

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure

HEAD = """
dim B = {B}
dim O = {O}
dim R = {R}
dim c = 10
input a[B, O, R, R]
input y[B, c]
param V[c, (O R R)]
{flatten}
z[s, j] = V[j, e] * f[s, e]
L = cross_entropy(z, y, c)
"""
GROUP = "f[s, (o p q)] = a[s, o, p, q]"
MATRIX = "input M[(O R R), O, R, R]\nf[s, g] = M[g, o, p, q] * a[s, o, p, q]"


def _head(B: int, filters: int, R: int, rounds: int, with_matrix: bool) -> list[Row]:
    net = tc.parse(HEAD.format(B=B, O=filters, R=R, flatten=GROUP))
    v = net.random_values(seed=0)
    v["y"] = np.eye(10)[np.arange(B) % 10]
    compiled = net.compile_grad("L", ["a", "V"])

    def by_hand():
        f = v["a"].reshape(B, -1)
        z = f @ v["V"].T
        p = np.exp(z - z.max(axis=1, keepdims=True))
        p /= p.sum(axis=1, keepdims=True)
        dz = (p * v["y"].sum(axis=1, keepdims=True) - v["y"]) / B
        return {"a": (dz @ v["V"]).reshape(v["a"].shape), "V": dz.T @ f}

    def flat(r):
        return np.concatenate([np.ravel(r["a"]), np.ravel(r["V"])])

    competitors = [
        Competitor("numpy, by hand", by_hand, flat),
        Competitor("tensorchain compiled, (o p q)", lambda: compiled(v), flat),
    ]
    if with_matrix:
        old = tc.parse(HEAD.format(B=B, O=filters, R=R, flatten=MATRIX))
        G = filters * R * R
        w = {**v, "M": np.eye(G).reshape(G, filters, R, R)}
        old_compiled = old.compile_grad("L", ["a", "V"])
        competitors.append(
            Competitor("tensorchain, 0/1 matrix as data", lambda: old_compiled(w), flat)
        )
    if importlib.util.find_spec("jax") is not None:
        competitors.append(_jax_head(v, B))
    return measure(f"flatten + head B={B} (O R R)={filters * R * R}", competitors, rounds=rounds)


def _jax_head(v: dict, B: int) -> Competitor:
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)

    def loss(a, V, y):
        z = a.reshape(B, -1) @ V.T
        return jnp.mean(jnp.sum(-y * jax.nn.log_softmax(z, axis=1), axis=1))

    grad = jax.jit(jax.grad(loss, argnums=(0, 1)))
    args = [jnp.asarray(v[k]) for k in ("a", "V", "y")]

    def run():
        out = grad(*args)
        jax.block_until_ready(out)
        return out

    def result(r):
        return np.concatenate([np.ravel(np.asarray(r[0])), np.ravel(np.asarray(r[1]))])

    return Competitor("jax.jit(jax.grad)", run, result, memory=False)


CONCAT = """
dim B = {B}
dim I = {n}
dim J = {n}
dim O = {n}
input a[B, I]
input b[B, J]
param W[O, (I + J)]
c[s, k] = concat(a[s, k], b[s, k], k)
z[s, o] = W[o, k] * c[s, k]
L = sum(tanh(z))
"""


def _concat(B: int, n: int, rounds: int) -> list[Row]:
    net = tc.parse(CONCAT.format(B=B, n=n))
    v = net.random_values(seed=0)
    compiled = net.compile_grad("L", ["a", "W"])

    def by_hand():
        c = np.concatenate([v["a"], v["b"]], axis=1)
        dz = 1.0 - np.tanh(c @ v["W"].T) ** 2
        return {"a": (dz @ v["W"])[:, :n], "W": dz.T @ c}

    def flat(r):
        return np.concatenate([np.ravel(r["a"]), np.ravel(r["W"])])

    competitors = [
        Competitor("numpy, by hand", by_hand, flat),
        Competitor("tensorchain compiled, concat", lambda: compiled(v), flat),
    ]
    return measure(f"concat + layer B={B} I=J=O={n}", competitors, rounds=rounds)


def rows(quick: bool) -> list[Row]:
    if quick:
        return [*_head(4, 2, 4, rounds=2, with_matrix=True), *_concat(4, 8, rounds=2)]
    return [
        *_head(64, 16, 16, rounds=9, with_matrix=False),
        *_head(64, 4, 16, rounds=9, with_matrix=True),
        *_concat(256, 512, rounds=9),
    ]
