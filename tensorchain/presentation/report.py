"""The derivation report that ``tensorchain derive`` prints."""

from __future__ import annotations

import itertools
import math
import textwrap
from collections.abc import Mapping

import numpy as np

from ..arrays.trace import tracing
from ..calculus.labeled import LabeledTensor
from ..calculus.printing import format_terms
from ..contraction.einsum import Contraction
from ..errors import MemoryLimitError
from ..language.network_like import Computing
from ..reference.reshape import check_reshape_memory, reshape_cost, reshape_method
from ..runtime.compiled import cached_program, dtype_of
from ..runtime.leaves import placeholders
from ..runtime.values import checked_values
from .derivation import Derivation
from .notation import format_array, local_shape, superscript

RULE = "─" * 78
LIMIT_PATHS = 1000  # paths counted for the report (the chain rule never enumerates them)


def _axes(t) -> str:
    return f"[{', '.join(t.indices)}]"


def derivation(
    net: Computing, of: str, wrt: str, values: Mapping[str, np.ndarray]
) -> tuple[str, float]:
    """The report for ``d of / d wrt`` and the largest difference from the reshape method."""
    # The memory forecast of the same derivative, compiled (nothing is run),
    # before the uncompiled derivation below allocates anything.
    env = checked_values(net, values, check_finite=False)
    kind = "grad" if not net.tensors[of].dims else "jacobian"
    cached_program(net, kind, of, (wrt,), net.sizes(env), dtype_of(env)).check_memory()
    check_reshape_memory(net, of, wrt, net.sizes(env))  # the reference, at the end
    forward = net.forward(values)
    sizes = forward.sizes
    result = net.derivatives(of, [wrt], forward)
    jac = result.jacobians[wrt]
    dims_of, dims_w = net.tensors[of].dims, net.tensors[wrt].dims
    scalar = not dims_of
    title = f"∂{of}/∂{wrt}" if scalar else f"d{of}/d{wrt}"
    shape = (
        "×".join(str(sizes[d]) for d in dims_w) if scalar else local_shape(dims_of, dims_w, sizes)
    ) or "() (a scalar)"
    lines = [
        f"{title}   shape {shape}  ({'gradient' if scalar else 'Jacobian'})",
        RULE,
        "local derivatives (δ: a Kronecker delta, kept symbolic and never stored):",
    ]
    width = max((len(f"d{t}/d{s}") for t, s in result.locals), default=0)
    for (t, s), local in result.locals.items():
        shape = local_shape(net.tensors[t].dims, net.tensors[s].dims, sizes)
        kind = "dense" if not local.deltas else "structured"
        name, pad = f"  {f'd{t}/d{s}':<{width}}  ", " " * (width + 6)
        row = f"{name}{_axes(local):<14} {shape:<10} {kind}"
        if len(row) <= 80:
            lines.append(row)
        else:  # many axes: the shape on a line of its own
            lines += [f"{name}{_axes(local)}", f"{pad}{shape} {kind}"]
        lines += textwrap.wrap(
            f"{pad}= {format_terms(local)}",
            78,
            subsequent_indent=pad + "  ",
            break_long_words=False,
            break_on_hyphens=False,
        )
    d = Derivation(net, of, wrt, result, sizes)
    paths = d.paths(limit=LIMIT_PATHS + 1)
    lines.append("")
    if len(paths) == 1 and len(paths[0]) > 1:
        chain = " · ".join(f"d{a}/d{b}" for a, b in itertools.pairwise(paths[0]))
        lines += textwrap.wrap(
            f"chain:   {title} = {chain}", 78, subsequent_indent="    ", break_long_words=False
        )
    elif len(paths) > 1:
        count = f"over {LIMIT_PATHS}" if len(paths) > LIMIT_PATHS else str(len(paths))
        lines.append(f"chain:   {count} paths from {wrt} to {of}, added where they merge")
    lines += textwrap.wrap(
        f"after δ elimination:  {d}", 78, subsequent_indent="    ", break_long_words=False
    )
    lines += textwrap.wrap(
        f"matrix form (the article's): {d.matrix_form()}",
        78,
        subsequent_indent="    ",
        break_long_words=False,
    )
    lines.append("")
    lines.extend(_contractions(result.contractions))
    cost = reshape_cost(net, of, wrt, sizes)
    products = ", ".join(cost.products) or "none"
    lines += textwrap.wrap(
        f"reshape method: {_count(len(cost.products), 'matrix product')}: {products}",
        78,
        subsequent_indent="  ",
    )
    lines.append(f"  FLOPs {cost.flops:,}   largest matrix {_count(cost.largest, 'entry')}")
    reference = reshape_method(net, of, wrt, values)
    diff = float(np.max(np.abs(jac.array - reference), initial=0.0))
    lines += ["", f"{title} =", format_array(jac.array), ""]
    lines.append(f"max |tensorchain − reshape method| = {diff:.1e}")
    return "\n".join(lines), diff


