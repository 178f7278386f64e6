"""Chain orders: the order in which a derivative's chain of local Jacobians is
multiplied, chosen and costed on the delta-reduced factors.

After delta elimination a derivative is a sum of terms, each a product of
factors that come, in order, from the local Jacobians on the way from ``of``
to ``wrt`` (the *links* of the chain). An order is a binary contraction tree
over those factors:

* ``"reverse"`` contracts from the ``of`` side (backprop's order);
* ``"forward"`` from the ``wrt`` side;
* ``"optimal"`` is the cheapest bracketing of the links, found by a dynamic
  program over contiguous segments (optimal Jacobian accumulation, each step
  costed in opt_einsum's FLOPs on the delta-reduced tensors); it is the
  exact minimum over every order that multiplies neighbouring segments;
* any opt_einsum strategy by name (``"greedy"``, ``"dp"``, ``"branch-2"``,
  ...), or an ``opt_einsum.paths.PathOptimizer``, searches all pairings.

This module orders one term (:func:`plan_term`, a :class:`TermPlan`); with a
limit on the intermediates, ``"optimal"`` is the cheapest order whose
intermediates all fit. :mod:`tensorchain.planning.plan` makes the whole
derivative's :class:`~tensorchain.planning.plan.Plan` from these terms.
"""

from __future__ import annotations

import functools
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import opt_einsum as oe

from ..arrays.limits import format_bytes
from ..calculus.labeled import Factor, LabeledTensor, Term
from ..contraction.einsum import equation
from ..errors import PlanError

#: opt_einsum strategies ``explore`` tries (and ``"cotengra"`` when installed);
#: any other opt_einsum name works in ``plan`` too, ``"optimal-einsum"`` is
#: opt_einsum's exhaustive ``optimal``.
STRATEGIES = ("greedy", "dp", "branch-2", "auto")


@dataclass
class TermPlan:
    """The order for one term: an opt_einsum path over its factors."""

    equation: str
    factors: tuple[str, ...]  # each factor's name, in chain order
    path: list[tuple[int, ...]]
    info: Any  # opt_einsum PathInfo for this path
    coeff: float
    output: tuple[str, ...]
    deltas: tuple[tuple[str, str], ...]
    labels: tuple[tuple[str, ...], ...]


def _cotengra() -> Any:
    """cotengra's hyper-optimiser (an opt_einsum PathOptimizer), for very large
    networks; only when cotengra is installed."""
    try:
        import cotengra as ctg
    except ImportError:
        raise PlanError(
            "order='cotengra' needs cotengra: pip install 'tensorchain[cotengra]'"
        ) from None
    return ctg.HyperOptimizer(
        methods=["greedy", "labels"], max_repeats=32, optlib="random", progbar=False, parallel=False
    )


class _Nothing:
    """The path info of a term without factors."""

    opt_cost = 0
    largest_intermediate = 0
    contraction_list: tuple = ()


def _links(factors: Sequence[Factor]) -> list[int]:
    """Consecutive factors from one local Jacobian form one link."""
    links, current, previous = [], -1, None
    for f in factors:
        if f.origin != previous or not f.origin:
            current += 1
        previous = f.origin
        links.append(current)
    return links


def _output(chain: LabeledTensor, term: Term) -> tuple[str, ...]:
    tied = {b for _, b in term.deltas}
    present = {lab for f in term.factors for lab in f.labels}
    return tuple(i for i in chain.indices if i not in tied and i in present)


def _pair_cost(a: frozenset, b: frozenset, keep: frozenset, sizes: Mapping[str, int]) -> int:
    """opt_einsum's FLOP count of contracting two tensors: the size of the joint
    index space, doubled when something is summed."""
    union = a | b
    return math.prod(sizes[lab] for lab in union) * (2 if union - keep else 1)


