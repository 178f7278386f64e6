"""Derivations people can read: index notation, einsum, LaTeX, steps, the
article's matrix form, and standalone numpy source.

``net.derive(of, wrt)`` runs the chain rule on placeholder arrays (shapes
only), so the whole derivation is symbolic; with ``values`` it is also
evaluated, and the einsum of each term can be contracted back to check it.
"""

from __future__ import annotations

import html
import itertools
import keyword
import math
import re
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from ..arrays.trace import Slot, tracing
from ..calculus.dense import place
from ..calculus.labeled import LabeledTensor, Term
from ..calculus.node_names import tex_name
from ..calculus.printing import (
    format_sum,
    indexed,
    letters,
    named_in,
    picked_name,
    signed_sum,
)
from ..functions.along import HELPERS
from ..functions.registry import HELPERS as FUNCTION_HELPERS
from ..language.gather import Selection, gather, onehot, scatter
from ..language.shift import unwindows, windows
from ..language.user_function_calls import calls_of
from ..language.user_function_source import helper_source, helper_sources
from ..runtime.arguments import wrt_list
from ..runtime.leaves import placeholders
from ..version import __version__
from .notation import text_tex

if TYPE_CHECKING:
    from ..calculus.chain import ChainResult
    from ..language.network_like import Differentiable

OUTPUT_LETTERS = "ijklmnoabcdefgh"
SUMMED_LETTERS = "pqrstuvwxyz"


