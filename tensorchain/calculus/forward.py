"""Forward evaluation of lowered statements with numpy and opt_einsum."""

from __future__ import annotations

import functools
import math
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np

from ..arrays.backend import common, is_numpy, namespace
from ..arrays.trace import apply, is_fresh, tracing_now
from ..contraction.einsum import contract
from ..functions.along import ALONG, on_any_library
from ..functions.matrix import solve_any
from ..functions.registry import NUMPY_VALUES, elementwise
from ..language.gather import Selection
from ..language.operations import (
    Along,
    Const,
    Delta,
    Leaf,
    Lowered,
    Map,
    Node,
    Product,
    Reindex,
    Select,
    Size,
    Solve,
    Sum,
    Where,
    children,
    walk,
)
from ..language.reindex import node_constant
from ..language.selections import aligned, plain, select_source, select_value
from .factors import dense, factor_terms, multiply
from .labeled import LabeledTensor
from .matrix_rules import checked_matrix
from .node_names import name_of
from .terms import Factor, Term


def _owned(a: np.ndarray) -> np.ndarray:
    """A writable C-ordered array (a broadcast view or a view is copied);
    another library's array as it is (tensorchain never writes into those)."""
    if not is_numpy(a):
        return a
    a = np.asarray(a)
    if a.flags.writeable and a.flags.c_contiguous:
        return a
    return np.array(a)


def _linear(node: Sum, sizes: dict[str, int]):
    """A function computing ``Σ c_k a_k``, each ``a_k`` transposed and broadcast
    to ``node.labels`` (worked out here, once); its result is a new array."""
    full = tuple(sizes[lab] for lab in node.labels)
    plans = []
    for c, term in node.terms:
        order = [lab for lab in node.labels if lab in term.labels]
        perm = [term.labels.index(lab) for lab in order]
        view = [sizes[lab] if lab in term.labels else 1 for lab in node.labels]
        plans.append((c, None if perm == sorted(perm) else perm, view))

    # Same axes in the same order (a size-1 axis a term lacks is not the same).
    simple = all(
        perm is None and len(term.labels) == len(full)
        for (_, perm, _), (_, term) in zip(plans, node.terms, strict=True)
    )
    if simple and len(plans) == 2 and plans[0][0] == 1.0 and abs(plans[1][0]) == 1.0:
        return _add if plans[1][0] == 1.0 else _subtract

    def run(*arrays: np.ndarray) -> np.ndarray:
        if not is_numpy(*arrays):
            _, arrays = common(arrays)  # a constant among them, moved to their library
            xp = namespace(*arrays)
            total = 0.0
            for (c, perm, view), a in zip(plans, arrays, strict=True):
                a = a if perm is None else xp.permute_dims(a, tuple(perm))
                total = total + c * xp.reshape(a, view)
            return xp.broadcast_to(total, full)
        total = None
        dtype = np.result_type(*arrays)  # a real first term must not fix a complex sum's dtype
        for (c, perm, view), a in zip(plans, arrays, strict=True):
            a = np.reshape(a if perm is None else a.transpose(perm), view)
            if total is None:
                total = np.array(a, dtype=dtype) if c == 1.0 else np.asarray(c * a, dtype=dtype)
            elif c == 1.0:
                total = total + a if total.shape != full else np.add(total, a, out=total)
            else:
                total = total + c * a if total.shape != full else np.add(total, c * a, out=total)
        if total.shape != full:
            total = np.array(np.broadcast_to(total, full))
        return total

    return run


def _add(a, b):
    if is_numpy(a, b):
        return np.add(a, b)
    _, (a, b) = common((a, b))
    return a + b


def _subtract(a, b):
    if is_numpy(a, b):
        return np.subtract(a, b)
    _, (a, b) = common((a, b))
    return a - b


#: The same steps on numpy arrays, without the check for another library.
_NUMPY_FORMS = {_add: np.add, _subtract: np.subtract}


