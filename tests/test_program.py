"""Compiled programs as Python functions (issue 20): the source holds no user
text, every kind gives what the chain rule gives uncompiled (on numpy and on
every installed array library), long programs are replayed step by step
until they are compiled, and the fast call path checks values and results as
the general path does."""

from __future__ import annotations

import collections
import io
import re
import tokenize
import warnings

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import tensorchain as tc
from tensorchain.arrays import trace as program_module
from tensorchain.calculus import forward as evaluate_module
from tensorchain.contraction import pairwise as pairwise_module
from tensorchain.contraction import paths as paths_module
from tensorchain.contraction import steps as steps_module
from tensorchain.functions.registry import (
    ELEMENTWISE,
    NOT_HOLOMORPHIC,
    NUMPY_DERIVATIVES,
    NUMPY_VALUES,
)
from tensorchain.runtime import fastcall as fastcall_module
from tensorchain.strategies import jacobian_networks, networks
from tensorchain.testing import max_relative_error
from tests.test_backends import LIBRARIES, back, on

# --- the source holds internal names only -----------------------------------

#: Tensor names with every character class the parser accepts (letters of
#: both cases, digits, underscores), several spelled like the generated
#: code's own names or like Python that would run if it were pasted in.
USER_NAMES = {
    "x": "__import__",
    "y": "r0",
    "W": "_f0",
    "b": "_get",
    "z": "Wx_9",
    "a": "_values",
    "C": "__builtins__",
    "u": "lambda",
    "q": "Q_1x",
}
SPEC = """dim n = 3
dim m = 2
input x[n]
input y[m]
param W[m, n]
param b[m]
z[i] = W[i, j] * x[j] + b[i]
a = tanh(z)
u[i] = a[i] * b[i] * y[i]
q[i, k] = z[i] - 2 * b[k] + 1
C = 0.5 * sum((u - y) ^ 2) + sum(q)
"""


def _renamed(mapping: dict[str, str]) -> str:
    return re.sub(r"\b([A-Za-z_]\w*)\b", lambda m: mapping.get(m[1], m[1]), SPEC)


def _programs(net: tc.Network, names: dict[str, str]) -> list[str]:
    """The source of every program of every kind on ``net`` (names: the
    tensor names in it), and of the fast calls that run them."""
    x, W, b, C, a = (names[k] for k in ("x", "W", "b", "C", "a"))
    vals = net.random_values(seed=0)
    vector = np.ones(vals[W].shape)
    big = net.random_values(seed=0, n=64, m=64)  # dC/dW an outer product: bounded
    calls = [
        lambda: net.grad(C, [W], big),
        lambda: net.evaluate(vals),
        lambda: net.grad(C, [W, b, x], vals),
        lambda: net.jacobian(a, W, vals),
        lambda: net.derivative(C, (W, W), vals),
        lambda: net.derivative(a, (b, W, x), vals),
        lambda: net.hvp(C, W, vector, vals),
        lambda: net.gnvp(C, a, W, vector, vals),
        lambda: net.ntk(a, [W, b], vals),
    ]
    for call in calls:
        call()
        call()  # the fast path
    planned = net.plan(a, W)
    planned(vals)
    planned(vals)
    out = [compiled.program.python for compiled in net._cache._data.values()]
    out.append(planned._program[0].python)
    return out


#: Every name the generated sources use: Python keywords, attributes of
#: arrays, and internal names (registers, steps, constants, helpers).
INTERNAL = re.compile(
    r"^(def|del|return|try|except|finally|if|not|and|or|None|True|_quiet|_loud|_t"
    r"|T|transpose|reshape|ravel|dtype|shape|order"
    r"|run|a|b|_run|_call|_values|_check|_get|_take|_function|_sig|_s|_type|_len|_errors"
    r"|_vdot|_cat|_j|_q|_r|_out|_probes|_dot|_multiply|_C|_n|_k"
    r"|_add|_subtract|_array|_broadcast_to|_full|_result_type|_d|is|else|_sqrt|_one|_L"
    r"|_p[lrab]|_s[lr]|_v[ab]|_to|_po|[rastvop]\d+|_[fcpvkqB]\d+)$"
)


