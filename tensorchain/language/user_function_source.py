"""The source of a user's function for generated code: its own text (a
``def`` or a ``lambda`` in a file, renamed), ``name = np.f`` for numpy's own,
and what it needs at module level (the helpers it calls, the modules and
numbers it reads).
"""

from __future__ import annotations

import ast
import dis
import inspect
import linecache
import re
import textwrap
import types
from collections.abc import Callable, Mapping

import numpy as np

from ..errors import DerivativeError


def helper_source(name: str, fn: Callable) -> str:
    """Python source defining ``name`` as ``fn`` for generated code: the
    function's own source (renamed), or ``name = np.f`` for numpy's own. Raises
    :class:`DerivativeError` where the source cannot be found."""
    own = getattr(fn, "__name__", None)
    if isinstance(fn, np.ufunc) or (own and getattr(np, own, None) is fn):
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
    if numpy_name(fn) is not None or code is None:
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
        elif isinstance(value, types.FunctionType | np.ufunc) or numpy_name(value) is not None:
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


def numpy_name(fn: Callable) -> str | None:
    """The name of ``fn`` in numpy when it is numpy's own (``np.exp``), else None."""
    own = getattr(fn, "__name__", None)
    if isinstance(fn, np.ufunc) or (own and getattr(np, own, None) is fn):
        return own
    return None


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
