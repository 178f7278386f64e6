"""A labeled tensor with fewer factors: its terms contracted, wholly or in part.

:class:`CompactForms` gives :class:`~tensorchain.calculus.labeled.LabeledTensor`
its contracting methods: ``factored`` takes the factors every term shares
out of the sum, ``contracted`` contracts each term's factors into one array
(one term per delta structure), ``compacted`` contracts a term only as far
as that keeps it small, ``smallest`` picks whichever stores fewer numbers.
Every contraction is planned by opt_einsum (:mod:`tensorchain.contraction.einsum`)
and can be logged; the deltas stay symbolic.
"""

from __future__ import annotations

import functools
import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import replace
from typing import Any, Self

import numpy as np
import opt_einsum as oe

from ..arrays.backend import common, copy, is_numpy
from ..arrays.trace import apply, linear_source
from ..contraction.einsum import Contraction, contract, equation
from ..language.gather import Selection
from ..language.gather import stored_entries as entries
from ..language.reindex import is_reindex
from .terms import Factor, Term


class CompactForms:
    """The contracting methods of a labeled tensor (a base of
    :class:`~tensorchain.calculus.labeled.LabeledTensor`, whose ``indices``,
    ``sizes``, ``terms``, ``dtype`` and ``like`` they read)."""

    indices: tuple[str, ...]
    sizes: dict[str, int]
    terms: tuple[Term, ...]
    dtype: np.dtype | None
    like: Any

    def factored(self, log: list[Contraction] | None = None) -> Self:
        """The same sum with the factors every term shares (same array, same
        axes) taken out: ``X·u + X·v = X·(u + v)``. Only the unshared parts are
        contracted and added; the shared ones stay unevaluated."""
        groups: dict[tuple, list[Term]] = {}
        for t in self.terms:
            groups.setdefault(t.deltas, []).append(t)
        terms: list[Term] = []
        for deltas, group in groups.items():
            counts = [Counter((id(f.array), f.labels) for f in t.factors) for t in group]
            shared = functools.reduce(lambda a, b: a & b, counts) if len(group) > 1 else Counter()
            if not shared:
                terms.extend(group)
                continue
            common, rests = _split(group[0].factors, shared), []
            for t in group:
                rest, left = [], Counter(shared)
                for f in t.factors:
                    key = (id(f.array), f.labels)
                    if left[key] > 0:
                        left[key] -= 1
                    else:
                        rest.append(f)
                rests.append(rest)
            if not any(rests):  # the same factors in every term: X + X = 2 X
                terms.append(Term(sum(t.coeff for t in group), tuple(common), deltas))
                continue
            outer = set(self.indices) | {lab for f in common for lab in f.labels}
            labels = tuple(
                dict.fromkeys(lab for r in rests for f in r for lab in f.labels if lab in outer)
            )
            # The parts are added over the union of their indices: when that
            # sum is larger than the result and than every factor (softmax's
            # two terms, A·(v[u, k] − o[t, k]), would broadcast to [t, u, k]),
            # the terms are cheaper contracted one by one.
            inner = math.prod(self.sizes[lab] for lab in labels)
            largest = max(entries(f.array) for t in group for f in t.factors)
            if inner > max(math.prod(self.shape), largest):
                terms.extend(group)
                continue
            parts = [
                contract(
                    [(f.array, f.labels) for f in rest],
                    labels,
                    self.sizes,
                    names=_origins(rest),
                    log=log if len(rest) > 1 else None,
                    scale=t.coeff,
                )
                for t, rest in zip(group, rests, strict=True)
            ]
            shape = [self.sizes[lab] for lab in labels]
            total = apply(
                _sum_arrays,
                *parts,
                shape=shape,
                fresh=True,
                code=lambda a: linear_source([(1.0, x) for x in a]),
            )
            names = ""
            for t, r in zip(group, rests, strict=True):
                name = "·".join(f.name for f in r) or "1"
                name = name if abs(t.coeff) == 1 else f"{abs(t.coeff):g}·{name}"
                sign = "-" if t.coeff < 0 else "+"
                names += f" {sign} {name}" if names else f"{'-' * (t.coeff < 0)}{name}"
            inner = Factor(total, labels, f"({names})")
            terms.append(Term(1.0, (*common, inner), deltas))
        return type(self)(
            self.indices, self.sizes, terms, canonicalize=False, dtype=self.dtype, like=self.like
        )

    def contracted(self, name: str | None = None, log: list[Contraction] | None = None) -> Self:
        """Contract each term's factors into one array; keep the deltas.

        Terms with the same deltas are then added, so the result has one term
        per delta structure. ``name`` names the new factors in printouts.
        """
        merged: dict[tuple, Term] = {}
        for t in self.terms:
            if not t.factors:
                old = merged.get((t.deltas, None))
                merged[(t.deltas, None)] = replace(t, coeff=t.coeff + (old.coeff if old else 0.0))
                continue
            reps = [i for i in self.indices if i not in {b for _, b in t.deltas}]
            present = {lab for f in t.factors for lab in f.labels}
            labels = tuple(r for r in reps if r in present)
            only = t.factors[0] if len(t.factors) == 1 else None
            if only is not None and only.labels == labels:
                factor = only
            elif only is not None and sorted(only.labels) == sorted(labels) and is_reindex(only):
                factor, labels = only, only.labels  # a transpose would make it dense
            else:
                data = contract(
                    [(f.array, f.labels) for f in t.factors],
                    labels,
                    self.sizes,
                    names=_origins(t.factors),
                    log=log if len(t.factors) > 1 else None,
                    fresh=len(t.factors) > 1,  # usually free: a contraction's result is new
                    scale=t.coeff,
                )
                factor = Factor(data, labels, name or "·".join(f.name for f in t.factors))
                t = replace(t, coeff=1.0)
            key = (t.deltas, labels)
            if key in merged:
                old = merged[key]
                c1, c2 = old.coeff, t.coeff
                total = apply(
                    functools.partial(_axpby, c1, c2),
                    _addable(old.factors[0].array),
                    _addable(factor.array),
                    shape=[self.sizes[lab] for lab in labels],
                    fresh=True,
                    code=lambda a, c1=c1, c2=c2: linear_source([(c1, a[0]), (c2, a[1])]),
                )
                label = name or f"{old.factors[0].name} + {factor.name}"
                merged[key] = Term(1.0, (Factor(total, labels, label),), t.deltas)
            else:
                merged[key] = Term(t.coeff, (factor,), t.deltas)
        return type(self)(
            self.indices,
            self.sizes,
            list(merged.values()),
            canonicalize=False,
            dtype=self.dtype,
            like=self.like,
        )

    def compacted(self, name: str | None = None, log: list[Contraction] | None = None) -> Self:
        """Each term contracted as far as that keeps it small: the steps of its
        planned path are run while each result holds no more numbers than the
        term's factors together. A per-sample gradient ``g[s, i] · x[s, j]``
        stays two factors (its dense form is B·n·m numbers, the factors
        B·(n + m)); a term whose dense form is small is contracted whole."""
        whole, kept = [], []
        for t in self.terms:
            t = self._partly_contracted(t, name, log)
            (whole if len(t.factors) <= 1 else kept).append(t)
        done = type(self)(self.indices, self.sizes, whole, canonicalize=False)
        terms = [*done.contracted(name, log).terms, *kept]
        return type(self)(
            self.indices, self.sizes, terms, canonicalize=False, dtype=self.dtype, like=self.like
        )

    def _partly_contracted(self, t: Term, name: str | None, log: list | None) -> Term:
        if len(t.factors) <= 1:
            return t
        budget = sum(entries(f.array) for f in t.factors)
        keep = set(self.indices) | {lab for d in t.deltas for lab in d}
        labels = [f.labels for f in t.factors]
        reps = [i for i in self.indices if i not in {b for _, b in t.deltas}]
        output = [r for r in reps if any(r in ls for ls in labels)]
        eq = equation(labels, output)
        shapes = [tuple(self.sizes[lab] for lab in ls) for ls in labels]
        path, _ = oe.contract_path(eq, *shapes, shapes=True, optimize="greedy")
        factors = list(t.factors)
        for step in path:
            chosen = [factors[k] for k in step]
            rest = [f for k, f in enumerate(factors) if k not in step]
            needed = keep | {lab for f in rest for lab in f.labels}
            out = tuple(dict.fromkeys(lab for f in chosen for lab in f.labels if lab in needed))
            if math.prod(self.sizes[lab] for lab in out) > budget:
                break  # this step would grow the term: keep its factors apart
            data = contract(
                [(f.array, f.labels) for f in chosen],
                out,
                self.sizes,
                names=_origins(chosen),
                log=log,
            )
            label = name or "·".join(f.name for f in chosen)
            factors = [*rest, Factor(data, out, label)]
        return replace(t, factors=tuple(factors))

    def smallest(self) -> Self:
        """This tensor, or :meth:`contracted` where that stores fewer numbers
        (terms that share a delta structure added into one array each): a
        structured form should never hold more than it must."""
        arrays: dict[tuple, int] = {}
        for t in self.terms:
            if t.factors:
                tied = {b for _, b in t.deltas}
                present = {lab for f in t.factors for lab in f.labels}
                labels = tuple(i for i in self.indices if i not in tied and i in present)
                arrays[(t.deltas, labels)] = math.prod(self.sizes[lab] for lab in labels)
        if sum(arrays.values()) < self.stored_entries():
            return self.contracted()
        return self