def _linear_numpy(node: Sum, sizes: dict[str, int]) -> Any:
    """:func:`_linear` on numpy arrays: one expression written for the sum
    (``_add(a0, _multiply(a1.reshape(_v1), _k1))``), each term transposed
    and viewed as it needs, compiled; internal names only (``a`` operands,
    ``_p``, ``_v``, ``_k`` their layouts and coefficients, passed in as
    objects). Its result is a new array (a sum of one term is copied), in
    C order where a term is transposed, and, as :func:`_linear` computes it,
    summed in the dtype of all the terms (a float64 constant added to
    float32 arrays: the first addition made in float64)."""
    full = tuple(sizes[lab] for lab in node.labels)
    space: dict[str, Any] = {
        "__builtins__": {},
        "_add": np.add,
        "_subtract": np.subtract,
        "_multiply": np.multiply,
        "_array": np.array,
        "_broadcast_to": np.broadcast_to,
        "_result_type": np.result_type,
        "_full": full,
        "_C": "C",
    }
    operands, views = [], []
    for k, (c, term) in enumerate(node.terms):
        a = f"a{k}"
        order = [lab for lab in node.labels if lab in term.labels]
        perm = [term.labels.index(lab) for lab in order]
        if perm != sorted(perm):
            a, space[f"_p{k}"] = f"{a}.transpose(_p{k})", tuple(perm)
        view = tuple(sizes[lab] if lab in term.labels else 1 for lab in node.labels)
        if len(term.labels) != len(node.labels) and not (
            perm == sorted(perm) and list(node.labels[len(node.labels) - len(order) :]) == order
        ):
            a, space[f"_v{k}"] = f"{a}.reshape(_v{k})", view
        views.append(view if len(term.labels) != len(node.labels) else full)
        if abs(c) != 1.0 or (k == 0 and c != 1.0):
            a, space[f"_k{k}"] = f"_multiply({a}, _k{k})", c
        operands.append((c, a))

    def expression(first: str) -> str:
        """The sum, ``first`` added to the arguments of its first addition."""
        text = operands[0][1]
        for k, (c, a) in enumerate(operands[1:]):
            op = "_subtract" if c == -1.0 else "_add"
            text = f"{op}({text}, {a}{first if k == 0 else ''})"
        if np.broadcast_shapes(*views) != full:
            return f"_array(_broadcast_to({text}, _full), order=_C)"
        if len(operands) == 1 and node.terms[0][0] == 1.0:
            return f"_array({text}, order=_C)"  # a new array, never a view of its operand
        if "transpose" in text:  # C order, as _linear makes it (0.45 µs: only here)
            return f"{text[:-1]}, order=_C)"
        return text

    names = ", ".join(f"a{k}" for k in range(len(operands)))
    lines = [f"def run({names}):"]
    if len(operands) > 2:  # a wider term later on: the sum made in its dtype from the first
        same = " is ".join(f"a{k}.dtype" for k in range(len(operands)))
        lines += [f"    if not ({same}):", f"        _d = _result_type({names})"]
        lines += [f"        return {expression(', dtype=_d')}"]
    lines.append(f"    return {expression('')}")
    python = "\n".join(lines) + "\n"
    exec(compile(python, "<tensorchain sum>", "exec"), space)  # our own source
    run = space["run"]
    run.python = python  # for the test that it holds internal names only
    return run


def _own_code(args: Sequence[str]) -> str:
    return f"np.array({args[0]})"


def _linear_code(node: Sum, sizes: dict[str, int]):
    """Numpy source for :func:`_linear`."""
    full = tuple(sizes[lab] for lab in node.labels)

    def code(args: Sequence[str]) -> str:
        parts = []
        for (c, term), a in zip(node.terms, args, strict=True):
            order = [lab for lab in node.labels if lab in term.labels]
            perm = [term.labels.index(lab) for lab in order]
            if perm != sorted(perm):
                a = f"np.transpose({a}, {tuple(perm)})"
            view = tuple(sizes[lab] if lab in term.labels else 1 for lab in node.labels)
            whole = len(term.labels) == len(node.labels)  # has every axis of the sum
            if not whole:
                a = f"np.reshape({a}, {view})"
            parts.append((c, a, whole))
        text = ""
        for c, a, _ in parts:
            term = a if abs(c) == 1.0 else f"{abs(c)!r} * {a}"
            text += (
                (f" - {term}" if c < 0 else f" + {term}")
                if text
                else (f"-{term}" if c < 0 else term)
            )
        if len(parts) > 1 and any(whole for _, _, whole in parts):
            return text  # one operand has the full shape: the sum is a new array
        return f"np.array(np.broadcast_to({text}, {full}))"

    return code


def _sized(node: Node, sizes: Mapping[str, int]) -> np.ndarray | None:
    """The value of a scalar made of numbers and dim sizes only (``size(K)``,
    ``1 / sqrt(size(K))``), computed here, once sizes are known, so that a
    compiled program holds it as a constant; None for anything else."""
    if node.labels:
        return None
    if isinstance(node, Size):
        return np.asarray(float(sizes[node.key]))
    if isinstance(node, Const):
        return np.asarray(node.value, dtype=float)
    if isinstance(node, Map):
        arg = (
            _sized(node.arg, sizes)
            if isinstance(node.arg, Size | Const | Map | Product | Sum)
            else None
        )
        if arg is None:
            return None
        with np.errstate(all="ignore"):
            return np.asarray(elementwise(node.func).value(arg, node.param), dtype=float)
    if isinstance(node, Product) and not node.mean_over:
        parts = [
            _sized(f, sizes) if isinstance(f, Size | Const | Map | Product | Sum) else None
            for f in node.factors
        ]
        if not parts or any(p is None for p in parts):
            return None
        return np.asarray(node.coeff * math.prod(float(p) for p in parts))
    if isinstance(node, Sum):
        parts = [
            _sized(t, sizes) if isinstance(t, Size | Const | Map | Product | Sum) else None
            for _, t in node.terms
        ]
        if any(p is None for p in parts):
            return None
        return np.asarray(sum(c * float(p) for (c, _), p in zip(node.terms, parts, strict=True)))
    return None


