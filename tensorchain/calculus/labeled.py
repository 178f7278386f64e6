"""LabeledTensor: named axes, factors, and Kronecker deltas kept symbolic.

A labeled tensor is a sum of terms; each term is ``coeff`` times a product of
factors (arrays whose axes carry labels) times Kronecker deltas between
labels. Labels that are not axes of the tensor are summed. A delta is never
stored: :func:`canonical` eliminates it by renaming one label to the other,
and only deltas between two axes of the tensor survive (``da/dz`` of an
elementwise function is ``σ'(z)[i] · δ(i, k)``). ``.array`` is the one place
that densifies.
"""

from __future__ import annotations

import functools
import itertools
import math
from collections import Counter
from collections.abc import Collection, Sequence
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any

import numpy as np
import opt_einsum as oe

from ..arrays.backend import (
    astype,
    backend_of,
    common,
    constant,
    copy,
    device_of,
    is_numpy,
    numpy_dtype,
    to_backend,
    zeros_like_values,
)
from ..arrays.limits import format_bytes, get_memory_limit
from ..arrays.trace import apply, linear_source
from ..contraction.einsum import Contraction, contract, equation
from ..errors import MemoryLimitError, ShapeError
from ..language.gather import Selection
from ..language.gather import stored_entries as entries
from ..language.reindex import is_reindex, stored_size

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


