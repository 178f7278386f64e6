"""tc.register_function after trial 17 (items 5, 10-13 and the newcomer's 8):
a network binds the registration it was parsed with, on every route;
registering again replaces; names generated code or the spec uses are refused;
results are checked where they are used; unregistering says what it does.

References: closed forms of the chain rule written here from f, df and d2f,
the reshape method, the dense reference and JAX."""

import pickle
import re

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.language.user_functions import USER_FUNCTIONS
from tensorchain.testing import max_relative_error

# Versions of one function, written with operators (so JAX can trace them),
# at module level (so generated code copies them and networks pickle them).


def cube(x):
    return x * x * x


def d_cube_(x):
    return 3.0 * x * x


def d2_cube_(x):
    return 6.0 * x


def sq_plus(x):
    return x * x + x


def d_sq_plus_(x):
    return 2.0 * x + 1.0


def d2_sq_plus_(x):
    return 0.0 * x + 2.0


def bump(x):
    return 1.0 / (1.0 + x * x)


def d_bump_(x):
    return -2.0 * x / (1.0 + x * x) ** 2


def d2_bump_(x):
    return (6.0 * x * x - 2.0) / (1.0 + x * x) ** 3


VERSIONS = [
    (cube, d_cube_, d2_cube_),
    (sq_plus, d_sq_plus_, d2_sq_plus_),
    (bump, d_bump_, d2_bump_),
]

SPEC = """dim n = {n}
param x[n]
param W[n, n]
h[i] = W[i, j] * x[j]
y = myf(h)
L = sum(y * x)
"""


@pytest.fixture(autouse=True)
def clean():
    """Every test starts and ends with no function registered."""
    for name in list(USER_FUNCTIONS):
        tc.unregister_function(name)
    yield
    for name in list(USER_FUNCTIONS):
        tc.unregister_function(name)


def closed_forms(version: int, v: dict) -> dict:
    """y, ∂L/∂x, the Jacobian ∂y/∂x and the Hessian ∂²L/∂x² of SPEC, by hand:
    h = W x, L = Σ_i f(h_i) x_i, so ∂L/∂x_k = f(h_k) + Σ_i f'(h_i) x_i W_ik and
    ∂²L/∂x_k∂x_l = f'(h_l) W_lk + f'(h_k) W_kl + Σ_i f''(h_i) x_i W_ik W_il."""
    f, df, d2f = VERSIONS[version]
    x, W = v["x"], v["W"]
    h = W @ x
    grad = f(h) + W.T @ (df(h) * x)
    hess = (df(h)[:, None] * W).T + df(h)[:, None] * W + W.T @ ((d2f(h) * x)[:, None] * W)
    return {"y": f(h), "grad": grad, "jacobian": df(h)[:, None] * W, "hessian": hess}


def register(version: int) -> None:
    tc.register_function("myf", *VERSIONS[version])