class Derivation:
    """The derivation of ``d of / d wrt``: what ``net.derive`` returns.

    Example:
        >>> import tensorchain as tc
        >>> d = tc.parse(tc.ARTICLE).derive("C", "W")
        >>> print(d)
        ∂C/∂W[i, j] = 0.5 · 2 (a - y)[i] · σ'(z)[i] · x[j]
        >>> d.einsum
        'i,i,j->ij'
        >>> d.operands
        ('2 (a - y)', "σ'(z)", 'x')
    """

    def __init__(
        self, net: Differentiable, of: str, wrt: str, result: ChainResult, sizes: dict[str, int]
    ) -> None:
        self.net = net
        self.of = of
        self.wrt = wrt
        self.result = result
        self.sizes = sizes
        # The chain as it stands before its last contraction (the result itself
        # when it needs none).
        self.chain: LabeledTensor = result.chains.get(wrt, result.jacobians[wrt])
        dims = {d for t in net.tensors.values() for d in t.dims}
        self._avoid = frozenset(dims) | frozenset(net.tensors) | frozenset(calls_of(net))
        self._names = _letters(self.chain, self._avoid)

    @property
    def numeric(self) -> bool:
        """Whether values were given (``operand_values`` is then available)."""
        return not any(isinstance(a, Slot) for a in self.chain.stored_arrays())

    # --- index notation and einsum ---

    def lhs(self) -> str:
        out = [self._names[i] for i in self.chain.indices]
        k = len(self.net.tensors[self.of].dims)
        if k == 0:
            return f"∂{self.of}/∂{self.wrt}" + (f"[{', '.join(out)}]" if out else "")
        return f"∂{self.of}[{', '.join(out[:k])}]/∂{self.wrt}[{', '.join(out[k:])}]"

    def __str__(self) -> str:
        terms = format_sum(self.chain.terms, self._names)
        return f"{self.lhs()} = {terms}"

    def __repr__(self) -> str:
        return f"<Derivation {self}>"

    @property
    def terms(self) -> list[tuple[float, str, tuple[str, ...], tuple[tuple[str, str], ...]]]:
        """Each term as ``(coefficient, einsum, operand names, surviving deltas)``;
        axes of the result that a term's einsum leaves out are broadcast."""
        out = []
        for t in self.chain.terms:
            letters = [[self._names[lab] for lab in f.labels] for f in t.factors]
            present = {lab for f in t.factors for lab in f.labels}
            # Axes of the result that no factor has are broadcast (left out).
            reps = [i for i in _reps(t, self.chain.indices) if i in present]
            out_letters = [self._names[i] for i in reps]
            eq = ",".join("".join(x) for x in letters) + "->" + "".join(out_letters)
            deltas = tuple((self._names[a], self._names[b]) for a, b in t.deltas)
            out.append((t.coeff, eq, tuple(f.name for f in t.factors), deltas))
        return out

    @property
    def einsum(self) -> str:
        """The einsum of the chain after delta elimination (terms joined by ``+``)."""
        return " + ".join(eq for _, eq, _, _ in self.terms)

    @property
    def operands(self) -> tuple[str, ...]:
        """The names of the einsum's operands (of every term, in order)."""
        return tuple(name for _, _, names, _ in self.terms for name in names)

    def operand_values(self) -> list[list[np.ndarray]]:
        """The operands' arrays, term by term (only for a derivation with values)."""
        if not self.numeric:
            raise ValueError("this derivation has no values: call net.derive(..., values=...)")
        return [[f.array for f in t.factors] for t in self.chain.terms]

    # --- LaTeX ---

    def latex(self) -> str:
        """The formula in LaTeX (inside matplotlib's mathtext subset)."""
        out = [self._names[i] for i in self.chain.indices]
        k = len(self.net.tensors[self.of].dims)
        of = tex_name(self.of) + (f"_{{{''.join(out[:k])}}}" if k else "")
        wrt = "{" + tex_name(self.wrt) + "}" + (f"_{{{''.join(out[k:])}}}" if out[k:] else "")
        terms = signed_sum([self._term_tex(t) for t in self.chain.terms])
        return rf"\frac{{\partial {of}}}{{\partial {wrt}}} = " + terms

    def _term_tex(self, term: Term) -> tuple[bool, str]:
        negative = isinstance(term.coeff, int | float) and term.coeff < 0
        coeff = -term.coeff if negative else term.coeff
        parts = [] if coeff == 1.0 and term.factors else [f"{coeff:g}"]
        for f in term.factors:
            labels = "".join(self._names[lab] for lab in f.labels)
            if isinstance(f.array, Selection):  # δ_{ids_p, i}: 1 where ids[p] = i
                *at, v = [self._names[lab] for lab in f.labels]
                inner = f.name[len("onehot(") : -1]
                picked = tex_name(inner) + (f"_{{{''.join(at)}}}" if at else "")
                parts.append(rf"\delta_{{{picked} {v}}}")
                continue
            if picked_name(f.name, len(f.labels)):  # T[ids[p], j]
                parts.append(_picked_tex(indexed(f.name, [self._names[lab] for lab in f.labels])))
                continue
            body = "{" + (f.tex or _tex_of_name(f.name)) + "}"
            parts.append(f"{body}_{{{labels}}}" if labels else body)
        parts += [rf"\delta_{{{self._names[a]}{self._names[b]}}}" for a, b in term.deltas]
        return negative, r" \, ".join(parts)

    def _repr_latex_(self) -> str:
        return f"$${self.latex()}$$"

    def _repr_html_(self) -> str:
        body = "\n".join([str(self), "", *self.steps])
        return f"<pre>{html.escape(body)}</pre>"

    # --- steps and the matrix form ---

    def paths(self, limit: int = 1000) -> list[list[str]]:
        """The paths of tensors from ``of`` down to ``wrt`` (at most ``limit``)."""
        uses = {s.target: s.operands for s in self.net.statements}
        found: list[list[str]] = []
        stack = [[self.of]]
        while stack and len(found) < limit:
            p = stack.pop()
            if p[-1] == self.wrt:
                found.append(p)
                continue
            stack.extend([*p, op] for op in reversed(uses.get(p[-1], ())))
        return found

    def path(self) -> list[str] | None:
        """The tensors from ``of`` down to ``wrt`` when there is exactly one path."""
        paths = self.paths(limit=2)
        return paths[0] if len(paths) == 1 else None

    @property
    def steps(self) -> list[str]:
        """The chain step by step: each local derivative with its labeled shape,
        then each chain-rule product with the deltas it eliminates."""
        lines = []
        for (t, s), local in self.result.locals.items():
            names = _letters(local, self._avoid)
            value = format_sum(local.terms, names)
            shape = " × ".join(map(str, local.shape)) or "1"
            lines.append(
                f"d{t}/d{s}  [{', '.join(names[i] for i in local.indices)}]  ({shape})  = {value}"
            )
        path = self.path()
        if path and len(path) > 1:
            acc = self.result.locals[(path[0], path[1])]
            for a, b in itertools.pairwise(path[1:]):
                local = self.result.locals[(a, b)]
                before = sum(len(t.deltas) for t in (*acc.terms, *local.terms))
                acc = acc.chain(local, len(self.net.tensors[a].dims))
                after = sum(len(t.deltas) for t in acc.terms)
                names = _letters(acc, self._avoid)
                lines.append(
                    f"· d{a}/d{b}: {before - after} δ eliminated by renaming → "
                    + format_sum(acc.terms, names)
                )
        for c in self.result.contractions:
            lines.append(f"contract: einsum {c.equation}  ({', '.join(c.names)})")
        return lines

    def matrix_form(self) -> str:
        """The article's form: each local Jacobian as a matrix (3-way and higher
        tensors reshaped), multiplied, and the result reshaped."""

        def size(name: str) -> int:
            return math.prod(self.sizes[d] for d in self.net.tensors[name].dims)

        def shape(name: str) -> str:
            return "×".join(str(self.sizes[d]) for d in self.net.tensors[name].dims) or "1"

        path = self.path()
        if path is None:
            return (
                f"d{self.of}/d{self.wrt} sums several paths; each is a product of matrices"
                " like the one below, and the chain rule adds them"
            )
        if len(path) == 1:
            return f"d{self.of}/d{self.of} is the identity ({size(self.of)}×{size(self.of)})"
        parts = []
        for a, b in itertools.pairwise(path):
            rows, cols = size(a), size(b)
            name = f"d{a}/d{b}"
            if len(self.net.tensors[b].dims) > 1 or len(self.net.tensors[a].dims) > 1:
                name = f"reshape({name})"
            parts.append(f"{name} ({rows}×{cols})")
        result = f"{size(self.of)}×{size(self.wrt)}"
        target = (
            f"{shape(self.wrt)}"
            if not self.net.tensors[self.of].dims
            else (f"{shape(self.of)}×{shape(self.wrt)}")
        )
        return f"{' · '.join(parts)} = {result} → reshape to {target}"

    # --- code ---

    def to_python(self, name: str | None = None) -> str:
        """Standalone numpy source of a function computing this derivative.

        The function takes every input and param by name and returns the dense
        result (the gradient for a scalar ``of``). The body is the compiled
        program's own steps in the order planned here (``np.dot`` on transposed
        views, ``np.multiply``, ``np.add.reduce``, ``np.einsum``), with ``del``
        where it frees memory; the derivation is its docstring. Nothing of
        tensorchain is imported."""
        return module_source([self], names=[name] if name else None)


