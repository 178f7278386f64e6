"""Forward evaluation of lowered statements with numpy and opt_einsum."""

from __future__ import annotations

import functools
from collections.abc import Mapping

import numpy as np

from .functions import ELEMENTWISE
from .lower import Const, Leaf, Lowered, Map, Node, Product, Sum
from .plan import contract
from .program import apply, is_fresh


def _owned(a: np.ndarray) -> np.ndarray:
    """A writable C-ordered array (a broadcast view or a view is copied)."""
    a = np.asarray(a)
    if a.flags.writeable and a.flags.c_contiguous:
        return a
    return np.array(a)


def _linear(node: Sum, sizes: dict[str, int]):
    """A function computing ``Σ c_k a_k``, each ``a_k`` transposed and broadcast
    to ``node.labels`` (worked out here, once); its result is a new array."""
    full = tuple(sizes[lab] for lab in node.labels)
    plans = []
    for c, term in node.terms:
        order = [lab for lab in node.labels if lab in term.labels]
        perm = [term.labels.index(lab) for lab in order]
        view = [sizes[lab] if lab in term.labels else 1 for lab in node.labels]
        plans.append((c, None if perm == sorted(perm) else perm, view))

    simple = all(perm is None and tuple(view) == full for _, perm, view in plans)
    if simple and len(plans) == 2 and plans[0][0] == 1.0 and abs(plans[1][0]) == 1.0:
        return np.add if plans[1][0] == 1.0 else np.subtract

    def run(*arrays: np.ndarray) -> np.ndarray:
        total = None
        for (c, perm, view), a in zip(plans, arrays, strict=True):
            a = np.reshape(a if perm is None else a.transpose(perm), view)
            if total is None:
                total = np.array(a) if c == 1.0 else np.asarray(c * a)
            elif c == 1.0:
                total = total + a if total.shape != full else np.add(total, a, out=total)
            else:
                total = total + c * a if total.shape != full else np.add(total, c * a, out=total)
        if total.shape != full:
            total = np.array(np.broadcast_to(total, full))
        return total

    return run


def evaluate_node(
    node: Node,
    env: Mapping[str, np.ndarray],
    sizes: dict[str, int],
    out: dict[int, np.ndarray],
) -> np.ndarray:
    """The value of ``node`` (axes in ``node.labels`` order); every node's value
    is also stored in ``out`` under ``id(node)`` for the derivative rules.
    Array work goes through ``program.apply``, so it can be traced."""
    shape = [sizes[lab] for lab in node.labels]
    if isinstance(node, Leaf):
        value = env[node.name]
    elif isinstance(node, Const):
        value = np.asarray(node.value, dtype=float)
    elif isinstance(node, Map):
        arg = evaluate_node(node.arg, env, sizes, out)
        f = functools.partial(ELEMENTWISE[node.func].value, p=node.param)
        value = apply(f, arg, shape=shape, fresh=True)
    elif isinstance(node, Product):
        operands = [(evaluate_node(f, env, sizes, out), f.labels) for f in node.factors]
        scale = node.coeff / float(np.prod([sizes[m] for m in node.mean_over]))
        value = contract(operands, node.labels, sizes, scale=scale)
    else:
        parts = [evaluate_node(t, env, sizes, out) for _, t in node.terms]
        value = apply(_linear(node, sizes), *parts, shape=shape, fresh=True)
    out[id(node)] = value
    return value


def evaluate_statement(
    stmt: Lowered, env: Mapping[str, np.ndarray], sizes: dict[str, int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The value of ``stmt.target`` and of every node of the statement."""
    values: dict[int, np.ndarray] = {}
    result = evaluate_node(stmt.root, env, sizes, values)
    if is_fresh(result):
        return result, values
    shape = [sizes[lab] for lab in stmt.labels]
    return apply(_owned, result, shape=shape, fresh=True), values
