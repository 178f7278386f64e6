"""Local derivatives of the matrix functions, kept as products of factors.

With ``r, c`` the rows and columns of the matrix, primes the operand's axes,
``B`` the batch indices (tied to the operand's by δ(B, B')):

* ``Y = inv(X)``: ``dY[r, c]/dX[r', c'] = −Y[r, r'] Y[c', c]`` (two n × n
  factors, never an n⁴ array; the Matrix Cookbook, eq. 59);
* ``d = det(X)``: ``adj(X)[c', r']``, the adjugate, ``d · X⁻¹[c', r']``
  (eq. 49) where ``X`` is invertible and from the SVD where it is singular
  (:func:`tensorchain.functions.matrix.adjugate_along`); ``logdet``: ``X⁻¹[c', r']``
  (eq. 57);
* ``L = cholesky(X)``: ``½ Σ_p L[r, p] Φ[p, c] (L⁻¹[p, r'] L⁻¹[c, c'] +
  L⁻¹[p, c'] L⁻¹[c, r'])``, ``Φ`` the lower triangle with the diagonal halved
  (Murray 2016), symmetrised since the factor is of ``(X + Xᵀ)/2``;
* ``x = solve(A, b)``: by ``b``, ``A⁻¹[c, r']``; by ``A``, ``−A⁻¹[c, r'] x[c']``.

The inverses a rule needs are computed from the values when the rule is made
(``A⁻¹`` once, an n × n array): a gradient through ``solve`` contracts it,
as the closed forms do.
"""

from __future__ import annotations

import functools

import numpy as np

from ..arrays.trace import apply, shared
from ..contraction.einsum import contract
from ..errors import ValuesError
from ..functions.along import on_any_library
from ..functions.matrix import GUARD, adjugate_along, inv_along
from ..language.matrix_failures import matrix_message
from ..language.operations import Along, Node, Origin, Solve, base_label, children
from .factors import STATEMENT, dense, operand_axes
from .labeled import LabeledTensor
from .node_names import name_of, tex_of
from .terms import Factor, Term, fresh


def _inverse(array, arg, row: str, col: str, sizes: dict[str, int], func: str, origin=None):
    """The inverse of each matrix of ``array`` (the value of ``arg``), in place of it."""
    labels = arg.labels
    axes = (labels.index(row), labels.index(col))
    run = functools.partial(on_any_library(inv_along), axes=axes)
    run = checked_matrix(run, func, arg, axes, STATEMENT.get(), origin)
    shape = [sizes[lab] for lab in labels]
    code = lambda a: f"inv_along({a[0]}, {axes})"  # noqa: E731
    # Once per trace: logdet's and a solve's derivatives of one matrix share it.
    return shared(
        ("inv", axes), [array], lambda: apply(run, array, shape=shape, fresh=True, code=code)
    )


def _adjugate(x, d, arg, row: str, col: str, sizes: dict[str, int], origin=None):
    """adj(X) of each matrix of ``x`` (the value of ``arg``) given its
    determinants ``d``, in place of it: ``d · X⁻¹``, from the SVD where singular."""
    labels = arg.labels
    axes = (labels.index(row), labels.index(col))
    run = functools.partial(on_any_library(adjugate_along), axes=axes)
    run = checked_matrix(run, "det", arg, axes, STATEMENT.get(), origin)
    shape = [sizes[lab] for lab in labels]
    code = lambda a: f"adjugate_along({a[0]}, {a[1]}, {axes})"  # noqa: E731
    return apply(run, x, d, shape=shape, fresh=True, code=code)


def checked_matrix(
    run, func: str, arg: Node, axes: tuple[int, ...], context: str, origin: Origin | None = None
):
    """``run`` with a singular (or, for ``cholesky``, not positive definite)
    matrix reported as a :class:`ValuesError` naming the user's call
    (``origin``; else ``func`` of ``arg`` in ``context``), the statement and
    the first batch entry that fails; with dask values, when computed."""
    if origin is None:
        batch = tuple(base_label(lab) for k, lab in enumerate(arg.labels) if k not in axes)
        origin = Origin(func, name_of(arg), context, batch)

    def fail(array, start: tuple[int, ...] = ()) -> ValuesError:
        return ValuesError(matrix_message(func, origin, axes, array, start))

    def checked(*arrays):
        token = GUARD.set(fail)  # for a dask graph built by run: raised when computed
        try:
            return run(*arrays)
        except Exception as err:  # numpy's LinAlgError, or another library's
            if "linalg" not in type(err).__name__.lower() and "singular" not in str(err):
                raise
            raise fail(arrays[0]) from None
        finally:
            GUARD.reset(token)

    return checked


def _mask(n: int) -> np.ndarray:
    """Φ's weights: 1 below the diagonal, ½ on it, 0 above."""
    return np.tril(np.ones((n, n)), -1) + 0.5 * np.eye(n)


