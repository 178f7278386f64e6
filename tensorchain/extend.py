"""Functions users add to the language: :func:`register_function`.

A registered function ``f`` with derivative ``df`` (and optionally ``d2f``)
becomes three entries of the elementwise registry
(:data:`tensorchain.functions.ELEMENTWISE`): ``f`` itself, ``f'`` (value
``df``, derivative ``d2f``) and ``f''`` (value ``d2f``, no derivative). The
derivative of ``f`` is written with ``f'`` wherever derivatives are written
as operations (:mod:`tensorchain.differentiate`), so Hessians and
Hessian-vector products need ``d2f``, and a derivative of a higher order
through ``f`` is refused with an error that says so. The names with primes
cannot be written in a spec, so they never meet a user's names.

Generated code (``Derivation.to_python``) calls ``f``, ``d_f`` and ``d2_f``
and copies their source (a ``def`` or a ``lambda`` written in a file, or a
numpy ufunc) with what they use: the helper functions they call, the
modules and the numbers they read (:func:`helper_sources`); a closure's
variables or a global of another kind are refused with a message. A numpy
function registered as it is (``np.exp``) runs as the function of that name
of the values' library (``jax.numpy.exp`` on JAX arrays).

Like autograd's ``defvjp`` (``autograd/extend.py``), this is the one public
hook for adding an operation.
"""

from __future__ import annotations

import ast
import dis
import inspect
import keyword
import linecache
import re
import textwrap
import types
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np

from .along import ALONG, MATRIX_FUNCTIONS
from .along import HELPERS as ALONG_HELPERS
from .backend import namespace
from .differentiate import DERIVATIVES
from .errors import DerivativeError, SpecError
from .functions import CALLABLE, ELEMENTWISE, HELPERS, REDUCTIONS, Elementwise
from .losses import LOSSES
from .lower import DELTA, Map
from .spec import KEYWORDS
from .where import SELECTIONS

Function = Callable[[np.ndarray], np.ndarray]

#: Names generated code defines itself (a registered function may not take them).
CODE_NAMES = ("np", "place", "windows", "unwindows")


@dataclass(frozen=True)
class UserFunction:
    """A function added with :func:`register_function`: its value ``f`` and
    derivatives ``df``, ``d2f`` (``None`` when not given)."""

    name: str
    f: Function
    df: Function
    d2f: Function | None
    latex: str

    def derivative(self, r: int, x: np.ndarray) -> np.ndarray:
        """The r-th derivative at ``x`` (r = 0: the value), or a
        :class:`DerivativeError` where it was not registered."""
        found = (self.f, self.df, self.d2f)[r] if r <= 2 else None
        if found is None:
            raise DerivativeError(missing(self.name, r))
        return found(x)


#: The functions users registered, by name.
USER_FUNCTIONS: dict[str, UserFunction] = {}


