"""Hypothesis strategies that draw networks in the spec language (needs ``hypothesis``).

``networks()`` draws a :class:`DrawnNetwork`: spec text, one size per dim and
the scalar loss to differentiate. Every network is smooth at almost every
point (no relu/abs kink that random values can reach, no log or sqrt of a
value that can be negative), so finite differences are a valid reference.
Layers are drawn from: a dense layer, an elementwise function, a residual
sum, a tied (reused) weight, a bilinear layer with a rank-3 parameter
(optionally the same tensor twice), an outer product and its contraction (a
rank-2 activation), whole-tensor arithmetic, a function along the feature
index (softmax, log_softmax, minus a logsumexp or a max), a copy in each of
its spellings (``h = x``, ``h = x ^ 1``, ``h = (x)``, ...), a diagonal (of a
parameter, of an intermediate, a trace), a 1-D convolution through a shift
tensor, a scalar gate (``relu(g + 1) * h + h`` with a scalar param ``g``:
0-d values on every path), and a quadratic form. With a batch, every
activation has a sample index ``s`` on dim ``B``. Failures shrink to small
networks. (``max`` has a kink where two entries tie, which random values
miss almost surely.)
"""

from __future__ import annotations

from dataclasses import dataclass

from hypothesis import strategies as st

SMOOTH = ("sigmoid", "tanh", "sin", "cos", "softplus")


@dataclass(frozen=True)
class DrawnNetwork:
    text: str
    dims: dict[str, int]
    of: str

    def __repr__(self) -> str:  # hypothesis prints this on failure
        return f"DrawnNetwork(dims={self.dims}, of={self.of!r}, text=\n{self.text}\n)"