def derivations(
    net: Differentiable,
    of: str,
    wrt: str | Sequence[str],
    values: Mapping[str, Any] | None,
    dims: Mapping[str, int],
) -> Derivation | dict[str, Derivation]:
    """``net.derive``: one derivation for a name, a dict of them for a list."""
    if isinstance(wrt, str):
        return derive(net, of, wrt, values, dims)
    return {w: derive(net, of, w, values, dims) for w in wrt_list(net, wrt)}


def derive(
    net: Differentiable,
    of: str,
    wrt: str,
    values: Mapping[str, Any] | None = None,
    dims: Mapping[str, int] | None = None,
) -> Derivation:
    """``net.derive``: symbolic (placeholder arrays) unless ``values`` are given
    (``dims``: sizes given, which values must agree with)."""
    from ..language.gather import refuse_positions

    net.info(of), net.info(wrt)
    refuse_positions(net, [wrt], "a derivation")
    if values is not None:
        if dims:
            net.sizes(values, dims=dims)  # the values must have the sizes given
        forward = net.forward(values)
        return Derivation(net, of, wrt, net.derivatives(of, [wrt], forward), forward.sizes)
    sizes = net.sizes(dims=dims)
    with tracing() as tape:
        forward = net.run_forward(placeholders(net, tape, sizes), sizes)
        result = net.derivatives(of, [wrt], forward)
    return Derivation(net, of, wrt, result, sizes)


