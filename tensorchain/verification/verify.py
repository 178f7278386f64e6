"""``net.verify``: one derivative checked against every reference at hand.

tensorchain's result is compared with (a) the reshape method (first order)
or the dense reference :func:`tensorchain.reference_derivative` (higher
orders), where their memory forecast allows; (b) central finite differences
with a step per entry, Richardson extrapolation and an error estimate
(:mod:`tensorchain.reference.differences`); (c) JAX's and (d) PyTorch's autodiff of the
same network, when they are installed: ``jax.jacrev``/``jacfwd`` and
``torch.autograd.functional.jacobian`` of :meth:`Network.evaluate` run on
their arrays. Each row says the largest absolute and relative difference,
the worst entry by named index, and pass or fail at a stated tolerance; NaN
or infinity in either result is a disagreement. Finite differences judge
only the entries where they are reliable: a kink within the step (``relu``
at 0) is reported as such, never as a failure of tensorchain.

The rows and the table are in :mod:`~tensorchain.verification.verify_report`,
the libraries' autodiff in :mod:`~tensorchain.verification.autodiff`.
"""

from __future__ import annotations

import math
import time
import warnings
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import to_numpy
from ..arrays.limits import format_bytes, get_memory_limit
from ..errors import DerivativeError, MemoryLimitError, NonFiniteWarning
from ..language.domains import KINDS, check_domains, drawn_note, room, shifted
from ..language.gather import cast_values
from ..reference.differences import central_differences
from ..runtime.arguments import wrt_tuple
from ..runtime.compiled import dtype_of
from ..runtime.finite import upstream
from .autodiff import installed, jax_derivative, library_failed, torch_derivative
from .entries import derivative_title, sci, superscript, tensor_entry
from .verify_report import Row, VerifyReport, compare

if TYPE_CHECKING:
    from ..language.network_like import Computing

REFERENCES = ("reference", "differences", "jax", "torch")
FD_TOLERANCE = 1e-6
FD_ENTRIES = 1000


def default_tolerance(dtype: Any) -> float:
    """The tolerance of a comparison with an exact reference, relative to
    ``max(1, max |reference|)``: 1e-9 for float64, ``1000 · eps`` below (1.2e-4
    for float32)."""
    dtype = np.dtype(dtype)
    eps = float(np.finfo(dtype).eps) if dtype.kind in "fc" else float(np.finfo(float).eps)
    return max(1e-9, 1e3 * eps)


def derivative_entry(net: Computing, of: str, wrts: Sequence[str], index: Sequence[int]) -> str:
    """An entry of ``∂ᵏ of / ∂wrt…`` by named index: ``∂a[n=1]/∂W[n=1, m=2]``."""
    index = list(index)
    parts = []
    for name in (of, *wrts):
        dims = net.tensors[name].dims
        parts.append(tensor_entry(name, dims, index[: len(dims)]))
        index = index[len(dims) :]
    return f"∂{superscript(len(wrts))}{parts[0]}/" + "".join(f"∂{p}" for p in parts[1:])


# --- verify ---


def _derivatives(net: Computing, of: str, wrt: Any, order: int) -> list[tuple[str, ...]]:
    if not isinstance(order, int) or isinstance(order, bool) or order < 1:
        raise DerivativeError(f"order is a whole number of at least 1, got {order!r}")
    if wrt is None:
        used = upstream(net, of)
        found = [p for p in net.params if p in used] or [i for i in net.inputs if i in used]
        if not found:
            raise DerivativeError(f"{of} depends on no input or param: name a tensor with wrt=")
        return [(w,) * order for w in found]
    if isinstance(wrt, str):
        return [(wrt,) * order]
    if isinstance(wrt, tuple):
        if order != 1:
            raise DerivativeError(
                f"wrt={wrt!r} is one derivative of order {len(wrt)} already; leave out"
                f" order={order}, or give wrt as one tensor name"
            )
        return [wrt_tuple(net, wrt)]
    if isinstance(wrt, list) and wrt:
        out = []
        for w in wrt:
            out += _derivatives(net, of, w, order if isinstance(w, str) else 1)
        return out
    raise DerivativeError(
        "wrt is a tensor name, a tuple of names (one derivative: ('W', 'W') is the"
        f" Hessian) or a list of either (one derivative each), got {wrt!r}"
    )


