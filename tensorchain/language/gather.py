"""Integer index tensors: gathers, and their adjoint, the scatter-add.

An input declared ``input ids[B] index V`` holds integer positions along dim
``V``. ``T[ids[s], d]`` is ``Σ_v S[s, v] T[v, d]`` with the selection
``S[s, v] = 1 where ids[s] = v, else 0`` (a :class:`~tensorchain.language.operations.Select`
node); a constant position ``x[s, 0, k]`` is the same with ``ids`` a number.
Like a Kronecker delta, ``S`` is never stored: its value is a
:class:`Selection`, which holds the integers only, and every contraction with
it is done without it (:func:`contract_select`):

* ``v`` summed (the forward gather): each operand that carries ``v`` is
  gathered, ``np.take`` (advanced indexing on a diagonal, ``z[s, labels[s]]``),
  ``v`` replaced by the index tensor's own indices;
* ``v`` kept (a derivative by ``T``: ``Σ_s S[s, v] g[s, d]``): the other
  operands are contracted onto ``s`` and scatter-added into ``v``
  (``np.add.at``; ``.at[].add`` on JAX).

So the Jacobian of ``e[s, d] = T[ids[s], d]`` by ``T`` is ``S[s, v'] · δ(d, d')``:
``B`` integers and a delta, and a gradient through it is one scatter-add,
never a dense ``B×V`` one-hot. The one-hot is made only where the result
itself holds both ``s`` and ``v`` (the dense ``.array`` of such a Jacobian),
and is then no larger than that result.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Protocol

import numpy as np
import opt_einsum as oe

from ..arrays.backend import (
    astype,
    backend_of,
    common,
    is_numpy,
    namespace,
    numpy_dtype,
    to_backend,
    to_numpy,
)
from ..arrays.trace import apply
from ..errors import DerivativeError, SpecError, ValuesError

if TYPE_CHECKING:
    from .syntax import Program, TensorDecl


class _Tensor(Protocol):
    @property
    def name(self) -> str: ...

    @property
    def index(self) -> str | None: ...  # the dim whose positions it holds, or None


class Declared(Protocol):
    """What the checks of positions read of a network or a derivative's graph:
    its tensors by name, each with the dim whose positions it holds
    (``index``; ``None`` for a tensor of numbers)."""

    @property
    def tensors(self) -> Mapping[str, _Tensor]: ...


class Selection:
    """The value of a selection ``S[s…, v] = 1 where ids[s…] = v``: the
    integers ``ids`` (an array of any library, or a traced placeholder) and
    the length ``length`` of ``v``. Its ``shape`` is the one-hot's,
    ``ids.shape + (length,)``, but it stores ``ids.size`` numbers
    (:attr:`stored`); ``np.asarray`` of it is the dense one-hot (float64).

    Example:
        >>> import numpy as np
        >>> S = Selection(np.array([2, 0]), 3)
        >>> S.shape, S.stored
        ((2, 3), 2)
        >>> np.asarray(S)
        array([[0., 0., 1.],
               [1., 0., 0.]])
    """

    __slots__ = ("ids", "length")
    __array_ufunc__ = None  # arithmetic on it is a mistake: contract it (plan.contract)

    def __init__(self, ids: Any, length: int) -> None:
        self.ids = ids
        self.length = int(length)

    @property
    def shape(self) -> tuple[int, ...]:
        return (*(int(n) for n in self.ids.shape), self.length)

    @property
    def ndim(self) -> int:
        return len(self.shape)

    @property
    def dtype(self) -> np.dtype:
        """bool: a 0/1 tensor, which takes the dtype of what it multiplies."""
        return np.dtype(bool)

    @property
    def stored(self) -> int:
        """The numbers it holds: one integer per entry of ``ids``."""
        return math.prod(self.ids.shape)

    def with_ids(self, ids: Any) -> Selection:
        return Selection(ids, self.length)

    def dense(self, dtype: Any = None) -> Any:
        """The one-hot array (through ``program.apply``, so it can be traced),
        in ``dtype`` (a numpy dtype; default float64)."""
        length = self.length
        kind = np.dtype(dtype or np.float64)
        extra = "" if kind == np.float64 else f", np.{kind.name}"
        return apply(
            lambda ids: onehot_any(ids, length, kind),
            self.ids,
            shape=self.shape,
            fresh=True,
            code=lambda a: f"onehot({a[0]}, {length}{extra})",
        )

    def __array__(self, dtype: Any = None, copy: Any = None) -> np.ndarray:
        return onehot(np.asarray(to_numpy(self.ids)), self.length).astype(dtype or np.float64)

    def __getitem__(self, index: Any) -> np.ndarray:
        """A block of the dense one-hot (``index``: slices), made from the
        block's ids only."""
        index = index if isinstance(index, tuple) else (index,)
        index = (*index, *[slice(None)] * (self.ndim - len(index)))
        ids = np.asarray(to_numpy(self.ids))[index[:-1]]
        return onehot(ids, self.length)[..., index[-1]]

    def __repr__(self) -> str:
        return f"Selection(ids of shape {tuple(self.shape[:-1])}, length {self.length})"