def _reps(term: Term, indices: Sequence[str]) -> list[str]:
    tied = {b for _, b in term.deltas}
    return [i for i in indices if i not in tied]


def _letters(t: LabeledTensor, avoid: frozenset[str] = frozenset()) -> dict[str, str]:
    """Index letters for a chain's labels: outputs from ``ijk…``, summed ones
    from ``pqr…`` (then ``p'``, ``q'``, …), none of them a name in ``avoid``
    (the network's dims and tensors, which a reader would take them for) or
    inside a factor's name (``u`` of ``softmax(sc, u)``)."""
    names: dict[str, str] = {}
    avoid = avoid | named_in(t)
    outputs = letters(OUTPUT_LETTERS, avoid)
    for i in t.indices:
        names[i] = next(outputs)
    summed = letters(SUMMED_LETTERS, avoid | set(names.values()))
    for term in t.terms:
        for f in term.factors:
            for lab in f.labels:
                if lab not in names:
                    names[lab] = next(summed)
    return names


def _picked_tex(text: str) -> str:
    """``T[ids[p], j]`` in LaTeX: ``T_{\\mathrm{ids}_{p} j}``."""
    head, inner = text[:-1].split("[", 1)

    def sub(m: re.Match) -> str:
        return tex_name(m[1]) + "_{" + m[2].replace(", ", "") + "}"

    inner = re.sub(r"([A-Za-z_]\w*)\[([^\]]*)\]", sub, inner)
    return f"{tex_name(head)}_{{{inner.replace(', ', ' ')}}}"


def _tex_of_name(name: str) -> str:
    m = re.fullmatch(r"d(\w+)/d(\w+)", name)
    if m:
        return rf"\frac{{\partial {tex_name(m[1])}}}{{\partial {tex_name(m[2])}}}"
    return r"\mathrm{" + text_tex(name) + "}"


_RESERVED = {
    "np",
    "place",
    "windows",
    "unwindows",
    "gather",
    "scatter",
    "onehot",
    *HELPERS,
    *FUNCTION_HELPERS,
    *keyword.kwlist,
    *keyword.softkwlist,
}


def _var(name: str) -> str:
    """A tensor name as a safe Python variable (keywords and ours get a ``_``)."""
    ours = name in _RESERVED  # a spec never names a tensor like a function it calls
    return name + "_" if ours or name.startswith("__") else name


