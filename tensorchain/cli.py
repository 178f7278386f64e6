"""The command line: ``tensorchain derive|hessian|paths|verify [SPEC] [--of C] [--wrt W] ...``."""

from __future__ import annotations

import argparse
import math
import os
import re
import sys
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from .errors import (
    DerivativeError,
    MemoryLimitError,
    PlanError,
    ShapeError,
    SpecError,
    TensorchainError,
    ValuesError,
)
from .language.domains import drawn_note
from .network import Network, load, parse
from .networks import builtin
from .presentation.derivation import module_source
from .presentation.report import RULE, derivation, derivative_report, hessian_report
from .presentation.usercode import UsageError, import_user_module, user_function
from .runtime.arguments import free_name
from .runtime.finite import first_non_finite, upstream
from .runtime.values import values_from_file
from .version import __version__

TOLERANCE = 1e-9


def _whole(text: str) -> int:
    """A whole number ≥ 0 written with the ASCII digits 0-9 (``int`` takes others too)."""
    if not re.fullmatch(r"[0-9]+", text.strip()):
        raise argparse.ArgumentTypeError(
            f"expected a whole number written with the digits 0-9, got {text!r}"
        )
    return int(text)


def _dims(text: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for part in filter(None, (p.strip() for p in text.split(","))):
        name, eq, value = part.partition("=")
        if not eq or not name.strip() or not re.fullmatch(r"[0-9]+", value.strip()):
            raise argparse.ArgumentTypeError(
                f"expected NAME=SIZE like n=4 (digits 0-9), got {part!r}"
            )
        if name.strip() in out:
            raise argparse.ArgumentTypeError(f"dim {name.strip()} is given twice in {text!r}")
        out[name.strip()] = int(value)
    return out


class _MergeDims(argparse.Action):
    """``--dims n=4 --dims m=3`` is ``--dims n=4,m=3``; a dim given twice is an error."""

    def __call__(self, parser, namespace, values, option_string=None):
        merged = dict(getattr(namespace, self.dest) or {})
        twice = [d for d in values if d in merged]
        if twice:
            parser.error(f"argument --dims: dim {twice[0]} is given twice")
        merged.update(values)
        setattr(namespace, self.dest, merged)


def _sweep(text: str) -> tuple[str, list[int]]:
    """``B=1,8,64``: a dim and at least one size (digits 0-9)."""
    dim, eq, sizes = text.partition("=")
    values = [v.strip() for v in sizes.split(",") if v.strip()]
    if (
        not eq
        or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", dim.strip())
        or not values
        or not all(re.fullmatch(r"[0-9]+", v) for v in values)
    ):
        raise argparse.ArgumentTypeError(
            f"expected DIM=SIZE,SIZE,... like B=1,8,64 (a dim and at least one size), got {text!r}"
        )
    return dim.strip(), [int(v) for v in values]


def _order(text: str) -> int:
    if not re.fullmatch(r"[0-9]+", text) or int(text) < 1:
        raise argparse.ArgumentTypeError(f"expected a whole number of at least 1, got {text!r}")
    return int(text)


def _common(command: argparse.ArgumentParser, of_help: str) -> None:
    """The arguments every command takes: the spec, --of, --dims, --seed and --import."""
    command.add_argument("spec", nargs="?", help="a .tc spec file (default: the article's network)")
    command.add_argument("--of", help=of_help)
    command.add_argument(
        "--dims",
        type=_dims,
        default={},
        action=_MergeDims,
        help="dim sizes, e.g. n=4,m=3 (default: the spec's); may be given more than once",
    )
    command.add_argument("--seed", type=_whole, default=0, help="seed of the random values")
    command.add_argument(
        "--import",
        dest="imports",
        metavar="MODULE",
        action="append",
        default=[],
        help="import MODULE (a name, or a FILE.py) before the spec is read, e.g. one"
        " that calls tc.register_function; may be given more than once",
    )


def _values_option(command: argparse.ArgumentParser) -> None:
    command.add_argument(
        "--values",
        metavar="FILE.npz",
        help="values from a numpy .npz file, one array per input or param named after it"
        " (np.savez(FILE, x=..., W=...)); those it lacks are drawn (--seed)",
    )


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="tensorchain",
        description="Derive gradients of tensor networks as labeled tensor chains.",
    )
    parser.add_argument("--version", action="version", version=f"tensorchain {__version__}")
    sub = parser.add_subparsers(dest="command", required=True)
    derive = sub.add_parser(
        "derive",
        help="derive a gradient or Jacobian and check it against the reshape method",
        description=(
            "Print each local derivative as a labeled tensor, the chain as one einsum,"
            " opt_einsum's path and cost beside the reshape method's, the result, and"
            " its largest difference from the reshape method."
        ),
    )
    _common(derive, "the tensor to differentiate (default: the last)")
    derive.add_argument(
        "--wrt", help="comma-separated tensors to differentiate by (default: every param)"
    )
    shown = derive.add_mutually_exclusive_group()
    shown.add_argument(
        "--latex", action="store_true", help="print only the formula of each derivative in LaTeX"
    )
    shown.add_argument(
        "--steps", action="store_true", help="print only the chain rule step by step"
    )
    shown.add_argument(
        "--emit",
        choices=["python"],
        help="print only standalone numpy source computing the derivatives",
    )
    _values_option(derive)
    derive.add_argument(
        "--order",
        type=_order,
        default=1,
        help="the order of the derivative (default 1); from 2 on, print its structure"
        " (axes, surviving deltas, stored against dense entries) and check it",
    )
    hessian = sub.add_parser(
        "hessian",
        help="derive a Hessian block with its structure, checked against the reshape method",
        description=(
            "Print the gradient network whose Jacobian is the Hessian, the Hessian's"
            " labeled structure (which deltas survive, how much smaller than dense),"
            " its formula, and its largest difference from the reshape method."
        ),
    )
    _common(hessian, "the tensor to differentiate (default: the last scalar)")
    hessian.add_argument("--wrt", help="the first tensor (default: the first param)")
    hessian.add_argument("--wrt2", help="the second tensor (default: --wrt)")
    _values_option(hessian)
    paths = sub.add_parser(
        "paths",
        help="compare contraction orders of a derivative (forward, reverse, optimal, ...)",
        description=(
            "Plan the derivative under every chain order and opt_einsum strategy and"
            " print FLOPs, the largest intermediate, planning time, the ratio to the"
            " best and the Pareto front; optionally sweep a dim or plot."
        ),
    )
    _common(paths, "the tensor to differentiate (default: the last)")
    paths.add_argument(
        "--wrt",
        help="comma-separated tensors to differentiate by (default: the first param of depends on)",
    )
    paths.add_argument(
        "--sweep",
        type=_sweep,
        help="a dim and sizes, e.g. B=1,8,64,512: forward vs reverse FLOPs per size",
    )
    paths.add_argument(
        "--plot",
        help="write a PNG of FLOPs against memory (needs matplotlib); with several --wrt,"
        " one per tensor, its name added to the file name",
    )
    paths.add_argument("--tree", action="store_true", help="also print the optimal order's tree")
    parser.derive_command = derive  # type: ignore[attr-defined]  # for its usage errors
    verify = sub.add_parser(
        "verify",
        help="check a derivative against every reference, or your own gradient code",
        description=(
            "Compare tensorchain's derivative with the reshape method, finite differences,"
            " JAX and PyTorch (those installed); with --against, check your own gradient"
            " function against the exact gradient instead. Exit status 0 when everything"
            " agrees, 3 when a reference disagrees, 10 when your gradient does."
        ),
    )
    _common(verify, "the tensor to differentiate (default: the last)")
    verify.add_argument(
        "--wrt", help="comma-separated tensors to differentiate by (default: every param)"
    )
    verify.add_argument("--order", type=_order, default=1, help="the order (default 1)")
    verify.add_argument(
        "--against",
        metavar="MODULE:FUNCTION",
        help="your gradient function, e.g. mygrad:backward or path/to/mygrad.py:backward"
        " (this imports and runs that module: name only code you trust)",
    )
    _values_option(verify)
    verify.add_argument(
        "--dtype", choices=["float64", "float32"], default=None,
        help="the dtype your function gets (--against; default float64, or that of"
        " --values)",
    )  # fmt: skip
    verify.add_argument(
        "--library", choices=["numpy", "torch", "jax"], default="numpy",
        help="the arrays your function gets (--against; default numpy)",
    )  # fmt: skip
    verify.add_argument(
        "--tolerance", type=float, help="the tolerance of the exact references (default 1e-9)"
    )
    return parser


