"""Every contraction order of one derivative, side by side (``net.explore``,
``tensorchain paths``): FLOPs, largest intermediate, planning time, the ratio
to the best, the Pareto front of FLOPs against memory, and sweeps of a dim."""

from __future__ import annotations

import importlib.util
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from ..errors import PlanError
from .chain_orders import ORDERS, STRATEGIES
from .pictures import pyplot
from .plan import Plan

if TYPE_CHECKING:
    from ..language.network_like import Computing


@dataclass
class Exploration:
    """The plans of one derivative under every order and strategy."""

    of: str
    wrt: str
    sizes: dict[str, int]
    plans: list[Plan]
    failures: dict[str, str]

    @property
    def best(self) -> Plan:
        return min(self.plans, key=lambda p: p.flops)

    def pareto(self) -> list[Plan]:
        """The plans no other beats on both FLOPs and largest intermediate."""
        front = []
        for p in self.plans:
            dominated = any(
                (q.flops <= p.flops and q.largest <= p.largest)
                and (q.flops < p.flops or q.largest < p.largest)
                for q in self.plans
            )
            if not dominated and all((q.flops, q.largest) != (p.flops, p.largest) for q in front):
                front.append(p)
        return sorted(front, key=lambda p: p.flops)

    def table(self) -> str:
        best = max(self.best.flops, 1)
        front = {id(p) for p in self.pareto()}
        lines = [
            f"{'order':<16} {'FLOPs':>16} {'largest':>14} {'planning':>10} {'× best':>8}  Pareto",
        ]
        for p in sorted(self.plans, key=lambda p: (p.flops, p.largest)):
            lines.append(
                f"{p.order:<16} {p.flops:>16,} {p.largest:>14,} {p.planning_seconds * 1e3:>8.1f}ms"
                f" {p.flops / best:>8.2f}  {'*' if id(p) in front else ''}"
            )
        for name, why in self.failures.items():
            lines.append(f"{name:<16} failed: {why}")
        reshape = self.plans[0] if self.plans else None
        if reshape is not None:
            lines.append(
                f"{'reshape method':<16} {reshape.reshape_flops:>16,}"
                f" {reshape.reshape_bytes // 8:>14,}"
            )
        return "\n".join(lines)

    def __str__(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        return f"d{self.of}/d{self.wrt} ({sizes})\n{self.table()}"

    def plot(self, path: str) -> None:
        """A PNG of FLOPs against the largest intermediate, the Pareto front
        joined (needs matplotlib: ``pip install 'tensorchain[viz]'``)."""
        plt = pyplot()
        fig, ax = plt.subplots(figsize=(6, 4))
        for p in self.plans:
            ax.scatter(p.largest, p.flops, color="tab:blue")
            ax.annotate(p.order, (p.largest, p.flops), fontsize=8)
        front = self.pareto()
        ax.plot([p.largest for p in front], [p.flops for p in front], color="tab:red")
        ax.set_xscale("log")
        ax.set_yscale("log")
        ax.set_xlabel("largest intermediate (entries)")
        ax.set_ylabel("FLOPs")
        ax.set_title(f"d{self.of}/d{self.wrt}")
        fig.tight_layout()
        fig.savefig(path)
        plt.close(fig)


def explore(
    net: Computing,
    of: str,
    wrt: str,
    orders: Sequence[str] | None = None,
    dims: Mapping[str, int] | None = None,
) -> Exploration:
    plans, failures, errors = [], {}, []
    extra = ("cotengra",) if importlib.util.find_spec("cotengra") is not None else ()
    for order in orders or (*ORDERS, *STRATEGIES, *extra):
        try:
            plans.append(net.plan(of, wrt, order=order, dims=dims))
        except PlanError as error:
            failures[order] = str(error)
            errors.append(error)
    if not plans and errors:  # nothing to compare: the reason, once if it is one
        if len(set(failures.values())) == 1:
            raise errors[0]
        raise PlanError(
            f"no order could plan d{of}/d{wrt}: "
            + "; ".join(f"{order}: {why}" for order, why in failures.items())
        )
    return Exploration(of, wrt, net.sizes(dims=dims), plans, failures)


def sweep(
    net: Computing,
    of: str,
    wrt: str,
    dim: str,
    sizes: Sequence[int],
    dims: Mapping[str, int] | None = None,
) -> list[tuple[int, int, int, int]]:
    """``(size, forward FLOPs, reverse FLOPs, optimal FLOPs)`` for each size of
    ``dim``."""
    rows = []
    for size in sizes:
        at = {**(dims or {}), dim: size}
        rows.append(
            (
                size,
                net.plan(of, wrt, order="forward", dims=at).flops,
                net.plan(of, wrt, order="reverse", dims=at).flops,
                net.plan(of, wrt, order="optimal", dims=at).flops,
            )
        )
    return rows


def crossover(rows: Sequence[tuple[int, int, int, int]]) -> int | None:
    """The first size at which reverse is cheaper than forward, if any."""
    return next((size for size, fwd, rev, _ in rows if rev < fwd), None)
