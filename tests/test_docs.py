"""The docs run and render: every Python block of a page runs, in order, in
one namespace per page; the built site has no unrendered include and no
table broken into text (mkdocs build --strict passes on both)."""

import ast
import html as htmllib
import importlib.util
import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent
DOCS = sorted(ROOT.joinpath("docs").glob("*.md"))
BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)
SNIPPET = re.compile(r'^--8<-- "([^"]+)"$', re.M)  # pymdownx.snippets, base path "."


def blocks(page: Path) -> list[str]:
    """The page's Python blocks, includes expanded as mkdocs expands them."""
    text = page.read_text(encoding="utf-8")
    return [
        SNIPPET.sub(lambda m: ROOT.joinpath(m[1]).read_text(encoding="utf-8"), b)
        for b in BLOCK.findall(text)
    ]


def missing_library(source: str) -> str | None:
    """An optional library the block imports that is not installed."""
    for node in ast.walk(ast.parse(source)):
        names = []
        if isinstance(node, ast.Import):
            names = [a.name for a in node.names]
        elif isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        for name in names:
            if importlib.util.find_spec(name.split(".")[0]) is None:
                return name.split(".")[0]
    return None


PAGES = [pytest.param(p, id=p.name) for p in DOCS if blocks(p)]


@pytest.mark.parametrize("page", PAGES)
def test_every_python_block_of_a_page_runs_in_order(page, tmp_path, monkeypatch, capsys):
    """Each block sees what the blocks above it on the page defined, as a
    reader does. Files are written to a scratch directory (examples/ is
    there); a block importing a library that is not installed is skipped."""
    (tmp_path / "examples").symlink_to(ROOT / "examples")
    monkeypatch.chdir(tmp_path)
    namespace: dict = {"__name__": "__main__"}
    skipped = []
    for k, source in enumerate(blocks(page)):
        library = missing_library(source)
        if library is not None:
            skipped.append(f"block {k + 1} needs {library}")
            continue
        exec(compile(source, f"{page.name}, python block {k + 1}", "exec"), namespace)
    capsys.readouterr()
    assert len(skipped) < len(blocks(page)), skipped


@pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("mkdocs", "material", "mkdocstrings")),
    reason="the docs extra (mkdocs, mkdocs-material, mkdocstrings) is not installed",
)
def test_the_built_site_has_no_unrendered_include_or_broken_table(tmp_path):
    site = tmp_path / "site"
    mkdocs = [sys.executable, "-m", "mkdocs", "build", "--strict", "--quiet", "-d", str(site)]
    result = subprocess.run(mkdocs, cwd=ROOT, capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stderr
    problems = []
    for page in sorted(site.rglob("*.html")):
        if page.parent.name in ("search", "assets"):
            continue
        html = page.read_text(encoding="utf-8")
        name = page.relative_to(site)
        # an include left as text, whole or mangled by a formatter ("--8 < --"),
        # in prose or in a highlighted code block (tags stripped)
        text = htmllib.unescape(re.sub(r"<[^>]+>", "", html))
        for hit in re.findall(r"-{2}8\s*<\s*-{2}[^\n]{0,60}", text):
            problems.append(f"{name}: unrendered include {hit!r}")
        # table rows rendered as a paragraph: a table split by a blank line, or
        # a row with the wrong number of cells before its separator line
        for hit in re.findall(r"<p>\s*\|[^\n]{0,60}", html):
            problems.append(f"{name}: table text outside a table {hit!r}")
        for hit in re.findall(
            r"\|\s*-{3,}\s*\|", re.sub(r"<(pre|code)>.*?</\1>", "", html, flags=re.S)
        ):
            problems.append(f"{name}: a table separator rendered as text {hit!r}")
    shutil.rmtree(site, ignore_errors=True)
    assert not problems, "\n".join(problems)
