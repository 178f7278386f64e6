"""The graphs of a network's derivatives (:mod:`tensorchain.calculus.differentiate`),
cached per network for any sizes: the derivative of any order, and the graph
of a Hessian-vector product."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from ..calculus.differentiate import derivative_graph as differentiate
from ..calculus.differentiate import hvp_graph as hvp_statement
from ..calculus.graph import Graph
from ..language.gather import refuse_positions

if TYPE_CHECKING:
    from ..language.network_like import Differentiable


def derivative_graph(net: Differentiable, of: str, wrt: Sequence[str]) -> tuple[Any, str | None]:
    """See :meth:`tensorchain.Network.derivative_graph` (cached in ``net._graphs``)."""
    if isinstance(wrt, str):
        wrt = (wrt,)
    net.info(of)
    for w in wrt:
        net.info(w)
    refuse_positions(net, wrt)
    if not wrt:
        return net, of

    def build() -> tuple[Graph, str | None]:
        graph, out = net.derivative_graph(of, wrt[:-1])
        return (graph, None) if out is None else differentiate(graph, out, wrt[-1])

    return net._graphs.get((of, tuple(wrt)), build)


def hvp_graph(net: Differentiable, of: str, wrt: str) -> tuple[Any, str | None]:
    """``of``'s derivative graph by ``wrt`` with one more statement, the
    scalar ``Σ g · v`` for an input ``v`` shaped like ``wrt``; its name
    (None where ``of`` does not depend on ``wrt``). Cached in ``net._graphs``."""

    def build() -> tuple[Graph, str | None]:
        graph, g = net.derivative_graph(of, (wrt,))
        return (graph, None) if g is None else hvp_statement(graph, g, wrt)

    return net._graphs.get((of, (wrt,), "hvp"), build)
