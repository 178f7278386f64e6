"""The package's layers (issue 21): imports go downwards only, the
reference shares no code with what it checks, modules stay short, and
docs/architecture.md shows the layers as the import graph has them.

The imports and the long modules listed here are those left to remove; the
tests fail on any new one, and on a listed one that is gone (take it off
the list), so the lists say the truth."""

from __future__ import annotations

import importlib.util
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("layers", ROOT / "tools" / "layers.py")
layers = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(layers)

#: Imports from a lower layer to a higher one, left to remove.
KNOWN_UPWARD = {
    "calculus.graph -> runtime.forward",
    "calculus.labeled -> presentation.notation",
    "calculus.labeled -> runtime.blocks",
    "calculus.products -> planning.contract",
    "calculus.products -> runtime.forward",
    "language.gather -> calculus.graph",
    "reference.jets -> calculus.graph",
    "reference.matrix_jets -> calculus.matrix_rules",
    "reference.reshape -> runtime.compiled",
}

#: Modules over 500 lines, left to split.
KNOWN_LONG = {
    "calculus.differentiate",
    "calculus.labeled",
    "cli",
    "contraction.einsum",
    "functions.registry",
    "language.lower",
    "language.syntax",
    "language.user_functions",
    "planning.chain_orders",
    "reference.jets",
    "verification.check_gradient",
    "verification.verify",
}


def test_every_layer_is_named():
    names = {name for name, _ in layers.LAYERS}
    assert {layers.layer(m) for m in layers.modules()} <= names


def test_imports_go_downwards_only():
    assert set(layers.upward()) == KNOWN_UPWARD


#: Circles of imports within a layer, left to break.
KNOWN_CYCLES = [
    ["calculus.matrix_rules", "calculus.rules"],
    ["language.delta_values", "language.lower", "language.selections"],
    ["language.domains", "language.syntax"],
    ["planning.chain_orders", "planning.explore"],
    ["reference.jets", "reference.matrix_jets"],
    ["verification.check_gradient", "verification.suspects"],
]


def test_no_cycle_but_those_left_to_break():
    """Without the listed upward imports, the only circles are the listed
    ones within a layer (every import counted, function-level ones too)."""
    assert layers.cycles(without=KNOWN_UPWARD) == KNOWN_CYCLES


def test_the_reference_imports_nothing_it_checks():
    checked = ("calculus", "contraction", "planning", "runtime", "functions")
    found = {
        f"{a} -> {b}"
        for a, b, _ in layers.imports()
        if layers.layer(a) == "reference" and layers.layer(b) in checked
    }
    assert found <= KNOWN_UPWARD, found - KNOWN_UPWARD


def test_modules_stay_short():
    assert set(layers.long_modules()) == KNOWN_LONG


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
