"""Functions users add to the language: :func:`register_function`.

A registration is a :class:`UserFunction`: the user's ``f``, ``df`` and
``d2f`` and three entries of the elementwise kind
(:class:`tensorchain.functions.registry.Elementwise`) for ``f``, ``f'`` (value ``df``,
derivative ``d2f``) and ``f''`` (value ``d2f``, no derivative). A spec binds
the registration that is current when it is parsed: its operations carry the
function's name as a :class:`FunctionName`, a string that also holds the
registration, so every route (values, derivatives of every order, printing,
generated code, the references) uses that one version, whatever is registered
or removed later. The derivative of ``f`` is written with ``f'`` wherever
derivatives are written as operations (:mod:`tensorchain.calculus.differentiate`), so
Hessians need ``d2f``, and an order above two through ``f`` is refused with
an error that says so. The names with primes cannot be written in a spec.

The user's functions are called through :meth:`UserFunction.call`, which
checks each result (the argument's shape, numbers, no complex values for real
arguments) and names the function when one is wrong. Generated code
(``Derivation.to_python``) calls ``f``, ``d_f`` and ``d2_f`` and copies their
source: a ``def`` or a ``lambda`` written in a file, or a numpy ufunc. Like
autograd's ``defvjp`` (``autograd/extend.py``), this is the one public hook
for adding an operation. Where a spec calls registered functions:
:mod:`~tensorchain.language.user_function_calls`; their source for
generated code: :mod:`~tensorchain.language.user_function_source`.
"""

from __future__ import annotations

import builtins
import keyword
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from ..arrays.backend import namespace
from ..errors import DerivativeError, SpecError, TensorchainError, ValuesError
from ..functions.along import ALONG, MATRIX_FUNCTIONS
from ..functions.along import HELPERS as ALONG_HELPERS
from ..functions.registry import CALLABLE, ELEMENTWISE, HELPERS, REDUCTIONS, REGISTERED, Elementwise
from .losses import LOSSES
from .operations import CONCAT, DELTA, SIZE, Map
from .selections import SELECTIONS
from .tokens import KEYWORDS
from .user_function_checks import checked, probe, raised
from .user_function_source import numpy_name

Function = Callable[[np.ndarray], np.ndarray]

#: Names generated code defines itself (a registered function may not take them).
CODE_NAMES = ("np", "place", "windows", "unwindows", "gather", "scatter", "onehot")

#: Names generated code gives its temporaries and its functions.
_GENERATED = re.compile(r"t[0-9]+|(grad|jacobian|derivatives)_\w+")

_WHAT = ("f", "df", "d2f")


class FunctionName(str):
    """The name of a registered function in a network's operations: ``cube``,
    ``cube'`` or ``cube''`` (its ``order``-th derivative), holding the
    registration ``user`` that was current when the spec was parsed. It
    prints, hashes and compares as the name; two registrations' names differ."""

    user: UserFunction
    order: int

    def __new__(cls, user: UserFunction, order: int) -> FunctionName:
        self = super().__new__(cls, user.name + "'" * order)
        self.user, self.order = user, order
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, str):
            return NotImplemented
        return str.__eq__(self, other) and getattr(other, "user", self.user) is self.user

    def __ne__(self, other: object) -> bool:
        equal = self.__eq__(other)
        return equal if equal is NotImplemented else not equal

    __hash__ = str.__hash__

    def __reduce__(self) -> tuple:
        return FunctionName, (self.user, self.order)

    @property
    def entry(self) -> Elementwise:
        """This order's entry of the elementwise kind."""
        return self.user.entries[self.order]

    def operations(self, x, y, p, labels):
        """The derivative as operations (:data:`tensorchain.calculus.vjp.DERIVATIVES`):
        the next order, or a :class:`DerivativeError` where it was not registered."""
        following = self.order + 1
        if following > 2 or self.user.functions[following] is None:
            raise DerivativeError(missing(self.user.name, following))
        return 1.0, [Map(self.user.names[following], x)]


@dataclass(frozen=True)
class _Entry(Elementwise):
    """A registered function's entry: ``latex`` and ``derivative_latex`` are
    the user's LaTeX name (with primes) as given, no template (``{f}`` in it
    is no placeholder), followed by the argument in parentheses."""

    def tex(self, arg: str, p: float = 0.0) -> str:
        return f"{self.latex}({arg})"

    def derivative_tex(self, arg: str, p: float = 0.0) -> str:
        return f"{self.derivative_latex}({arg})"


