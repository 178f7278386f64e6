"""A network's calls on values (``evaluate``, ``grad``, ``jacobian``,
``derivative``, ``hvp`` and the products): first the fast path, through the
compiled programs the last calls with the same arguments used (see
:meth:`~tensorchain.runtime.compiled.Compiled.fast`), with no sizes inferred
and no cache key built from them; on a miss, the general path: arguments and
values checked, the program for these sizes and dtype found in the network's
cache or compiled, run, and remembered for the next call.

Also the uncompiled pieces the rest of the package runs on: the forward
pass keeping every node, and the chain rule with its arguments checked."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import as_value, astype, zeros_like_values
from ..arrays.cache import LRUCache
from ..arrays.quiet import loud, quiet
from ..calculus.differentiate import VECTOR as HVP_VECTOR
from ..calculus.graph import Forward, Graph
from ..calculus.products import MAX_NORM, VECTOR
from ..errors import DerivativeError, ValuesError
from ..language.gather import refuse_positions
from .arguments import CALLS, chain_targets, grad_targets, wrt_list, wrt_one, wrt_tuple
from .compiled import (
    CACHE_SIZE,
    GRAPH_CACHE_SIZE,
    HOT_PROGRAMS,
    MISS,
    Compiled,
    cached_program,
    compiled_dtype,
    dtype_of,
)
from .finite import check_results
from .graphs import hvp_graph
from .values import _finite as finite
from .values import check_vector, checked_values

if TYPE_CHECKING:
    from ..calculus.chain import ChainResult
    from ..language.network_like import Differentiable


def keep_caches(net: Any) -> None:
    """Give ``net`` the caches its calls use, each shared by threads."""
    net._checked = LRUCache(CACHE_SIZE)  # sizes whose statements are checked
    net._cache = LRUCache(CACHE_SIZE)  # compiled programs
    net._graphs = LRUCache(GRAPH_CACHE_SIZE)  # derivatives' graphs, for any sizes
    # (kind, of, wrt as given) -> the compiled programs the last such calls
    # used: the next call tries them first (Compiled.fast), with no sizes
    # inferred and no cache key built from them.
    net._hot = LRUCache(CACHE_SIZE)


def call_key(kind: str, of: Any, wrt: Any) -> tuple | None:
    """The key of a call's fast path: ``wrt`` as given (a list as a tuple);
    None where it cannot be one (an iterator: reading it would use it up)."""
    if wrt is None or isinstance(wrt, str):
        return (kind, of, wrt)
    if type(wrt) in (list, tuple):
        return (kind, of, tuple(wrt))
    return None


def fast(
    net: Differentiable,
    key: tuple | None,
    values: Any,
    strict: bool,
    check_finite: bool,
    memory_limit: int | None,
) -> Any:
    """The result of a call through one of the programs the last calls with
    ``key`` used (see :meth:`Compiled.fast`), or :data:`MISS`: the values need the
    general checks (or ``strict`` asks for them before any work)."""
    if strict or key is None or type(values) is not dict:
        return MISS
    try:
        recent = net._hot.peek(key)
    except TypeError:  # an unhashable argument: the general path says what is wrong
        return MISS
    for compiled in recent or ():
        result = compiled.fast(values, check_finite, memory_limit)
        if result is not MISS:
            return result
    return MISS


def fast_with(
    net: Differentiable,
    key: tuple | None,
    values: Any,
    extra: dict[str, tuple[Any, bool]],
    strict: bool,
    check_finite: bool,
    memory_limit: int | None,
) -> Any:
    """:func:`fast` for a program with more inputs: ``extra`` maps each
    to its value and whether it is a number the caller checked (a bound,
    made a 0-d array of the program's dtype); a product's vector must be
    a numpy array of the program's dtype and shape, as the values must."""
    if strict or key is None or type(values) is not dict:
        return MISS
    try:
        recent = net._hot.peek(key)
    except TypeError:
        return MISS
    for compiled in recent or ():
        token = quiet()  # a bound past float32's range is inf: no bound
        try:
            given = {
                name: np.asarray(value, compiled.dtype) if number else value
                for name, (value, number) in extra.items()
            }
        finally:
            loud(token)
        result = compiled.fast(values, check_finite, memory_limit, extra=given)
        if result is not MISS:
            return result
    return MISS


def remember(net: Differentiable, key: tuple | None, compiled: Compiled) -> None:
    """Keep ``compiled`` first among the programs calls with ``key`` try
    (the last :data:`HOT_PROGRAMS` used: a loop over a few batch sizes or
    dtypes finds its program without the general path)."""
    if key is not None:  # arguments the general path accepted: hashable
        recent = net._hot.peek(key) or ()
        kept = (compiled, *(c for c in recent if c is not compiled))
        net._hot.put(key, kept[:HOT_PROGRAMS])


def _run(net, kind, of, wrt, env, key, strict, check_finite, memory_limit) -> Any:
    """The general path's end: the program compiled (or cached), run, remembered."""
    compiled = cached_program(net, kind, of, wrt, net.sizes(env), dtype_of(env))
    result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
    remember(net, key, compiled)
    return result


def evaluate(net: Differentiable, values: Any, strict, check_finite, memory_limit) -> Any:
    """See :meth:`tensorchain.Network.evaluate`."""
    key = ("forward", "", ())
    result = fast(net, key, values, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    env = checked_values(net, values, strict, check_finite)
    return _run(net, "forward", "", (), env, key, strict, check_finite, memory_limit)


def grad(net: Differentiable, of, wrt, values, strict, check_finite, memory_limit) -> Any:
    """See :meth:`tensorchain.Network.grad`."""
    key = call_key("grad", of, wrt)
    result = fast(net, key, values, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    targets = grad_targets(net, of, wrt)
    if values is None:
        raise ValuesError("grad needs values: net.grad(of, wrt, values=...)")
    env = checked_values(net, values, strict, check_finite)
    return _run(net, "grad", of, targets, env, key, strict, check_finite, memory_limit)


def derivative(net: Differentiable, of, wrt, values, strict, check_finite, memory_limit) -> Any:
    """See :meth:`tensorchain.Network.derivative`."""
    key = call_key("derivative", of, wrt)
    result = fast(net, key, values, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    wrts = wrt_tuple(net, wrt)
    net.info(of)
    env = checked_values(net, values, strict, check_finite)
    kind = "jacobian" if len(wrts) == 1 else "derivative"
    return _run(net, kind, of, wrts, env, key, strict, check_finite, memory_limit)


def jacobian(net: Differentiable, of, wrt, values, strict, check_finite, memory_limit) -> Any:
    """See :meth:`tensorchain.Network.jacobian`."""
    key = ("jacobian", of, wrt) if isinstance(wrt, str) else None
    result = fast(net, key, values, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    net.info(of)
    targets = (wrt,) if isinstance(wrt, str) else wrt_list(net, wrt)
    refuse_positions(net, targets, "a Jacobian")
    env = checked_values(net, values, strict, check_finite)
    sizes, dtype = net.sizes(env), dtype_of(env)
    out = {}
    for w in targets:
        compiled = cached_program(net, "jacobian", of, (w,), sizes, dtype)
        out[w] = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
    if key is None:
        return out
    remember(net, key, compiled)
    return out[wrt]


def hvp(net: Differentiable, of, wrt, vector, values, strict, check_finite, memory_limit) -> Any:
    """See :meth:`tensorchain.Network.hvp`."""
    key = ("hvp", of, wrt)
    found = {HVP_VECTOR: (vector, False)}
    result = fast_with(net, key, values, found, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    wrt_one(wrt, "hvp")
    grad_targets(net, of, [wrt], "hvp")
    env = checked_values(net, values, strict, check_finite)
    sizes = net.sizes(env)
    shape = tuple(sizes[d] for d in net.tensors[wrt].dims)
    vector = check_vector(vector, env, shape, wrt, "hvp", strict, check_finite)
    if hvp_graph(net, of, wrt)[1] is None:  # of does not depend on wrt
        return zeros_like_values(shape, env)
    compiled = cached_program(net, "hvp", of, (wrt,), sizes, dtype_of(env))
    result = compiled.run({**env, HVP_VECTOR: vector}, memory_limit, check_finite=False)
    if check_finite and finite(vector):  # a non-finite vector has been reported
        check_results(net, env, result, compiled.what, of, strict)
    remember(net, key, compiled)
    return result


def gnvp(
    net: Differentiable, loss, out, wrt, vector, values, strict, check_finite, memory_limit
) -> Any:
    """See :meth:`tensorchain.Network.gnvp`."""
    key = ("gnvp", (loss, out), (wrt,))
    found = {VECTOR: (vector, False)}
    result = fast_with(net, key, values, found, strict, check_finite, memory_limit)
    if result is not MISS:
        return result
    wrt_one(wrt, "gnvp")
    grad_targets(net, loss, [out], "gnvp")
    net.info(wrt)
    env = checked_values(net, values, strict, check_finite)
    shape = tuple(net.sizes(env)[d] for d in net.tensors[wrt].dims)
    vector = check_vector(vector, env, shape, wrt, "Gauss–Newton", strict, check_finite)
    if net.derivative_graph(loss, (out,))[1] is None:
        return zeros_like_values(shape, values)  # the loss does not depend on out
    extra = {VECTOR: vector}
    return product(
        net, "gnvp", (loss, out), [wrt], values, extra, strict, memory_limit, check_finite
    )


def product(
    net: Differentiable, kind, of, wrt, values, extra, strict, memory_limit, check_finite
) -> Any:
    """A product of :mod:`tensorchain.calculus.products` (``norms``,
    ``clipped``, ``ntk``, ``gnvp``) on values, ``extra``: its other inputs."""
    key = call_key(kind, of, wrt)
    if kind != "gnvp":  # gnvp tried the fast path itself, with its vector
        found = {name: (value, True) for name, value in extra.items()}
        result = fast_with(net, key, values, found, strict, check_finite, memory_limit)
        if result is not MISS:
            return result
    if values is None:
        raise ValuesError(f"{kind} needs values")
    targets = (wrt,) if isinstance(wrt, str) else tuple(wrt or net.params)
    for w in targets:
        net.info(w)
    refuse_positions(net, targets, CALLS.get(kind, f"the {kind}"))
    for name in of if isinstance(of, tuple) else (of,):
        net.info(name)
    env = checked_values(net, values, strict, check_finite)
    dtype = dtype_of(env)
    compiled = cached_program(net, kind, of, targets, net.sizes(env), dtype)
    with np.errstate(over="ignore"):  # a bound past float32's range is inf: no bound
        env = {**env, **{k: astype(as_value(v, env), dtype) for k, v in extra.items()}}
    result = compiled.run(env, memory_limit, strict=strict, check_finite=check_finite)
    remember(net, key, compiled)
    return result


def hessian(net: Differentiable, of, wrt, values, wrt2, strict, check_finite, memory_limit):
    """See :meth:`tensorchain.Network.hessian`: :func:`derivative` by ``(wrt, wrt2)``."""
    wrt_one(wrt, "hessian")
    wrt2 = wrt if wrt2 is None else wrt2
    wrt_one(wrt2, "hessian")
    return net.derivative(
        of, (wrt, wrt2), values, strict=strict, check_finite=check_finite, memory_limit=memory_limit
    )


def clipped(net: Differentiable, of, wrt, values, max_norm, strict, check_finite, memory_limit):
    """See :meth:`tensorchain.Network.clipped_grad`."""
    if not (isinstance(max_norm, int | float | np.floating) and max_norm > 0):
        raise DerivativeError(f"max_norm must be a positive number, got {max_norm!r}")
    extra = {MAX_NORM: np.asarray(max_norm)}
    return product(net, "clipped", of, wrt, values, extra, strict, memory_limit, check_finite)


def compile_grad(net: Differentiable, of, wrt, dims, sizes, dtype, memory_limit) -> Compiled:
    """See :meth:`tensorchain.Network.compile_grad` (``dims``, ``sizes``: as given)."""
    targets = grad_targets(net, of, wrt)
    sizes = net.sizes(dims=dims, **sizes)
    program = cached_program(net, "grad", of, targets, sizes, compiled_dtype(dtype))
    return program.limited(memory_limit)


def compile_jacobian(net: Differentiable, of, wrt, dims, sizes, dtype, memory_limit) -> Compiled:
    """See :meth:`tensorchain.Network.compile_jacobian` (``dims``, ``sizes``: as given)."""
    wrt_one(wrt, "compile_jacobian")
    sizes = net.sizes(dims=dims, **sizes)
    program = cached_program(net, "jacobian", of, (wrt,), sizes, compiled_dtype(dtype))
    return program.limited(memory_limit)


def forward(net: Differentiable, values: Mapping[str, Any]) -> Forward:
    """Every statement evaluated (uncompiled) on checked values, keeping the
    value of every node."""
    env = checked_values(net, values)
    return net.run_forward(env, net.sizes(env))


def chain_rule(
    net: Differentiable,
    of: str,
    wrt: Sequence[str],
    values: Mapping[str, Any] | Forward,
    structured: bool,
    mode: str,
) -> ChainResult:
    """See :meth:`tensorchain.Network.derivatives`: the arguments checked,
    the forward pass run where ``values`` are not one already."""
    chain_targets(net, of, wrt, mode)
    forward = values if isinstance(values, Forward) else net.forward(values)
    return Graph.derivatives(net, of, wrt, forward, structured, mode)
