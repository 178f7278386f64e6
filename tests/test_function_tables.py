"""Every built-in elementwise function is in every table it needs, and its first,
second (and, for the functions only a derivative reaches, third) derivatives agree
with the reference's own table and with central differences, on arguments of
both signs drawn within the function's domain.

A new function in ``ELEMENTWISE`` (tensorchain/functions/registry.py) that misses
a table fails here first, with a message naming the file and the table to add
it to (docs/architecture.md, "An elementwise function", lists them).
"""

import re
from functools import cache
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.calculus.vjp import DERIVATIVES
from tensorchain.functions.registry import CALLABLE, ELEMENTWISE, HELPERS, NOT_HOLOMORPHIC
from tensorchain.reference import functions as reference
from tensorchain.runtime.values import NOT_HOLOMORPHIC_ALONG
from tensorchain.testing import max_relative_error

DOCS = Path(__file__).parent.parent / "docs"
NAMES = list(ELEMENTWISE)
BY_NAME = [name for name in CALLABLE if name in ELEMENTWISE]

#: A spec expression reaching each function not callable by name, the function
#: whose derivatives it has and its exponent, and the orders that reach the
#: function's first derivative (ELEMENTWISE) and its rule in vjp.DERIVATIVES:
#: gelu' holds Φ and φ, so gelu''' differentiates their rules.
REACHED = {
    "reciprocal": ("1 / x", "reciprocal", 0.0, (1, 2)),
    "pow": ("x ^ 3", "pow", 3.0, (1, 2)),
    "normal_cdf": ("gelu(x)", "gelu", 0.0, (2, 3)),
    "normal_pdf": ("gelu(x)", "gelu", 0.0, (2, 3)),
}

#: Where a function is defined, if not on the whole line: its arguments are
#: drawn in [low, high], with one of each sign where the domain has both.
DOMAINS = {"log": (0.2, 4.0), "sqrt": (0.2, 4.0), "log1p": (-0.8, 4.0)}
WHOLE_LINE = (-4.0, 4.0)
AWAY_FROM_ZERO = 0.1  # the kinks of relu, abs, step and sign; the pole of 1/x

P = 3.0  # the exponent passed to every entry (pow reads it, the others ignore it)


def _how(name: str) -> tuple[str, str, float, tuple[int, ...]]:
    return REACHED.get(name, (f"{name}(x)", name, 0.0, (1, 2)))


@st.composite
def arguments(draw, name: str) -> np.ndarray:
    """Three arguments in ``name``'s domain: one negative and one positive
    where the domain has both signs, none within 0.1 of 0."""
    low, high = DOMAINS.get(_how(name)[1], WHOLE_LINE)

    def one(lo: float, hi: float) -> float:
        x = draw(st.floats(lo, hi, allow_nan=False))
        return x if abs(x) >= AWAY_FROM_ZERO else AWAY_FROM_ZERO

    if low < 0:
        return np.array([one(low, -AWAY_FROM_ZERO), one(AWAY_FROM_ZERO, high), one(low, high)])
    return np.array([one(low, high) for _ in range(3)])


def _reference(func: str, r: int, x: np.ndarray, p: float) -> np.ndarray:
    """f^(r)(x) from the reference's own table (zeros where it says zero)."""
    found = reference.value(func, x, p) if r == 0 else reference.derivative(func, r, x, p)
    return np.zeros_like(x) if found is None else np.asarray(found, dtype=float)


# --- the tables ---------------------------------------------------------------


@pytest.mark.parametrize("name", NAMES)
def test_every_function_has_a_rule_for_its_higher_derivatives(name):
    assert name in DERIVATIVES, (
        f"{name} is in ELEMENTWISE but has no entry in DERIVATIVES in"
        " tensorchain/calculus/vjp.py: add f' written as operations there"
        " (net.hessian and every derivative past the first read it)"
    )


@pytest.mark.parametrize("name", NAMES)
def test_every_function_is_in_the_reference_table(name):
    x = np.array([0.5, 1.5])
    try:
        reference.value(name, x, P)
        reference.derivative(name, 1, x, P)
        reference.derivative(name, 2, x, P)
    except tc.DerivativeError as e:
        pytest.fail(
            f"{e}: add {name} to value() and derivative() (every order) in"
            " tensorchain/reference/functions.py, written from the mathematics"
        )


@pytest.mark.parametrize("name", NAMES)
def test_the_registry_and_the_reference_refuse_the_same_functions_for_complex_values(name):
    in_registry, in_reference = name in NOT_HOLOMORPHIC, name in reference.NOT_HOLOMORPHIC
    assert in_registry == in_reference, (
        f"{name} is {'' if in_registry else 'not '}in NOT_HOLOMORPHIC in"
        f" tensorchain/functions/registry.py but {'' if in_reference else 'not '}in"
        " NOT_HOLOMORPHIC in tensorchain/reference/functions.py: add it to both or neither"
    )


@pytest.mark.parametrize("name", [n for n in NAMES if n not in NOT_HOLOMORPHIC])
def test_a_function_accepted_for_complex_values_is_holomorphic(name):
    """Cauchy–Riemann, by central differences along the real and the imaginary
    axis, on the registry's value at complex points (off the branch cuts)."""
    f = ELEMENTWISE[name]
    z = np.array([0.7 + 0.3j, -0.5 - 0.4j, 1.3 - 0.2j])
    h = 1e-6
    along_real = (f.value(z + h, P) - f.value(z - h, P)) / (2 * h)
    along_imaginary = (f.value(z + 1j * h, P) - f.value(z - 1j * h, P)) / (2j * h)
    assert np.max(np.abs(along_real - along_imaginary)) < 1e-6, (
        f"{name} is not holomorphic (or its value here is not complex), yet complex values"
        " are accepted: add it to NOT_HOLOMORPHIC in tensorchain/functions/registry.py and"
        " in tensorchain/reference/functions.py"
    )
    assert max_relative_error(f.value(z, P), reference.value(name, z, P)) < 1e-12, name


