"""``experiments/ks_snn.py`` through its command line: the demo (vanilla vs IEMF, paired by seed) on a tiny
budget, and the paper run's one-line errors."""

import subprocess
import sys
from pathlib import Path

import pytest

SCRIPT = Path(__file__).resolve().parents[1] / "experiments" / "ks_snn.py"
TINY = ["--epochs", "1", "--T", "2", "--set", "data.limit=32", "--set", "model.widths=[4]", "--set", "model.blocks=[1]"]


def _run(*argv: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, str(SCRIPT), *argv], capture_output=True, text=True, timeout=600)


def test_the_demo_prints_the_paired_table_and_a_second_call_reads_the_runs_back(tmp_path):
    argv = ["--demo", "--seed-list", "0,1", "--jobs", "1", "--quiet", *TINY, "--out", str(tmp_path / "demo")]
    done = _run(*argv)
    assert done.returncode == 0, done.stderr
    assert "| vanilla |" in done.stdout and "| IEMF |" in done.stdout
    assert "IEMF - vanilla, paired by seed:" in done.stdout
    assert {p.name for p in (tmp_path / "demo").iterdir()} >= {"vanilla_s0", "vanilla_s1", "IEMF_s0", "IEMF_s1"}
    again = _run(*argv)
    assert again.returncode == 0 and "4 reused" in again.stdout + again.stderr
    table = [line for line in done.stdout.splitlines() if line.startswith("| ")]
    assert table == [line for line in again.stdout.splitlines() if line.startswith("| ")]


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        ([], "--data-root is required"),
        (["--data-root", "/x.h5", "--jobs", "4", "--seed-list", "3,4"], "--seed-list, --jobs: for --demo"),
        (["--data-root", "/x.h5", "--executor", "ray"], "--executor: for --demo"),
    ],
)
def test_the_paper_run_refuses_in_one_line(argv, needle):
    done = _run(*argv)
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and needle in lines[0], done.stderr
