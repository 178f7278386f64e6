"""The user's own Python code named on the command line: ``--import MODULE``
(a module that registers functions, imported before the spec is parsed) and
``verify --against MODULE:FUNCTION`` (a gradient function to check).

Both are imported as Python imports them: a module name is looked up in the
current directory and on the Python path (``python -m`` finds it the same
way), and a path ending in ``.py`` is loaded from that file. This is the
user's code, run because the user named it; spec text is never run.
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import traceback
from pathlib import Path
from types import ModuleType
from typing import Any


class UsageError(Exception):
    """What to differentiate was not said and cannot be guessed, or the code
    named on the command line cannot be imported (exit status 2)."""


def import_user_module(where: str, option: str) -> ModuleType:
    """The module ``where`` (a name, ``mymod``, or a file, ``path/mymod.py``),
    imported; ``option`` (``--import``) names the option in errors. An error
    the module raises while it is imported is a :class:`UsageError` naming it
    and the line it comes from."""
    if where.endswith(".py"):
        spec = importlib.util.spec_from_file_location(Path(where).stem, where)
        if spec is None or spec.loader is None or not Path(where).is_file():
            raise UsageError(f"{option}: there is no file {where}")
        module = importlib.util.module_from_spec(spec)
        _run(lambda: spec.loader.exec_module(module), where, option)  # type: ignore[union-attr]
        return module
    if not all(part.isidentifier() for part in where.split(".")):
        raise UsageError(
            f"{option} takes a module name (mymod, pkg.mymod) or a file (mymod.py), got {where!r}"
        )
    sys.path.insert(0, str(Path.cwd()))  # as `python -m` finds a module here
    try:
        return _run(lambda: importlib.import_module(where), where, option)
    except ModuleNotFoundError as err:
        raise UsageError(
            f"{option}: no module named {err.name!r} (looked in the current directory"
            f" and on the Python path); or give the file, e.g. {where.split('.')[-1]}.py"
        ) from None
    finally:
        sys.path.remove(str(Path.cwd()))


def _run(load: Any, where: str, option: str) -> Any:
    """``load()``; an error the user's module raises (a missing module it
    imports too) becomes a UsageError that says where it was raised. Only the
    module ``where`` itself not being found is left to the caller."""
    try:
        return load()
    except ModuleNotFoundError as err:
        itself = err.name is not None and (where == err.name or where.startswith(err.name + "."))
        if itself and not where.endswith(".py"):
            raise
        raise _failed(err, where, option) from None
    except Exception as err:
        raise _failed(err, where, option) from None


def _failed(err: Exception, where: str, option: str) -> UsageError:
    frames = traceback.extract_tb(err.__traceback__)
    at = next((f for f in reversed(frames) if "importlib" not in f.filename), None)
    line = f" ({at.filename}, line {at.lineno})" if at is not None else ""
    return UsageError(
        f"{option} {where}: importing it raised {type(err).__name__}: {err}{line}; fix the"
        " module, then run the command again"
    )


def user_function(text: str) -> Any:
    """The function named ``module:function`` or ``path/to/file.py:function``."""
    where, colon, name = text.rpartition(":")
    if not colon or not where or not name.isidentifier():
        raise UsageError(
            f"--against takes MODULE:FUNCTION (e.g. mygrad:backward) or"
            f" FILE.py:FUNCTION, got {text!r}"
        )
    module = import_user_module(where, "--against")
    fn = getattr(module, name, None)
    if not callable(fn):
        raise UsageError(f"--against: {where} has no function {name!r}")
    return fn
