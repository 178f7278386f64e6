"""The command line, run as a user runs it."""

import re
import subprocess
import sys
from pathlib import Path

import pytest
from example_sizes import SMALL

import tensorchain as tc
from tensorchain.cli import main

EXAMPLES = sorted(Path(__file__).parent.parent.joinpath("examples").glob("*.tc"))


def run(*args):
    return subprocess.run(
        [sys.executable, "-m", "tensorchain.cli", *args],
        capture_output=True,
        text=True,
        check=False,
    )


def agreements(stdout):
    return [float(v) for v in re.findall(r"max \|tensorchain − reshape method\| = (\S+)", stdout)]


def test_python_dash_m_tensorchain_is_the_command_line():
    out = subprocess.run(
        [sys.executable, "-m", "tensorchain", "--version"], capture_output=True, text=True
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith(tc.__version__)


def test_derive_on_the_builtin_article_network():
    result = run("derive")
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "the article's network (built in)" in out
    # the three local derivatives of the article, with their labeled shapes
    assert re.search(r"dC/da\s+\[n\]\s+1×4\s+dense", out)
    assert re.search(r"da/dz\s+\[n, n'\]\s+4×4\s+structured\n\s+= σ'\(z\)\[n\] · δ\(n, n'\)", out)
    assert re.search(
        r"dz/dW\s+\[n, n', m\]\s+4×\(4×3\)\s+structured\n\s+= x\[m\] · δ\(n, n'\)", out
    )
    assert "∂C/∂W = dC/da · da/dz · dz/dW" in out
    assert "einsum:  a,a,b->ab   (dC/da, da/dz, dz/dW)" in out
    assert re.search(r"reshape method: 2 matrix products: 1×4 · 4×4, 1×4 · 4×12", out)
    values = agreements(out)
    assert len(values) == 2  # W and b
    assert all(v < 1e-12 for v in values)
    assert max(len(line) for line in out.splitlines()) <= 80


def small_dims(spec) -> list[str]:
    """``--dims`` with sizes the reshape method can check, for the large examples."""
    small = SMALL.get(spec.name, {})
    return ["--dims", ",".join(f"{d}={n}" for d, n in small.items())] if small else []


@pytest.mark.parametrize("spec", EXAMPLES, ids=[p.name for p in EXAMPLES])
def test_derive_on_every_example(spec, capsys):
    assert main(["derive", str(spec), *small_dims(spec)]) == 0
    out = capsys.readouterr().out
    values = agreements(out)
    assert values and all(v < 1e-12 for v in values)
    assert max(len(line) for line in out.splitlines()) <= 80


def test_derive_options(capsys):
    assert main(["derive", "--of", "a", "--wrt", "W", "--dims", "n=2,m=5", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "sizes: m=5, n=2" in out
    assert "da/dW   shape 2×(2×5)  (Jacobian)" in out
    assert "seed 3" in out


def test_a_bad_spec_exits_nonzero_with_the_error_and_no_traceback(tmp_path):
    spec = tmp_path / "bad.tc"
    spec.write_text("dim n = 3\ninput x[n]\nf = sigmod(x)\n")
    result = run("derive", str(spec))
    assert result.returncode == 4  # SpecError
    assert result.stdout == ""
    assert "Traceback" not in result.stderr
    assert result.stderr.startswith(
        f"tensorchain: error: {spec}, line 3, column 5: unknown function 'sigmod'"
    )


@pytest.mark.parametrize(
    ("args", "code", "message"),
    [
        (["derive", "missing.tc"], 1, "tensorchain: error: cannot read missing.tc: No such file"),
        (["derive", "--wrt", "Q"], 7, "tensorchain: error: unknown tensor 'Q'"),
        (["derive", "--dims", "q=3"], 5, "tensorchain: error: unknown dim 'q'"),
    ],
)
def test_bad_arguments(args, code, message):
    result = run(*args)
    assert result.returncode == code
    assert result.stderr.startswith(message)
    assert "Traceback" not in result.stderr


def test_malformed_dims_is_a_usage_error():
    result = run("derive", "--dims", "n4")
    assert result.returncode == 2
    assert "expected NAME=SIZE like n=4 (digits 0-9), got 'n4'" in result.stderr


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--dims", "n=３"], "expected NAME=SIZE like n=4 (digits 0-9), got 'n=３'"),
        (["--seed", "７"], "expected a whole number written with the digits 0-9, got '７'"),
        (["--seed", "-1"], "expected a whole number written with the digits 0-9, got '-1'"),
    ],
)
def test_numbers_on_the_command_line_are_ascii_digits(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(["derive", *args])
    assert info.value.code == 2
    assert message in capsys.readouterr().err


SCALAR = [p for p in EXAMPLES if any(not tc.load(p).info(o).dims for o in tc.load(p).outputs)]


@pytest.mark.parametrize(("name", "last", "axes"), [("ntk", "out", "B, c"), ("dp_sgd", "L", "B")])
def test_hessian_of_a_spec_without_a_scalar_is_a_usage_error(name, last, axes):
    spec = str(EXAMPLES[0].with_name(f"{name}.tc"))
    result = run("hessian", spec)
    assert result.returncode == 2  # usage, not 1 (an unreadable file)
    assert result.stderr == (
        f"tensorchain: error: {spec} defines no scalar to take the Hessian of (its last"
        f" tensor, {last}, has axes [{axes}]); name a tensor with --of ({last}: the Hessian of"
        f" each of its entries), or add a scalar to the spec, e.g. 'loss = sum({last})', and"
        " name it with --of loss\n"
    )


def test_the_hessian_command_defaults_to_a_param_the_scalar_depends_on(tmp_path, capsys):
    spec = tmp_path / "two.tc"
    spec.write_text("dim n = 2\nparam U[n]\nparam W[n]\nu = sum(U)\nf = sum(W ^ 3)\n")
    assert main(["hessian", str(spec)]) == 0
    assert "∂²f/∂W²" in capsys.readouterr().out
    spec.write_text("dim n = 2\nparam U[n]\nu = sum(U)\nc = 2.0\n")
    assert main(["hessian", str(spec)]) == 2
    assert "c depends on no input or param, so its Hessian is empty; name another scalar" in (
        capsys.readouterr().err
    )
    spec.write_text("dim n = 2\nparam U[n]\n")
    assert main(["derive", str(spec)]) == 2
    assert (
        capsys.readouterr().err
        == f"tensorchain: error: {spec} defines no tensor to differentiate\n"
    )


def test_hessian_of_a_tensor(capsys):
    ntk = str(EXAMPLES[0].with_name("ntk.tc"))
    args = ["hessian", ntk, "--of", "out", "--dims", "B=2,h=3"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "∂²out/∂W1²   shape 2 × 2 × 3 × 3 × 3 × 3" in out
    assert "symbolic deltas: δ(h, h')" in out
    (value,) = [float(v) for v in re.findall(r"max \|tensorchain − reference\| = (\S+)", out)]
    assert value < 1e-12


def test_derive_order_3_prints_the_structure_and_checks_it(capsys):
    args = ["derive", "--order", "3", "--wrt", "W", "--dims", "n=3,m=2"]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "∂³C/∂W³   shape 3 × 2 × 3 × 2 × 3 × 2" in out
    assert "axes [n, m, n', m', n'', m'']" in out
    assert "deltas every term keeps (symbolic, never stored): δ(n, n'), δ(n, n'')" in out
    assert re.search(r"stores \d+ numbers for 216 dense entries", out)
    (value,) = [float(v) for v in re.findall(r"max \|tensorchain − reference\| = (\S+)", out)]
    assert value < 1e-12
    assert max(len(line) for line in out.splitlines()) <= 80


def test_derive_order_is_a_whole_number_and_not_with_latex(capsys):
    result = run("derive", "--order", "0")
    assert result.returncode == 2
    assert "expected a whole number of at least 1, got '0'" in result.stderr
    assert "expected a whole number of at least 1" in run("derive", "--order", "２").stderr
    result = run("derive", "--order", "2", "--latex")
    assert result.returncode == 2
    assert "--latex, --steps and --emit print first derivatives" in result.stderr


@pytest.mark.parametrize("spec", [None, *SCALAR], ids=["builtin", *[p.name for p in SCALAR]])
def test_hessian_command(spec, capsys):
    args = ["hessian"] + ([str(spec), *small_dims(spec)] if spec else ["--dims", "n=3,m=2"])
    assert main(args) == 0
    out = capsys.readouterr().out
    (value,) = [float(v) for v in re.findall(r"max \|tensorchain − reference\| = (\S+)", out)]
    assert value < 1e-12
    assert "structure: axes [" in out
    assert "0× smaller" not in out
    assert any(said in out for said in ("× fewer", "smaller form", "nothing to save"))
    assert max(len(line) for line in out.splitlines()) <= 80 or spec is not None


def test_hessian_whose_reference_does_not_fit_says_so(capsys):
    tc.set_memory_limit(2**20)  # 1 MiB: the structured Hessian fits, the dense reference not
    try:
        args = ["hessian", "--of", "a", "--wrt", "W", "--dims", "n=8,m=8"]
        assert main(args) == 0
    finally:
        tc.set_memory_limit(None)
    out = capsys.readouterr().out
    assert "reference: not run (its dense arrays exceed the memory limit)" in out


def test_a_spec_that_is_not_utf8(tmp_path, capsys):
    path = tmp_path / "bad.tc"
    path.write_bytes(b"\xff\xfedim n = 2\n")
    assert main(["derive", str(path)]) == 4
    err = capsys.readouterr().err
    assert "bad.tc is not UTF-8 text (byte 0 is b'\\xff'); a spec is a text file" in err
    assert "Traceback" not in err


def test_hessian_report_at_large_sizes_stays_structured(capsys):
    """The formula is derived on placeholders and the dense reference is not run:
    n = 1500, m = 1000 once took 34 s and 12 GB for an n×m×m block."""
    assert main(["hessian", "--dims", "n=1500,m=1000"]) == 0
    out = capsys.readouterr().out
    assert "stores 3,500 numbers for 2,250,000,000,000 dense entries" in out
    assert "reference: not run" in out