def stored_entries(array: Any) -> int:
    """The numbers an array (or a :class:`Selection`) holds."""
    if isinstance(array, Selection):
        return array.stored
    return math.prod(array.shape)


# --- the array functions (numpy first: generated code includes their source) ---


def onehot(ids, length, dtype=np.float64):
    """The one-hot of integer positions: ``out[..., v] = 1.0 where ids[...] == v``."""
    return (np.asarray(ids)[..., None] == np.arange(length)).astype(dtype)


def gather(x, ids, axis, pairs=()):
    """The entries of ``x`` at the positions ``ids`` along ``axis``. Without
    ``pairs``, ``np.take``: that axis replaced by ids' axes. ``pairs`` lists
    (axis of ids, axis of x) that are one index (``z[s, labels[s]]``): those
    are taken on the diagonal, and the result is ids' axes, then x's other axes."""
    ids = np.asarray(ids).astype(np.intp, copy=False)  # uint8 ids and the like: no wrapping
    if not pairs:
        return np.take(x, ids, axis=axis)
    paired = [a for _, a in pairs]
    rest = [a for a in range(x.ndim) if a != axis and a not in paired]
    x = x.transpose([*paired, axis, *rest])
    index = []
    for i, _ in pairs:
        shape = [1] * ids.ndim
        shape[i] = ids.shape[i]
        index.append(np.arange(ids.shape[i]).reshape(shape))
    return x[(*index, ids)]


def scatter(z, ids, length):
    """The adjoint of a gather: ``out[v, ...] = Σ over entries s with
    ids[s] = v of z[s, ...]`` (z's leading axes are ids'), by ``np.add.at``
    on the flat arrays (a row of z is m entries in a row of out; numpy's
    one-dimensional add.at is several times faster than adding rows)."""
    ids = np.asarray(ids).astype(np.intp, copy=False)  # ids * m in uint8 would wrap
    rest = z.shape[ids.ndim :]
    m = int(np.prod(rest, dtype=np.int64))
    out = np.zeros(length * m, dtype=z.dtype if z.dtype.kind in "fc" else np.float64)
    at = (np.reshape(ids, (-1, 1)) * m + np.arange(m)).reshape(-1)
    np.add.at(out, at, np.reshape(z, -1))
    return out.reshape(length, *rest)


def onehot_any(ids: Any, length: int, dtype: Any = None) -> Any:
    """:func:`onehot` on the library of ``ids``, in ``dtype`` (a numpy dtype;
    default: float64 for numpy, the library's default float otherwise)."""
    if is_numpy(ids):
        return onehot(ids, length, dtype or np.float64)
    xp = namespace(ids)
    hit = xp.expand_dims(ids, axis=-1) == xp.arange(length)
    return hit * 1.0 if dtype is None else astype(hit, np.dtype(dtype))


