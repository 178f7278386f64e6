"""The layers of tensorchain and its import graph, read from the source.

``python tools/layers.py`` prints the picture that docs/architecture.md
shows (a test checks that the page holds exactly this output, so it stays
true), and ``python tools/layers.py --check`` lists every import that goes
from a lower layer to a higher one, every circle of imports and every
module over 500 lines, and exits with status 1 when it finds one.

Every import counts: module level, inside functions, under
``TYPE_CHECKING``, ``import tensorchain`` itself, and ``importlib.import_module``
or ``__import__`` of a literal name. A module may import modules of its own layer and of the
layers below it.
"""

from __future__ import annotations

import ast
import sys
from collections import defaultdict
from pathlib import Path

PACKAGE = Path(__file__).resolve().parent.parent / "tensorchain"

#: Bottom to top: (layer, what it owns). A layer is a subpackage or a
#: top-level module of tensorchain.
LAYERS: list[tuple[str, str]] = [
    ("version", "the version"),
    ("errors", "the exception family; warnings that name the caller's line"),
    ("networks", "built-in specs (data: the article's network)"),
    ("arrays", "array libraries, the trace of array operations, limits, caches"),
    ("functions", "the vocabulary: elementwise, matrix and along-index functions"),
    ("language", "text to syntax tree to lowered labeled operations, shapes, constants"),
    ("reference", "the independent references: reshape method, dense jets, differences"),
    ("contraction", "contracting labeled operands with opt_einsum, and the cost"),
    ("calculus", "labeled tensors, evaluation, local rules, the chain rule, any order"),
    ("runtime", "compiled programs, values and finiteness checks"),
    ("planning", "chain orders, path search, exploration"),
    ("presentation", "index notation, derivations, LaTeX, generated code, reports"),
    ("verification", "net.verify and tc.check_gradient"),
    ("network", "the facade: Network"),
    ("testing", "public helpers for users' tests"),
    ("strategies", "hypothesis strategies that draw networks"),
    ("cli", "the command line"),
    ("__init__", "the public names"),
    ("__main__", "python -m tensorchain"),
]
RANK = {name: k for k, (name, _) in enumerate(LAYERS)}
LONG = 500  # lines


def modules(package: Path = PACKAGE) -> dict[str, Path]:
    """Every module, by dotted name under the package (``calculus.chain``)."""
    found = {}
    for path in sorted(package.rglob("*.py")):
        parts = list(path.relative_to(package).with_suffix("").parts)
        if parts[-1] == "__init__" and len(parts) > 1:
            parts = parts[:-1]
        found[".".join(parts)] = path
    return found


def layer(module: str) -> str:
    return module.split(".")[0]


def imports(package: Path = PACKAGE) -> list[tuple[str, str, int]]:
    """(importer, imported, line) for every import of one of the package's
    modules by another, resolved to dotted names (a package's name when a
    name is imported from its ``__init__``)."""
    known = modules(package)
    edges = []
    for name, path in known.items():
        if name == "__init__":
            here: list[str] = []
        elif path.name == "__init__.py":
            here = name.split(".")
        else:
            here = name.split(".")[:-1]
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom) and node.level:
                base = here[: len(here) - (node.level - 1)]
                module = ".".join([*base, *([node.module] if node.module else [])])
            elif isinstance(node, ast.ImportFrom) and (node.module or "").startswith("tensorchain"):
                module = node.module.removeprefix("tensorchain").lstrip(".")
            elif isinstance(node, ast.Import):
                module = None
            elif (text := _dynamic_import(node)) is not None:
                node = ast.Import(names=[ast.alias(text)], lineno=node.lineno)
                module = None
            else:
                continue
            if module is None:  # import tensorchain[.x], or importlib.import_module("...")
                targets = [
                    a.name.removeprefix("tensorchain").lstrip(".") or "__init__"
                    for a in node.names
                    if a.name == "tensorchain" or a.name.startswith("tensorchain.")
                ]
            else:  # a module imported from a package, or a name from a module
                targets = [
                    f"{module}.{a.name}".lstrip(".")
                    if f"{module}.{a.name}".lstrip(".") in known
                    else module
                    for a in node.names
                ]
            for target in targets:
                while target and target not in known:  # a name inside a module
                    target = target.rpartition(".")[0]
                target = target or "__init__"  # a name of the package itself
                if target != name:
                    edges.append((name, target, node.lineno))
    return edges


