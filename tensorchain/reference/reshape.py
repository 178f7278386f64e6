"""The article's reshape method, generalised: the reference every result is checked against.

Every local Jacobian is materialised as a dense matrix (output entries ×
input entries, row-major vec) and the chain is a product of matrices, summed
over paths, reshaped at the end to ``of.shape + wrt.shape``. Within a
statement the matrices come from first principles: a product and a sum are
linear in each operand, so the derivative is the same einsum with a dense
identity in the operand's place; an elementwise function gives ``diag(f')``,
with ``f'`` from the reference's own table
(:mod:`tensorchain.reference.functions`), not the function registry it
checks. It is deliberately simple and slow; it shares no code with the chain
rule.
"""

from __future__ import annotations

import math
import string
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import numpy_dtype, to_numpy
from ..arrays.limits import format_bytes, get_memory_limit
from ..errors import DerivativeError, MemoryLimitError, PlanError
from ..language.gather import refuse_positions
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Map,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Solve,
    Sum,
    Where,
    children,
)
from . import matrix_jets
from .constants import reindex_values
from .functions import derivative as nth_derivative
from .functions import selection_weight
from .jet_algebra import Jets
from .jets import reference_derivative

if TYPE_CHECKING:
    from ..language.network_like import Differentiable


def _einsum(operands: list[tuple[np.ndarray, tuple[str, ...]]], out: tuple[str, ...]):
    letters: dict[str, str] = {}
    for _, labels in (*operands, (None, out)):
        for lab in labels:
            if lab not in letters and len(letters) == len(string.ascii_letters):
                raise PlanError(
                    "the reshape method writes each local Jacobian as one np.einsum,"
                    " which takes at most 52 distinct indices; this statement needs"
                    " more, so check it against finite differences instead"
                )
            letters.setdefault(lab, string.ascii_letters[len(letters)])
    lhs = ",".join("".join(letters[lab] for lab in labels) for _, labels in operands)
    rhs = "".join(letters[lab] for lab in out)
    return np.einsum(f"{lhs}->{rhs}", *(a for a, _ in operands), optimize="greedy")


def _local_matrix(node: Node, k: int, values: dict[int, np.ndarray], sizes: dict[str, int]):
    """d node / d children(node)[k] as an (entries of node) × (entries of child) matrix."""
    child = children(node)[k]
    child_value = values[id(child)]
    n_node = math.prod(sizes[lab] for lab in node.labels)
    if isinstance(node, Map):  # f' from the reference's own table, not the registry's
        df = nth_derivative(node.func, 1, child_value, node.param)
        return np.diag(np.zeros(child_value.size) if df is None else np.ravel(df))
    if isinstance(node, Solve) or (isinstance(node, Along) and node.func in matrix_jets.MATRIX):
        return _matrix_function(node, k, values)
    if isinstance(node, Along):
        return _along_matrix(node, child_value, values[id(node)])
    if isinstance(node, Where):
        return _select_matrix(node, k, values, sizes)
    # The identity on the child's entries, one np.eye per axis, in its place.
    new = tuple(f"new{a}" for a in range(child_value.ndim))
    operands = [
        (np.eye(n), (label, fresh))
        for n, label, fresh in zip(child_value.shape, child.labels, new, strict=True)
    ]
    if isinstance(node, Product):
        coeff = node.coeff / float(math.prod(sizes[m] for m in node.mean_over))
        operands += [
            (_constant(f, values, sizes), f.labels) for j, f in enumerate(node.factors) if j != k
        ]
    else:
        coeff = node.terms[k][0]
        present = set(child.labels)
        operands += [(np.ones(sizes[lab]), (lab,)) for lab in node.labels if lab not in present]
    if not operands:  # a scalar times a scalar: the derivative is the coefficient
        return np.full((n_node, child_value.size), coeff)
    return coeff * _einsum(operands, (*node.labels, *new)).reshape(n_node, child_value.size)


