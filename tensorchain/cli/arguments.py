"""The command line's arguments: the parser of ``tensorchain
derive|hessian|paths|verify``, the options every command shares, and the
checks of what is typed (sizes, seeds, sweeps, orders), each refused with a
usage error that says what to type instead.
"""

from __future__ import annotations

import argparse
import re

from ..version import __version__


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


def build_parser() -> argparse.ArgumentParser:
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