def missing(name: str, order: int) -> str:
    """Why the ``order``-th derivative of the registered ``name`` is unknown."""
    if order == 2:
        return (
            f"the second derivative of {name} is unknown: it was registered without d2f,"
            f" so Hessians and derivatives of order 2 or more through {name} cannot be"
            f" formed; register it again with tc.register_function({name!r}, f, df, d2f=...)"
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
        return np.asarray(self.user.derivative(self.k + r, x), dtype=float)


def registered(func: str) -> _Registered | None:
    """A registry entry named ``func`` (``f``, ``f'`` or ``f''``) that a user
    registered, or ``None``."""
    base = func.rstrip("'")
    user = USER_FUNCTIONS.get(base)
    k = len(func) - len(base)
    return _Registered(user, k) if user is not None and k <= 2 else None


def _taken(name: str) -> str | None:
    """What ``name`` already is in the language, or ``None``."""
    if name in KEYWORDS or name == DELTA:
        return "a keyword of the language"
    if keyword.iskeyword(name) or keyword.issoftkeyword(name):
        return "a Python keyword (generated code defines a function of that name)"
    if name in ELEMENTWISE and name not in USER_FUNCTIONS:
        return "a built-in function"
    if name in ALONG or name in MATRIX_FUNCTIONS or name in LOSSES or name in REDUCTIONS:
        return "a built-in function"
    if name in SELECTIONS:
        return "a built-in function"
    if (
        name in CODE_NAMES
        or name in ALONG_HELPERS
        or (name in HELPERS and name not in user_code_names())
    ):
        return "a name generated code uses"
    return None


def user_code_names() -> set[str]:
    """The code names of the registered functions: ``f``, ``d_f``, ``d2_f``."""
    return {n for name in USER_FUNCTIONS for n in (name, f"d_{name}", f"d2_{name}")}


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
    code (which copies the source of ``f``, ``df`` and ``d2f`` and of the
    helpers they call; see :func:`helper_sources`), compiled
    plans, the reshape method and the reference of every order, Hessians
    (which need ``d2f``; without it they raise :class:`DerivativeError`) and
    values of other libraries (``f`` then receives that library's arrays:
    write it with operators, or with the functions of the array's own
    library, for torch, JAX or dask values; numpy's own functions, ``np.exp``,
    run as that library's). A name an index or a tensor also has (``i``,
    ``x``) is allowed: a call is always ``name(...)``. Registering ``name`` again
    replaces it (a network compiled before keeps the function it was
    compiled with; parse it again).

    Raises :class:`SpecError` for a name that is not an identifier of the
    language, or that a keyword or a built-in function has, and for
    arguments that are not functions returning arrays of their input's shape.

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
        raise SpecError(
            f"cannot register {name!r}: it is {why}; choose another name, e.g. {name}_custom"
        )
    clash = {f"d_{name}", f"d2_{name}"} & (set(USER_FUNCTIONS) | set(HELPERS))
    clash |= {name} & (user_code_names() - {name})
    if clash:
        raise SpecError(
            f"cannot register {name!r}: generated code would call {sorted(clash)[0]} for"
            " two functions (the derivatives of f are d_f and d2_f there); choose another name"
        )
    for what, fn in (("f", f), ("df", df), ("d2f", d2f)):
        if fn is None and what == "d2f":
            continue
        if not callable(fn):
            raise SpecError(
                f"register_function({name!r}, ...): {what} must be a function of an array,"
                f" got {type(fn).__name__}"
            )
        probe = np.array([0.25, 0.5, 1.5])
        try:
            with np.errstate(all="ignore"):
                out = np.asarray(fn(probe))
        except Exception as error:
            raise SpecError(
                f"register_function({name!r}, ...): {what}(x) raised"
                f" {type(error).__name__}: {error} for x = {probe.tolist()}; it must take"
                " an array and return an array of its shape"
            ) from None
        if out.shape != probe.shape:
            raise SpecError(
                f"register_function({name!r}, ...): {what}(x) returned shape {out.shape}"
                f" for x of shape {probe.shape}; it must work entrywise and keep the shape"
            )
    tex = latex if latex is not None else r"\mathrm{" + name.replace("_", r"\_") + "}"
    if not isinstance(tex, str):
        raise SpecError(f"register_function({name!r}, ...): latex must be a string")
    _remove(name)
    user = UserFunction(name, f, df, d2f, tex)
    USER_FUNCTIONS[name] = user
    names = [name, f"{name}'", f"{name}''"]
    codes = [name, f"d_{name}", f"d2_{name}"]
    fns: list[Function | None] = [f, df, d2f]
    runs = [None if fn is None else _portable(fn) for fn in fns]
    for k in range(3 if d2f is not None else 2):
        derivative = runs[k + 1] if k < 2 else None
        ELEMENTWISE[names[k]] = Elementwise(
            names[k],
            (lambda fn: lambda x, p=0.0: fn(x))(runs[k]),
            None if derivative is None else (lambda fn: lambda x, y, p: fn(x))(derivative),
            f"{names[k + 1]}({{f}})" if k < 2 else "",
            f"{codes[k]}({{x}})",
            f"{codes[k + 1]}({{x}})" if derivative is not None else "",
            tex + "'" * k + "({f})",
            tex + "'" * (k + 1) + "({f})",
            missing=None if derivative is not None else missing(name, k + 1),
        )
        HELPERS[codes[k]] = fns[k]
        DERIVATIVES[names[k]] = _derivative_nodes(name, k, derivative is not None)
    CALLABLE.append(name)


def _numpy_name(fn: Callable) -> str | None:
    """The name of ``fn`` in numpy when it is numpy's own (``np.exp``), else None."""
    own = getattr(fn, "__name__", None)
    if isinstance(fn, np.ufunc) or (own and getattr(np, own, None) is fn):
        return own
    return None


def _portable(fn: Function) -> Function:
    """``fn``, or for a numpy function (``np.exp``) the function of the same
    name in the library of the array it is given (``jax.numpy.exp`` for JAX
    arrays, ``torch.exp`` for torch tensors), so a ufunc registered as it is
    takes every library's values. Functions written by the user run as they are."""
    own = _numpy_name(fn)
    if own is None:
        return fn

    def run(x: Any) -> Any:
        if isinstance(x, np.ndarray | np.generic | float | int):
            return fn(x)
        return getattr(namespace(x), own, fn)(x)

    return run


def _derivative_nodes(name: str, k: int, known: bool):
    """The derivative of the ``k``-th entry as operations: the next entry, or an error."""
    following = name + "'" * (k + 1)

    def nodes(x, y, p, labels):
        if not known:
            raise DerivativeError(missing(name, k + 1))
        return 1.0, [Map(following, x)]

    return nodes


def unregister_function(name: str) -> None:
    """Remove a function added with :func:`register_function`. A network
    compiled with it keeps it; one not yet compiled raises :class:`SpecError`
    when evaluated.

    Raises :class:`SpecError` for a name no call of :func:`register_function`
    added (a built-in function, or an unknown name), naming the functions
    that can be removed."""
    if name not in USER_FUNCTIONS:
        mine = ", ".join(USER_FUNCTIONS) or "none"
        why = _taken(name) if isinstance(name, str) else None
        if not isinstance(name, str):
            what = "it is not a function name"
        elif why is not None:
            what = f"it is {why}"
        else:
            what = "no function of that name was registered"
        raise SpecError(
            f"cannot unregister {name!r}: {what}; tc.unregister_function removes the"
            f" functions added with tc.register_function (now: {mine})"
        )
    _remove(name)


def _remove(name: str) -> None:
    """Remove the registered ``name`` (nothing if it is not registered)."""
    if name not in USER_FUNCTIONS:
        return
    del USER_FUNCTIONS[name]
    for k, code in enumerate((name, f"d_{name}", f"d2_{name}")):
        ELEMENTWISE.pop(name + "'" * k, None)
        DERIVATIVES.pop(name + "'" * k, None)
        HELPERS.pop(code, None)
    CALLABLE.remove(name)


def helper_source(name: str, fn: Callable) -> str:
    """Python source defining ``name`` as ``fn`` for generated code: the
    function's own source (renamed), or ``name = np.f`` for numpy's own. Raises
    :class:`DerivativeError` where the source cannot be found."""
    own = getattr(fn, "__name__", None)
    if _numpy_name(fn) is not None:
        return f"{name} = np.{own}"  # a numpy function: np.sin, np.ones_like
    try:
        if own == "<lambda>":
            body = _lambda_source(fn)
            if body is None:
                raise OSError
            return f"{name} = {body}"
        if own is None:
            raise TypeError
        text = textwrap.dedent(inspect.getsource(fn))
    except (OSError, TypeError, SyntaxError):
        raise DerivativeError(
            f"generated code copies the source of {name}, but Python has none for"
            f" {own or type(fn).__name__!r} (typed at a prompt, or not a Python"
            " function); define it with def or lambda in a file, or as a numpy ufunc"
        ) from None
    if own == name:
        return text
    return re.sub(rf"^def\s+{re.escape(own)}\s*\(", f"def {name}(", text, count=1, flags=re.M)


def helper_sources(
    name: str, fn: Callable, taken: Mapping[str, object] | None = None
) -> dict[str, str]:
    """The source defining ``name`` as ``fn`` (:func:`helper_source`) and,
    before it, what a user's function needs at module level: the helper
    functions it calls (their source, recursively), the modules it uses
    (``import math``) and the numbers it reads (``SCALE = 0.5``), by name.
    ``taken``: the names generated code defines itself, with their objects
    (a global that is one of them, the same object, needs nothing).

    A :class:`DerivativeError` says what cannot be carried (a closure's
    variables, a global that is no function, module or number, a global
    named like one of generated code's own names) and how to make the
    function self-contained."""
    out: dict[str, str] = {}
    _collect(name, fn, name, dict(taken or {}), out)
    return out


def _collect(
    name: str, fn: Callable, user: str, taken: Mapping[str, object], out: dict[str, str]
) -> None:
    if name in out:
        return
    code = getattr(fn, "__code__", None)
    if _numpy_name(fn) is not None or code is None:
        out[name] = helper_source(name, fn)
        return
    own = getattr(fn, "__name__", name)
    advice = (
        f"generated code copies the source of {own} (for {user}), so it must be"
        " self-contained: define what it uses inside it, or use np.* only"
    )
    if fn.__closure__:
        raise DerivativeError(
            f"{own} uses {', '.join(code.co_freevars)} from the function around it, which"
            f" copied source cannot carry; {advice}"
        )
    out[name] = ""  # placed before its needs are found (a helper may call itself)
    scope = getattr(fn, "__globals__", {})
    for global_name in _global_names(code):
        if global_name not in scope or global_name in out:
            continue  # a builtin (or a name Python itself cannot find)
        value = scope[global_name]
        if global_name == "np" and value is np:
            continue
        if global_name in taken and taken[global_name] is value:
            continue  # generated code defines it already (another registered function)
        if global_name in taken:
            raise DerivativeError(
                f"{own} uses the global {global_name}, a name generated code gives one of its"
                f" own functions; rename it in your code, or {advice[0].lower()}{advice[1:]}"
            )
        if isinstance(value, types.ModuleType):
            module = value.__name__
            text = (
                f"import {module}" if module == global_name else f"import {module} as {global_name}"
            )
            out[global_name] = text
        elif isinstance(value, bool | int | float | complex | np.number):
            out[global_name] = (
                f"{global_name} = {value.item() if isinstance(value, np.number) else value!r}"
            )
        elif isinstance(value, types.FunctionType | np.ufunc) or _numpy_name(value) is not None:
            _collect(global_name, value, user, taken, out)
        else:
            raise DerivativeError(
                f"{own} uses the global {global_name} ({type(value).__name__}), which generated"
                f" code cannot carry (it carries functions, modules and numbers); {advice}"
            )
    out[name] = helper_source(name, fn)
    out[name] = out.pop(name)  # after its needs


def _global_names(code: types.CodeType) -> list[str]:
    """The global names ``code`` reads (nested functions and comprehensions too)."""
    names: list[str] = []
    for instruction in dis.get_instructions(code):
        if instruction.opname in ("LOAD_GLOBAL", "LOAD_NAME"):
            names.append(instruction.argval)
    for const in code.co_consts:
        if isinstance(const, types.CodeType):
            names.extend(_global_names(const))
    return list(dict.fromkeys(names))


def _lambda_source(fn: Callable) -> str | None:
    """The text of a lambda, found in its file by the position of its body."""
    code = fn.__code__
    lines = linecache.getlines(code.co_filename)
    if not lines:
        return None
    tree = ast.parse("".join(lines))
    positions = [p for p in code.co_positions() if p[0] is not None and p[2] != p[3]]
    if not positions:
        return None
    line, _, column, _ = positions[0]
    for node in ast.walk(tree):
        body = getattr(node, "body", None)
        if isinstance(node, ast.Lambda) and isinstance(body, ast.expr):
            start = (body.lineno, body.col_offset)
            end = (body.end_lineno, body.end_col_offset)
            if start <= (line, column) < end:
                return ast.get_source_segment("".join(lines), node)
    return None