def _constant(f: Node, values: dict[int, Any], sizes: dict[str, int]) -> np.ndarray:
    """A factor's value as a dense array: a delta's identity matrix, and a
    selection's one-hot matrix built here from its integers (``S[s, v] = 1``
    where ``ids[s] = v``), not by the code under test; a reshape's or a
    concatenation's constant from its definition (numpy's eye, reshape and
    concatenate), not read from the network."""
    if isinstance(f, Delta):
        return np.eye(sizes[f.labels[0]])
    if isinstance(f, Select):
        ids = np.asarray(to_numpy(values[id(f)].ids))
        hot = np.zeros((*ids.shape, sizes[f.labels[-1]]))
        for at in np.ndindex(ids.shape):
            hot[(*at, ids[at])] = 1.0
        return hot
    if isinstance(f, Reindex):
        return reindex_values(f, sizes)
    return values[id(f)]


def _select_matrix(node: Where, k: int, values: dict[int, np.ndarray], sizes: dict[str, int]):
    """d select / d operand: zero for the condition's sides, ``diag(w)`` for
    ``a`` and ``diag(1 − w)`` for ``b`` (the weight from the reference's own
    definition in :mod:`tensorchain.reference.functions`), broadcast where the
    operand lacks an axis."""
    child = children(node)[k]
    n_node = math.prod(sizes[lab] for lab in node.labels)
    n_child = math.prod(sizes[lab] for lab in child.labels)
    if k < 2:
        return np.zeros((n_node, n_child))
    full = []
    for side in (node.left, node.right):  # each side transposed and broadcast to the node's axes
        order = [side.labels.index(lab) for lab in node.labels if lab in side.labels]
        shape = [sizes[lab] if lab in side.labels else 1 for lab in node.labels]
        a = np.transpose(np.asarray(values[id(side)]), order).reshape(shape)
        full.append(np.broadcast_to(a, [sizes[lab] for lab in node.labels]))
    w = selection_weight(node.test, node.half, *full)
    weight = w if k == 2 else 1.0 - w
    new = tuple(f"new{a}" for a in range(len(child.labels)))
    operands = [
        (np.eye(sizes[lab]), (lab, fresh)) for lab, fresh in zip(child.labels, new, strict=True)
    ]
    operands.append((weight, node.labels))
    return _einsum(operands, (*node.labels, *new)).reshape(n_node, n_child)


def _matrix_function(node: Along | Solve, k: int, values: dict[int, np.ndarray]) -> np.ndarray:
    """d node / d children(node)[k] of a matrix function, from the reference's
    jets of its defining identity (:mod:`tensorchain.reference.matrix_jets`)."""
    kids = children(node)
    shapes = {"·": np.shape(values[id(kids[k])])}
    jets = Jets(["·"], shapes)
    seeded = []
    for j, kid in enumerate(kids):
        value = np.asarray(values[id(kid)], dtype=np.result_type(values[id(kid)], float))
        jet = {frozenset(): value}
        if j == k:
            jet[frozenset([0])] = np.eye(value.size).reshape(value.shape * 2)
        seeded.append(jet)
    if isinstance(node, Solve):
        out = matrix_jets.solve(node, *seeded, jets)
    else:
        out = matrix_jets.matrix(node, seeded[0], jets)
    size = int(np.prod(shapes["·"]))
    found = out.get(frozenset([0]))
    rows = int(np.prod(np.shape(out[frozenset()])))
    return np.zeros((rows, size)) if found is None else found.reshape(rows, size)