def evaluate_node(
    node: Node,
    env: Mapping[str, np.ndarray],
    sizes: dict[str, int],
    out: dict[int, np.ndarray],
    context: str = "",
) -> np.ndarray:
    """The value of ``node`` (axes in ``node.labels`` order); every node's value
    is also stored in ``out`` under ``id(node)`` for the derivative rules.
    Array work goes through ``program.apply``, so it can be traced."""
    shape = [sizes[lab] for lab in node.labels]
    folded = _sized(node, sizes) if isinstance(node, Size | Map | Product | Sum) else None
    if folded is not None:  # a number of sizes (1/sqrt(size(K))): folded, never a step
        value = folded
        for child in walk(node)[1:]:  # for the rules and the references
            out[id(child)] = _sized(child, sizes)
    elif isinstance(node, Leaf):
        value = env[node.name]
    elif isinstance(node, Const):
        value = np.asarray(node.value, dtype=float)
    elif isinstance(node, Delta):
        value = None  # symbolic: a product that holds it is structured
    elif isinstance(node, Select):  # the integers: a product with it gathers
        ids = env[node.index] if isinstance(node.index, str) else np.asarray(node.index)
        value = Selection(ids, sizes[node.labels[-1]])
    elif isinstance(node, Reindex):
        value = node_constant(node, sizes)  # never read: contractions reshape or slice
    elif isinstance(node, Map):
        arg = dense(evaluate_node(node.arg, env, sizes, out, context))
        fn = elementwise(node.func)
        numpy_form = NUMPY_VALUES.get(node.func)
        value = apply(
            functools.partial(fn.value, p=node.param),
            arg,
            shape=shape,
            fresh=True,
            code=lambda a, fn=fn, p=node.param: fn.source(a[0], p),
            numpy=numpy_form(node.param) if numpy_form is not None else None,
        )
    elif isinstance(node, Along):
        arg = dense(evaluate_node(node.arg, env, sizes, out, context))
        fn = ALONG[node.func].value
        axes = tuple(node.arg.labels.index(lab) for lab in node.axes)
        run = functools.partial(on_any_library(fn), axes=axes)
        if ALONG[node.func].matrix:
            run = checked_matrix(run, node.func, node.arg, axes, context, node.origin)
        value = apply(
            run,
            arg,
            shape=shape,
            fresh=True,
            code=lambda a, fn=fn, axes=axes: f"{fn.__name__}({a[0]}, {axes})",
        )
    elif isinstance(node, Where):
        kids = children(node)
        found: dict[int, np.ndarray] = {}
        for kid in kids:  # an operand used twice (maximum(a, b) compares a with b) once
            if id(kid) not in found:
                found[id(kid)] = dense(evaluate_node(kid, env, sizes, out, context))
        value = select_node_value(node, [found[id(k)] for k in kids], sizes)
    elif isinstance(node, Solve):
        a = dense(evaluate_node(node.matrix, env, sizes, out, context))
        b = dense(evaluate_node(node.rhs, env, sizes, out, context))
        plan = solve_plan(node, sizes)
        run = checked_matrix(
            functools.partial(solve_any, **plan),
            "solve",
            node.matrix,
            plan["a_perm"][-2:],
            context,
            node.origin,
        )
        value = apply(
            run,
            a,
            b,
            shape=shape,
            fresh=True,
            code=lambda args, p=plan: (
                f"solve_labeled({args[0]}, {args[1]}, {p['a_perm']}, {p['b_perm']},"
                f" {p['view']}, {p['out_perm']})"
            ),
        )
    elif isinstance(node, Product):
        operands = [(evaluate_node(f, env, sizes, out, context), f.labels) for f in node.factors]
        scale = node.coeff / float(math.prod(sizes[m] for m in node.mean_over))
        if any(
            isinstance(f, Delta) or isinstance(v, LabeledTensor)
            for f, (v, _) in zip(node.factors, operands, strict=True)
        ):
            value = _structured_product(node, [v for v, _ in operands], sizes, scale)
        else:
            value = contract(operands, node.labels, sizes, scale=scale)
    else:
        parts = [evaluate_node(t, env, sizes, out, context) for _, t in node.terms]
        parts = [p.dense() if isinstance(p, Selection) else p for p in parts]
        if any(isinstance(p, LabeledTensor) or p is None for p in parts):  # None: a delta
            value = _structured_sum(node, parts, sizes)
        else:
            fn = _linear(node, sizes)
            numpy = _NUMPY_FORMS.get(fn)
            if numpy is None and tracing_now():  # written for the program, once
                numpy = _linear_numpy(node, sizes)
            value = apply(
                fn,
                *parts,
                shape=shape,
                fresh=True,
                code=_linear_code(node, sizes),
                numpy=_NUMPY_FORMS.get(fn)
                or (_linear_numpy(node, sizes) if tracing_now() else None),
            )
    out[id(node)] = value
    return value


