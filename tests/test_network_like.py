"""The protocols lower layers type a network with (language/network_like.py)
describe what a Network has: each member exists, and each method takes the
arguments the protocol names, so a call written against the protocol works
on the facade."""

import inspect

import pytest

import tensorchain as tc
from tensorchain.language.network_like import Computing, Differentiable, NetworkLike


def _members(protocol) -> set[str]:
    names = set()
    for klass in protocol.__mro__:
        if klass in (object,) or klass.__name__ in ("Protocol", "Generic"):
            continue
        names |= set(getattr(klass, "__annotations__", {}))
        names |= {n for n, v in vars(klass).items() if callable(v) or isinstance(v, property)}
    return {n for n in names if not (n.startswith("__") and n.endswith("__"))}


@pytest.mark.parametrize("protocol", [NetworkLike, Differentiable, Computing])
def test_a_network_has_every_member_of_each_protocol(protocol):
    net = tc.parse(tc.ARTICLE)
    assert isinstance(net, protocol)
    missing = sorted(n for n in _members(protocol) if not hasattr(net, n))
    assert not missing


@pytest.mark.parametrize("protocol", [NetworkLike, Differentiable, Computing])
def test_each_method_takes_the_arguments_the_protocol_names(protocol):
    net = tc.parse(tc.ARTICLE)
    for name in _members(protocol):
        declared = inspect.getattr_static(protocol, name, None)
        if not callable(declared):
            continue
        ours = inspect.signature(getattr(net, name)).parameters
        for p in list(inspect.signature(declared).parameters.values())[1:]:
            if p.kind is p.VAR_KEYWORD:  # **options: the network's keywords
                continue
            assert p.name in ours or any(q.kind is q.VAR_KEYWORD for q in ours.values()), (
                name,
                p.name,
            )


def test_a_graph_without_a_program_is_no_network_like():
    from tensorchain.calculus.graph import Graph

    assert not isinstance(Graph({}, [], {}), NetworkLike)