def matrix_rule(node: Along, k: int, values, sizes: dict[str, int]) -> LabeledTensor:
    arg = node.arg
    labels = arg.labels
    row, col = node.axes
    indices, sizes, deltas = operand_axes(node, arg, sizes)
    new = dict(deltas)  # arg label -> the operand's axis
    batch = tuple(d for d in deltas if d[0] not in (row, col))  # δ(B, B')
    x, y = dense(values[id(arg)]), dense(values[id(node)])
    inner = name_of(arg)

    def on(array, mapping: dict[str, str], name: str, tex: str = "") -> Factor:
        """A factor over ``labels`` with the row and column labels renamed."""
        return Factor(array, tuple(mapping.get(lab, lab) for lab in labels), name, tex=tex)

    if node.func == "inv":
        here = name_of(node)
        tex = tex_of(node)
        left, right = on(y, {col: new[row]}, here, tex), on(y, {row: new[col]}, here, tex)
        terms = [Term(-1.0, (left, right), batch)]
    elif node.func == "det":  # adj(X)ᵀ[i, j], written as the adjugate read at [j, i]
        adj = _adjugate(x, y, arg, row, col, sizes, node.origin)
        tex = rf"\operatorname{{adj}}\left({tex_of(arg)}\right)"
        terms = [Term(1.0, (on(adj, {row: new[col], col: new[row]}, f"adj({inner})", tex),), batch)]
    elif node.func == "logdet":
        inverse = _inverse(x, arg, row, col, sizes, node.func, node.origin)
        # X⁻ᵀ[i, j] is written as the inverse read at [j, i]
        transposed = on(inverse, {row: new[col], col: new[row]}, f"inv({inner})", _inv_tex(arg))
        terms = [Term(1.0, (transposed,), batch)]
    elif node.func == "cholesky":
        here = name_of(node)
        inverse = _inverse(y, node, row, col, sizes, "inv", node.origin)
        p = fresh(row)
        sizes = {**sizes, p: sizes[row]}
        low = on(y, {col: p}, here, tex_of(node))  # L[r, p]
        phi = Factor(_mask(sizes[row]), (p, col), "Φ", tex=r"\Phi")
        terms = [
            Term(
                0.5,
                (
                    low,
                    phi,
                    on(inverse, {row: p, col: a}, f"inv({here})", _inv_tex(node)),
                    on(inverse, {row: col, col: b}, f"inv({here})", _inv_tex(node)),
                ),
                batch,
            )
            for a, b in ((new[row], new[col]), (new[col], new[row]))
        ]
    else:  # tril_half, linear: its weights on the diagonal of the identity
        phi = Factor(_mask(sizes[row]), (row, col), "Φ", tex=r"\Phi")
        terms = [Term(1.0, (phi,), deltas)]
    return LabeledTensor(indices, sizes, terms)


def _inv_tex(node) -> str:
    return rf"\left({tex_of(node)}\right)^{{-1}}"


def solve_rule(node: Solve, k: int, values, sizes: dict[str, int]) -> LabeledTensor:
    matrix, row, col = node.matrix, node.row, node.col
    operand = children(node)[k]
    indices, sizes, deltas = operand_axes(node, operand, sizes)
    new = dict(deltas)
    a = dense(values[id(matrix)])
    inverse = _inverse(a, matrix, row, col, sizes, "solve", node.origin)
    name = f"inv({name_of(matrix)})"

    def inv(second: str) -> Factor:
        """A⁻¹[c, second]: the column index first (it indexes the result)."""
        mapping = {row: col, col: second}
        labels = tuple(mapping.get(lab, lab) for lab in matrix.labels)
        return Factor(inverse, labels, name, tex=_inv_tex(matrix))

    if k == 1:  # by the right side: A⁻¹[c, r'] and δ on its other indices
        rest = tuple(d for d in deltas if d[0] != row)
        return LabeledTensor(indices, sizes, [Term(1.0, (inv(new[row]),), rest)])
    # x again from the inverse the rule holds anyway (a product, not a second
    # factorisation): a gradient then needs the forward solve's value no more.
    b = dense(values[id(node.rhs)])
    mapping = {row: col, col: row}
    x = contract(
        [(inverse, tuple(mapping.get(lab, lab) for lab in matrix.labels)), (b, node.rhs.labels)],
        node.labels,
        sizes,
    )
    labels = tuple(new[col] if lab == col else lab for lab in node.labels)
    solved = Factor(x, labels, name_of(node), tex=tex_of(node))
    batch = tuple(d for d in deltas if d[0] not in (row, col))
    return LabeledTensor(indices, sizes, [Term(-1.0, (inv(new[row]), solved), batch)])
