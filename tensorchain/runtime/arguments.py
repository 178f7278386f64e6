"""The arguments of a network's calls, checked before any work: tensor
names, ``wrt`` given as one name, a list or a tuple (one per order), the
scalar a gradient needs, and sizes given as ``dims=`` or as keywords.

Each check raises the error a user reads (:class:`DerivativeError`,
:class:`ShapeError`), naming the network's tensors and what to write instead."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

from ..errors import DerivativeError, ShapeError
from ..language.gather import refuse_positions

if TYPE_CHECKING:
    from ..language.network_like import NetworkLike

#: What a call computes, in words, for messages (``per-sample gradient norms by ids ...``).
CALLS = {
    "grad": "a gradient",
    "hvp": "a Hessian-vector product",
    "gnvp": "a Gauss–Newton product",
    "norms": "per-sample gradient norms",
    "clipped": "a clipped gradient",
    "ntk": "a neural tangent kernel",
}


def tensor_info(net: NetworkLike, name: str) -> Any:
    """The :class:`TensorInfo` of ``name``, or an error listing the tensors."""
    if not isinstance(name, str):
        raise DerivativeError(
            f"expected a tensor name (a str), got {name!r}; this network has"
            f" {', '.join(net.tensors)}"
        )
    if name not in net.tensors:
        raise DerivativeError(f"unknown tensor {name!r}; this network has {', '.join(net.tensors)}")
    return net.tensors[name]


def wrt_one(wrt: Any, call: str = "this call") -> None:
    """A DerivativeError unless ``wrt`` is one tensor name."""
    if not isinstance(wrt, str):
        raise DerivativeError(
            f"{call} takes one wrt tensor (a str), got {wrt!r}; call it once per tensor"
        )


def wrt_list(net: NetworkLike, wrt: Any) -> tuple[str, ...]:
    """A list (or tuple) of tensor names, each known."""
    if isinstance(wrt, Mapping) or not isinstance(wrt, Sequence) or not wrt:
        raise DerivativeError(f"wrt is a tensor name or a non-empty list of them, got {wrt!r}")
    for w in wrt:
        net.info(w)
    return tuple(wrt)


def wrt_tuple(net: NetworkLike, wrt: Any) -> tuple[str, ...]:
    """The tensors of a derivative of any order: a name, or one name per order."""
    if isinstance(wrt, str):
        wrts: tuple = (wrt,)
    elif isinstance(wrt, Sequence) and all(isinstance(w, str) for w in wrt):
        wrts = tuple(wrt)
    else:
        raise DerivativeError(
            f"wrt is a tensor name or a sequence of them (one per order), got {wrt!r}"
        )
    if not wrts:
        raise DerivativeError(
            "derivative needs at least one wrt tensor, e.g. wrt=('W', 'W') for the Hessian"
        )
    for w in wrts:
        net.info(w)
    refuse_positions(net, wrts)
    return wrts


def plan_sizes(
    net: NetworkLike, of: str, wrt: Any, dims: Mapping[str, int] | None, sizes: Mapping[str, int]
) -> dict[str, int]:
    """The arguments of a plan of ``d of / d wrt`` checked; the sizes given."""
    wrt_one(wrt, "plan")
    net.info(of)
    net.info(wrt)
    refuse_positions(net, [wrt], "a plan of a derivative")
    return given_sizes(dims, sizes)


def grad_targets(
    net: NetworkLike, of: str, wrt: str | Sequence[str] | None, what: str = "grad"
) -> tuple[str, ...]:
    """The tensors a gradient of the scalar ``of`` is taken by (default: every
    param), each known and real-valued."""
    info = net.info(of)
    if info.dims:
        total = free_name(net, "total", "loss", f"{of}_total")
        raise DerivativeError(
            f"{what} needs a scalar, but {of} has shape [{', '.join(info.dims)}]; use"
            f" net.jacobian({of!r}, wrt=...) or net.derivative({of!r}, wrt=(...)) for"
            f" the full derivative, or reduce {of} to a scalar first with a new"
            f" statement (e.g. {total} = sum({of}))"
        )
    if wrt is not None and not isinstance(wrt, str) and len(wrt) == 0:
        raise DerivativeError(
            f"{what}: wrt is an empty list; name the tensors, or leave wrt out for every param"
        )
    targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or net.params)
    if not targets:
        raise DerivativeError(f"no wrt given and {of!r}'s network has no params")
    for w in targets:
        net.info(w)
    refuse_positions(net, targets, CALLS.get(what, f"the {what}"))
    return targets


def chain_targets(net: NetworkLike, of: str, wrt: Sequence[str], mode: str) -> None:
    """The arguments of the chain rule (``net.derivatives``), checked."""
    net.info(of)
    for w in wrt:
        net.info(w)
    refuse_positions(net, wrt)
    if mode not in ("reverse", "forward") or (mode == "forward" and len(wrt) != 1):
        raise DerivativeError(
            f"mode is 'reverse' or 'forward' (for one wrt tensor), got {mode!r} with"
            f" {len(wrt)} wrt tensors"
        )


def given_sizes(dims: Mapping[str, int] | None, sizes: Mapping[str, int]) -> dict[str, int]:
    """Sizes given as ``dims={"n": 4}``, as keywords ``n=4``, or both (they must
    agree): every call that takes sizes takes them both ways."""
    if dims is None:
        return dict(sizes)
    if not isinstance(dims, Mapping):
        raise ShapeError(
            f"dims= takes a dict of sizes like {{'n': 4}}, got {dims!r}; or give the sizes"
            " as keywords, n=4"
        )
    for d, s in sizes.items():
        if d in dims and dims[d] != s:
            raise ShapeError(f"dim {d} is given twice: {dims[d]} in dims= and {d}={s}")
    return {**dims, **sizes}


def free_name(net: NetworkLike, *candidates: str) -> str:
    """The first of ``candidates`` that names no tensor of ``net`` (for hints)."""
    for name in candidates:
        if name not in net.tensors:
            return name
    k = 1
    while f"{candidates[-1]}{k}" in net.tensors:
        k += 1
    return f"{candidates[-1]}{k}"
