"""Contracting labeled tensors with each other: ``tc.contract("s i j, s i j -> s", J, J)``.

Each operand's axes are named in order, as in the language's index form;
a name shared by operands joins those axes, a name missing from the output is
summed. The operands' terms are multiplied out, every delta is eliminated by
renaming, and the factors of each term are contracted as one network planned
by opt_einsum. Deltas between output axes stay symbolic; nothing is dense
unless ``.array`` is asked for.
"""

from __future__ import annotations

import math
import re
from itertools import product
from typing import Any

import numpy as np

from ..arrays.backend import backend_of
from ..arrays.trace import Slot
from ..errors import ShapeError, SpecError, count_axes
from .labeled import LabeledTensor
from .terms import Factor, Term


def _names(text: str, what: str) -> list[str]:
    names = [n for n in re.split(r"[\s,]+", text.strip()) if n]
    for n in names:
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_']*", n):
            raise SpecError(f"{n!r} in {what} is not an axis name (letters, digits, _ and ')")
    return names


def contract(
    spec: str, *operands: LabeledTensor | np.ndarray, log: list | None = None
) -> LabeledTensor:
    """Contract labeled tensors (or arrays) by an index-form ``spec``.

    Example:
        >>> import numpy as np, tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> J = net.jacobian("a", "W", net.random_values(n=4, m=3))
        >>> sq = tc.contract("i k j, i k j -> i", J, J)   # each output's squared gradient norm
        >>> np.allclose(sq.array, np.einsum("ikj,ikj->i", J.array, J.array))
        True
    """
    if "->" not in spec:
        raise SpecError(f"a contraction spec reads 'a b, b c -> a c'; {spec!r} has no '->'")
    inputs, output = spec.split("->", 1)
    parts = inputs.split(",") if inputs.strip() else []
    # Axis names are separated by spaces; commas separate operands.
    groups = [_names(p, f"operand {k + 1}") for k, p in enumerate(parts)]
    out = _names(output, "the output")
    if len(groups) != len(operands):
        raise SpecError(
            f"the spec names {len(groups)} operands but {len(operands)} were given: {spec!r}"
        )
    if len(set(out)) != len(out):
        raise SpecError(f"an output axis is named twice in {spec!r}")
    tensors = [_labeled(op) for op in operands]
    sizes: dict[str, int] = {}
    where: dict[str, str] = {}
    renamed = []
    for k, (t, names) in enumerate(zip(tensors, groups, strict=True)):
        if len(names) != t.ndim:
            raise ShapeError(
                f"operand {k + 1} has {count_axes(t.ndim)} [{', '.join(t.indices)}] but"
                f" {len(names)} names are given ({' '.join(names)}); name each axis once"
            )
        for name, size in zip(names, t.shape, strict=True):
            if name in sizes and sizes[name] != size:
                raise ShapeError(
                    f"axis {name!r} is {sizes[name]} in {where[name]} but {size} in"
                    f" operand {k + 1}; joined axes need equal sizes"
                )
            sizes.setdefault(name, size)
            where.setdefault(name, f"operand {k + 1}")
        if len(set(names)) < len(names):  # a repeated name: a diagonal of one operand
            raise SpecError(f"operand {k + 1} names an axis twice ({' '.join(names)})")
        terms, mapping = t._freshened(dict(zip(t.indices, names, strict=True)))
        sizes.update((new, t.sizes[old]) for old, new in mapping.items())
        renamed.append(terms)
    missing = [n for n in out if n not in where]
    if missing:
        raise SpecError(f"output axis {missing[0]!r} is not an axis of any operand in {spec!r}")
    terms = [
        Term(
            float(np.prod([t.coeff for t in combo])),
            tuple(f for t in combo for f in t.factors),
            tuple(d for t in combo for d in t.deltas),
        )
        for combo in product(*renamed)
    ]
    # A summed axis found in no factor and no delta of a term is summed over ones.
    summed = [n for n in where if n not in out]
    fixed = []
    for term in terms:
        labels = term.labels()
        coeff = term.coeff * float(math.prod(sizes[n] for n in summed if n not in labels))
        fixed.append(Term(coeff, term.factors, term.deltas))
    return LabeledTensor(out, sizes, fixed).contracted(log=log)


def _labeled(op: Any) -> LabeledTensor:
    if isinstance(op, LabeledTensor):
        return op
    # A placeholder when traced, another library's array (a JAX tracer under
    # jax.jit included) as it is; anything else as numpy.
    array = op if isinstance(op, Slot) or backend_of(op) != "numpy" else np.asarray(op)
    names = tuple(f"a{k}" for k in range(array.ndim))
    sizes = dict(zip(names, array.shape, strict=True))
    return LabeledTensor(names, sizes, [Term(1.0, (Factor(array, names, "array"),))])