def _draw(net: Computing, of: str, seed: int, sizes: dict) -> tuple[dict, str]:
    """Values drawn as ``random_values`` draws them (standard normal, or in
    each declared domain); where ``of`` is then not finite (a log or a square
    root of a negative number), ``|v| + 0.5`` for the tensors without a domain."""
    values = net.random_values(seed=seed, dims=sizes)
    with np.errstate(all="ignore"):
        value = net.evaluate(values, check_finite=False)[of]
        if np.all(np.isfinite(value)):
            return values, drawn_note(net, seed)
        positive, note = shifted(net, values, seed)
        if np.all(np.isfinite(net.evaluate(positive, check_finite=False)[of])):
            return positive, f"{note} (standard normal gave NaN)"
    return values, drawn_note(net, seed)


def verify(
    net: Computing,
    of: str,
    wrt: Any = None,
    values: Mapping[str, Any] | None = None,
    *,
    order: int = 1,
    seed: int = 0,
    tolerance: float | None = None,
    references: Sequence[str] = REFERENCES,
    fd_entries: int = FD_ENTRIES,
    memory_limit: int | None = None,
    dims: Mapping[str, int] | None = None,
) -> VerifyReport:
    """See :meth:`tensorchain.Network.verify`."""
    net.info(of)
    unknown = [r for r in references if r not in REFERENCES]
    if unknown or isinstance(references, str):
        raise DerivativeError(
            f"references is a list of {', '.join(REFERENCES)}; got {references!r}"
        )
    derivatives = _derivatives(net, of, wrt, order)
    sizes = dict(dims or {})
    if sizes:  # the defaults, for the factors of product dims no value shows
        net = net.with_sizes(sizes)
    if values is None:
        values, values_note = _draw(net, of, seed, sizes)
    else:
        values_note = "given"
        if sizes:
            net.sizes(values, dims=sizes)  # the sizes given must agree with the values
    env = net._check_values(values, check_finite=False)
    check_domains(net, env)
    dtype = dtype_of(env)
    if dtype.kind == "c":
        raise DerivativeError(
            "verify compares real derivatives; for complex values compare net.derivative"
            " with tc.reference_derivative"
        )
    if tolerance is not None and not (
        isinstance(tolerance, int | float) and 0 < tolerance < math.inf
    ):
        raise DerivativeError(f"tolerance is a number > 0, got {tolerance!r}")
    tol = default_tolerance(dtype) if tolerance is None else float(tolerance)
    wide = cast_values(net, env, np.float64)
    report = VerifyReport(of, derivatives, [], net.sizes(env), dtype, values_note)
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore", NonFiniteWarning)
        for wrts in derivatives:
            report.rows += _rows(
                net, of, wrts, env, wide, tol, references, fd_entries, seed, memory_limit
            )
    return report


def _result(
    net: Computing, of: str, wrts: Sequence[str], env: Mapping[str, Any], limit
) -> np.ndarray:
    """tensorchain's derivative, dense."""
    if len(wrts) == 1 and not net.tensors[of].dims:
        out = net.grad(of, wrts[0], env, check_finite=False, memory_limit=limit)[wrts[0]]
    else:
        out = net.derivative(of, wrts, env, check_finite=False, memory_limit=limit).array
    return np.asarray(to_numpy(out))


