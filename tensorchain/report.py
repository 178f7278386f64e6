"""The derivation report that ``tensorchain derive`` prints."""

from __future__ import annotations

import itertools
import textwrap
from collections.abc import Mapping

import numpy as np

from .derivation import Derivation
from .network import Network
from .plan import Contraction
from .render import format_array, format_terms, local_shape
from .reshape import reshape_cost, reshape_method

RULE = "─" * 78
LIMIT_PATHS = 1000  # paths counted for the report (the chain rule never enumerates them)


def _axes(t) -> str:
    return f"[{', '.join(t.indices)}]"


def derivation(
    net: Network, of: str, wrt: str, values: Mapping[str, np.ndarray]
) -> tuple[str, float]:
    """The report for ``d of / d wrt`` and the largest difference from the reshape method."""
    forward = net.forward(values)
    sizes = forward.sizes
    result = net.derivatives(of, [wrt], forward)
    jac = result.jacobians[wrt]
    dims_of, dims_w = net.tensors[of].dims, net.tensors[wrt].dims
    scalar = not dims_of
    title = f"∂{of}/∂{wrt}" if scalar else f"d{of}/d{wrt}"
    shape = (
        "×".join(str(sizes[d]) for d in dims_w) if scalar else local_shape(dims_of, dims_w, sizes)
    )
    lines = [
        f"{title}   shape {shape}  ({'gradient' if scalar else 'Jacobian'})",
        RULE,
        "local derivatives (δ: a Kronecker delta, kept symbolic and never stored):",
    ]
    width = max((len(f"d{t}/d{s}") for t, s in result.locals), default=0)
    for (t, s), local in result.locals.items():
        shape = local_shape(net.tensors[t].dims, net.tensors[s].dims, sizes)
        kind = "dense" if not local.deltas else "structured"
        lines.append(f"  {f'd{t}/d{s}':<{width}}  {_axes(local):<14} {shape:<10} {kind}")
        pad = " " * (width + 6)
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
        lines.append(f"chain:   {title} = {chain}")
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
        f"reshape method: {len(cost.products)} matrix products: {products}",
        78,
        subsequent_indent="  ",
    )
    lines.append(f"  FLOPs {cost.flops:,}   largest matrix {cost.largest:,} entries")
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
    lines.append(f"  {total}FLOPs {flops:,}   largest intermediate {largest:,} entries")
    return lines


def hessian_report(
    net: Network, of: str, wrt: str, wrt2: str, values: Mapping[str, np.ndarray]
) -> tuple[str, float]:
    """The report for d² of / d wrt d wrt2 and its difference from the reshape method."""
    from .reshape import reshape_hessian

    sizes = net.sizes(values)
    gradnet, adjoints = net.gradient_network(of, sizes)
    H = net.hessian(of, wrt, values, wrt2=wrt2)
    title = f"∂²{of}/∂{wrt}∂{wrt2}" if wrt2 != wrt else f"∂²{of}/∂{wrt}²"
    lines = [f"{title}   shape {' × '.join(map(str, H.shape))}", RULE]
    lines.append(f"the gradient of {of} as a network (its Jacobian by {wrt2} is the Hessian):")
    spec_lines = str(gradnet).splitlines()
    lines += [f"  {line}" for line in spec_lines if line.startswith("__g_")]
    lines.append("")
    dense = int(np.prod(H.shape))
    stored = H.stored_entries()
    deltas = ", ".join(f"δ({a}, {b})" for a, b in H.deltas) or "none"
    lines.append(f"structure: axes [{', '.join(H.indices)}]; symbolic deltas: {deltas}")
    saving = f"{dense / stored:,.0f}× smaller" if stored else "all zero"
    lines.append(f"  stored {stored:,} numbers for {dense:,} dense entries ({saving})")
    if wrt in adjoints:
        d = Derivation(
            gradnet, adjoints[wrt], wrt2, gradnet.derivatives(adjoints[wrt], [wrt2], values), sizes
        )
        formula = str(d).replace(f"∂{adjoints[wrt]}", f"∂²{of}/∂{wrt}", 1)
        lines += textwrap.wrap(
            f"formula: {formula}", 78, subsequent_indent="    ", break_long_words=False
        )
    reference = reshape_hessian(net, of, wrt, values, wrt2=wrt2)
    diff = float(np.max(np.abs(H.array - reference), initial=0.0))
    if dense <= 256:
        lines += ["", f"{title} =", format_array(H.array)]
    lines += ["", f"max |tensorchain − reshape method| = {diff:.1e}"]
    return "\n".join(lines), diff
