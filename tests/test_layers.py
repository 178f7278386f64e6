"""The package's layers (issue 21): imports go downwards only, no circle
of imports anywhere, the reference shares no code with what it checks,
modules stay short, and docs/architecture.md shows the layers as the import
graph has them. Every import counts: module level, inside functions and
under ``TYPE_CHECKING``."""

from __future__ import annotations

import ast
import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("layers", ROOT / "tools" / "layers.py")
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)


def test_every_layer_is_named():
    names = {name for name, _ in layers.LAYERS}
    assert {layers.layer(m) for m in layers.modules()} <= names


def test_imports_go_downwards_only():
    assert layers.upward() == []


def test_no_circle_of_imports():
    assert layers.cycles() == []


def test_the_reference_imports_nothing_it_checks():
    checked = ("calculus", "contraction", "planning", "runtime", "functions")
    found = [
        f"{a} -> {b}"
        for a, b, _ in layers.imports()
        if layers.layer(a) == "reference" and layers.layer(b) in checked
    ]
    assert found == []


def test_modules_stay_short():
    assert layers.long_modules() == {}


def test_each_package_says_what_it_may_import_and_keeps_to_it():
    """A package's docstring ends with "May import: ..." (layer names, "every
    layer below" or "nothing"); the imports its modules make stay within it."""
    below = {name: set(list(layers.RANK)[: layers.RANK[name]]) for name in layers.RANK}
    imported: dict[str, set[str]] = {}
    for a, b, _ in layers.imports():
        if layers.layer(a) != layers.layer(b):
            imported.setdefault(layers.layer(a), set()).add(layers.layer(b))
    packages = [
        m for m, path in layers.modules().items() if path.name == "__init__.py" and m != "__init__"
    ]
    assert packages
    for package in packages:
        doc = ast.get_docstring(ast.parse(layers.modules()[package].read_text(encoding="utf-8")))
        said = re.search(r"^May import: (.*?)(?:\n\n|\Z)", doc or "", re.M | re.S)
        assert said, f"{package}/__init__.py: its docstring does not say what it may import"
        text = said.group(1)
        named = set(re.findall(r"``([a-z_]+)``", text))
        assert named <= below[package], (
            f"{package} names layers not below it: {named - below[package]}"
        )
        allowed = below[package] if "every layer below" in text else named
        assert imported.get(package, set()) <= allowed, (
            f"{package} imports {sorted(imported[package] - allowed)}, which its docstring"
            f" does not allow ({text!r})"
        )


def test_the_architecture_page_shows_the_import_graph():
    page = (ROOT / "docs" / "architecture.md").read_text(encoding="utf-8")
    shown = re.search(r"<!-- layers -->\n```text\n(.*?)```\n<!-- /layers -->", page, re.S)
    assert shown, "docs/architecture.md lost its generated block"
    assert shown.group(1) == layers.picture(), "run python tools/layers.py and paste its output"


def test_the_graph_reader_sees_every_kind_of_import(tmp_path):
    """Module level, inside a function and under TYPE_CHECKING, relative and absolute."""
    package = tmp_path / "tensorchain"
    (package / "calculus").mkdir(parents=True)
    (package / "calculus" / "__init__.py").write_text("")
    (package / "__init__.py").write_text("")
    (package / "errors.py").write_text("")
    (package / "network.py").write_text("")
    (package / "calculus" / "chain.py").write_text(
        "from typing import TYPE_CHECKING\n"
        "from ..errors import X\n"
        "if TYPE_CHECKING:\n    from ..network import Network\n"
        "def f():\n    import tensorchain.network\n    from . import rules\n"
    )
    (package / "calculus" / "rules.py").write_text("from tensorchain.calculus import chain\n")
    edges = {(a, b) for a, b, _ in layers.imports(package)}
    assert edges == {
        ("calculus.chain", "errors"),
        ("calculus.chain", "network"),
        ("calculus.chain", "calculus.rules"),
        ("calculus.rules", "calculus.chain"),
    }
    assert layers.upward(package) == ["calculus.chain -> network"]
    assert layers.cycles(package) == [["calculus.chain", "calculus.rules"]]


def test_the_graph_reader_sees_the_package_itself_and_imports_by_name(tmp_path):
    """``import tensorchain`` (the package's ``__init__``, the top layer), and
    ``importlib.import_module`` or ``__import__`` of a literal name."""
    package = tmp_path / "tensorchain"
    (package / "arrays").mkdir(parents=True)
    for name in ("__init__.py", "network.py", "cli.py", "arrays/__init__.py"):
        (package / name).write_text("")
    (package / "arrays" / "cache.py").write_text(
        "import importlib\nimport tensorchain\n"
        "def f():\n    importlib.import_module('tensorchain.network')\n"
        "    __import__('tensorchain.cli')\n    importlib.import_module(name)\n"
    )
    edges = {(a, b) for a, b, _ in layers.imports(package)}
    assert edges == {
        ("arrays.cache", "__init__"),
        ("arrays.cache", "network"),
        ("arrays.cache", "cli"),
    }


def test_the_check_fails_on_what_it_finds_and_on_a_module_in_no_layer(tmp_path):
    import shutil
    import subprocess
    import sys

    copy = tmp_path / "repo"
    shutil.copytree(ROOT / "tensorchain", copy / "tensorchain")
    shutil.copytree(ROOT / "tools", copy / "tools")
    check = [sys.executable, str(copy / "tools" / "layers.py"), "--check"]
    assert subprocess.run(check, capture_output=True).returncode == 0
    (copy / "tensorchain" / "arrays" / "up.py").write_text(
        '"""Up."""\nimport tensorchain.network\n'
    )
    out = subprocess.run(check, capture_output=True, text=True)
    assert out.returncode == 1 and "arrays.up -> network" in out.stdout
    (copy / "tensorchain" / "extras.py").write_text('"""Extras."""\n')
    out = subprocess.run(check, capture_output=True, text=True)
    assert out.returncode == 1 and "extras: in no layer" in out.stderr
