"""Chain orders: the dynamic program against brute force, every order against
the reshape method, memory limits, and ``tensorchain paths``."""

import functools
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import opt_einsum as oe
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from benchmarks.chains import tanh_chain_spec
from tensorchain.cli import main
from tensorchain.planning import chain_orders
from tensorchain.planning.chain_orders import ORDERS, chain_dp, smallest_peak
from tensorchain.strategies import jacobian_networks, networks
from tensorchain.testing import max_relative_error


def brute_force(groups, output, sizes):
    """(min FLOPs, min largest intermediate) over every bracketing, by enumeration."""
    everything = [lab for g in groups for lab in g]

    def outside(i, j):
        inside = [lab for g in groups[i : j + 1] for lab in g]
        return frozenset(
            lab for lab in inside if everything.count(lab) > inside.count(lab) or lab in output
        )

    @functools.cache
    def trees(i, j):
        if i == j:
            return [(0, math.prod(sizes[lab] for lab in outside(i, i)))]
        out = []
        keep = outside(i, j)
        for k in range(i, j):
            for cl, ml in trees(i, k):
                for cr, mr in trees(k + 1, j):
                    union = outside(i, k) | outside(k + 1, j)
                    flops = oe.helpers.flop_count(union, bool(union - keep), 2, sizes)
                    out.append((cl + cr + flops, max(ml, mr, math.prod(sizes[x] for x in keep))))
        return out

    found = trees(0, len(groups) - 1)
    return min(c for c, _ in found), min(m for _, m in found)


@st.composite
def chains(draw, max_links=7):
    """A chain of matrices a_k × a_{k+1}, some links a vector on one index
    (a delta-reduced elementwise derivative), the ends as outputs."""
    n = draw(st.integers(2, max_links))
    sizes = {f"a{k}": draw(st.integers(1, 60)) for k in range(n + 1)}
    groups = []
    for k in range(n):
        if k and draw(st.booleans()):
            groups.append(frozenset({f"a{k}"}))  # a diagonal: stays on a_k
        groups.append(frozenset({f"a{k}", f"a{k + 1}"}))
    return groups, frozenset({"a0", f"a{n}"}), sizes


@given(chains())
def test_the_optimal_order_is_the_brute_force_minimum(chain):
    groups, output, sizes = chain
    cost, _ = chain_dp(groups, [0] * len(groups), output, sizes)
    best, smallest = brute_force(groups, output, sizes)
    assert cost == best
    assert smallest_peak(groups, output, sizes) == smallest


def tanh_chain(widths):
    return tc.parse(tanh_chain_spec(widths)), f"a{len(widths) - 1}"


@given(st.lists(st.integers(1, 40), min_size=3, max_size=8))
def test_optimal_never_costs_more_than_either_pure_mode(widths):
    net, out = tanh_chain(widths)
    flops = {o: net.plan(out, "x", order=o).flops for o in ("optimal", "forward", "reverse")}
    assert flops["optimal"] <= min(flops["forward"], flops["reverse"])


@given(networks(), st.sampled_from([*ORDERS, "greedy", "dp"]))
def test_every_order_gives_the_reshape_methods_jacobian(drawn, order):
    net = tc.parse(drawn.text)
    vals = net.random_values(seed=0)
    for w in net.params[:2]:
        J = net.plan(drawn.of, w, order=order)(vals).array
        assert max_relative_error(J, tc.reshape_method(net, drawn.of, w, vals)) < 1e-10


def _middle_out(links, limit):
    """Pairs from the middle link outwards: ((m, m+1), m-1), m+2, ..."""
    n = len(links.members)
    left, right = n // 2 - 1, n // 2
    tree, right = (right if left < 0 else (left, right)), right + 1
    left -= 1
    while left >= 0 or right < n:
        if left >= 0:
            tree, left = (tree, left), left - 1
        if right < n:
            tree, right = (tree, right), right + 1
    return tree


def test_a_new_chain_order_is_a_function_and_its_name_in_orders(monkeypatch):
    """The example of docs/architecture.md ("How to add one"): an order added
    to ORDERS is taken by net.plan and net.explore and gives the reshape
    method's Jacobian."""
    monkeypatch.setitem(chain_orders.ORDERS, "middle-out", _middle_out)
    net, out = tanh_chain([3, 5, 2, 4, 6])
    vals = net.random_values(seed=1)
    plan = net.plan(out, "x", order="middle-out")
    assert plan.order == "middle-out"
    assert max_relative_error(plan(vals).array, tc.reshape_method(net, out, "x", vals)) < 1e-10
    flops = {o: net.plan(out, "x", order=o).flops for o in ("optimal", "middle-out")}
    assert flops["optimal"] <= flops["middle-out"]
    assert "middle-out" in {p.order for p in net.explore(out, "x").plans}


