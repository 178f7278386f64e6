"""Second order by source transformation: a network's gradient, written as a network.

``gradient_spec(net, of, sizes)`` writes spec text with (1) the network in
single-operation form, one statement per operation, and (2) reverse-mode
adjoint statements ``__g_T`` for every tensor on a path to the scalar ``of``,
each a sum of einsum terms in the language itself (the VJP of a product is the
cotangent times the other factors; of a sum, the cotangent summed over
broadcast axes; of ``f``, the cotangent times ``f'``, written with ``f``'s
output where backprop would use it: ``σ' = σ (1 − σ)``).

The second derivatives are then first derivatives of that network: the
Hessian block ``d² of / d wrt d wrt2`` is ``jacobian("__g_wrt", wrt2)``, which
the chain rule assembles as J2ᵀ H1 J2 plus the gradient contracted with the
second derivatives, with symbolic deltas; a Hessian-vector product is the
gradient of ``Σ __g_wrt · v``, with no Hessian formed.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING

from .errors import DerivativeError
from .lower import Along, Const, Leaf, Map, Node, Product, Sum, children

if TYPE_CHECKING:
    from .network import Network

#: f' in the language, from the input ``{x}``, the output ``{y}`` and ``{p}``.
DERIVATIVES = {
    "sigmoid": "({y} * (1 - {y}))",
    "tanh": "(1 - {y} * {y})",
    "relu": "step({x})",
    "exp": "{y}",
    "log": "(1 / {x})",
    "softplus": "sigmoid({x})",
    "sin": "cos({x})",
    "cos": "(-sin({x}))",
    "sqrt": "(0.5 / {y})",
    "square": "(2 * {x})",
    "abs": "sign({x})",
    "step": "0",
    "sign": "0",
    "reciprocal": "(-({y} * {y}))",
}


def adjoint(name: str) -> str:
    """The name of the tensor holding d of / d ``name`` in a gradient network."""
    return f"__g_{name}"


class _Writer:
    def __init__(self, net: Network, sizes: Mapping[str, int]) -> None:
        self.net = net
        self.sizes = sizes
        self.lines: list[str] = []
        self.ops: list[tuple[str, Node]] = []  # (tensor name, operation), in order
        self.name_of: dict[int, str] = {}  # id(node) -> tensor holding its value
        self.statement_of: dict[int, str] = {}  # id(node) -> its statement's target

    def ref(self, node: Node, labels: Mapping[str, str]) -> str:
        """``T[i, j]`` for a node's value, its labels renamed through ``labels``."""
        if isinstance(node, Const):
            return repr(node.value)
        name = node.name if isinstance(node, Leaf) else self.name_of[id(node)]
        if not node.labels:
            return name
        return f"{name}[{', '.join(labels[lab] for lab in node.labels)}]"

    def forward(self) -> None:
        """Every statement as one statement per operation (children first)."""
        for stmt in self.net.statements:
            count = 0
            stack: list[tuple[Node, bool]] = [(stmt.root, False)]
            while stack:
                node, expanded = stack.pop()
                if isinstance(node, (Leaf, Const)):
                    continue
                if not expanded:
                    stack.append((node, True))
                    stack.extend((c, False) for c in reversed(children(node)))
                    continue
                if node is stmt.root:
                    name = stmt.target
                else:
                    count += 1
                    name = f"__{stmt.target}_{count}"
                self.name_of[id(node)] = name
                self.statement_of[id(node)] = stmt.target
                self.ops.append((name, node))
                self.lines.append(self.define(name, node))

    def define(self, name: str, node: Node) -> str:
        labels = _letters(node)
        left = f"{name}[{', '.join(labels[lab] for lab in node.labels)}]" if node.labels else name
        if isinstance(node, Product):
            body = " * ".join(self.ref(f, labels) for f in node.factors)
            if node.mean_over:
                body = f"mean({body}, {', '.join(labels[m] for m in node.mean_over)})"
            return f"{left} = {node.coeff!r} * {body}"
        if isinstance(node, Sum):
            terms = " + ".join(f"{c!r} * {self.ref(t, labels)}" for c, t in node.terms)
            return f"{left} = {terms}"
        if isinstance(node, Along):
            axes = ", ".join(labels[lab] for lab in node.axes)
            return f"{left} = {node.func}({self.ref(node.arg, labels)}, {axes})"
        assert isinstance(node, Map)
        arg = self.ref(node.arg, labels)
        if node.func == "pow":
            return f"{left} = {arg} ^ {node.param!r}"
        if node.func == "reciprocal":
            return f"{left} = 1 / {arg}"
        return f"{left} = {node.func}({arg})"

    def backward(self, of: str) -> dict[str, str]:
        """Adjoint statements, from ``of`` back to the inputs and params."""
        self.of = of
        terms: dict[str, list[tuple[str, set[str]]]] = {of: [("1", set())]}
        ranks = {t.name: len(t.dims) for t in self.net.tensors.values()}
        ranks.update((name, len(node.labels)) for name, node in self.ops)
        done: dict[str, str] = {}
        for name, node in reversed(self.ops):
            if name not in terms:
                continue
            self.emit(name, ranks[name], terms.pop(name), done)
            for k, child in enumerate(children(node)):
                if isinstance(child, Const):
                    continue
                target = child.name if isinstance(child, Leaf) else self.name_of[id(child)]
                terms.setdefault(target, []).append(self.vjp(name, node, k, child))
        for t in self.net.tensors.values():
            if t.name in terms:
                self.emit(t.name, len(t.dims), terms.pop(t.name), done)
        return done

    def emit(self, name: str, rank: int, parts: list, done: dict[str, str]) -> None:
        left = [f"k{a}" for a in range(rank)]
        head = f"{adjoint(name)}[{', '.join(left)}]" if left else adjoint(name)
        texts = [text for text, _ in parts]
        covered = set().union(*(axes for _, axes in parts))
        if any(k not in covered for k in left):
            # A cotangent broadcast over an axis no term has: the language
            # broadcasts a sum over the left side once some term has the axis.
            texts.append(f"0 * {name}[{', '.join(left)}]")
        self.lines.append(f"{head} = {' + '.join(texts)}")
        done[name] = adjoint(name)

    def vjp(self, name: str, node: Node, k: int, child: Node) -> tuple[str, set[str]]:
        """One term of the adjoint of ``child`` (occurrence ``k`` of ``node``),
        written with the child's axes as ``k0, k1, ...``."""
        if len(set(child.labels)) < len(child.labels):
            target = self.statement_of[id(node)]
            line = self.net.tensors[target].pos.line
            tensor = child.name if isinstance(child, Leaf) else "a value"
            raise DerivativeError(
                f"second derivatives through the diagonal of {tensor} (line {line}, which"
                f" defines {target}) are not supported yet; Hessians and hvp need a network"
                " without a repeated index inside one tensor (like A[i, i]); first"
                " derivatives of it work"
            )
        labels = {lab: f"u{a}" for a, lab in enumerate(_all_labels(node))}
        labels.update((lab, f"k{a}") for a, lab in enumerate(child.labels))
        text = self._vjp(name, node, k, child, labels)
        if isinstance(node, Product):
            others = {lab for j, f in enumerate(node.factors) if j != k for lab in f.labels}
            present = others | set(node.labels)
        elif isinstance(node, Along):
            present = set(child.labels)
        else:
            present = set(node.labels)
        return text, {labels[lab] for lab in present}

    def _vjp(self, name: str, node: Node, k: int, child: Node, labels: dict[str, str]) -> str:
        # d of / d of = 1: written as the number, so that it folds away.
        cotangent = "1.0" if name == self.of else self.ref_named(adjoint(name), node.labels, labels)
        if isinstance(node, Product):
            coeff = node.coeff
            label_sizes = self.net.label_sizes(self.statement_of[id(node)], self.sizes)
            for m in node.mean_over:
                coeff /= label_sizes[m]
            others = [self.ref(f, labels) for j, f in enumerate(node.factors) if j != k]
            return " * ".join([repr(coeff), cotangent, *others])
        if isinstance(node, Sum):
            return f"{node.terms[k][0]!r} * {cotangent}"
        x, y = self.ref(child, labels), self.ref_named(name, node.labels, labels)
        if isinstance(node, Along):
            return self._vjp_along(node, cotangent, x, y, labels)
        assert isinstance(node, Map)
        if node.func == "pow":
            p = node.param
            return f"{cotangent} * {p!r} * {x} ^ {p - 1!r}"
        return f"{cotangent} * {DERIVATIVES[node.func].format(x=x, y=y)}"

    def _vjp_along(self, node: Along, cot: str, x: str, y: str, labels: dict[str, str]) -> str:
        axes = ", ".join(labels[lab] for lab in node.axes)
        if node.func == "softmax":  # y (g − Σ_A g y)
            return f"{y} * ({cot} - sum({cot} * {y}, {axes}))"
        if node.func == "log_softmax":  # g − exp(y) Σ_A g
            return f"({cot} - exp({y}) * sum({cot}, {axes}))"
        if node.func == "logsumexp":  # g exp(x − y)
            return f"{cot} * exp({x} - {y})"
        target = self.statement_of[id(node)]
        line = self.net.tensors[target].pos.line
        raise DerivativeError(
            f"second derivatives through {node.func} (line {line}, which defines {target})"
            " are not supported: its derivative is piecewise constant (zero almost"
            " everywhere); Hessians and hvp need a network without max or min"
        )

    @staticmethod
    def ref_named(name: str, node_labels, labels: Mapping[str, str]) -> str:
        if not node_labels:
            return name
        return f"{name}[{', '.join(labels[lab] for lab in node_labels)}]"


def _all_labels(node: Node) -> list[str]:
    seen = dict.fromkeys(node.labels)
    for c in children(node):
        seen.update(dict.fromkeys(c.labels))
    return list(seen)


def _letters(node: Node) -> dict[str, str]:
    return {lab: f"i{a}" for a, lab in enumerate(_all_labels(node))}


def gradient_spec(net: Network, of: str, sizes: Mapping[str, int]) -> tuple[str, dict[str, str]]:
    """Spec text of ``net`` followed by its reverse-mode gradient statements,
    for the given sizes, and the name of each tensor's adjoint."""
    lines = [f"dim {d} = {sizes[d]}" for d in net.dims]
    for t in net.tensors.values():
        axes = f"[{', '.join(t.dims)}]" if t.dims else ""
        if t.kind in ("input", "param"):
            lines.append(f"{t.kind} {t.name}{axes}")
        elif t.kind == "shift":
            stride, padding = t.shift
            lines.append(f"shift {t.name}{axes} stride {stride} padding {padding}")
    writer = _Writer(net, sizes)
    writer.forward()
    adjoints = writer.backward(of)
    return "\n".join([*lines, *writer.lines]) + "\n", adjoints
