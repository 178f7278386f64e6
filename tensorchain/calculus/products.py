"""Products of derivatives, planned without materialising per-sample gradients.

A per-sample loss ``L[s]`` has a Jacobian by each parameter that the chain
rule keeps structured (for a dense layer: a cotangent ``g[s, i]`` times the
layer's input ``x[s, j]``, two factors, see :meth:`LabeledTensor.compacted`).
Its per-sample norms, clipped sums, the NTK and Gauss–Newton products are
contractions of those factors (:func:`tensorchain.contract`), so the tensor
with the sample index and both weight indices is never formed.

Each product is a *builder*: it runs inside a trace (:mod:`tensorchain.arrays.trace`)
on placeholders, and the network compiles and caches the result like a
gradient (:func:`tensorchain.runtime.compiled.compile_program`).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import common, is_numpy, namespace
from ..arrays.trace import apply
from ..errors import DerivativeError
from .contract import contract

if TYPE_CHECKING:
    from ..arrays.trace import Tape
    from ..language.network_like import Differentiable
    from .graph import Forward
    from .labeled import LabeledTensor

#: ``(outputs, finish)``: the traced arrays and how to assemble the result.
Built = tuple[list[Any], Callable[[list[np.ndarray]], Any]]

MAX_NORM = "__max_norm"
VECTOR = "__vector"


def check_per_sample(net: Differentiable, of: str) -> None:
    dims = net.info(of).dims
    if len(dims) != 1:
        raise DerivativeError(
            f"{of} has shape [{', '.join(dims)}]; per-sample products need a per-sample"
            f" loss with one axis, the sample index (e.g. L[s] = ...)"
        )


def _jacobians(net: Differentiable, forward: Forward, of: str, wrt: Sequence[str]):
    return net.derivatives(of, list(wrt), forward, structured=True).jacobians


def _axes(J: LabeledTensor, skip: int) -> list[str]:
    return [f"p{k}" for k in range(J.ndim - skip)]


def _add(a, b):
    return apply(_sum, a, b, shape=a.shape, fresh=True, code=lambda x: f"{x[0]} + {x[1]}")


def _sum(a, b):
    if not is_numpy(a, b):
        _, (a, b) = common((a, b))
    return a + b


def _squared_norms(net: Differentiable, forward: Forward, of: str, wrt: Sequence[str]):
    """Σ over the parameters' axes of (∂of[s]/∂θ)², for each sample s."""
    total = None
    for J in _jacobians(net, forward, of, wrt).values():
        p = " ".join(_axes(J, 1))
        sq = contract(f"s {p}, s {p} -> s", J, J).array
        total = sq if total is None else _add(total, sq)
    return total


def _sqrt(x):
    return apply(
        lambda a: namespace(a).sqrt(a),
        x,
        shape=x.shape,
        fresh=True,
        code=lambda a: f"np.sqrt({a[0]})",
    )


def build_norms(
    net: Differentiable, tape: Tape, forward: Forward, of: str, wrt: Sequence[str]
) -> Built:
    check_per_sample(net, of)
    return [_sqrt(_squared_norms(net, forward, of, wrt))], lambda arrays: arrays[0]


def clip_scale(norms: np.ndarray, max_norm: np.ndarray) -> np.ndarray:
    """min(1, max_norm / ‖g‖), and 1 where the gradient is zero."""
    if not is_numpy(norms, max_norm):
        xp = namespace(norms, max_norm)
        ratio = max_norm / xp.where(norms > 0, norms, xp.ones_like(norms))
        return xp.where(ratio < 1.0, ratio, xp.ones_like(ratio))
    with np.errstate(divide="ignore"):
        return np.where(norms > 0, np.minimum(1.0, max_norm / norms), 1.0)


def build_clipped(
    net: Differentiable, tape: Tape, forward: Forward, of: str, wrt: Sequence[str]
) -> Built:
    check_per_sample(net, of)
    max_norm = tape.input(MAX_NORM, ())
    norms = _sqrt(_squared_norms(net, forward, of, wrt))
    scale = apply(
        clip_scale,
        norms,
        max_norm,
        shape=norms.shape,
        fresh=True,
        code=lambda a: f"clip_scale({a[0]}, {a[1]})",
    )
    outputs = []
    for J in _jacobians(net, forward, of, wrt).values():
        p = " ".join(_axes(J, 1))
        outputs.append(contract(f"s {p}, s -> {p}", J, scale).array)
    return outputs, lambda arrays: dict(zip(wrt, arrays, strict=True))


def build_ntk(
    net: Differentiable, tape: Tape, forward: Forward, out: str, wrt: Sequence[str]
) -> Built:
    from .chain import axis_names

    dims = net.info(out).dims
    a = [f"a{k}" for k in range(len(dims))]
    b = [f"b{k}" for k in range(len(dims))]
    total = None
    for J in _jacobians(net, forward, out, wrt).values():
        p = _axes(J, len(dims))
        term = contract(f"{' '.join(a + p)}, {' '.join(b + p)} -> {' '.join(a + b)}", J, J)
        total = term if total is None else total + term
    if total is None:
        raise DerivativeError(f"the NTK needs at least one wrt tensor; got {list(wrt)}")
    first, second = axis_names(dims, dims)
    structure = total.contracted().rename((*first, *second))
    outputs = structure.stored_arrays()
    return outputs, lambda arrays: structure.with_arrays(arrays)


def build_gnvp(
    net: Differentiable, tape: Tape, forward: Forward, of: tuple[str, str], wrt: Sequence[str]
) -> Built:
    """Jᵀ H J v with ``J = ∂out/∂wrt`` (structured) and ``H = ∂²loss/∂out²``, the
    Jacobian of ``loss``'s gradient network by ``out``: three contractions."""
    loss, out = of
    (w,) = wrt
    J = _jacobians(net, forward, out, [w])[w]
    rank = len(net.info(out).dims)
    vector = tape.input(VECTOR, J.shape[rank:])
    graph, g = net.derivative_graph(loss, (out,))
    leaves = {t.name for t in graph.tensors.values() if t.kind in ("input", "param")}
    gforward = graph.run_forward(
        {n: v for n, v in forward.values.items() if n in leaves}, forward.sizes, structured=True
    )
    H = graph.derivatives(g, [out], gforward, structured=True).jacobians[out]
    o = [f"o{k}" for k in range(rank)]
    q = [f"q{k}" for k in range(rank)]
    p = _axes(J, rank)
    Jv = contract(f"{' '.join(o + p)}, {' '.join(p)} -> {' '.join(o)}", J, vector)
    HJv = contract(f"{' '.join(o + q)}, {' '.join(q)} -> {' '.join(o)}", H, Jv)
    result = contract(f"{' '.join(o + p)}, {' '.join(o)} -> {' '.join(p)}", J, HJv)
    return [result.array], lambda arrays: arrays[0]


BUILDERS = {
    "norms": build_norms,
    "clipped": build_clipped,
    "ntk": build_ntk,
    "gnvp": build_gnvp,
}