def _load(args: argparse.Namespace):
    if args.spec:
        if "=" in args.spec and not Path(args.spec).exists():  # --dims n=4 m=3
            raise UsageError(
                f"{args.spec!r} is not a file: sizes go after --dims, separated by commas"
                " (--dims n=4,m=3)"
            )
        net, title = load(args.spec), args.spec
    else:
        net, title = parse(builtin("article")), "the article's network (built in)"
    # The sizes given become the defaults: a factor of a product dim (H of
    # (H K)) shows in no value's shape, so the values alone cannot carry it.
    return (net.with_sizes(args.dims) if args.dims else net), title


def hessian_command(args: argparse.Namespace) -> int:
    out = sys.stdout
    net, title = _load(args)
    of = args.of
    if of is None:
        scalars = [o for o in net.outputs if not net.info(o).dims]
        if not scalars:
            last = net.outputs[-1] if net.outputs else None
            if last is None:
                raise UsageError(f"{title} defines no tensor to take the Hessian of")
            total = free_name(net, "loss", "total", f"{last}_total")
            raise UsageError(
                f"{title} defines no scalar to take the Hessian of (its last tensor,"
                f" {last}, has axes [{', '.join(net.info(last).dims)}]); name a tensor"
                f" with --of ({last}: the Hessian of each of its entries), or add a scalar"
                f" to the spec, e.g. '{total} = sum({last})', and name it with --of {total}"
            )
        of = scalars[-1]
    net.info(of)  # an unknown tensor: DerivativeError, exit 7
    wrt = args.wrt
    if wrt is None:
        used = upstream(net, of)
        candidates = [p for p in net.params if p in used] or [i for i in net.inputs if i in used]
        if not candidates:
            raise UsageError(
                f"{of} depends on no input or param, so its Hessian is empty;"
                " name another scalar with --of"
            )
        wrt = candidates[0]
    net.info(of), net.info(wrt)
    values, note = _values(net, args)
    text, diff = hessian_report(net, of, wrt, args.wrt2 or wrt, values)
    print(f"tensorchain hessian: {title}\n{RULE}\n{net}\n\nvalues: {note}\n\n{text}", file=out)
    return _verdict(net, of, [(f"∂²{of}/∂{wrt}∂{args.wrt2 or wrt}", diff)], values, args)


