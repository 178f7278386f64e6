"""What every local rule is made of: an operand's fresh axes, a factor of a
product as terms, products of sums of terms, a structured value made dense.

The rules of :mod:`tensorchain.calculus.rules` and
:mod:`tensorchain.calculus.matrix_rules` (and forward evaluation) build their
labeled tensors from these; :data:`STATEMENT` names the statement whose
local derivatives are being made, for messages.
"""

from __future__ import annotations

import itertools
import math
from contextvars import ContextVar
from dataclasses import replace
from typing import Any

import numpy as np

from ..language.gather import Selection
from ..language.operations import Delta, Node, Reindex
from ..language.reindex import offset_of
from .labeled import LabeledTensor
from .node_names import name_of, tex_of
from .terms import Factor, Term, fresh

Values = dict[int, np.ndarray]  # id(node) -> value

#: The statement whose local derivatives are being made (for messages).
STATEMENT: ContextVar[str] = ContextVar("tensorchain_statement", default="")


def dense(value: Any) -> Any:
    """An array: a structured value (a :class:`LabeledTensor`, or a selection
    used other than as a factor of a product: ``exp(delta[k, labels[s]])``)
    made dense."""
    if isinstance(value, Selection):
        return value.dense()
    return value._dense() if isinstance(value, LabeledTensor) else value


def operand_axes(node: Node, operand: Node, sizes: dict[str, int]):
    """``node``'s labels and fresh labels for ``operand``'s axes (the axes of
    d node / d operand), the sizes with the fresh ones, and the deltas that
    tie each operand label to its fresh one."""
    new = tuple(fresh(lab) for lab in operand.labels)
    sizes = {
        **sizes,
        **{n: sizes[lab] for n, lab in zip(new, operand.labels, strict=True)},
    }
    deltas = tuple(zip(operand.labels, new, strict=True))
    return (*node.labels, *new), sizes, deltas


def factor_terms(node: Node, value: Any, sizes: dict[str, int]) -> list[Term]:
    """A factor of a product as terms over its labels: one factor for an array,
    a δ for a :class:`Delta`, and the terms of a structured value (a
    :class:`LabeledTensor`, whose deltas stay symbolic)."""
    if isinstance(node, Delta):
        return [Term(1.0, (), (node.labels,))]
    if isinstance(node, Reindex):  # a constant factor, contracted as a reshape or slice
        offset = offset_of(node, sizes)
        name, tex = (f"δ+{offset}", rf"\delta^{{+{offset}}}") if offset else ("δ", r"\delta")
        return [Term(1.0, (Factor(value, node.labels, name, tex=tex),))]
    if isinstance(value, LabeledTensor):
        return value.terms_on(node.labels, sizes)
    return [Term(1.0, (Factor(value, node.labels, name_of(node), tex=tex_of(node)),))]


def multiply(
    coeff: float,
    choices: list[list[Term]],
    deltas=(),
    summed: set[str] | frozenset[str] = frozenset(),
    sizes: dict[str, int] | None = None,
) -> list[Term]:
    """The terms of ``coeff`` times the product of sums of terms (one sum per
    factor). A label in ``summed`` that a term does not carry (an axis along
    which a structured factor's term is constant) sums ones: its size."""
    out = []
    for combo in itertools.product(*choices):
        c = coeff * math.prod(t.coeff for t in combo)
        factors = tuple(f for t in combo for f in t.factors)
        term = Term(c, factors, (*deltas, *(d for t in combo for d in t.deltas)))
        missing = [lab for lab in summed if lab not in term.labels()]
        if missing:
            assert sizes is not None
            term = replace(term, coeff=c * math.prod(sizes[lab] for lab in missing))
        out.append(term)
    return out