def segment_labels(groups: Sequence[frozenset], output: frozenset):
    """``labels(i, j)``: the labels of the contracted segment ``i..j`` of the
    chain, those shared with anything outside it, or outputs."""
    count: dict[str, int] = {}
    for g in groups:
        for lab in g:
            count[lab] = count.get(lab, 0) + 1

    @functools.cache
    def labels(i: int, j: int) -> frozenset:
        inside: dict[str, int] = {}
        for g in groups[i : j + 1]:
            for lab in g:
                inside[lab] = inside.get(lab, 0) + 1
        return frozenset(lab for lab, c in inside.items() if c < count[lab] or lab in output)

    return labels


def chain_dp(
    groups: Sequence[frozenset],
    leaf_cost: Sequence[int],
    output: frozenset,
    sizes: Mapping[str, int],
    limit: int | None = None,
) -> tuple[int, Any]:
    """The cheapest bracketing of a chain of tensors (labels ``groups``), each
    step costed in FLOPs; with ``limit``, no intermediate may exceed it
    (entries). Returns ``(cost, tree)``, the tree nested pairs of link
    numbers, or ``(inf, None)`` when no order fits."""
    n = len(groups)
    labels = segment_labels(groups, output)

    def size(labs: frozenset) -> int:
        return math.prod(sizes[lab] for lab in labs)

    best: dict[tuple[int, int], tuple[float, Any]] = {}
    for i in range(n):
        fits = limit is None or size(labels(i, i)) <= limit
        best[i, i] = (leaf_cost[i], i) if fits else (math.inf, None)
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            keep = labels(i, j)
            if limit is not None and size(keep) > limit:
                best[i, j] = (math.inf, None)
                continue
            choice = (math.inf, None)
            for k in range(i, j):
                left, right = best[i, k], best[k + 1, j]
                if left[1] is None or right[1] is None:
                    continue
                cost = left[0] + right[0] + _pair_cost(labels(i, k), labels(k + 1, j), keep, sizes)
                if cost < choice[0]:
                    choice = (cost, (left[1], right[1]))
            best[i, j] = choice
    return best[0, n - 1]


def _tree_path(tree: Any, members: Sequence[Sequence[int]]) -> list[tuple[int, ...]]:
    """An opt_einsum path (positions in the shrinking operand list) that
    first contracts each link's own factors, then follows ``tree``."""
    operands: list[Any] = [("f", k) for link in members for k in link]
    path: list[tuple[int, ...]] = []

    def merge(items: list[Any]) -> Any:
        positions = tuple(sorted(operands.index(x) for x in items))
        for p in sorted(positions, reverse=True):
            del operands[p]
        node = ("n", len(path))
        operands.append(node)
        path.append(positions)
        return node

    def build(node: Any) -> Any:
        if isinstance(node, int):
            items = [("f", k) for k in members[node]]
            return items[0] if len(items) == 1 else merge(items)
        left, right = build(node[0]), build(node[1])
        return merge([left, right])

    build(tree)
    return path


def _linear_tree(n: int, reverse: bool) -> Any:
    order = list(range(n)) if reverse else list(range(n - 1, -1, -1))
    tree: Any = order[0]
    for k in order[1:]:
        tree = (tree, k)
    return tree


@dataclass
class Links:
    """One term's chain, cut into links (a link: the factors one local
    Jacobian contributes), in chain order: what a chain order brackets."""

    labels: list[tuple[str, ...]]  # each factor's labels
    members: list[list[int]]  # each link's factors, by position
    output: tuple[str, ...]
    sizes: Mapping[str, int]

    @property
    def groups(self) -> list[frozenset]:
        """Each link's labels."""
        return [frozenset(lab for k in m for lab in self.labels[k]) for m in self.members]


def _reverse(links: Links, limit: int | None) -> Any:
    """From the output back to the inputs (backpropagation's order)."""
    return _linear_tree(len(links.members), True)


def _forward(links: Links, limit: int | None) -> Any:
    """From the inputs to the output (forward mode's order)."""
    return _linear_tree(len(links.members), False)