def _rows(
    net: Computing,
    of: str,
    wrts: tuple[str, ...],
    env: Mapping[str, Any],
    wide: dict[str, np.ndarray],
    tol: float,
    references: Sequence[str],
    fd_entries: int,
    seed: int,
    memory_limit: int | None,
) -> list[Row]:
    from ..reference.jets import reference_derivative
    from ..reference.reshape import reshape_method

    title = derivative_title(of, wrts)
    result = _result(net, of, wrts, env, memory_limit)

    def name(index: tuple[int, ...]) -> str:
        return derivative_entry(net, of, wrts, index)

    tol_text = f"{sci(tol)} · max(1, |ref|)"
    rows = []
    limit = get_memory_limit(memory_limit)
    dense = result.size * 8
    computed = [w for w in wrts if net.tensors[w].kind not in ("input", "param")]

    kinks = None
    if "differences" in references:  # first: where it finds kinks, conventions may differ
        differences, kinks = _differences_row(
            net, of, wrts, wide, result, tol, fd_entries, seed, title
        )

    def exact(reference: str, compute: Callable[[], np.ndarray]) -> Row:
        start = time.perf_counter()
        try:
            ref = compute()
        except MemoryLimitError as err:
            return Row(title, reference, "not run", note=f"its memory forecast: {err}")
        status, max_abs, max_rel, worst = compare(result, ref, tol, name)
        note = ""
        if status == "fail" and kinks is not None and kinks.any():
            elsewhere = compare(result, ref, tol, name, ~kinks)
            if elsewhere[0] == "pass":  # a one-sided derivative's choice, not an error
                status, max_abs, max_rel, worst = "kink", *elsewhere[1:]
                count = int(kinks.sum())
                note = (
                    f"differs only at the {count} entr{'y' if count == 1 else 'ies'} where"
                    " finite differences found a kink: there the derivative does not exist,"
                    " and libraries choose a one-sided value (e.g. JAX takes abs′(0) = 1,"
                    " tensorchain 0)"
                )
        return Row(
            title, reference, status, max_abs, max_rel, worst, tol_text, note,
            seconds=time.perf_counter() - start,
        )  # fmt: skip

    if "reference" in references:
        if len(wrts) == 1:
            rows.append(
                exact(
                    "reshape method",
                    lambda: reshape_method(net, of, wrts[0], wide, memory_limit=memory_limit),
                )
            )
        else:
            rows.append(
                exact(
                    "dense reference",
                    lambda: reference_derivative(net, of, wrts, wide, memory_limit=memory_limit),
                )
            )
    library_rows = [
        ("jax", "jax (jacrev, jacfwd)", jax_derivative),
        ("torch", "torch (autograd)", torch_derivative),
    ]
    if "differences" in references:
        rows.append(differences)
    for key, label, run in library_rows:
        if key not in references:
            continue
        if not installed(key):
            rows.append(Row(title, label, "not run", note=f"{key} is not installed"))
        elif computed:
            rows.append(
                Row(
                    title, label, "not run",
                    note=f"{computed[0]} is computed by the network; only inputs and params"
                    " can be passed to it",
                )
            )  # fmt: skip
        elif 4 * dense > limit:
            rows.append(
                Row(
                    title, label, "not run",
                    note=f"its dense result of {format_bytes(dense)} (a few copies) exceeds"
                    f" the memory limit of {format_bytes(limit)}",
                )
            )  # fmt: skip
        else:
            try:
                rows.append(exact(label, lambda run=run: run(net, of, wrts, wide)))
            except Exception as err:  # the library's own error: reported, never raised
                rows.append(Row(title, label, "not run", note=library_failed(net, key, err)))
    return rows