def test_generated_source_holds_no_user_text(monkeypatch):
    """The same network with its tensors renamed (to names that look like the
    generated code's, or like Python that would run if pasted in) gives the
    same sources, character for character: nothing of the names is in them.
    And every source is made of internal names, a few keywords and array
    attributes, and operators: no literal, no string."""
    results = []
    for mapping in ({k: k for k in USER_NAMES}, USER_NAMES):
        sources: list[str] = []
        for module, name in (
            (steps_module, "_composed"),
            (pairwise_module, "_written"),
            (evaluate_module, "_linear_numpy"),
        ):
            original = getattr(module, name)

            def recording(*args, original=original, sources=sources, **kwargs):
                run = original(*args, **kwargs)
                sources.append(run.python)
                return run

            monkeypatch.setattr(module, name, recording)
        made = fastcall_module.FastCall.__init__

        def init(self, *args, made=made, sources=sources):
            made(self, *args)
            sources.append(self.source)

        monkeypatch.setattr(fastcall_module.FastCall, "__init__", init)
        paths_module._EXPRESSIONS.clear()  # planned contractions are cached across networks
        net = tc.parse(_renamed(mapping))
        results.append(_programs(net, mapping) + sources)
    assert results[0] == results[1]
    kinds = "\n".join(results[1])
    made = (
        "def _run(",
        "def _call(",
        "    t1 = s1(",
        "def run(b, a):",
        "_k)",
        "def run(a0, a1, a2):",
    )
    for made_by in made:
        assert made_by in kinds  # programs, fast calls, composed and written contractions
    for source in results[1]:
        for token in tokenize.generate_tokens(io.StringIO(source).readline):
            if token.type == tokenize.NAME:
                assert INTERNAL.match(token.string), (token.string, source)
            else:
                assert token.type in (
                    tokenize.OP,
                    tokenize.NEWLINE,
                    tokenize.NL,
                    tokenize.INDENT,
                    tokenize.DEDENT,
                    tokenize.ENDMARKER,
                ), (token, source)
                if token.type == tokenize.OP:
                    assert token.string in "()[],=:.!=+*<>", (
                        token.string,
                        source,
                    )


# --- the same results as the chain rule, uncompiled ---------------------------


def _untraced_derivative(net: tc.Network, of: str, wrt: tuple[str, ...], vals: dict):
    """∂ᵏ of / ∂wrt..., the chain rule run directly on the values (no trace);
    zero where ``of`` does not depend on ``wrt`` (a drawn network may hold a
    tensor that nothing uses)."""
    graph, out = net.derivative_graph(of, wrt[:-1])
    if out is None:
        shape = np.shape(net.forward(vals).values[of])
        return np.zeros((*shape, *(d for w in wrt for d in np.shape(vals[w]))))
    env = dict(net._check_values(vals))
    forward = graph.run_forward(env, net.sizes(vals))
    return graph.derivatives(out, [wrt[-1]], forward).jacobians[wrt[-1]].array