def select_node_value(node: Where, operands: list, sizes: dict[str, int]):
    """The value of a selection, its operands aligned to its axes (traced)."""
    test, half, same = node.test, node.half, plain(node)
    run, code = aligned(
        functools.partial(select_value, test, half, same),
        lambda a: select_source(test, half, same, a),
        [k.labels for k in children(node)],
        node.labels,
        sizes,
    )
    return apply(run, *operands, shape=[sizes[lab] for lab in node.labels], fresh=True, code=code)


def solve_plan(node: Solve, sizes: dict[str, int]) -> dict[str, tuple]:
    """How :func:`tensorchain.functions.matrix.solve_labeled` lays out ``node``'s arrays:
    the matrix as (batch…, rows, columns), the right side as (batch…, rows,
    rest…) viewed as (batch…, rows, k), the result back in ``node.labels``."""
    a_labels, b_labels = node.matrix.labels, node.rhs.labels
    batch = [lab for lab in b_labels if lab in a_labels and lab not in (node.row, node.col)]
    rest = [lab for lab in b_labels if lab not in batch and lab != node.row]
    a_perm = tuple(a_labels.index(lab) for lab in (*batch, node.row, node.col))
    b_perm = tuple(b_labels.index(lab) for lab in (*batch, node.row, *rest))
    k = math.prod(sizes[lab] for lab in rest)
    view = (*(sizes[lab] for lab in batch), sizes[node.row], k)
    solved = [*batch, node.col, *rest]
    out_perm = tuple(solved.index(lab) for lab in node.labels)
    return {"a_perm": a_perm, "b_perm": b_perm, "view": view, "out_perm": out_perm}


def _structured_product(
    node: Product, values: list, sizes: dict[str, int], scale: float
) -> LabeledTensor:
    """A product that holds a Kronecker delta or a structured value, kept
    structured: its terms multiplied out, deltas eliminated, then each term's
    factors contracted into one array (one term per delta structure)."""
    sizes = dict(sizes)
    choices = [factor_terms(f, v, sizes) for f, v in zip(node.factors, values, strict=True)]
    summed = set(node.summed)
    terms = multiply(scale, choices, summed=summed, sizes=sizes)
    return LabeledTensor(node.labels, sizes, terms).contracted()


def _structured_sum(node: Sum, parts: list, sizes: dict[str, int]) -> LabeledTensor:
    """A sum with a structured term, kept structured (each term broadcast to
    the sum's axes by leaving the axes it lacks out of its factors)."""
    sizes = dict(sizes)
    terms: list[Term] = []
    for (c, t), value in zip(node.terms, parts, strict=True):
        if isinstance(t, Const):
            terms.append(Term(c * t.value, ()))
        elif isinstance(t, Delta):
            terms.append(Term(c, (), (t.labels,)))
        elif isinstance(value, LabeledTensor):
            terms += [
                Term(c * x.coeff, x.factors, x.deltas) for x in value.terms_on(t.labels, sizes)
            ]
        else:
            terms.append(Term(c, (Factor(value, t.labels, name_of(t)),)))
    return LabeledTensor(node.labels, sizes, terms).contracted()


def evaluate_statement(
    stmt: Lowered, env: Mapping[str, np.ndarray], sizes: dict[str, int]
) -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The value of ``stmt.target`` and of every node of the statement."""
    values: dict[int, np.ndarray] = {}
    context = f"line {stmt.pos.line}: {stmt.text}" if stmt.text else f"line {stmt.pos.line}"
    result = evaluate_node(stmt.root, env, sizes, values, context)
    if isinstance(result, Selection):  # a one-hot defined as a tensor: H[s, c] = delta[c, y[s]]
        result = result.dense()
    if isinstance(result, LabeledTensor):  # a derivative's structured value
        return result if result.indices == stmt.labels else result.rename(stmt.labels), values
    if is_fresh(result):
        return result, values
    shape = [sizes[lab] for lab in stmt.labels]
    return apply(_owned, result, shape=shape, fresh=True, code=_own_code), values
