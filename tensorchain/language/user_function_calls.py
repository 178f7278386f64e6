"""Where a spec calls the functions users registered: the check that their
names clash with nothing the spec names (:func:`check_calls`), and the
registrations a network or a derivative's graph calls (:func:`calls_of`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from .operations import Map, walk
from .syntax import Assign, BinOp, Call, DimDecl, Group, Index, Neg, Offset, Pick, Pos, Ref
from .syntax import Program as SpecProgram
from .user_functions import USER_FUNCTIONS, FunctionName, UserFunction


def check_calls(program: SpecProgram) -> None:
    """Raise :class:`SpecError` where ``program`` calls a registered function
    and also gives its name to a dim, a tensor or an index, or names a tensor
    like generated code names the function's derivatives (``d_f``, ``d2_f``)."""
    names: dict[str, tuple[str, Pos]] = {}  # name -> what it is, and where
    calls: dict[str, Pos] = {}
    for st in program.statements:
        if isinstance(st, DimDecl):
            names.setdefault(st.name, ("a dim", st.pos))
        elif isinstance(st, Assign):
            names.setdefault(st.target, ("a tensor", st.pos))
            for index in _indices(st.indices or ()):
                names.setdefault(index.name, ("an index", index.pos))
            for e in _walk(st.expr):
                if isinstance(e, Call) and e.func in USER_FUNCTIONS:
                    calls.setdefault(e.func, e.pos)
                elif isinstance(e, Ref):
                    names.setdefault(e.name, ("an index", e.pos))
                    for index in _indices(e.indices or ()):
                        names.setdefault(index.name, ("an index", index.pos))
        else:
            names.setdefault(st.name, ("a tensor", st.pos))
    for func, pos in calls.items():
        if func in names:
            what, where = names[func]
            what = "a tensor" if what == "an index" and func in _tensors(program) else what
            raise program.error(
                f"{func!r} is both a registered function this spec calls and {what} of it"
                f" (line {where.line}); give them different names",
                pos,
            )
        for code in USER_FUNCTIONS[func].codes[1:]:
            if code in _tensors(program):
                raise program.error(
                    f"the tensor {code!r} has the name generated code gives a derivative of"
                    f" the registered function {func}, which this spec calls (line"
                    f" {pos.line}); rename the tensor",
                    names[code][1],
                )


def calls_of(graph: Any) -> dict[str, UserFunction]:
    """The registered functions a network (or a derivative's graph) calls, by
    name, each the registration its spec was parsed with."""
    found: dict[str, UserFunction] = {}
    for stmt in graph.statements:
        for node in walk(stmt.root):
            if isinstance(node, Map) and isinstance(node.func, FunctionName):
                found[node.func.user.name] = node.func.user
    return found


def _tensors(program: SpecProgram) -> set[str]:
    """The names of the tensors ``program`` declares or defines."""
    return {
        st.target if isinstance(st, Assign) else st.name
        for st in program.statements
        if not isinstance(st, DimDecl)
    }


def _indices(items) -> Iterator[Index]:
    """The indices of an index list: named ones, members of groups, those of picks."""
    for item in items:
        if isinstance(item, Index):
            yield item
        elif isinstance(item, Group):
            yield from item.members
        elif isinstance(item, Offset):
            yield item.index
        elif isinstance(item, Pick) and isinstance(item.by, Ref):
            yield from _indices(item.by.indices or ())


def _walk(e) -> Iterator:
    """Every expression inside ``e`` (``e`` too), picks' references included."""
    stack = [e]
    while stack:
        e = stack.pop()
        yield e
        if isinstance(e, Call):
            stack.extend(e.args)
        elif isinstance(e, Neg):
            stack.append(e.operand)
        elif isinstance(e, BinOp):
            stack.extend((e.left, e.right))
        elif isinstance(e, Ref):
            stack.extend(p.by for p in e.indices or () if isinstance(p, Pick))