class UserFunction:
    """One registration of :func:`register_function`: the value ``f`` and the
    derivatives ``df``, ``d2f`` (``None`` when not given) of the function
    ``name``, its LaTeX name, and its three :class:`FunctionName` s and
    entries (``entries[2]`` is ``None`` without ``d2f``).

    It pickles with its functions where they pickle (a ``def`` at a module's
    top level, a numpy ufunc), else by name: unpickling then takes the
    function registered under that name in the process that unpickles."""

    def __init__(self, name: str, f: Function, df: Function, d2f: Function | None, latex: str):
        self.name, self.latex = name, latex
        self.functions: tuple[Function | None, ...] = (f, df, d2f)
        self.names = tuple(FunctionName(self, k) for k in range(3))
        self.codes = (name, f"d_{name}", f"d2_{name}")
        self.entries = tuple(self._entry(k) if self.functions[k] else None for k in range(3))

    def __repr__(self) -> str:
        return f"<registered function {self.name}>"

    def __reduce__(self) -> tuple:
        try:
            pickle.dumps(self.functions)
        except Exception:  # a lambda or a local function: by name
            return _registered_now, (self.name,)
        return UserFunction, (self.name, *self.functions, self.latex)

    @property
    def helpers(self) -> dict[str, Function]:
        """The functions generated code calls, by their names there: ``f``, ``d_f``, ``d2_f``."""
        return {c: fn for c, fn in zip(self.codes, self.functions, strict=True) if fn}

    def _entry(self, k: int) -> Elementwise:
        known = k < 2 and self.functions[k + 1] is not None
        tex = self.latex
        return _Entry(
            self.names[k],
            lambda x, p=0.0: self.call(k, x),
            (lambda x, y, p: self.call(k + 1, x)) if known else None,
            f"{self.names[k + 1]}({{f}})" if known else "",
            f"{self.codes[k]}({{x}})",
            f"{self.codes[k + 1]}({{x}})" if known else "",
            tex + "'" * k,
            tex + "'" * (k + 1),
            missing=None if known else missing(self.name, k + 1),
        )

    def derivative(self, r: int, x: Any) -> Any:
        """The r-th derivative at ``x`` (r = 0: the value), or a
        :class:`DerivativeError` where it was not registered."""
        if r > 2 or self.functions[r] is None:
            raise DerivativeError(missing(self.name, r))
        return self.call(r, x)

    def call(self, k: int, x: Any) -> Any:
        """The user's ``f``, ``df`` or ``d2f`` (``k`` = 0, 1, 2) at ``x``, its
        result checked: the shape of ``x``, numbers, not complex for real ``x``;
        on numpy values the result has ``x``'s dtype (a float dtype), and
        ``x`` is passed read-only. Raises :class:`ValuesError` naming the
        function for a result that is wrong, or for an error the function
        raised on numpy values (another library's error, a JAX tracer's
        among them, is passed on as it is)."""
        fn = self.functions[k]
        assert fn is not None
        if not isinstance(x, np.ndarray | np.generic):  # torch, JAX (a trace), dask
            return checked(_portable(fn)(x), x, lambda why: self._error(k, why))
        arg = x
        if isinstance(x, np.ndarray) and x.flags.writeable:
            arg = x.view()
            arg.flags.writeable = False
        try:
            out = fn(arg)
        except TensorchainError:
            raise
        except Exception as error:
            raise self._error(k, f"{raised(error)} for x of shape {np.shape(x)}") from error
        return checked(out, x, lambda why: self._error(k, why))

    def _error(self, k: int, why: str) -> ValuesError:
        return ValuesError(
            f"the registered function {self.name}: {_WHAT[k]}(x) {why}; fix it and"
            f" register it again (tc.register_function({self.name!r}, f, df, d2f)),"
            " then parse the network again"
        )


def _registered_now(name: str) -> UserFunction:
    """The registration of ``name`` in this process (a network unpickled by name)."""
    user = USER_FUNCTIONS.get(name)
    if user is None:
        raise SpecError(
            f"a network that calls the registered function {name!r} was pickled with its"
            f" name only (its f, df or d2f cannot be pickled: a lambda or a local"
            f" function), and {name!r} is not registered here: register it before"
            " unpickling, or define f, df and d2f with def at a module's top level"
        )
    return user


