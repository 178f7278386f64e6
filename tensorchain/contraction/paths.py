"""Planned contractions: opt_einsum's path for an equation, found once and cached.

By default the path is the cheaper (in FLOPs) of ``'greedy'`` and ``'dp'``,
and ``'greedy'`` alone past 12 operands: ``'optimal'`` is wrong on chains with
diagonal factors (opt_einsum #167), ``'dp'`` skips some paths that multiply two
vectors on one index first (``a,a,b->ab``: 24 FLOPs against greedy's 16), and
``'dp'`` grows exponentially when many vectors share one index.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import opt_einsum as oe

from ..arrays.backend import common, is_numpy
from ..arrays.cache import LRUCache
from .pairwise import Ops
from .steps import executor

DP_LIMIT = 12


def plan_path(eq: str, shapes: Sequence[tuple[int, ...]], optimize: Any = None):
    """``(path, PathInfo, optimizer name)`` for ``eq`` on operands of ``shapes``:
    the given optimizer, or the cheaper of greedy and dp."""
    if optimize is not None:
        path, info = oe.contract_path(eq, *shapes, optimize=optimize, shapes=True)
        return path, info, str(optimize)
    names = ("greedy", "dp") if len(shapes) <= DP_LIMIT else ("greedy",)
    best = None
    for name in names:
        path, info = oe.contract_path(eq, *shapes, optimize=name, shapes=True)
        key = (int(info.opt_cost), int(info.largest_intermediate))
        if best is None or key < best[0]:
            best = (key, path, info, name)
    assert best is not None
    return best[1], best[2], best[3]


#: How many planned contractions (equation, shapes, optimizer) are kept.
PATH_CACHE_SIZE = 1024
_EXPRESSIONS = LRUCache(PATH_CACHE_SIZE)


def _expression(eq: str, shapes: tuple[tuple[int, ...], ...], optimize: Any):
    _, info, name = plan_path(eq, shapes, optimize)
    run_numpy, fresh, source = executor(eq, shapes, info)
    others: dict[str, Any] = {}  # the same steps with another library's functions

    def run(*arrays: Any) -> Any:
        if is_numpy(*arrays):
            return run_numpy(*arrays)
        library, arrays = common(arrays)
        if library not in others:
            others[library] = executor(eq, shapes, info, Ops(library))[0]
        return others[library](*arrays)

    # Another library's result may be a view of an operand (never written to).
    return Planned(run, fresh, info, name, source, run_numpy)


@dataclass(frozen=True)
class Planned:
    """A planned contraction: ``run`` on arrays of any library, ``numpy`` on
    numpy arrays only (no dispatch), ``fresh`` whether it always returns a
    new array, opt_einsum's ``info``, the optimizer's ``name``, and ``source``
    writing it as numpy source."""

    run: Any
    fresh: bool
    info: Any
    name: str
    source: Any
    numpy: Any


def planned(eq: str, shapes: tuple[tuple[int, ...], ...], optimize: Any = None) -> Planned:
    """The :class:`Planned` contraction ``eq`` of operands of ``shapes``,
    cached on (equation, shapes, optimizer), so a path is found once."""
    key = (eq, shapes, optimize)
    try:
        hash(key)
    except TypeError:  # an unhashable custom optimizer: plan without the cache
        return _expression(*key)
    return _EXPRESSIONS.get(key, lambda: _expression(*key))
