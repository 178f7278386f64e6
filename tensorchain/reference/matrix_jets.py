"""The reference's matrix functions: dense jets from the defining identities.

Part of the independent reference (:mod:`tensorchain.reference.jets`): every mixed
partial derivative ``∂_S`` of a matrix function's value comes from
differentiating the identity that defines it, never from the derivative
rules it checks:

* ``Y = X⁻¹`` from ``X Y = I``: ``∂_S Y = −Y Σ_{∅≠T⊆S} ∂_T X ∂_{S∖T} Y``;
* ``x = A⁻¹ b`` from ``A x = b``: ``∂_S x = A⁻¹ (∂_S b − Σ_{∅≠T⊆S} ∂_T A ∂_{S∖T} x)``;
* ``l = log|det X|``: ``∂_S l = Σ_{T⊆S∖{e}} tr(∂_T X⁻¹ ∂_{S∖T} X)`` for
  ``e`` the least element of ``S`` (Jacobi's formula, differentiated), and
  ``det X = sign · exp(l)``;
* ``L = chol(A)`` from ``A = L Lᵀ``: with ``Q = ∂_S A − Σ_{∅≠T⊊S} ∂_T L
  ∂_{S∖T} Lᵀ``, ``∂_S L = L Φ(L⁻¹ Q L⁻ᵀ)``; ``A`` is the symmetric part.

At a matrix singular to working precision (or not positive definite, for
the Cholesky factor) these identities do not hold, and the reference raises
a :class:`~tensorchain.errors.ValuesError`; but for ``det``, whose first
derivative there is the cofactor matrix, ``∂ det X / ∂X[r, c] = (−1)^{r+c}
det(X without row r and column c)``, computed so (from the definition, not
the SVD the rules take).

Each product is one ``np.einsum`` over labels (the matrix's rows and
columns renamed), with dense arrays: for small sizes.
"""

from __future__ import annotations

import itertools

import numpy as np

from ..errors import ValuesError
from ..language.matrix_failures import matrix_message
from ..language.operations import Along, Origin, Solve, base_label
from .jet_algebra import Jet, compose

#: Functions along two indices, the rows and columns of a matrix.
MATRIX = (
    "inv",
    "det",
    "logdet",
    "cholesky",
    "tril_half",
)


def _renamed(labels: tuple[str, ...], mapping: dict[str, str]) -> tuple[str, ...]:
    return tuple(mapping.get(lab, lab) for lab in labels)


def _splits(subset: frozenset) -> list[tuple[frozenset, frozenset]]:
    """Every (T, S∖T) with T non-empty."""
    members = sorted(subset)
    out = []
    for r in range(1, len(members) + 1):
        for chosen in itertools.combinations(members, r):
            t = frozenset(chosen)
            out.append((t, subset - t))
    return out


def _moved(value: np.ndarray, labels: tuple[str, ...], row: str, col: str) -> np.ndarray:
    return np.moveaxis(value, (labels.index(row), labels.index(col)), (-2, -1))


def _back(value: np.ndarray, labels: tuple[str, ...], row: str, col: str) -> np.ndarray:
    return np.moveaxis(value, (-2, -1), (labels.index(row), labels.index(col)))


def _mask(n: int) -> np.ndarray:
    return np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)


def inverse(x: Jet, labels, row, col, jets) -> Jet:
    """The jets of X⁻¹ (same labels as X)."""
    y0 = _back(np.linalg.inv(_moved(x[frozenset()], labels, row, col)), labels, row, col)
    out: Jet = {frozenset(): y0}
    left = _renamed(labels, {col: "m·2"})  # Y[r, m2]
    for subset in jets.subsets[1:]:
        total = None
        for t, u in _splits(subset):
            if t not in x or u not in out:
                continue
            operands = [
                (y0, left),
                (x[t], (*_renamed(labels, {row: "m·2", col: "m·1"}), *jets.d_labels(t))),
                (out[u], (*_renamed(labels, {row: "m·1"}), *jets.d_labels(u))),
            ]
            term = jets.einsum(operands, (*labels, *jets.d_labels(subset)))
            total = -term if total is None else total - term
        if total is not None:
            out[subset] = total
    return out


