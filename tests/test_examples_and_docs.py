"""The example scripts run, every example spec is checked against the reshape
method for every param and input, and the docstring examples hold."""

import doctest
import importlib
import pkgutil
import runpy
from pathlib import Path

import pytest
from example_sizes import SMALL

import tensorchain as tc
from tensorchain.testing import max_relative_error

ROOT = Path(__file__).parent.parent
SCRIPTS = sorted(ROOT.joinpath("examples").glob("*.py"))
SPECS = sorted(ROOT.joinpath("examples").glob("*.tc"))


@pytest.mark.parametrize("script", SCRIPTS, ids=[p.name for p in SCRIPTS])
def test_example_script_runs(script, capsys):
    runpy.run_path(str(script), run_name="__main__")
    assert capsys.readouterr().out


def test_chunked_jacobian_with_dask_values(capsys, monkeypatch):
    """The worked example's other path: dask values, J.array lazy and chunked
    (it checks its norms against the structured contraction itself)."""
    pytest.importorskip("dask")
    pytest.importorskip("array_api_compat")
    script = ROOT / "examples" / "chunked_jacobian.py"
    monkeypatch.setattr("sys.argv", [str(script), "--dask-values", "--batch", "16"])
    runpy.run_path(str(script), run_name="__main__")
    assert "chunked norms vs the structured contraction" in capsys.readouterr().out


@pytest.mark.parametrize("spec", SPECS, ids=[p.name for p in SPECS])
def test_example_spec_against_reshape_method(spec):
    net = tc.load(spec).with_sizes(SMALL.get(spec.name, {}))
    vals = net.random_values(seed=7)
    of = net.outputs[-1]
    for w in [*net.params, *net.inputs]:
        if w in net.indexes:  # integer positions: no derivative by them
            continue
        got = net.jacobian(of, wrt=w, values=vals).array
        assert max_relative_error(got, tc.reshape_method(net, of, w, vals)) < 1e-12, w


def test_the_tutorial_shows_what_the_script_prints(capsys):
    runpy.run_path(str(ROOT / "examples" / "article_by_hand.py"), run_name="__main__")
    printed = capsys.readouterr().out.splitlines()
    shown = ROOT.joinpath("docs", "article_by_hand.out").read_text(encoding="utf-8").splitlines()
    # the differences from the reference are rounding, so compare everything else
    keep = [k for k, line in enumerate(shown) if not line.startswith("max |")]
    assert [shown[k] for k in keep] == [printed[k] for k in keep]


def test_builtin_article_is_the_example():
    assert ROOT.joinpath("examples", "article.tc").read_text() == tc.ARTICLE


MODULES = [
    importlib.import_module(m.name)
    for m in pkgutil.walk_packages(tc.__path__, "tensorchain.")
    if m.name != "tensorchain.strategies"
]


@pytest.mark.parametrize("module", MODULES, ids=[m.__name__ for m in MODULES])
def test_docstring_examples(module):
    failures, _ = doctest.testmod(module, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert failures == 0
