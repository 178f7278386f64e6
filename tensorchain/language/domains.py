"""Value domains: which values a declared tensor takes.

A declaration may end with a modifier that says so::

    param s[n] positive           # s > 0
    param r[n] nonnegative        # r ≥ 0
    input p[B, n] unit            # 0 < p < 1
    input q[B, c] probability c   # q ≥ 0, summing to 1 along c (the simplex)
    input y[B, c] onehot c        # one 1 along c, zeros elsewhere
    param K[B, n, n] spd          # symmetric positive definite (the last two axes)

A domain says three things, one :class:`Kind` each in :data:`KINDS`: how
values are drawn (``random_values`` maps its standard-normal draw ``z``
into the domain, so a declaration never changes the other tensors' draws),
how given values are checked (the first entry outside is a
:class:`ValuesError`, as a shape that disagrees is), and how far central
differences may move an entry (its distance to the boundary below and above).

Derivatives are by each entry on its own, as the reshape method, JAX and
PyTorch take them: the derivative by a probability vector or a symmetric
matrix is not projected onto the simplex or onto symmetric matrices, and
central differences move one entry (within its bounds) to match.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import backend_of
from ..errors import ValuesError

if TYPE_CHECKING:
    from .network_like import NetworkLike
    from .syntax import Program, TensorDecl

Entry = tuple[tuple[int | None, ...], str]  # an entry (None: a whole axis, ':') and what is wrong


@dataclass(frozen=True)
class Domain:
    """The domain of one declared tensor: a :data:`KINDS` name, the dim names
    written after it (``onehot c``: ``("c",)``) and the axes it runs along
    (``onehot c``: the axis of dim c; ``spd``: the two matrix axes)."""

    kind: str
    args: tuple[str, ...] = ()
    axes: tuple[int, ...] = ()

    def __str__(self) -> str:
        return " ".join((self.kind, *self.args))

    def says(self) -> str:
        """What it takes, in words: ``values > 0``, ``one 1 along c and zeros elsewhere``."""
        return KINDS[self.kind].says.format(dim=" ".join(self.args))


@dataclass(frozen=True)
class Kind:
    """One modifier: ``args`` dim names follow it; ``says`` what it takes
    (``{dim}``: those dim names).

    ``bind(dims, args)`` gives the axes it runs along for a tensor with those
    dims (a ``str`` is the reason it cannot); ``draw(z, domain, sizes)`` maps
    standard-normal ``z`` into the domain (``sizes``: every dim's);
    ``outside(x, domain, tol)`` finds the first entry outside it (None: all
    inside); ``room(x, domain)`` the distance of each entry to the boundary
    (below, above), None where entries cannot move at all (discrete values);
    ``closed``: the boundary belongs to the domain (values may sit on it).
    ``discrete`` kinds are inputs only."""

    name: str
    args: int
    says: str
    bind: Callable[[tuple[str, ...], tuple[str, ...]], tuple[int, ...] | str]
    draw: Callable[[np.ndarray, Domain, Mapping[str, int]], np.ndarray]
    outside: Callable[[np.ndarray, Domain, float], Entry | None]
    room: Callable[[np.ndarray, Domain], tuple[np.ndarray, np.ndarray]] | None
    discrete: bool = False
    closed: bool = False


@dataclass(frozen=True)
class Room:
    """How far each entry may move ``down`` and ``up`` (arrays shaped like the
    values) and stay in the domain; ``closed``: the boundary belongs to it, so
    a function of the values is defined there."""

    down: np.ndarray
    up: np.ndarray
    closed: bool = False


# --- the kinds ----------------------------------------------------------------


def _no_axes(dims: tuple[str, ...], args: tuple[str, ...]) -> tuple[int, ...]:
    return ()


def _one_axis(dims: tuple[str, ...], args: tuple[str, ...]) -> tuple[int, ...] | str:
    (dim,) = args
    found = [k for k, d in enumerate(dims) if d == dim]
    if len(found) != 1:
        where = f"[{', '.join(dims)}]" if dims else "(a scalar)"
        what = "no axis" if not found else f"{len(found)} axes"  # two or more
        return f"{dim} is the dim it runs along, but the tensor {where} has {what} of dim {dim}"
    return (found[0],)


def _matrix_axes(dims: tuple[str, ...], args: tuple[str, ...]) -> tuple[int, ...] | str:
    if len(dims) < 2 or dims[-1] != dims[-2]:
        where = f"[{', '.join(dims)}]" if dims else "a scalar"
        return (
            f"the matrix is the last two axes, which must have the same dim (K[n, n],"
            f" or K[B, n, n] for a batch of matrices), but the tensor is {where}"
        )
    return (len(dims) - 2, len(dims) - 1)


def _first(mask: np.ndarray) -> tuple[int, ...] | None:
    hits = np.argwhere(mask)
    return tuple(int(i) for i in hits[0]) if len(hits) else None


def _entrywise(bad: Callable[[np.ndarray], np.ndarray]):
    def outside(x: np.ndarray, domain: Domain, tol: float) -> Entry | None:
        at = _first(bad(x) & ~np.isnan(x))
        return None if at is None else (at, f"= {x[at]:.6g}")

    return outside


def _interval(low: float, high: float):
    def room(x: np.ndarray, domain: Domain) -> tuple[np.ndarray, np.ndarray]:
        return x - low, high - x

    return room


def _positive(z: np.ndarray, domain: Domain, sizes: Mapping[str, int]) -> np.ndarray:
    return np.exp(z / 2)  # log-normal: between 0.37 and 2.7 two times in three


def _unit(z: np.ndarray, domain: Domain, sizes: Mapping[str, int]) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def _simplex(z: np.ndarray, domain: Domain, sizes: Mapping[str, int]) -> np.ndarray:
    (axis,) = domain.axes
    e = np.exp(z - z.max(axis=axis, keepdims=True))
    return e / e.sum(axis=axis, keepdims=True)


def _one_hot(z: np.ndarray, domain: Domain, sizes: Mapping[str, int]) -> np.ndarray:
    (axis,) = domain.axes
    out = np.zeros_like(z)
    np.put_along_axis(out, np.expand_dims(z.argmax(axis=axis), axis), 1.0, axis=axis)
    return out


def _spd(z: np.ndarray, domain: Domain, sizes: Mapping[str, int]) -> np.ndarray:
    n = z.shape[-1]  # G Gᵀ / n + I: eigenvalues between 1 and about 5
    return z @ np.swapaxes(z, -1, -2) / n + np.eye(n)


def _row(index: tuple[int, ...], axis: int) -> tuple[int | None, ...]:
    return tuple(None if k == axis else i for k, i in enumerate(index))


def _simplex_outside(x: np.ndarray, domain: Domain, tol: float) -> Entry | None:
    (axis,) = domain.axes
    at = _first((x < 0) | (x > 1 + tol))
    if at is not None:
        return at, f"= {x[at]:.6g}"
    total = x.sum(axis=axis)
    row = _first(np.abs(total - 1) > tol)
    if row is None:
        return None
    index = (*row[:axis], 0, *row[axis:])
    return _row(index, axis), f"sums to {total[row]:.10g}"


def _one_hot_outside(x: np.ndarray, domain: Domain, tol: float) -> Entry | None:
    (axis,) = domain.axes
    at = _first((x != 0) & (x != 1) & ~np.isnan(x))
    if at is not None:
        return at, f"= {x[at]:.6g}"
    ones = (x == 1).sum(axis=axis)
    row = _first(ones != 1)
    if row is None:
        return None
    index = (*row[:axis], 0, *row[axis:])
    count = int(ones[row])
    return _row(index, axis), f"holds {'no 1' if not count else f'{count} ones'}"


def _spd_outside(x: np.ndarray, domain: Domain, tol: float) -> Entry | None:
    scale = float(np.max(np.abs(np.where(np.isfinite(x), x, 0)), initial=0.0))
    with np.errstate(invalid="ignore"):
        gap = np.abs(x - np.swapaxes(x, -1, -2))
    at = _first(gap > tol * max(1.0, scale))
    if at is not None:
        i, j = min(at[-2:]), max(at[-2:])
        at, mirror = (*at[:-2], i, j), (*at[:-2], j, i)
        return (
            at,
            f"= {x[at]:.10g} while {{name}}[{', '.join(map(str, mirror))}] = {x[mirror]:.10g}",
        )
    finite = np.isfinite(x).all(axis=(-2, -1))
    smallest = np.full(x.shape[:-2], np.inf)
    if finite.any():
        smallest[finite] = np.linalg.eigvalsh(x[finite])[..., 0]
    at = _first(smallest <= 0)
    if at is None:
        return None
    return (*at, None, None), f"has smallest eigenvalue {smallest[at]:.6g}"


def _spd_room(x: np.ndarray, domain: Domain) -> tuple[np.ndarray, np.ndarray]:
    # moving one entry by h changes the symmetric part by at most h in the 2-norm,
    # so a matrix whose smallest eigenvalue is λ stays positive definite for h < λ
    smallest = np.linalg.eigvalsh((x + np.swapaxes(x, -1, -2)) / 2)[..., :1, None]
    room = np.broadcast_to(np.maximum(smallest, 0) / 2, x.shape)
    return room, room


KINDS: dict[str, Kind] = {
    k.name: k
    for k in (
        Kind(
            "positive", 0, "values > 0", _no_axes, _positive, _entrywise(lambda x: x <= 0),
            _interval(0.0, math.inf),
        ),
        Kind(
            "nonnegative", 0, "values ≥ 0", _no_axes, _positive, _entrywise(lambda x: x < 0),
            _interval(0.0, math.inf), closed=True,
        ),
        Kind(
            "unit", 0, "values in (0, 1)", _no_axes, _unit,
            _entrywise(lambda x: (x <= 0) | (x >= 1)), _interval(0.0, 1.0),
        ),
        Kind(
            "probability", 1, "values ≥ 0 summing to 1 along {dim}", _one_axis, _simplex,
            _simplex_outside, _interval(0.0, 1.0), closed=True,
        ),
        Kind(
            "onehot", 1, "one 1 along {dim} and zeros elsewhere", _one_axis, _one_hot,
            _one_hot_outside, None, discrete=True,
        ),
        Kind(
            "spd", 0, "symmetric positive definite matrices (its last two axes)",
            _matrix_axes, _spd, _spd_outside, _spd_room,
        ),
    )
}  # fmt: skip

#: Names users may reach for, and the modifier that means it.
ALIASES = {
    "simplex": "probability",
    "one_hot": "onehot",
    "positive_definite": "spd",
    "pd": "spd",
    "posdef": "spd",
    "unit_interval": "unit",
    "nonneg": "nonnegative",
    "non_negative": "nonnegative",
}


def bind_domain(program: Program, decl: TensorDecl, dims: Mapping[str, Any]) -> Domain | None:
    """The :class:`Domain` a declaration's modifiers give (None without one;
    modifiers that are no domain are left to others); a :class:`SpecError`
    at the modifier when it does not fit the tensor. ``dims``: the declared dims."""
    found = [m for m in decl.modifiers if m.name in KINDS]
    if not found:
        return None
    first = found[0]
    grouped = {a.name for a in decl.axes if hasattr(a, "members")}  # (H W), (I + J)
    for arg in first.args:
        if hasattr(arg, "members") and arg.name not in grouped:
            raise program.error(
                f"{arg.name} after {first.name!r} is no axis of {decl.name}; name one of its"
                f" axes as declared: {', '.join(a.name for a in decl.axes)}",
                arg.pos,
            )
        if arg.name not in dims and arg.name not in grouped:
            raise program.error(
                f"unknown dim {arg.name!r} after {first.name!r}; declare it first with"
                f" 'dim {arg.name} = 4', or name one of the dims of {decl.name}",
                arg.pos,
            )
    if len(found) > 1:
        second = found[1]
        raise program.error(
            f"{decl.name} has two modifiers, {first.name!r} and {second.name!r}; a tensor"
            " takes one domain, so keep the one that says the most",
            second.pos,
        )
    kind = KINDS[first.name]
    if kind.discrete and decl.kind == "param":
        raise program.error(
            f"{first.name} values are discrete, so a param {decl.name} could not be"
            f" differentiated or updated; declare it as data: input {decl.name}[...]"
            f" {first.name} ...",
            first.pos,
        )
    dims = tuple(a.name for a in decl.axes)
    args = tuple(a.name for a in first.args)
    axes = kind.bind(dims, args)
    if isinstance(axes, str):
        where = first.args[0].pos if first.args else first.pos
        raise program.error(f"{first.name} does not fit {decl.name}: {axes}", where)
    return Domain(first.name, args, axes)


# --- draws, checks and room ----------------------------------------------------


def draw(domain: Domain | None, z: np.ndarray, sizes: Mapping[str, int]) -> np.ndarray:
    """Standard-normal ``z`` mapped into ``domain`` (``z`` itself without one)."""
    return z if domain is None else np.asarray(KINDS[domain.kind].draw(z, domain, sizes))


def tolerance(dtype: np.dtype) -> float:
    """How far a sum may be from 1, or a matrix from symmetric (relative to its
    largest entry): 1e-6, or √eps for float32 (3.5e-4)."""
    eps = np.finfo(dtype).eps if np.dtype(dtype).kind in "fc" else np.finfo(np.float64).eps
    return max(1e-6, math.sqrt(float(eps)))


def declaration(net: NetworkLike, name: str) -> str:
    """The declaration of ``name`` (``'param s[n] positive' (line 3)``)."""
    t = net.tensors[name]
    axes = f"[{', '.join(t.dims)}]" if t.dims else ""
    return f"'{t.kind} {name}{axes} {t.domain}' (line {t.pos.line})"


def check_domains(net: NetworkLike, values: Mapping[str, Any]) -> None:
    """Raise :class:`ValuesError` for the first value outside its declared
    domain, naming the tensor, the entry and the domain. NaN entries are left
    to the finiteness check; values of other libraries than numpy are not
    checked (they may be on a device, traced or lazy)."""
    for name, value in values.items():
        domain = net.tensors[name].domain if name in net.tensors else None
        if domain is None or backend_of(value) != "numpy":
            continue
        x = np.asarray(value)
        if x.dtype.kind == "c":
            raise ValuesError(
                f"the value of {name} is complex, but {declaration(net, name)} takes"
                f" {domain.says()}; give real values"
            )
        if x.dtype.kind not in "biuf":
            continue  # a non-numeric dtype is refused by check_values
        found = KINDS[domain.kind].outside(x, domain, tolerance(x.dtype))
        if found is None:
            continue
        index, what = found
        raise ValuesError(
            f"the value of {name} is outside its domain: {entry(name, index)}"
            f" {what.format(name=name)}, but"
            f" {declaration(net, name)} takes {domain.says()}; give values inside the"
            " domain, or change the declaration"
        )


def entry(name: str, index: tuple[int | None, ...]) -> str:
    """``s[2]``, ``y[3, :]`` (a whole axis), or ``s`` for a scalar."""
    if all(i is None for i in index):
        return name
    return f"{name}[{', '.join(':' if i is None else str(i) for i in index)}]"


def room(domain: Domain | None, x: np.ndarray) -> Room | None:
    """How far each entry of ``x`` may move down and up and stay in ``domain``
    (None: anywhere); zero both ways where the values are discrete."""
    if domain is None:
        return None
    kind = KINDS[domain.kind]
    if kind.room is None:
        zero = np.zeros(np.shape(x))
        return Room(zero, zero)
    down, up = kind.room(np.asarray(x, dtype=np.float64), domain)
    return Room(np.maximum(down, 0.0), np.maximum(up, 0.0), kind.closed)


def drawn_note(net: NetworkLike, seed: int, names: list[str] | None = None) -> str:
    """How the values of ``names`` (default: all) are drawn, in words:
    ``standard normal, seed 0 (s positive, y onehot c: drawn in their domains;
    ids: positions drawn uniformly)``."""
    names = list(net.tensors) if names is None else names
    declared = [f"{n} {net.tensors[n].domain}" for n in names if net.tensors[n].domain]
    indexes = net.indexes
    positions = [n for n in names if n in indexes]
    leaves = [n for n in names if net.tensors[n].kind in ("input", "param")]
    if positions and len(positions) == len(leaves):
        return f"positions drawn uniformly, seed {seed}"
    note = f"standard normal, seed {seed}"
    parts = []
    if declared:
        which = "its domain" if len(declared) == 1 else "their domains"
        parts.append(f"{', '.join(declared)}: drawn in {which}")
    if positions:
        parts.append(f"{', '.join(positions)}: positions drawn uniformly")
    return note + (f" ({'; '.join(parts)})" if parts else "")


def shifted(net: NetworkLike, values: Mapping[str, np.ndarray], seed: int) -> tuple[dict, str]:
    """``|v| + 0.5`` for every drawn tensor without a declared domain (the
    fallback of ``verify`` and ``check_gradient`` where standard-normal values
    make the result NaN), and the note that says so."""
    free = [k for k in values if net.tensors[k].domain is None and k not in net.indexes]
    out = {k: np.abs(v) + 0.5 if k in free else v for k, v in values.items()}
    which = "" if len(free) == len(values) else f" for {', '.join(free)}"
    return out, f"|standard normal| + 0.5{which}, seed {seed}"
