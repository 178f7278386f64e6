"""LabeledTensor: named axes, factors, and Kronecker deltas kept symbolic.

A labeled tensor is a sum of terms (:mod:`tensorchain.calculus.terms`); each
term is ``coeff`` times a product of factors (arrays whose axes carry labels)
times Kronecker deltas between labels. Labels that are not axes of the tensor
are summed. This module holds the type and its algebra: renaming axes, a
chain-rule step (:meth:`LabeledTensor.chain`), sums and scaling, with every
delta eliminated by :func:`~tensorchain.calculus.terms.canonical`. Its
contractions are in :mod:`tensorchain.calculus.compact`, its dense form in
:mod:`tensorchain.calculus.dense` (``.array`` is the one place that
densifies), its printed form in :mod:`tensorchain.calculus.printing`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from typing import Any

import numpy as np

from ..arrays.backend import numpy_dtype
from ..errors import ShapeError
from ..language.gather import Selection
from ..language.gather import stored_entries as entries
from ..language.reindex import stored_size
from .compact import CompactForms
from .dense import DenseForm
from .printing import format_terms
from .terms import Factor, Term, canonical, fresh


class LabeledTensor(CompactForms, DenseForm):
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

    def __repr__(self) -> str:
        axes = ", ".join(f"{i}={s}" for i, s in zip(self.indices, self.shape, strict=True))
        deltas = self.deltas
        symbolic = f"; symbolic δ: {', '.join(f'({a}, {b})' for a, b in deltas)}" if deltas else ""
        return f"LabeledTensor[{axes}]{symbolic}\n  = {format_terms(self)}"


def _inexact(dtype: np.dtype) -> np.dtype:
    """``dtype`` if floating or complex, else float64 (integer or boolean factors)."""
    return dtype if dtype.kind in "fc" else np.dtype(np.float64)


def _joint_dtype(a: LabeledTensor, b: LabeledTensor) -> np.dtype | None:
    """The dtype of a product or sum of two tensors (None: from their factors)."""
    if a.dtype is None or b.dtype is None:
        return None
    return np.result_type(a.dtype, b.dtype)