def _verdict(net, of: str, diffs: list[tuple[str, float]], values, args) -> int:
    """0 when every result agrees with the reshape method; else 3, with the
    reason on stderr. NaN or infinity in a result is a failure (``nan > tol``
    is False, so the comparison is written the other way round)."""
    failed = [(title, diff) for title, diff in diffs if not diff <= TOLERANCE]
    if not failed:
        return 0
    not_finite = [title for title, diff in failed if not math.isfinite(diff)]
    if not_finite:
        reason = (
            f"{', '.join(not_finite)} (or the reshape method's) holds NaN or infinity;"
            f" {first_non_finite(net, values, of)}{_domain_hint(net, of, args)}"
        )
    else:
        worst = max(diff for _, diff in failed)
        reason = f"the result differs from the reshape method by {worst:.1e}"
    print(f"tensorchain: error: {reason}", file=sys.stderr)
    return 3


def paths_command(args: argparse.Namespace) -> int:
    from .planning.explore import crossover, explore, sweep

    out = sys.stdout
    net, title = _load(args)
    of = args.of or (net.outputs[-1] if net.outputs else None)
    if of is None:
        raise UsageError(f"{title} defines no tensor to differentiate")
    net.info(of)
    if args.wrt:
        wrts = [w.strip() for w in args.wrt.split(",") if w.strip()]
        for w in wrts:
            net.info(w)
    else:
        used = upstream(net, of)
        wrts = [p for p in net.params if p in used][:1] or [i for i in net.inputs if i in used][:1]
    if not wrts:
        raise UsageError(
            f"{of} depends on no input or param; name what to differentiate by with --wrt"
        )
    print(f"tensorchain paths: {title}\n{RULE}", file=out)
    for k, wrt in enumerate(wrts):
        found = explore(net, of, wrt, dims=args.dims)
        print(("\n" if k else "") + str(found), file=out)
        if args.tree:
            print(f"\noptimal order:\n{net.plan(of, wrt, dims=args.dims).tree()}", file=out)
        if args.sweep:
            dim, sizes = args.sweep
            rows = sweep(net, of, wrt, dim, sizes, dims=args.dims)
            print(f"\n{dim:>8} {'forward':>16} {'reverse':>16} {'optimal':>16}", file=out)
            for size, fwd, rev, best in rows:
                print(f"{size:>8} {fwd:>16,} {rev:>16,} {best:>16,}", file=out)
            at = crossover(rows)
            said = f"reverse is cheaper from {dim}={at}" if at else "reverse is never cheaper"
            print(f"{said} in this sweep", file=out)
        if args.plot:
            path = Path(args.plot)
            if len(wrts) > 1:  # one picture per tensor: paths_W.png, paths_b.png
                path = path.with_name(f"{path.stem}_{wrt}{path.suffix}")
            try:
                found.plot(str(path))
            except OSError as err:
                raise TensorchainError(f"cannot write {path}: {err.strerror}") from None
            print(f"wrote {path}", file=out)
    return 0


