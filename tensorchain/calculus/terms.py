"""Terms of a labeled tensor: a coefficient times factors times Kronecker deltas.

A :class:`Term` is ``coeff`` times a product of :class:`Factor` s (arrays
whose axes carry labels) times Kronecker deltas between labels; labels that
are not axes of the tensor are summed. A delta is never stored:
:func:`canonical` eliminates it by renaming one label to the other, and only
deltas between two axes of the tensor survive (``da/dz`` of an elementwise
function is ``σ'(z)[i] · δ(i, k)``).
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..language.gather import Selection

_fresh = itertools.count()


def fresh(base: str) -> str:
    """A label no other label shares; ``base`` keeps it readable when printed."""
    return f"{base.split('~')[0]}~{next(_fresh)}"


@dataclass(frozen=True)
class Factor:
    array: np.ndarray
    labels: tuple[str, ...]
    name: str
    origin: str = ""  # the local Jacobian it comes from, e.g. "da/dz"
    tex: str = ""  # the name in LaTeX ("" when it has none: a contracted factor)
    owned: bool = False  # the array is new and nothing else holds it (no copy needed)


@dataclass(frozen=True)
class Term:
    coeff: float
    factors: tuple[Factor, ...]
    deltas: tuple[tuple[str, str], ...] = ()

    def labels(self) -> tuple[str, ...]:
        """Every label, once, in order of appearance (factors, then deltas): an
        order that depends on the term's structure only, never on hashing."""
        found = [lab for f in self.factors for lab in f.labels]
        found += [lab for d in self.deltas for lab in d]
        return tuple(dict.fromkeys(found))

    def rename(self, mapping: dict[str, str]) -> Term:
        get = mapping.get
        factors = tuple(
            changed(f, labels=tuple([get(lab, lab) for lab in f.labels])) for f in self.factors
        )
        return Term(self.coeff, factors, tuple((get(a, a), get(b, b)) for a, b in self.deltas))


def changed(obj: Any, **fields: Any) -> Any:
    """``dataclasses.replace`` for the frozen :class:`Factor` and :class:`Term`,
    without their ``__init__``: the chain rule makes one per factor and step,
    and ``replace`` was a fifth of the time of a first call."""
    new = object.__new__(type(obj))
    new.__dict__.update(obj.__dict__, **fields)
    return new


def canonical(term: Term, indices: Sequence[str], sizes: dict[str, int]) -> Term:
    """Eliminate deltas: merge the labels each delta joins, keep one label per class.

    A class that holds axes of the tensor is represented by its first axis and
    keeps a delta to each other axis in it, any other class by its first label
    in order of appearance (never by name or hash: fresh labels differ from one
    derivation to the next, and the result must not); a class with no axis and
    no factor is a trace ``Σ_k δ(k, k)`` and multiplies the coefficient by its size.
    """
    if not term.deltas:  # nothing to eliminate: every class is one label
        if not any(isinstance(f.array, Selection) for f in term.factors):
            return term
        factors, coeff = _used_up(term.factors, (), set(indices), sizes, term.coeff)
        return Term(coeff, factors, ())
    # Only labels a delta touches can change; every other one is a class of its own.
    parent: dict[str, str] = {}

    def find(x: str) -> str:
        while x in parent:
            x = parent[x]
        return x

    touched: dict[str, None] = {}
    for a, b in term.deltas:
        touched[a] = touched[b] = None
        ra, rb = find(a), find(b)
        if ra != rb:
            parent[rb] = ra
    classes: dict[str, list[str]] = {}
    in_factors = set()
    for f in term.factors:  # order of appearance: factors, then deltas
        for lab in f.labels:
            if lab in touched:
                root = find(lab)
                in_factors.add(root)
                members = classes.setdefault(root, [])
                if lab not in members:
                    members.append(lab)
    for lab in touched:
        members = classes.setdefault(find(lab), [])
        if lab not in members:
            members.append(lab)
    position = {lab: k for k, lab in enumerate(indices)}
    rename: dict[str, str] = {}
    deltas: list[tuple[str, str]] = []
    coeff = term.coeff
    for root, members in classes.items():
        axes = sorted((m for m in members if m in position), key=position.__getitem__)
        rep = axes[0] if axes else members[0]
        rename.update((m, rep) for m in members if m != rep)
        deltas.extend((rep, other) for other in axes[1:])
        if not axes and root not in in_factors:
            coeff *= sizes[rep]
    factors = term.factors
    if rename:
        factors = tuple(
            f if not any(lab in rename for lab in f.labels) else _relabeled(f, rename)
            for f in factors
        )
    deltas.sort(key=lambda d: (position[d[0]], position[d[1]]))
    factors, coeff = _used_up(factors, deltas, position, sizes, coeff)
    return Term(coeff, factors, tuple(deltas))


def _used_up(
    factors: tuple[Factor, ...],
    deltas: Sequence[tuple[str, str]],
    axes: Collection[str],
    sizes: dict[str, int],
    coeff: float,
) -> tuple[tuple[Factor, ...], float]:
    """``factors`` without the selections summed over their position index
    alone: ``Σ_v S[s, v] = 1`` for each ``s`` (the one-hot of integer labels
    summed over the classes), so ``δ(labels[B], i)`` with ``i`` in nothing
    else is dropped. A selection's other index found nowhere else is a sum
    of ones (its size, into the coefficient); one that is an axis of the
    tensor and in no other factor keeps the selection."""
    kept = list(factors)
    k = 0
    while k < len(kept):
        f = kept[k]
        others = {lab for j, g in enumerate(kept) if j != k for lab in g.labels}
        others.update(lab for d in deltas for lab in d)
        if (
            isinstance(f.array, Selection)
            and len(set(f.labels)) == len(f.labels)
            and f.labels[-1] not in others
            and f.labels[-1] not in axes
            and all(s in others or s not in axes for s in f.labels[:-1])
        ):
            coeff *= math.prod(sizes[s] for s in f.labels[:-1] if s not in others)
            del kept[k]
            k = 0
            continue
        k += 1
    return tuple(kept), coeff


def _relabeled(f: Factor, mapping: dict[str, str]) -> Factor:
    return changed(f, labels=tuple([mapping.get(lab, lab) for lab in f.labels]))
