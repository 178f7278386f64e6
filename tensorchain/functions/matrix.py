"""Matrix functions: the inverse, determinants, the Cholesky factor and solves.

A matrix function runs along two named indices of its argument, the rows and
the columns of the matrix; every other index is a batch index
(``Y[s, i, j] = inv(X[s, i, j], i, j)``). ``axes`` are the positions of the
rows and the columns in the argument's array. The numpy functions here are
also what generated code calls (their source is copied into it); the
array-API versions serve torch, JAX, CuPy and dask values.

Their derivatives are small products of factors (the Matrix Cookbook,
Petersen & Pedersen 2012, eqs. 36, 41, 59): ``d X⁻¹ = −X⁻¹ dX X⁻¹``,
``d det X = det X · tr(X⁻¹ dX)``, ``d log|det X| = tr(X⁻¹ dX)``, and for the
Cholesky factor ``L`` of ``A = L Lᵀ``, ``dL = L Φ(L⁻¹ dA L⁻ᵀ)`` with ``Φ``
the lower triangle with the diagonal halved (Murray 2016, "Differentiation
of the Cholesky decomposition"). The Cholesky factor is taken of the
symmetric part ``(X + Xᵀ)/2``, so that its derivative by every entry of
``X`` is defined (as JAX defines it, a symmetric perturbation).

A matrix singular to working precision, whose 1-norm condition number
``κ₁ = ‖X‖₁ ‖X⁻¹‖₁`` exceeds ``1/eps`` (LAPACK's ``rcond < eps``), raises
numpy's ``LinAlgError`` in ``inv`` and ``solve`` as an exactly singular one
does: the inverse is then rounding noise. ``inv`` computes ``κ₁`` exactly
from the inverse it returns, ``solve`` bounds it from below by
``‖A‖₁ ‖x‖₁ / ‖b‖₁`` from its result; both are O(n²) sums, no second
factorisation. The determinant's gradient is the adjugate, ``d · X⁻ᵀ``, or
from the SVD where the matrix is singular (:func:`adjugate_along`).
"""

from __future__ import annotations

from collections.abc import Callable
from contextvars import ContextVar

import numpy as np

from ..arrays.backend import namespace

#: While a matrix function is built for dask values (lazy): makes the error
#: to raise from a block whose matrix is singular, ``guard(block, start)``
#: with ``start`` the block's first index along every axis (see
#: tensorchain.calculus.matrix_rules.checked_matrix).
GUARD: ContextVar[Callable[[np.ndarray, tuple[int, ...]], Exception] | None] = ContextVar(
    "tensorchain_matrix_guard", default=None
)