def gather_any(x: Any, ids: Any, axis: int, pairs: tuple = ()) -> Any:
    """:func:`gather` for arrays of any library: JAX indexes as numpy does;
    other libraries take with flat integer positions (dask's computed, as
    dask takes numpy positions), and a diagonal goes through the one-hot."""
    if is_numpy(x, ids):
        return gather(x, ids, axis, pairs)
    library = backend_of(x) if not is_numpy(x) else backend_of(ids)
    if library == "dask":
        ids = np.asarray(to_numpy(ids))
    library, (x,) = common((x,))
    xp = namespace(x)
    if library == "jax":
        jnp = xp
        ids = jnp.asarray(ids)
        if not pairs:
            return jnp.take(x, ids, axis=axis)
        paired = [a for _, a in pairs]
        rest = [a for a in range(x.ndim) if a != axis and a not in paired]
        x = jnp.transpose(x, [*paired, axis, *rest])
        index = []
        for i, _ in pairs:
            shape = [1] * ids.ndim
            shape[i] = ids.shape[i]
            index.append(np.arange(ids.shape[i]).reshape(shape))
        return x[(*index, ids)]
    id_shape = tuple(int(n) for n in ids.shape)
    if not pairs:
        flat = np.reshape(ids, -1) if isinstance(ids, np.ndarray) else xp.reshape(ids, (-1,))
        if isinstance(flat, np.ndarray) and library != "dask":
            flat = to_backend(flat, library)
        taken = xp.take(x, flat, axis=axis)
        return xp.reshape(taken, (*x.shape[:axis], *id_shape, *x.shape[axis + 1 :]))
    # A diagonal: Σ_v onehot[s…, v] x[…], the paired axes of x joined to ids' own.
    hot = onehot_any(
        ids if not isinstance(ids, np.ndarray) else to_backend(ids, library), x.shape[axis]
    )
    letters = [oe.get_symbol(k) for k in range(x.ndim + len(id_shape) + 1)]
    s = letters[: len(id_shape)]
    x_labels = letters[len(id_shape) : len(id_shape) + x.ndim]
    for i, a in pairs:
        x_labels[a] = s[i]
    v = x_labels[axis]
    rest = [x_labels[a] for a in range(x.ndim) if a != axis and a not in [p for _, p in pairs]]
    eq = f"{''.join(s)}{v},{''.join(x_labels)}->{''.join(s)}{''.join(rest)}"
    return oe.contract(eq, hot, x, backend=library)


def scatter_any(z: Any, ids: Any, length: int) -> Any:
    """:func:`scatter` for arrays of any library: ``.at[].add`` on JAX, a
    product with the one-hot elsewhere (dask makes it chunk by chunk)."""
    if is_numpy(z, ids):
        return scatter(z, ids, length)
    library = backend_of(z) if not is_numpy(z) else backend_of(ids)
    if library == "dask":
        ids = np.asarray(to_numpy(ids))
    library, (z,) = common((z,))
    xp = namespace(z)
    id_shape = tuple(int(n) for n in ids.shape)
    rest = tuple(z.shape[len(id_shape) :])
    flat_z = xp.reshape(z, (-1, *rest))
    if library == "jax":
        flat = xp.reshape(xp.asarray(ids), (-1,))
        return xp.zeros((length, *rest), dtype=z.dtype).at[flat].add(flat_z)
    flat = np.reshape(ids, -1) if isinstance(ids, np.ndarray) else xp.reshape(ids, (-1,))
    if isinstance(flat, np.ndarray):
        flat = to_backend(flat, library)
    hot = onehot_any(flat, length)
    return oe.contract("sv,s...->v...", xp.astype(hot, z.dtype), flat_z, backend=library)


# --- contractions with a selection ----------------------------------------


Operand = tuple[Any, Sequence[str]]