class LabeledTensor:
    """A tensor with one name per axis, stored as factors and symbolic deltas.

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse(tc.ARTICLE)
        >>> J = net.jacobian("a", wrt="W", values=net.random_values(n=4, m=3))
        >>> J.indices, J.shape
        (('n', "n'", 'm'), (4, 4, 3))
        >>> J.deltas
        (('n', "n'"),)
    """

    def __init__(
        self,
        indices: Sequence[str],
        sizes: dict[str, int],
        terms: Sequence[Term],
        *,
        canonicalize: bool = True,
        dtype: Any = None,
        like: Any = None,
    ) -> None:
        self.indices: tuple[str, ...] = tuple(indices)
        self.like = like  # an array whose library a tensor with no terms is dense in
        self.dtype = np.dtype(dtype) if dtype is not None else None  # None: from the factors
        if len(set(self.indices)) != len(self.indices):
            raise ValueError(f"axis names must be distinct, got {self.indices}")
        self.sizes = sizes
        if canonicalize:
            terms = [canonical(t, self.indices, sizes) for t in terms]
        self.terms: tuple[Term, ...] = tuple(terms)
        self._canonical = canonicalize  # known to be in canonical form (sums skip it)

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(self.sizes[i] for i in self.indices)

    @property
    def ndim(self) -> int:
        return len(self.indices)

    @property
    def deltas(self) -> tuple[tuple[str, str], ...]:
        """The deltas every term shares: the structure a dense array would hide."""
        if not self.terms:
            return ()
        common = set(self.terms[0].deltas)
        for t in self.terms[1:]:
            common &= set(t.deltas)
        return tuple(d for d in self.terms[0].deltas if d in common)

    @property
    def result_dtype(self) -> np.dtype:
        """The dtype of the dense array: ``dtype`` when set, else the factors'
        promoted (float64 when there are none, or only integers)."""
        if self.dtype is not None:
            return self.dtype
        found = [numpy_dtype(f.array) for t in self.terms for f in t.factors]
        if self.like is not None:
            found.append(numpy_dtype(self.like))
        return _inexact(np.result_type(*found)) if found else np.dtype(np.float64)

    @classmethod
    def identity(cls, indices: Sequence[str], sizes: dict[str, int]) -> LabeledTensor:
        """δ between the first and second half of ``indices``."""
        k = len(indices) // 2
        pairs = tuple(zip(indices[:k], indices[k:], strict=True))
        return cls(indices, sizes, [Term(1.0, (), pairs)])

    @classmethod
    def zeros(
        cls, indices: Sequence[str], sizes: dict[str, int], like: Any = None
    ) -> LabeledTensor:
        """The zero tensor (no terms); dense, it is an array of ``like``'s library."""
        return cls(indices, sizes, [], like=like)

    def rename(self, indices: Sequence[str]) -> LabeledTensor:
        """The same tensor with its axes renamed, in order (a summed label that
        one of the new names would capture is made fresh first)."""
        mapping = dict(zip(self.indices, indices, strict=True))
        taken = set(indices)
        for t in self.terms:
            for lab in t.labels():
                if lab not in mapping and lab in taken:
                    mapping[lab] = fresh(lab)
        sizes = dict(self.sizes)
        sizes.update((new, self.sizes[old]) for old, new in mapping.items())
        terms = [t.rename(mapping) for t in self.terms]
        # Renaming axes in place keeps a canonical form canonical.
        out = LabeledTensor(
            indices,
            sizes,
            terms,
            canonicalize=not self._canonical,
            dtype=self.dtype,
            like=self.like,
        )
        out._canonical = True
        return out

    def _freshened(self, keep: dict[str, str]) -> tuple[list[Term], dict[str, str]]:
        """Terms with every label renamed fresh except those in ``keep``, and the map."""
        mapping = dict(keep)
        for lab in (*self.indices, *(lab for t in self.terms for lab in t.labels())):
            if lab not in mapping:
                mapping[lab] = fresh(lab)
        return [t.rename(mapping) for t in self.terms], mapping

    def terms_on(self, labels: Sequence[str], sizes: dict[str, int]) -> list[Term]:
        """The terms with the axes renamed to ``labels`` (in order; a label may
        repeat: a diagonal) and every other label made fresh, for use as a
        factor of a product over ``labels``; ``sizes`` gets the fresh labels."""
        terms, mapping = self._freshened(dict(zip(self.indices, labels, strict=True)))
        for old, new in mapping.items():
            if new not in sizes:
                sizes[new] = self.sizes[old]
        return terms

    def chain(self, other: LabeledTensor, k: int) -> LabeledTensor:
        """Contract the last ``k`` axes of ``self`` with the first ``k`` of ``other``.

        This is one chain-rule step, ``dA/dB · dB/dC``; nothing is evaluated: the
        factors are collected and the deltas eliminated.
        """
        joined = self.indices[len(self.indices) - k :]
        if k > min(self.ndim, other.ndim) or self.shape[self.ndim - k :] != other.shape[:k]:
            raise ShapeError(
                f"chain joins the last {k} axes of a tensor of shape {self.shape} with the"
                f" first {k} of one of shape {other.shape}: their sizes must agree"
            )
        terms_b, mapping = other._freshened(dict(zip(other.indices[:k], joined, strict=True)))
        indices = (
            *self.indices[: len(self.indices) - k],
            *(mapping[i] for i in other.indices[k:]),
        )
        theirs = {new: other.sizes[old] for old, new in mapping.items()}
        # Only the sizes of labels in use are kept: carried along a chain, the
        # sizes of every label ever made would make each step cost O(depth).
        sizes = {lab: theirs[lab] if lab in theirs else self.sizes[lab] for lab in indices}
        terms = []
        for ta in self.terms:
            for tb in terms_b:
                term = Term(ta.coeff * tb.coeff, ta.factors + tb.factors, ta.deltas + tb.deltas)
                # A joined axis broadcast on both sides is summed over nothing but
                # ones: it contributes its size.
                labels = term.labels()
                for lab in joined:
                    if lab not in labels:
                        term = replace(term, coeff=term.coeff * self.sizes[lab])
                for lab in labels:
                    if lab not in sizes:
                        sizes[lab] = theirs[lab] if lab in theirs else self.sizes[lab]
                terms.append(term)
        return LabeledTensor(indices, sizes, terms, dtype=_joint_dtype(self, other))

    def __add__(self, other: LabeledTensor) -> LabeledTensor:
        return LabeledTensor.sum([self, other])

    @staticmethod
    def sum(tensors: Sequence[LabeledTensor]) -> LabeledTensor:
        """The sum of tensors of one shape, on the first one's axis names; its
        terms are theirs, put in canonical form only where they are not yet
        (so that adding k tensors one use at a time costs O(k), not O(k²))."""
        first = tensors[0]
        if len(tensors) == 1:
            return first
        sizes: dict[str, int] = {}
        terms: list[Term] = []
        dtype, like = first.dtype, None
        for k, t in enumerate(tensors):
            if t.shape != first.shape:
                raise ValueError(f"cannot add shapes {first.shape} and {t.shape}")
            t = t.rename(first.indices) if t.indices != first.indices else t
            sizes.update(t.sizes)
            if t._canonical:
                terms.extend(t.terms)
            else:
                terms.extend(canonical(term, first.indices, t.sizes) for term in t.terms)
            if k:
                dtype = None if dtype is None or t.dtype is None else np.result_type(dtype, t.dtype)
            like = t.like if like is None else like
        out = LabeledTensor(first.indices, sizes, terms, canonicalize=False, dtype=dtype, like=like)
        out._canonical = True
        return out

    def scale(self, c: float) -> LabeledTensor:
        terms = [replace(t, coeff=t.coeff * c) for t in self.terms]
        return LabeledTensor(
            self.indices, self.sizes, terms, canonicalize=False, dtype=self.dtype, like=self.like
        )

    def factored(self, log: list[Contraction] | None = None) -> LabeledTensor:
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
        return LabeledTensor(
            self.indices, self.sizes, terms, canonicalize=False, dtype=self.dtype, like=self.like
        )

    def contracted(
        self, name: str | None = None, log: list[Contraction] | None = None
    ) -> LabeledTensor:
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
        return LabeledTensor(
            self.indices,
            self.sizes,
            list(merged.values()),
            canonicalize=False,
            dtype=self.dtype,
            like=self.like,
        )

    def compacted(
        self, name: str | None = None, log: list[Contraction] | None = None
    ) -> LabeledTensor:
        """Each term contracted as far as that keeps it small: the steps of its
        planned path are run while each result holds no more numbers than the
        term's factors together. A per-sample gradient ``g[s, i] · x[s, j]``
        stays two factors (its dense form is B·n·m numbers, the factors
        B·(n + m)); a term whose dense form is small is contracted whole."""
        whole, kept = [], []
        for t in self.terms:
            t = self._partly_contracted(t, name, log)
            (whole if len(t.factors) <= 1 else kept).append(t)
        done = LabeledTensor(self.indices, self.sizes, whole, canonicalize=False)
        terms = [*done.contracted(name, log).terms, *kept]
        return LabeledTensor(
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

    def with_arrays(
        self, arrays: Sequence[np.ndarray], dtype: Any = None, owned: Sequence[bool] = ()
    ) -> LabeledTensor:
        """The same structure with the factors' arrays replaced, in term order
        (``owned``: which of them are new arrays that nothing else holds)."""
        it = iter(zip(arrays, [*owned, *[False] * (len(arrays) - len(owned))], strict=True))

        def factor(f: Factor) -> Factor:
            array, own = next(it)
            if isinstance(f.array, Selection):  # its integers were given
                return Factor(f.array.with_ids(array), f.labels, f.name, f.origin, f.tex)
            return Factor(array, f.labels, f.name, f.origin, f.tex, own)

        terms = [Term(t.coeff, tuple(factor(f) for f in t.factors), t.deltas) for t in self.terms]
        return LabeledTensor(self.indices, self.sizes, terms, canonicalize=False, dtype=dtype)

    @cached_property
    def array(self) -> np.ndarray:
        """The dense array, shape ``self.shape`` (the only place deltas become dense).

        Refused with :class:`MemoryLimitError` when it would exceed the memory
        limit (``tc.set_memory_limit``); see :meth:`dense`."""
        return self.dense()

    def stored_entries(self) -> int:
        """How many numbers the structured form holds (its factors' entries; a
        selection holds its integer positions only; a
        reshape's or concatenation's constant factor, a strided view, holds
        the entries of its vector: :mod:`tensorchain.language.reindex`)."""
        return sum(
            entries(f.array) if isinstance(f.array, Selection) else stored_size(f.array)
            for t in self.terms
            for f in t.factors
        )

    def stored_arrays(self) -> list[Any]:
        """The arrays the structured form holds, term by term (a selection's
        integer positions in its place): what :meth:`with_arrays` takes back."""
        return [
            f.array.ids if isinstance(f.array, Selection) else f.array
            for t in self.terms
            for f in t.factors
        ]

    def smallest(self) -> LabeledTensor:
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

    def dense(self, memory_limit: int | None = None) -> np.ndarray:
        """The dense array, after checking its forecast against ``memory_limit``
        (bytes; default: the limit in force). With factors that are dask
        arrays (from dask values) it is a dask array instead, nothing computed
        yet, in chunks of at most a quarter of the limit."""
        whole = self._whole()
        if whole is not None:
            return whole  # already in memory: nothing to forecast
        if any(backend_of(f.array) == "dask" for t in self.terms for f in t.factors):
            # Lazy, in blocks of a quarter of the memory limit at most (a block
            # also holds its factors' slices while it is computed).
            from ..runtime.blocks import block_chunks

            return self.to_dask(chunks=block_chunks(self, get_memory_limit(memory_limit) // 4))
        # The output, plus the largest term's data before it is placed.
        data = (
            math.prod(self.sizes[r] for r in _diagonal(t, self.indices, self.shape)[0])
            for t in self.terms
        )
        forecast = 8 * (math.prod(self.shape) + max(data, default=0))
        limit = get_memory_limit(memory_limit)
        if forecast > limit:
            shape = " × ".join(map(str, self.shape))
            error = MemoryLimitError(
                f"the dense array of this LabeledTensor ({shape}) would need"
                f" {format_bytes(forecast)}, more than the memory limit of"
                f" {format_bytes(limit)}; its structured form holds only"
                f" {self.stored_entries():,} numbers with symbolic δ"
                f" {', '.join(f'({a}, {b})' for a, b in self.deltas) or '(none)'}: use"
                " .terms and .deltas, contract it with what you need first, compute it"
                " block by block with .to_dask(chunks) (or dask values), use smaller"
                " sizes, or raise the limit with tc.set_memory_limit",
                forecast,
                limit,
            )
            error.dense_shape = self.shape  # callers that made it say what it is
            raise error
        return self._dense()

    def block(self, ranges: Sequence[tuple[int, int]]) -> np.ndarray:
        """One block of the dense array, ``(start, stop)`` per axis, computed from
        the structured form with the block's memory only (see :mod:`tensorchain.runtime.blocks`)."""
        from ..runtime.blocks import block

        return block(self, ranges)

    def to_dask(self, chunks: Any = "auto") -> Any:
        """The dense array as a chunked dask array, each chunk computed from the
        structured form when needed: for results larger than memory (reduce
        them, slice them, write them to Zarr). Needs ``pip install 'tensorchain[dask]'``.

        Example:
            >>> import tensorchain as tc
            >>> net = tc.parse(tc.ARTICLE)
            >>> H = net.hessian("C", "W", net.random_values(n=4, m=3))
            >>> H.to_dask(chunks=2).chunks[0]  # doctest: +SKIP
            (2, 2)
        """
        from ..runtime.blocks import to_dask

        return to_dask(self, chunks)

    def _whole(self) -> np.ndarray | None:
        """The one factor's array when it already is the dense result, and ours."""
        if len(self.terms) != 1:
            return None
        (t,) = self.terms
        if t.deltas or t.coeff != 1.0 or len(t.factors) != 1:
            return None
        only = t.factors[0]
        return only.array if only.owned and only.labels == self.indices else None

    def _dense(self) -> np.ndarray:
        whole = self._whole()
        if whole is not None:
            return whole
        if not self.terms and self.like is not None:
            return zeros_like_values(self.shape, {"": self.like})
        if len(self.terms) == 1 and not self.terms[0].deltas:
            (t,) = self.terms
            operands = [(f.array, f.labels) for f in t.factors]
            return contract(operands, self.indices, self.sizes, scale=t.coeff, fresh=True)
        datas, placements, owners = [], [], []
        for t in self.terms:
            reps, strides = _diagonal(t, self.indices, self.shape)
            datas.append(contract([(f.array, f.labels) for f in t.factors], reps, self.sizes))
            placements.append((t.coeff, [self.sizes[r] for r in reps], strides))
            owners.append((t.coeff, reps, _rep_of(t, self.indices)))
        dtype = self.dtype

        def code(args: Sequence[str]) -> str:
            kind = "None" if dtype is None else f"np.dtype({dtype.str!r})"
            return f"place({self.shape}, {placements!r}, {kind}, {', '.join(args)})"

        assemble = _assemble(self.shape, placements, dtype, self.indices, self.sizes, owners)
        return apply(assemble, *datas, shape=self.shape, code=code)

    def __repr__(self) -> str:
        from ..presentation.notation import format_labeled

        return format_labeled(self)


def _addable(array: Any) -> Any:
    """An array to add to another: a selection as its one-hot (a sum of two
    terms over both its axes is that large anyway)."""
    return array.dense() if isinstance(array, Selection) else array


def _inexact(dtype: np.dtype) -> np.dtype:
    """``dtype`` if floating or complex, else float64 (integer or boolean factors)."""
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _joint_dtype(a: LabeledTensor, b: LabeledTensor) -> np.dtype | None:
    """The dtype of a product or sum of two tensors (None: from their factors)."""
    if a.dtype is None or b.dtype is None:
        return None
    return np.result_type(a.dtype, b.dtype)


def _diagonal(term: Term, indices: tuple[str, ...], shape: tuple[int, ...]):
    """The term's distinct axes (one per delta class) and, for each, its stride
    in entries of a C-ordered array of ``shape``: the sum of the strides of the
    axes the deltas tie together."""
    rep_of = _rep_of(term, indices)
    reps = list(dict.fromkeys(rep_of[i] for i in indices))
    c_strides = np.zeros(len(shape), dtype=np.int64)
    step = 1
    for axis in reversed(range(len(shape))):
        c_strides[axis] = step
        step *= shape[axis]
    strides = dict.fromkeys(reps, 0)
    for axis, lab in enumerate(indices):
        strides[rep_of[lab]] += int(c_strides[axis])
    return reps, [strides[r] for r in reps]


def _rep_of(term: Term, indices: Sequence[str]) -> dict[str, str]:
    """Each axis's distinct axis: the first of the axes its deltas tie it to."""
    rep_of = {i: i for i in indices}
    rep_of.update((b, a) for a, b in term.deltas)
    return rep_of


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


def place(shape, placements, dtype, *datas):
    """Zeros of ``shape``, plus each term's data added through a strided view of
    its delta diagonals (each placement: coefficient, view shape, strides in
    entries). Symbolic deltas become dense here and nowhere else."""
    if dtype is None:  # the data's, floating or complex
        dtype = np.result_type(*datas) if datas else np.dtype(np.float64)
        dtype = dtype if dtype.kind in "fc" else np.dtype(np.float64)
    out = np.zeros(shape, dtype=dtype)
    for data, (coeff, view_shape, strides) in zip(datas, placements, strict=True):
        byte_strides = [s * out.itemsize for s in strides]
        view = np.lib.stride_tricks.as_strided(out, shape=view_shape, strides=byte_strides)
        view += coeff * data
    return out


def place_with_deltas(
    indices: tuple[str, ...], sizes: dict[str, int], owners: list, dtype: Any, *datas: Any
) -> Any:
    """What :func:`place` does, for arrays of another library (which may not
    be written through a strided view): each term's data times an identity
    matrix per delta, by opt_einsum on that library. ``owners``: per term,
    its coefficient, its distinct axes and, per axis, the distinct axis it
    is tied to."""
    library, datas = common(datas)
    device = device_of(datas[0])
    letter = {lab: oe.get_symbol(k) for k, lab in enumerate(indices)}
    total = None
    for data, (coeff, reps, rep_of) in zip(datas, owners, strict=True):
        terms, operands = ["".join(letter[r] for r in reps)], [data]
        for lab in indices:
            if rep_of[lab] != lab:
                eye = np.eye(sizes[lab], dtype=numpy_dtype(data))
                terms.append(letter[rep_of[lab]] + letter[lab])
                operands.append(to_backend(eye, library, device))
        eq = ",".join(terms) + "->" + "".join(letter[i] for i in indices)
        dense = coeff * oe.contract(eq, *operands, backend=library)
        total = dense if total is None else total + dense
    return total if dtype is None else astype(total, dtype)


def _assemble(
    shape: tuple[int, ...],
    placements: list,
    dtype: np.dtype | None,
    indices: tuple[str, ...],
    sizes: dict[str, int],
    owners: list,
):
    def assemble(*datas: Any) -> Any:
        if not datas:  # the zero tensor
            return constant(np.zeros(shape, dtype=dtype or np.float64))
        if is_numpy(*datas):
            return place(shape, placements, dtype, *datas)
        return place_with_deltas(indices, sizes, owners, dtype, *datas)

    return assemble
