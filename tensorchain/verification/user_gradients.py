"""The user's gradient function as :func:`tensorchain.check_gradient` calls it:
the values handed to it as numpy, torch or JAX arrays, and what it returns
read back as numpy gradients by name (a dict, a sequence in ``wrt`` order, or
one array), with a clear error for anything else.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..errors import ValuesError

LIBRARIES = ("numpy", "torch", "jax")


def require(library: str) -> None:
    """A ValuesError when ``library`` (torch or jax) is not installed."""
    import importlib.util

    if library != "numpy" and importlib.util.find_spec(library) is None:
        raise ValuesError(
            f"library={library!r} passes {library} arrays to your function, but {library} is"
            f" not installed here; install it (pip install {library}) or pass numpy arrays"
            " (library='numpy')"
        )


def to_library(values: Mapping[str, np.ndarray], library: str) -> dict[str, Any]:
    arrays = {k: np.array(v) for k, v in values.items()}  # copies: the user may write to them
    if library == "torch":
        import torch

        return {k: torch.from_numpy(v) for k, v in arrays.items()}
    if library == "jax":
        import jax.numpy as jnp

        return {k: jnp.asarray(v) for k, v in arrays.items()}
    return arrays


def to_numpy(array: Any, what: str = "") -> np.ndarray:
    if hasattr(array, "detach"):  # torch, possibly requiring grad or on a device
        array = array.detach().cpu().numpy()
    try:
        return np.asarray(array)
    except (ValueError, TypeError) as err:
        raise ValuesError(
            f"{what or 'an array'} is not an array of numbers ({type(array).__name__}:"
            f" {str(err).splitlines()[0]}); return one numpy, torch or JAX array per tensor"
        ) from None


def numpy_gradients(result: Any) -> Any:
    """The user's result with its arrays as numpy arrays (read inside a JAX x64 context)."""
    if isinstance(result, Mapping):
        return {k: to_numpy(v) for k, v in result.items()}
    if isinstance(result, list | tuple):
        return [to_numpy(v) for v in result]
    return to_numpy(result)


def gradients(
    result: Any, wrts: Sequence[str], tensors: Mapping[str, Any]
) -> dict[str, np.ndarray]:
    """The user's gradients by name: a dict, one array (one wrt), or a sequence
    in wrt order; ``tensors`` are the network's, by name."""
    if isinstance(result, Mapping):
        unknown = [k for k in result if k not in tensors]
        if unknown:
            raise ValuesError(
                f"your function returned a gradient for {unknown[0]!r}, which the network"
                f" does not have; its tensors are {', '.join(tensors)}"
            )
        missing = [w for w in wrts if w not in result]
        if missing:
            raise ValuesError(
                f"your function returned no gradient for {', '.join(missing)} (it returned"
                f" {', '.join(map(str, result)) or 'an empty dict'}); return a dict with"
                f" every tensor checked: {', '.join(wrts)}"
            )
        return {w: to_numpy(result[w], f"your gradient by {w}") for w in wrts}
    if isinstance(result, list | tuple):
        if len(result) != len(wrts):
            raise ValuesError(
                f"your function returned {len(result)} gradients for {len(wrts)} tensors"
                f" ({', '.join(wrts)}); return one per tensor, in that order, or a dict"
            )
        return {w: to_numpy(g, f"your gradient by {w}") for w, g in zip(wrts, result, strict=True)}
    if len(wrts) == 1:
        return {wrts[0]: to_numpy(result, f"your gradient by {wrts[0]}")}
    raise ValuesError(
        f"your function returned one {type(result).__name__} for {len(wrts)} tensors;"
        f" return a dict from name to gradient ({', '.join(wrts)})"
    )
