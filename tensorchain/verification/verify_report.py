"""What ``net.verify`` reports: one :class:`Row` per derivative and reference,
filled by :func:`compare` (the largest differences, the worst entry, pass or
fail at a tolerance), and the :class:`VerifyReport` that holds them (a table
as text, and as HTML in notebooks).
"""

from __future__ import annotations

import html
import math
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Row:
    """One comparison: tensorchain's ``derivative`` against ``reference``.

    ``status`` is ``"pass"``, ``"fail"``, ``"kink"`` (finite differences agree
    wherever they are reliable and found a kink elsewhere: not a failure) or
    ``"not run"`` (``note`` says why). ``max_rel`` is ``max_abs`` over the
    reference's largest magnitude."""

    derivative: str
    reference: str
    status: str
    max_abs: float | None = None
    max_rel: float | None = None
    worst: str = ""
    tolerance: str = ""
    note: str = ""
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status != "fail"


def _num(x: float | None) -> str:
    if x is None:
        return "—"
    if x == 0:
        return "0"
    return f"{x:.1e}" if math.isfinite(x) else ("NaN" if x != x else "inf")


@dataclass
class VerifyReport:
    """What :meth:`Network.verify` found: ``rows`` (one per derivative and
    reference), ``ok`` (no reference disagrees and at least one agrees),
    ``print(report)`` for a table, and an HTML table in notebooks."""

    of: str
    derivatives: list[tuple[str, ...]]
    rows: list[Row]
    sizes: dict[str, int]
    dtype: np.dtype
    values_note: str
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        ran = [r for r in self.rows if r.status != "not run"]
        return bool(ran) and all(r.ok for r in self.rows)

    def __bool__(self) -> bool:
        return self.ok

    def _header(self) -> str:
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        return f"sizes {sizes}; {self.dtype}; values: {self.values_note}"

    def _cells(self, row: Row, tolerance: bool = True) -> list[str]:
        cells = [row.derivative, row.reference, _num(row.max_abs), _num(row.max_rel)]
        cells.append(row.worst or "—")
        return [*cells, *([row.tolerance or "—"] if tolerance else []), row.status]

    HEAD = ("derivative", "reference", "max abs", "max rel", "worst entry", "tolerance", "result")

    def __str__(self) -> str:
        head = [h for h in self.HEAD if h != "tolerance"]
        table = [head, *(self._cells(r, tolerance=False) for r in self.rows)]
        widths = [max(len(line[k]) for line in table) for k in range(len(head))]
        lines = [f"tensorchain verify: {self._header()}"]
        lines += [
            "  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip()
            for line in table
        ]
        by_tolerance: dict[str, list[str]] = {}
        for r in self.rows:
            if r.tolerance and r.reference not in by_tolerance.setdefault(r.tolerance, []):
                by_tolerance[r.tolerance].append(r.reference)
        lines += [
            f"  passes when max abs ≤ {t}: {', '.join(refs)}" for t, refs in by_tolerance.items()
        ]
        notes = [f"{r.reference} ({r.derivative}): {r.note}" for r in self.rows if r.note]
        lines += [f"  {n}" for n in [*notes, *self.notes]]
        verdict = "every reference agrees" if self.ok else self._failure()
        return "\n".join([*lines, verdict])

    def _failure(self) -> str:
        failed = [f"{r.reference} ({r.derivative})" for r in self.rows if r.status == "fail"]
        if failed:
            return "DISAGREES with " + ", ".join(failed)
        return "nothing was verified: no reference could run"

    def _repr_html_(self) -> str:
        head = "".join(f"<th>{html.escape(h)}</th>" for h in self.HEAD)
        body = []
        for r in self.rows:
            colour = {"fail": "#c00", "pass": "#070"}.get(r.status, "#960")
            cells = self._cells(r)
            cells[-1] = f'<span style="color:{colour}">{html.escape(cells[-1])}</span>'
            body.append(
                "<tr>"
                + "".join(
                    f"<td>{c if k == len(cells) - 1 else html.escape(c)}</td>"
                    for k, c in enumerate(cells)
                )
                + "</tr>"
            )
        notes = [f"{r.reference} ({r.derivative}): {r.note}" for r in self.rows if r.note]
        notes += self.notes
        foot = "".join(f"<li>{html.escape(n)}</li>" for n in notes)
        verdict = "every reference agrees" if self.ok else self._failure()
        return (
            f"<p>tensorchain verify: {html.escape(self._header())}</p>"
            f"<table><tr>{head}</tr>{''.join(body)}</table>"
            + (f"<ul>{foot}</ul>" if foot else "")
            + f"<p><b>{html.escape(verdict)}</b></p>"
        )


def compare(
    result: np.ndarray,
    reference: np.ndarray,
    tolerance: float,
    name: Callable[[tuple[int, ...]], str],
    mask: np.ndarray | None = None,
) -> tuple[str, float, float, str]:
    """Status, max abs, max rel and the worst entry's name of ``result``
    against ``reference`` over ``mask`` (default: every entry), passing when
    ``max |result − reference| ≤ tolerance · max(1, max |reference|)``. NaN or
    infinity in either is a disagreement, the worst."""
    result = np.asarray(result)
    reference = np.asarray(reference)
    if result.shape != reference.shape:
        raise AssertionError(f"shapes differ: {result.shape} and {reference.shape}")
    mask = np.ones(result.shape, dtype=bool) if mask is None else mask
    if not mask.any():
        return "pass", 0.0, 0.0, ""
    with np.errstate(invalid="ignore", over="ignore"):
        diff = np.abs(result.astype(np.float64) - reference.astype(np.float64))
    broken = mask & ~(np.isfinite(result) & np.isfinite(reference))
    ref_size = float(np.max(np.abs(np.where(np.isfinite(reference) & mask, reference, 0))))
    scale = max(1.0, ref_size)
    if broken.any():
        worst = tuple(int(i) for i in np.argwhere(broken)[0])
        return "fail", math.inf, math.inf, f"{name(worst)} (NaN or infinity)"
    diff = np.where(mask & np.isfinite(diff), diff, 0.0)
    flat = int(np.argmax(diff))
    worst = tuple(int(i) for i in np.unravel_index(flat, diff.shape)) if diff.ndim else ()
    max_abs = float(diff.reshape(-1)[flat]) if diff.size else 0.0
    max_rel = max_abs / ref_size if ref_size > 0 else max_abs
    status = "pass" if max_abs <= tolerance * scale else "fail"
    return status, max_abs, max_rel, name(worst) if max_abs > 0 else ""
