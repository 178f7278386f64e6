"""The chain rule: local Jacobians of each statement, then of the whole network.

Within a statement the expression tree is walked from the root down; each
step is :meth:`LabeledTensor.chain` with a rule from ``rules``, and the uses
of one tensor are added. Over the network the same is done statement by
statement in reverse (from ``of`` towards ``wrt``). Products stay unevaluated:
a plain chain is one tensor network, contracted once by opt_einsum when the
result is asked for. Where paths merge (a tensor used by two statements, a
local Jacobian that is a sum) the terms are contracted and added, and where
they fork (a tensor whose statement uses several tensors on a path to a
target) the chain so far is contracted once and shared: the work grows with
the number of edges, never with the number of paths or targets.
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

from ..contraction.einsum import Contraction
from ..language.gather import stored_entries as entries
from ..language.operations import Const, Leaf, Lowered, Node, children
from .factors import STATEMENT
from .labeled import LabeledTensor
from .rules import local_rule
from .terms import changed, fresh


def axis_names(*groups: Sequence[str]) -> list[tuple[str, ...]]:
    """Name axes after their dims, priming repeats: ``(n,), (n, m) -> (n,), (n', m)``."""
    used: set[str] = set()
    out = []
    for dims in groups:
        names = []
        for d in dims:
            name = d
            while name in used:
                name += "'"
            used.add(name)
            names.append(name)
        out.append(tuple(names))
    return out


def _depends(node: Node) -> bool:
    return isinstance(node, Leaf) or any(_depends(c) for c in children(node))


def statement_jacobians(
    stmt: Lowered,
    node_values: dict[int, np.ndarray],
    label_sizes: dict[str, int],
) -> dict[str, LabeledTensor]:
    """d target / d operand for every tensor the statement uses.

    Axes: the target's (``stmt.labels``, renamed fresh) then the operand's.
    Nothing is contracted: each factor remembers the local Jacobian it came
    from (``origin``), so the network-level chain is planned as a whole.
    """
    out_labels = tuple(fresh(lab) for lab in stmt.labels)
    sizes = {
        **label_sizes,
        **{o: label_sizes[lab] for o, lab in zip(out_labels, stmt.labels, strict=True)},
    }
    k_out = len(out_labels)
    stack: list[tuple[Node, LabeledTensor]] = [
        (stmt.root, LabeledTensor.identity((*out_labels, *stmt.labels), sizes))
    ]
    token = STATEMENT.set(f"line {stmt.pos.line}: {stmt.text}" if stmt.text else "")
    try:
        found = _walk_statement(stack, node_values, sizes)
    finally:
        STATEMENT.reset(token)
    assert all(j.ndim >= k_out for j in found.values())
    out = {}
    for name, jac in found.items():
        origin = f"d{stmt.target}/d{name}"
        terms = [
            changed(t, factors=tuple(changed(f, origin=origin) for f in t.factors))
            for t in jac.terms
        ]
        out[name] = LabeledTensor(jac.indices, jac.sizes, terms, canonicalize=False)
    return out


def _walk_statement(
    stack: list, node_values: dict, sizes: dict[str, int]
) -> dict[str, LabeledTensor]:
    """The statement's tree walked from the root: each operand's Jacobian (its
    uses added once, at the end: adding at each use made k uses cost O(k²))."""
    uses: dict[str, list[LabeledTensor]] = {}
    while stack:
        node, adjoint = stack.pop()
        if isinstance(node, Leaf):
            uses.setdefault(node.name, []).append(adjoint)
            continue
        for k, child in enumerate(children(node)):
            if isinstance(child, Const) or not _depends(child):
                continue
            local = local_rule(node, k, node_values, sizes)
            step = adjoint.chain(local, len(node.labels))
            if len(step.terms) > 2:
                # Nested sums of terms (softmax of softmax) would multiply out
                # into 2^depth terms: add them up, one term per delta structure.
                step = step.factored().contracted()
            stack.append((child, step))
    return {name: LabeledTensor.sum(jacs) for name, jacs in uses.items()}


@dataclass
class ChainResult:
    """What one derivative computation did, kept for printouts."""

    jacobians: dict[str, LabeledTensor]
    chains: dict[str, LabeledTensor]  # the unevaluated network for each target
    locals: dict[tuple[str, str], LabeledTensor]  # (of, operand) -> local Jacobian
    contractions: list[Contraction] = field(default_factory=list)


def network_jacobians(
    statements: Sequence[Lowered],
    axes: Mapping[str, tuple[str, ...]],
    sizes: dict[str, int],
    local_fn: Callable[[Lowered], dict[str, LabeledTensor]],
    of: str,
    wrts: Sequence[str],
    structured: bool = False,
) -> ChainResult:
    """d of / d w for each w in ``wrts`` by reverse accumulation over statements.

    Each result is contracted into one array per term, or with ``structured``
    only as far as that keeps it small (:meth:`LabeledTensor.compacted`: a
    per-sample gradient stays an outer product of its factors).

    ``local_fn(stmt)`` returns :func:`statement_jacobians` of a statement with
    axes named after dims; it is called only for statements on a path.
    """
    wanted = set(wrts)
    downstream = set(wanted)  # tensors that depend on some wrt
    for stmt in statements:
        if any(op in downstream for op in stmt.operands):
            downstream.add(stmt.target)
    out_names = tuple(fresh(d) for d in axes[of])
    label_size = {
        **sizes,
        **{o: sizes[d] for o, d in zip(out_names, axes[of], strict=True)},
    }

    def node_axes(name: str) -> tuple[str, ...]:
        return tuple(f"{name}.{k}" for k in range(len(axes[name])))

    for name in {of, *wrts}:
        label_size.update(
            (lab, sizes[d]) for lab, d in zip(node_axes(name), axes[name], strict=True)
        )
    # Each tensor's adjoint, one part per use, added when its statement is
    # reached (adding at each use made k uses cost O(k²)).
    adjoint: dict[str, list[LabeledTensor]] = {}
    if of in downstream:
        adjoint[of] = [LabeledTensor.identity((*out_names, *node_axes(of)), label_size)]
    result = ChainResult({}, {}, {})
    finished: dict[str, LabeledTensor] = {}
    for stmt in reversed(statements):
        target = stmt.target
        if target not in adjoint:
            continue
        adj = LabeledTensor.sum(adjoint.pop(target))
        fan_out = sum(op in downstream for op in stmt.operands)
        if len(adj.terms) > 1:
            # Paths merge here: factor out what every term shares (the big
            # factors), so that only the small differences are added.
            adj = adj.factored(log=result.contractions)
        # Where paths fork, a gradient contracts the chain so far (backprop's
        # cotangent: work linear in depth); a Jacobian only when that is smaller
        # than its largest factor, which otherwise stays shared unevaluated, so
        # that merges further on can still factor it out.
        largest = max((entries(f.array) for t in adj.terms for f in t.factors), default=0)
        shrinks = not axes[of] or math.prod(adj.shape) < largest
        lazy = any(len(t.factors) > 1 for t in adj.terms)
        if len(adj.terms) > 1 or (fan_out > 1 and lazy and shrinks):
            # Shared by several paths (or a sum): contract once, so the upstream
            # work is done once for all of them (backprop's cotangent).
            adj = adj.contracted(name=f"d{of}/d{target}", log=result.contractions)
        if target in wanted:
            finished[target] = adj
        locals_ = local_fn(stmt)
        for op in stmt.operands:
            if op not in downstream:
                continue
            jac = locals_[op]
            result.locals[(target, op)] = jac
            step = adj.chain(jac, len(axes[target]))
            adjoint.setdefault(op, []).append(step)
    finished.update((w, LabeledTensor.sum(parts)) for w, parts in adjoint.items() if w in wanted)
    names = axis_names(axes[of], *(axes[w] for w in wrts))
    for w, w_names in zip(wrts, names[1:], strict=True):
        indices = (*names[0], *w_names)
        if w not in finished:
            shape_sizes = dict(zip(indices, [sizes[d] for d in (*axes[of], *axes[w])], strict=True))
            result.jacobians[w] = LabeledTensor.zeros(indices, shape_sizes)
            continue
        chain = finished[w]
        result.chains[w] = chain.rename(indices)
        finish = chain.compacted if structured else chain.contracted
        done = finish(name=f"d{of}/d{w}", log=result.contractions)
        result.jacobians[w] = done.rename(indices)
    return result


def forward_jacobian(
    statements: Sequence[Lowered],
    axes: Mapping[str, tuple[str, ...]],
    sizes: dict[str, int],
    local_fn: Callable[[Lowered], dict[str, LabeledTensor]],
    of: str,
    wrt: str,
    structured: bool = False,
) -> ChainResult:
    """d of / d wrt by forward accumulation: each tensor's derivative by
    ``wrt`` (its axes, then ``wrt``'s), statement by statement from ``wrt``
    towards ``of``. The mirror of :func:`network_jacobians`, and cheaper when
    ``of`` has more entries than ``wrt`` (``jacfwd`` against ``jacrev``): the
    last Jacobian of a third derivative carries ``wrt``'s axes instead of the
    Hessian's. Where paths merge the terms are factored and contracted; where
    a tensor's derivative is used again it is contracted when that shrinks it.
    """
    upstream = {of}
    for stmt in reversed(statements):
        if stmt.target in upstream:
            upstream.update(stmt.operands)
    in_names = tuple(fresh(d) for d in axes[wrt])
    node_axes = tuple(f"{wrt}.{k}" for k in range(len(axes[wrt])))
    label_size = {
        **sizes,
        **{n: sizes[d] for n, d in zip(in_names, axes[wrt], strict=True)},
        **{n: sizes[d] for n, d in zip(node_axes, axes[wrt], strict=True)},
    }
    tangent = {wrt: LabeledTensor.identity((*node_axes, *in_names), label_size)}
    on_path = [s for s in statements if s.target in upstream and s.target != wrt]
    uses = Counter(op for s in on_path for op in s.operands)
    result = ChainResult({}, {}, {})
    for stmt in on_path:
        ops = [op for op in stmt.operands if op in tangent]
        if not ops:
            continue
        locals_ = local_fn(stmt)
        steps = []
        for op in ops:
            jac = locals_[op]
            result.locals[(stmt.target, op)] = jac
            steps.append(jac.chain(tangent[op], len(axes[op])))
        for op in stmt.operands:
            uses[op] -= 1
            if uses[op] == 0 and op in tangent:
                del tangent[op]  # its last use: free it
        total = LabeledTensor.sum(steps)
        if len(total.terms) > 1:  # paths merge: add the differences only
            total = total.factored(log=result.contractions)
        largest = max((entries(f.array) for t in total.terms for f in t.factors), default=0)
        lazy = any(len(t.factors) > 1 for t in total.terms)
        shrinks = math.prod(total.shape) < largest
        if len(total.terms) > 1 or (uses[stmt.target] > 1 and lazy and shrinks):
            total = total.contracted(name=f"d{stmt.target}/d{wrt}", log=result.contractions)
        tangent[stmt.target] = total
    first, second = axis_names(axes[of], axes[wrt])
    indices = (*first, *second)
    if of not in tangent:
        shape_sizes = dict(zip(indices, [sizes[d] for d in (*axes[of], *axes[wrt])], strict=True))
        result.jacobians[wrt] = LabeledTensor.zeros(indices, shape_sizes)
        return result
    chain = tangent[of]
    result.chains[wrt] = chain.rename(indices)
    finish = chain.compacted if structured else chain.contracted
    result.jacobians[wrt] = finish(name=f"d{of}/d{wrt}", log=result.contractions).rename(indices)
    return result
