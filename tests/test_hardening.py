"""Failure behaviour: fuzzed specs, limits, no code execution, values, memory."""

import builtins
import contextlib
import os
import re
import time
import tracemalloc
import warnings

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.arrays import limits
from tensorchain.functions.registry import NOT_HOLOMORPHIC
from tensorchain.presentation.report import derivation
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error

# At least 2,000 fuzzed specs in the default (CI) profile, ten times that in
# the long mode: HYPOTHESIS_PROFILE=thorough python -m pytest tests/test_hardening.py
FUZZ_EXAMPLES = 20_000 if os.environ.get("HYPOTHESIS_PROFILE") == "thorough" else 2_000

PIECES = st.sampled_from(
    [
        "(", ")", "[", "]", ",", "=", "+", "-", "*", "/", "^", "**", "#", "\n", " ",
        "x", "W", "i", "j", "dim", "input", "param", "sum", "mean", "sigmoid", "softmax",
        "0", "1e999", "9" * 40, "-1", "0.5", "é", "σ", "∂", "\t", "\r", "'", '"', ";", ".",
        "__import__", "eval", "\x00", "😀", "２", "٣", "²", "x٣",
    ]
)  # fmt: skip


@st.composite
def mutated_specs(draw):
    base = draw(st.one_of(networks().map(lambda n: n.text), st.text(max_size=40), st.just("")))
    text = base
    for _ in range(draw(st.integers(0, 4))):
        kind = draw(st.sampled_from(["delete", "insert", "swap", "duplicate", "truncate"]))
        at = draw(st.integers(0, len(text)))
        if kind == "delete":
            text = text[:at] + text[at + draw(st.integers(1, 5)) :]
        elif kind == "insert":
            text = text[:at] + draw(PIECES) + text[at:]
        elif kind == "swap":
            tokens = text.split(" ")
            if len(tokens) > 1:
                a, b = draw(st.permutations(range(len(tokens))))[:2]
                tokens[a], tokens[b] = tokens[b], tokens[a]
                text = " ".join(tokens)
        elif kind == "duplicate":
            lines = text.split("\n")
            k = draw(st.integers(0, len(lines) - 1))
            text = "\n".join([*lines[: k + 1], lines[k], *lines[k + 1 :]])
        else:
            text = text[:at]
    return text


@settings(max_examples=FUZZ_EXAMPLES, suppress_health_check=list(HealthCheck))
@given(mutated_specs())
def test_fuzzed_specs_parse_or_raise_a_spec_error_inside_the_text(text):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", tc.SpecWarning)
        try:
            net = tc.parse(text)
        except tc.SpecError as err:
            lines = text.split("\n")
            assert err.line is not None and 1 <= err.line <= len(lines), err
            assert 1 <= err.column <= len(lines[err.line - 1]) + 1, err
            return
    # Only comments may hold anything but ASCII (no Unicode digit is a number).
    assert re.sub(r"#[^\n]*", "", text).isascii(), text
    # It parsed: evaluating it either works or raises a TensorchainError.
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("ignore")
        with contextlib.suppress(tc.TensorchainError):
            net.evaluate(net.random_values(seed=0))


EVIL = [
    'f = __import__("os").system("touch pwned")',
    "import os",
    "f = open(x)",
    "f = eval(x)",
    "f = exec(x)",
    "f = x.__class__",
    "dim n = 2; input x[n]",
    "f = (lambda: 0)()",
    "f = globals()",
    "f = `touch pwned`",
]


@pytest.mark.parametrize("line", EVIL)
def test_no_spec_can_execute_code(line, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)

    def refuse(*args, **kwargs):
        raise AssertionError("user text reached eval/exec")

    monkeypatch.setattr(builtins, "eval", refuse)
    monkeypatch.setattr(builtins, "exec", refuse)
    with pytest.raises(tc.SpecError):
        tc.parse(f"dim n = 2\ninput x[n]\n{line}\n")
    assert list(tmp_path.iterdir()) == []


