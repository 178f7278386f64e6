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
"""

from __future__ import annotations

import numpy as np

from .backend import namespace


def inv_along(x: np.ndarray, axes: tuple[int, ...]) -> np.ndarray:
    """The inverse of each matrix (rows and columns at ``axes``), in place of it."""
    matrices = np.moveaxis(x, axes, (-2, -1))
    return np.moveaxis(np.linalg.inv(matrices), (-2, -1), axes)


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
    x = np.linalg.solve(np.transpose(a, a_perm), rhs)
    shape = tuple(np.transpose(b, b_perm).shape)
    return np.transpose(np.reshape(x, shape), out_perm)


# --- the same for other array libraries (array-API namespace ``xp``) ---


def _to_end(xp, x, axes):
    order = [k for k in range(x.ndim) if k not in axes] + list(axes)
    return xp.permute_dims(x, tuple(order)), order


def _back(xp, y, order):
    return xp.permute_dims(y, tuple(int(k) for k in np.argsort(order)))


def _inv_xp(xp, x, axes):
    moved, order = _to_end(xp, x, axes)
    return _back(xp, xp.linalg.inv(moved), order)


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


def _on_dask(fn, reduces: bool):
    """``fn`` (a numpy function above) block by block on a dask array whose
    matrix axes are rechunked whole: dask's own linear algebra takes single
    2-D matrices only."""

    def run(xp, x, axes):
        whole = x.rechunk({a: -1 for a in axes})
        if reduces:
            return whole.map_blocks(fn, axes=axes, drop_axis=list(axes), dtype=x.dtype)
        return whole.map_blocks(fn, axes=axes, dtype=x.dtype)

    return run


def _generic(name: str, fn, reduces: bool, other):
    """The array-API twin ``other``, or on dask ``fn`` block by block."""
    dask = _on_dask(fn, reduces)

    def run(xp, x, axes):
        if type(x).__module__.startswith("dask"):
            return dask(xp, x, axes)
        return other(xp, x, axes)

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
        task = dask.delayed(solve_labeled)(a, b, a_perm, b_perm, view, out_perm)
        return da.from_delayed(task, shape=shape, dtype=np.result_type(a.dtype, b.dtype))
    xp = namespace(a, b)
    moved = xp.permute_dims(b, b_perm)
    x = xp.linalg.solve(xp.permute_dims(a, a_perm), xp.reshape(moved, view))
    return xp.permute_dims(xp.reshape(x, tuple(moved.shape)), out_perm)
