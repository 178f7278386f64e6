"""Parsing expressions: sums, products, signs, powers, calls, references,
numbers and parentheses, by recursive descent (each method's grammar rule
above it), and conditions (comparisons) inside ``where``.

One of the parts the parser is made of (:mod:`tensorchain.language.parser`).
"""

from __future__ import annotations

import math
from dataclasses import replace

from .syntax import COMPARISONS, BinOp, Call, Expr, Neg, Num, Ref, show
from .tokens import KEYWORDS, describe


class ParseExpressions:
    """Expressions: one part of the parser (``parser._Parser``), which takes the
    tokens and the other parts (``tok``, ``next``, ``fail``, ...) from ``self``."""

    # argument := expression (comparison expression)?   (a condition: where's first)
    def argument(self) -> Expr:
        left = self.expression()
        if self.tok.kind == "op" and self.tok.text == "=":
            raise self.fail(
                "'=' defines a tensor; to compare, write == (or one of > < >= <= !=),"
                " e.g. where(x == 0, a, b)"
            )
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            op = self.next()
            right = self.expression()
            self.no_comparison()
            return self.made(BinOp(op.text, left, right, op.pos), op, left, right)
        return left

    def no_comparison(self) -> None:
        """Refuse a comparison where none can be: it is only a condition of where."""
        if self.tok.kind == "op" and self.tok.text in COMPARISONS:
            raise self.fail(
                f"a comparison ({self.tok.text}) is only the condition of where(cond, a, b)"
                " and compares two expressions once, e.g. where(x > 0, x, 0); for a 0/1"
                " mask write where(x > 0, 1, 0)"
            )

    # expression := term (('+' | '-') term)*
    def expression(self) -> Expr:
        expr = self.term()
        while self.tok.kind == "op" and self.tok.text in "+-":
            op = self.next()
            right = self.term()
            expr = self.made(BinOp(op.text, expr, right, op.pos), op, expr, right)
        return expr

    # term := unary (('*' | '/') unary)*
    def term(self) -> Expr:
        expr = self.unary()
        while self.tok.kind == "op" and self.tok.text in "*/":
            op = self.next()
            right = self.unary()
            expr = self.made(BinOp(op.text, expr, right, op.pos), op, expr, right)
        return expr

    # unary := '-' unary | power ;  -x^2 is -(x^2), as in Python
    def unary(self) -> Expr:
        sign = self.tok
        minus = self.accept("-")
        if minus is not None or self.accept("+") is not None:
            self.enter(sign)
            operand = self.unary()
            self.nesting -= 1
            return self.made(Neg(operand, sign.pos), sign, operand) if minus else operand
        return self.power()

    # power := atom ('^' unary)?   (right-associative)
    def power(self) -> Expr:
        base = self.atom()
        op = self.accept("^")
        if op is not None:
            self.enter(op)
            exponent = self.unary()
            self.nesting -= 1
            return self.made(BinOp("^", base, exponent, op.pos), op, base, exponent)
        return base

    def not_indexed(self, expr: Expr, what: str, parenthesised: bool = False) -> None:
        """Refuse ``f(x)[i]``, ``(a + b)[i]`` and ``2[i]``: only tensors have indices."""
        if self.tok.text != "[":
            return
        bracket = self.tok
        names = ", ".join(i.name for i in self.index_list("an index name"))
        written = f"({show(expr)})" if parenthesised else show(expr)
        advice = (
            "write the number alone (it is the same for every index)"
            if isinstance(expr, Num)
            else f"define it on its own line first (t = {show(expr)}), then use t[{names}],"
            " or index the tensors inside it"
        )
        raise self.fail(
            f"{what} cannot be indexed, as in {written}[{names}]; only tensors take"
            f" indices: {advice}",
            bracket,
        )

    def atom(self) -> Expr:
        tok = self.tok
        if tok.kind == "number":
            self.next()
            value = float(tok.text)
            if not math.isfinite(value):
                raise self.fail(f"the number {tok.text[:30]} is too large for a float64", tok)
            number = Num(value, tok.pos)
            self.not_indexed(number, "a number")
            return number
        if tok.kind == "name":
            self.next()
            if tok.text in KEYWORDS:
                raise self.fail(
                    f"{tok.text!r} is a keyword and cannot be used in an expression",
                    tok,
                )
            opener = self.accept("(")
            if opener is not None:
                self.enter(opener)
                if tok.text == "size" and self.tok.text == "(":
                    raise self.fail(
                        "size takes one declared dim; for a product dim write the product"
                        " of its members' sizes, size(H) * size(W) for (H W)"
                    )
                args = [self.argument()]
                if tok.text == "size" and self.tok.kind == "name":
                    raise self.fail(
                        f"size takes one declared dim, found a second name {self.tok.text!r};"
                        " for a product dim write the product of its members' sizes,"
                        f" size(H) * size({self.tok.text})"
                    )
                while self.accept(","):
                    args.append(self.argument())
                self.expect(")", f"to close the call of {tok.text!r}", opener)
                self.nesting -= 1
                call = Call(tok.text, tuple(args), tok.pos)
                self.not_indexed(call, "the result of a call")
                return self.made(call, tok, *args)
            if self.tok.text == "[":
                self.tensor = tok.text  # for messages about its positions
                positions = self.index_list(_POSITION, picks=True)
                return Ref(tok.text, positions, tok.pos)
            return Ref(tok.text, None, tok.pos)
        opener = self.accept("(")
        if opener is not None:
            self.enter(opener)
            expr = self.expression()
            self.no_comparison()
            self.expect(")", "to close the parenthesis", opener)
            self.nesting -= 1
            self.not_indexed(expr, "a parenthesised expression", parenthesised=True)
            if isinstance(expr, BinOp) and expr.op in "+-":  # (a + b) is one term, as 1 * (a + b)
                marked = replace(expr, paren=True)
                self.depth[id(marked)] = self.depth.get(id(expr), 1)
                return marked
            return expr
        raise self.fail(
            f"expected a number, a tensor, a function call or '(', found {describe(tok)}"
        )


_POSITION = (
    "an index name, an index tensor's entries (ids[s]), a position (0) or an offset index (j + 1)"
)