def derive(args: argparse.Namespace) -> int:
    out = sys.stdout
    net, title = _load(args)
    of = args.of or (net.outputs[-1] if net.outputs else None)
    if of is None:
        raise UsageError(f"{title} defines no tensor to differentiate")
    if args.wrt is not None:
        wrts = [w.strip() for w in args.wrt.split(",") if w.strip()]
        if not wrts:
            raise UsageError(f"--wrt {args.wrt!r} names no tensor; e.g. --wrt W,b")
    else:
        wrts = net.params
    if not wrts:
        raise UsageError(f"{title} has no param; name what to differentiate by with --wrt")
    for name in (of, *wrts):  # every name checked before anything is printed
        net.info(name)
    if args.latex or args.steps or args.emit:
        derivations = [net.derive(of, w, dims=args.dims) for w in wrts]
        if args.emit:
            joint = len(derivations) > 1  # one function, shared work, a dict of results
            print(module_source(derivations, joint=joint), file=out, end="")
        for d in derivations if not args.emit else ():
            print(d.latex() if args.latex else "\n".join([str(d), *d.steps, ""]), file=out)
        return 0
    values, note = _values(net, args)
    sizes = net.sizes(values)
    print(f"tensorchain derive: {title}\n{RULE}", file=out)
    print(str(net), file=out)
    print(f"\n{_sizes_line(sizes)}", file=out)
    print(f"values: {note}\n", file=out)
    diffs = []
    for w in wrts:
        if args.order > 1:
            text, diff = derivative_report(net, of, w, args.order, values)
        else:
            text, diff = derivation(net, of, w, values)
        print(text + "\n", file=out)
        diffs.append((f"∂{of}/∂{w}" if not net.info(of).dims else f"d{of}/d{w}", diff))
    return _verdict(net, of, diffs, values, args)


def _values(net: Network, args: argparse.Namespace) -> tuple[dict[str, np.ndarray], str]:
    """The values of a command (``--values``, the rest drawn) and a note saying which is which."""
    if not args.values:
        return net.random_values(seed=args.seed, dims=args.dims), drawn_note(net, args.seed)
    return values_from_file(net, args.values, args.seed, args.dims)


def _domain_hint(net: Network, of: str, args: argparse.Namespace) -> str:
    """Advice when drawn values made a result NaN: say which values a tensor takes."""
    used = upstream(net, of)
    free = [
        t for t in net.tensors.values()
        if t.kind in ("input", "param") and t.domain is None and t.name in used
    ]  # fmt: skip
    if not free or args.values:
        return ""
    t = min(free, key=lambda t: t.kind != "param")  # a param's log or sqrt, most likely
    axes = f"[{', '.join(t.dims)}]" if t.dims else ""
    return (
        f" (the values were drawn standard normal: declare which values a tensor takes,"
        f" e.g. '{t.kind} {t.name}{axes} positive', or give them with --values FILE.npz)"
    )


def verify_command(args: argparse.Namespace) -> int:
    from .verification.check_gradient import check_gradient

    # imported first: a module that registers functions does it before the spec is read
    fn = user_function(args.against) if args.against else None
    net, title = _load(args)
    of = args.of or (net.outputs[-1] if net.outputs else None)
    if of is None:
        raise UsageError(f"{title} defines no tensor to differentiate")
    wrts = [w.strip() for w in args.wrt.split(",") if w.strip()] if args.wrt else None
    values = _values(net, args)[0] if args.values else None
    dims = args.dims or None
    if args.against:
        print(f"tensorchain verify: {title} against {args.against}\n{RULE}")
        check = check_gradient(
            fn, net, of, wrts, values=values, dims=dims, dtype=args.dtype,
            library=args.library, seed=args.seed,
        )  # fmt: skip
        print(check)
        return 0 if check.ok else 10
    if values is None:
        report = net.verify(
            of, wrts, order=args.order, seed=args.seed, tolerance=args.tolerance, dims=dims
        )
    else:
        report = net.verify(of, wrts, values, order=args.order, tolerance=args.tolerance, dims=dims)
    print(f"tensorchain verify: {title}\n{RULE}")
    print(report)
    return 0 if report.ok else 3


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
    parser = _parser()
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


def _sizes_line(sizes: dict[str, int]) -> str:
    """``sizes: n=4, m=3``, in lines of at most 80 characters (a dim name such
    as ``(C H W)`` is never broken)."""
    lines, line = [], "sizes:"
    for k, (d, n) in enumerate(sizes.items()):
        entry = f"{d}={n}" + ("," if k < len(sizes) - 1 else "")
        if len(line) + 1 + len(entry) > 80:
            lines.append(line)
            line = "      "
        line += " " + entry
    return "\n".join([*lines, line])


if __name__ == "__main__":
    sys.exit(main())
