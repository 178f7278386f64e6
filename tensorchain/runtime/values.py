"""Values: what a values dict must hold, which dtype the results get, and the
checks made before any work."""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.backend import as_value, astype, backend_of_values, namespace, numpy_dtype
from ..arrays.limits import format_bytes, get_memory_limit
from ..errors import MemoryLimitError, NonFiniteWarning, ShapeError, ValuesError, warn
from ..functions.registry import NOT_HOLOMORPHIC
from ..language.domains import check_domains, draw, drawn_note
from ..language.gather import as_positions, check_dtype, check_positions, draw_positions
from ..language.operations import Along, Map, Where, walk
from .leaves import leaf_shapes

if TYPE_CHECKING:
    from ..language.network_like import NetworkLike


def check_values(
    net: NetworkLike, values: Mapping[str, Any], strict: bool = False, check_finite: bool = True
) -> dict[str, np.ndarray]:
    """Names, dtypes and finiteness of ``values``, before any work.

    The common dtype is numpy's promotion of the floating and complex
    values (float32 stays float32, any complex value makes it complex);
    integer and boolean values take that dtype, float64 if every value is
    an integer. NaN warns (:class:`NonFiniteWarning`); an infinity is
    left to the check of the results (:mod:`tensorchain.runtime.finite`), as it may
    be meant (a mask's −inf); ``strict=True`` raises for either. A value
    outside the domain its declaration gives (``param s[n] positive``) is a
    :class:`ValuesError` naming the entry (numpy values; see
    :func:`tensorchain.language.domains.check_domains`). ``check_finite=False`` skips
    these passes over the values (as in scipy.linalg: faster, and NaN flows
    into the results unannounced)."""
    if strict and not check_finite:
        raise ValuesError(
            "strict=True refuses non-finite values, so it needs check_finite=True; pass one of them"
        )
    if not isinstance(values, Mapping):
        raise ValuesError(
            f"values must be a dict from tensor name to array, got {type(values).__name__}"
        )
    leaves = [t.name for t in net.tensors.values() if t.kind in ("input", "param")]
    for name in values:
        if name not in net.tensors:
            raise ValuesError(
                f"unknown tensor {name!r} in values; the inputs and params are {', '.join(leaves)}"
            )
        if net.tensors[name].kind not in ("input", "param"):
            raise ValuesError(
                f"{name!r} is computed by the network (line"
                f" {net.tensors[name].pos.line}); leave it out of the values"
            )
    missing = [n for n in leaves if n not in values]
    if missing:
        raise ValuesError(
            f"values are missing {', '.join(missing)}; net.random_values(...) makes"
            " a complete dict to start from"
        )
    backend = backend_of_values(values)
    arrays = {}
    for name in leaves:
        value = values[name]
        if backend != "numpy":
            arrays[name] = value  # kept on its library and device
            continue
        try:
            array = np.asarray(value)
        except (TypeError, ValueError) as err:  # ragged lists and the like
            raise ValuesError(f"the value of {name} is not an array: {err}") from None
        if array.dtype.kind not in "biufc":
            raise ValuesError(
                f"the value of {name} has dtype {array.dtype}; values must be"
                " numbers: real (integers are converted), float32, or complex"
            )
        arrays[name] = array
    dtypes = {}
    for name, a in arrays.items():
        try:
            dtypes[name] = numpy_dtype(a)
        except TypeError:  # bfloat16 and other types numpy has no name for
            dtypes[name] = None
        if dtypes[name] is None or dtypes[name].kind not in "biufc":
            raise ValuesError(
                f"the value of {name} has dtype {a.dtype}; values must be numbers numpy"
                " also has (integers, float32, float64, complex): convert it first,"
                " e.g. to float32"
            )
    inexact = [dt for dt in dtypes.values() if dt.kind in "fc"]
    dtype = np.result_type(*inexact) if inexact else np.dtype(np.float64)
    if dtype.kind == "f" and dtype.itemsize < 4:
        dtype = np.dtype(np.float32)  # float16 is computed in float32
    if dtype.kind == "c":
        check_holomorphic(net)
    out = {}
    indexes = net.indexes
    for name, array in arrays.items():
        if name in indexes:  # integer positions: checked against their dim's size later
            check_dtype(name, array, indexes[name])
            out[name] = array
            continue
        array = astype(array, dtype)
        if check_finite and not _finite(array):
            bad, nan = _count_non_finite(array), _count(array != array)
            plus, minus = _count(array == np.inf), _count(array == -np.inf)
            other = bad - nan - plus - minus  # complex infinities
            counts = ((nan, "NaN"), (plus, "+inf"), (minus, "-inf"), (other, "infinite"))
            message = (
                f"the value of {name} has {bad} non-finite entr{'y' if bad == 1 else 'ies'}"
                f" ({', '.join(f'{k} {what}' for k, what in counts if k)})"
            )
            if strict:
                raise ValuesError(message)
            # An infinity may be meant (an attention mask's −inf, which exp and
            # softmax make 0): the results are checked instead (finite.py),
            # except dask's, which are lazy.
            if nan or backend == "dask":
                warn(message + " (strict=True makes this an error)", NonFiniteWarning)
        out[name] = array
    if check_finite and backend == "numpy":
        check_domains(net, out)
    return out