def _optimal(links: Links, limit: int | None) -> Any:
    """The fewest FLOPs over every bracketing, each intermediate within
    ``limit`` entries (:func:`chain_dp`)."""
    groups, output, sizes = links.groups, frozenset(links.output), links.sizes
    leaf = [_link_cost(links.labels, m, groups, links.output, sizes) for m in links.members]
    _, tree = chain_dp(groups, leaf, output, sizes, limit)
    if tree is None:
        smallest = smallest_peak(groups, output, sizes)
        raise PlanError(
            f"no order of this chain keeps every intermediate within the memory"
            f" limit of {format_bytes(8 * limit)}; the smallest achievable largest"
            f" intermediate is {smallest:,} entries ({format_bytes(8 * smallest)})"
        )
    return tree


#: The chain orders by name: each gives the bracketing in which a term's
#: links are multiplied, a binary tree of link positions (``((0, 1), 2)``),
#: within ``limit`` entries per intermediate where it can. A new order is a
#: function here and its name in this table.
ORDERS: dict[str, Callable[[Links, int | None], Any]] = {
    "reverse": _reverse,
    "forward": _forward,
    "optimal": _optimal,
}


def plan_term(chain: LabeledTensor, term: Term, order: Any, limit: int | None) -> TermPlan:
    """The order of one ``term`` of ``chain``, as an opt_einsum path over its
    factors, with its cost: a chain order of :data:`ORDERS`, or an
    opt_einsum strategy; ``limit`` bounds every intermediate (entries) of
    ``"optimal"``. Raises PlanError when no order fits the limit."""
    sizes = chain.sizes
    output = _output(chain, term)
    labels = [f.labels for f in term.factors]
    eq = equation(labels, output)
    shapes = [tuple(sizes[lab] for lab in ls) for ls in labels]
    names = tuple(f.origin or f.name for f in term.factors)
    links = _links(term.factors)
    members = [
        [k for k, link in enumerate(links) if link == m] for m in range(max(links, default=-1) + 1)
    ]
    if len(term.factors) <= 1:
        path: list[tuple[int, ...]] = [(0,)] if term.factors else []
    elif isinstance(order, str) and order in ORDERS:
        tree = ORDERS[order](Links(labels, members, tuple(output), sizes), limit)
        path = _tree_path(tree, members)
    else:
        if order == "cotengra":
            optimize = _cotengra()
        else:
            optimize = "optimal" if order == "optimal-einsum" else order
        path, _ = oe.contract_path(eq, *shapes, shapes=True, optimize=optimize)
    if term.factors:
        _, info = oe.contract_path(eq, *shapes, shapes=True, optimize=path)
    else:  # a constant term: nothing to contract
        info = _Nothing()
    return TermPlan(eq, names, list(path), info, term.coeff, output, term.deltas, tuple(labels))


def _link_cost(labels, members, groups, output, sizes) -> int:
    """FLOPs to contract one link's own factors (0 for a single factor)."""
    if len(members) <= 1:
        return 0
    shapes = [tuple(sizes[lab] for lab in labels[k]) for k in members]
    others = {lab for g in groups for lab in g} - {lab for k in members for lab in labels[k]}
    outside = [lab for k in members for lab in labels[k] if lab in others or lab in output]
    eq = equation([labels[k] for k in members], list(dict.fromkeys(outside)))
    _, info = oe.contract_path(eq, *shapes, shapes=True, optimize="dp")
    return int(info.opt_cost)


def smallest_peak(groups: Sequence[frozenset], output: frozenset, sizes: Mapping[str, int]) -> int:
    """The least possible largest intermediate (entries) over every bracketing."""
    n = len(groups)
    labels = segment_labels(groups, output)
    best = {(i, i): math.prod(sizes[lab] for lab in labels(i, i)) for i in range(n)}
    for span in range(1, n):
        for i in range(n - span):
            j = i + span
            own = math.prod(sizes[lab] for lab in labels(i, j))
            best[i, j] = max(own, min(max(best[i, k], best[k + 1, j]) for k in range(i, j)))
    return best[0, n - 1]