def inv_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The inverse of each matrix (rows and columns at ``axes``), in place of
    it; numpy's LinAlgError where one is singular to working precision (its
    condition number ‖X‖₁ ‖X⁻¹‖₁, exact and O(n²) from the inverse, beyond 1/eps)."""
    matrices = np.moveaxis(x, axes, (-2, -1))
    y = np.linalg.inv(matrices)
    eps, n = np.finfo(y.dtype).eps, matrices.shape[-1]
    with np.errstate(all="ignore"):
        # n max|X| · n max|X⁻¹| bounds every condition number: exact sums only past it
        peak = [
            np.max(np.abs(a)) if a.dtype.kind == "c" else max(a.max(), -a.min())
            for a in (matrices, y)
        ]
        if n * n * peak[0] * peak[1] * eps > 1.0:
            norms = np.abs(matrices).sum(-2).max(-1) * np.abs(y).sum(-2).max(-1)
            if np.any(norms * eps > 1.0):
                raise np.linalg.LinAlgError("Singular matrix (to working precision)")
    return np.moveaxis(y, (-2, -1), axes)


def adjugate_along(x: np.ndarray, d: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The adjugate adj(X) of each matrix, in place of it, given its
    determinant ``d`` (the matrix axes dropped): ``d · X⁻¹``, or for a matrix
    singular to working precision, from its SVD ``X = U diag(s) Vᴴ``:
    ``adj(X) = det(U) det(Vᴴ) · V diag(∏_{j≠i} s_j) Uᴴ`` (adj(AB) = adj(B)
    adj(A), adj(U) = det(U) Uᴴ for a unitary U), defined and finite at every
    matrix. ∂ det X / ∂X[r, c] = adj(X)[c, r]."""
    m = np.moveaxis(x, axes, (-2, -1))
    n = m.shape[-1]
    flat = m.reshape(-1, n, n)
    dtype = np.result_type(flat.dtype, np.float64 if flat.dtype.kind in "iub" else flat.dtype)
    exact = np.zeros(len(flat), dtype=bool)
    try:
        y = np.linalg.inv(flat)
    except np.linalg.LinAlgError:  # an exactly singular one: each matrix on its own
        y = np.zeros(flat.shape, dtype=dtype)
        for k in range(len(flat)):
            try:
                y[k] = np.linalg.inv(flat[k])
            except np.linalg.LinAlgError:
                exact[k] = True
    with np.errstate(all="ignore"):
        norms = np.abs(flat).sum(axis=-2).max(axis=-1) * np.abs(y).sum(axis=-2).max(axis=-1)
        bad = exact | (norms * np.finfo(y.dtype).eps > 1.0)
    out = np.reshape(d, (-1, 1, 1)) * y
    if bad.any():
        u, s, vh = np.linalg.svd(flat[bad])
        ones = np.ones_like(s[..., :1])
        left = np.cumprod(np.concatenate([ones, s[..., :-1]], axis=-1), axis=-1)
        right = np.cumprod(np.concatenate([ones, s[..., :0:-1]], axis=-1), axis=-1)[..., ::-1]
        sign = np.linalg.det(u) * np.linalg.det(vh)
        v, uh = np.conj(np.swapaxes(vh, -1, -2)), np.conj(np.swapaxes(u, -1, -2))
        out[bad] = sign[:, None, None] * (v * (left * right)[:, None, :]) @ uh
    return np.moveaxis(out.reshape(m.shape), (-2, -1), axes)


def det_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The determinant of each matrix; the two axes are dropped."""
    return np.linalg.det(np.moveaxis(x, axes, (-2, -1)))


def logdet_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """log |det| of each matrix, through an LU factorisation (no overflow)."""
    return np.linalg.slogdet(np.moveaxis(x, axes, (-2, -1)))[1]


def cholesky_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The lower Cholesky factor of the symmetric part of each matrix."""
    matrices = np.moveaxis(x, axes, (-2, -1))
    symmetric = 0.5 * (matrices + np.swapaxes(matrices, -1, -2))
    return np.moveaxis(np.linalg.cholesky(symmetric), (-2, -1), axes)


def tril_half_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """Φ: the lower triangle of each matrix, its diagonal halved (the Cholesky
    factor's derivative; linear, so its derivative is itself)."""
    n = x.shape[axes[0]]
    mask = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    return np.moveaxis(np.moveaxis(x, axes, (-2, -1)) * mask, (-2, -1), axes)


def solve_labeled(
    a: np.ndarray, b: np.ndarray, a_perm: tuple, b_perm: tuple, view: tuple, out_perm: tuple
) -> np.ndarray:
    """``A⁻¹ b`` by an LU solve, never forming ``A⁻¹``: ``a`` transposed by
    ``a_perm`` to (batch…, rows, columns), ``b`` by ``b_perm`` to (batch…,
    rows, rest…) and reshaped to ``view`` (batch…, rows, k); the result
    reshaped back and transposed by ``out_perm`` to the output's axes."""
    rhs = np.reshape(np.transpose(b, b_perm), view)
    matrices = np.transpose(a, a_perm)
    x = np.linalg.solve(matrices, rhs)
    # Singular to working precision: ‖A⁻¹‖₁ ≥ ‖x‖₁ / ‖b‖₁ for each right side,
    # so ‖A‖₁ ‖x‖₁ > ‖b‖₁ / eps proves a condition number beyond 1/eps (O(n²)
    # sums, and first n max|A| · n max|x| against min|b|, which bounds them all).
    eps, n = np.finfo(x.dtype).eps, matrices.shape[-1]
    with np.errstate(all="ignore"):
        peak = [
            np.max(np.abs(a)) if a.dtype.kind == "c" else max(a.max(), -a.min())
            for a in (matrices, x)
        ]
        if n * n * peak[0] * peak[1] * eps > np.min(np.abs(rhs)):
            big = np.abs(matrices).sum(-2).max(-1)[..., None] * np.abs(x).sum(-2)
            if np.any(big * eps > np.abs(rhs).sum(-2)):
                raise np.linalg.LinAlgError("Singular matrix (to working precision)")
    shape = tuple(np.transpose(b, b_perm).shape)
    return np.transpose(np.reshape(x, shape), out_perm)


