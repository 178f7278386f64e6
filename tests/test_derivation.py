"""Derivations: the printed math and the generated code are checked by
evaluating them back against the gradient."""

import io
import string
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import tensorchain as tc
from tensorchain.presentation.derivation import module_source
from tensorchain.strategies import networks
from tensorchain.testing import max_relative_error

ARTICLE = tc.parse(tc.ARTICLE)
EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.tc"))


def run_generated(source: str) -> dict:
    """Execute generated source in a fresh namespace (numpy is all it imports)."""
    assert "tensorchain" not in source.split('"""', 2)[2]  # only the docstring names it
    imports = [line for line in source.splitlines() if line.startswith(("import ", "from "))]
    assert imports == ["import numpy as np"]
    namespace: dict = {}
    exec(compile(source, "<generated>", "exec"), namespace)  # our own generated code
    return namespace


@given(net=networks(max_layers=3), seed=st.integers(0, 2**16))
def test_generated_code_returns_what_grad_and_jacobian_return(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    targets = [*network.params, *network.inputs]
    derivations = [network.derive(net.of, w) for w in targets]
    first = network.outputs[0]
    derivations.append(network.derive(first, targets[-1]))
    namespace = run_generated(
        module_source(derivations, names=[f"f{k}" for k in range(len(derivations))])
    )
    joint = run_generated(module_source(derivations[:-1], names=["g"], joint=True))["g"](**vals)
    grads = network.grad(net.of, wrt=targets, values=vals)
    for k, w in enumerate(targets):
        np.testing.assert_allclose(namespace[f"f{k}"](**vals), grads[w], rtol=1e-12, atol=1e-12)
        np.testing.assert_allclose(
            joint[w] if len(targets) > 1 else joint, grads[w], rtol=1e-12, atol=1e-12
        )
    J = network.jacobian(first, targets[-1], vals).array
    got = namespace[f"f{len(targets)}"](**vals)
    np.testing.assert_allclose(got, J, rtol=1e-12, atol=1e-12)


def evaluate_back(d: tc.Derivation) -> np.ndarray:
    """Contract each printed einsum with its operands (deltas as explicit
    np.eye; result axes a term leaves out are broadcast) and add the terms."""
    full = [d._names[i] for i in d.chain.indices]
    total = np.zeros(d.chain.shape)
    for (coeff, eq, _, deltas), arrays in zip(d.terms, d.operand_values(), strict=True):
        inputs = eq.split("->")[0]
        terms = [*(inputs.split(",") if inputs else []), *("".join(p) for p in deltas)]
        ops = [*arrays, *(np.eye(d.chain.sizes[_index(d, a)]) for a, _ in deltas)]
        kept = [c for c in full if any(c in t for t in terms)]
        letters = {
            c: string.ascii_letters[k]
            for k, c in enumerate(dict.fromkeys("".join(terms) + "".join(full)))
        }
        spec = ",".join("".join(letters[c] for c in t) for t in terms)
        value = np.einsum(f"{spec}->{''.join(letters[c] for c in kept)}", *ops) if ops else 1.0
        view = [d.chain.shape[k] if c in kept else 1 for k, c in enumerate(full)]
        total = total + coeff * np.reshape(value, view)
    return total


def _index(d, letter):
    return next(i for i, name in d._names.items() if name == letter)


@given(net=networks(max_layers=3), seed=st.integers(0, 2**16))
def test_printed_einsum_evaluated_back_equals_the_gradient(net, seed):
    network = tc.parse(net.text)
    vals = network.random_values(seed=seed)
    for w in network.params:
        d = network.derive(net.of, w, values=vals)
        expected = network.grad(net.of, wrt=w, values=vals)[w]
        assert max_relative_error(evaluate_back(d), expected) < 1e-12
        bracket = "[" if network.tensors[w].dims else " = "  # no [] for a scalar
        assert str(d).startswith(f"∂{net.of}/∂{w}{bracket}")


def test_the_article_derivation():
    d = ARTICLE.derive("C", "W")
    assert str(d) == "∂C/∂W[i, j] = 0.5 · 2 (a - y)[i] · σ'(z)[i] · x[j]"
    assert d.einsum == "i,i,j->ij"
    assert d.operands == ("2 (a - y)", "σ'(z)", "x")
    assert d.latex() == (
        r"\frac{\partial C}{\partial {W}_{ij}} = 0.5 \, {2 \left(a - y\right)}_{i}"
        r" \, {\sigma'(z)}_{i} \, {x}_{j}"
    )
    assert d.steps[:3] == [
        "dC/da  [i]  (4)  = 0.5 · 2 (a - y)[i]",
        "da/dz  [i, j]  (4 × 4)  = σ'(z)[i] · δ(i, j)",
        "dz/dW  [i, j, k]  (4 × 4 × 3)  = x[k] · δ(i, j)",
    ]
    assert (
        d.steps[4] == "· dz/dW: 1 δ eliminated by renaming → 0.5 · 2 (a - y)[i] · σ'(z)[i] · x[j]"
    )
    assert d.matrix_form() == (
        "dC/da (1×4) · da/dz (4×4) · reshape(dz/dW) (4×12) = 1×12 → reshape to 4×3"
    )
    assert d._repr_latex_() == f"$${d.latex()}$$"
    assert "σ&#x27;(z)" in d._repr_html_()
    assert not d.numeric
    with pytest.raises(ValueError, match="no values"):
        d.operand_values()


def test_a_jacobian_keeps_its_delta_in_every_rendering():
    d = ARTICLE.derive("a", "W", n=5, m=2)
    assert str(d) == "∂a[i]/∂W[j, k] = σ'(z)[i] · x[k] · δ(i, j)"
    assert d.terms[0][3] == (("i", "j"),)
    assert r"\delta_{ij}" in d.latex()
    assert d.matrix_form() == "da/dz (5×5) · reshape(dz/dW) (5×10) = 5×10 → reshape to 5×5×2"


mathtext = pytest.importorskip("matplotlib.mathtext")


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_every_example_latex_renders_with_mathtext(spec):
    net = tc.load(spec)
    for w in [*net.params, *net.inputs]:
        if w in net.indexes:  # integer positions: no derivative by them
            continue
        latex = net.derive(net.outputs[-1], w).latex()
        mathtext.math_to_image(f"${latex}$", io.BytesIO(), format="png")


@given(net=networks(max_layers=3))
def test_random_network_latex_renders_with_mathtext(net):
    network = tc.parse(net.text)
    for w in network.params[:2]:
        mathtext.math_to_image(f"${network.derive(net.of, w).latex()}$", io.BytesIO(), format="png")


def test_derive_emit_python_prints_a_module_that_runs():
    out = subprocess.run(
        [sys.executable, "-m", "tensorchain.cli", "derive", "--emit", "python"],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    namespace = run_generated(out)
    vals = ARTICLE.random_values()
    g = ARTICLE.grad("C", values=vals)
    got = namespace["derivatives_C"](**vals)  # one function for W and b, shared work
    np.testing.assert_allclose(got["W"], g["W"], rtol=1e-13)
    np.testing.assert_allclose(got["b"], g["b"], rtol=1e-13)


def test_derive_latex_and_steps():
    def cli(*args):
        return subprocess.run(
            [sys.executable, "-m", "tensorchain.cli", "derive", *args],
            capture_output=True,
            text=True,
            check=True,
        ).stdout

    assert cli("--latex", "--wrt", "W").strip() == ARTICLE.derive("C", "W").latex()
    steps = cli("--steps", "--wrt", "b").strip().splitlines()
    assert steps[0] == "∂C/∂b[i] = 0.5 · 2 (a - y)[i] · σ'(z)[i]"
    assert steps[1:] == ARTICLE.derive("C", "b").steps


def test_generated_names_never_clash_with_python():
    net = tc.parse(
        "dim n = 2\ninput lambda_[n]\ninput np[n]\nparam t1[n]\nf = sum(np * t1 + lambda_)"
    )
    vals = net.random_values(seed=2)
    namespace = run_generated(net.derive("f", "t1").to_python("g"))
    np.testing.assert_allclose(
        namespace["g"](lambda_=vals["lambda_"], np_=vals["np"], t1=vals["t1"]), vals["np"]
    )


def unused_assignments(source: str) -> list[str]:
    """Names a generated function assigns and never reads afterwards (``del``
    is not a read): values computed for nothing."""
    import ast

    unused = []
    for fn in (n for n in ast.parse(source).body if isinstance(n, ast.FunctionDef)):
        body = fn.body
        for k, stmt in enumerate(body):
            if not isinstance(stmt, ast.Assign) or not isinstance(stmt.targets[0], ast.Name):
                continue  # t[...] = ... writes into an array read later
            (target,) = stmt.targets
            later = [
                n.id
                for s in body[k + 1 :]
                if not isinstance(s, ast.Delete)
                for n in ast.walk(s)
                if isinstance(n, ast.Name)
            ]
            if target.id not in later:
                unused.append(f"{fn.name}: {ast.unparse(stmt)}")
    return unused


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_generated_code_computes_nothing_it_does_not_use(spec):
    """The loss itself (x², softplus(z)) is not computed for a gradient that
    reads only 2x or σ(z); every assignment is read later."""
    net = tc.load(spec)
    of = net.outputs[-1]
    targets = [w for w in [*net.params, *net.inputs] if w not in net.indexes]
    derivations = [net.derive(of, w) for w in targets]
    assert unused_assignments(module_source(derivations, joint=True)) == []
    assert unused_assignments(module_source(derivations)) == []


@given(net=networks(max_layers=3))
def test_generated_code_of_random_networks_computes_nothing_it_does_not_use(net):
    network = tc.parse(net.text)
    derivations = [network.derive(net.of, w) for w in [*network.params, *network.inputs]]
    assert unused_assignments(module_source(derivations, joint=True)) == []


def test_generated_temporaries_never_shadow_a_tensor_named_like_them():
    net = tc.parse(
        "dim n = 3\ninput x[n]\nparam D[n, n]\nt1 = D[i, i]\nt2 = tanh(x)\nt3 = t1 * t2\n"
        "L = sum(t3 ^ 2)"
    )
    vals = net.random_values(seed=1)
    d = net.derive("L", "D")
    got = run_generated(d.to_python(name="g"))["g"](**vals)
    np.testing.assert_allclose(got, net.grad("L", "D", vals)["D"], rtol=1e-12)
