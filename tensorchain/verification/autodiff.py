"""JAX's and PyTorch's autodiff of the same network, as references of
``net.verify``: ``jax.jacrev``/``jacfwd`` and
``torch.autograd.functional.jacobian`` of :meth:`Network.evaluate` run on
their arrays, JAX in 64-bit floats (:func:`x64`); and why a library could not
differentiate a network.
"""

from __future__ import annotations

import contextlib
import importlib.util
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import TensorchainError
from ..language.operations import Map, walk

if TYPE_CHECKING:
    from ..language.network_like import Computing


@contextlib.contextmanager
def x64(jax: Any) -> Iterator[None]:
    """JAX with 64-bit floats for the duration, the user's setting restored."""
    if hasattr(jax, "enable_x64"):
        with jax.enable_x64(True):
            yield
        return
    from jax.experimental import enable_x64  # jax < 0.6

    with enable_x64():
        yield


def jax_derivative(net: Computing, of: str, wrts: Sequence[str], values: dict) -> np.ndarray:
    import jax

    with x64(jax):
        jnp = jax.numpy
        env = {k: jnp.asarray(v) for k, v in values.items()}
        names = list(dict.fromkeys(wrts))

        def f(*args: Any) -> Any:
            return net.evaluate({**env, **dict(zip(names, args, strict=True))}, check_finite=False)[
                of
            ]

        g = jax.jacrev(f, argnums=names.index(wrts[0]))
        for w in wrts[1:]:
            g = jax.jacfwd(g, argnums=names.index(w))
        # jit: one XLA compilation, ten times faster here than compiling each
        # operation for its shapes as eager JAX does
        return np.asarray(jax.jit(g)(*(env[n] for n in names)), dtype=np.float64)


def torch_derivative(net: Computing, of: str, wrts: Sequence[str], values: dict) -> np.ndarray:
    import torch
    from torch.autograd.functional import jacobian

    env = {
        k: torch.tensor(v) if k in net.indexes else torch.tensor(v, dtype=torch.float64)
        for k, v in values.items()
    }
    k = len(wrts)

    def level(i: int) -> Callable[[dict], Any]:
        """The derivative by wrts[:i] as a function of the values."""
        if i == 0:
            return lambda e: net.evaluate(e, check_finite=False)[of]
        inner, w = level(i - 1), wrts[i - 1]
        return lambda e: jacobian(
            lambda t: inner({**e, w: t}), e[w], create_graph=i < k, vectorize=False
        )

    return level(k)(env).detach().numpy()


def installed(name: str) -> bool:
    return importlib.util.find_spec(name) is not None


def library_failed(net: Computing, library: str, err: Exception) -> str:
    """Why ``library`` could not differentiate ``net``: its error, first line,
    and the registered functions it most likely comes from."""
    from ..language.user_functions import USER_FUNCTIONS

    first = (str(err).strip().splitlines() or [""])[0]
    if isinstance(err, TensorchainError):
        return f"with {library}'s arrays: {first}"
    said = f"{library} raised {type(err).__name__}" + (f": {first}" if first else "")
    used = sorted(
        {
            node.func.rstrip("'")
            for stmt in net.statements
            for node in walk(stmt.root)
            if isinstance(node, Map) and node.func.rstrip("'") in USER_FUNCTIONS
        }
    )
    if not used:
        return f"{said} (a fault of tensorchain's: please report it)"
    return (
        f"{said}; most likely {', '.join(used)} (registered with tc.register_function)"
        f" computes with numpy, which {library}'s traced arrays do not enter: write f, df"
        f" and d2f with operators, or with numpy functions registered as they are"
        f" (np.tanh, not a def calling np.tanh), to check against {library}"
    )
