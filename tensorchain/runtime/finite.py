"""Finite results: NaN or infinity in what a call returns is reported, with
the statement where non-finite values first appear.

Values are checked before any work (:func:`tensorchain.runtime.values.check_values`);
results are checked after it, by one pass over the arrays returned. Only when
a result is not finite is the network run again, step by step, to find the
first statement whose value (or local derivative) is not finite.

A structured result (a :class:`LabeledTensor`) can be finite as stored and
overflow when made dense: its coefficient or the product of its factors
passes the largest float. Its dense entries are bounded by
Σ_terms |coeff| · Π max|factor| (deltas, selections and reshape constants are
0 or 1); only when that bound passes the largest float is the dense form
computed (within the memory limit), checked and kept for ``.array``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import backend_of, namespace, to_numpy
from ..arrays.limits import get_memory_limit
from ..calculus.labeled import LabeledTensor
from ..errors import MemoryLimitError, NonFiniteWarning, ValuesError, warn
from ..language.gather import Selection
from .values import _count, _count_non_finite, _finite

if TYPE_CHECKING:
    from ..language.network_like import Differentiable


def result_arrays(result: Any) -> list[Any]:
    """The arrays a call returned: a dict's values, a LabeledTensor's factors
    (not its selections, whose integer positions are finite)."""
    if isinstance(result, Mapping):
        return [a for value in result.values() for a in result_arrays(value)]
    if isinstance(result, LabeledTensor):
        return [
            f.array for t in result.terms for f in t.factors if not isinstance(f.array, Selection)
        ]
    if isinstance(result, list | tuple):
        return [a for value in result for a in result_arrays(value)]
    return [result]


def labeled_results(result: Any) -> list[LabeledTensor]:
    """The structured tensors among what a call returned."""
    if isinstance(result, LabeledTensor):
        return [result]
    if isinstance(result, Mapping):
        result = list(result.values())
    if isinstance(result, list | tuple):
        return [t for value in result for t in labeled_results(value)]
    return []


def dense_bound(tensor: LabeledTensor) -> float:
    """A bound on every entry of ``tensor``'s dense form, ``Σ_terms |coeff| ·
    Π max|factor|`` (a Python float: inf when it passes float64's range).
    A reshape's or a shift's constant, a strided view larger than its
    storage, is bounded by what it stores."""
    total = 0.0
    for term in tensor.terms:
        bound = abs(term.coeff)
        for f in term.factors:
            a = f.array
            if isinstance(a, Selection) or bound == 0.0:
                continue
            if isinstance(a, np.ndarray):
                root = a
                while isinstance(root.base, np.ndarray):
                    root = root.base
                a = root if root.size < a.size else a
                bound *= float(np.max(np.abs(a))) if a.size else 0.0
            else:  # another library's, on its own device
                xp = namespace(a)
                bound *= float(xp.max(xp.abs(a))) if math.prod(a.shape) else 0.0
        total += bound
    return total


def dense_may_overflow(tensor: LabeledTensor) -> bool:
    """Whether ``tensor``'s dense form could pass the largest float of its
    dtype: False when one term of one factor with ``|coeff| <= 1`` (its dense
    entries are the factor's), else when :func:`dense_bound` says so."""
    terms = tensor.terms
    if len(terms) == 1 and abs(terms[0].coeff) <= 1.0:
        values = [f for f in terms[0].factors if not isinstance(f.array, Selection)]
        if len(values) <= 1:
            return False
    top = float(np.finfo(tensor.result_dtype).max)
    try:
        return not dense_bound(tensor) < 0.5 * top  # half: room for rounding
    except TypeError:  # a traced value (inside jax.jit): no number to check yet
        return False


def _dense_overflow(tensor: LabeledTensor) -> tuple[int, int] | None:
    """(non-finite entries, entries) of ``tensor``'s dense form when it
    overflows (the form kept for ``.array``), (-1, entries) when it may and is
    too large to compute within the memory limit, else None."""
    if not dense_may_overflow(tensor):
        return None
    total = math.prod(tensor.shape)
    if 8 * total > get_memory_limit():
        return -1, total
    try:
        with np.errstate(all="ignore"):
            dense = tensor.dense()
    except MemoryLimitError:  # its terms' data too: the check cannot be made
        return -1, total
    tensor.__dict__["array"] = dense  # .array (a cached property): no second computation
    bad = _count_non_finite(dense)
    return (bad, total) if bad else None


def check_results(
    net: Differentiable,
    env: Mapping[str, Any],
    result: Any,
    what: str,
    of: str | None = None,
    strict: bool = False,
) -> None:
    """Warn (:class:`NonFiniteWarning`), or raise :class:`ValuesError` with
    ``strict``, if ``result`` holds NaN or infinity, naming the statement where
    non-finite values first appear. Lazy (dask) results are not computed to
    check them."""
    given = {id(v) for v in env.values()}  # evaluate returns the values given too
    arrays = [a for a in result_arrays(result) if backend_of(a) != "dask" and id(a) not in given]
    if all(_finite(a) for a in arrays):
        lazy = any(backend_of(a) == "dask" for a in result_arrays(result))
        found = [] if lazy else [_dense_overflow(t) for t in labeled_results(result)]
        found = [f for f in found if f is not None]
        if not found:
            return
        bad, total = sum(f[0] for f in found), sum(f[1] for f in found)
        if bad < 0:
            warn(
                f"{what} is finite as stored, but its dense form may overflow: the"
                " coefficients times the largest entries of its factors pass the"
                " largest float, and it is too large to check within the memory"
                " limit; read it by blocks (.block, .to_dask) or rescale the values",
                NonFiniteWarning,
            )
            return
        message = (
            f"{what} is finite as stored (its factors), but its dense form (.array)"
            f" overflows ({bad:,} of {total:,} numbers); {first_non_finite(net, env, of)}"
        )
        if strict:
            raise ValuesError(message)
        warn(message + " (strict=True makes this an error)", NonFiniteWarning)
        return
    if not strict and any(_count(v != v) for v in env.values()):
        return  # NaN in the values: check_values has warned once already
    bad = sum(_count_non_finite(a) for a in arrays)
    total = sum(int(np.size(a)) for a in arrays)
    message = (
        f"{what} holds NaN or infinity ({bad:,} of {total:,} numbers);"
        f" {first_non_finite(net, env, of)}"
    )
    if strict:
        raise ValuesError(message)
    warn(message + " (strict=True makes this an error)", NonFiniteWarning)


def first_non_finite(net: Differentiable, env: Mapping[str, Any], of: str | None = None) -> str:
    """Where non-finite values first appear, in words: the first statement
    (of those ``of`` depends on) whose value is not finite, else the first
    whose local derivative is not, else the products of the chain rule."""
    values = {name: np.asarray(to_numpy(value)) for name, value in env.items()}
    infinite = [name for name, v in values.items() if not np.isfinite(v).all()]
    inputs = (
        f" (infinite or NaN entries in the values of {', '.join(infinite)})" if infinite else ""
    )
    needed = upstream(net, of)
    statements = [s for s in net.statements if s.target in needed]
    with np.errstate(all="ignore"):
        forward = net.run_forward(dict(values), net.sizes(values))
        for stmt in statements:
            if not np.isfinite(forward.values[stmt.target]).all():
                return (
                    f"non-finite values first appear in {stmt.text} (line {stmt.pos.line}){inputs}"
                )
        for stmt in statements:
            local = net.local_jacobians(stmt.target, forward)
            for name, jac in local.items():
                if not all(np.isfinite(a).all() for a in jac.stored_arrays()):
                    return (
                        f"every value is finite, but non-finite values first appear in the"
                        f" derivative of {stmt.text} (line {stmt.pos.line}) by {name}{inputs}"
                    )
    return (
        "every value and every local derivative is finite, so the products of the"
        f" chain rule overflow{inputs}"
    )


def upstream(net: Differentiable, of: str | None) -> set[str]:
    """The tensors ``of`` depends on, itself included (every tensor when ``of``
    is None)."""
    if of is None:
        return set(net.tensors)
    found = {of}
    for stmt in reversed(net.statements):
        if stmt.target in found:
            found.update(stmt.operands)
    return found
