"""Timing and memory measurement: interleaved rounds, medians, ratios."""

from __future__ import annotations

import gc
import statistics
import time
import tracemalloc
from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np


@dataclass
class Competitor:
    name: str
    run: Callable[[], object]
    result: Callable[[object], np.ndarray | None] = lambda r: None  # for the agreement check
    memory: bool = True  # peak measured with tracemalloc (numpy allocations only)


@dataclass
class Row:
    case: str
    name: str
    seconds: float | None
    peak_bytes: int | None = None
    error: float | None = None
    note: str = ""
    ratio: float | None = field(default=None)


def _repeat_for(fn: Callable[[], object], target: float) -> int:
    start = time.perf_counter()
    fn()
    once = time.perf_counter() - start
    return max(1, int(target / max(once, 1e-7)))


def measure(
    case: str, competitors: list[Competitor], rounds: int = 7, target: float = 0.05
) -> list[Row]:
    """Warm up each competitor, then time them in interleaved rounds (each round
    runs every competitor once, ``number`` calls each); report medians, the
    ratio to the first (the baseline), the peak memory of one call, and the
    largest relative difference of each result from the baseline's."""
    results = [c.result(c.run()) for c in competitors]  # warm-up and answers
    numbers = [_repeat_for(c.run, target) for c in competitors]
    times: list[list[float]] = [[] for _ in competitors]
    for _ in range(rounds):
        for k, c in enumerate(competitors):
            gc.collect()
            start = time.perf_counter()
            for _ in range(numbers[k]):
                c.run()
            times[k].append((time.perf_counter() - start) / numbers[k])
    rows = []
    base = statistics.median(times[0])
    reference = results[0]
    for c, ts, result in zip(competitors, times, results, strict=True):
        median = statistics.median(ts)
        error = None
        if reference is not None and result is not None:
            scale = max(1.0, float(np.max(np.abs(reference))))
            error = float(np.max(np.abs(np.asarray(result) - reference))) / scale
        rows.append(
            Row(case, c.name, median, peak(c.run) if c.memory else None, error, ratio=median / base)
        )
    return rows


def peak(fn: Callable[[], object]) -> int:
    """Peak bytes allocated through Python's allocator (numpy's included) by one call."""
    gc.collect()
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def _time(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, scale in (("s", 1.0), ("ms", 1e-3), ("µs", 1e-6)):
        if seconds >= scale:
            return f"{seconds / scale:.3g} {unit}"
    return f"{seconds * 1e9:.3g} ns"


def _bytes(n: int | None) -> str:
    if n is None:
        return "—"
    for unit, scale in (("GiB", 2**30), ("MiB", 2**20), ("KiB", 2**10)):
        if n >= scale:
            return f"{n / scale:.3g} {unit}"
    return f"{n} B"


def table(rows: list[Row]) -> str:
    """A Markdown table: case, competitor, median, ratio to the case's baseline,
    peak memory, relative difference from the baseline's answer, note."""
    lines = [
        "| case | competitor | median | × baseline | peak memory | max rel. diff | note |",
        "|---|---|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        ratio = "—" if r.ratio is None else f"{r.ratio:.2f}"
        err = "—" if r.error is None else f"{r.error:.1e}"
        lines.append(
            f"| {r.case} | {r.name} | {_time(r.seconds)} | {ratio} | {_bytes(r.peak_bytes)}"
            f" | {err} | {r.note} |"
        )
    return "\n".join(lines)