def test_wide_narrow_chain_optimal_is_several_times_cheaper():
    net, out = tanh_chain([200, 5, 200, 5, 200, 5, 200])
    flops = {o: net.plan(out, "x", order=o).flops for o in ("optimal", "forward", "reverse")}
    assert min(flops["forward"], flops["reverse"]) > 3 * flops["optimal"]
    vals = net.random_values(seed=1)
    plan = net.plan(out, "x", order="optimal")
    ref = tc.reshape_method(net, out, "x", vals)
    assert max_relative_error(plan(vals).array, ref) < 1e-12


def test_a_memory_limit_is_kept_or_the_smallest_peak_is_named():
    net, out = tanh_chain([50, 2, 50, 2, 50])
    free = net.plan(out, "x", order="optimal")
    assert free.largest == 2500  # the 50 × 50 result itself
    limited = net.plan(out, "x", order="optimal", memory_limit=8 * 2500)
    assert limited.largest <= 2500
    with pytest.raises(tc.PlanError, match=r"smallest achievable largest intermediate is 2,500"):
        net.plan(out, "x", order="optimal", memory_limit=8 * 100)
    with pytest.raises(tc.PlanError, match=r"unknown order 'sideways'"):
        net.plan(out, "x", order="sideways")


def test_a_custom_path_optimizer_is_accepted():
    net, out = tanh_chain([6, 3, 6, 3])
    plan = net.plan(out, "x", order=oe.paths.BranchBound(nbranch=2))
    vals = net.random_values(seed=2)
    assert max_relative_error(plan(vals).array, tc.reshape_method(net, out, "x", vals)) < 1e-12
    assert plan.order == "BranchBound"


def test_the_plan_describes_itself():
    net = tc.parse(tc.ARTICLE)
    plan = net.plan("C", "W", n=4, m=3)
    assert plan.flops > 0 and plan.reshape_flops > plan.flops
    assert plan.steps and all("·" in s for s in plan.steps)
    assert "dC/da" in plan.tree()
    np.testing.assert_allclose(
        plan(net.random_values(n=4, m=3)).array,
        net.grad("C", "W", net.random_values(n=4, m=3))["W"],
    )


def test_paths_command_prints_the_table(capsys, tmp_path):
    spec = str(Path(__file__).parent.parent / "examples" / "mlp_batched.tc")
    png = tmp_path / "paths.png"
    args = ["paths", spec, "--wrt", "W1", "--sweep", "B=1,16", "--plot", str(png), "--tree"]
    assert main(args) == 0
    out = capsys.readouterr().out
    for word in ("optimal", "forward", "reverse", "greedy", "reshape method", "Pareto"):
        assert word in out
    assert "reverse is cheaper from B=1" in out
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_a_plan_draws_its_tree(tmp_path):
    png = tmp_path / "tree.png"
    tc.parse(tc.ARTICLE).plan("C", "W", n=4, m=3).draw(str(png))
    assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_cotengra_is_a_strategy_when_installed():
    pytest.importorskip("cotengra")
    net, out = tanh_chain([40, 4, 40, 4, 40])
    plan = net.plan(out, "x", order="cotengra")
    vals = net.random_values(seed=3)
    assert max_relative_error(plan(vals).array, tc.reshape_method(net, out, "x", vals)) < 1e-12
    assert plan.flops >= net.plan(out, "x", order="optimal").flops  # the DP is the optimum
    assert "cotengra" in str(net.explore(out, "x"))


def test_a_plan_checks_sizes_and_the_memory_limit_of_its_result():
    net, out = tanh_chain([30, 3, 30])
    plan = net.plan(out, "x")
    with pytest.raises(tc.ShapeError, match=r"this plan is for"):
        plan(tc.parse(tanh_chain_spec([20, 3, 30])).random_values())
    # The 30 × 30 result (900 entries) fits the order's limit, the whole program does not.
    small = net.plan(out, "x", memory_limit=8 * 900)
    with pytest.raises(tc.MemoryLimitError, match=r"more than the memory limit"):
        small(net.random_values())


