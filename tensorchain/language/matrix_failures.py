"""Why a matrix function failed, in the user's words.

The first matrix of a batch that is singular (to working precision) or, for
``cholesky``, not positive definite, named by the user's call
(:class:`~tensorchain.language.operations.Origin`), its batch entry and what to do
instead. Shared by the derivative rules (:mod:`tensorchain.calculus.matrix_rules`)
and the reference (:mod:`tensorchain.reference.matrix_jets`): a message, no
derivative.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

from ..arrays.backend import to_numpy

if TYPE_CHECKING:
    from .operations import Origin


def _failing(matrices: np.ndarray, cholesky: bool) -> tuple[tuple[int, ...], str] | None:
    """The first batch entry that is singular (or not positive definite), and how."""
    for index in np.ndindex(*matrices.shape[:-2]):
        m = matrices[index]
        try:
            if cholesky:
                np.linalg.cholesky(0.5 * (m + m.T))
                continue
            y = np.linalg.inv(m)
        except np.linalg.LinAlgError:
            return index, "not positive definite" if cholesky else "singular"
        eps = np.finfo(y.dtype).eps  # the working precision: float32's for float32 values
        with np.errstate(all="ignore"):
            kappa = np.abs(m).sum(axis=0).max() * np.abs(y).sum(axis=0).max()
        if kappa * eps > 1.0:
            return index, (
                f"singular to working precision (its condition number {kappa:.2g} is beyond"
                f" 1/eps = {1 / eps:.2g})"
            )
    return None


def matrix_message(
    func: str, origin: Origin, axes: tuple[int, ...], array, start: tuple[int, ...] = ()
) -> str:
    """Why ``func`` failed on ``array`` (the matrices at ``axes``; ``start``: the
    first index of a dask block along every axis), in the user's words."""
    matrices = np.moveaxis(np.asarray(to_numpy(array)), axes, (-2, -1))
    found = _failing(matrices, func == "cholesky")
    index, problem = found or ((), "singular to working precision")
    entry = ""
    if index:
        offset = [lo for k, lo in enumerate(start) if k not in axes] or [0] * len(index)
        index = tuple(int(i) + int(lo) for i, lo in zip(index, offset, strict=True))
        names = origin.batch
        if len(names) != len(index):
            names = tuple(f"batch axis {k}" for k in range(len(index)))
        entry = " at " + ", ".join(f"{b}={i}" for b, i in zip(names, index, strict=True))
    where = f" ({origin.where})" if origin.where else ""
    return f"{origin.func} of {origin.arg}{where}: the matrix{entry} is {problem}; {_fix(origin)}"


def _fix(origin: Origin) -> str:
    """What to do instead, for the user's function."""
    delta = "delta[{}, {}]".format(*origin.axes) if len(origin.axes) == 2 else "delta[i, j]"
    regularise = f"check the values, or regularise it (e.g. + 1e-6 * {delta})"
    if origin.func == "cholesky":
        return (
            "cholesky needs a symmetric positive definite matrix; add a multiple of the"
            f" identity (e.g. + 1e-6 * {delta}) or check the values"
        )
    if origin.func == "logdet":
        return (
            "log |det| is -inf there and its derivative, the inverse transposed, is"
            f" undefined; {regularise}"
        )
    if origin.func == "det":
        return (
            "the gradient of det there is the adjugate, but its second and higher"
            f" derivatives are computed only at invertible matrices; {regularise}"
        )
    return f"{origin.func} needs an invertible matrix; {regularise}"