def _contractions(log: list[Contraction]) -> list[str]:
    if not log:
        return ["contraction: none needed (the result is one factor)"]
    lines = []
    for c in log:
        origins = ", ".join(c.names)
        lines += textwrap.wrap(
            f"einsum:  {c.equation}   ({origins})",
            78,
            subsequent_indent="    ",
            break_long_words=False,
        )
        path = f"  opt_einsum path ({c.optimizer}): {'  then  '.join(c.steps())}"
        lines += textwrap.wrap(path, 78, subsequent_indent="    ", break_long_words=False)
    flops = sum(c.flops for c in log)
    largest = max(c.largest_intermediate for c in log)
    total = "total " if len(log) > 1 else ""
    lines.append(f"  {total}FLOPs {flops:,}   largest intermediate {_count(largest, 'entry')}")
    return lines


def _count(n: int, noun: str) -> str:
    """``1 entry``, ``12 entries``, ``1 matrix product``, ``0 matrix products``."""
    if n == 1:
        return f"1 {noun}"
    plural = noun[:-1] + "ies" if noun.endswith("y") else noun + "s"
    return f"{n:,} {plural}"


def _lhs(d: Derivation, names: tuple[str, ...], net: Computing) -> str:
    """``∂²C/∂W[i, j]∂W[k, l]``: a derivative's left side with the derivation's letters."""
    letters = [d._names[i] for i in d.chain.indices]
    parts, at = [], 0
    for name in names:
        k = len(net.tensors[name].dims)
        parts.append(f"{name}[{', '.join(letters[at : at + k])}]" if k else name)
        at += k
    order = len(names) - 1
    return f"∂{superscript(order)}{parts[0]}/" + "".join(f"∂{p}" for p in parts[1:])


def derivative_report(
    net: Computing, of: str, wrt: str, order: int, values: Mapping[str, np.ndarray]
) -> tuple[str, float]:
    """The structure of ``∂ᵏ of / ∂wrt^k`` (its axes, the deltas that survive,
    stored against dense entries) and its difference from the reference
    (:func:`tensorchain.reference_derivative`) where that fits in memory."""
    from ..reference.jets import reference_derivative

    D = net.derivative(of, (wrt,) * order, values)
    title = f"∂{superscript(order)}{of}/∂{wrt}{superscript(order)}"
    shape = " × ".join(map(str, D.shape)) if D.shape else "() (a scalar)"
    lines = [f"{title}   shape {shape}", RULE]
    lines.append(f"axes [{', '.join(D.indices)}]")
    common = ", ".join(f"δ({a}, {b})" for a, b in D.deltas) or "none"
    lines.append(f"deltas every term keeps (symbolic, never stored): {common}")
    lines.append(f"{len(D.terms)} term{'s' * (len(D.terms) != 1)}; {sizes_text(D)}")
    text = format_terms(D)
    shown = textwrap.wrap(
        f"= {text}", 78, initial_indent="  ", subsequent_indent="    ", break_long_words=False
    )
    lines += shown[:4] + (["    …"] if len(shown) > 4 else [])
    for line in _legend(net, of, wrt, order, D):
        lines += textwrap.wrap(line, 78, subsequent_indent="      ", break_long_words=False)
    if math.prod(D.shape) <= 64:
        lines += [f"{title} =", format_array(D.array)]
    return _against_reference(
        lines, D, lambda: reference_derivative(net, of, (wrt,) * order, values)
    )


