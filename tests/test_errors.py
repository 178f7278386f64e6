"""Bad input gets the right TensorchainError subclass with a message that says
where, what, and what to do instead."""

import re

import numpy as np
import pytest

import tensorchain as tc

BASE = "dim n = 4\ndim m = 3\ninput x[m]\nparam W[n, m]\n"


def error_of(text, cls=tc.SpecError):
    with pytest.raises(cls) as info:
        tc.parse(text)
    return info.value


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        ("dim n = 4\ninput x[n\nf = x", 2, 8, r"this '\[' is never closed: expected '\]'"),
        ("dim n = 4\ninput x[n]\nf = x[i", 3, 8, r"expected '\]' to close the index list, found"),
        ("dim n = 4\ninput x[n]\nf = sum(x\n\ng = x", 3, 8, r"this '\(' is never closed"),
        ("dim n = 4\ninput x[n]\nf = sum(x) $ 2", 3, 12, r"unexpected character '\$'"),
        ("dim n = 4\ninput x[n]\nf = (x + ", 3, 10, r"expected a number, a tensor"),
        ("dim n = 4\ninput x[n]\nf = x x", 3, 7, r"expected the end of the line"),
        ("dim n = four", 1, 9, r"expected a positive whole number as the size of dim 'n'"),
        ("dim n = 4\ninput x[3]", 2, 9, r"expected a dim name .*found the number 3"),
        ("dim n = 4\ninput x[n]\nsigmoid(x) = x", 3, 8, r"must start with a tensor name"),
        ("dim n = 4\ninput x[n]\ny x", 3, 3, r"expected '=' after 'y' to define it"),
        ("dim n = 4\ninput x[n]\nf = input", 3, 5, r"'input' is a keyword"),
    ],
)
def test_syntax_errors_point_at_the_token(text, line, column, message):
    err = error_of(text)
    assert (err.line, err.column) == (line, column)
    assert re.search(message, str(err))
    # the source line is quoted with a caret under the column
    quoted, caret = str(err).splitlines()[-2:]
    assert quoted.strip() == text.splitlines()[line - 1].strip()
    assert caret.index("^") - 4 == column - 1


def test_undeclared_tensor_suggests_the_close_name():
    err = error_of(BASE + "z[i] = Wt[i, j] * x[j]")
    assert (err.line, err.column) == (5, 8)
    assert re.search(r"undeclared tensor 'Wt'.*Did you mean 'W'\?", str(err))


def test_tensor_used_in_its_own_definition():
    with pytest.raises(tc.SpecError, match=r"z is used on the right side of its own definition"):
        tc.parse(BASE + "z[i] = W[i, j] * z[j]")


def test_unknown_function_lists_the_known_ones():
    with pytest.raises(
        tc.SpecError,
        match=r"line 5, column 5: unknown function 'sigmod'; did you mean 'sigmoid'\? "
        r"known functions: sigmoid, tanh",
    ):
        tc.parse(BASE + "a = sigmod(x)")


def test_index_used_with_two_sizes_names_both_tensors_and_sizes():
    err = error_of(BASE + "param v[n]\nf = x[i] * v[i]", tc.ShapeError)
    assert err.line == 6
    assert str(err).startswith(
        "line 6, column 12: index 'i' has two sizes: m=3 as axis 0 of x but n=4 as axis 0 of v"
    )


def test_whole_tensor_shape_mismatch_names_the_tensors_and_shapes():
    err = error_of(BASE + "param v[n]\nf = x - v", tc.ShapeError)
    assert re.match(
        r"line 6, column 9: shape mismatch in whole-tensor arithmetic: x has \[m=3\] but v has"
        r" \[n=4\]",
        str(err),
    )


def test_whole_tensor_rank_mismatch():
    with pytest.raises(
        tc.ShapeError, match=r"shape mismatch in whole-tensor arithmetic: x has 1 axis but W has 2"
    ):
        tc.parse(BASE + "f = x * W")


def test_wrong_number_of_indices():
    with pytest.raises(
        tc.ShapeError, match=r"W has 2 axes \[n, m\] but 1 indices are given in W\[i\]"
    ):
        tc.parse(BASE + "z[i] = W[i]")


def test_whole_tensor_reference_in_index_form_says_how_to_index_it():
    with pytest.raises(tc.SpecError, match=r"x has axes \[m\]; .* write x\[i\]"):
        tc.parse(BASE + "z[i] = W[i, j] * x")


