"""First calls grow linearly with the network (issue 20): parsing, and the
first derivative, whose chain rule is traced once. Each quadratic step found
by profiling had a kind: copying something that grows with the network once
per statement (the tensors' dims, the sizes of every label made so far) or
redoing the work of every earlier use of a tied tensor at each new use. The
counting tests pin each kind deterministically; the timing test catches a
kind not yet seen, with a bound far from both linear and quadratic growth."""

from __future__ import annotations

import time

import numpy as np
import pytest

import tensorchain as tc
from tensorchain.calculus import labeled


def tied_chain(statements: int) -> str:
    """A tanh chain whose layers all use one weight W."""
    lines = ["dim n = 4", "input x[n]", "param W[n, n]"]
    prev = "x"
    for k in range(1, (statements - 1) // 2 + 1):
        lines += [f"z{k}[i] = W[i, j] * {prev}[j]", f"a{k} = tanh(z{k})"]
        prev = f"a{k}"
    return "\n".join([*lines, f"L = sum({prev})"])


def fan_out(statements: int) -> str:
    """A tanh chain to which every layer adds the input x again."""
    lines = ["dim n = 4", "input x[n]"]
    prev = "x"
    for k in range(1, (statements - 1) // 2 + 1):
        lines += [
            f"param W{k}[n, n]",
            f"z{k}[i] = W{k}[i, j] * {prev}[j] + x[i]",
            f"a{k} = tanh(z{k})",
        ]
        prev = f"a{k}"
    return "\n".join([*lines, f"L = sum({prev})"])


def first_gradient(spec, statements: int, wrt: str) -> None:
    net = tc.parse(spec(statements))
    values = {k: 0.3 * v for k, v in net.random_values(seed=0).items()}
    g = net.grad("L", wrt, values)[wrt]
    assert np.isfinite(g).all()


def counted(monkeypatch, spec, statements: int, wrt: str) -> dict[str, int]:
    """How often the chain rule puts a term in canonical form, and how many
    label sizes the labeled tensors it builds carry, for one first gradient."""
    counts = {"canonical": 0, "sizes": 0}
    canonical, init = labeled.canonical, labeled.LabeledTensor.__init__

    def counting_canonical(*args, **kwargs):
        counts["canonical"] += 1
        return canonical(*args, **kwargs)

    def counting_init(self, indices, sizes, *args, **kwargs):
        counts["sizes"] += len(sizes)
        init(self, indices, sizes, *args, **kwargs)

    with monkeypatch.context() as m:
        m.setattr(labeled, "canonical", counting_canonical)
        m.setattr(labeled.LabeledTensor, "__init__", counting_init)
        first_gradient(spec, statements, wrt)
    return counts


@pytest.mark.parametrize(("spec", "wrt"), [(tied_chain, "W"), (fan_out, "x")])
def test_the_chain_rule_does_linear_work_in_the_uses_of_a_tensor(monkeypatch, spec, wrt):
    """Twice the layers, twice the work: each use of the tied W (or of x)
    adds its own terms once (they were put in canonical form again at every
    later use), and each labeled tensor carries the sizes of its own labels
    only (it carried every label made so far down the chain)."""
    small = counted(monkeypatch, spec, 101, wrt)
    large = counted(monkeypatch, spec, 201, wrt)
    for what in ("canonical", "sizes"):
        assert large[what] <= 2.2 * small[what], (what, small[what], large[what])


def test_reading_a_networks_axes_copies_nothing():
    net = tc.parse(tied_chain(41))
    axes = net.axes
    assert axes["W"] == ("n", "n") and "z3" in axes and len(axes) == len(net.tensors)
    net.tensors["extra"] = net.tensors["W"]  # a view: what is added is seen
    assert axes["extra"] == ("n", "n")


def _seconds(fn, repeat: int) -> float:
    best = float("inf")
    for _ in range(repeat):
        start = time.process_time()
        fn()
        best = min(best, time.process_time() - start)
    return best


@pytest.mark.parametrize(("spec", "wrt"), [(tied_chain, "W"), (fan_out, "x")])
def test_parse_and_first_gradient_grow_linearly(spec, wrt):
    """Eight times the statements: linear growth takes about 8 times as long,
    quadratic about 64 times (measured before the fixes: 35 times at these
    sizes, where fixed costs still weigh). CPU time, the best of a few runs."""
    small = _seconds(lambda: first_gradient(spec, 101, wrt), 5)
    large = _seconds(lambda: first_gradient(spec, 801, wrt), 2)
    assert large / small < 16, (small, large)


def test_parsing_never_lists_the_index_tensors(monkeypatch):
    """Asking whether a name holds integer positions is one lookup: the
    lowering of each statement listed every tensor for it (``indexes or {}``),
    which made parsing 8,000 statements take 2.7 s instead of 0.5 s."""
    from tensorchain.calculus import graph

    listed = []
    for method in ("__iter__", "__len__"):
        original = getattr(graph._Indexes, method)
        monkeypatch.setattr(
            graph._Indexes,
            method,
            lambda self, original=original, method=method: listed.append(method) or original(self),
        )
    net = tc.parse(tied_chain(201))
    assert listed == []
    gather = tc.parse("dim B = 2\ndim V = 3\ninput ids[B] index V\nparam T[V]\ne[s] = T[ids[s]]")
    assert "ids" in gather.indexes and "T" not in gather.indexes and "nothing" not in gather.indexes
    assert dict(gather.indexes) == {"ids": "V"} and len(net.indexes) == 0
