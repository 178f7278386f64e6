"""Array backends: numpy, or torch, jax, cupy and dask arrays through the array API.

Values of one call come from one array library (its *backend*); every array
operation tensorchain runs on them is that library's own, found through
``array_api_compat`` (the namespace of the standard's functions; JAX's own
``jax.numpy`` is one already) and, for contraction steps that are no matrix
product, opt_einsum's backend dispatch, so results come back as the same
kind of array, on the same device. numpy needs neither: its arrays take the
code paths written for numpy.

The backend of a computation is known from its values; steps that have no
array argument (a constant, a broadcast scalar) take the *active* backend,
set with :func:`using` while a program is traced or replayed.
"""

from __future__ import annotations

import contextlib
import functools
import importlib
from collections.abc import Iterator, Mapping, Sequence
from contextvars import ContextVar
from typing import Any

import numpy as np

from ..errors import ValuesError

#: Array libraries by the top-level module their array types live in.
LIBRARIES = {"torch": "torch", "jax": "jax", "jaxlib": "jax", "cupy": "cupy", "dask": "dask"}

_ACTIVE: ContextVar[tuple[str, Any]] = ContextVar("tensorchain_backend", default=("numpy", None))


def backend_of(value: Any) -> str:
    """The array library ``value`` comes from: "numpy" for numpy arrays,
    Python numbers and lists, else "torch", "jax", "cupy" or "dask".

    Example:
        >>> import numpy as np
        >>> backend_of(np.ones(2)), backend_of(1.5)
        ('numpy', 'numpy')
    """
    return LIBRARIES.get(type(value).__module__.split(".")[0], "numpy")


def backend_of_values(values: Mapping[str, Any]) -> str:
    """The one backend of ``values``; values from two libraries raise a
    :class:`ValuesError` naming both."""
    seen: dict[str, str] = {}
    for name, value in values.items():
        seen.setdefault(backend_of(value), name)
        if len(seen) > 1:
            (b1, n1), (b2, n2) = list(seen.items())[:2]
            raise ValuesError(
                f"values mix array libraries: {n1} is a {b1} array but {n2} is a {b2}"
                " array; pass every value of one call from the same library"
            )
    return next(iter(seen), "numpy")


@functools.cache
def xp_of(backend: str) -> Any:
    """The array-API namespace of ``backend``: numpy and ``jax.numpy`` as
    they are, torch, cupy and dask through array_api_compat."""
    if backend == "numpy":
        return np
    if backend == "jax":
        return importlib.import_module("jax.numpy")
    try:
        return importlib.import_module(
            f"array_api_compat.{backend}" + (".array" if backend == "dask" else "")
        )
    except ImportError:
        raise ValuesError(
            f"{backend} values need array-api-compat; install the extra:"
            f" pip install 'tensorchain[{backend}]'"
        ) from None


@contextlib.contextmanager
def using(backend: str, device: Any = None) -> Iterator[None]:
    """Make ``backend`` (arrays on ``device``) the active one inside the block."""
    token = _ACTIVE.set((backend, device))
    try:
        yield
    finally:
        _ACTIVE.reset(token)


def constant(array: np.ndarray) -> Any:
    """A numpy array made by a step with no array argument, on the active
    backend and device."""
    backend, device = _ACTIVE.get()
    return to_backend(array, backend, device)


def namespace(*arrays: Any) -> Any:
    """The namespace for an operation on ``arrays``: the first non-numpy
    array's library, else the active backend's (numpy by default)."""
    for a in arrays:
        if not isinstance(a, np.ndarray | np.generic | float | int | complex):
            return xp_of(backend_of(a))
    return xp_of(_ACTIVE.get()[0])


def is_numpy(*arrays: Any) -> bool:
    """Whether an operation on ``arrays`` runs on numpy."""
    return namespace(*arrays) is np


def numpy_dtype(array: Any) -> np.dtype:
    """The numpy dtype matching ``array``'s (``torch.float32`` → ``float32``)."""
    dtype = array.dtype
    if isinstance(dtype, np.dtype):
        return dtype
    return np.dtype(str(dtype).rsplit(".", 1)[-1])


def backend_dtype(xp: Any, dtype: np.dtype) -> Any:
    """``dtype`` as ``xp`` names it."""
    return dtype if xp is np else getattr(xp, dtype.name)


def device_of(array: Any) -> Any:
    """The device ``array`` lives on (None for numpy, and for JAX and dask,
    whose constants go to their default device)."""
    if backend_of(array) in ("numpy", "jax", "dask"):
        return None
    import array_api_compat

    return array_api_compat.device(array)


def to_backend(array: np.ndarray, backend: str, device: Any = None) -> Any:
    """A numpy constant as an array of ``backend`` on ``device``."""
    if backend == "numpy":
        return array
    xp = xp_of(backend)
    if backend in ("jax", "dask"):
        return xp.asarray(array)
    if not array.flags.writeable:  # a broadcast view: torch wants its own copy
        array = np.array(array)
    return xp.asarray(array, device=device)


def astype(array: Any, dtype: np.dtype) -> Any:
    """``array`` in ``dtype`` (a numpy dtype), on its own backend; no copy if it has it."""
    if isinstance(array, np.ndarray | np.generic | float | int | complex):
        return np.asarray(array).astype(dtype, copy=False)
    xp = namespace(array)
    target = backend_dtype(xp, dtype)
    return array if array.dtype == target else xp.astype(array, target)


def common(arrays: Sequence[Any]) -> tuple[str, list[Any]]:
    """The library of the first non-numpy array (else the active one), and
    ``arrays`` with every numpy array or number (a constant) moved to it, on
    that array's device."""
    plain = np.ndarray | np.generic | float | int | complex
    first = next((a for a in arrays if not isinstance(a, plain)), None)
    library, device = _ACTIVE.get() if first is None else (backend_of(first), device_of(first))
    return library, [
        to_backend(np.asarray(a), library, device) if isinstance(a, plain) else a for a in arrays
    ]


def copy(array: Any) -> Any:
    """A new array with ``array``'s entries (numpy: writable and C-ordered)."""
    if isinstance(array, np.ndarray):
        return array.copy()
    return namespace(array).asarray(array, copy=True)


def as_value(value: Any, values: Mapping[str, Any]) -> Any:
    """An extra input (a vector, a bound) on the library and device of ``values``."""
    first = next(iter(values.values()), None)
    library = backend_of(first)
    if backend_of(value) == library:
        return value if library != "numpy" else np.asarray(value)
    return to_backend(np.asarray(value), library, device_of(first))


def zeros_like_values(shape: tuple[int, ...], values: Mapping[str, Any]) -> Any:
    """Zeros of ``shape`` and the values' dtype (of their numbers: an index
    tensor's integers do not count), on their library and device."""
    first = next(iter(values.values()), None)
    dtypes = (numpy_dtype(v) for v in values.values() if hasattr(v, "dtype"))
    dtype = next((d for d in dtypes if d.kind in "fc"), np.dtype(np.float64))
    zeros = np.zeros(shape, dtype=dtype)
    return to_backend(zeros, backend_of(first), device_of(first))


def to_numpy(value: Any) -> Any:
    """``value`` as numpy (a torch tensor leaves its device, a dask array is
    computed); numpy arrays, numbers and lists as they are."""
    library = backend_of(value)
    if library == "numpy":
        return value
    if library == "torch":
        return value.detach().cpu().numpy()
    if library == "cupy":
        return value.get()
    return np.asarray(value)  # jax, dask