@cache
def _language_page() -> tuple[str, str]:
    text = (DOCS / "language.md").read_text(encoding="utf-8")
    listed = re.search(r"^\| elementwise functions \| `([^`]*)`", text, re.M)
    section = text.split("### Elementwise functions", 1)[1]
    table = re.search(r"^\|.*?(?=\n[^|])", section, re.M | re.S)  # its first table
    return (listed.group(1) if listed else ""), (table.group(0) if table else "")


@pytest.mark.parametrize("name", BY_NAME)
def test_every_function_callable_by_name_is_in_the_language_page(name):
    listed, table = _language_page()
    assert name in listed.split(), (
        f"{name} is missing from the list of elementwise functions in docs/language.md"
        " (the row 'elementwise functions' of the whole-tensor form's table)"
    )
    assert re.search(rf"`{name}\(x\)`", table), (
        f"{name} has no row in the table under '### Elementwise functions' in docs/language.md:"
        f" add | `{name}(x)` | value | derivative | (a | inside a cell is written \\|)"
    )


@pytest.mark.parametrize("name", BY_NAME)
def test_every_function_callable_by_name_is_in_the_errors_page(name):
    text = (DOCS / "errors.md").read_text(encoding="utf-8")
    known = re.search(r"known functions: ([^;]*);", text)
    assert known and name in known.group(1).split(", "), (
        f"{name} is missing from the known functions of the SpecError in docs/errors.md:"
        " paste the message `python tests/test_errors_doc.py` prints"
    )


def test_the_reference_refuses_the_same_functions_along_indices():
    """The rest of the reference's refusals (in tensorchain/reference/jets.py) are
    the functions along indices the runtime refuses."""
    from tensorchain.reference import jets

    assert set(jets.NOT_HOLOMORPHIC_ALONG) == set(NOT_HOLOMORPHIC_ALONG)


def test_a_function_without_a_rule_for_higher_derivatives_is_a_derivative_error(monkeypatch):
    net = tc.parse("dim n = 3\ninput x[n]\nf = sum(silu(x))")
    values = {"x": np.array([-1.0, 0.5, 2.0])}
    monkeypatch.delitem(DERIVATIVES, "silu")
    assert net.grad("f", "x", values)["x"].shape == (3,)  # the first derivative needs none
    with pytest.raises(tc.DerivativeError, match=r"^line 3: silu has a first derivative but no"):
        net.hessian("f", "x", values)


# --- the derivatives ------------------------------------------------------------


@cache
def _network(name: str) -> tc.Network:
    return tc.parse(f"dim n = 3\ninput x[n]\nf = sum({_how(name)[0]})")


@pytest.mark.parametrize("name", NAMES)
@settings(max_examples=10)
@given(data=st.data())
def test_every_entry_has_the_derivatives_of_the_reference(name, data):
    """The entry's value and f' (ELEMENTWISE, as functions and as the source
    generated code copies), and the derivatives net.grad,
    net.hessian and net.derivative compute from it and from vjp.DERIVATIVES,
    against the reference's own table, itself checked against central
    differences of its values."""
    x = data.draw(arguments(name), label="x")
    entry = ELEMENTWISE[name]
    expression, func, p, orders = _how(name)
    y = entry.value(x, P)
    assert max_relative_error(y, _reference(name, 0, x, P)) < 1e-12, f"{name}: value"
    dy = entry.derivative(x, y, P)
    assert max_relative_error(dy, _reference(name, 1, x, P)) < 1e-12, (
        f"{name}: the derivative in ELEMENTWISE (tensorchain/functions/registry.py)"
        f" disagrees with tensorchain/reference/functions.py at x = {x}"
    )
    code = {"np": np, **HELPERS, "x": x, "y": y}  # the numpy source generated code copies
    for source, r in ((entry.source("x", P), 0), (entry.derivative_source("x", "y", P), 1)):
        assert max_relative_error(eval(source, code), _reference(name, r, x, P)) < 1e-12, (
            f"{name}: {'derivative_code' if r else 'value_code'} in ELEMENTWISE"
            f" (tensorchain/functions/registry.py) disagrees with the reference at x = {x}"
        )
    h = 1e-5
    for r in range(1, max(orders) + 1):  # the reference against its own values
        fd = (_reference(func, r - 1, x + h, p) - _reference(func, r - 1, x - h, p)) / (2 * h)
        assert max_relative_error(_reference(func, r, x, p), fd) < 1e-6, (
            f"{func}: derivative {r} in tensorchain/reference/functions.py disagrees with"
            f" central differences at x = {x}"
        )
    net = _network(name)
    values = {"x": x}
    for r in orders:
        if r == 1:
            got = net.grad("f", "x", values)["x"]
            where = "its derivative in ELEMENTWISE (tensorchain/functions/registry.py)"
        else:
            got = net.derivative("f", ("x",) * r, values).array
            where = (
                "its rule in DERIVATIVES (tensorchain/calculus/vjp.py) and the derivatives"
                " in ELEMENTWISE of the functions that rule writes"
            )
        expected = np.zeros((3,) * r)  # f = Σ g(x_i): its derivatives are diagonal
        expected[(np.arange(3),) * r] = _reference(func, r, x, p)
        assert max_relative_error(got, expected) < 1e-10, (
            f"{expression}: derivative {r} disagrees with the reference at x = {x}; check {where}"
        )
