"""Finite results: NaN or infinity in what a call returns is reported, with
the statement where non-finite values first appear.

Values are checked before any work (:func:`tensorchain.values.check_values`);
results are checked after it, by one pass over the arrays returned. Only when
a result is not finite is the network run again, step by step, to find the
first statement whose value (or local derivative) is not finite.
"""

from __future__ import annotations

import warnings
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from .backend import backend_of, to_numpy
from .errors import NonFiniteWarning, ValuesError
from .gather import Selection
from .labeled import LabeledTensor
from .values import _count, _count_non_finite, _finite

if TYPE_CHECKING:
    from .network import Network


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


def check_results(
    net: Network,
    env: Mapping[str, Any],
    result: Any,
    what: str,
    of: str | None = None,
    strict: bool = False,
    stacklevel: int = 3,
) -> None:
    """Warn (:class:`NonFiniteWarning`), or raise :class:`ValuesError` with
    ``strict``, if ``result`` holds NaN or infinity, naming the statement where
    non-finite values first appear. Lazy (dask) results are not computed to
    check them."""
    given = {id(v) for v in env.values()}  # evaluate returns the values given too
    arrays = [a for a in result_arrays(result) if backend_of(a) != "dask" and id(a) not in given]
    if all(_finite(a) for a in arrays):
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
    warnings.warn(
        message + " (strict=True makes this an error)", NonFiniteWarning, stacklevel=stacklevel
    )


def first_non_finite(net: Network, env: Mapping[str, Any], of: str | None = None) -> str:
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


def upstream(net: Network, of: str | None) -> set[str]:
    """The tensors ``of`` depends on, itself included (every tensor when ``of``
    is None)."""
    if of is None:
        return set(net.tensors)
    found = {of}
    for stmt in reversed(net.statements):
        if stmt.target in found:
            found.update(stmt.operands)
    return found