def contract_select(
    operands: Sequence[Operand],
    output: Sequence[str],
    sizes: Mapping[str, int],
    contract: Callable[..., Any],
    scale: float,
    fresh: bool,
) -> Any:
    """``contract(operands, output, sizes)`` when a :class:`Selection` is among
    the operands (else ``None``): its selected index gathered out of every
    operand that carries it, then summed away or scatter-added back (see the
    module). ``contract`` contracts what is left (called again, it handles a
    second selection)."""
    found = next((j for j, (a, _) in enumerate(operands) if isinstance(a, Selection)), None)
    if found is None:
        return None
    sel, labels = operands[found]
    labels = tuple(labels)
    *at, v = labels
    rest = [op for j, op in enumerate(operands) if j != found]
    output = tuple(output)
    if (
        len(set(labels)) < len(labels)
        or any(isinstance(a, Selection) and v in labs for a, labs in rest)
        or (v in output and any(s in output for s in at))
    ):
        # The result holds the one-hot itself (both its axes are kept), or two
        # selections meet on one index: the one-hot is made, as large as that,
        # in the dtype of what it multiplies (0 and 1 never promote a float32).
        operands = [(sel.dense(_factor_dtype(rest)), labels), *rest]
        return contract(operands, output, sizes, scale=scale, fresh=fresh)
    rest = [
        _gathered(a, labs, sel, at, v, sizes, contract) if v in labs else (a, labs)
        for a, labs in rest
    ]
    if v not in output:  # Σ_v S[s, v] = 1 for each s: the selection is used up
        present = {lab for _, labs in rest for lab in labs}
        alone = [s for s in at if s not in present and s not in output]
        scale = scale * math.prod(sizes[s] for s in alone)
        return contract(rest, output, sizes, scale=scale, fresh=fresh)
    inner = tuple(lab for lab in output if lab != v)
    z = contract(rest, (*at, *inner), sizes, scale=scale)
    length = sel.length
    shape = [length, *(sizes[lab] for lab in inner)]
    added = apply(
        lambda z, ids: scatter_any(z, ids, length),
        z,
        sel.ids,
        shape=shape,
        fresh=True,
        code=lambda a: f"scatter({a[0]}, {a[1]}, {length})",
    )
    return contract([(added, (v, *inner))], output, sizes, fresh=fresh)


def _factor_dtype(operands: Sequence[Operand]) -> np.dtype | None:
    """The floating or complex dtype of the arrays among ``operands`` (None
    when there are none: selections only, or traced placeholders)."""
    found = []
    for a, _ in operands:
        try:
            found.append(numpy_dtype(a))
        except (AttributeError, TypeError):  # a placeholder of a trace: no dtype
            continue
    found = [d for d in found if d.kind in "fc"]
    return np.result_type(*found) if found else None


def _gathered(
    x: Any,
    labels: Sequence[str],
    sel: Selection,
    at: Sequence[str],
    v: str,
    sizes: Mapping[str, int],
    contract: Callable[..., Any],
) -> Operand:
    """``x`` with its index ``v`` replaced by the selection's ``at``: the
    entries at the positions ``sel.ids`` (on the diagonal where ``x`` carries
    some of ``at`` too)."""
    labels = tuple(labels)
    if len(set(labels)) < len(labels):  # a diagonal of x first (A[v, v])
        unique = tuple(dict.fromkeys(labels))
        x, labels = contract([(x, labels)], unique, sizes), unique
    axis = labels.index(v)
    pairs = tuple((i, labels.index(s)) for i, s in enumerate(at) if s in labels)
    if pairs:
        paired = {a for _, a in pairs}
        kept = [labels[a] for a in range(len(labels)) if a != axis and a not in paired]
        new = (*at, *kept)
    else:
        new = (*labels[:axis], *at, *labels[axis + 1 :])
    shape = [sizes[lab] for lab in new]
    taken = apply(
        lambda x, ids: gather_any(x, ids, axis, pairs),
        x,
        sel.ids,
        shape=shape,
        fresh=True,
        code=lambda a: (
            f"gather({a[0]}, {a[1]}, {axis}, {pairs!r})"
            if pairs
            else f"gather({a[0]}, {a[1]}, {axis})"
        ),
    )
    return taken, new


# --- declarations and values ------------------------------------------------


def declared_index(program: Program, st: TensorDecl, dims: Mapping[str, Any]) -> str | None:
    """The dim an ``input ids[B] index V`` declaration holds positions of, checked."""
    if st.index is None:
        return None
    if st.index.name not in dims:
        raise program.error(
            f"unknown dim {st.index.name!r} after 'index' in the declaration of {st.name};"
            f" declare it first with 'dim {st.index.name} = 10'",
            st.index.pos,
        )
    if not st.axes:
        raise program.error(
            f"{st.name} holds positions but has no axes; an index tensor has at least one"
            f" axis (input {st.name}[B] index {st.index.name}); for one fixed position"
            " write it as a number, x[0]",
            st.pos,
            SpecError,
        )
    return st.index.name


