"""Real models in the language (issue 17, targets): the full gradient of the
transformer block of ``examples/transformer_block.tc`` (token embedding by
integer ids, layer norm, 4-head self-attention with the heads split by a
reshape, a GELU MLP, residuals, cross-entropy on integer labels; batch 8,
sequence 64, width 128) and of the small CNN of ``examples/cnn.tc`` (two
3×3 convolutions, ReLU, 2×2 max pooling, flatten, linear head), tensorchain
against ``jax.jit(jax.grad)`` of the same models written by hand in
``jax.numpy``. The JAX models here are also the tests' independent
reference (``tests/test_models.py``)."""

from __future__ import annotations

import importlib.util
import math
from pathlib import Path

import numpy as np

import tensorchain as tc

from .harness import Competitor, Row, measure

EXAMPLES = Path(__file__).resolve().parent.parent / "examples"


#: The transformer's attention scale, 1/√K for heads of width K (the spec
#: writes it 1 / sqrt(size(K))).
def scale(width: int) -> float:
    return 1.0 / math.sqrt(width)


def load(name: str, **sizes: int) -> tc.Network:
    """The example spec ``name`` with ``sizes`` as its dims' defaults
    (``net.with_sizes``: a factor of a product dim, as ``H`` and ``K`` of the
    transformer's ``(H K)``, shows in no value's shape)."""
    return tc.load(EXAMPLES / name).with_sizes(sizes)