# --- the same for other array libraries (array-API namespace ``xp``) ---


def _to_end(xp, x, axes):
    order = [k for k in range(x.ndim) if k not in axes] + list(axes)
    return xp.permute_dims(x, tuple(order)), order


def _back(xp, y, order):
    return xp.permute_dims(y, tuple(int(k) for k in np.argsort(order)))


def _norm1(xp, m):
    """The 1-norm (largest column sum) of each matrix."""
    return xp.max(xp.sum(xp.abs(m), axis=-2), axis=-1)


def _eps(x) -> float:
    return float(np.finfo(str(x.dtype).rsplit(".", 1)[-1]).eps)


def _concrete(flags) -> bool | None:
    """``any(flags)``, or None for a traced value (under jax.jit), which has none yet."""
    try:
        return bool(namespace(flags).any(flags))
    except Exception:
        return None


def _inv_xp(xp, x, axes):
    moved, order = _to_end(xp, x, axes)
    y = xp.linalg.inv(moved)  # torch raises on an exactly singular matrix; JAX gives inf
    if _concrete(_norm1(xp, moved) * _norm1(xp, y) * _eps(y) > 1.0):
        raise np.linalg.LinAlgError("Singular matrix (to working precision)")
    return _back(xp, y, order)


def _adjugate_xp(xp, x, d, axes):
    moved, order = _to_end(xp, x, axes)
    try:
        y = xp.linalg.inv(moved)
        bad = ~(_norm1(xp, moved) * _norm1(xp, y) * _eps(y) <= 1.0)  # JAX's NaN: singular
    except Exception as err:  # torch: an exactly singular matrix
        if "linalg" not in type(err).__name__.lower():
            raise
        y, bad = None, None
    d = xp.reshape(d, (*d.shape, 1, 1))
    if y is not None and _concrete(bad) is not True:  # a traced value takes this path
        return _back(xp, d * y, order)
    u, s, vh = xp.linalg.svd(moved)
    n = s.shape[-1]
    full = xp.broadcast_to(xp.reshape(s, (*s.shape[:-1], 1, n)), (*s.shape, n))
    mask = xp.eye(n, dtype=xp.bool, device=getattr(s, "device", None))
    p = xp.prod(xp.where(mask, xp.ones_like(full), full), axis=-1)  # ∏_{j≠i} s_j
    sign = xp.linalg.det(u) * xp.linalg.det(vh)
    v, uh = xp.conj(xp.matrix_transpose(vh)), xp.conj(xp.matrix_transpose(u))
    adj = xp.reshape(sign, (*sign.shape, 1, 1)) * ((v * xp.reshape(p, (*p.shape[:-1], 1, n))) @ uh)
    if y is not None:
        adj = xp.where(xp.reshape(bad, (*bad.shape, 1, 1)), adj, d * y)
    return _back(xp, adj, order)


def _cholesky_xp(xp, x, axes):
    moved, order = _to_end(xp, x, axes)
    symmetric = 0.5 * (moved + xp.matrix_transpose(moved))
    return _back(xp, xp.linalg.cholesky(symmetric), order)


def _tril_half_xp(xp, x, axes):
    n = x.shape[axes[0]]
    mask = np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)
    moved, order = _to_end(xp, x, axes)
    return _back(
        xp, moved * xp.asarray(mask, dtype=x.dtype, device=getattr(x, "device", None)), order
    )


def _guarded(fn, axes: tuple[int, ...], guard):
    """``fn`` on one dask block, a singular matrix in it raised as ``guard``'s
    error (read when the graph is built: dask computes later, elsewhere)."""

    def block(x, *rest, block_info=None):
        try:
            return fn(x, *rest, axes=axes)
        except np.linalg.LinAlgError:
            if guard is None:
                raise
            start = tuple(lo for lo, _ in block_info[0]["array-location"]) if block_info else ()
            raise guard(x, start) from None

    return block