def test_paths_command_takes_a_list_of_wrt_as_derive_does(capsys, tmp_path):
    png = tmp_path / "p.png"
    assert main(["paths", "--wrt", "W, b", "--sweep", "n=2,4", "--plot", str(png)]) == 0
    out = capsys.readouterr().out
    assert "dC/dW (m=3, n=4)" in out and "dC/db (m=3, n=4)" in out
    assert "reverse is cheaper from n=2 in this sweep" in out  # W
    assert "reverse is never cheaper in this sweep" in out  # b: a vector, either way
    for w in ("W", "b"):
        assert (tmp_path / f"p_{w}.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


@pytest.mark.parametrize("sweep", ["n", "n=", "=1,2", "n=2,x", "n=２"])
def test_paths_sweep_without_sizes_is_a_usage_error(sweep, capsys):
    with pytest.raises(SystemExit) as info:
        main(["paths", "--sweep", sweep])
    assert info.value.code == 2
    assert (
        f"expected DIM=SIZE,SIZE,... like B=1,8,64 (a dim and at least one size), got {sweep!r}"
        in (capsys.readouterr().err)
    )


def test_sizes_past_2_to_the_63_are_python_integers():
    """numpy's int64 product wraps past 2**63: the reshape method's largest
    matrix printed 0 (or a negative number), and a mean over two dims of 2**32
    divided by zero."""
    from tensorchain.reference.reshape import reshape_cost

    net = tc.parse(tc.ARTICLE)
    n = m = 2**32
    cost = reshape_cost(net, "C", "W", {"n": n, "m": m})
    assert cost.largest == n * n * m == 2**96  # dz/dW as an n × nm matrix
    assert cost.flops == 2 * n * n + 2 * n * (n * m)  # 1×n · n×n, then 1×n · n×nm
    assert cost.products == (f"1×{n} · {n}×{n}", f"1×{n} · {n}×{n * m}")
    form = net.derive("C", "W", n=n, m=m).matrix_form()
    assert form.endswith(f"reshape(dz/dW) ({n}×{n * m}) = 1×{n * m} → reshape to {n}×{m}")
    mean = tc.parse("dim n\ndim m\nparam W[n, m]\nf = mean(W)")
    assert str(mean.derive("f", "W", n=n, m=m)) == f"∂f/∂W[i, j] = {2.0**-64:g}"


# Issue 16, item 1: a plan derived its chain twice (to plan, then to trace), and
# fresh labels and set order made the two derivations differ with the hash seed.
ISSUE_16_1 = """dim c = 2
dim d = 3
param W1[c, c, c]
param W2[d, c]
a1 = 2.0 * W1
r2 = a1 + sin(a1)
z1[a0, i, a2] = W2[i, j] * r2[a0, j, a2]
"""

# Run in a fresh interpreter per hash seed: plans (after ``warm`` unrelated
# derivations, so that fresh labels start elsewhere) and what each one gives.
HASH_SEED_SCRIPT = """
import json, sys, warnings
import tensorchain as tc
warnings.simplefilter("ignore")
cases, warm = json.load(sys.stdin)
article = tc.parse(tc.ARTICLE)
for _ in range(warm):
    article.derive("C", "W")
out = []
for text, of, wrt, order in cases:
    net = tc.parse(text)
    plan = net.plan(of, wrt, order=order)
    J = plan(net.random_values(seed=0)).array
    out.append([str(net.derive(of, wrt)), plan.einsum, plan.flops, J.ravel().tolist()])
json.dump(out, sys.stdout)
"""


def under_hash_seed(seed: int, cases: list, warm: int = 0) -> list:
    run = subprocess.run(
        [sys.executable, "-c", HASH_SEED_SCRIPT],
        input=json.dumps([cases, warm]),
        env={**os.environ, "PYTHONHASHSEED": str(seed)},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, f"PYTHONHASHSEED={seed}:\n{run.stderr[-3000:]}"
    return json.loads(run.stdout)


def check_against_reshape(cases: list, results: list) -> None:
    for (text, of, wrt, _), (*_, flat) in zip(cases, results, strict=True):
        net = tc.parse(text)
        ref = tc.reshape_method(net, of, wrt, net.random_values(seed=0))
        assert max_relative_error(np.reshape(flat, ref.shape), ref) < 1e-12


def test_a_plan_does_not_depend_on_the_hash_seed_or_what_ran_before():
    orders = ("optimal", "reverse", "forward", "greedy", "dp")
    cases = [[ISSUE_16_1, "z1", w, order] for w in ("W1", "W2") for order in orders]
    runs = [under_hash_seed(seed, cases, warm) for seed, warm in ((0, 0), (4, 3), (6, 0))]
    assert runs[0] == runs[1] == runs[2]
    check_against_reshape(cases, runs[0])


@settings(max_examples=max(4, settings.default.max_examples // 6))  # two interpreters each
@given(
    st.lists(st.one_of(jacobian_networks(), networks()), min_size=3, max_size=6),
    st.lists(st.integers(0, 2**32 - 1), min_size=2, max_size=2, unique=True),
    st.sampled_from(["optimal", "reverse", "forward", "greedy"]),
    st.integers(0, 3),
)
def test_drawn_plans_are_the_same_under_two_hash_seeds(drawn, seeds, order, warm):
    cases = []
    for d in drawn:
        net = tc.parse(d.text)
        cases += [[d.text, d.of, w, order] for w in net.params[:2]]
    first, second = (under_hash_seed(s, cases, warm * k) for k, s in enumerate(seeds))
    assert first == second
    check_against_reshape(cases, first)
