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
``∂_S`` of every operation is held dense.
"""

from __future__ import annotations

import itertools
import math
import string
from collections.abc import Iterator, Mapping, Sequence
from typing import Any

import numpy as np

from ..arrays.backend import to_numpy
from ..arrays.limits import format_bytes, get_memory_limit
from ..calculus.graph import Graph
from ..errors import DerivativeError, MemoryLimitError, PlanError, ValuesError
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
from .functions import derivative, selection_weight, value

Jet = dict[frozenset[int], np.ndarray]

#: Functions along two indices, the rows and columns of a matrix
#: (tensorchain.reference.matrix_jets).
MATRIX = (
    "inv",
    "det",
    "logdet",
    "cholesky",
    "tril_half",
)  # subset S -> ∂_S, axes: labels, then w_i for i in S


def reindex_values(node: Reindex, sizes: Mapping[str, int]) -> np.ndarray:
    """A reshape's or concatenation's constant, dense, from numpy's own reshape
    and concatenation: ``R[g, m…]`` is the identity on the ``G`` entries with
    its columns reshaped to the members' shape (row-major), and ``E[k, i]`` the
    identity on the part stacked between the zero rows of the other parts."""
    if node.kind == "group":
        G = sizes[node.labels[0]]
        return np.eye(G).reshape(G, *(sizes[m] for m in node.labels[1:]))
    k, i = node.labels
    if node.kind == "range":  # columns start … start + J − 1 of the identity on k
        E = np.eye(sizes[k])[:, node.start : node.start + sizes[i]]
        if E.shape[1] != sizes[i]:
            raise DerivativeError(f"the reference's range runs past an axis of size {sizes[k]}")
        return E
    blocks = [np.eye(sizes[p]) if p == i else np.zeros((sizes[p], sizes[i])) for p in node.parts]
    E = np.concatenate(blocks, axis=0)
    if E.shape[0] != sizes[k]:
        raise DerivativeError(
            f"the reference's concatenation has {E.shape[0]} entries along an axis of size"
            f" {sizes[k]}"
        )
    return E


def _reindex_sizes(net: Graph, sizes: dict[str, int]) -> None:
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


def shift_values(P: int, K: int, T: int, stride: int, padding: int) -> np.ndarray:
    """The shift tensor, written from its definition: 1 where t = s·p + k − q."""
    S = np.zeros((P, K, T))
    for p in range(P):
        for k in range(K):
            t = stride * p + k - padding
            if 0 <= t < T:
                S[p, k, t] = 1.0
    return S


def _partitions(items: list[int]) -> Iterator[list[list[int]]]:
    """Every set partition of ``items``."""
    if not items:
        yield []
        return
    first, rest = items[0], items[1:]
    for part in _partitions(rest):
        for j in range(len(part)):
            yield [*part[:j], [first, *part[j]], *part[j + 1 :]]
        yield [[first], *part]


class _Jets:
    def __init__(self, wrt: Sequence[str], shapes: Mapping[str, tuple[int, ...]]) -> None:
        self.wrt = list(wrt)
        self.k = len(wrt)
        self.shapes = shapes  # of each w_i
        self.subsets = [
            frozenset(c)
            for r in range(self.k + 1)
            for c in itertools.combinations(range(self.k), r)
        ]

    def d_labels(self, subset: frozenset[int]) -> tuple[str, ...]:
        return tuple(f"∂{i}" for i in sorted(subset))

    def d_shape(self, subset: frozenset[int]) -> tuple[int, ...]:
        return tuple(s for i in sorted(subset) for s in self.shapes[self.wrt[i]])

    def einsum(self, operands: list[tuple[np.ndarray, tuple[str, ...]]], out: tuple[str, ...]):
        """``np.einsum`` over labels; a derivative label ``∂i`` stands for all of
        ``w_i``'s axes (flattened here, unflattened in the result)."""
        letters: dict[str, str] = {}
        arrays = []
        for a, labels in operands:
            arrays.append(self._flat(a, labels))
        for _, labels in (*operands, (None, out)):
            for lab in labels:
                if lab not in letters:
                    if len(letters) == len(string.ascii_letters):
                        raise PlanError(
                            "the reference writes each operation as one np.einsum with at most"
                            " 52 distinct indices; this network needs more"
                        )
                    letters[lab] = string.ascii_letters[len(letters)]
        lhs = ",".join("".join(letters[lab] for lab in labels) for _, labels in operands)
        rhs = "".join(letters[lab] for lab in out)
        result = np.einsum(f"{lhs}->{rhs}", *arrays, optimize=True)
        return self._unflat(result, out)

    def _flat(self, a: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
        shape = []
        at = 0
        for lab in labels:
            if lab.startswith("∂"):
                n = len(self.shapes[self.wrt[int(lab[1:])]])
                shape.append(math.prod(a.shape[at : at + n]))
                at += n
            else:
                shape.append(a.shape[at])
                at += 1
        return a.reshape(shape)

    def _unflat(self, a: np.ndarray, labels: tuple[str, ...]) -> np.ndarray:
        shape: list[int] = []
        for lab, n in zip(labels, a.shape, strict=True):
            if lab.startswith("∂"):
                shape.extend(self.shapes[self.wrt[int(lab[1:])]])
            else:
                shape.append(n)
        return a.reshape(shape)


def reference_derivative(
    net: Graph,
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
    jets = _Jets(wrts, shapes)

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


def _holomorphic(net: Graph) -> None:
    """Complex values only through functions with a complex derivative."""
    refused = ("relu", "abs", "softplus", "step", "sign", "max", "min", "logdet", "cholesky")
    refused += ("erf", "gelu", "normal_cdf", "logsigmoid")
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


def _checked(net: Graph, values: Mapping[str, Any]) -> dict[str, np.ndarray]:
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


def _node(node: Node, tensors: dict[str, Jet], sizes: dict[str, int], jets: _Jets) -> Jet:
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
        return _product(node, tensors, sizes, jets)
    if isinstance(node, Sum):
        return _sum(node, [_node(t, tensors, sizes, jets) for _, t in node.terms], sizes, jets)
    if isinstance(node, Map):
        return _compose(node.func, _node(node.arg, tensors, sizes, jets), node.param, jets)
    if isinstance(node, Where):
        kids = (node.left, node.right, node.a, node.b)
        return _select(node, [_node(k, tensors, sizes, jets) for k in kids], sizes, jets)
    from . import matrix_jets

    if isinstance(node, Solve):
        a, b = (_node(c, tensors, sizes, jets) for c in (node.matrix, node.rhs))
        return matrix_jets.solve(node, a, b, jets)
    assert isinstance(node, Along)
    if node.func in MATRIX:
        return matrix_jets.matrix(node, _node(node.arg, tensors, sizes, jets), jets)
    return _along(node, _node(node.arg, tensors, sizes, jets), sizes, jets)


def _product(node: Product, tensors, sizes, jets: _Jets) -> Jet:
    factors = [_node(f, tensors, sizes, jets) for f in node.factors]
    scale = node.coeff / math.prod(sizes[m] for m in node.mean_over)
    present = {lab for f in node.factors for lab in f.labels}
    inner = tuple(lab for lab in node.labels if lab in present)
    if not factors:  # a constant, broadcast
        empty = frozenset()
        return {empty: _broadcast(np.asarray(scale), (), node.labels, empty, sizes, jets)}
    out: Jet = {}
    for subset in jets.subsets:
        total = None
        members = sorted(subset)
        # Leibniz: each element of the subset goes to one factor.
        for owners in itertools.product(range(len(factors)), repeat=len(members)):
            parts = [
                frozenset(i for i, o in zip(members, owners, strict=True) if o == j)
                for j in range(len(factors))
            ]
            if any(p not in jet for p, jet in zip(parts, factors, strict=True)):
                continue
            operands = [
                (jet[p], (*f.labels, *jets.d_labels(p)))
                for jet, p, f in zip(factors, parts, node.factors, strict=True)
            ]
            term = jets.einsum(operands, (*inner, *jets.d_labels(subset)))
            total = term if total is None else total + term
        if total is not None:
            out[subset] = _broadcast(scale * total, inner, node.labels, subset, sizes, jets)
    return out


def _select(node: Where, kids: list[Jet], sizes, jets: _Jets) -> Jet:
    """A selection is ``w a + (1 − w) b`` with the weight ``w`` held constant
    (its value computed with ``where``, so that a NaN or infinity not chosen
    stays out of it)."""
    empty = frozenset()
    left, right, a, b = (
        (_broadcast(jet[s], k.labels, node.labels, s, sizes, jets) if s in jet else None)
        for jet, k, s in zip(
            kids, (node.left, node.right, node.a, node.b), [empty] * 4, strict=True
        )
    )
    w = selection_weight(node.test, node.half, left, right)
    out: Jet = {empty: np.where(w == 1.0, a, np.where(w == 0.0, b, 0.5 * (a + b)))}
    for subset in jets.subsets[1:]:
        total = None
        for jet, kid, weight in ((kids[2], node.a, w), (kids[3], node.b, 1.0 - w)):
            if subset in jet:
                d = _broadcast(jet[subset], kid.labels, node.labels, subset, sizes, jets)
                term = np.reshape(weight, weight.shape + (1,) * (d.ndim - weight.ndim)) * d
                total = term if total is None else total + term
        if total is not None:
            out[subset] = total
    return out


def _broadcast(a, labels, out_labels, subset, sizes, jets: _Jets) -> np.ndarray:
    """``a`` (axes ``labels`` then ``subset``'s) transposed and broadcast to ``out_labels``."""
    d = jets.d_shape(subset)
    order = [labels.index(lab) for lab in out_labels if lab in labels]
    a = np.transpose(a, [*order, *range(len(labels), a.ndim)])
    view = [sizes[lab] if lab in labels else 1 for lab in out_labels]
    full = (*(sizes[lab] for lab in out_labels), *d)
    return np.broadcast_to(np.reshape(a, (*view, *d)), full)


def _sum(node: Sum, terms: list[Jet], sizes, jets: _Jets) -> Jet:
    out: Jet = {}
    for (c, t), jet in zip(node.terms, terms, strict=True):
        for subset, a in jet.items():
            b = c * _broadcast(a, t.labels, node.labels, subset, sizes, jets)
            out[subset] = out[subset] + b if subset in out else b
    return out


def _compose(func: str, g: Jet, p: float, jets: _Jets) -> Jet:
    """Faà di Bruno: ∂_S f(g) = Σ over partitions π of S of f^(|π|)(g) Π_B ∂_B g."""
    x = g[frozenset()]
    rank = x.ndim
    out: Jet = {frozenset(): value(func, x, p)}
    orders: dict[int, np.ndarray | None] = {}
    for subset in jets.subsets[1:]:
        total = None
        for part in _partitions(sorted(subset)):
            blocks = [frozenset(b) for b in part]
            if any(b not in g for b in blocks):
                continue
            r = len(blocks)
            if r not in orders:
                orders[r] = derivative(func, r, x, p)
            if orders[r] is None:
                continue
            axes = tuple(f"x{j}" for j in range(rank))
            operands = [(orders[r], axes)] + [(g[b], (*axes, *jets.d_labels(b))) for b in blocks]
            term = jets.einsum(operands, (*axes, *jets.d_labels(subset)))
            total = term if total is None else total + term
        if total is not None:
            out[subset] = total
    return out


def _along(node: Along, x: Jet, sizes, jets: _Jets) -> Jet:
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
    e = _compose("exp", shifted, 0.0, jets)
    s = {
        subset: jets.einsum(
            [(a, (*labels, *jets.d_labels(subset)))], (*rest, *jets.d_labels(subset))
        )
        for subset, a in e.items()
    }
    lse = _compose("log", s, 0.0, jets)
    lse[frozenset()] = lse[frozenset()] + np.squeeze(m, axis=axes)
    if node.func == "logsumexp":
        return lse
    # log_softmax = x − lse (broadcast), softmax = exp of it.
    minus = {subset: -a for subset, a in lse.items()}
    fake = Sum(((1.0, node.arg), (1.0, Leaf("lse", rest, None))), labels)  # for shapes only
    log_softmax = _sum(fake, [x, minus], sizes, jets)
    if node.func == "log_softmax":
        return log_softmax
    return _compose("exp", log_softmax, 0.0, jets)