def _along_matrix(node: Along, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """The dense Jacobian of a function along indices: per slice (one entry of
    the other indices, ``b``), a block from the textbook formulas, then the
    blocks placed on the diagonal over ``b`` and the axes put back in order."""
    labels = node.arg.labels
    along = [labels.index(lab) for lab in node.axes]
    others = [k for k in range(x.ndim) if k not in along]
    n_b = math.prod(x.shape[k] for k in others)
    n_a = math.prod(x.shape[k] for k in along)
    xs = np.transpose(x, others + along).reshape(n_b, n_a)  # a row per slice
    blocks = []
    for row in xs:
        e = np.exp(row - row.max())
        p = e / e.sum()
        if node.func == "softmax":
            block = np.diag(p) - np.outer(p, p)
        elif node.func == "log_softmax":
            block = np.eye(n_a) - p[None, :]
        elif node.func == "logsumexp":
            block = p[None, :]
        else:
            extreme = row.max() if node.func == "max" else row.min()
            hit = (row == extreme).astype(float)
            block = (hit / hit.sum())[None, :]
        blocks.append(block)
    rows = blocks[0].shape[0]
    full = np.zeros((n_b, rows, n_b, n_a), dtype=np.result_type(*blocks))
    for b, block in enumerate(blocks):
        full[b, :, b, :] = block
    # Rows: node entries in (others, along-if-kept) order; columns: (others, along).
    in_shape = [x.shape[k] for k in others + along]
    out_shape = in_shape if rows == n_a else [x.shape[k] for k in others]
    full = full.reshape(*out_shape, *in_shape)
    out_perm = others + along if rows == n_a else others
    out_order = [out_perm.index(k) for k in sorted(out_perm)]  # back to arg order
    in_order = [len(out_shape) + (others + along).index(k) for k in range(x.ndim)]
    full = np.transpose(full, out_order + in_order)
    return full.reshape(math.prod(y.shape), x.size)


def _is_identity(node: Node, k: int) -> bool:
    """Whether d node / d children(node)[k] is the identity (a plain ``+`` term)."""
    return (
        isinstance(node, Sum) and node.terms[k][0] == 1.0 and node.terms[k][1].labels == node.labels
    )


def statement_matrices(net: Differentiable, target: str, forward: Any) -> dict[str, np.ndarray]:
    """d target / d operand as dense matrices, for each tensor the statement uses."""
    stmt = next(s for s in net.statements if s.target == target)
    # A node holding a Kronecker delta keeps a structured value: dense here.
    values = {k: v.array if hasattr(v, "terms") else v for k, v in forward.nodes[target].items()}
    sizes = net.label_sizes(target, forward.sizes)
    size = forward.values[target].size
    out: dict[str, np.ndarray] = {}
    # None stands for the identity matrix, so that a chain starting with it
    # costs no (size × size) product.
    stack: list[tuple[Node, np.ndarray | None]] = [(stmt.root, None)]
    while stack:
        node, adjoint = stack.pop()
        if isinstance(node, Leaf):
            matrix = np.eye(size) if adjoint is None else adjoint
            out[node.name] = out.get(node.name, 0) + matrix
            continue
        for k, child in enumerate(children(node)):
            if isinstance(child, Const | Size | Delta | Select | Reindex):
                continue
            if adjoint is None and _is_identity(node, k):
                stack.append((child, None))
                continue
            local = _local_matrix(node, k, values, sizes)
            stack.append((child, local if adjoint is None else adjoint @ local))
    return out


def _dtype_of(env: Mapping[str, Any]) -> np.dtype:
    """The values' dtype: the first float or complex one (the integer
    positions of index tensors aside), float64 when there is none."""
    for value in env.values():
        dtype = numpy_dtype(value)
        if dtype.kind in "fc":
            return dtype
    return np.dtype(np.float64)


def _downstream(net: Differentiable, wrt: str) -> set[str]:
    down = {wrt}
    for stmt in net.statements:
        if any(op in down for op in stmt.operands):
            down.add(stmt.target)
    return down


def reshape_method(
    net: Differentiable,
    of: str,
    wrt: str,
    values: Mapping[str, Any],
    memory_limit: int | None = None,
) -> np.ndarray:
    """d of / d wrt by the article's method: dense matrices multiplied, then reshaped.

    Its largest matrix is forecast first and refused (:class:`MemoryLimitError`)
    if it exceeds ``memory_limit`` (bytes; default: the limit in force). As a
    reference it computes in float64 (complex128 for complex values) whatever
    the values' dtype, and returns the values' dtype, like every result.

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> tc.reshape_method(net, "C", "W", net.random_values(n=4, m=3)).shape
        (4, 3)
    """
    net.info(of), net.info(wrt)
    refuse_positions(net, [wrt], "the reshape method's derivative")
    env = net._check_values({name: to_numpy(v) for name, v in values.items()})
    dtype = _dtype_of(env)
    wide = np.promote_types(dtype, np.float64)
    check_reshape_memory(net, of, wrt, net.sizes(env), wide.itemsize, memory_limit)
    indexes = net.indexes  # integer positions stay integers
    env = {k: v if k in indexes else v.astype(wide) for k, v in env.items()}
    forward = net.run_forward(env, net.sizes(env))
    down = _downstream(net, wrt)
    n_of = forward.values[of].size
    adjoint: dict[str, np.ndarray] = {of: np.eye(n_of)} if of in down else {}
    for stmt in reversed(net.statements):
        if stmt.target not in adjoint or stmt.target == wrt:
            continue
        local = statement_matrices(net, stmt.target, forward)
        for op, matrix in local.items():
            if op in down:
                adjoint[op] = adjoint.get(op, 0) + adjoint[stmt.target] @ matrix
    shape = forward.values[of].shape + forward.values[wrt].shape
    if wrt not in adjoint:
        return np.zeros(shape, dtype=dtype)
    return adjoint[wrt].reshape(shape).astype(dtype, copy=False)


def reshape_hessian(
    net: Differentiable,
    of: str,
    wrt: str,
    values: Mapping[str, Any],
    wrt2: str | None = None,
    memory_limit: int | None = None,
) -> np.ndarray:
    """d² of / d wrt d wrt2 as a dense array of shape ``of.shape + wrt.shape +
    wrt2.shape``: the reference for Hessians. Every operation's first and
    second derivatives are materialised and combined by the second-order chain
    rule (``J₁ᵀ f'' J₂ + f' · H``), see :mod:`tensorchain.reference.jets`; nothing of the
    chain rule or of the derivative graphs it checks is used."""
    for w in (wrt, wrt2):
        if w is not None and not isinstance(w, str):
            raise DerivativeError(f"reshape_hessian takes tensor names, got {w!r}")
    wrt2 = wrt if wrt2 is None else wrt2
    return reference_derivative(net, of, (wrt, wrt2), values, memory_limit)


def check_reshape_memory(
    net: Differentiable,
    of: str,
    wrt: str,
    sizes: Mapping[str, int],
    itemsize: int = 8,
    memory_limit: int | None = None,
) -> None:
    """Raise :class:`MemoryLimitError` if the reshape method's largest matrix
    (or its result) would not fit; from sizes alone, before any work."""
    cost = reshape_cost(net, of, wrt, sizes)
    limit = get_memory_limit(memory_limit)

    def entries(name: str) -> int:
        return math.prod(sizes[d] for d in net.tensors[name].dims)

    # the result itself is one such matrix, even when wrt is not reached
    nbytes = max(cost.largest, entries(of) * entries(wrt)) * itemsize
    if nbytes > limit:
        raise MemoryLimitError(
            f"the reshape method for d{of}/d{wrt} would hold a"
            f" {format_bytes(nbytes)} matrix, more than the memory limit of"
            f" {format_bytes(limit)}; use net.jacobian({of!r}, {wrt!r}, values), whose"
            " deltas stay symbolic, or smaller sizes",
            nbytes,
            limit,
        )


@dataclass(frozen=True)
class ReshapeCost:
    """What the reshape method needs: matrix-product FLOPs and its largest matrix."""

    flops: int
    largest: int  # entries of the largest matrix it holds
    products: tuple[str, ...]  # each matrix product, e.g. "1×4 · 4×12"


def reshape_cost(net: Differentiable, of: str, wrt: str, sizes: Mapping[str, int]) -> ReshapeCost:
    """Count the reshape method's work without running it (2·m·k·n per product)."""

    def entries(name: str) -> int:
        return math.prod(sizes[d] for d in net.tensors[name].dims)  # exact past 2**63

    down = _downstream(net, wrt)
    n_of = entries(of)
    reached = {of} if of in down else set()
    flops, largest, products = 0, 0, []
    for stmt in reversed(net.statements):
        if stmt.target not in reached or stmt.target == wrt:
            continue
        for op in stmt.operands:
            if op in down:
                t, s = entries(stmt.target), entries(op)
                largest = max(largest, t * s, n_of * s)
                reached.add(op)
                if stmt.target != of:  # the first factor needs no product
                    flops += 2 * n_of * t * s
                    products.append(f"{n_of}×{t} · {t}×{s}")
    return ReshapeCost(flops, largest, tuple(products))