def _legend(net: Computing, of: str, wrt: str, order: int, D: LabeledTensor) -> list[str]:
    """What the factors of a derivative's structure are that are not tensors of
    the network: arrays the chain rule contracted (single letters), and
    tensors of the derivative's graph (with their statements)."""
    graph, _ = net.derivative_graph(of, (wrt,) * (order - 1))
    names = dict.fromkeys(f.name for t in D.terms for f in t.factors)
    blocks = [n for n in names if len(n) <= 3 and n not in net.tensors and n[:1].isupper()]
    lines = []
    if blocks:
        what = "arrays" if len(blocks) > 1 else "an array"
        lines.append(
            f"  {', '.join(blocks)}: {what} the chain rule contracted (parts of the"
            " derivative, not derivatives themselves)"
        )
    internal = {s.target: s for s in graph.statements if s.target not in net.tensors}
    shown: list[str] = []
    todo = [n for n in names if n in internal]
    while todo and len(shown) < 6:
        name = todo.pop(0)
        if name in shown:
            continue
        shown.append(name)
        text = internal[name].text
        lines.append(f"  where {text}")
        right = text.split("=", 1)[-1]
        todo += [n for n in internal if n not in shown and n in right and n != name]
    return lines


def _against_reference(lines: list[str], result: LabeledTensor, reference) -> tuple[str, float]:
    """The report's last line: the largest difference of ``result`` from
    ``reference()`` (the dense reference, not run where it does not fit)."""
    try:
        dense = reference()
    except MemoryLimitError:
        lines += ["", "reference: not run (its dense arrays exceed the memory limit)"]
        return "\n".join(lines), 0.0
    diff = float(np.max(np.abs(result.array - dense), initial=0.0))
    if not np.isfinite(diff):
        diff = float("inf")
    lines += ["", f"max |tensorchain − reference| = {diff:.1e}"]
    return "\n".join(lines), diff


def sizes_text(t: LabeledTensor) -> str:
    """How many numbers a structured result stores against its dense size, said
    plainly where the structure saves nothing."""
    dense = math.prod(t.shape)
    stored = t.stored_entries()
    if not t.terms:
        return f"all zero: no numbers stored for {dense:,} dense entries"
    if stored == 0:
        return f"deltas and a coefficient only: no numbers stored for {dense:,} dense entries"
    if stored < dense:
        ratio = dense / stored
        times = f"{ratio:,.0f}" if ratio >= 10 else f"{ratio:.1f}"
        return f"stores {stored:,} numbers for {dense:,} dense entries ({times}× fewer)"
    if stored == dense:
        numbers = "1 number" if stored == 1 else f"{stored:,} numbers"
        return f"stores {numbers}, as many as its dense entries: nothing to save here"
    return (
        f"stores {stored:,} numbers, more than its {dense:,} dense entries: at these sizes"
        " the dense array (.array) is the smaller form"
    )


def hessian_report(
    net: Computing, of: str, wrt: str, wrt2: str, values: Mapping[str, np.ndarray]
) -> tuple[str, float]:
    """The report for d² of / d wrt d wrt2 and its difference from the reference."""
    from ..reference.reshape import reshape_hessian

    sizes = net.sizes(values)
    H = net.hessian(of, wrt, values, wrt2=wrt2)
    title = f"∂²{of}/∂{wrt}∂{wrt2}" if wrt2 != wrt else f"∂²{of}/∂{wrt}²"
    lines = [f"{title}   shape {' × '.join(map(str, H.shape))}", RULE]
    graph, g = net.derivative_graph(of, (wrt,))
    if g is not None:
        lines.append(f"the derivative of {of} by {wrt} as a network (its Jacobian by {wrt2} is")
        lines.append("the Hessian): the network, one operation per statement, then")
        for stmt in graph.statements:
            if stmt.target.startswith("∂"):
                lines += textwrap.wrap(
                    stmt.text, 78, initial_indent="  ", subsequent_indent="      "
                )
        lines.append("")
    deltas = ", ".join(f"δ({a}, {b})" for a, b in H.deltas) or "none"
    lines.append(f"structure: axes [{', '.join(H.indices)}]; symbolic deltas: {deltas}")
    lines.append(f"  {sizes_text(H)}")
    if g is not None:
        with tracing() as tape:  # the formula's structure only: nothing is computed
            forward = graph.run_forward(placeholders(net, tape, sizes), sizes, structured=True)
            result = graph.derivatives(g, [wrt2], forward)
        d = Derivation(graph, g, wrt2, result, sizes)
        formula = f"{_lhs(d, (of, wrt, wrt2), net)} = {str(d).split(' = ', 1)[1]}"
        lines += textwrap.wrap(
            f"formula: {formula}", 78, subsequent_indent="    ", break_long_words=False
        )
    if math.prod(H.shape) <= 256:
        lines += ["", f"{title} =", format_array(H.array)]
    return _against_reference(lines, H, lambda: reshape_hessian(net, of, wrt, values, wrt2=wrt2))
