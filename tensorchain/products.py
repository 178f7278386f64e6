"""Products of derivatives, planned without materialising per-sample gradients.

A per-sample loss ``L[s]`` has a Jacobian by each parameter that the chain
rule keeps as factors (for a dense layer: a cotangent times the layer's
input). Its per-sample norms and clipped sums are contractions of those
factors (:func:`tensorchain.contract`), so the tensor with the sample index
and both weight indices is never formed.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from .contraction import contract
from .errors import DerivativeError

if TYPE_CHECKING:
    from .labeled import LabeledTensor
    from .network import Network


def _per_sample(net: Network, of: str, wrt: Sequence[str], values: Mapping[str, Any]):
    dims = net.info(of).dims
    if len(dims) != 1:
        raise DerivativeError(
            f"{of} has shape [{', '.join(dims)}]; per-sample products need a per-sample"
            f" loss with one axis, the sample index (e.g. L[s] = ...)"
        )
    result = net.derivatives(of, list(wrt), values)
    out: dict[str, LabeledTensor] = {}
    for w in wrt:
        out[w] = result.chains.get(w, result.jacobians[w])  # unevaluated: its factors
    return out


def _axes(t: LabeledTensor) -> str:
    return " ".join(t.indices[1:])


def per_sample_grad_norms(
    net: Network, of: str, wrt: Sequence[str], values: Mapping[str, Any]
) -> np.ndarray:
    """‖∂of[s]/∂(wrt...)‖ for each sample ``s``: the norm over all listed tensors."""
    total = 0.0
    for J in _per_sample(net, of, wrt, values).values():
        axes = _axes(J)
        total = total + contract(f"s {axes}, s {axes} -> s", J, J).array
    return np.sqrt(np.broadcast_to(total, net.shape(of, **net.sizes(values))))


def clipped_grad(
    net: Network, of: str, wrt: Sequence[str], values: Mapping[str, Any], max_norm: float
) -> dict[str, np.ndarray]:
    """Σ_s g_s · min(1, max_norm / ‖g_s‖), ``g_s`` each sample's gradient (the DP-SGD sum)."""
    if not max_norm > 0:
        raise DerivativeError(f"max_norm must be positive, got {max_norm!r}")
    jacobians = _per_sample(net, of, wrt, values)
    norms = per_sample_grad_norms(net, of, wrt, values)
    with np.errstate(divide="ignore"):
        scale = np.minimum(1.0, max_norm / norms)
    scale = np.where(norms > 0, scale, 1.0)
    return {
        w: contract(f"s {_axes(J)}, s -> {_axes(J)}", J, scale).array for w, J in jacobians.items()
    }


def _chains(net: Network, of: str, wrt: Sequence[str], values: Mapping[str, Any]):
    result = net.derivatives(of, list(wrt), values)
    return {w: result.chains.get(w, result.jacobians[w]) for w in wrt}


def ntk(net: Network, out: str, wrt: Sequence[str], values: Mapping[str, Any]) -> LabeledTensor:
    """The neural tangent kernel Θ = Σ_θ ∂out/∂θ · ∂out/∂θ, shape ``out.shape +
    out.shape``: each parameter's Jacobian contracted with itself over the
    parameter's axes, as one network per parameter; deltas stay symbolic."""
    from .chain import axis_names

    rank = len(net.info(out).dims)
    a = [f"a{k}" for k in range(rank)]
    b = [f"b{k}" for k in range(rank)]
    total = None
    for J in _chains(net, out, wrt, values).values():
        p = [f"p{k}" for k in range(J.ndim - rank)]
        spec = f"{' '.join(a + p)}, {' '.join(b + p)} -> {' '.join(a + b)}"
        term = contract(spec, J, J)
        total = term if total is None else total + term
    assert total is not None
    first, second = axis_names(net.info(out).dims, net.info(out).dims)
    return total.rename((*first, *second))


def gnvp(
    net: Network, loss: str, out: str, wrt: str, vector: Any, values: Mapping[str, Any]
) -> np.ndarray:
    """The Gauss–Newton product Jᵀ H J v: ``J = ∂out/∂wrt``, ``H = ∂²loss/∂out²``,
    shaped like ``wrt``; computed as three contractions (J v, then H, then Jᵀ),
    neither J nor H made dense."""
    J = _chains(net, out, [wrt], values)[wrt]
    H = net.hessian(loss, out, values)
    o = [f"o{k}" for k in range(len(net.info(out).dims))]
    q = [f"q{k}" for k in range(len(o))]
    p = [f"p{k}" for k in range(J.ndim - len(o))]
    vector = np.asarray(vector)
    if vector.shape != J.shape[len(o) :]:
        raise DerivativeError(
            f"the vector has shape {vector.shape} but {wrt} has shape {J.shape[len(o) :]};"
            " a Gauss–Newton vector is shaped like wrt"
        )
    Jv = contract(f"{' '.join(o + p)}, {' '.join(p)} -> {' '.join(o)}", J, vector)
    HJv = contract(f"{' '.join(o + q)}, {' '.join(q)} -> {' '.join(o)}", H, Jv)
    return contract(f"{' '.join(o + p)}, {' '.join(o)} -> {' '.join(p)}", J, HJv).array