def test_left_index_missing_on_the_right():
    with pytest.raises(tc.SpecError, match=r"index 'k' on the left side appears in no term"):
        tc.parse(BASE + "z[i, k] = W[i, j] * x[j]")


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (BASE + "dim n = 2", r"line 5, column 1: dim 'n' is already declared on line 1"),
        (BASE + "param W[n]", r"'W' is already declared on line 4; every tensor is defined once"),
        (BASE + "input v[k]", r"unknown dim 'k' in the declaration of v; declare it first"),
        (
            BASE + "f = 0 ^ x",
            r"a tensor exponent needs a positive base \(x \^ y is exp\(y log x\)\)",
        ),
        (BASE + "f = x / 0", r"division by the constant zero"),
        (BASE + "z[i, i] = W[i, i]", r"index 'i' appears twice on the left side"),
        (BASE + "f = sum(x, x)", r"sum along 'x', but x has the dims \[m\]; name one of"),
        (BASE + "f = sin(x, m)", r"sin takes one argument, 2 given"),
    ],
)
def test_other_spec_errors(text, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.parse(text)


def test_every_error_is_a_tensorchain_error():
    for cls in (tc.SpecError, tc.ShapeError, tc.ValuesError, tc.DerivativeError):
        assert issubclass(cls, tc.TensorchainError)
    assert issubclass(tc.ValuesError, ValueError)


NET = tc.parse(tc.ARTICLE)


def test_missing_and_unknown_values():
    vals = NET.random_values()
    with pytest.raises(tc.ValuesError, match=r"values are missing b; net.random_values"):
        NET.evaluate({k: v for k, v in vals.items() if k != "b"})
    with pytest.raises(
        tc.ValuesError, match=r"unknown tensor 'q' in values; the inputs and params"
    ):
        NET.evaluate({**vals, "q": 1.0})
    with pytest.raises(tc.ValuesError, match=r"'z' is computed by the network \(line 10\)"):
        NET.evaluate({**vals, "z": np.zeros(4)})
    with pytest.raises(tc.ValuesError, match=r"the value of x has dtype <U1"):
        NET.evaluate({**vals, "x": np.array(["a", "b", "c"])})


def test_value_shapes_are_checked_against_dims():
    vals = NET.random_values(n=4, m=3)
    with pytest.raises(
        tc.ShapeError, match=r"x is declared with 1 axis \[m=3\] but its value has shape \(3, 1\)"
    ):
        NET.evaluate({**vals, "x": np.zeros((3, 1))})
    # the value blamed is the one that disagrees (x), not the one read later (W)
    with pytest.raises(
        tc.ShapeError,
        match=r"^dim m is 3 \(axis 1 of W, the spec's dim m = 3\) but axis 0 of x has size 4;"
        " make the values agree$",
    ):
        NET.evaluate({**vals, "x": np.zeros(4)})
    with pytest.raises(
        tc.ShapeError, match=r"\(axis 0 of x, the spec's dim m = 3\) but axis 1 of W"
    ):
        NET.evaluate({**vals, "W": np.zeros((4, 5))})
    u = tc.parse("dim m\ninput x[m]\ninput y[m]\ninput u[m]\nf = sum(x) + sum(y) + sum(u)")
    with pytest.raises(
        tc.ShapeError, match=r"dim m is 2 \(axis 0 of x, axis 0 of u\) but axis 0 of y"
    ):
        u.sizes({"x": np.zeros(2), "y": np.zeros(3), "u": np.zeros(2)})
    with pytest.raises(
        tc.ShapeError,
        match=r"dim m has two sizes in the values: axis 0 of x has size 2 but axis 0 of y has"
        r" size 3",
    ):
        u.sizes({"x": np.zeros(2), "y": np.zeros(3), "u": np.zeros(4)})
    with pytest.raises(
        tc.ShapeError, match=r"dim n is 2 \(n=2 given as an argument\) but axis 0 of y has size 4"
    ):
        NET.sizes(vals, n=2)
    with pytest.raises(tc.ShapeError, match=r"unknown dim 'q'; this network's dims are m, n"):
        NET.random_values(q=3)
    with pytest.raises(tc.ShapeError, match=r"dim n must be a positive integer, got 0"):
        NET.random_values(n=0)


def test_a_dim_without_size_must_be_given():
    net = tc.parse("dim B\ninput x[B]\nf = sum(x)")
    with pytest.raises(tc.ShapeError, match=r"dim B has no size: give it in the spec"):
        net.random_values()


def test_a_conflict_that_appears_only_with_new_sizes():
    net = tc.parse("dim n = 3\ndim m = 3\ninput x[n]\ninput y[m]\nf = x[i] * y[i]")
    net.evaluate(net.random_values())  # n == m: fine
    with pytest.raises(tc.ShapeError, match=r"line 5, column 12: index 'i' has two sizes: n=4"):
        net.random_values(n=4)


def test_grad_of_a_non_scalar_says_to_use_jacobian():
    with pytest.raises(
        tc.DerivativeError,
        match=r"grad needs a scalar, but a has shape \[n\]; use net.jacobian\('a'",
    ):
        NET.grad("a", values=NET.random_values())


def test_unknown_tensor_in_a_derivative():
    with pytest.raises(
        tc.DerivativeError, match=r"unknown tensor 'Q'; this network has x, y, W, b, z, a, C"
    ):
        NET.jacobian("Q", wrt="W", values=NET.random_values())
    with pytest.raises(
        tc.DerivativeError, match=r"^plan takes one wrt tensor \(a str\), got \['W'\]"
    ):
        NET.plan("C", wrt=["W"])
    with pytest.raises(tc.DerivativeError, match=r"^expected a tensor name \(a str\), got \['W'\]"):
        tc.reshape_method(NET, "C", ["W"], NET.random_values())


@pytest.mark.parametrize(
    ("text", "column", "digit"),
    [
        ("dim n = 3\ninput x[n]\nL = ２ * sum(x)", 5, "fullwidth digit two"),
        ("dim n = ３\ninput x[n]\nL = sum(x)", 9, "fullwidth digit three"),
        ("dim n = 3\ninput x[n]\nL = 1.٥ * sum(x)", 7, "arabic-indic digit five"),
        ("dim n = 3\ninput x[n]\nL = sum(x) ^ ²", 14, "superscript two"),
    ],
)
def test_numbers_are_ascii_digits_only(text, column, digit):
    err = error_of(text)
    assert err.column == column
    assert re.search(
        rf"\(({digit})\) is not an ASCII digit; numbers are written with the"
        r" digits 0-9 only",
        str(err),
    ), str(err)


@pytest.mark.parametrize(
    ("rhs", "column", "shown", "value"),
    [
        ("sum(x) * (-2) ^ 0.5", 19, r"\(-2\)\^0.5", r"NaN \(not a real number\)"),
        ("sum(x) * 0 ^ -1", 16, r"0\^\(-1\)", "infinity"),
        ("sum(x) * 10 ^ 400", 17, r"10\^400", "infinity"),
        ("sum(x) * (-10) ^ 401", 20, r"\(-10\)\^401", "-infinity"),
        ("sum(x) * (-10) ^ 400", 20, r"\(-10\)\^400", "infinity"),
        ("sum(x) * log(0)", 14, r"log\(0\)", "-infinity"),
        ("sum(x) * sqrt(-1)", 14, r"sqrt\(-1\)", "NaN"),
        ("sum(x) * exp(1000)", 14, r"exp\(1000\)", "infinity"),
        ("sum(x) * 1e300 * 1e300", 20, r"sum\(x\) \* 1e\+300 \* 1e\+300", "infinity"),
        ("sum(x) / 1e-320", 12, r"sum\(x\) / [0-9.e-]+", "infinity"),
        ("sum(x) + 1e308 + 1e308", 20, r"sum\(x\) \+ 1e\+308 \+ 1e\+308", "infinity"),
        ("x ^ (10 ^ 400)", 13, r"10\^400", "infinity"),
    ],
)
def test_constant_folding_that_is_not_finite_is_a_spec_error(rhs, column, shown, value):
    err = error_of(f"dim n = 2\ninput x[n]\nf = {rhs}")
    assert (err.line, err.column) == (3, column)
    assert re.search(
        rf": the constants in {shown} give {value}.*; constants are folded when the spec"
        " is read and must stay finite real numbers",
        str(err),
    ), str(err)


def test_a_tensor_exponent_of_a_number_needs_a_positive_base():
    """x ^ y with a tensor y is exp(y log x): a base that is a number must be positive."""
    with pytest.raises(tc.SpecError, match=r"\(-2\)\^e: a tensor exponent needs a positive base"):
        tc.parse("dim n = 2\ninput e[n]\nf = (-2) ^ e")
    err = error_of("dim n = 2\ninput e[n]\nf = 1 + 0 ^ (e + 1)")
    assert (err.line, err.column) == (3, 11), str(err)


def test_the_hint_for_a_non_scalar_names_a_free_tensor():
    net = tc.parse("dim n = 2\ninput x[n]\ntotal[i] = x[i] ^ 2")
    with pytest.raises(
        tc.DerivativeError, match=r"reduce total to a scalar first .*\(e.g. loss = sum\(total\)\)"
    ):
        net.grad("total", values={"x": np.ones(2)})
    with pytest.raises(tc.DerivativeError, match=r"\(e.g. total = sum\(a\)\)"):
        NET.grad("a", values=NET.random_values())


def test_errors_of_a_loaded_spec_name_the_file(tmp_path):
    spec = tmp_path / "net.tc"
    spec.write_text("dim n = 3\ninput x[n]\nf = sigmod(x)\n")
    with pytest.raises(
        tc.SpecError, match=rf"^{re.escape(str(spec))}, line 3, column 5: unknown"
    ) as info:
        tc.load(spec)
    assert info.value.path == str(spec)
    spec.write_text("dim n = 3\ninput x[n]\nf = x ２\n")  # from the tokenizer
    with pytest.raises(tc.SpecError, match=rf"^{re.escape(str(spec))}, line 3, column 7: '２'"):
        tc.load(spec)
    # found later, when sizes are given: still the file, line and column
    spec.write_text("dim n = 3\ndim m = 3\ninput x[n]\ninput y[m]\nf = x[i] * y[i]\n")
    net = tc.load(spec)
    with pytest.raises(tc.ShapeError, match=rf"^{re.escape(str(spec))}, line 5, column 12: index"):
        net.random_values(n=4)
    spec.write_text("dim n = 3\ninput x[n]\nparam W[n, n]\nf = sigmoid(W[i, j] * x[j])\n")
    with pytest.warns(tc.SpecWarning, match=rf"^{re.escape(str(spec))}, line 4: in sigmoid"):
        tc.load(spec)
    with pytest.raises(tc.SpecError, match=r"^line 3, column 5: unknown"):  # text: no file
        tc.parse("dim n = 3\ninput x[n]\nf = sigmod(x)\n")


@pytest.mark.parametrize(
    ("text", "line", "column", "message"),
    [
        (
            "dim m = 3\nparm W[m]",
            2,
            1,
            r"unknown keyword 'parm' before 'W'; did you mean 'param'\? A statement starts with"
            r" dim, input, param or shift",
        ),
        (
            "dim m = 3\nimput x[m]",
            2,
            1,
            r"unknown keyword 'imput' before 'x'; did you mean 'input'",
        ),
        ("Dim m = 3", 1, 1, r"unknown keyword 'Dim' before 'm'; did you mean 'dim'"),
        ("dim m = 3\nshfit S[m, m, m]", 2, 1, r"did you mean 'shift'"),
        (
            "dim m = 3\ninput X[m, m]\nf[i, j] = inv(X)[i, j]",
            3,
            17,
            r"the result of a call cannot be indexed, as in inv\(X\)\[i, j\]; only tensors take"
            r" indices: define it on its own line first \(t = inv\(X\)\), then use t\[i, j\]",
        ),
        (
            "dim m = 3\ninput x[m]\nf[i] = (x + x)[i]",
            3,
            15,
            r"a parenthesised expression cannot be indexed, as in \(x \+ x\)\[i\]",
        ),
        ("dim m = 3\ninput x[m]\nf[i] = 2[i] * x[i]", 3, 9, r"a number cannot be indexed"),
        (
            "dim m = 3\ninput x[m]\nf = 2 x",
            3,
            7,
            r"found 'x'; write an operator \(\+ - \* / \^\) between two factors, e.g. 2 \* x",
        ),
    ],
)
def test_misspelled_keywords_indexed_calls_and_missing_operators(text, line, column, message):
    err = error_of(text)
    assert (err.line, err.column) == (line, column)
    assert re.search(message, str(err)), str(err)
    assert "put one statement on each line" not in str(err) or "operator" in str(err)


@pytest.mark.parametrize("name", ["nope", "../article", "article.tc", 3])
def test_an_unknown_builtin_spec_names_the_ones_there_are(name):
    with pytest.raises(tc.SpecError, match=r"no built-in spec .*; the built-in specs are article"):
        tc.builtin(name)