def module_source(
    derivations: Sequence[Derivation], names: Sequence[str] | None = None, joint: bool = False
) -> str:
    """A numpy module with one function per derivation (see ``to_python``), or
    with ``joint`` (derivations of one ``of``), one function that computes them
    all with shared work and returns ``{wrt: array}``."""
    if joint:
        of = derivations[0].of
        if any(d.of != of for d in derivations):
            raise ValueError("a joint function needs derivations of the same tensor")
        name = names[0] if names else _var(f"derivatives_{of}")
        functions = [_function_source(derivations, name)]
    else:
        functions = []
        for k, d in enumerate(derivations):
            kind = "grad" if not d.net.tensors[d.of].dims else "jacobian"
            name = names[k] if names else _var(f"{kind}_{d.of}_{d.wrt}")
            functions.append(_function_source([d], name))
    spec = "\n".join("    " + line if line else "" for line in str(derivations[0].net).splitlines())
    header = (
        f'"""Derivatives generated by tensorchain {__version__} from the network:\n\n'
        f'{spec}\n"""\n\nimport numpy as np\n'
    )
    helpers = {
        "place": place,
        "windows": windows,
        "unwindows": unwindows,
        "gather": gather,
        "scatter": scatter,
        "onehot": onehot,
        **HELPERS,
        **FUNCTION_HELPERS,
        **{  # registered functions: those each network was parsed with
            code: fn
            for d in derivations
            for user in calls_of(d.net).values()
            for code, fn in user.helpers.items()
        },
    }
    user_codes = {
        code for d in derivations for user in calls_of(d.net).values() for code in user.helpers
    }
    used: dict[str, str] = {}  # the helpers called, and those they call
    needs: dict[str, str] = {}  # what registered functions need: their helpers, modules
    taken = {
        **dict.fromkeys(_RESERVED),
        **dict.fromkeys(n for text in functions for n in _defined(text)),
        **helpers,
    }
    texts = list(functions)
    while True:
        new = {}
        for name, fn in helpers.items():
            if name in used or not any(re.search(rf"\b{name}\(", t) for t in texts):
                continue
            if name not in user_codes:
                new[name] = helper_source(name, fn)
                continue
            *extra, (_, text) = helper_sources(name, fn, taken).items()
            new[name] = text
            needs.update(extra)
        if not new:
            break
        used.update(new)
        texts = list(new.values())
    helper = "".join("\n\n" + text for text in needs.values())
    helper += "".join("\n\n" + used[name] for name in helpers if name in used)
    return header + helper + "\n\n" + "\n\n\n".join(functions) + "\n"


def _defined(text: str) -> list[str]:
    """The names a generated function's source defines at module level."""
    return re.findall(r"^def (\w+)\(", text, flags=re.M)


def _function_source(derivations: Sequence[Derivation], name: str) -> str:
    d = derivations[0]
    net, wrts = d.net, [x.wrt for x in derivations]
    leaves = [t for t in net.tensors.values() if t.kind in ("input", "param")]
    with tracing() as tape:
        forward = net.run_forward(placeholders(net, tape, d.sizes), d.sizes)
        result = net.derivatives(d.of, wrts, forward)
        outs = [result.jacobians[w].array for w in wrts]
    program = tape.program(outs)
    names = {tape.inputs[t.name]: _var(t.name) for t in leaves}
    for stmt in net.statements:
        value = forward.values[stmt.target]
        if isinstance(value, Slot) and value.reg not in names:
            names[value.reg] = _var(stmt.target)
    lines, results = program.source(names)
    doc: list[str] = []
    for x in derivations:
        doc += [str(x), "", f"einsum: {x.einsum}  ({', '.join(x.operands)})", "", "Steps:"]
        doc += [f"    {step}" for step in x.steps]
        doc += ["", f"Matrix form: {x.matrix_form()}", ""]
    docstring = "\n".join(
        f"    {line}".replace("\\", "\\\\") if line else "" for line in doc[:-1]
    ).lstrip()
    # The code is for these sizes only: other shapes are refused, not misread.
    sizes = ", ".join(f"{dim}={size}" for dim, size in d.sizes.items())
    expected = ", ".join(
        f"({t.name!r}, {_var(t.name)}, {tuple(d.sizes[dim] for dim in t.dims)!r})" for t in leaves
    )
    message = (
        f"{{__n}} has shape {{np.shape(__v)}} but this code was generated for {{__s}}"
        f" ({sizes}); generate it again for other sizes"
    )
    check = (
        [
            f"for __n, __v, __s in ({expected},):",  # names no tensor has (see _var)
            "    if np.shape(__v) != __s:",
            f'        raise ValueError(f"{message}")',
        ]
        if leaves
        else []
    )
    body = "\n    ".join([*check, *lines]) or "pass"
    args = ", ".join(_var(t.name) for t in leaves)
    if len(derivations) == 1:
        returned = results[0]
    else:
        returned = "{" + ", ".join(f"{w!r}: {r}" for w, r in zip(wrts, results, strict=True)) + "}"
    return f'def {name}({args}):\n    """{docstring}\n    """\n    {body}\n    return {returned}'
