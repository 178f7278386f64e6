"""The commands' bodies: ``derive``, ``hessian``, ``paths`` and ``verify``,
each taking the parsed arguments, printing its report on stdout and returning
the exit status (0, or 3 when a result disagrees with its reference, 10 when
your gradient does).
"""

from __future__ import annotations

import argparse
import math
import sys
from pathlib import Path

import numpy as np

from ..errors import TensorchainError
from ..language.domains import drawn_note
from ..network import Network, load, parse
from ..networks import builtin
from ..presentation.derivation import module_source
from ..presentation.report import RULE, derivation, derivative_report, hessian_report
from ..presentation.usercode import UsageError, user_function
from ..runtime.arguments import free_name
from ..runtime.finite import first_non_finite, upstream
from ..runtime.values import values_from_file

TOLERANCE = 1e-9


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


def _differentiated(args: argparse.Namespace, net: Network, title: str) -> str:
    """The tensor ``--of`` names, else the network's last output."""
    of = args.of or (net.outputs[-1] if net.outputs else None)
    if of is None:
        raise UsageError(f"{title} defines no tensor to differentiate")
    return of


def paths_command(args: argparse.Namespace) -> int:
    from ..planning.explore import crossover, explore, sweep

    out = sys.stdout
    net, title = _load(args)
    of = _differentiated(args, net, title)
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
    of = _differentiated(args, net, title)
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
    from ..verification.check_gradient import check_gradient

    # imported first: a module that registers functions does it before the spec is read
    fn = user_function(args.against) if args.against else None
    net, title = _load(args)
    of = _differentiated(args, net, title)
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