def _dynamic_import(node: ast.AST) -> str | None:
    """The module named by ``importlib.import_module("tensorchain...")`` or
    ``__import__("tensorchain...")`` with a literal name, else None."""
    if not (isinstance(node, ast.Call) and node.args):
        return None
    func = node.func
    name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
    first = node.args[0]
    named = isinstance(first, ast.Constant) and isinstance(first.value, str)
    if name in ("import_module", "__import__") and named:
        return first.value if first.value.split(".")[0] == "tensorchain" else None
    return None


def unnamed(package: Path = PACKAGE) -> list[str]:
    """Modules whose layer :data:`LAYERS` does not name."""
    return sorted(m for m in modules(package) if layer(m) not in RANK)


def upward(package: Path = PACKAGE) -> list[str]:
    """Imports from a lower layer to a higher one, as ``a -> b``."""
    return sorted(
        {f"{a} -> {b}" for a, b, _ in imports(package) if RANK[layer(b)] > RANK[layer(a)]}
    )


def cycles(package: Path = PACKAGE, without: set[str] = frozenset()) -> list[list[str]]:
    """The import graph's strongly connected components of two or more
    modules (``without``: imports ``a -> b`` left out)."""
    graph: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in imports(package):
        if f"{a} -> {b}" not in without:
            graph[a].add(b)
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on: set[str] = set()
    found: list[list[str]] = []

    def visit(v: str) -> None:  # Tarjan's algorithm, iterative over successors
        index[v] = low[v] = len(index)
        stack.append(v)
        on.add(v)
        for w in sorted(graph[v]):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = []
            while True:
                w = stack.pop()
                on.discard(w)
                component.append(w)
                if w == v:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    sys.setrecursionlimit(max(sys.getrecursionlimit(), 10_000))
    for v in sorted(modules(package)):
        if v not in index:
            visit(v)
    return sorted(found)


def long_modules(package: Path = PACKAGE) -> dict[str, int]:
    """Modules over :data:`LONG` lines, with their lengths."""
    counts = {
        name: len(path.read_text(encoding="utf-8").splitlines())
        for name, path in modules(package).items()
    }
    return {name: n for name, n in sorted(counts.items()) if n > LONG}


def picture(package: Path = PACKAGE) -> str:
    """The layers top to bottom, each with its modules and the layers below
    it that it imports (and, until they are removed, those above)."""
    known = modules(package)
    by_layer: dict[str, list[str]] = defaultdict(list)
    for name in known:
        by_layer[layer(name)].append(name)
    uses: dict[str, set[str]] = defaultdict(set)
    for a, b, _ in imports(package):
        if layer(a) != layer(b):
            uses[layer(a)].add(layer(b))
    lines = []
    for name, owns in reversed(LAYERS):
        if name not in by_layer:
            continue
        members = [m for m in by_layer[name] if m != name]
        lines.append(f"{name}: {owns}")
        if members:
            lines.append(f"    {', '.join(m.split('.', 1)[1] for m in members)}")
        below = sorted((u for u in uses[name] if RANK[u] < RANK[name]), key=RANK.get, reverse=True)
        above = sorted((u for u in uses[name] if RANK[u] > RANK[name]), key=RANK.get)
        lines.append(f"    imports: {', '.join(below) or '(nothing)'}")
        if above:
            lines.append(f"    and, upwards (to remove): {', '.join(above)}")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    missing = unnamed()
    if missing:
        sys.exit(
            f"{', '.join(missing)}: in no layer; add the layer to LAYERS in tools/layers.py"
            " (or move the module into the subpackage of its layer)"
        )
    if "--check" in sys.argv:
        found = [
            *upward(),
            *(f"cycle: {' '.join(component)}" for component in cycles()),
            *(f"long: {name} {n}" for name, n in long_modules().items()),
        ]
        print("\n".join(found) or "the layers hold: no upward import, no circle, no long module")
        sys.exit(1 if found else 0)
    sys.stdout.write(picture())