@given(net=networks(max_layers=3, max_size=3), seed=st.integers(0, 2**16))
def test_every_kind_equals_the_chain_rule_uncompiled(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    wrt = [*network.params, *network.inputs]
    direct = network.derivatives(net.of, wrt, vals)
    for _ in range(2):  # the first call takes the general path, the second the fast one
        g = network.grad(net.of, wrt, vals)
        for w in wrt:
            # equal to rounding (see test_compiled: a copy and a view in BLAS)
            assert max_relative_error(g[w], direct.jacobians[w].array) < 1e-14
    w = [*network.params, *network.inputs][0]
    untraced = _untraced_derivative(network, net.of, (w, w), vals)
    v = np.random.default_rng(seed).standard_normal(vals[w].shape)
    compiled = network.compile_grad(net.of, wrt, dims=net.dims)
    for _ in range(2):
        assert max_relative_error(network.hessian(net.of, w, vals).array, untraced) < 1e-12
        hv = network.hvp(net.of, w, v, vals)
        assert max_relative_error(hv, np.tensordot(untraced, v, v.ndim)) < 1e-10
        g = compiled(vals)
        for x in wrt:
            assert max_relative_error(g[x], direct.jacobians[x].array) < 1e-14
    for order in ("optimal", "reverse"):
        plan = network.plan(net.of, w, order=order, dims=net.dims)
        for _ in range(2):
            assert max_relative_error(plan(vals).array, direct.jacobians[w].array) < 1e-12


@given(net=jacobian_networks(), seed=st.integers(0, 2**16))
def test_jacobians_and_derivatives_of_tensors_equal_the_chain_rule_uncompiled(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    direct = network.derivatives("z", ["W1"], vals).jacobians["W1"].array
    second = _untraced_derivative(network, "z", ("W1", "W2"), vals)
    for _ in range(2):
        assert max_relative_error(network.jacobian("z", "W1", vals).array, direct) < 1e-12
        J = network.compile_jacobian("z", "W1", dims=net.dims)(vals).array
        assert max_relative_error(J, direct) < 1e-12
        D = network.derivative("z", ("W1", "W2"), vals).array
        assert max_relative_error(D, second) < 1e-12
        forward = network.evaluate(vals)
        np.testing.assert_array_equal(forward["z"], network.forward(vals).values["z"])


PRODUCTS = tc.parse(
    "dim B = 3\ndim n = 4\ndim k = 2\ninput x[B, n]\ninput y[B, k]\nparam W1[n, n]\n"
    "param W2[k, n]\nz1[s, i] = W1[i, j] * x[s, j]\nh = tanh(z1)\n"
    "o[s, i] = W2[i, j] * h[s, j]\nL[s] = 0.5 * sum((o[s, k] - y[s, k]) ^ 2, k)\n"
    "T = sum(L)\n"
)


def _products(values: dict, vector) -> list:
    return [
        PRODUCTS.per_sample_grad_norms("L", ["W1", "W2"], values),
        PRODUCTS.clipped_grad("L", ["W1", "W2"], values, max_norm=0.5),
        PRODUCTS.ntk("o", ["W1", "W2"], values),
        PRODUCTS.gnvp("T", "o", "W1", vector, values),
    ]


def _flat(results: list) -> list[np.ndarray]:
    out = []
    for r in results:
        if isinstance(r, dict):
            out += [np.asarray(v) for v in r.values()]
        elif isinstance(r, tc.LabeledTensor):
            out.append(np.asarray(r.array))
        else:
            out.append(np.asarray(r))
    return out


def test_products_through_the_compiled_function_equal_the_step_by_step_replay(monkeypatch):
    """The products have no uncompiled form (they are built inside a trace):
    the compiled function against the replay of the same steps with their
    general (any-library) functions, as programs ran before."""
    vals = PRODUCTS.random_values(seed=3)
    vector = np.random.default_rng(4).standard_normal(vals["W1"].shape)
    compiled = _flat(_products(vals, vector))

    def replay(self, values):
        space = {f"_f{k}": step.fn for k, step in enumerate(self.steps)}  # the general ones
        space.update((f"_c{reg}", value) for reg, value in self.constants.items())
        return self._replay(space, values)

    PRODUCTS._cache.clear()
    PRODUCTS._hot.clear()
    monkeypatch.setattr(program_module.Program, "run", replay)
    replayed = _flat(_products(vals, vector))
    for a, b in zip(compiled, replayed, strict=True):
        assert max_relative_error(a, b) < 1e-13


@pytest.mark.parametrize("library", LIBRARIES)
@settings(max_examples=max(5, settings.default.max_examples // 5))
@given(net=networks(max_layers=2, max_size=3), seed=st.integers(0, 2**16))
def test_every_kind_on_every_installed_library(library, net, seed):
    """The compiled function on another library's arrays runs its general
    functions and its constants moved there: the numpy results, as its arrays."""
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    other = on(library, vals)
    w = [*network.params, *network.inputs][0]
    v = np.random.default_rng(seed).standard_normal(vals[w].shape)
    vector = on(library, {"v": v})["v"]
    pairs = [
        (network.grad(net.of, [w], vals)[w], network.grad(net.of, [w], other)[w]),
        (network.hessian(net.of, w, vals).array, network.hessian(net.of, w, other).array),
        (network.hvp(net.of, w, v, vals), network.hvp(net.of, w, vector, other)),
        (network.evaluate(vals)[net.of], network.evaluate(other)[net.of]),
    ]
    plan = network.plan(net.of, w, dims=net.dims)
    pairs.append((plan(vals).array, plan(other).array))
    for mine, theirs in pairs:
        assert max_relative_error(back(library, theirs), mine) < 1e-10


def test_a_long_program_is_replayed_step_by_step_before_it_is_compiled(monkeypatch):
    monkeypatch.setattr(program_module, "EAGER_STEPS", 0)
    monkeypatch.setattr(program_module, "CALLS_BEFORE_COMPILING", 2)
    net = tc.parse(tc.ARTICLE)
    vals = net.random_values(seed=5)
    compiled = net.compile_grad("C", dims={"n": 4, "m": 3})
    reference = net.derivatives("C", ["W", "b"], vals).jacobians
    for call in range(4):
        g = compiled(vals)
        assert (program_module._NUMPY in compiled.program._functions) == (call >= 2)
        for w in ("W", "b"):
            np.testing.assert_array_equal(g[w], reference[w].array)


# --- the fast call path checks what the general path checks -------------------

ARTICLE = tc.parse(tc.ARTICLE)


def _warm(call, vals):
    """Call once with finite values, so that the next call takes the fast path."""
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        call(vals)


PLAN = ARTICLE.plan("a", "W", n=4, m=3)
CALLS = {
    "grad": lambda v, **k: ARTICLE.grad("C", values=v, **k),
    "compile_grad": lambda v, **k: ARTICLE.compile_grad("C", dims={"n": 4, "m": 3})(v, **k),
    "jacobian": lambda v, **k: ARTICLE.jacobian("a", "W", v, **k).array,
    "hessian": lambda v, **k: ARTICLE.hessian("C", "W", v, **k).array,
    "evaluate": lambda v, **k: ARTICLE.evaluate(v, **k)["C"],
    "plan": lambda v, **k: PLAN(v, **k).array,
    "hvp": lambda v, **k: ARTICLE.hvp("C", "W", np.ones((4, 3)), v, **k),
    "ntk": lambda v, **k: ARTICLE.ntk("a", ["W", "b"], v, **k).array,
}


@pytest.mark.parametrize("call", CALLS.values(), ids=list(CALLS))
def test_nan_in_the_values_warns_on_the_fast_path_too(call):
    vals = ARTICLE.random_values(seed=1, n=4, m=3)
    _warm(call, vals)
    vals["x"] = vals["x"].copy()
    vals["x"][0] = np.nan
    with (
        np.errstate(all="ignore"),
        pytest.warns(tc.NonFiniteWarning, match=r"the value of x has 1 non-finite entry"),
    ):
        call(vals)
    with pytest.raises(tc.ValuesError, match=r"the value of x has 1 non-finite entry"):
        call(vals, strict=True)  # before any work
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error", tc.NonFiniteWarning)
        call(vals, check_finite=False)


SQRT = tc.parse("dim n = 3\ninput x[n]\nf = sum(sqrt(x))")


def test_a_non_finite_result_of_finite_values_warns_on_the_fast_path_too():
    _warm(lambda v: SQRT.grad("f", "x", v), {"x": np.array([1.0, 2.0, 4.0])})
    with (
        np.errstate(all="ignore"),
        pytest.warns(
            tc.NonFiniteWarning,
            match=r"^the gradient of f by x holds NaN or infinity \(1 of 3 numbers\);"
            r" every value is finite, but non-finite values first appear in the derivative",
        ),
    ):
        SQRT.grad("f", "x", {"x": np.array([0.0, 1.0, 4.0])})


def test_an_infinite_value_with_finite_results_does_not_warn_on_the_fast_path():
    net = tc.parse("dim n = 4\ninput z[n]\ninput mask[n]\np = softmax(z + mask, n)\nL = sum(p * z)")
    vals = net.random_values(seed=0)
    _warm(lambda v: net.grad("L", "z", v), vals)
    vals["mask"] = np.array([0.0, 0.0, -np.inf, -np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = net.grad("L", "z", vals)["z"]
    assert g[2] == g[3] == 0.0 and np.isfinite(g).all()


def test_values_the_fast_path_does_not_take_go_the_general_way():
    vals = ARTICLE.random_values(seed=2, n=4, m=3)
    reference = ARTICLE.grad("C", values=vals)  # warms the fast path
    as_int = {k: np.round(10 * v).astype(int) for k, v in vals.items()}
    np.testing.assert_array_equal(
        ARTICLE.grad("C", values=as_int)["W"],
        ARTICLE.grad("C", values={k: v.astype(float) for k, v in as_int.items()})["W"],
    )
    f32 = ARTICLE.grad("C", values={k: v.astype(np.float32) for k, v in vals.items()})
    assert f32["W"].dtype == np.float32
    assert max_relative_error(f32["W"], reference["W"]) < 1e-5
    as_lists = {k: v.tolist() for k, v in vals.items()}
    np.testing.assert_array_equal(ARTICLE.grad("C", values=as_lists)["W"], reference["W"])
    larger = ARTICLE.random_values(seed=2, n=5, m=3)
    assert ARTICLE.grad("C", values=larger)["W"].shape == (5, 3)
    with pytest.raises(tc.ValuesError, match=r"unknown tensor 'q' in values"):
        ARTICLE.grad("C", values={**vals, "q": np.ones(2)})
    with pytest.raises(tc.ValuesError, match=r"values are missing b"):
        ARTICLE.grad("C", values={k: v for k, v in vals.items() if k != "b"})
    with pytest.raises(tc.MemoryLimitError, match=r"more than the memory limit of 64 B"):
        ARTICLE.grad("C", values=vals, memory_limit=64)
    np.testing.assert_array_equal(ARTICLE.grad("C", values=vals)["W"], reference["W"])


CHAIN = tc.parse(
    "dim w = 40\ndim v = 2\ninput x[w]\nparam W1[v, w]\nparam W2[w, v]\n"
    "z1[i] = W1[i, j] * x[j]\nz2[i] = W2[i, j] * z1[j]\n"
)


def test_a_large_result_checked_by_a_bound_on_its_factors():
    """dz2/dx = W2 · W1 (40 × 40) is checked through its two 2 × 40 factors:
    an overflow of the product is found all the same, and factors large
    enough to defeat the bound (but not the product) cost no warning."""
    plan = CHAIN.plan("z2", "x")
    vals = CHAIN.random_values(seed=0)
    plan(vals)
    program = plan._program[0]
    assert program.checks.bounded and not program.checks.direct
    big = {**vals, "W1": np.full((2, 40), 1e200), "W2": np.full((40, 2), 1e200)}
    with (
        np.errstate(all="ignore"),
        pytest.warns(tc.NonFiniteWarning, match=r"^dz2/dx holds NaN or infinity \(1,600 of"),
    ):
        plan(big)
    large = {**vals, "W1": np.full((2, 40), 1e150), "W2": np.full((40, 2), 1e-150)}
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        np.testing.assert_allclose(plan(large).array, np.full((40, 40), 2.0), rtol=1e-12)


def test_products_on_the_fast_path_check_their_vector_and_bound():
    vals = PRODUCTS.random_values(seed=6)
    vector = np.random.default_rng(7).standard_normal(vals["W1"].shape)
    first = _flat(_products(vals, vector))
    again = _flat(_products(vals, vector))  # the fast path: the same numbers
    for a, b in zip(first, again, strict=True):
        np.testing.assert_array_equal(a, b)
    halved = PRODUCTS.clipped_grad("L", ["W1", "W2"], vals, max_norm=0.25)
    assert not np.array_equal(halved["W1"], PRODUCTS.clipped_grad("L", ["W1", "W2"], vals)["W1"])
    bad = vector.copy()
    bad[0, 0] = np.nan
    with pytest.warns(tc.NonFiniteWarning, match=r"the Gauss–Newton vector has non-finite"):
        PRODUCTS.gnvp("T", "o", "W1", bad, vals)
    with pytest.raises(tc.ShapeError, match=r"the vector has shape \(3,\) but W1 has shape"):
        PRODUCTS.gnvp("T", "o", "W1", np.ones(3), vals)


def test_values_summed_array_by_array_warn_on_the_fast_path_too():
    """Past JOIN_ENTRIES (a 200 × 100 W) the pass sums an array's squares alone."""
    from tensorchain.runtime.fastcall import JOIN_ENTRIES

    vals = ARTICLE.random_values(seed=8, n=200, m=100)
    assert vals["W"].size > JOIN_ENTRIES >= vals["b"].size
    _warm(lambda v: ARTICLE.grad("C", values=v), vals)
    for name, entry in (("W", (7, 9)), ("b", (3,))):
        bad = {**vals, name: vals[name].copy()}
        bad[name][entry] = np.nan
        with (
            np.errstate(all="ignore"),
            pytest.warns(tc.NonFiniteWarning, match=rf"the value of {name} has 1 non-finite"),
        ):
            ARTICLE.grad("C", values=bad)
    masked = {**vals, "W": vals["W"].copy()}
    masked["W"][7, 9] = np.inf  # σ saturates: a finite gradient, and no warning
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error", tc.NonFiniteWarning)
        assert np.isfinite(ARTICLE.grad("C", values=masked)["W"]).all()


def test_a_huge_finite_value_is_no_alarm_on_the_fast_path():
    """A square past the largest float makes the pass doubt a finite array:
    the general checks then decide, and find nothing to say."""
    net = tc.parse("dim n = 40\ninput x[n]\nparam W[n, n]\nL = sum(W[i, j] * x[j])")
    vals = net.random_values(seed=1)
    _warm(lambda v: net.grad("L", values=v), vals)
    huge = {**vals, "W": vals["W"].copy()}
    huge["W"][3, 4] = 1e200  # its square overflows; the gradient (x, broadcast) is finite
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        g = net.grad("L", values=huge)["W"]
    np.testing.assert_array_equal(g, np.broadcast_to(vals["x"], (40, 40)))


# --- the numpy forms of the steps ----------------------------------------------

FORMS = sorted({(n, 2.0) for n in NUMPY_VALUES} | {(n, 2.0) for n in NUMPY_DERIVATIVES})
FORMS += [("pow", 3.0), ("pow", 0.5)]


@pytest.mark.parametrize(("name", "p"), FORMS)
@settings(max_examples=max(10, settings.default.max_examples // 4))
@given(
    x=hnp.arrays(
        st.sampled_from([np.float64, np.float32, np.complex128]),
        hnp.array_shapes(min_dims=0, max_dims=2, max_side=3),
        elements={"allow_subnormal": False, "min_magnitude": 0.0},
    ),
)
def test_the_numpy_form_of_a_step_is_its_general_form(name, p, x):
    """The forms a compiled program runs on numpy values give what the general
    (any-library) forms give, bit for bit and in the same type and dtype, on
    arrays of every rank (0-d too), float32, complex, inf and NaN."""
    f = ELEMENTWISE[name]
    if x.dtype.kind == "c" and name in NOT_HOLOMORPHIC:
        return
    with np.errstate(all="ignore"):
        y = f.value(x, p)
        pairs = []
        numpy_value = NUMPY_VALUES.get(name, lambda p: None)(p)
        if numpy_value is not None:
            pairs.append((numpy_value(x), y))
        source = f.derivative_source("\0x", "\0y", p)
        reads = ("\0x" in source, "\0y" in source)
        numpy_derivative = NUMPY_DERIVATIVES.get(name, lambda p: None)(p)
        if numpy_derivative is not None and sum(reads) == 1:
            pairs.append((numpy_derivative(x if reads[0] else y), f.derivative(x, y, p)))
    for mine, general in pairs:
        assert type(mine) is type(general)
        assert np.asarray(mine).dtype == np.asarray(general).dtype
        np.testing.assert_array_equal(mine, general)


def test_compiled_runs_do_not_warn_where_sigmoid_saturates():
    """σ(-1000) overflows e^1000 on the way to 0: no numpy warning from the
    general path, the fast path or a plan (compiled runs have numpy's
    warnings off), and the caller's own settings are back afterwards."""
    net = tc.parse("dim n = 5\ninput x[n]\nf = sum(sigmoid(x))")
    x = {"x": np.array([-1000.0, -np.inf, 0.0, np.inf, 1000.0])}
    plan = net.plan("f", "x")
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        for _ in range(2):
            np.testing.assert_array_equal(net.evaluate(x)["f"], 2.5)
            np.testing.assert_array_equal(net.grad("f", "x", x)["x"], [0, 0, 0.25, 0, 0])
            np.testing.assert_array_equal(plan(x).array, [0, 0, 0.25, 0, 0])
    with np.errstate(over="raise"):
        net.grad("f", "x", x)  # the fast path
        with pytest.raises(FloatingPointError):
            np.exp(np.array([1000.0]))


def test_float32_values_take_the_fast_path_of_their_own_program():
    """A second dtype gets its own program (and call): float32 results, equal
    to the general path's, bit for bit."""
    net = tc.parse(tc.ARTICLE)
    vals = {k: a.astype(np.float32) for k, a in net.random_values(seed=9).items()}
    general = net.grad("C", values=vals)  # the general path
    for _ in range(2):
        fast = net.grad("C", values=vals)
        for w in ("W", "b"):
            assert fast[w].dtype == np.float32
            np.testing.assert_array_equal(fast[w], general[w])
    plan = net.plan("a", "W", n=4, m=3)
    first = plan(vals).array
    np.testing.assert_array_equal(plan(vals).array, first)
    assert plan(vals).array.dtype == np.float32
    wide = {k: a.astype(np.float64) for k, a in vals.items()}
    assert plan(wide).array.dtype == np.float64  # the plan's call for float64 too


def test_values_outside_their_domain_are_refused_on_the_fast_path_before_any_work():
    """A declared domain (``param s[n] positive``) is checked by the fast call
    too, before the work: log of a negative value never runs (it would warn)."""
    net = tc.parse("dim n = 3\nparam s[n] positive\nf = sum(log(s))")
    vals = net.random_values(seed=1)
    plan = net.plan("f", "s")
    for call in (lambda v: net.grad("f", "s", v)["s"], lambda v: plan(v).array):
        first = call(vals)
        np.testing.assert_array_equal(call(vals), first)  # the fast path
        with pytest.raises(tc.ValuesError, match=r"the value of s is outside its domain: s\[1\]"):
            call({"s": np.array([1.0, -2.0, 3.0])})
    with np.errstate(invalid="ignore"):  # check_finite=False skips the domains, as in general
        g = net.grad("f", "s", {"s": np.array([1.0, -2.0, 3.0])}, check_finite=False)
    np.testing.assert_array_equal(g["s"], 1.0 / np.array([1.0, -2.0, 3.0]))


SUMS = [
    "z[i, j] = x[i] + y[j]",
    "z[i, j] = 2 * x[i] - A[j, i]",
    "z[i, j] = A[i, j] - 3 * A[j, i] + x[j]",
    "z[i] = x[i] + 1",
    "z[i, j] = A[i, j] + x[j] + 0.5",
    "z[i, j] = x[j] + 0 * y[i]",
    "z[i, j] = -0.5 * A[j, i] - x[i]",
    "z[i, j] = x[i] - y[j] + 2",
]


@pytest.mark.parametrize("statement", SUMS)
@pytest.mark.parametrize("dtype", [np.float64, np.float32, np.complex128])
def test_the_numpy_form_of_a_sum_is_its_general_form(statement, dtype):
    """Sums of terms transposed and broadcast: the expression written for numpy
    values gives the general form's result, bit for bit, dtype and all, as a
    new C-ordered array of the sum's shape."""
    net = tc.parse(f"dim n = 3\ninput x[n]\ninput y[n]\ninput A[n, n]\n{statement}")
    sizes = collections.defaultdict(lambda: 3)  # every dim and index has size 3
    rng = np.random.default_rng(0)
    env = {k: rng.standard_normal(s).astype(dtype) for k, s in (("x", 3), ("y", 3), ("A", (3, 3)))}
    node = net.statements[-1].root
    parts = [evaluate_module.evaluate_node(t, env, sizes, {}) for _, t in node.terms]
    general = evaluate_module._linear(node, sizes)(*parts)
    mine = evaluate_module._linear_numpy(node, sizes)(*parts)
    assert type(mine) is np.ndarray and mine.flags.c_contiguous and mine.flags.writeable
    assert mine.dtype == general.dtype and mine.shape == general.shape
    np.testing.assert_array_equal(mine, general)
    assert not any(np.shares_memory(mine, p) for p in parts)


def test_integer_positions_are_checked_on_every_call():
    """A network with an index tensor (``input ids[B] index V``) takes the
    general path every time: positions of float dtype, or out of range, are
    refused after a call that compiled and ran, as before it."""
    net = tc.parse(
        "dim B = 3\ndim V = 4\ninput ids[B] index V\nparam T[V]\ne[s] = T[ids[s]]\nL = sum(e ^ 2)\n"
    )
    good = {"ids": np.array([0, 3, 1]), "T": np.arange(4.0)}
    for _ in range(2):
        np.testing.assert_array_equal(net.grad("L", "T", good)["T"], [0.0, 2.0, 0.0, 6.0])
    plan = net.plan("L", "T")
    plan(good)
    for bad, message in (
        (np.array([0.0, 3.0, 1.0]), r"the value of ids has dtype float64"),
        (np.array([0, 4, 1]), r"ids\[1\] = 4 is not a position along V"),
    ):
        for call in (lambda v: net.grad("L", "T", v), plan):
            with pytest.raises(tc.ValuesError, match=message):
                call({**good, "ids": bad})
