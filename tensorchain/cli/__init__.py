"""The command line: ``tensorchain derive|hessian|paths|verify [SPEC] [--of C]
[--wrt W] ...``. :func:`main` parses the arguments (:mod:`.arguments`), runs
the command (:mod:`.commands`) and turns an error into a message on stderr and
an exit status (:data:`EXIT_CODES`).

``python -m tensorchain.cli`` (and ``python -m tensorchain``) runs :func:`main`.

May import: every layer below (the command line is the top layer of code).
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence

import numpy as np

from ..errors import (
    DerivativeError,
    MemoryLimitError,
    PlanError,
    ShapeError,
    SpecError,
    TensorchainError,
    ValuesError,
)
from ..presentation.usercode import UsageError, import_user_module
from .arguments import build_parser
from .commands import derive, hessian_command, paths_command, verify_command

#: Exit status per error class (the most specific class that matches wins).
EXIT_CODES: tuple[tuple[type[BaseException], int], ...] = (
    (MemoryLimitError, 9),
    (PlanError, 8),
    (DerivativeError, 7),
    (ValuesError, 6),
    (ShapeError, 5),
    (SpecError, 4),
    (TensorchainError, 1),
)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; the exit status says what stopped it: 0 success,
    1 a file that cannot be read, 2 usage, 3 disagreement with the reshape
    method (or, for ``verify``, any reference), 4-9 by error class
    (:data:`EXIT_CODES`), 10 your gradient (``verify --against``) differs from
    the exact one."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.command == "derive" and args.order > 1 and (args.latex or args.steps or args.emit):
        parser.derive_command.error(  # type: ignore[attr-defined]
            "--latex, --steps and --emit print first derivatives; leave out --order"
        )
    if args.command == "verify" and args.against and args.order > 1:
        parser.error("--against checks your gradient (first order); leave out --order")
    try:
        for module in args.imports:  # before any spec is read: they may register functions
            import_user_module(module, "--import")
        commands = {
            "hessian": hessian_command,
            "paths": paths_command,
            "derive": derive,
            "verify": verify_command,
        }
        with np.errstate(all="ignore"):  # a non-finite result is reported, and fails
            return commands[args.command](args)
    except UsageError as err:
        print(f"tensorchain: error: {err}", file=sys.stderr)
        return 2
    except TensorchainError as err:
        print(f"tensorchain: error: {err}", file=sys.stderr)
        return next(code for cls, code in EXIT_CODES if isinstance(err, cls))
    except BrokenPipeError:  # `tensorchain derive | head`: the reader has gone
        sys.stdout = open(os.devnull, "w")  # noqa: SIM115 (nothing more to flush)
        return 1
    except OSError as err:
        print(f"tensorchain: error: cannot read {err.filename}: {err.strerror}", file=sys.stderr)
        return 1
