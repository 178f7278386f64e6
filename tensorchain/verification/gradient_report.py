"""What :func:`tensorchain.check_gradient` reports: the tolerance of each
tensor's gradient (:class:`Tolerance`), where yours differs (:class:`Mismatch`),
the whole finding (:class:`GradientCheck`, its text the report), and one
example checked (:class:`Outcome`, what the diagnosis in
:mod:`tensorchain.verification.suspects` reads).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from .entries import sci, tensor_entry


@dataclass
class Tolerance:
    """An entry agrees when ``|yours − exact| ≤ rtol · magnitude + atol · scale``:
    ``magnitude`` is the gradient's magnitude (the chain rule with every local
    derivative's entries made positive), ``scale`` is ``max |exact|``."""

    rtol: float
    atol: float
    magnitude: np.ndarray
    scale: float
    condition: float = 1.0  # the largest condition number of a matrix inverted

    def limits(self) -> np.ndarray:
        return self.rtol * self.magnitude + self.atol * self.scale

    def close(self, yours: np.ndarray, other: np.ndarray) -> bool:
        """Whether ``yours`` agrees with ``other`` (the exact gradient, or a suspect's)."""
        yours, other = np.asarray(yours), np.asarray(other)
        if yours.shape != other.shape or yours.shape != self.magnitude.shape:
            return False
        with np.errstate(invalid="ignore", over="ignore"):
            return bool(np.all(np.abs(yours - other) <= self.limits()))

    def __str__(self) -> str:
        text = f"|yours − exact| ≤ {sci(self.rtol)} · magnitude + {sci(self.atol)} · max|exact|"
        if self.condition > 1.0:
            text += f"; the first grown by {self.condition:.3g}, the condition number of a matrix"
        return text


@dataclass
class Mismatch:
    """Where the user's gradient by ``wrt`` differs from the exact one."""

    wrt: str
    dims: tuple[str, ...]
    expected_shape: tuple[int, ...]
    shape: tuple[int, ...]
    count: int = 0  # entries that differ
    total: int = 0
    entries: list[tuple[tuple[int, ...], float, float]] = field(default_factory=list)
    where: str = ""  # the index values all differences share, e.g. "w=2"

    def lines(self) -> list[str]:
        head = f"by {self.wrt}"
        if self.shape != self.expected_shape:
            like = tensor_entry(self.wrt, self.dims, self.expected_shape).replace("=", " of ")
            like = f"a scalar, like {self.wrt}" if not self.dims else f"like {like}"
            out = [
                f"{head}: yours has shape {self.shape}, the gradient {self.expected_shape} ({like})"
            ]
            if self.shape == self.expected_shape[::-1] and len(self.shape) > 1:
                out[0] += ": the transpose's shape"
            return out
        out = [f"{head}: {self.count:,} of {self.total:,} entries differ" + (
            f", all where {self.where}" if self.where else ""
        )]  # fmt: skip
        for index, yours, exact in self.entries:
            entry = tensor_entry(self.wrt, self.dims, index)
            out.append(f"  {entry}: yours {yours:.6g}, exact {exact:.6g}")
        if self.count > len(self.entries):
            out.append(f"  … and {self.count - len(self.entries):,} more")
        return out


@dataclass
class GradientCheck:
    """What :func:`check_gradient` found. ``ok``; ``str(check)`` is the report
    (the message of :func:`tensorchain.testing.assert_gradient_close`). On a
    failure: ``sizes`` and ``values`` of the smallest failing example (shrunk
    from ``first_sizes``), ``mismatches`` per tensor, ``diagnosis``."""

    ok: bool
    of: str
    wrt: tuple[str, ...]
    examples: int
    dtype: np.dtype
    library: str
    tolerance: dict[str, Tolerance]
    sizes: dict[str, int] = field(default_factory=dict)
    first_sizes: dict[str, int] = field(default_factory=dict)
    drawn: str = ""  # how the failing example's values were drawn, or "given"
    values: dict[str, np.ndarray] = field(default_factory=dict)
    mismatches: list[Mismatch] = field(default_factory=list)
    diagnosis: list[str] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    diagnosed_at: str = ""  # the sizes of the example diagnosed, when not those shown

    def __bool__(self) -> bool:
        return self.ok

    def __str__(self) -> str:
        wrts = ", ".join(self.wrt)
        if self.ok:
            return (
                f"check_gradient: your gradient of {self.of} by {wrts} agrees with the exact one"
                f" on {self.examples} example{'s' * (self.examples != 1)} ({self.dtype},"
                f" {self.library})"
            )
        sizes = ", ".join(f"{d}={s}" for d, s in self.sizes.items())
        lines = [
            f"check_gradient: your gradient of {self.of} differs from the exact one",
            f"  at sizes {sizes} (values: {self.drawn}; {self.dtype}, {self.library} arrays)",
        ]
        if self.first_sizes and self.first_sizes != self.sizes:
            first = ", ".join(f"{d}={s}" for d, s in self.first_sizes.items())
            lines.append(f"  shrunk from the first failing example, at sizes {first}")
        differing = {m.wrt for m in self.mismatches}
        for m in self.mismatches:
            lines += [f"  {line}" for line in m.lines()]
            if m.shape == m.expected_shape:
                lines.append(f"    (tolerance {self.tolerance[m.wrt]})")
        agreeing = [w for w in self.wrt if w not in differing]
        if agreeing:
            lines.append(f"  by {', '.join(agreeing)}: agrees")
        if self.diagnosis:
            at = f" (tried at sizes {self.diagnosed_at})" if self.diagnosed_at else ""
            lines.append(f"  the difference is consistent with{at}:")
            lines += [f"    - {d}" for d in self.diagnosis]
        lines += [f"  {n}" for n in self.notes]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(str(self))}</pre>"


@dataclass
class Outcome:
    """One example checked: its sizes and values, your gradients and the exact
    ones, the tolerance of each, and the tensors whose gradient differs."""

    sizes: dict[str, int]
    drawn: str  # how the values were drawn ("given" when they were)
    values: dict[str, np.ndarray]  # in the user's dtype
    yours: dict[str, np.ndarray]
    exact: dict[str, np.ndarray]
    tolerance: dict[str, Tolerance]
    failed: list[str]  # tensors whose gradient differs