def logdet(x: Jet, labels, row, col, jets) -> Jet:
    """The jets of log |det X| (labels: X's but the rows and columns)."""
    rest = tuple(lab for lab in labels if lab not in (row, col))
    y = inverse(x, labels, row, col, jets)
    out: Jet = {frozenset(): np.linalg.slogdet(_moved(x[frozenset()], labels, row, col))[1]}
    transposed = _renamed(labels, {row: col, col: row})
    for subset in jets.subsets[1:]:
        first = min(subset)
        others = subset - {first}
        total = None
        for r in range(len(others) + 1):
            for chosen in itertools.combinations(sorted(others), r):
                t = frozenset(chosen)
                v = subset - t  # holds `first`
                if t not in y or v not in x:
                    continue
                operands = [
                    (y[t], (*labels, *jets.d_labels(t))),
                    (x[v], (*transposed, *jets.d_labels(v))),
                ]
                term = jets.einsum(operands, (*rest, *jets.d_labels(subset)))
                total = term if total is None else total + term
        if total is not None:
            out[subset] = total
    return out


def cholesky(x: Jet, labels, row, col, jets) -> Jet:
    """The jets of the lower Cholesky factor of (X + Xᵀ)/2 (X's labels)."""
    transposed = _renamed(labels, {row: col, col: row})
    a = {
        s: 0.5
        * (v + jets.einsum([(v, (*transposed, *jets.d_labels(s)))], (*labels, *jets.d_labels(s))))
        for s, v in x.items()
    }
    l0 = _back(np.linalg.cholesky(_moved(a[frozenset()], labels, row, col)), labels, row, col)
    inv0 = _back(np.linalg.inv(_moved(l0, labels, row, col)), labels, row, col)
    out: Jet = {frozenset(): l0}
    for subset in jets.subsets[1:]:
        d = jets.d_labels(subset)
        q = a.get(subset)
        for t, u in _splits(subset):
            if not u or t not in out or u not in out:
                continue
            lt = (out[t], (*_renamed(labels, {col: "m·1"}), *jets.d_labels(t)))
            lu = (out[u], (*_renamed(labels, {row: col, col: "m·1"}), *jets.d_labels(u)))
            term = jets.einsum([lt, lu], (*labels, *d))
            q = -term if q is None else q - term
        if q is None:
            continue
        m = jets.einsum(
            [
                (inv0, _renamed(labels, {col: "m·1"})),
                (q, (*_renamed(labels, {row: "m·1", col: "m·2"}), *d)),
                (inv0, _renamed(labels, {row: col, col: "m·2"})),
            ],
            (*labels, *d),
        )
        z = tril_half({subset: m}, labels, row, col, jets)[subset]
        out[subset] = jets.einsum(
            [(l0, _renamed(labels, {col: "m·1"})), (z, (*_renamed(labels, {row: "m·1"}), *d))],
            (*labels, *d),
        )
    return out


def tril_half(x: Jet, labels, row, col, jets) -> Jet:
    """Φ of every ∂_S: the weights of the lower triangle, the diagonal halved."""
    out: Jet = {}
    for s, v in x.items():
        n = v.shape[labels.index(row)]
        mask = _mask(n)
        out[s] = jets.einsum(
            [(v, (*labels, *jets.d_labels(s))), (mask, (row, col))], (*labels, *jets.d_labels(s))
        )
    return out


def _singular(m: np.ndarray, cholesky: bool = False) -> bool:
    """Whether any matrix of ``m`` (batch, n, n) is singular to working
    precision (condition number beyond 1/eps), or not positive definite."""
    try:
        if cholesky:
            np.linalg.cholesky(0.5 * (m + np.swapaxes(m, -1, -2)))
            return False
        y = np.linalg.inv(m)
    except np.linalg.LinAlgError:
        return True
    with np.errstate(all="ignore"):
        kappa = np.abs(m).sum(axis=-2).max(axis=-1) * np.abs(y).sum(axis=-2).max(axis=-1)
    return bool(np.any(kappa * np.finfo(y.dtype).eps > 1.0))


def _refuse(node: Along | Solve, func: str, matrix, labels, row: str, col: str) -> None:
    """The reference's :class:`ValuesError` for a singular matrix."""
    origin = node.origin
    if origin is None:
        batch = tuple(base_label(lab) for lab in labels if lab not in (row, col))
        origin = Origin(func, "its argument", "", batch)
    axes = (labels.index(row), labels.index(col))
    text = matrix_message(func, origin, axes, matrix)
    raise ValuesError(f"the reference (dense jets of the defining identities): {text}")