def checked_values(
    net: NetworkLike, values: Mapping[str, Any], strict: bool = False, check_finite: bool = True
) -> dict[str, np.ndarray]:
    """:func:`check_values`, and every integer position within its dim (the
    values a network's call runs on)."""
    env = check_values(net, values, strict, check_finite)
    if net.indexes:  # every position within its dim
        sizes = net.sizes(env)
        for name, dim in net.indexes.items():
            check_positions(name, env[name], dim, sizes[dim])
            env[name] = as_positions(env[name])
    return env


def random_values(
    net: NetworkLike, seed: Any, memory_limit: int | None, dims: Any, given: dict[str, int]
) -> dict[str, np.ndarray]:
    """See :meth:`tensorchain.Network.random_values` (``dims``, ``given``: the
    sizes as given)."""
    if not isinstance(seed, int | np.integer) or isinstance(seed, bool) or seed < 0:
        raise ValuesError(f"the seed is a whole number of at least 0, got {seed!r}")
    sizes = net.sizes(dims=dims, **given)
    shapes = leaf_shapes(net, sizes)
    forecast_values(shapes, sizes, memory_limit)
    rng = np.random.default_rng(seed)
    indexes = net.indexes  # integer positions, drawn within their dim
    return {
        name: draw_positions(rng, shape, sizes[indexes[name]])
        if name in indexes
        else draw(net.tensors[name].domain, rng.standard_normal(shape), sizes)
        for name, shape in shapes.items()
    }


def check_vector(
    vector: Any,
    env: Mapping[str, Any],
    shape: tuple[int, ...],
    wrt: str,
    what: str,
    strict: bool = False,
    check_finite: bool = True,
) -> Any:
    """An extra array of a product (the vector of ``hvp`` or ``gnvp``), checked
    like the values: numbers, shaped like ``wrt``, finite, and not complex
    where the values are real; on the values' library, in their dtype."""
    try:
        vector = as_value(vector, env)
        dtype = numpy_dtype(vector)
    except (TypeError, ValueError) as err:
        raise ValuesError(f"the {what} vector is not an array of numbers: {err}") from None
    if dtype.kind not in "biufc":
        raise ValuesError(
            f"the {what} vector has dtype {dtype}; it must hold numbers, shaped like {wrt}"
        )
    if tuple(vector.shape) != shape:
        raise ShapeError(
            f"the vector has shape {tuple(vector.shape)} but {wrt} has shape {shape};"
            f" an {what} vector is shaped like wrt"
        )
    inexact = (numpy_dtype(a) for a in env.values() if numpy_dtype(a).kind in "fc")
    values_dtype = next(inexact, np.dtype(np.float64))  # not an index tensor's integers
    if dtype.kind == "c" and values_dtype.kind != "c":
        raise ValuesError(
            f"the {what} vector is complex but the values are real ({values_dtype}); the"
            " product is linear in the vector, so call it once with the real part and once"
            " with the imaginary part, or pass complex values"
        )
    if check_finite and not _finite(vector):
        message = f"the {what} vector has non-finite entries (NaN or infinity)"
        if strict:
            raise ValuesError(message)
        warn(message + " (strict=True makes this an error)", NonFiniteWarning)
    return astype(vector, values_dtype)


def read_npz(path: str, net: NetworkLike) -> dict[str, np.ndarray]:
    """The arrays of a .npz file, one per input or param of ``net`` named
    after it (never unpickled): a :class:`ValuesError` naming the file and
    the array for anything else."""
    advice = "save them with np.savez(path, x=..., W=...), one array per input or param"
    try:
        data = np.load(path, allow_pickle=False)
    except ValueError:  # not a .npz (numpy would unpickle it; never done here)
        raise ValuesError(
            f"cannot read values from {path}: it is not a .npz file of arrays; {advice}"
        ) from None
    if not hasattr(data, "files"):
        raise ValuesError(f"{path} holds one array, not one per tensor (a .npy file?); {advice}")
    leaves = [t.name for t in net.tensors.values() if t.kind in ("input", "param")]
    out = {}
    with data:
        for name in data.files:
            if name not in net.tensors or name not in leaves:
                what = "is computed by the network" if name in net.tensors else "names no tensor"
                raise ValuesError(
                    f"{path}: the array {name!r} {what}; the arrays are named after the"
                    f" inputs and params, {', '.join(leaves)}"
                )
            try:
                array = data[name]
            except (ValueError, OSError) as err:  # object arrays need pickle: refused
                raise ValuesError(
                    f"{path}: the array {name!r} cannot be read without unpickling it"
                    f" ({err}); save it as numbers, e.g. np.asarray({name}, dtype=float)"
                ) from None
            if array.dtype.kind not in "biufc":
                raise ValuesError(
                    f"{path}: the array {name!r} has dtype {array.dtype}; values are"
                    f" numbers (float64, float32, integers), e.g. np.asarray({name}, dtype=float)"
                )
            out[name] = array
    return out