#: The functions registered now, by name.
USER_FUNCTIONS: dict[str, UserFunction] = {}


def missing(name: str, order: int) -> str:
    """Why the ``order``-th derivative of the registered ``name`` is unknown."""
    if order == 2:
        return (
            f"the second derivative of {name} is unknown: it was registered without d2f,"
            f" so Hessians and derivatives of order 2 or more through {name} cannot be"
            f" formed; register it again with tc.register_function({name!r}, f, df, d2f=...)"
            " and parse the network again"
        )
    return (
        f"the derivative of order {order} of {name} is unknown: a registered function"
        " has its value, df and d2f only, so derivatives of order 3 or more through it"
        " cannot be formed"
    )


class _Registered:
    """The ``k``-th derivative of a user's function as a function of its own
    (``k`` = 0, 1, 2 for ``f``, ``f'``, ``f''``), for the reference."""

    def __init__(self, user: UserFunction, k: int) -> None:
        self.user, self.k = user, k

    def derivative(self, r: int, x: np.ndarray) -> np.ndarray:
        return self.user.derivative(self.k + r, x)


def registered(func: str) -> _Registered | None:
    """The registered function an operation's ``func`` names (``f``, ``f'``
    or ``f''``, bound when its spec was parsed), or ``None``."""
    if not isinstance(func, FunctionName):
        return None
    return _Registered(func.user, func.order)


def _builtin(name: str) -> bool:
    """Whether ``name`` is a function of the language itself."""
    return (
        name in ELEMENTWISE
        or name in ALONG
        or name in MATRIX_FUNCTIONS
        or name in LOSSES
        or name in REDUCTIONS
        or name in SELECTIONS
        or name in (CONCAT, SIZE)
    )


def _taken(name: str) -> str | None:
    """Why ``name`` cannot be registered, or ``None``."""
    if name in KEYWORDS or name == DELTA:
        return "it is a keyword of the language"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "it is a Python keyword (generated code defines a function of that name)"
    if _builtin(name):
        return "it is a built-in function"
    if name in CODE_NAMES or name in ALONG_HELPERS or name in HELPERS:
        return "it is a name generated code uses"
    if name in dir(builtins):
        return "it is a Python built-in, which generated code may call"
    if _GENERATED.fullmatch(name):
        return (
            "generated code names its temporaries t1, t2, … and its functions"
            " grad_L_x, jacobian_y_x and derivatives_L"
        )
    others = {n: u for n, u in USER_FUNCTIONS.items() if n != name}
    codes = {c: u.name for u in others.values() for c in u.codes}
    for code in (name, f"d_{name}", f"d2_{name}"):
        if code in codes:
            return (
                f"generated code would call {code} for two functions (the registered"
                f" {codes[code]} and this one: the derivatives of f are d_f and d2_f there)"
            )
    return None


