"""Lowering arithmetic: numbers, ``+ - * / ^``, elementwise functions, and
the constants folded on the way (refused where they are not finite).

One of the parts the lowering of a statement is made of
(:mod:`tensorchain.language.lower`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from ..errors import ShapeError, count_axes
from .operations import Const, Delta, Map, Node, Product, Select, Sum, base_label, union_labels
from .syntax import COMPARISONS, BinOp, Call, Expr, Neg, Num, Pos, Ref, show


class LowerArithmetic:
    """Expressions and their arithmetic: one part of the lowering of a statement
    (``lower._Lowering``), which takes the other parts and the statement
    (``fail``, ``lower``, ``axes``, ...) from ``self``."""

    # --- building blocks (constant folding, flattening) ---

    def _check_whole(self, a: Node, b: Node, op: str, pos: Pos, ea: Expr, eb: Expr) -> None:
        if self.index_form or not a.labels or not b.labels or a.labels == b.labels:
            return
        raise self.fail(
            f"shape mismatch in whole-tensor arithmetic: {show(ea)} has"
            f" {count_axes(len(a.labels))} but {show(eb)} has {len(b.labels)}; '{op}' needs"
            " equal shapes"
            " (or a scalar). Use index form, e.g. t[i, j] = a[i] * W[i, j]",
            pos,
            ShapeError,
        )

    @staticmethod
    def product(coeff: float, nodes: list[Node]) -> Node:
        factors: list[Node] = []
        for n in nodes:
            if isinstance(n, Const):
                coeff *= n.value
            elif isinstance(n, Product) and not n.summed and not n.mean_over:
                coeff *= n.coeff
                factors.extend(n.factors)
            else:
                factors.append(n)
        if not factors:
            return Const(coeff)
        if len(factors) == 1 and isinstance(factors[0], Product):  # 0.5 * sum(...)
            return replace(factors[0], coeff=coeff * factors[0].coeff)
        labels = union_labels(factors)
        if coeff == 1.0 and len(factors) == 1 and factors[0].labels == labels:
            return factors[0]
        return Product(coeff, tuple(factors), labels)

    @staticmethod
    def add(terms: list[tuple[float, Node]]) -> Node:
        flat: list[tuple[float, Node]] = []
        const = 0.0
        for c, n in terms:
            if isinstance(n, Sum):
                for c2, n2 in n.terms:
                    if isinstance(n2, Const):  # every constant of the sum folded in one
                        const += c * c2 * n2.value
                    else:
                        flat.append((c * c2, n2))
            elif isinstance(n, Const):
                const += c * n.value
            else:
                flat.append((c, n))
        if not flat:
            return Const(const)
        if const != 0.0:
            flat.append((1.0, Const(const)))
        if len(flat) == 1 and flat[0][0] == 1.0:
            return flat[0][1]
        return Sum(tuple(flat), union_labels([n for _, n in flat]))

    # --- expressions ---

    def lower(self, e: Expr) -> Node:
        if isinstance(e, Num):
            return Const(e.value)
        if isinstance(e, Ref):
            return self.ref(e)
        if isinstance(e, Neg):
            return self.product(-1.0, [self.lower(e.operand)])
        if isinstance(e, Call):
            return self.folded(self.call(e), e)
        return self.folded(self.binary(e), e)

    def binary(self, e: BinOp) -> Node:
        if e.op in COMPARISONS:
            raise self.fail(
                f"{show(e)} is a comparison; it is only the condition of where(cond, a, b),"
                f" e.g. where({show(e)}, 1, 0) for the 0/1 mask",
                e.pos,
            )
        a = self.lower(e.left)
        if e.op == "^":
            return self.power(a, e)
        b = self.lower(e.right)
        self._check_whole(a, b, e.op, e.pos, e.left, e.right)
        if e.op in "+-":
            return self.add([(1.0, a), (1.0 if e.op == "+" else -1.0, b)])
        if e.op == "*":
            return self.product(1.0, [a, b])
        if isinstance(b, Const):
            if b.value == 0.0:
                raise self.fail(f"division by the constant zero in {show(e)}", e.pos)
            return self.product(1.0 / b.value, [a])
        return self.product(1.0, [a, self.mapped("reciprocal", b, e)])

    def folded(self, node: Node, e: Call | BinOp) -> Node:
        """``node``, after checking that the constants folded into it are finite
        (``10 ^ 400``, ``log(0)`` or ``1e300 * 1e300`` are not)."""
        if isinstance(node, Const):
            numbers = [node.value]
        elif isinstance(node, Product):
            numbers = [node.coeff]
        elif isinstance(node, Sum):
            numbers = [c for c, _ in node.terms]
            numbers += [t.value for _, t in node.terms if isinstance(t, Const)]
        else:
            return node
        bad = next((v for v in numbers if not math.isfinite(v)), None)
        if bad is not None:
            raise self.fail(_not_finite(show(e), bad), e.pos)
        return node

    def mapped(self, func: str, arg: Node, e: Expr, param: float = 0.0) -> Node:
        """``func`` of ``arg`` elementwise; of ``delta[i, j]`` it is folded (see
        :mod:`tensorchain.language.delta_values`), and refused where it is not finite."""
        from .delta_values import NotFinite, as_value, fold_map

        try:
            folded = fold_map(func, arg, param)
        except NotFinite as err:
            raise self.fail(_delta_not_finite(e, func, err), e.pos) from None
        return folded if folded is not None else Map(func, as_value(arg), param)

    def power(self, base: Node, e: BinOp) -> Node:
        exponent = self.lower(e.right)
        if not isinstance(exponent, Const):  # x ^ y = exp(y log x), for x > 0
            self._check_whole(base, exponent, "^", e.pos, e.left, e.right)
            if isinstance(base, Const):
                if base.value <= 0:
                    raise self.fail(
                        f"{show(e)}: a tensor exponent needs a positive base (x ^ y is"
                        f" exp(y log x)), but the base is {show(e.left)}",
                        e.pos,
                    )
                return Map("exp", self.product(math.log(base.value), [exponent]))
            return Map("exp", self.product(1.0, [exponent, Map("log", base)]))
        p = exponent.value
        if isinstance(base, Const):
            try:
                value = base.value**p
            except ZeroDivisionError:
                raise self.fail(_not_finite(show(e), math.inf), e.pos) from None
            except OverflowError:
                odd = p.is_integer() and int(p) % 2 == 1
                infinity = -math.inf if base.value < 0 and odd else math.inf
                raise self.fail(_not_finite(show(e), infinity), e.pos) from None
            if isinstance(value, complex):  # a negative number to a fractional power
                raise self.fail(_not_finite(show(e), math.nan), e.pos)
            return Const(float(value))
        if p == 1.0:
            return base
        return self.mapped("pow", base, e, p)


def _delta_not_finite(e: Expr, func: str, err) -> str:
    """The message for a function of ``delta[i, j]`` (or of a one-hot
    ``delta[k, ids[s]]``) that is not finite at 0 or 1."""
    where = " and ".join(_delta_at(node, bit) for node, bit in err.at)
    onehot = any(isinstance(node, Select) for node, _ in err.at)
    zero = (
        "a one-hot is 0 off its position" if onehot else "the Kronecker delta is 0 off its diagonal"
    )
    if func == "reciprocal" and all(bit == 0 for _, bit in err.at):
        example = "X[s, k] * delta[k, labels[s]]" if onehot else "X[i, j] * delta[i, j]"
        return (
            f"{show(e)} divides by zero where {where}: {zero}; to keep the"
            f" {'position' if onehot else 'diagonal'} multiply instead, e.g. {example}"
        )
    what = "divides by zero" if func == "reciprocal" else f"is {_not_finite_word(err.value)}"
    return (
        f"{show(e)} {what} where {where}: {zero} and 1 on it, and a function of it must"
        " be finite at both"
    )


def _delta_at(node: Delta | Select, bit: int) -> str:
    """``delta[i, j] is 0 (off the diagonal, i ≠ j)``, ``delta[k, labels[s]] is 1``."""
    if isinstance(node, Select):
        *at, v = (base_label(lab) for lab in node.labels)
        pick = f"{node.index}[{', '.join(at)}]" if at else str(node.index)
        text = f"delta[{v}, {pick}] is {bit}"
        return text + (f" ({v} ≠ {pick})" if bit == 0 else "")
    a, b = (base_label(lab) for lab in node.labels)
    return f"delta[{a}, {b}] is {bit}" + (f" (off the diagonal, {a} ≠ {b})" if bit == 0 else "")


def _not_finite_word(value: float) -> str:
    return "NaN" if math.isnan(value) else f"{'-' if value < 0 else ''}infinite"


def _not_finite(text: str, value: float) -> str:
    if math.isnan(value):
        what = "NaN (not a real number)"
    else:
        what = f"{'-' if value < 0 else ''}infinity (beyond a float64, about 1.8e308)"
    return (
        f"the constants in {text} give {what}; constants are folded when the spec is"
        " read and must stay finite real numbers"
    )