def cofactors(m: np.ndarray) -> np.ndarray:
    """The cofactor matrix of each matrix of ``m`` (batch, n, n), from the
    definition: ``C[r, c] = (−1)^{r+c} det(m without row r and column c)``."""
    n = m.shape[-1]
    out = np.ones_like(m)
    if n == 1:
        return out
    for r in range(n):
        for c in range(n):
            minor = np.delete(np.delete(m, r, axis=-2), c, axis=-1)
            out[..., r, c] = (-1) ** (r + c) * np.linalg.det(minor)
    return out


def _det_by_cofactors(node: Along, x: Jet, jets) -> Jet:
    """The jets of det at a singular matrix, to first order: ``det X`` and
    ``∂_e det = Σ C[r, c] ∂_e X[r, c]``; higher orders are refused."""
    labels = node.arg.labels
    row, col = node.axes
    moved = _moved(x[frozenset()], labels, row, col)
    if any(len(s) > 1 for s in jets.subsets):
        _refuse(node, "det", x[frozenset()], labels, row, col)
    c = _back(cofactors(moved), labels, row, col)
    rest = tuple(lab for lab in labels if lab not in (row, col))
    out: Jet = {frozenset(): np.linalg.det(moved)}
    for subset in jets.subsets[1:]:
        if subset in x:
            operands = [(c, labels), (x[subset], (*labels, *jets.d_labels(subset)))]
            out[subset] = jets.einsum(operands, (*rest, *jets.d_labels(subset)))
    return out


def matrix(node: Along, x: Jet, jets) -> Jet:
    """The jets of a matrix function along ``node.axes``."""
    labels = node.arg.labels
    row, col = node.axes
    if node.func != "tril_half":
        matrices = _moved(x[frozenset()], labels, row, col)
        if _singular(matrices, node.func == "cholesky"):
            if node.func == "det":
                return _det_by_cofactors(node, x, jets)
            if node.func == "logdet" and len(jets.subsets) == 1:  # log |det| itself: -inf
                return {frozenset(): np.linalg.slogdet(matrices)[1]}
            _refuse(node, node.func, x[frozenset()], labels, row, col)
    if node.func == "inv":
        return inverse(x, labels, row, col, jets)
    if node.func == "cholesky":
        return cholesky(x, labels, row, col, jets)
    if node.func == "tril_half":
        return tril_half(x, labels, row, col, jets)
    logs = logdet(x, labels, row, col, jets)
    if node.func == "logdet":
        return logs
    sign = np.linalg.slogdet(_moved(x[frozenset()], labels, row, col))[0]  # over the batch
    return {
        s: np.reshape(sign, np.shape(sign) + (1,) * (np.ndim(v) - np.ndim(sign))) * v
        for s, v in compose("exp", logs, 0.0, jets).items()
    }


def solve(node: Solve, a: Jet, b: Jet, jets) -> Jet:
    """The jets of A⁻¹ b (labels: b's with the rows replaced by the columns)."""
    row, col = node.row, node.col
    al, bl, xl = node.matrix.labels, node.rhs.labels, node.labels
    if _singular(_moved(a[frozenset()], al, row, col)):
        _refuse(node, "solve", a[frozenset()], al, row, col)
    inv0 = _back(np.linalg.inv(_moved(a[frozenset()], al, row, col)), al, row, col)
    apply_inverse = _renamed(al, {row: col, col: "m·3"})  # A⁻¹[c, m3]
    out: Jet = {}
    for subset in jets.subsets:
        d = jets.d_labels(subset)
        rhs = b.get(subset)
        for t, u in _splits(subset):
            if t not in a or u not in out:
                continue
            operands = [
                (a[t], (*_renamed(al, {col: "m·1"}), *jets.d_labels(t))),
                (out[u], (*_renamed(xl, {col: "m·1"}), *jets.d_labels(u))),
            ]
            term = jets.einsum(operands, (*bl, *d))
            rhs = -term if rhs is None else rhs - term
        if rhs is None:
            continue
        out[subset] = jets.einsum(
            [(inv0, apply_inverse), (rhs, (*_renamed(bl, {row: "m·3"}), *d))], (*xl, *d)
        )
    return out