@st.composite
def networks(
    draw: st.DrawFn, max_layers: int = 4, max_size: int = 4, domains: bool = False
) -> DrawnNetwork:
    """Draw a random network whose last statement is the scalar ``L``; with
    ``domains``, layers may use a tensor declared with the values it takes
    (``log`` and ``sqrt`` of a ``positive`` param, ``log`` of ``unit`` and
    ``probability`` inputs, a ``onehot`` mask, a ``solve`` with an ``spd``
    matrix), drawn in its domain by ``random_values``."""
    feature_dims = ["n", "m", "k"][: draw(st.integers(1, 3))]
    batched = draw(st.booleans())
    dims = {d: draw(st.integers(1, max_size)) for d in feature_dims}
    size_of = dict(dims)  # every dim's size, those computed from shift tensors too
    if batched:
        dims["B"] = draw(st.integers(1, 3))
    lines = [f"dim {d} = {s}" for d, s in dims.items()]
    s_ax = ["B"] if batched else []
    s_ix = ["s"] if batched else []

    def decl(kind: str, name: str, axes: list[str], modifier: str = "") -> None:
        line = f"{kind} {name}[{', '.join(axes)}]" if axes else f"{kind} {name}"
        lines.append(f"{line} {modifier}".rstrip())

    def ref(name: str, *idx: str) -> str:
        return f"{name}[{', '.join([*s_ix, *idx])}]"

    # activations: name -> feature dim (each is [B?, d])
    d0 = draw(st.sampled_from(feature_dims))
    decl("input", "x", [*s_ax, d0])
    acts: dict[str, str] = {"x": d0}
    weights: dict[str, tuple[str, str]] = {}
    counter = iter(range(1, 100))
    last = "x"
    for _ in range(draw(st.integers(1, max_layers))):
        k = next(counter)
        kind = draw(
            st.sampled_from(
                [
                    "dense",
                    "func",
                    "residual",
                    "tied",
                    "bilinear",
                    "outer",
                    "whole",
                    "along",
                    "copy",
                    "diagonal",
                    "conv",
                    "gate",
                    *(["domain"] * 3 if domains else []),
                ]
            )
        )
        prev = last
        dp = acts[prev]
        h = f"h{k}"
        if kind == "dense" or (kind == "tied" and not weights):
            do = draw(st.sampled_from(feature_dims))
            decl("param", f"W{k}", [do, dp])
            weights[f"W{k}"] = (do, dp)
            bias = draw(st.booleans())
            if bias:
                decl("param", f"b{k}", [do])
            rhs = f"W{k}[i, j] * {ref(prev, 'j')}" + (f" + b{k}[i]" if bias else "")
            lines.append(f"{ref(h, 'i')} = {rhs}")
            acts[h] = do
        elif kind == "tied":
            name = draw(st.sampled_from(sorted(weights)))
            do, di = weights[name]
            sources = [a for a, d in acts.items() if d == di]
            src = draw(st.sampled_from(sources))
            lines.append(f"{ref(h, 'i')} = {name}[i, j] * {ref(src, 'j')}")
            acts[h] = do
        elif kind == "func":
            f = draw(st.sampled_from(SMOOTH))
            lines.append(f"{h} = {f}({prev})")
            acts[h] = dp
        elif kind == "residual":
            same = [a for a, d in acts.items() if d == dp and a != prev]
            other = draw(st.sampled_from(same)) if same else prev
            f = draw(st.sampled_from(SMOOTH))
            lines.append(f"{h} = {prev} + {f}({other})")
            acts[h] = dp
        elif kind == "bilinear":
            same = [a for a, d in acts.items() if d == dp]
            other = draw(st.sampled_from(same))
            do = draw(st.sampled_from(feature_dims))
            decl("param", f"T{k}", [do, dp, dp])
            lines.append(f"{ref(h, 'i')} = T{k}[i, j, l] * {ref(prev, 'j')} * {ref(other, 'l')}")
            acts[h] = do
        elif kind == "outer":
            src = draw(st.sampled_from(sorted(acts)))
            ds = acts[src]
            do = draw(st.sampled_from(feature_dims))
            decl("param", f"V{k}", [ds, do])
            lines.append(f"{ref(f'M{k}', 'i', 'j')} = {ref(prev, 'i')} * {ref(src, 'j')}")
            lines.append(
                f"{ref(h, 'l')} = {ref(f'M{k}', 'i', 'j')} * V{k}[j, l] * {ref(prev, 'i')}"
            )
            acts[h] = do
        elif kind == "along":  # a function along the feature index
            form = draw(st.sampled_from(["softmax", "log_softmax", "centred", "max"]))
            if form == "softmax":
                lines.append(f"{h} = softmax({prev}, {dp})")
            elif form == "log_softmax":
                lines.append(f"{ref(h, 'i')} = log_softmax({ref(prev, 'i')}, i)")
            else:  # minus a logsumexp (or max), broadcast back along the index
                f = "logsumexp" if form == "centred" else "max"
                lines.append(f"{ref(h, 'i')} = {ref(prev, 'i')} - {f}({ref(prev, 'j')}, j)")
            acts[h] = dp
        elif kind == "copy":  # a statement that only renames a tensor
            form = draw(st.sampled_from(["plain", "power", "one", "zero", "paren", "index"]))
            rhs = {
                "plain": prev,
                "power": f"{prev} ^ 1",
                "one": f"1 * {prev}",
                "zero": f"{prev} + 0",
                "paren": f"({prev})",
            }.get(form)
            lines.append(f"{h} = {rhs}" if rhs else f"{ref(h, 'i')} = {ref(prev, 'i')}")
            acts[h] = dp
        elif kind == "diagonal":
            form = draw(st.sampled_from(["param", "intermediate", "trace"]))
            if form == "param":
                decl("param", f"D{k}", [dp, dp])
                lines.append(f"{ref(h, 'i')} = D{k}[i, i] * {ref(prev, 'i')}")
            elif form == "intermediate":
                lines.append(f"{ref(f'M{k}', 'i', 'j')} = {ref(prev, 'i')} * {ref(prev, 'j')}")
                lines.append(f"{ref(h, 'i')} = {ref(f'M{k}', 'i', 'i')} - {ref(prev, 'i')}")
            else:
                decl("param", f"D{k}", [dp, dp])
                lines.append(f"t{k} = D{k}[i, i]")
                lines.append(f"{h} = t{k} * {prev}")
            acts[h] = dp
        elif kind == "conv":  # a 1-D convolution along the feature axis
            padding = draw(st.integers(0, 1))
            size = size_of[dp] + 2 * padding
            kernel = draw(st.integers(1, min(3, size)))
            stride = draw(st.integers(1, 2))
            dims[f"K{k}"] = kernel
            lines.append(f"dim K{k} = {kernel}")
            lines.append(f"dim P{k}")
            lines.append(f"shift S{k}[P{k}, K{k}, {dp}] stride {stride} padding {padding}")
            decl("param", f"w{k}", [f"K{k}"])
            lines.append(f"{ref(h, 'p')} = w{k}[q] * S{k}[p, q, t] * {ref(prev, 't')}")
            size_of[f"P{k}"] = (size - kernel) // stride + 1
            acts[h] = f"P{k}"
        elif kind == "gate":  # a scalar param through relu: a 0-d value on every path
            decl("param", f"g{k}", [])
            lines.append(f"{h} = relu(g{k} + 1) * {prev} + {prev}")
            acts[h] = dp
        elif kind == "domain":  # a tensor declared with the values it takes
            form = draw(st.sampled_from(["positive", "unit", "probability", "onehot", "spd"]))
            if form == "positive":
                decl("param", f"sp{k}", [dp], "positive")
                rhs = f"{ref(prev, 'i')} * sqrt(sp{k}[i]) + log(sp{k}[i])"
                lines.append(f"{ref(h, 'i')} = {rhs}")
            elif form == "unit":
                decl("input", f"un{k}", [*s_ax, dp], "unit")
                lines.append(f"{h} = {prev} * log(un{k}) + log(1 - un{k})")
            elif form == "probability":
                decl("input", f"pr{k}", [*s_ax, dp], f"probability {dp}")
                lines.append(f"{h} = {prev} * log(pr{k}) + {prev}")
            elif form == "onehot":
                decl("input", f"oh{k}", [*s_ax, dp], f"onehot {dp}")
                lines.append(f"{h} = {prev} * oh{k} + {prev}")
            else:
                decl("param", f"C{k}", [dp, dp], "spd")
                lines.append(f"{ref(h, 'j')} = solve(C{k}[i, j], {ref(prev, 'i')}, i, j)")
            acts[h] = dp
        else:  # whole-tensor arithmetic on two same-shaped activations
            same = [a for a, d in acts.items() if d == dp]
            other = draw(st.sampled_from(same))
            c = draw(st.sampled_from(["0.5", "2", "1.5"]))
            lines.append(f"{h} = {prev} * {other} - {c} * {prev} / (1 + square({other}))")
            acts[h] = dp
        last = h
    if draw(st.booleans()):
        d = acts[last]
        decl("param", "A", [d, d])
        if batched:
            lines.append(f"L = {ref(last, 'i')} * A[i, j] * {ref(last, 'j')}")
        else:
            lines.append(f"L = {last}[i] * A[i, j] * {last}[j]")
    else:
        reduce = draw(st.sampled_from(["sum", "mean"]))
        lines.append(f"L = {reduce}(square({last}) + {last})")
    return DrawnNetwork("\n".join(lines) + "\n", dims, "L")