def chain(k: int) -> str:
    return "dim n = 2\ninput x[n]\nf = sum(" + " + ".join(["x"] * k) + ")\n"


def nest(k: int) -> str:
    return "dim n = 2\ninput x[n]\nf = sum(" + "tanh(" * k + "x" + ")" * k + ")\n"


@pytest.mark.parametrize("make", [chain, nest])
def test_the_deepest_allowed_expression_works_everywhere(make):
    depth = limits.MAX_DEPTH - 2  # sum(...) adds a level; leave room
    net = tc.parse(make(depth))
    vals = net.random_values(seed=1)
    g = net.grad("f", wrt="x", values=vals)["x"]
    np.testing.assert_allclose(g, tc.reshape_method(net, "f", "x", vals), rtol=1e-12)
    assert "∂f/∂x" in derivation(net, "f", "x", vals)[0]


@pytest.mark.parametrize(
    "text",
    [
        chain(limits.MAX_DEPTH + 1),
        chain(10_000),
        nest(limits.MAX_DEPTH + 1),
        "dim n = 2\ninput x[n]\nf = sum(" + "(" * 10_000 + "x" + ")" * 10_000 + ")",
        "dim n = 2\ninput x[n]\nf = sum(" + "-" * 10_000 + "x)",
        "dim n = 2\ninput x[n]\nf = sum(x" + " ^ 2" * 10_000 + ")",
    ],
    ids=["chain", "long chain", "nest", "parentheses", "signs", "powers"],
)
def test_too_deep_is_a_spec_error_never_a_recursion_error(text):
    with pytest.raises(tc.SpecError, match=r"nests more than 100 levels deep here"):
        tc.parse(text)


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (
            "dim n = 99999999999999999999",
            r"dim 'n' = 99999999999999999999 is larger than the limit",
        ),
        ("dim n = " + "9" * 5000, r"is larger than the limit"),
        (
            "dim n = 2\ninput x[n]\nf = sum(x) * 1e999",
            r"the number 1e999 is too large for a float64",
        ),
    ],
)
def test_huge_numbers(text, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.parse(text)


def test_too_many_indices_and_too_long_specs(monkeypatch):
    monkeypatch.setattr(limits, "MAX_INDICES", 3)
    with pytest.raises(tc.SpecError, match=r"uses 4 distinct indices, more than the limit of 3"):
        tc.parse("dim n = 2\nparam T[n, n, n, n]\nf = T[i, j, k, l]")
    monkeypatch.setattr(limits, "MAX_SPEC_CHARS", 10)
    with pytest.raises(tc.SpecError, match=r"the spec has 11 characters, more than the limit"):
        tc.parse("dim n = 2\n\n")
    monkeypatch.setattr(limits, "MAX_STATEMENTS", 2)
    monkeypatch.setattr(limits, "MAX_SPEC_CHARS", 1000)
    with pytest.raises(
        tc.SpecError, match=r"line 3, column 1: the spec has more than 2 statements"
    ):
        tc.parse("dim n = 2\ndim m = 2\ndim k = 2")
    with pytest.raises(tc.ShapeError, match=r"dim n=2199023255553 is larger than the limit"):
        tc.parse("dim n = 2\ninput x[n]").random_values(n=2**41 + 1)


def test_more_than_52_indices_in_one_term():
    # einsum has 52 letters; opt_einsum's symbol mapping takes the rest.
    k = 60
    dims = "\n".join(f"dim d{a} = 1" for a in range(k))
    params = "\n".join(f"param v{a}[d{a}]" for a in range(k))
    term = " * ".join(f"v{a}[i{a}]" for a in range(k))
    net = tc.parse(f"{dims}\n{params}\nf = {term}")
    vals = net.random_values(seed=0)
    expected = np.prod([vals[f"v{a}"][0] for a in range(k)])
    assert net.evaluate(vals)["f"] == pytest.approx(expected)
    g = net.grad("f", wrt="v7", values=vals)["v7"]
    assert g[0] == pytest.approx(expected / vals["v7"][0])
    with pytest.raises(tc.PlanError, match=r"at most 52 distinct indices"):
        tc.reshape_method(net, "f", "v7", vals)


NET = tc.parse(tc.ARTICLE)


def test_non_finite_values_warn_or_raise_with_strict():
    vals = NET.random_values()
    vals["x"] = vals["x"].copy()
    vals["x"][1] = np.nan
    with pytest.warns(tc.NonFiniteWarning, match=r"the value of x has 1 non-finite entry"):
        NET.grad("C", values=vals)
    with pytest.raises(tc.ValuesError, match=r"the value of x has 1 non-finite entry"):
        NET.grad("C", values=vals, strict=True)


def test_calls_may_skip_the_finiteness_check():
    vals = NET.random_values(n=3, m=2)
    vals["x"] = vals["x"].copy()
    vals["x"][1] = np.inf
    plan = NET.plan("a", "W", n=3, m=2)
    grad = NET.compile_grad("C", dims={"n": 3, "m": 2})
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        warnings.simplefilter("error", tc.NonFiniteWarning)
        J = plan(vals, check_finite=False).array
        g = grad(vals, check_finite=False)
        NET.hessian("C", "x", vals, check_finite=False)  # no warning either
        g2 = NET.grad("C", values=vals, check_finite=False)
    assert not np.isfinite(J).all() and not np.isfinite(g["W"]).all()
    assert not np.isfinite(g2["W"]).all()
    with (
        pytest.warns(
            tc.NonFiniteWarning,
            match=r"^da/dW holds NaN or infinity \(3 of 6 numbers\); non-finite values first"
            r" appear in z\[i\] = W\[i, j\] \* x\[j\] \+ b\[i\] \(line 10\) \(infinite or NaN"
            r" entries in the values of x\)",
        ),
        np.errstate(all="ignore"),
    ):
        plan(vals)
    with pytest.raises(tc.ValuesError, match=r"needs check_finite=True"):
        grad(vals, strict=True, check_finite=False)


def test_dtypes_integers_float32_complex():
    vals = NET.random_values(n=3, m=2)
    ints = {k: np.round(v * 3).astype(int) for k, v in vals.items()}
    g = NET.grad("C", values=ints)
    assert g["W"].dtype == np.float64
    floats = {k: v.astype(float) for k, v in ints.items()}
    np.testing.assert_array_equal(g["W"], NET.grad("C", values=floats)["W"])

    single = {k: v.astype(np.float32) for k, v in vals.items()}
    g32 = NET.grad("C", values=single)
    assert g32["W"].dtype == np.float32
    np.testing.assert_allclose(g32["W"], NET.grad("C", values=vals)["W"], rtol=1e-5, atol=1e-6)
    assert NET.jacobian("a", "W", single).array.dtype == np.float32

    rng = np.random.default_rng(1)
    cplx = {k: v + 0.3j * rng.standard_normal(v.shape) for k, v in vals.items()}
    for w in ("W", "b", "x"):
        J = NET.jacobian("C", w, cplx).array
        assert J.dtype == np.complex128
        np.testing.assert_allclose(J, tc.reshape_method(NET, "C", w, cplx), atol=1e-12)
        # a holomorphic function's derivative along the real axis
        step = 1e-7
        plus, minus = dict(cplx), dict(cplx)
        plus[w], minus[w] = cplx[w] + step, cplx[w] - step
        along_all = (NET.evaluate(plus)["C"] - NET.evaluate(minus)["C"]) / (2 * step)
        assert J.sum() == pytest.approx(along_all, rel=1e-6)


def test_complex_values_are_refused_for_functions_without_a_complex_derivative():
    net = tc.parse("dim n = 2\ninput x[n]\nf = sum(relu(x))")
    with pytest.raises(tc.ValuesError, match=r"complex values: relu \(line 3\) has no complex"):
        net.grad("f", wrt="x", values={"x": np.array([1 + 1j, 2])})


def test_views_read_only_and_non_contiguous_values_are_fine():
    vals = NET.random_values(n=3, m=3)
    reference = NET.grad("C", values=vals)
    W = np.asfortranarray(vals["W"])
    x = np.repeat(vals["x"], 2)[::2]  # a strided view
    for arr in (W, x):
        arr.flags.writeable = False
    g = NET.grad("C", values={**vals, "W": W, "x": x})
    np.testing.assert_allclose(g["W"], reference["W"], rtol=1e-14)


@pytest.mark.parametrize(
    ("value", "cls", "message"),
    [
        (np.zeros(0), tc.ShapeError, r"axis 0 of x has size 0 \(dim m\); every dim needs"),
        ([[1.0, 2.0], [3.0]], tc.ValuesError, r"the value of x is not an array"),
        (np.array([{}, {}, {}]), tc.ValuesError, r"the value of x has dtype object"),
    ],
)
def test_values_that_cannot_be_used(value, cls, message):
    with pytest.raises(cls, match=message):
        NET.grad("C", values={**NET.random_values(), "x": value})


def test_the_dense_jacobian_at_4096_is_refused_from_its_forecast():
    vals = NET.random_values(n=4096, m=4096)
    J = NET.jacobian("z", "W", vals)  # structured: x and a delta
    tracemalloc.start()
    start = time.perf_counter()
    with pytest.raises(
        tc.MemoryLimitError, match=r"\(4096 × 4096 × 4096\) would need 512 GiB"
    ) as info:
        _ = J.array
    seconds = time.perf_counter() - start
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert seconds < 0.5
    assert peak < 2**20  # nothing large was allocated
    assert info.value.forecast >= 512 * 2**30
    assert "its structured form holds only 4,096 numbers" in str(info.value)


def test_memory_limits_on_compiled_programs_and_the_reshape_method():
    vals = NET.random_values(n=64, m=64)
    with pytest.raises(tc.MemoryLimitError, match=r"the gradient of C by W, b would need about"):
        NET.grad("C", values=vals, memory_limit=1000)
    with pytest.raises(tc.MemoryLimitError, match=r"more than the memory limit of 1000 B"):
        NET.compile_grad("C", dims={"n": 64, "m": 64}, memory_limit=1000)
    with pytest.raises(tc.MemoryLimitError, match=r"reshape method for dz/dW would hold a 2 MiB"):
        tc.reshape_method(NET, "z", "W", vals, memory_limit=2**20)
    tc.set_memory_limit(2**20)
    try:
        with pytest.raises(tc.MemoryLimitError):
            _ = NET.jacobian("z", "W", vals).array
        assert NET.jacobian("z", "W", vals).dense(memory_limit=2**23).shape == (64, 64, 64)
    finally:
        tc.set_memory_limit(None)
    with pytest.raises(tc.PlanError, match=r"a memory limit is a positive whole number of bytes"):
        tc.set_memory_limit(-1)


def test_every_error_class_has_its_own_exit_status():
    from tensorchain.cli import EXIT_CODES

    codes = {cls: code for cls, code in EXIT_CODES}
    assert len(set(codes.values())) == len(codes)
    for cls in (tc.SpecError, tc.ShapeError, tc.ValuesError, tc.DerivativeError, tc.PlanError):
        err = cls("x")
        assert next(c for k, c in EXIT_CODES if isinstance(err, k)) == codes[cls]
    err = tc.MemoryLimitError("x", 2, 1)
    assert next(c for k, c in EXIT_CODES if isinstance(err, k)) == 9


def test_drawing_values_is_forecast_before_anything_is_allocated():
    net = tc.parse(
        "dim m = 1000000000\ndim n = 100000\ninput x[m]\nparam W[n, m]\nz[i] = W[i, j] * x[j]"
    )
    tracemalloc.start()
    with pytest.raises(
        tc.MemoryLimitError,
        match=r"^the values would need 728 TiB in all \(the largest, W of shape \(100000,"
        r" 1000000000\), 728 TiB\), more than the memory limit of .*; use smaller sizes than"
        r" m=1000000000, n=100000, or raise the limit",
    ) as info:
        net.random_values()
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    assert peak < 2**20
    assert info.value.forecast == 8 * (10**9 + 10**14)
    # the limit given, or the one in force: 64 + 3 · 8 numbers are 704 bytes
    with pytest.raises(tc.MemoryLimitError, match=r"704 B in all .* the memory limit of 600 B"):
        NET.random_values(n=8, m=8, memory_limit=600)
    assert len(NET.random_values(n=8, m=8, memory_limit=704)) == 4
    tc.set_memory_limit(600)
    try:
        with pytest.raises(tc.MemoryLimitError, match=r"the memory limit of 600 B"):
            NET.random_values(n=8, m=8)
    finally:
        tc.set_memory_limit(None)


@pytest.mark.parametrize(
    "args",
    [["--dims", "n=100000,m=1000000000"], ["SPEC"], ["SPEC", "--latex"]],
    ids=["dims", "spec", "latex"],
)
def test_the_command_line_forecasts_before_drawing_values(args, tmp_path, capsys):
    from tensorchain.cli import main

    spec = tmp_path / "huge.tc"
    spec.write_text(tc.ARTICLE.replace("m = 3", "m = 1000000000").replace("n = 4", "n = 100000"))
    args = [str(spec) if a == "SPEC" else a for a in args]
    code = main(["derive", *args])
    err = capsys.readouterr().err
    if "--latex" in args:  # symbolic: no values are drawn
        assert code == 0, err
        return
    assert code == 9, err
    assert err.startswith("tensorchain: error: the values would need")


SQRT = tc.parse("dim n = 3\ninput x[n]\nf = sum(sqrt(x))")


@pytest.mark.parametrize(
    ("call", "what", "count"),
    [
        (lambda v, **k: SQRT.grad("f", "x", v, **k), "the gradient of f by x", "1 of 3"),
        (lambda v, **k: SQRT.jacobian("f", "x", v, **k), "df/dx", "1 of 3"),
        (lambda v, **k: SQRT.evaluate(v, **k), "the forward pass", "1 of 1"),
        (lambda v, **k: SQRT.plan("f", "x")(v, **k), "df/dx", "1 of 3"),
        (lambda v, **k: SQRT.compile_grad("f", "x")(v, **k), "the gradient of f by x", "1 of 3"),
        (lambda v, **k: SQRT.ntk("f", ["x"], v, **k), "the NTK of f by x", "1 of 1"),
    ],
    ids=["grad", "jacobian", "evaluate", "plan", "compile_grad", "ntk"],
)
def test_a_non_finite_result_warns_naming_the_statement_or_raises_with_strict(call, what, count):
    """sqrt of a negative entry: finite values in, NaN out. The result is
    checked (a NaN result used to pass silently), strict=True covers it."""
    message = (
        rf"^{what} holds NaN or infinity \({count} numbers\); non-finite values first"
        r" appear in f = sum\(sqrt\(x\)\) \(line 3\)"
    )
    vals = {"x": np.array([-1.0, 1.0, 4.0])}
    with np.errstate(all="ignore"):
        with pytest.warns(tc.NonFiniteWarning, match=message + r" \(strict=True makes"):
            call(vals)
        with pytest.raises(tc.ValuesError, match=message + "$"):
            call(vals, strict=True)
        with warnings.catch_warnings():
            warnings.simplefilter("error", tc.NonFiniteWarning)
            call(vals, check_finite=False)  # the check skipped, as asked


def test_a_non_finite_derivative_of_finite_values_names_the_derivative():
    vals = {"x": np.array([0.0, 1.0, 4.0])}  # sqrt(0) = 0, but sqrt'(0) = inf
    with (
        np.errstate(all="ignore"),
        pytest.raises(
            tc.ValuesError,
            match=r"^the gradient of f by x holds NaN or infinity \(1 of 3 numbers\); every value"
            r" is finite, but non-finite values first appear in the derivative of"
            r" f = sum\(sqrt\(x\)\) \(line 3\) by x$",
        ),
    ):
        SQRT.grad("f", "x", vals, strict=True)
    net = tc.parse("dim n = 2\ninput x[n]\nu = x * 1e200\nv = u * 1e200\nf = sum(v)")
    match = r"first appear in v = u \* 1e200 \(line 4\)"
    with pytest.raises(tc.ValuesError, match=match), np.errstate(all="ignore"):
        net.evaluate({"x": np.ones(2)}, strict=True)


ATTENTION = tc.parse(
    "dim n = 4\ninput z[n]\ninput mask[n]\np = softmax(z + mask, n)\nL = sum(p * z)"
)


def test_an_attention_mask_of_minus_infinity_with_finite_results_does_not_warn():
    vals = ATTENTION.random_values(seed=0)
    vals["mask"] = np.array([0.0, 0.0, -np.inf, -np.inf])
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no warning that results "will not be finite"
        g = ATTENTION.grad("L", "z", vals)["z"]
        p = ATTENTION.evaluate(vals)["p"]
    assert np.isfinite(g).all() and g[2] == g[3] == 0.0
    e = np.exp(vals["z"][:2] - vals["z"][:2].max())
    np.testing.assert_allclose(p, [*(e / e.sum()), 0.0, 0.0], rtol=1e-14)
    with pytest.raises(
        tc.ValuesError, match=r"the value of mask has 2 non-finite entries \(2 -inf\)"
    ):
        ATTENTION.grad("L", "z", vals, strict=True)  # strict refuses any non-finite value
    vals["mask"] = np.full(4, -np.inf)  # every entry masked: softmax is 0/0
    with (
        np.errstate(all="ignore"),
        pytest.warns(
            tc.NonFiniteWarning,
            match=r"first appear in p = softmax\(z \+ mask, n\) \(line 4\) \(infinite or NaN"
            r" entries in the values of mask\)",
        ),
    ):
        ATTENTION.grad("L", "z", vals)


def test_the_command_line_fails_on_a_non_finite_result(tmp_path, capsys):
    from tensorchain.cli import main

    spec = tmp_path / "sqrt.tc"
    spec.write_text("dim n = 3\nparam x[n]\nf = sum(sqrt(x))\n")
    assert main(["derive", str(spec), "--seed", "0"]) == 3  # seed 0 draws a negative entry
    captured = capsys.readouterr()
    assert "max |tensorchain − reshape method| = nan" in captured.out
    assert captured.err == (
        "tensorchain: error: ∂f/∂x (or the reshape method's) holds NaN or infinity;"
        " non-finite values first appear in f = sum(sqrt(x)) (line 3) (the values were"
        " drawn standard normal: declare which values a tensor takes, e.g. 'param x[n]"
        " positive', or give them with --values FILE.npz)\n"
    )
    assert tc.load(spec).random_values(seed=0)["x"].min() < 0


# Issue 16, item 2: every public result has the values' dtype (float32 in,
# float32 out; complex64 in, complex64 out), dense deltas and zeros included.
DTYPES = (np.float32, np.float64, np.complex64, np.complex128)
TYPED = tc.parse(
    """dim B = 3
dim n = 4
dim m = 3
input x[B, m]
param W[n, m]
param b[n]
param U[n]
z[s, i] = W[i, j] * x[s, j] + b[i]
a = tanh(z)
L[s] = 0.5 * sum(a[s, i] ^ 2, i)
C = 2.0 * sum(a ^ 2)
"""
)  # U is used by nothing: its derivatives are zero


def typed(vals: dict, dtype) -> dict:
    if np.dtype(dtype).kind == "c":
        rng = np.random.default_rng(7)
        vals = {k: v + 0.5j * rng.standard_normal(v.shape) for k, v in vals.items()}
    return {k: np.asarray(v).astype(dtype) for k, v in vals.items()}


def public_results(net: tc.Network, vals: dict) -> dict:
    """Every kind of public result of TYPED on ``vals``, by name."""
    sizes = net.sizes(vals)
    dtype = next(iter(vals.values())).dtype
    return {
        "grad": net.grad("C", values=vals)["W"],
        "jacobian": net.jacobian("a", "W", vals).array,
        "jacobian with deltas": net.jacobian("z", "b", vals).array,
        "zero jacobian": net.jacobian("a", "U", vals).array,
        "hessian with deltas": net.hessian("C", "W", vals).array,
        "zero hessian": net.hessian("C", "U", vals).array,
        "ntk": net.ntk("a", values=vals).array,
        "per-sample norms": net.per_sample_grad_norms("L", values=vals),
        "clipped": net.clipped_grad("L", values=vals)["W"],
        "plan of a scalar": net.plan("C", "W")(vals).array,
        "plan of a jacobian": net.plan("a", "W")(vals).array,
        "zero plan": net.plan("a", "U")(vals).array,
        "reshape method": tc.reshape_method(net, "a", "W", vals),
        "zero reshape method": tc.reshape_method(net, "C", "U", vals),
        "evaluate": net.evaluate(vals)["C"],
        "compile_grad": net.compile_grad("C", dims=sizes, dtype=dtype)(vals)["b"],
        "compile_jacobian": net.compile_jacobian("a", "W", dims=sizes, dtype=dtype)(vals).array,
        "block": net.jacobian("z", "b", vals).block([(0, 2), (0, 3), (1, 4)]),
        "contract": tc.contract("s i, s j -> i j", vals["x"], vals["x"]).array,
    }


@pytest.mark.parametrize("dtype", DTYPES, ids=lambda d: np.dtype(d).name)
def test_every_public_result_has_the_values_dtype(dtype):
    base = TYPED.random_values(seed=3)
    results = public_results(TYPED, typed(base, dtype))
    wide = np.complex128 if np.dtype(dtype).kind == "c" else np.float64
    reference = public_results(TYPED, typed(base, wide))
    tol = 1e-12 if np.dtype(dtype).itemsize == np.dtype(wide).itemsize else 1e-5
    for name, result in results.items():
        assert result.dtype == dtype, f"{name}: {result.dtype}"
        assert max_relative_error(result, reference[name]) < tol, name


@given(networks(), st.sampled_from(DTYPES))
def test_drawn_networks_keep_the_values_dtype(drawn, dtype):
    net = tc.parse(drawn.text)
    vals = typed(net.random_values(seed=0), dtype)
    refused = (*NOT_HOLOMORPHIC, "max", "min")
    if np.dtype(dtype).kind == "c" and any(f"{f}(" in drawn.text for f in refused):
        return  # no complex derivative: refused (test_complex_values_are_refused...)
    w = (net.params or net.inputs)[0]
    hidden = next((t for t in reversed(net.outputs) if net.info(t).dims), None)
    results = {
        "grad": net.grad(drawn.of, w, values=vals)[w],
        "hessian": net.hessian(drawn.of, w, vals).array,
        "plan": net.plan(drawn.of, w)(vals).array,
        "reshape method": tc.reshape_method(net, drawn.of, w, vals),
    }
    if hidden is not None:
        results["jacobian"] = net.jacobian(hidden, w, vals).array
        results["ntk"] = net.ntk(hidden, [w], values=vals).array
    for name, result in results.items():
        assert result.dtype == dtype, f"{name}: {result.dtype}"