def register_function(
    name: str,
    f: Function,
    df: Function,
    d2f: Function | None = None,
    latex: str | None = None,
) -> None:
    """Add the elementwise function ``name`` to the language, with its derivatives.

    ``f(x)``, ``df(x)`` and ``d2f(x)`` take an array and return an array of
    its shape: the value and the first and second derivatives of the
    function at each entry. The function is then callable in every spec as
    ``name(x)`` and takes part in everything derivatives do: index notation
    and LaTeX (``latex``, the function's LaTeX name, default
    ``\\mathrm{name}``; derivatives print as ``name'(x)``), generated numpy
    code (which copies the source of ``f``, ``df`` and ``d2f``), compiled
    plans, the reshape method and the reference of every order, Hessians
    (which need ``d2f``; without it they raise :class:`DerivativeError`) and
    values of other libraries (``f`` then receives that library's arrays:
    write it with operators, or with the functions of the array's own
    library, for torch, JAX or dask values).

    A network binds the registration that is current when its spec is
    parsed, on every route. Registering ``name`` again replaces it for specs
    parsed afterwards; networks parsed before keep the functions they were
    parsed with (parse them again to use the new ones), even after
    :func:`unregister_function`.

    Each result is checked when it is used: a result whose shape is not its
    argument's, that is not numbers, or that is complex for a real argument,
    and an error the function raises, give a :class:`ValuesError` naming the
    function; numpy results take the argument's dtype.

    Raises :class:`SpecError` for a name that is not an identifier of the
    language, that the language, Python or generated code already uses (a
    keyword, a built-in function, ``gather``, ``t1``, ``grad_L_x``), and for
    arguments that are not functions that work entry by entry, returning real
    arrays of their argument's shape. A spec that calls ``name`` may not
    also name a dim, a tensor or an index ``name`` (nor a tensor ``d_name``
    or ``d2_name``): parsing it raises :class:`SpecError`.

    Example:
        >>> import numpy as np
        >>> import tensorchain as tc
        >>> tc.register_function("cube", lambda x: x**3, lambda x: 3 * x**2, lambda x: 6 * x)
        >>> net = tc.parse("dim n = 2\\nparam x[n]\\nL = sum(cube(x))")
        >>> net.grad("L", "x", {"x": np.array([1.0, 2.0])})["x"]
        array([ 3., 12.])
        >>> print(net.derive("L", "x"))
        ∂L/∂x[i] = cube'(x)[i]
        >>> tc.unregister_function("cube")
    """
    if not isinstance(name, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", name):
        raise SpecError(
            f"a function name is an identifier of ASCII letters, digits and _ that does"
            f" not start with a digit, got {name!r}"
        )
    if name.startswith("__"):
        raise SpecError(f"{name!r}: names starting with __ are reserved for generated code")
    why = _taken(name)
    if why is not None:
        other = next(n for n in (f"{name}_fn", f"my_{name}", "my_function") if not _taken(n))
        raise SpecError(f"cannot register {name!r}: {why}; choose another name, e.g. {other}")
    tex = latex if latex is not None else r"\mathrm{" + name.replace("_", r"\_") + "}"
    if not isinstance(tex, str):
        raise SpecError(f"register_function({name!r}, ...): latex must be a string")
    depth = 0
    for brace in re.findall(r"\\.|[{}]", tex):
        depth += {"{": 1, "}": -1}.get(brace, 0)
        if depth < 0:
            break
    if depth:
        raise SpecError(
            f"register_function({name!r}, ...): latex={tex!r} has unbalanced braces;"
            r" give the function's LaTeX name, e.g. latex=r'\operatorname{" + name + "}'"
        )
    for what, fn in zip(_WHAT, (f, df, d2f), strict=True):
        if fn is None and what == "d2f":
            continue
        if not callable(fn):
            raise SpecError(
                f"register_function({name!r}, ...): {what} must be a function of an array,"
                f" got {type(fn).__name__}"
            )
        probe(name, what, fn)
    user = UserFunction(name, f, df, d2f, tex)
    if name not in USER_FUNCTIONS:
        CALLABLE.append(name)
    USER_FUNCTIONS[name] = user
    REGISTERED[name] = user.names[0]


def unregister_function(name: str) -> None:
    """Remove a function added with :func:`register_function`: specs parsed
    afterwards cannot call it. Networks parsed while it was registered keep
    it. Raises :class:`SpecError` for a built-in function or a name that is
    not registered."""
    if not isinstance(name, str) or name not in USER_FUNCTIONS:
        if isinstance(name, str) and _builtin(name):
            raise SpecError(
                f"cannot unregister {name!r}: it is a built-in function; only functions"
                " added with tc.register_function can be removed"
            )
        known = ", ".join(USER_FUNCTIONS) or "none"
        raise SpecError(
            f"cannot unregister {name!r}: it is not a registered function (registered now: {known})"
        )
    del USER_FUNCTIONS[name]
    del REGISTERED[name]
    CALLABLE.remove(name)


def _portable(fn: Function) -> Function:
    """``fn``, or for a numpy function (``np.exp``) the function of the same
    name in the library of the array it is given (``jax.numpy.exp`` for JAX
    arrays, ``torch.exp`` for torch tensors), so a ufunc registered as it is
    takes every library's values. Functions written by the user run as they are."""
    own = numpy_name(fn)
    if own is None:
        return fn

    def run(x: Any) -> Any:
        if isinstance(x, np.ndarray | np.generic | float | int):
            return fn(x)
        return getattr(namespace(x), own, fn)(x)

    return run