def values(n: int = 3, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    return {"x": rng.uniform(-1, 1, n), "W": rng.uniform(-1, 1, (n, n))}


def close(a, b) -> bool:
    return max_relative_error(np.asarray(a), np.asarray(b)) < 1e-12


# --- item 5 and 10: one network, one version; registering again replaces ---------


def every_route(net: tc.Network, v: dict) -> dict:
    """The results of ``net`` on every route that computes with its functions."""
    namespace: dict = {}
    exec(net.derive("L", "x").to_python(), namespace)
    return {
        "evaluate": net.evaluate(v)["y"],
        "grad": net.grad("L", "x", v)["x"],
        "compile_grad": net.compile_grad("L", "x", n=3)(v)["x"],
        "plan": net.plan("L", "x", n=3)(v).array,
        "to_python": namespace["grad_L_x"](**v),
        "reshape_method": tc.reshape_method(net, "L", "x", v),
        "jacobian": net.jacobian("y", "x", v).array,
        "hessian": net.hessian("L", "x", v).array,
        "derivative": net.derivative("L", ("x", "x"), v).array,
        "hvp": net.hvp("L", "x", np.eye(3)[1], v),
        "reshape_hessian": tc.reshape_hessian(net, "L", "x", v),
        "reference": tc.reference_derivative(net, "L", ("x", "x"), v),
    }


def expected_routes(version: int, v: dict) -> dict:
    c = closed_forms(version, v)
    first = {"evaluate": c["y"], "jacobian": c["jacobian"]}
    first |= {k: c["grad"] for k in ("grad", "compile_grad", "plan", "to_python", "reshape_method")}
    second = {k: c["hessian"] for k in ("hessian", "derivative", "reshape_hessian", "reference")}
    return first | second | {"hvp": c["hessian"][:, 1]}


def test_a_network_answers_with_the_registration_it_was_parsed_with_on_every_route():
    v = values()
    register(0)
    old = tc.parse(SPEC.format(n=3))
    assert close(old.grad("L", "x", v)["x"], closed_forms(0, v)["grad"])  # compiled now
    register(1)  # again, without unregistering: replaces (item 10)
    new = tc.parse(SPEC.format(n=3))
    for net, version in ((old, 0), (new, 1)):
        found, expected = every_route(net, v), expected_routes(version, v)
        for route, value in found.items():
            assert close(value, expected[route]), (version, route)
        assert net.verify("L", "x", v, references=("reference", "differences", "jax")).ok
        assert net.verify("L", ("x", "x"), v, references=("reference", "differences")).ok
    assert "return 3.0 * x * x" in old.derive("L", "x").to_python()  # d_myf, copied
    assert "return 2.0 * x + 1.0" in new.derive("L", "x").to_python()


@settings(max_examples=15, deadline=None)
@given(
    n=st.integers(1, 4),
    steps=st.lists(
        st.one_of(
            st.tuples(st.just("register"), st.integers(0, 2)),
            st.tuples(st.just("parse"), st.just(0)),
            st.tuples(st.just("unregister"), st.just(0)),
            st.tuples(st.sampled_from(["evaluate", "grad", "hessian", "hvp"]), st.integers(0, 9)),
        ),
        max_size=10,
    ),
    seed=st.integers(0, 2**16),
)
def test_drawn_registrations_and_routes_keep_each_network_on_its_version(n, steps, seed):
    """Any order of registering, unregistering, parsing and computing: each
    network's answers are those of the version current when it was parsed."""
    for name in list(USER_FUNCTIONS):
        tc.unregister_function(name)
    v = values(n, seed)
    current, nets = None, []
    for op, arg in [("register", 0), ("parse", 0), *steps]:
        if op == "register":
            register(arg)
            current = arg
        elif op == "unregister" and current is not None:
            tc.unregister_function("myf")
            current = None
        elif op == "parse":
            if current is None:
                with pytest.raises(tc.SpecError, match=r"unknown function 'myf'"):
                    tc.parse(SPEC.format(n=n))
            else:
                nets.append((tc.parse(SPEC.format(n=n)), current))
        elif op in ("evaluate", "grad", "hessian", "hvp"):
            net, version = nets[arg % len(nets)]
            c = closed_forms(version, v)
            if op == "evaluate":
                found = net.evaluate(v)["y"]
            elif op == "grad":
                found = net.grad("L", "x", v)["x"]
            elif op == "hessian":
                found = net.hessian("L", "x", v).array
            else:
                found = net.hvp("L", "x", np.ones(n), v)
            want = {"evaluate": c["y"], "grad": c["grad"], "hessian": c["hessian"]}
            want["hvp"] = c["hessian"] @ np.ones(n)
            assert close(found, want[op]), (op, version)


def test_registering_again_replaces_for_specs_parsed_afterwards():
    tc.register_function("myf", cube, d_cube_)  # no d2f
    first = tc.parse(SPEC.format(n=3))
    tc.register_function("myf", cube, d_cube_, d2_cube_)
    v = values()
    with pytest.raises(tc.DerivativeError, match=r"second derivative of myf is unknown"):
        first.hessian("L", "x", v)  # parsed without d2f
    hess = tc.parse(SPEC.format(n=3)).hessian("L", "x", v).array
    assert close(hess, closed_forms(0, v)["hessian"])


def test_networks_pickle_with_the_registration_they_were_parsed_with():
    v = values()
    register(0)
    net = tc.parse(SPEC.format(n=3))
    data = pickle.dumps(net)
    register(2)
    back = pickle.loads(data)  # its functions pickle by reference: version 0
    assert close(back.grad("L", "x", v)["x"], closed_forms(0, v)["grad"])
    assert close(back.hessian("L", "x", v).array, closed_forms(0, v)["hessian"])


def test_a_network_whose_functions_do_not_pickle_pickles_by_name():
    v = values()
    tc.register_function("myf", lambda x: x * x * x, lambda x: 3.0 * x * x)
    data = pickle.dumps(tc.parse(SPEC.format(n=3)))
    assert close(pickle.loads(data).grad("L", "x", v)["x"], closed_forms(0, v)["grad"])
    tc.unregister_function("myf")
    with pytest.raises(
        tc.SpecError, match=r"pickled with its name only .* 'myf' is not registered"
    ):
        pickle.loads(data)


# --- item 13: unregistering ----------------------------------------------------------


def test_after_unregistering_every_derivative_of_a_network_parsed_with_it_works():
    v = values()
    register(0)
    net = tc.parse(SPEC.format(n=3))
    net.grad("L", "x", v)
    tc.unregister_function("myf")
    c = closed_forms(0, v)
    assert close(net.hessian("L", "x", v).array, c["hessian"])  # was a raw KeyError
    assert close(net.derivative("L", ("x", "x"), v).array, c["hessian"])
    with pytest.raises(tc.DerivativeError, match=r"derivative of order 3 of myf is unknown"):
        net.derivative("L", ("x", "x", "x"), v)
    assert close(net.evaluate(v)["y"], c["y"])
    with pytest.raises(tc.SpecError, match=r"line 5, column 5: unknown function 'myf'"):
        tc.parse(SPEC.format(n=3))


@pytest.mark.parametrize("name", ["tanh", "softmax", "where", "concat", "cross_entropy", "inv"])
def test_unregistering_a_built_in_function_is_an_error(name):
    with pytest.raises(tc.SpecError, match=rf"cannot unregister '{name}': it is a built-in"):
        tc.unregister_function(name)


def test_unregistering_an_unknown_name_is_an_error():
    register(0)
    with pytest.raises(
        tc.SpecError, match=r"cannot unregister 'nope': it is not a registered function.*myf"
    ):
        tc.unregister_function("nope")
    tc.unregister_function("myf")
    with pytest.raises(tc.SpecError, match=r"'myf': it is not a registered function.*none"):
        tc.unregister_function("myf")


# --- item 11 and the newcomer's 8: names ---------------------------------------------


@pytest.mark.parametrize(
    ("name", "why"),
    [
        ("gather", "a name generated code uses"),
        ("scatter", "a name generated code uses"),
        ("onehot", "a name generated code uses"),
        ("unwindows", "a name generated code uses"),
        ("t1", "temporaries t1, t2"),
        ("t27", "temporaries t1, t2"),
        ("grad_L_x", "functions grad_L_x, jacobian_y_x and derivatives_L"),
        ("jacobian_y_T", "functions grad_L_x"),
        ("derivatives_L", "functions grad_L_x"),
        ("len", "a Python built-in"),
        ("range", "a Python built-in"),
        ("ValueError", "a Python built-in"),
        ("concat", "a built-in function"),
    ],
)
def test_names_generated_code_or_the_language_use_are_refused(name, why):
    with pytest.raises(tc.SpecError, match=rf"cannot register '{name}': .*{re.escape(why)}") as e:
        tc.register_function(name, cube, d_cube_)
    other = re.search(r"choose another name, e\.g\. (\w+)", str(e.value))[1]
    tc.register_function(other, cube, d_cube_)  # the name suggested is free


def test_derivative_code_names_of_two_functions_cannot_clash():
    tc.register_function("f", cube, d_cube_)
    with pytest.raises(tc.SpecError, match=r"cannot register 'd_f': generated code would call d_f"):
        tc.register_function("d_f", cube, d_cube_)
    tc.register_function("f", sq_plus, d_sq_plus_)  # registering f again is no clash


@pytest.mark.parametrize(
    ("spec", "what", "at"),
    [
        (
            "dim n = 2\nparam x[n]\nL = sum(x(x))\n",
            "'x' is both .* and a tensor of it \\(line 2\\)",
            (3, 9),
        ),
        (
            "dim n = 2\nparam x[n]\nL = sum(n(x))\n",
            "'n' is both .* and a dim of it \\(line 1\\)",
            (3, 9),
        ),
        ("dim n = 2\nparam x[n]\ny[i] = i(x[i])\n", "'i' is both .* and an index of it", (3, 8)),
        ("dim n = 2\nparam x[n]\ny[k] = softmax(k(x[k]), k)\n", "'k' is both", (3, 16)),
        ("dim n = 2\nparam x[n]\ny = g(x)\nx2 = n(y)\n", "'n' is both .* a dim", (4, 6)),
        (
            "dim n = 2\nparam d_g[n]\ny = g(d_g)\n",
            "the tensor 'd_g' has the name generated",
            (2, 1),
        ),
        ("dim n = 2\nparam x[n]\ny = g(x)\nd2_g = y * 2\n", "the tensor 'd2_g' has", (4, 1)),
    ],
)
def test_a_spec_may_not_give_a_function_it_calls_name_to_anything_else(spec, what, at):
    for name in ("x", "n", "i", "k", "g"):
        tc.register_function(name, cube, d_cube_)
    with pytest.raises(tc.SpecError, match=what) as e:
        tc.parse(spec)
    assert (e.value.line, e.value.column) == at


def test_a_registered_name_a_spec_does_not_call_changes_nothing_in_it():
    tc.register_function("T", sq_plus, d_sq_plus_)
    tc.register_function("i", sq_plus, d_sq_plus_)
    net = tc.parse("dim V = 4\ndim n = 3\nparam T[V, n]\ny[k] = T[2, k] * T[1, k]\nL = sum(y)\n")
    T = np.arange(12.0).reshape(4, 3)
    namespace: dict = {}
    source = net.derive("L", "T").to_python()
    exec(source, namespace)
    expected = np.zeros((4, 3))
    expected[2], expected[1] = T[1], T[2]
    np.testing.assert_array_equal(namespace["grad_L_T"](T=T), expected)  # not T_
    assert "sq_plus" not in source


def test_printed_indices_avoid_the_names_of_the_functions_called():
    tc.register_function("i", cube, d_cube_)
    net = tc.parse("dim n = 3\nparam x[n]\ny[k] = i(x[k])\nL = sum(y)\n")
    assert str(net.derive("L", "x")) == "∂L/∂x[j] = i'(x)[j]"


# --- item 12: results checked where they are used --------------------------------------

SIMPLE = "dim n = {n}\ndim k = 2\nparam x[n, k]\ny = myf(x)\nL = sum(y * x)\n"


def test_a_result_of_the_wrong_shape_is_named_where_it_is_used():
    tc.register_function("myf", lambda x: np.sin(x[:3]), lambda x: np.cos(x[:3]))
    net = tc.parse(SIMPLE.format(n=4))
    v = {"x": np.ones((4, 2))}
    message = r"registered function myf: f\(x\) returned shape \(3, 2\) for x of shape \(4, 2\)"
    for route in (lambda: net.evaluate(v), lambda: net.grad("L", "x", v)):
        with pytest.raises(tc.ValuesError, match=message):
            route()


def test_an_error_the_function_raises_is_named_with_its_cause():
    def fussy(x):
        if x.size > 6:
            raise ZeroDivisionError("too many")
        return np.cos(x)

    tc.register_function("myf", np.sin, fussy)
    net = tc.parse(SIMPLE.format(n=4))
    with pytest.raises(
        tc.ValuesError, match=r"myf: df\(x\) raised ZeroDivisionError: too many"
    ) as e:
        net.grad("L", "x", {"x": np.ones((4, 2))})
    assert isinstance(e.value.__cause__, ZeroDivisionError)


def test_complex_results_for_real_values_are_refused():
    with pytest.raises(tc.SpecError, match=r"f\(x\) returned complex values for real x"):
        tc.register_function("myf", lambda x: np.sin(x) + 0j, np.cos)
    # complex only for larger arrays than the registration tries
    tc.register_function("myf", np.sin, lambda x: np.cos(x) if x.size <= 6 else np.cos(x) + 1e-3j)
    net = tc.parse(SIMPLE.format(n=4))
    with pytest.raises(tc.ValuesError, match=r"myf: df\(x\) returned complex values for real x"):
        net.grad("L", "x", {"x": np.ones((4, 2))})


@settings(max_examples=10, deadline=None)
@given(
    n=st.integers(1, 4), dtype=st.sampled_from([np.float32, np.float64]), seed=st.integers(0, 99)
)
def test_lists_and_integers_are_converted_to_the_values_dtype(n, dtype, seed):
    tc.register_function(
        "myf", lambda x: np.sin(np.asarray(x, np.float64)).tolist(), lambda x: (x > 0).astype(int)
    )
    x = np.random.default_rng(seed).uniform(-1, 1, (n, 2)).astype(dtype)
    net = tc.parse(SIMPLE.format(n=n))
    y, g = net.evaluate({"x": x})["y"], net.grad("L", "x", {"x": x})["x"]
    assert y.dtype == dtype and g.dtype == dtype
    tol = 1e-6 if dtype == np.float32 else 1e-15
    np.testing.assert_allclose(y, np.sin(x.astype(np.float64)), rtol=tol, atol=tol)
    np.testing.assert_allclose(g, np.sin(x.astype(float)) + (x > 0) * x, rtol=tol, atol=tol)
    tc.unregister_function("myf")


@pytest.mark.parametrize(
    ("df", "message"),
    [
        (lambda x: np.cos(x) / np.sum(np.cos(x)), r"df\(x\) is not entrywise"),
        (lambda x: np.cos(x).T, r"df\(x\) returned shape \(3, 2\) for x of shape \(2, 3\)"),
        (lambda x: np.cos(np.ravel(x)), r"df\(x\) returned shape \(6,\) for x of shape \(2, 3\)"),
        (lambda x: np.multiply(x, 2, out=x), r"df\(x\) raised .* must not change its argument"),
        (lambda x: np.array([object()] * x.size), r"df\(x\) returned ndarray of dtype object"),
        (lambda x: None, r"df\(x\) returned NoneType"),
    ],
)
def test_registration_tries_the_functions_on_arrays_of_two_axes(df, message):
    with pytest.raises(tc.SpecError, match=message):
        tc.register_function("myf", np.sin, df)


def test_results_on_jax_values_are_checked_too():
    jnp = pytest.importorskip("jax.numpy")
    tc.register_function("myf", lambda x: 1.0 * x[:3], lambda x: 0.0 * x[:3] + 1.0)
    net = tc.parse(SIMPLE.format(n=4))
    with pytest.raises(tc.ValuesError, match=r"myf: f\(x\) returned shape \(3, 2\)"):
        net.evaluate({"x": jnp.ones((4, 2))})


def test_the_latex_name_is_taken_as_given():
    tc.register_function("f", cube, d_cube_)  # default \mathrm{f}: "{f}" is no placeholder
    net = tc.parse("dim n = 3\nparam x[n]\ny = f(x)\nL = sum(y)\n")
    assert net.derive("L", "x").latex().endswith(r"{\mathrm{f}'(x)}_{i}")
    with pytest.raises(tc.SpecError, match=r"latex='\\\\frac\{1\}\{' has unbalanced braces"):
        tc.register_function("g", cube, d_cube_, latex=r"\frac{1}{")
