"""Lowering the matrix functions: ``inv``, ``det``, ``logdet``, ``cholesky``,
``trace`` and ``solve``, along two named indices (the rows, then the
columns) or the last two axes, and the :class:`~tensorchain.language.operations.Origin`
each keeps for messages about its values.

One of the parts the lowering of a statement is made of
(:mod:`tensorchain.language.lower`).
"""

from __future__ import annotations

from ..errors import ShapeError, count_axes
from .operations import Along, Delta, Node, Origin, Product, Solve, base_label, relabel
from .syntax import Call, Index, Ref, show


class LowerMatrixCalls:
    """Matrix functions: one part of the lowering of a statement
    (``lower._Lowering``), which takes the other parts and the statement
    (``fail``, ``lower``, ``axes``, ...) from ``self``."""

    def matrix_call(self, e: Call) -> Node:
        """``inv``, ``det``, ``logdet``, ``cholesky``, ``trace`` of a matrix and
        ``solve(A, b)``: along two named indices (the rows, then the columns),
        or the last two axes when none are named."""
        count = 2 if e.func == "solve" else 1
        first = e.args[0] if e.args else None
        if e.func == "solve":
            example = "x[j] = solve(A[i, j], b[i], i, j)"
        elif (
            isinstance(first, Ref)
            and first.indices
            and len(first.indices) >= 2
            and all(isinstance(i, Index) for i in first.indices[-2:])
        ):
            rows, cols = (i.name for i in first.indices[-2:])
            example = f"{e.func}({show(first)}, {rows}, {cols})"
        elif e.func in ("det", "logdet", "trace"):
            example = f"y[s] = {e.func}(X[s, i, j], i, j)"
        else:
            example = f"Y[s, i, j] = {e.func}(X[s, i, j], i, j)"
        if len(e.args) < count:
            takes = "a matrix and a right side" if count == 2 else "a matrix"
            raise self.fail(f"{e.func} takes {takes}, e.g. {example}", e.pos)
        operands = [self.lower(a) for a in e.args[:count]]
        names = tuple(self.axis_name(a, e) for a in e.args[count:])
        matrix = operands[0]
        what = show(e.args[0])
        if names and len(names) != 2:
            raise self.fail(
                f"{e.func} runs along two indices, the rows and the columns; {len(names)}"
                f" named in {show(e)}, e.g. {example}",
                e.pos,
            )
        if names and not self.index_form:
            raise self.fail(
                f"in whole-tensor form {e.func} takes the last two axes as the matrix;"
                f" to name the rows and columns write the statement in index form, e.g."
                f" {example}",
                e.pos,
            )
        if names:
            row, col = self.resolve_axes(matrix, names, e)
        elif len(matrix.labels) < 2:
            raise self.fail(
                f"{e.func} needs a matrix, but {what} has {count_axes(len(matrix.labels))};"
                f" e.g. {example}",
                e.pos,
                ShapeError,
            )
        else:
            row, col = matrix.labels[-2:]
        names = names or ((base_label(row), base_label(col)) if self.index_form else ())
        origin = self.origin(e, matrix, (row, col), names)
        if e.func == "solve":
            return self.solve(e, matrix, operands[1], row, col, origin)
        if isinstance(matrix, Delta) and e.func != "trace":
            from .delta_values import matrix_of_delta

            return matrix_of_delta(e.func, matrix)
        if e.func in ("inv", "cholesky"):
            return Along(e.func, matrix, (row, col), matrix.labels, names, origin)
        kept = tuple(lab for lab in matrix.labels if lab not in (row, col))
        arg = self.local(matrix, (row, col))
        r, c = (f"{base_label(lab)}@{self.scopes}" for lab in (row, col))
        if e.func == "trace":  # Σ_i X[i, i]: the deltas of a trace stay symbolic
            return self.renumber(Product(1.0, (arg, Delta((r, c), "trace")), kept))
        return self.renumber(Along(e.func, arg, (r, c), kept, names, origin))

    def origin(self, e: Call, matrix: Node, axes: tuple[str, str], names) -> Origin:
        """The user's call, for messages about its values (batch entries named by
        their index, or by their dim in whole-tensor form)."""
        batch = [k for k, lab in enumerate(matrix.labels) if lab not in axes]
        if self.index_form:
            batch_names = tuple(base_label(matrix.labels[k]) for k in batch)
        else:
            dims = self.dims_of(matrix)
            batch_names = tuple(dims[k] for k in batch)
        line = self.program.lines[self.assign.pos.line - 1].strip()
        where = f"line {self.assign.pos.line}: {line}"
        return Origin(e.func, show(e.args[0]), where, batch_names, tuple(names))

    def solve(self, e: Call, matrix: Node, rhs: Node, row: str, col: str, origin: Origin) -> Node:
        what, where = show(e.args[0]), show(e.args[1])
        if not self.index_form:
            if len(matrix.labels) != 2 or len(rhs.labels) not in (1, 2):
                raise self.fail(
                    f"in whole-tensor form solve takes an n×n matrix and a right side of n"
                    f" or n×k entries, but {what} has {count_axes(len(matrix.labels))} and {where}"
                    f" {len(rhs.labels)}; for batches use index form, e.g."
                    " x[s, j] = solve(A[s, i, j], b[s, i], i, j)",
                    e.pos,
                    ShapeError,
                )
            self.scopes += 1
            r, c, k = (f"{x}@{self.scopes}" for x in ("r", "c", "k"))
            matrix = relabel(matrix, dict(zip(matrix.labels, (r, c), strict=True)))
            rhs = relabel(rhs, dict(zip(rhs.labels, (r, k)[: len(rhs.labels)], strict=True)))
            return self.renumber(Solve(matrix, rhs, r, c, origin))
        if row not in rhs.labels or col in rhs.labels:
            raise self.fail(
                f"solve({what}, {where}, {base_label(row)}, {base_label(col)}): the right side"
                f" is indexed by the rows ({base_label(row)}) and not by the columns"
                f" ({base_label(col)}), which index the result: A[i, j] x[j] = b[i]",
                e.pos,
            )
        batch = [lab for lab in matrix.labels if lab not in (row, col)]
        missing = [lab for lab in batch if lab not in rhs.labels]
        if missing:
            raise self.fail(
                f"solve: the index {base_label(missing[0])!r} of {what} must index the right"
                f" side {where} too (a batch of systems, one per entry)",
                e.pos,
            )
        from .delta_values import solve_with_delta

        names = (base_label(row), base_label(col))
        found = solve_with_delta(matrix, rhs, row, col, names, origin)
        return found if found is not None else Solve(matrix, rhs, row, col, origin)