def _on_dask(fn, reduces: bool):
    """``fn`` (a numpy function above) block by block on a dask array whose
    matrix axes are rechunked whole: dask's own linear algebra takes single
    2-D matrices only. A second argument (the determinants, for the
    adjugate) is chunked like the batch of the first."""

    def run(xp, x, *rest, axes):
        whole = x.rechunk({a: -1 for a in axes})
        block = _guarded(fn, axes, GUARD.get())
        if rest:  # d, its batch axes as x's, the matrix axes of size 1 (squeezed in the block)
            (d,) = rest
            d = d.reshape(tuple(1 if k in axes else n for k, n in enumerate(x.shape)))
            d = d.rechunk(tuple(c if k not in axes else -1 for k, c in enumerate(whole.chunks)))
            block = _with_d(block, axes)
            return whole.map_blocks(block, d, dtype=np.result_type(x.dtype, d.dtype))
        if reduces:
            return whole.map_blocks(block, drop_axis=list(axes), dtype=x.dtype)
        return whole.map_blocks(block, dtype=x.dtype)

    return run


def _with_d(block, axes):
    def run(x, d, block_info=None):
        return block(x, np.squeeze(d, axis=axes), block_info=block_info)

    return run


def _generic(name: str, fn, reduces: bool, other):
    """The array-API twin ``other``, or on dask ``fn`` block by block."""
    dask = _on_dask(fn, reduces)

    def run(xp, x, *rest, axes):
        if type(x).__module__.startswith("dask"):
            return dask(xp, x, *rest, axes=axes)
        return other(xp, x, *rest, axes)

    run.__name__ = name
    return run


GENERIC = {
    "inv_along": _generic("inv_along", inv_along, False, _inv_xp),
    "det_along": _generic(
        "det_along", det_along, True, lambda xp, x, axes: xp.linalg.det(_to_end(xp, x, axes)[0])
    ),
    "logdet_along": _generic(
        "logdet_along",
        logdet_along,
        True,
        lambda xp, x, axes: xp.linalg.slogdet(_to_end(xp, x, axes)[0])[1],
    ),
    "cholesky_along": _generic("cholesky_along", cholesky_along, False, _cholesky_xp),
    "tril_half_along": _generic("tril_half_along", tril_half_along, False, _tril_half_xp),
    "adjugate_along": _generic("adjugate_along", adjugate_along, False, _adjugate_xp),
}


def solve_any(a, b, a_perm, b_perm, view, out_perm):
    """:func:`solve_labeled` for arrays of any library."""
    if isinstance(a, np.ndarray) and isinstance(b, np.ndarray):
        return solve_labeled(a, b, a_perm, b_perm, view, out_perm)
    if type(a).__module__.startswith("dask") or type(b).__module__.startswith("dask"):
        import dask  # one task: the systems need whole matrices
        import dask.array as da

        out = tuple(b.shape[k] for k in b_perm)
        shape = tuple(out[k] for k in out_perm)
        guard = GUARD.get()

        def solve(a, b):
            try:
                return solve_labeled(a, b, a_perm, b_perm, view, out_perm)
            except np.linalg.LinAlgError:
                if guard is None:
                    raise
                raise guard(a, ()) from None

        task = dask.delayed(solve)(a, b)
        return da.from_delayed(task, shape=shape, dtype=np.result_type(a.dtype, b.dtype))
    xp = namespace(a, b)
    moved = xp.permute_dims(b, b_perm)
    matrices, rhs = xp.permute_dims(a, a_perm), xp.reshape(moved, view)
    x = xp.linalg.solve(matrices, rhs)
    big = xp.reshape(_norm1(xp, matrices), (*matrices.shape[:-2], 1)) * xp.sum(xp.abs(x), axis=-2)
    if _concrete(big * _eps(x) > xp.sum(xp.abs(rhs), axis=-2)):
        raise np.linalg.LinAlgError("Singular matrix (to working precision)")
    return xp.permute_dims(xp.reshape(x, tuple(moved.shape)), out_perm)