def transformer_values(net: tc.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Values as a model is initialised: each matrix scaled by 1/√fan-in,
    layer norm gains near 1 (so no softmax saturates and no gradient vanishes)."""
    v = net.random_values(seed=seed)
    for w in ("Wq", "Wk", "Wv", "Wo", "W1", "W2", "U"):
        v[w] = v[w] / np.sqrt(v[w].shape[0])
    for g in ("g1", "g2"):
        v[g] = 1.0 + 0.1 * v[g]
    for b in ("n1", "n2", "b1", "b2", "u0"):
        v[b] = 0.1 * v[b]
    return v


def cnn_values(net: tc.Network, seed: int = 0) -> dict[str, np.ndarray]:
    """Values as a CNN is initialised: kernels and the head scaled by 1/√fan-in."""
    v = net.random_values(seed=seed)
    for w in ("w1", "w2"):
        v[w] = v[w] / np.sqrt(np.prod(v[w].shape[1:]))
    v["U"] = v["U"] / np.sqrt(v["U"].shape[1])
    for b in ("b1", "b2", "u0"):
        v[b] = 0.1 * v[b]
    return v


TRANSFORMER_PARAMS = tuple(
    ["E", "P", "g1", "n1", "Wq", "Wk", "Wv", "Wo", "g2", "n2", "W1", "b1", "W2", "b2", "U", "u0"]
)
CNN_PARAMS = ("w1", "b1", "w2", "b2", "U", "u0")


def jax_transformer(heads: int):
    """The transformer block's loss ``loss(params, ids, labels)`` written by hand
    in jax.numpy (exact GELU, the same 1/√32 scale as the spec)."""
    import jax
    import jax.numpy as jnp

    def layer_norm(x, g, b):
        centred = x - x.mean(axis=-1, keepdims=True)
        variance = (centred**2).mean(axis=-1, keepdims=True)
        return centred * (variance + 1e-5) ** -0.5 * g + b

    def loss(p, ids, labels):
        x = p["E"][ids] + p["P"]
        B, T, _ = x.shape
        h = layer_norm(x, p["g1"], p["n1"])
        q, k, v = ((h @ p[w]).reshape(B, T, heads, -1) for w in ("Wq", "Wk", "Wv"))
        a = jax.nn.softmax(scale(q.shape[-1]) * jnp.einsum("bthk,buhk->bhtu", q, k), axis=-1)
        o = jnp.einsum("bhtu,buhk->bthk", a, v).reshape(B, T, -1)
        y = x + o @ p["Wo"]
        h2 = layer_norm(y, p["g2"], p["n2"])
        z = y + jax.nn.gelu(h2 @ p["W1"] + p["b1"], approximate=False) @ p["W2"] + p["b2"]
        logp = jax.nn.log_softmax(z @ p["U"] + p["u0"], axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[..., None], axis=-1))

    return loss


def numpy_transformer(v: dict, heads: int):
    """The transformer block's gradient by backprop written by hand in numpy
    (each matrix product once, Φ of the GELU computed once and kept):
    a function of no arguments returning a dict of gradients."""
    from tensorchain.functions.special import normal_cdf

    ids, labels = v["ids"], v["labels"]
    B, T = ids.shape
    D = v["E"].shape[1]
    N = B * T

    def layer_norm(x, g, b):
        centred = x - x.mean(axis=-1, keepdims=True)
        r = 1.0 / np.sqrt((centred * centred).mean(axis=-1, keepdims=True) + 1e-5)
        xhat = centred * r
        return xhat * g + b, xhat, r

    def layer_norm_back(dh, xhat, r, g):
        dxhat = dh * g
        mean = dxhat.mean(axis=-1, keepdims=True)
        mean_x = (dxhat * xhat).mean(axis=-1, keepdims=True)
        return r * (dxhat - mean - xhat * mean_x), (dh * xhat).sum(axis=0), dh.sum(axis=0)

    def split(m):  # [N, (H K)] -> [B, H, T, K]
        return m.reshape(B, T, heads, -1).transpose(0, 2, 1, 3)

    def run() -> dict:
        x = (v["E"][ids] + v["P"]).reshape(N, D)
        h, xhat1, r1 = layer_norm(x, v["g1"], v["n1"])
        q, k, vv = (split(h @ v[w]) for w in ("Wq", "Wk", "Wv"))
        SCALE = scale(q.shape[-1])
        s = SCALE * (q @ k.transpose(0, 1, 3, 2))
        a = np.exp(s - s.max(axis=-1, keepdims=True))
        a /= a.sum(axis=-1, keepdims=True)
        o = (a @ vv).transpose(0, 2, 1, 3).reshape(N, -1)
        y = x + o @ v["Wo"]
        h2, xhat2, r2 = layer_norm(y, v["g2"], v["n2"])
        f = h2 @ v["W1"] + v["b1"]
        cdf = normal_cdf(f)
        g = f * cdf
        z = y + g @ v["W2"] + v["b2"]
        logits = z @ v["U"] + v["u0"]
        p = np.exp(logits - logits.max(axis=-1, keepdims=True))
        p /= p.sum(axis=-1, keepdims=True)
        dl = p
        dl[np.arange(N), labels.reshape(-1)] -= 1.0
        dl /= N
        out = {"U": z.T @ dl, "u0": dl.sum(axis=0)}
        dz = dl @ v["U"].T
        out["W2"], out["b2"] = g.T @ dz, dz.sum(axis=0)
        df = (dz @ v["W2"].T) * (cdf + f * (0.3989422804014327 * np.exp(-0.5 * f * f)))
        out["W1"], out["b1"] = h2.T @ df, df.sum(axis=0)
        dy, out["g2"], out["n2"] = layer_norm_back(df @ v["W1"].T, xhat2, r2, v["g2"])
        dy += dz
        out["Wo"] = o.T @ dy
        do = split(dy @ v["Wo"].T)
        da = do @ vv.transpose(0, 1, 3, 2)
        ds = a * (da - (da * a).sum(axis=-1, keepdims=True))
        merge = lambda t: t.transpose(0, 2, 1, 3).reshape(N, -1)  # noqa: E731
        dq = merge(SCALE * (ds @ k))
        dk = merge(SCALE * (ds.transpose(0, 1, 3, 2) @ q))
        dv = merge(a.transpose(0, 1, 3, 2) @ do)
        out["Wq"], out["Wk"], out["Wv"] = h.T @ dq, h.T @ dk, h.T @ dv
        dh = dq @ v["Wq"].T + dk @ v["Wk"].T + dv @ v["Wv"].T
        dx, out["g1"], out["n1"] = layer_norm_back(dh, xhat1, r1, v["g1"])
        dx += dy
        out["P"] = dx.reshape(B, T, D).sum(axis=0)
        dE = np.zeros(v["E"].size)  # add.at on the flat table (numpy's fast path)
        at = (ids.reshape(-1, 1) * D + np.arange(D)).reshape(-1)
        np.add.at(dE, at, dx.reshape(-1))
        out["E"] = dE.reshape(v["E"].shape)
        return out

    return run


def jax_cnn():
    """The CNN's loss ``loss(params, x, labels)`` written by hand with
    ``jax.lax.conv_general_dilated`` and ``jax.lax.reduce_window``."""
    import jax
    import jax.numpy as jnp

    def conv(x, w, b):
        y = jax.lax.conv_general_dilated(x, w, (1, 1), ((1, 1), (1, 1)))
        return jax.nn.relu(y + b[None, :, None, None])

    def loss(p, x, labels):
        a = conv(conv(x, p["w1"], p["b1"]), p["w2"], p["b2"])
        m = jax.lax.reduce_window(a, -jnp.inf, jax.lax.max, (1, 1, 2, 2), (1, 1, 2, 2), "VALID")
        logits = m.reshape(x.shape[0], -1) @ p["U"].T + p["u0"]
        logp = jax.nn.log_softmax(logits, axis=-1)
        return -jnp.mean(jnp.take_along_axis(logp, labels[:, None], axis=-1))

    return loss


def jax_grad(loss, values: dict, params: tuple[str, ...], data: tuple[str, ...]):
    """``jax.jit(jax.grad(loss))`` bound to ``values`` (float64): a function of
    no arguments that returns the gradients as a dict of numpy arrays."""
    import jax
    import jax.numpy as jnp

    jax.config.update("jax_enable_x64", True)
    p = {k: jnp.asarray(values[k]) for k in params}
    args = [jnp.asarray(values[k]) for k in data]
    grad = jax.jit(jax.grad(loss))

    def run():
        return jax.block_until_ready(grad(p, *args))

    return run


def _flat(params: tuple[str, ...]):
    return lambda r: np.concatenate([np.ravel(np.asarray(r[k])) for k in params])


def _generated(net: tc.Network, params: tuple[str, ...]):
    """The numpy module tensorchain writes for every gradient at once
    (``tensorchain derive --emit python``), as a function of the values."""
    from tensorchain.presentation.derivation import module_source

    source = module_source([net.derive("L", w) for w in params], names=["grads"], joint=True)
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # code tensorchain wrote
    return namespace["grads"]


def _case(case: str, net: tc.Network, v: dict, params, jax_run, by_hand, rounds: int) -> list[Row]:
    flat = _flat(params)
    compiled = net.compile_grad("L", list(params))
    generated = _generated(net, params)
    competitors = []
    if jax_run is not None:
        competitors.append(Competitor("jax.jit(jax.grad)", jax_run, flat, memory=False))
    if by_hand is not None:
        competitors.append(Competitor("numpy backprop, by hand", by_hand, flat))
    competitors += [
        Competitor("tensorchain grad", lambda: net.grad("L", list(params), v), flat),
        Competitor("tensorchain compiled", lambda: compiled(v), flat),
        Competitor(
            "tensorchain compiled, check_finite=False",
            lambda: compiled(v, check_finite=False),
            flat,
        ),
        Competitor("tensorchain generated numpy", lambda: generated(**v), flat),
    ]
    rows = measure(case, competitors, rounds=rounds)
    notes = [] if jax_run is not None else ["jax not installed (pip install '.[bench]')"]
    if importlib.util.find_spec("torch") is None:
        notes.append("torch not installed: no torch autograd row")
    rows[0].note = "; ".join(notes)
    return rows


def transformer(rounds: int, **sizes: int) -> list[Row]:
    net = load("transformer_block.tc", **sizes)
    v = transformer_values(net)
    s = net.sizes(v)
    run = None
    if importlib.util.find_spec("jax") is not None:
        loss = jax_transformer(s["H"])
        run = jax_grad(loss, v, TRANSFORMER_PARAMS, ("ids", "labels"))
    case = (
        f"transformer block B={s['B']}, T={s['T']}, D={s['D']}, heads {s['H']}×{s['K']},"
        f" F={s['F']}, V={s['V']}, c={s['c']}"
    )
    by_hand = numpy_transformer(v, s["H"])
    return _case(case, net, v, TRANSFORMER_PARAMS, run, by_hand, rounds)


def cnn(rounds: int, **sizes: int) -> list[Row]:
    net = load("cnn.tc", **sizes)
    v = cnn_values(net)
    s = net.sizes(v)
    run = None
    if importlib.util.find_spec("jax") is not None:
        run = jax_grad(jax_cnn(), v, CNN_PARAMS, ("x", "labels"))
    case = (
        f"CNN B={s['B']}, {s['C']}×{s['N']}×{s['N']} → conv {s['C1']}, conv {s['C2']},"
        f" pool → {s['C2']}×{s['Q']}×{s['Q']}, c={s['c']}"
    )
    return _case(case, net, v, CNN_PARAMS, run, None, rounds)


def parts(rows_: int, inner: int, width: int, rounds: int) -> list[Row]:
    """What bounds the transformer's ratio: one of its MLP's matrix products,
    and the exact GELU with its derivative, in numpy and in XLA."""
    rng = np.random.default_rng(0)
    a, b = rng.standard_normal((rows_, inner)), rng.standard_normal((inner, width))
    z = rng.standard_normal((rows_, width))
    from tensorchain.functions.special import gelu_cdf, normal_cdf

    def gelu_numpy():
        y = z * normal_cdf(z)  # the forward value, then its derivative from it
        return y, gelu_cdf(z, y) + z * (0.3989422804014327 * np.exp(-0.5 * z * z))

    product = [Competitor("numpy a @ b", lambda: a @ b, lambda r: r)]
    gelu = [Competitor("numpy (tensorchain's Φ)", gelu_numpy, lambda r: r[1])]
    if importlib.util.find_spec("jax") is not None:
        import jax
        import jax.numpy as jnp

        jax.config.update("jax_enable_x64", True)
        aj, bj, zj = jnp.asarray(a), jnp.asarray(b), jnp.asarray(z)
        mm = jax.jit(lambda a, b: a @ b)
        product.append(
            Competitor(
                "jax.jit(a @ b)",
                lambda: jax.block_until_ready(mm(aj, bj)),
                np.asarray,
                memory=False,
            )
        )
        value_and_grad = jax.jit(
            jax.vmap(jax.vmap(jax.value_and_grad(lambda x: jax.nn.gelu(x, approximate=False))))
        )
        gelu.append(
            Competitor(
                "jax.jit(value_and_grad(gelu))",
                lambda: jax.block_until_ready(value_and_grad(zj)),
                lambda r: np.asarray(r[1]),
                memory=False,
            )
        )
    return [
        *measure(f"one matrix product {rows_}×{inner} · {inner}×{width}", product, rounds=rounds),
        *measure(f"exact GELU and its derivative, {rows_}×{width}", gelu, rounds=rounds),
    ]


def rows(quick: bool) -> list[Row]:
    if quick:
        return [
            *transformer(2, B=2, T=4, D=8, H=2, K=4, F=8, V=11, c=3),
            *parts(8, 4, 8, rounds=2),
            *cnn(2, B=2, N=6, C1=2, C2=3, c=3),
        ]
    return [*transformer(9), *parts(512, 128, 512, rounds=9), *cnn(9)]