@st.composite
def jacobian_networks(draw: st.DrawFn, max_size: int = 3) -> DrawnNetwork:
    """Draw a network whose output ``z`` is a tensor, not a scalar: whole-tensor
    steps on a param ``W1`` of rank 1 to 3 whose axes may share a dim
    (``W1[c, c, c]``), then one axis contracted with a matrix ``W2``. The
    shape of network whose plans once depended on the hash seed."""
    dims = {"c": draw(st.integers(1, max_size)), "d": draw(st.integers(1, max_size))}
    axes = draw(st.lists(st.sampled_from(sorted(dims)), min_size=1, max_size=3))
    lines = [f"dim {d} = {s}" for d, s in dims.items()]
    lines.append(f"param W1[{', '.join(axes)}]")
    prev = "W1"
    for k in range(1, draw(st.integers(1, 3)) + 1):
        f = draw(st.sampled_from(SMOOTH))
        step = draw(
            st.sampled_from(
                [f"2.0 * {prev}", f"{prev} + {f}({prev})", f"{f}({prev}) * {prev}", f"{f}({prev})"]
            )
        )
        lines.append(f"a{k} = {step}")
        prev = f"a{k}"
    p = draw(st.integers(0, len(axes) - 1))
    out_dim = draw(st.sampled_from(sorted(dims)))
    lines.insert(len(dims) + 1, f"param W2[{out_dim}, {axes[p]}]")
    names = [f"b{q}" for q in range(len(axes))]
    left = [*names[:p], "i", *names[p + 1 :]]
    right = [*names[:p], "j", *names[p + 1 :]]
    lines.append(f"z[{', '.join(left)}] = W2[i, j] * {prev}[{', '.join(right)}]")
    return DrawnNetwork("\n".join(lines) + "\n", dims, "z")
