"""What the layers below the facade may ask of a network (typing only).

:class:`tensorchain.Network` is the facade at the top of the package; the
modules below it take a network as an argument but never import it. They
name one of these protocols instead, each the part of a network that its
users read:

- :class:`NetworkLike`: the declarations and lowered statements, sizes and
  values (the language, the reference, the runtime's checks);
- :class:`Differentiable`: that and the forward pass and the chain rule
  (calculus products, compiled programs, plans, derivations);
- :class:`Computing`: that and the calls a user makes (``grad``,
  ``evaluate``, ``derivative``, ``plan``...), which verification checks,
  the reports show and an exploration compares.

Results whose types live in a higher layer (a ``Forward``, a
``ChainResult``, a ``LabeledTensor``) are typed ``Any`` here: this module
imports nothing of the package.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, Protocol, runtime_checkable


@runtime_checkable
class NetworkLike(Protocol):
    """A parsed network: its declarations, lowered statements and sizes."""

    program: Any  # the syntax tree (tensorchain.language.syntax.Program)
    dims: dict[str, int | None]  # each declared dim, with its spec size (None: open)
    derived: dict[str, Any]  # dims of merged and concatenated axes
    tensors: dict[str, Any]  # name -> TensorInfo, in the order of declaration
    statements: list[Any]  # the lowered statements, in order
    label_dims: dict[str, dict[str, str]]  # per statement: each label's dim

    @property
    def axes(self) -> Mapping[str, tuple[str, ...]]: ...

    @property
    def indexes(self) -> Mapping[str, str]: ...

    @property
    def inputs(self) -> list[str]: ...

    @property
    def params(self) -> list[str]: ...

    def info(self, name: str) -> Any: ...

    def statement(self, target: str) -> Any: ...

    def label_sizes(self, target: str, sizes: Mapping[str, int]) -> dict[str, int]: ...

    def sizes(
        self,
        values: Mapping[str, Any] | None = None,
        *,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, int]: ...

    def random_values(
        self,
        seed: int = 0,
        *,
        memory_limit: int | None = None,
        dims: Mapping[str, int] | None = None,
        **sizes: int,
    ) -> dict[str, Any]: ...

    def _check_values(
        self, values: Mapping[str, Any], strict: bool = False, check_finite: bool = True
    ) -> dict[str, Any]: ...


@runtime_checkable
class Differentiable(NetworkLike, Protocol):
    """A network that evaluates and runs the chain rule (and caches the
    graphs of its derivatives and its compiled programs)."""

    _cache: Any  # compiled programs by (kind, of, wrt, sizes, dtype): an LRUCache
    _hot: Any  # per call's arguments, the programs the last such calls used
    _graphs: Any  # derivatives' graphs by (of, wrt), for any sizes

    def forward(self, values: Mapping[str, Any]) -> Any: ...

    def run_forward(
        self, env: dict[str, Any], sizes: dict[str, int], structured: bool = False
    ) -> Any: ...

    def local_jacobians(self, target: str, forward: Any) -> dict[str, Any]: ...

    def derivatives(
        self,
        of: str,
        wrt: Sequence[str],
        values: Any,
        structured: bool = False,
        mode: str = "reverse",
    ) -> Any: ...

    def derivative_graph(self, of: str, wrt: Sequence[str]) -> tuple[Any, str | None]: ...


@runtime_checkable
class Computing(Differentiable, Protocol):
    """A network with the calls a user makes: what verification checks and
    the reports show."""

    def evaluate(self, values: Mapping[str, Any], **options: Any) -> dict[str, Any]: ...

    def grad(
        self, of: str, wrt: Any = None, values: Mapping[str, Any] | None = None, **options: Any
    ) -> dict[str, Any]: ...

    def jacobian(self, of: str, wrt: Any, values: Mapping[str, Any], **options: Any) -> Any: ...

    def derivative(self, of: str, wrt: Any, values: Mapping[str, Any], **options: Any) -> Any: ...

    def hessian(
        self, of: str, wrt: str, values: Mapping[str, Any], wrt2: str | None = None, **options: Any
    ) -> Any: ...

    def plan(self, of: str, wrt: str, order: Any = "optimal", **options: Any) -> Any: ...

    def with_sizes(self, dims: Mapping[str, int] | None = None, **sizes: int) -> Computing: ...
