"""The benchmark harness runs (a smoke run; nothing here is timed or asserted
about speed) and its agreement check catches a wrong answer."""

import numpy as np
import pytest

from benchmarks.harness import Competitor, measure, table
from benchmarks.run import main


# torch.func warns about its own internals (torch.jit.script) when installed.
@pytest.mark.filterwarnings("ignore::DeprecationWarning")
def test_quick_benchmark_runs(capsys, tmp_path):
    out = tmp_path / "table.md"
    assert main(["--quick", "--out", str(out)]) == 0
    text = capsys.readouterr().out
    assert "| article n=m=4 | tensorchain compiled |" in text
    assert out.read_text(encoding="utf-8").strip() == text.strip()


def test_the_agreement_column_shows_a_wrong_answer():
    rows = measure(
        "case",
        [
            Competitor("right", lambda: np.ones(3), lambda r: r),
            Competitor("wrong", lambda: np.ones(3) * 1.5, lambda r: r),
        ],
        rounds=1,
        target=0.001,
    )
    assert rows[0].error == 0.0
    assert rows[1].error == 0.5
    assert "| case | wrong |" in table(rows)


def test_device_benchmark_runs_on_the_cpu(capsys):
    """The GPU benchmark's smoke run, on the CPU (no GPU needed)."""
    pytest.importorskip("torch")
    pytest.importorskip("array_api_compat")
    from benchmarks.devices import main as devices

    assert devices(["--quick", "--device", "cpu"]) == 0
    text = capsys.readouterr().out
    assert "| MLP depth 2, batch 8, width 16 | tensorchain compiled, torch values (cpu) |" in text
