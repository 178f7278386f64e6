"""Differentiation as a transformation of the lowered network.

``derivative_graph(graph, of, wrt)`` builds a new :class:`~tensorchain.calculus.graph.Graph`
that computes ``∂of/∂wrt`` (axes: ``of``'s, then ``wrt``'s) from the same
inputs and params. It holds

1. ``graph``'s statements in single-operation form (:func:`split`): every
   operation inside a statement becomes a statement of its own (``h.1``,
   ``h.2``, …), so that its value can be referred to;
2. one *adjoint* statement ``∂of/∂T`` per tensor ``T`` on a path from ``wrt``
   to ``of``, with axes ``of``'s then ``T``'s: reverse mode, seeded with 1 for
   a scalar ``of`` and with δ(o, o') for a tensor. Each is the sum over the
   uses of ``T`` of a vector-Jacobian product written in the same operations
   the network is made of: for a product, the cotangent times the other
   factors (autograd's einsum VJP); for a sum, the cotangent summed over the
   axes the term lacks; for an elementwise ``f``, the cotangent times ``f'``
   written from ``f``'s input and output (``σ' = σ (1 − σ)``); for a function
   along indices, its VJP (``softmax``: ``y (g − Σ g y)``); a repeated index
   (the diagonal ``A[i, i]``) puts the cotangent on the diagonal with a
   :class:`~tensorchain.language.operations.Delta` (each VJP is written by
   :mod:`tensorchain.calculus.vjp`).

Nothing is printed and parsed again, and the operations are closed under this
transformation, so its result can be differentiated again: the k-th derivative
is k − 1 transformations and one Jacobian, with every Kronecker delta symbolic.
Derivatives that are zero (``step``, ``sign``, the share of the maximum in
``max``: piecewise constant, zero almost everywhere, as JAX defines them) are
dropped, never multiplied by a value, so a derivative is finite wherever its
mathematics is. Internal names (``h.1``, ``∂L/∂h``, ``o0``) use characters the
spec language does not allow in names, so they never meet a user's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace

from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Lowered,
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
    leaves,
    relabel,
    walk,
)
from ..language.show_lowered import show_lowered
from .graph import Graph, TensorInfo
from .vjp import fresh_label, local_vjp

SEP = "."  # a split operation is named after its statement: h.1, h.2


def adjoint_name(of: str, name: str) -> str:
    """``∂L/∂h``; a compound name is put in parentheses: ``∂(∂L/∂W)/∂(h.1)``."""

    def part(x: str) -> str:
        return f"({x})" if "/" in x or SEP in x else x

    return f"∂{part(of)}/∂{part(name)}"


def _unique(name: str, taken: set[str]) -> str:
    out, n = name, 1
    while out in taken:
        n += 1
        out = f"{name}~{n}"
    taken.add(out)
    return out


def _post_order(root: Node) -> list[Node]:
    """The operations of a statement, operands before their users."""
    out, seen = [], set()
    stack: list[tuple[Node, bool]] = [(root, False)]
    while stack:
        node, done = stack.pop()
        if isinstance(node, Leaf | Const | Size | Delta | Select | Reindex) or id(node) in seen:
            continue
        if done:
            seen.add(id(node))
            out.append(node)
            continue
        stack.append((node, True))
        stack.extend((c, False) for c in reversed(children(node)))
    return out


def _with_children(node: Node, kids: Sequence[Node]) -> Node:
    if isinstance(node, Product):
        return replace(node, factors=tuple(kids))
    if isinstance(node, Sum):
        return replace(
            node, terms=tuple((c, k) for (c, _), k in zip(node.terms, kids, strict=True))
        )
    if isinstance(node, Map | Along):
        return replace(node, arg=kids[0])
    if isinstance(node, Solve):
        return replace(node, matrix=kids[0], rhs=kids[1])
    if isinstance(node, Where):
        return replace(node, left=kids[0], right=kids[1], a=kids[2], b=kids[3])
    return node


def _lowered(
    target: str, labels: tuple[str, ...], root: Node, like: Lowered, dims: dict[str, str]
) -> Lowered:
    operands = tuple(dict.fromkeys(leaf.name for leaf in leaves(root)))
    text = show_lowered(target, labels, root, dims)
    return Lowered(target, labels, root, like.index_form, like.pos, text, operands)


def split(graph: Graph) -> Graph:
    """``graph`` with one operation per statement (idempotent)."""
    tensors = dict(graph.tensors)
    out = Graph(tensors, [], {})
    taken = set(tensors)
    for stmt in graph.statements:
        dims = graph.label_dims[stmt.target]
        named: dict[int, str] = {}
        ops = _post_order(stmt.root)
        if not ops or all(
            isinstance(c, Leaf | Const | Size | Delta | Select | Reindex)
            for c in children(stmt.root)
        ):
            out.add_statement(stmt, dims)  # one operation already, a copy or a constant
            continue
        count = 0
        for node in ops:
            if node is stmt.root:
                name = stmt.target
            else:
                count += 1
                name = _unique(f"{stmt.target}{SEP}{count}", taken)
                tensors[name] = TensorInfo(
                    name, "defined", tuple(dims[lab] for lab in node.labels), stmt.pos
                )
            named[id(node)] = name
            kids = [
                c
                if isinstance(c, Leaf | Const | Size | Delta | Select | Reindex)
                else Leaf(named[id(c)], c.labels, stmt.pos)
                for c in children(node)
            ]
            root = _with_children(node, kids)
            out.add_statement(_lowered(name, node.labels, root, stmt, dims), dims)
    return out


def derivative_graph(graph: Graph, of: str, wrt: str) -> tuple[Graph, str | None]:
    """A graph that computes ``∂of/∂wrt`` (see the module), and the name of that
    tensor in it; ``None`` when ``of`` does not depend on ``wrt``."""
    g = split(graph)
    taken = set(g.tensors)
    down = {wrt}
    for s in g.statements:
        if any(op in down for op in s.operands):
            down.add(s.target)
    up = {of}
    for s in reversed(g.statements):
        if s.target in up:
            up.update(s.operands)
    needed = down & up
    if wrt not in needed:
        return g, None
    of_dims = g.tensors[of].dims
    out = tuple(f"o{k}" for k in range(len(of_dims)))

    def emit(tensor: str, parts: list[tuple[Node, dict[str, str]]]) -> str:
        """Add the adjoint statement of ``tensor`` (a sum of its uses' VJPs)."""
        name = _unique(adjoint_name(of, tensor), taken)
        labels = out + tuple(f"t{k}" for k in range(len(g.tensors[tensor].dims)))
        dims = {o: d for o, d in zip(out, of_dims, strict=True)}
        dims.update(zip(labels[len(out) :], g.tensors[tensor].dims, strict=True))
        for _, part_dims in parts:
            dims.update(part_dims)
        nodes = [n for n, _ in parts]
        if len(nodes) == 1 and nodes[0].labels == labels:
            root = nodes[0]
        else:
            root = Sum(tuple((1.0, n) for n in nodes), labels)
        info = g.tensors[tensor]
        g.tensors[name] = TensorInfo(name, "defined", (*of_dims, *info.dims), info.pos)
        like = g.statement(tensor) if tensor in g._by_target else _seed_like(g, of)
        g.add_statement(_lowered(name, labels, root, like, dims), dims)
        return name

    if of == wrt:  # the seed itself
        seed = _seed(out, tuple(f"t{k}" for k in range(len(of_dims))))
        return g, emit(of, [(seed, {})])

    contributions: dict[str, list[tuple[Node, dict[str, str]]]] = {}
    uses = 0
    for stmt in reversed(list(g.statements)):
        if stmt.target not in needed:
            continue
        label_dims = g.label_dims[stmt.target]
        taken_labels = {lab for n in walk(stmt.root) for lab in _labels(n)}
        use_out = tuple(fresh_label("o", taken_labels) for _ in of_dims)
        if stmt.target == of:
            cot = _seed(use_out, stmt.labels)
        else:
            parts = contributions.pop(stmt.target, None)
            if not parts:
                continue  # zero (every use's derivative vanished)
            name = emit(stmt.target, parts)
            if stmt.target == wrt:
                return g, name
            cot = Leaf(name, use_out + stmt.labels, stmt.pos)
        operands = (stmt.root,) if isinstance(stmt.root, Leaf) else children(stmt.root)
        for k, child in enumerate(operands):
            if not isinstance(child, Leaf) or child.name not in needed:
                continue
            found = local_vjp(stmt, k, cot, use_out, taken_labels)
            if found is None:
                continue
            vjp, labels, copies = found
            uses += 1
            n_out = len(use_out)
            mapping = {lab: f"o{j}" for j, lab in enumerate(use_out)}
            mapping.update((lab, f"t{j}") for j, lab in enumerate(labels[n_out:]))
            dims = {f"o{j}": d for j, d in enumerate(of_dims)}
            dims.update(
                (f"t{j}", label_dims[copies.get(lab, lab)]) for j, lab in enumerate(labels[n_out:])
            )
            for n in walk(vjp):
                for lab in _labels(n):
                    if lab not in mapping:
                        mapping[lab] = f"{lab}@u{uses}"
                        dims[mapping[lab]] = label_dims[copies.get(lab, lab)]
            contributions.setdefault(child.name, []).append((relabel(vjp, mapping), dims))
    parts = contributions.pop(wrt, None)
    if not parts:
        return g, None
    return g, emit(wrt, parts)


def _labels(node: Node) -> tuple[str, ...]:
    if isinstance(node, Reindex):  # a part's offset is the size of the parts before it
        return (*node.labels, *node.parts)
    if isinstance(node, Product):
        return (*node.labels, *node.mean_over)
    if isinstance(node, Along):
        return (*node.labels, *node.axes)
    return node.labels


def _seed(out: tuple[str, ...], labels: tuple[str, ...]) -> Node:
    """∂of/∂of: 1 for a scalar, δ(o, o') for a tensor."""
    if not out:
        return Const(1.0)
    deltas = tuple(Delta((o, lab)) for o, lab in zip(out, labels, strict=True))
    return Product(1.0, deltas, out + labels)


def _seed_like(g: Graph, name: str) -> Lowered:
    """A statement to take a position from, for an adjoint of an input or param."""
    info = g.tensors[name]
    return Lowered(name, (), Const(0.0), True, info.pos, "")


VECTOR = "⟨v⟩"  # the vector of a Hessian-vector product: a name no spec can write


def hvp_graph(graph: Graph, g: str, wrt: str) -> tuple[Graph, str]:
    """``graph`` (which computes the gradient ``g`` by ``wrt``) with an input
    :data:`VECTOR` shaped like ``wrt`` and the scalar ``Σ g · v``, and its name:
    its gradient by ``wrt`` is the Hessian-vector product."""
    info = graph.tensors[wrt]
    tensors = {**graph.tensors, VECTOR: TensorInfo(VECTOR, "input", info.dims, info.pos)}
    out = Graph(tensors, graph.statements, dict(graph.label_dims))
    labels = tuple(f"t{k}" for k in range(len(info.dims)))
    root = Product(1.0, (Leaf(g, labels, info.pos), Leaf(VECTOR, labels, info.pos)), ())
    name = _unique(f"⟨{g}, v⟩", set(tensors))
    tensors[name] = TensorInfo(name, "defined", (), info.pos)
    like = Lowered(name, (), root, True, info.pos, "")
    dims = dict(zip(labels, info.dims, strict=True))
    out.add_statement(_lowered(name, (), root, like, dims), dims)
    return out, name
