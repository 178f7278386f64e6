"""The independent reference for derivatives of every order: dense jets.

For derivatives by ``w_1 … w_k`` every tensor ``T`` of the network carries,
for each subset ``S`` of ``{1 … k}``, the dense mixed partial derivative
``∂_S T`` of shape ``T.shape + w_i.shape for i in S`` (``∂_∅ T`` is ``T``'s
value). They are computed operation by operation, forward from the inputs,
with dense arrays, ``np.einsum`` and reshapes and three rules only:

* linearity: sums, broadcasts and reductions act on every ``∂_S`` alike;
* the general Leibniz rule for a product: ``∂_S (A·B) = Σ ∂_{S₁}A · ∂_{S₂}B``
  over the splits of ``S`` between the factors;
* Faà di Bruno's formula for an elementwise ``f``:
  ``∂_S f(g) = Σ_π f^{(|π|)}(g) Π_{B ∈ π} ∂_B g`` over the set partitions
  ``π`` of ``S``. For k = 2 this is the second-order chain rule
  ``J₁ᵀ f'' J₂ + f' · H`` of each operation, with the matrices materialised.

Functions along indices are written as compositions (``logsumexp(x) = m +
log Σ exp(x − m)`` with ``m = max x`` held constant, which is exact since the
value does not depend on ``m``; ``softmax = exp(x − logsumexp x)``), and the
k-th derivatives of elementwise functions come from this module's own table
(erf by the C library's ``math.erf``, its derivatives by Hermite
polynomials). A selection (``where``, ``maximum``) is ``w a + (1 − w) b``
with its weight ``w``, written here from its definition, held constant.
It shares no code with the chain rule, the derivative rules, the function
registry or :mod:`tensorchain.calculus.differentiate`, so that it can catch their
faults (a function a user registered has only the user's own derivatives);
it reads only the lowered statements. It is meant for small sizes:
``∂_S`` of every operation is held dense. The rules are in
:mod:`tensorchain.reference.jet_algebra`, the matrix functions' jets in
:mod:`tensorchain.reference.matrix_jets`; this module reads the network and
takes each operation to its rule.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from typing import Any, Protocol

import numpy as np

from ..arrays.backend import to_numpy
from ..arrays.limits import format_bytes, get_memory_limit
from ..errors import DerivativeError, MemoryLimitError, ValuesError
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Map,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Solve,
    Sum,
    Where,
    walk,
)
from . import matrix_jets
from .constants import reindex_values, shift_values
from .functions import NOT_HOLOMORPHIC
from .jet_algebra import Jet, Jets, compose, product, select, sum_jets


class LoweredNetwork(Protocol):
    """What the reference reads of a network: its tensors (``name``, ``kind``,
    ``dims``, ``shift``, ``index``), the lowered statements in order, and the
    dim of every label of every statement (a :class:`tensorchain.Network`, or
    a derivative's graph)."""

    tensors: Mapping[str, Any]
    statements: Sequence[Any]
    label_dims: Mapping[str, Mapping[str, str]]


def _reindex_sizes(net: LoweredNetwork, sizes: dict[str, int]) -> None:
    """The sizes of merged and concatenated axes (the product or sum of their
    parts' sizes), and of a part only they determine."""
    found = []
    for stmt in net.statements:
        dims = net.label_dims[stmt.target]
        for node in walk(stmt.root):
            if isinstance(node, Reindex) and node.kind != "range":
                inner = node.labels[1:] if node.kind == "group" else node.parts
                found.append((node.kind, dims[node.labels[0]], [dims[lab] for lab in inner]))
    changed = True
    while changed:
        changed = False
        for kind, outer, inner in found:
            combine = math.prod if kind == "group" else sum
            missing = [d for d in inner if d not in sizes]
            if not missing and outer not in sizes:
                sizes[outer], changed = combine(sizes[d] for d in inner), True
            elif len(set(missing)) == 1 and outer in sizes and inner.count(missing[0]) == 1:
                rest = combine(sizes[d] for d in inner if d in sizes)
                sizes[missing[0]] = sizes[outer] // rest if kind == "group" else sizes[outer] - rest
                changed = True


def reference_derivative(
    net: LoweredNetwork,
    of: str,
    wrt: str | Sequence[str],
    values: Mapping[str, Any],
    memory_limit: int | None = None,
) -> np.ndarray:
    """``∂ᵏ of / ∂wrt[0] … ∂wrt[k-1]`` as a dense array of shape
    ``of.shape + wrt[0].shape + …``, computed by dense jets (see the module):
    the independent reference for derivatives of every order, for small sizes.
    With an empty ``wrt`` it is ``of``'s value (order 0), computed by the
    reference's own evaluation.

    Its largest array is forecast first and refused (:class:`MemoryLimitError`)
    if it exceeds ``memory_limit`` (bytes; default: the limit in force).

    Example:
        >>> import tensorchain as tc
        >>> net = tc.parse("dim n = 2\\ninput x[n]\\nf = sum(x ^ 3)")
        >>> tc.reference_derivative(net, "f", ("x", "x"), {"x": [1.0, 2.0]})
        array([[ 6.,  0.],
               [ 0., 12.]])
    """
    wrts = [wrt] if isinstance(wrt, str) else list(wrt)
    for name in (of, *wrts):
        if name not in net.tensors:
            raise DerivativeError(
                f"unknown tensor {name!r}; this network has {', '.join(net.tensors)}"
            )
    env = _checked(net, values)
    positions = {t.name: t.index for t in net.tensors.values() if t.index is not None}
    for w in wrts:
        if w in positions:
            raise DerivativeError(
                f"a derivative by {w} is not defined: {w} holds integer positions along"
                f" {positions[w]}"
            )
    numbers = [v for name, v in env.items() if name not in positions]
    given = np.result_type(*numbers) if numbers else np.dtype(np.float64)
    if given.kind == "c":
        _holomorphic(net)
    dtype = np.promote_types(given, np.float64)  # computed wide, returned as given
    if given.kind not in "fc":
        given = np.dtype(np.float64)
    env = {name: np.asarray(v, dtype=dtype) for name, v in env.items()}
    sizes: dict[str, int] = {}
    for t in net.tensors.values():
        if t.kind in ("input", "param"):
            sizes.update(zip(t.dims, env[t.name].shape, strict=True))
    for d, n in getattr(net, "dims", {}).items():  # a spec's sizes, where no value gives one
        if n is not None and d not in sizes:
            sizes[d] = n
    for t in net.tensors.values():
        if t.kind == "shift":
            P, K, T = t.dims
            if P not in sizes:
                sizes[P] = (sizes[T] + 2 * t.shift[1] - sizes[K]) // t.shift[0] + 1
    _reindex_sizes(net, sizes)
    for name, dim in positions.items():  # integers, each a position of its dim
        ids, size = np.asarray(to_numpy(values[name])), sizes.get(dim)
        if ids.dtype.kind not in "iu" or (size and not np.all((ids >= 0) & (ids < size))):
            within = f" from 0 to {size - 1}" if size else ""
            raise ValuesError(f"{name} holds positions along {dim}: integers{within}")
    shapes = {name: tuple(sizes[d] for d in net.tensors[name].dims) for name in net.tensors}
    total = math.prod(math.prod(shapes[w]) for w in wrts)
    largest = max(math.prod(s) for s in shapes.values()) * total * dtype.itemsize
    limit = get_memory_limit(memory_limit)
    if 4 * largest > limit:  # a few such arrays at once
        raise MemoryLimitError(
            f"the reference holds every operation's derivatives dense, here arrays of up"
            f" to {format_bytes(largest)}, and a few of them at once exceed the memory"
            f" limit of {format_bytes(limit)}: use smaller sizes (it is meant for small"
            " ones) or check against finite differences",
            4 * largest,
            limit,
        )
    jets = Jets(wrts, shapes)

    def variable(name: str, jet: Jet) -> Jet:
        """A tensor differentiated by is a variable of its own: ∂ by it is the
        identity, whatever it is computed from (the chain rule's meaning of a
        derivative by an intermediate tensor)."""
        mine = frozenset(i for i, w in enumerate(wrts) if w == name)
        if not mine:
            return jet
        jet = {s: a for s, a in jet.items() if not s & mine}
        eye = np.eye(math.prod(shapes[name]), dtype=dtype).reshape(shapes[name] * 2)
        jet.update((frozenset([i]), eye) for i in mine)
        return jet

    tensors: dict[str, Jet] = {}
    for t in net.tensors.values():
        if t.kind in ("input", "param"):
            tensors[t.name] = variable(t.name, {frozenset(): env[t.name]})
        elif t.kind == "shift":
            tensors[t.name] = {frozenset(): shift_values(*shapes[t.name], *t.shift)}
    for stmt in net.statements:
        label_sizes = {lab: sizes[d] for lab, d in net.label_dims[stmt.target].items()}
        jet = variable(stmt.target, _node(stmt.root, tensors, label_sizes, jets))
        tensors[stmt.target] = jet
        if stmt.target == of:
            break
    full = frozenset(range(len(wrts)))
    out = tensors[of].get(full)
    if out is None:
        return np.zeros(shapes[of] + jets.d_shape(full), dtype=given)
    return np.asarray(out, dtype=given)


#: Functions along indices the reference refuses for complex values (its
#: elementwise ones are in :data:`tensorchain.reference.functions.NOT_HOLOMORPHIC`).
NOT_HOLOMORPHIC_ALONG = ("max", "min", "logdet", "cholesky")


def _holomorphic(net: LoweredNetwork) -> None:
    """Complex values only through functions with a complex derivative."""
    refused = (*NOT_HOLOMORPHIC, *NOT_HOLOMORPHIC_ALONG)
    for stmt in net.statements:
        stack = [stmt.root]
        while stack:
            node = stack.pop()
            if isinstance(node, Where):
                raise ValuesError(
                    f"complex values: a selection (line {stmt.pos.line}) compares numbers,"
                    " which complex values cannot be; the reference refuses them"
                )
            if isinstance(node, Map | Along) and node.func in refused:
                raise ValuesError(
                    f"complex values: {node.func} (line {stmt.pos.line}) has no complex"
                    " derivative; the reference differentiates holomorphic functions only"
                )
            stack.extend(getattr(node, "factors", ()))
            stack.extend(t for _, t in getattr(node, "terms", ()))
            stack.extend(x for x in (getattr(node, "arg", None),) if x is not None)
            if isinstance(node, Solve):
                stack.extend((node.matrix, node.rhs))
            if isinstance(node, Where):
                stack.extend((node.left, node.right, node.a, node.b))


def _checked(net: LoweredNetwork, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
    """The values of every input and param, as numpy arrays of numbers."""
    if not isinstance(values, Mapping):
        raise ValuesError(
            f"values must be a dict from tensor name to array, got {type(values).__name__}"
        )
    leaves = [t.name for t in net.tensors.values() if t.kind in ("input", "param")]
    unknown = [name for name in values if name not in leaves]
    if unknown:
        raise ValuesError(
            f"{unknown[0]!r} in values is not an input or param of the network; the inputs"
            f" and params are {', '.join(leaves)}"
        )
    missing = [name for name in leaves if name not in values]
    if missing:
        raise ValuesError(f"values are missing {', '.join(missing)}")
    out = {}
    for name in leaves:
        array = np.asarray(to_numpy(values[name]))
        if array.dtype.kind not in "biufc":
            raise ValuesError(
                f"the value of {name} has dtype {array.dtype}; values must be numbers"
            )
        out[name] = array
    return out


def _node(node: Node, tensors: dict[str, Jet], sizes: dict[str, int], jets: Jets) -> Jet:
    """The jet of ``node``, axes ``node.labels`` then the derivative axes."""
    if isinstance(node, Leaf):  # a repeated label (a diagonal) is a product's factor
        return tensors[node.name]
    if isinstance(node, Const):
        return {frozenset(): np.asarray(node.value)}
    if isinstance(node, Size):
        return {frozenset(): np.asarray(float(sizes[node.key]))}
    if isinstance(node, Delta):
        return {frozenset(): np.eye(sizes[node.labels[0]])}
    if isinstance(node, Select):  # the one-hot, written out: 1 where the position is v
        if isinstance(node.index, int):
            ids = np.asarray(node.index)
        else:
            ids = np.asarray(tensors[node.index][frozenset()]).astype(np.int64)
        hot = np.zeros((*ids.shape, sizes[node.labels[-1]]))
        for at in np.ndindex(ids.shape):
            hot[(*at, int(ids[at]))] = 1.0
        return {frozenset(): hot}
    if isinstance(node, Reindex):
        return {frozenset(): reindex_values(node, sizes)}
    if isinstance(node, Product):
        return product(node, [_node(f, tensors, sizes, jets) for f in node.factors], sizes, jets)
    if isinstance(node, Sum):
        return sum_jets(node, [_node(t, tensors, sizes, jets) for _, t in node.terms], sizes, jets)
    if isinstance(node, Map):
        return compose(node.func, _node(node.arg, tensors, sizes, jets), node.param, jets)
    if isinstance(node, Where):
        kids = (node.left, node.right, node.a, node.b)
        return select(node, [_node(k, tensors, sizes, jets) for k in kids], sizes, jets)
    if isinstance(node, Solve):
        a, b = (_node(c, tensors, sizes, jets) for c in (node.matrix, node.rhs))
        return matrix_jets.solve(node, a, b, jets)
    assert isinstance(node, Along)
    if node.func in matrix_jets.MATRIX:
        return matrix_jets.matrix(node, _node(node.arg, tensors, sizes, jets), jets)
    return _along(node, _node(node.arg, tensors, sizes, jets), sizes, jets)


def _along(node: Along, x: Jet, sizes, jets: Jets) -> Jet:
    labels = node.arg.labels
    rest = tuple(lab for lab in labels if lab not in node.axes)
    value = x[frozenset()]
    axes = tuple(labels.index(lab) for lab in node.axes)
    if node.func in ("max", "min", "max_share", "min_share"):
        top = value.max(axis=axes) if node.func.startswith("max") else value.min(axis=axes)
        hit = (value == np.expand_dims(top, axes)).astype(float)
        share = hit / hit.sum(axis=axes, keepdims=True)
        if node.func.endswith("share"):
            return {frozenset(): share}
        # Locally max(x) = Σ share · x with the share held constant.
        out: Jet = {frozenset(): top}
        for subset, a in x.items():
            if subset:
                d = jets.d_labels(subset)
                out[subset] = jets.einsum([(share, labels), (a, (*labels, *d))], (*rest, *d))
        return out
    # logsumexp along the axes, with the maximum m held constant.
    m = value.max(axis=axes, keepdims=True)
    shifted = dict(x)
    shifted[frozenset()] = value - m
    e = compose("exp", shifted, 0.0, jets)
    s = {
        subset: jets.einsum(
            [(a, (*labels, *jets.d_labels(subset)))], (*rest, *jets.d_labels(subset))
        )
        for subset, a in e.items()
    }
    lse = compose("log", s, 0.0, jets)
    lse[frozenset()] = lse[frozenset()] + np.squeeze(m, axis=axes)
    if node.func == "logsumexp":
        return lse
    # log_softmax = x − lse (broadcast), softmax = exp of it.
    minus = {subset: -a for subset, a in lse.items()}
    fake = Sum(((1.0, node.arg), (1.0, Leaf("lse", rest, None))), labels)  # for shapes only
    log_softmax = sum_jets(fake, [x, minus], sizes, jets)
    if node.func == "log_softmax":
        return log_softmax
    return compose("exp", log_softmax, 0.0, jets)
