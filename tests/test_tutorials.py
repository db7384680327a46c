"""Every tutorial under tutorials/ runs as a user would run it (one fresh process for all of them, in an empty
folder), in under a minute each, and every tutorial has its docs page, which includes the script's code."""

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
TUTORIALS = sorted(p for p in (ROOT / "tutorials").glob("*.py") if not p.name.startswith("_"))
DOCS = ROOT / "docs" / "tutorials"

#: one process for all tutorials: the imports and the embedded data set load once
RUNNER = """
import json, runpy, sys, time, traceback
times = {}
for path in sys.argv[1:]:
    wall, cpu = time.perf_counter(), time.process_time()
    try:
        runpy.run_path(path, run_name="__main__")
    except BaseException:
        traceback.print_exc()
        print("TUTORIAL FAILED:", path, file=sys.stderr)
        sys.exit(1)
    times[path] = (time.perf_counter() - wall, time.process_time() - cpu)
print("TIMES " + json.dumps(times))
"""


def test_every_tutorial_has_a_page_that_includes_its_code():
    assert TUTORIALS, "no tutorials found"
    pages = {p.stem: p.read_text() for p in DOCS.glob("*.md")}
    for script in TUTORIALS:
        rel = f"tutorials/{script.name}"
        including = [name for name, text in pages.items() if re.search(rf'--8<-- "{re.escape(rel)}"', text)]
        assert including, f'no page of docs/tutorials/ includes {rel} (--8<-- "{rel}")'


def test_every_tutorial_runs(tmp_path):
    pytest.importorskip("nir", reason="the NIR tutorial needs pip install 'snn-msi[nir]'")
    pytest.importorskip("av", reason="the own-data tutorial needs PyAV: pip install 'snn-msi[data]'")
    env = {
        **os.environ,
        "MPLBACKEND": "Agg",
        "PYTHONPATH": os.pathsep.join([str(ROOT), os.environ.get("PYTHONPATH", "")]),
    }
    proc = subprocess.run(
        [sys.executable, "-c", RUNNER, *map(str, TUTORIALS)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
    )
    assert proc.returncode == 0, proc.stderr[-4000:]
    times = json.loads(proc.stdout.rsplit("TIMES ", 1)[1])
    report = ", ".join(f"{Path(p).stem} {w:.1f} s ({c:.1f} s CPU)" for p, (w, c) in times.items())
    print(f"tutorial times: {report}")
    assert len(times) == len(TUTORIALS)
    slow = {Path(p).stem: c for p, (_, c) in times.items() if c > 60}
    assert not slow, f"tutorials over a minute of CPU time: {slow}"
    assert (tmp_path / "runs" / "tutorials" / "nir" / "model.nir").is_file()
