"""Forward evaluation of lowered statements with numpy and opt_einsum."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from .functions import ELEMENTWISE
from .lower import Const, Leaf, Lowered, Map, Node, Product
from .plan import contract


def evaluate_node(
    node: Node,
    env: Mapping[str, np.ndarray],
    sizes: dict[str, int],
    out: dict[int, np.ndarray],
) -> np.ndarray:
    """The value of ``node`` (axes in ``node.labels`` order); every node's value
    is also stored in ``out`` under ``id(node)`` for the derivative rules."""
    if isinstance(node, Leaf):
        value = np.asarray(env[node.name])
    elif isinstance(node, Const):
        value = np.asarray(node.value, dtype=float)
    elif isinstance(node, Map):
        arg = evaluate_node(node.arg, env, sizes, out)
        value = ELEMENTWISE[node.func].value(arg, node.param)
    elif isinstance(node, Product):
        operands = [(evaluate_node(f, env, sizes, out), f.labels) for f in node.factors]
        scale = node.coeff / float(np.prod([sizes[m] for m in node.mean_over]))
        value = scale * contract(operands, node.labels, sizes)
    else:
        value = np.zeros([sizes[lab] for lab in node.labels])
        for c, term in node.terms:
            value = value + c * contract(
                [(evaluate_node(term, env, sizes, out), term.labels)],
                node.labels,
                sizes,
            )
    out[id(node)] = value
    return value


def evaluate_statement(
    stmt: Lowered, env: Mapping[str, np.ndarray], sizes: dict[str, int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The value of ``stmt.target`` and of every node of the statement."""
    values: dict[int, np.ndarray] = {}
    result = evaluate_node(stmt.root, env, sizes, values)
    return np.array(result, dtype=float), values