def _differences_row(
    net: Computing,
    of: str,
    wrts: tuple[str, ...],
    wide: dict[str, np.ndarray],
    result: np.ndarray,
    tol: float,
    fd_entries: int,
    seed: int,
    title: str,
) -> tuple[Row, np.ndarray | None]:
    """The finite-differences row, and where they found a kink (over the
    derivative's entries; ``None`` when not run)."""
    label = "finite differences"
    if len(wrts) > 1:
        label += f" of {derivative_title(of, wrts[:-1])}"
    w = wrts[-1]
    if net.tensors[w].kind not in ("input", "param"):
        return Row(
            title, label, "not run",
            note=f"{w} is computed by the network; differences perturb inputs and params",
        ), None  # fmt: skip
    start = time.perf_counter()
    if len(wrts) == 1:

        def f(x: np.ndarray) -> np.ndarray:
            return net.evaluate({**wide, w: x}, check_finite=False)[of]
    else:
        lower = wrts[:-1]

        def f(x: np.ndarray) -> np.ndarray:
            return _result(net, of, lower, {**wide, w: x}, None)

    x = wide[w]
    domain = net.tensors[w].domain
    if domain is not None and KINDS[domain.kind].room is None:
        return Row(
            title, label, "not run",
            note=f"{w} is declared {domain}: its values are discrete, so no entry can be"
            " moved by a step",
        ), None  # fmt: skip
    entries = None
    note = []
    if len(wrts) > 1:
        note.append(
            f"differences of tensorchain's {derivative_title(of, wrts[:-1])} by {w}: they"
            " check the last differentiation, the dense reference the whole"
        )
    if x.size > fd_entries:
        rng = np.random.default_rng(seed)
        entries = sorted(rng.choice(x.size, size=fd_entries, replace=False).tolist())
        note.append(f"{fd_entries:,} of {w}'s {x.size:,} entries, drawn (seed {seed})")
    fd_tol = max(FD_TOLERANCE, tol)
    ref_size = np.max(np.abs(np.where(np.isfinite(result), result, 0)), initial=0.0)
    scale = max(1.0, float(ref_size))
    d = central_differences(f, x, entries, atol=fd_tol * scale, room=room(domain, x))
    if domain is not None:
        note.append(f"steps kept inside {w}'s domain ({domain})")
    checked = np.broadcast_to(d.checked, d.value.shape[: d.value.ndim - x.ndim] + x.shape)
    reliable = checked & ~d.kink & (d.error <= fd_tol * scale / 10)
    while reliable.any():  # compare's scale is that of the entries compared: the same here
        finite = np.where(reliable & np.isfinite(d.value), np.abs(d.value), 0.0)
        within = reliable & (d.error <= fd_tol * max(1.0, float(finite.max())) / 10)
        if (within == reliable).all():
            break
        reliable = within
    kinks = checked & d.kink
    unsure = checked & ~reliable & ~kinks
    status, max_abs, max_rel, worst = compare(
        result, d.value, fd_tol, _namer(net, of, wrts), reliable
    )
    if kinks.any():
        where = _namer(net, of, wrts)(tuple(int(i) for i in np.argwhere(kinks)[0]))
        note.append(
            f"a kink within the step at {int(kinks.sum())} entr{'y' if kinks.sum() == 1 else 'ies'}"
            f" (first {where}): finite differences are unreliable there, and those entries"
            " are not compared"
        )
        if status == "pass":
            status = "kink"
    if unsure.any():
        note.append(
            f"{int(unsure.sum())} entr{'y' if unsure.sum() == 1 else 'ies'} not compared:"
            " their estimated error stays above"
            f" {sci(fd_tol / 10)} · max(1, |ref|)"
        )
        if not reliable.any() and not kinks.any():
            status, max_abs, max_rel = "not run", None, None  # nothing was compared
    return Row(
        title, label, status, max_abs, max_rel, worst,
        f"{sci(fd_tol)} · max(1, |ref|) where reliable",
        "; ".join(note), time.perf_counter() - start,
    ), kinks  # fmt: skip


def _namer(net: Computing, of: str, wrts: Sequence[str]) -> Callable[[tuple[int, ...]], str]:
    return lambda index: derivative_entry(net, of, wrts, index)