def _origins(factors: Sequence[Factor]) -> list[str]:
    """The operands of a contraction as a log names them: the local Jacobian
    each comes from (``dz/dW``), with the factor's own name where two come
    from the same one (``r^2 of dnll/ds2``)."""
    names = [f.origin or f.name for f in factors]
    repeated = {n for n in names if names.count(n) > 1}
    return [
        f"{f.name} of {n}" if n in repeated and f.origin and f.name != n else n
        for f, n in zip(factors, names, strict=True)
    ]


def _addable(array: Any) -> Any:
    """An array to add to another: a selection as its one-hot (a sum of two
    terms over both its axes is that large anyway)."""
    return array.dense() if isinstance(array, Selection) else array


def _split(factors: Sequence[Factor], shared: Counter) -> list[Factor]:
    """The factors counted in ``shared`` (each as many times as counted)."""
    left, out = Counter(shared), []
    for f in factors:
        key = (id(f.array), f.labels)
        if left[key] > 0:
            left[key] -= 1
            out.append(f)
    return out


def _sum_arrays(*arrays: np.ndarray) -> np.ndarray:
    if not is_numpy(*arrays):
        _, arrays = common(arrays)
    total = copy(arrays[0])
    for a in arrays[1:]:
        total = total + a
    return total


def _axpby(c1: float, c2: float, a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """``c1 a + c2 b`` in C order whatever the operands' layouts (a transposed
    operand first would otherwise make numpy write the result transposed)."""
    if not is_numpy(a, b):
        _, (a, b) = common((a, b))
        return c1 * a + c2 * b
    a = a if c1 == 1.0 else c1 * a
    b = b if c2 == 1.0 else c2 * b
    return np.add(a, b, order="C")