def positions_of(graph: Declared) -> dict[str, str]:
    """Each integer index tensor of ``graph`` and the dim whose positions it holds."""
    return {t.name: t.index for t in graph.tensors.values() if t.index is not None}


def draw_positions(rng: np.random.Generator, shape: tuple[int, ...], size: int) -> np.ndarray:
    """Uniformly drawn positions 0 … size − 1 (int64): values for an index tensor."""
    return rng.integers(0, size, size=shape, dtype=np.int64)


def check_dtype(name: str, array: Any, dim: str) -> None:
    """An index tensor's value holds integers (a ValuesError otherwise)."""
    dtype = numpy_dtype(array)
    if dtype.kind not in "iu":
        raise ValuesError(
            f"the value of {name} has dtype {dtype}, but {name} holds positions along"
            f" {dim} (input {name}[...] index {dim}): give integers, e.g."
            f" np.asarray({name}, dtype=np.int64)"
        )


def check_positions(name: str, array: Any, dim: str, size: int) -> None:
    """Every entry of an index tensor is a position 0 … size − 1 of ``dim``; a
    ValuesError names the first entry that is not, its value and the range.
    Values of any library are read once to be checked; values inside
    ``jax.jit`` (traced, no numbers yet) cannot be, and JAX's own rules for
    out-of-bounds indices apply to them (a negative position counts from the
    end; one past the end is clamped, NaN, or dropped from a scatter-add)."""
    try:
        values = np.asarray(to_numpy(array))
    except Exception:  # a traced value: nothing to check yet
        return
    bad = np.flatnonzero((values < 0) | (values >= size))
    if bad.size:
        at = np.unravel_index(bad[0], values.shape)
        entry = ", ".join(str(int(k)) for k in at)
        value = int(values.reshape(-1)[bad[0]])
        raise ValuesError(
            f"{name}[{entry}] = {value} is not a position along {dim}: {name} holds"
            f" positions 0 to {size - 1} of dim {dim} = {size}"
            + (f" ({bad.size:,} entries are out of range)" if bad.size > 1 else "")
        )


def as_positions(array: Any) -> Any:
    """An index tensor's (checked) value with a wide signed integer dtype, on
    its own library: numpy's ``intp``, JAX's default integer, else int64. Done
    once where values enter, so no position arithmetic (a scatter's
    ``ids * m``) wraps in a uint8 or int16 dtype, and uint64 mixes with
    signed integers."""
    if isinstance(array, np.ndarray | np.generic):
        return np.asarray(array).astype(np.intp, copy=False)
    library = backend_of(array)
    if library == "numpy":
        return np.asarray(array).astype(np.intp, copy=False)
    xp = namespace(array)
    target = xp.asarray(0).dtype if library == "jax" else xp.int64
    return array if array.dtype == target else xp.astype(array, target)


def cast_values(graph: Declared, values: Mapping[str, Any], dtype: Any) -> dict[str, Any]:
    """``values`` as numpy arrays in ``dtype``, the integer positions of index
    tensors as they are (a reference computes wide; positions stay positions)."""
    indexes = positions_of(graph)
    return {
        k: np.asarray(to_numpy(v)) if k in indexes else np.asarray(to_numpy(v), dtype=dtype)
        for k, v in values.items()
    }


def refuse_positions(graph: Declared, names: Sequence[str], call: str = "a derivative") -> None:
    """A DerivativeError if one of ``names`` is an integer index tensor."""
    indexes = positions_of(graph)
    for name in names:
        if isinstance(name, str) and name in indexes:
            verb = "are" if call.endswith(("norms", "differences")) else "is"
            raise DerivativeError(
                f"{call} by {name} {verb} not defined: {name} holds integer positions along"
                f" {indexes[name]} (index {indexes[name]}), and a derivative needs a"
                f" real-valued tensor; differentiate by the tensor it picks from instead"
            )
