"""A network's graph built from its syntax tree: each ``dim``, declaration and
statement in order, checked as it comes (a name used twice, an unknown dim,
too many axes), each statement lowered and its labels bound to dims.

:class:`tensorchain.Network` calls :func:`build` on itself: a network is a
:class:`~tensorchain.calculus.graph.Graph` that also keeps its ``program``,
``dims``, ``derived`` dims and the labels' bindings."""

from __future__ import annotations

from typing import Any

from ..arrays import limits
from ..errors import ShapeError
from ..language.domains import bind_domain
from ..language.gather import declared_index
from ..language.lower import lower
from ..language.operations import DELTA
from ..language.reindex import Derived, product_dim, sum_dim
from ..language.shapes import Binding, bind_labels
from ..language.syntax import Assign, DimDecl, Group, Pos, Program, ShiftDecl, TensorDecl
from ..language.user_function_calls import check_calls
from .graph import Graph, TensorInfo


def build(net: Any, program: Program) -> None:
    """Make ``net`` (a :class:`Graph`, ``tensorchain.Network``) the graph of
    ``program``: with its ``program``, ``dims`` (each declared dim, with its
    spec size or None), ``derived`` dims (of merged and concatenated axes),
    tensors, statements, and the bindings of each statement's labels."""
    Graph.__init__(net, {}, [], {})
    net.program = program
    net.dims: dict[str, int | None] = {}
    net.derived: dict[str, Derived] = {}
    net._bindings: dict[str, dict[str, Binding]] = {}
    check_calls(program)  # names of registered functions it calls, refused elsewhere
    dim_pos: dict[str, Pos] = {}
    for st in program.statements:
        if isinstance(st, DimDecl):
            if st.name in net.dims:
                raise program.error(
                    f"dim {st.name!r} is already declared on line {dim_pos[st.name].line}",
                    st.pos,
                )
            net.dims[st.name], dim_pos[st.name] = st.size, st.pos
        elif isinstance(st, TensorDecl | ShiftDecl):
            _declare(net, st)
        else:
            _define(net, st)


def _check_new(net: Any, name: str, pos: Pos) -> None:
    if name == DELTA:
        raise net.program.error(
            "'delta' is the built-in Kronecker delta (delta[i, j]); give this tensor another name",
            pos,
        )
    if name in net.tensors:
        old = net.tensors[name]
        raise net.program.error(
            f"{name!r} is already {'defined' if old.kind == 'defined' else 'declared'}"
            f" on line {old.pos.line}; every tensor is defined once, so give this"
            " one a new name",
            pos,
        )


def _check_axes(net: Any, name: str, count: int, pos: Pos) -> None:
    if count > limits.MAX_AXES:
        raise net.program.error(
            f"{name} has {count} axes, more than {limits.MAX_AXES} (numpy's einsum names"
            " each axis of an array with one of 52 letters); merge some of its axes",
            pos,
            ShapeError,
        )


def _declare(net: Any, st: TensorDecl | ShiftDecl) -> None:
    _check_new(net, st.name, st.pos)
    _check_axes(net, st.name, len(st.axes), st.pos)
    for axis in (m for a in st.axes for m in (a.members if isinstance(a, Group) else (a,))):
        if axis.name not in net.dims:
            raise net.program.error(
                f"unknown dim {axis.name!r} in the declaration of {st.name}; declare"
                f" it first with 'dim {axis.name} = 4' (or 'dim {axis.name}' to take"
                " its size from the values)",
                axis.pos,
            )
    dims = tuple(
        (sum_dim if a.added else product_dim)([m.name for m in a.members], net.derived)
        if isinstance(a, Group)
        else a.name
        for a in st.axes
    )
    if isinstance(st, ShiftDecl):
        info = TensorInfo(st.name, "shift", dims, st.pos, (st.stride, st.padding))
    else:
        domain = bind_domain(net.program, st, net.dims)
        index = declared_index(net.program, st, net.dims)
        info = TensorInfo(st.name, st.kind, dims, st.pos, domain=domain, index=index)
    net.tensors[st.name] = info


def _define(net: Any, st: Assign) -> None:
    _check_new(net, st.target, st.pos)
    stmt = lower(net.program, st, net.axes, net.indexes, net.dims)
    _check_axes(net, st.target, len(stmt.labels), st.pos)
    defaults = {d: s for d, s in net.dims.items() if s is not None}
    bound = bind_labels(net.program, stmt, net.axes, defaults, net.indexes, net.dims, net.derived)
    dims = tuple(bound[lab].dim for lab in stmt.labels)
    net.tensors[st.target] = TensorInfo(st.target, "defined", dims, st.pos)
    net._bindings[st.target] = bound
    net.add_statement(stmt, {lab: b.dim for lab, b in bound.items()})