def values_from_file(
    net: NetworkLike, path: str, seed: int = 0, dims: Mapping[str, int] | None = None
) -> tuple[dict[str, np.ndarray], str]:
    """The values in the .npz file ``path`` (:func:`read_npz`; their shapes
    and domains checked, a :class:`ValuesError` naming the file), the inputs
    and params it lacks drawn as ``net.random_values(seed)`` draws them, and
    a note that says which is which (``x, W from data.npz; b drawn: ...``)."""
    given = read_npz(path, net)
    indexes = net.indexes
    try:
        for name in (n for n in given if n in indexes):  # integers, then within their dim
            check_dtype(name, given[name], indexes[name])
        sizes = net.sizes(given, dims=dims or {})
        indexes = net.indexes
        for name in given.keys() & indexes.keys():  # integer positions, within their dim
            check_dtype(name, given[name], indexes[name])
            check_positions(name, given[name], indexes[name], sizes[indexes[name]])
        floats = {k: np.asarray(v, dtype=np.float64) for k, v in given.items() if k not in indexes}
        check_domains(net, floats)
    except (ShapeError, ValuesError) as err:
        raise ValuesError(f"{path}: {err}") from None
    names = [
        t.name for t in net.tensors.values() if t.kind in ("input", "param") and t.name not in given
    ]
    note = f"{', '.join(given) or 'none'} from {path}"
    if not names:
        return given, note
    drawn = net.random_values(seed=seed, dims=sizes)
    note += f"; {', '.join(names)} drawn: {drawn_note(net, seed, names)}"
    return {**given, **{k: drawn[k] for k in names}}, note


def forecast_values(
    shapes: Mapping[str, tuple[int, ...]],
    sizes: Mapping[str, int],
    memory_limit: int | None = None,
    itemsize: int = 8,
) -> None:
    """Refuse values of these shapes (to be drawn or made) whose bytes exceed
    the memory limit, with :class:`MemoryLimitError`, before any allocation."""
    need = {name: math.prod(shape) * itemsize for name, shape in shapes.items()}
    total = sum(need.values())
    limit = get_memory_limit(memory_limit)
    if total <= limit:
        return
    largest = max(need, key=need.__getitem__)
    dims = ", ".join(f"{d}={s}" for d, s in sizes.items())
    raise MemoryLimitError(
        f"the values would need {format_bytes(total)} in all (the largest, {largest} of"
        f" shape {shapes[largest]}, {format_bytes(need[largest])}), more than the memory"
        f" limit of {format_bytes(limit)}; use smaller sizes than {dims}, or raise the"
        " limit with memory_limit= or tc.set_memory_limit",
        total,
        limit,
    )


def _finite(array: Any) -> bool:
    """Whether every entry is finite: one sum, the rare non-finite sum rechecked."""
    if isinstance(array, np.ndarray):
        with np.errstate(over="ignore", invalid="ignore"):  # inf - inf, or a sum past 1e308
            total = array.sum()
        return bool(np.isfinite(total) or np.isfinite(array).all())
    xp = namespace(array)
    try:
        return bool(xp.isfinite(xp.sum(array))) or bool(xp.all(xp.isfinite(array)))
    except TypeError:  # a traced value (inside jax.jit): no number to check yet
        return True


def _count(mask: Any) -> int:
    """The number of true entries of a boolean array of any library."""
    if isinstance(mask, np.ndarray | np.generic):
        return int(np.count_nonzero(mask))
    xp = namespace(mask)
    return int(xp.sum(xp.astype(mask, xp.int64)))


def _count_non_finite(array: Any) -> int:
    if isinstance(array, np.ndarray):
        return int(array.size - np.isfinite(array).sum())
    xp = namespace(array)
    return int(xp.sum(xp.astype(~xp.isfinite(array), xp.int64)))


#: Functions along indices with no complex derivative (log |det| is real;
#: the Cholesky factor is of a Hermitian matrix, not a holomorphic function).
NOT_HOLOMORPHIC_ALONG = ("max", "min", "logdet", "cholesky")


def check_holomorphic(net: NetworkLike) -> None:
    """Refuse complex values for a network with a function that has no complex derivative."""
    for stmt in net.statements:
        for node in walk(stmt.root):
            if isinstance(node, Where):
                raise ValuesError(
                    f"complex values: a selection (where, maximum, minimum, clip; line"
                    f" {stmt.pos.line}) compares numbers, which complex values cannot be;"
                    " use real values with this network"
                )
            along = isinstance(node, Along) and node.func in NOT_HOLOMORPHIC_ALONG
            if along or (isinstance(node, Map) and node.func in NOT_HOLOMORPHIC):
                raise ValuesError(
                    f"complex values: {node.func} (line {stmt.pos.line}) has no complex"
                    " derivative; tensorchain differentiates complex values as"
                    " holomorphic functions, so use real values with this network"
                )
