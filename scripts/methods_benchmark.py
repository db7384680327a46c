"""How the README's methods table is made and kept in the repository (issue #24).

    PYTHONPATH=CLONE python scripts/methods_benchmark.py run [--work DIR]   # start or resume, tuning first
    python scripts/methods_benchmark.py keep [--work DIR]                   # copy its finished runs here
    python scripts/methods_benchmark.py readme                              # their table into the README

``run`` trains what ``snn-msi study methods --benchmark --out DIR`` trains, in the same folders, but tunes before
the official and IEMF rows (the command does them first, so that a table comes early; the table here came from
an earlier run whose folders were lost, so the tuning is what is missing). ``DIR`` (default
``../bench/methods-benchmark``) starts as a copy of ``results/methods-benchmark`` when it does not exist. Run it
from a clone of the commit it should train with (``PYTHONPATH`` pointing there), in the background: edits to the
working copy then cannot reach the runs in flight.

``keep`` copies what ``DIR`` has finished into ``results/methods-benchmark`` (what its README lists: each finished
run's ``config.yaml``, ``results.json`` and ``metrics.csv``; each sweep's ``sweep.db``, through SQLite's backup,
and its outputs; the study's tables), with the benchmark's processes paused (SIGSTOP, then SIGCONT) so that the
copy is consistent: a trial the database calls complete has its results, and a run still training is left out.

``readme`` writes the table of the kept runs (the study's ``per_method.md``) into the README, between the
:data:`BEGIN` and :data:`END` lines, once every run and sweep of the benchmark is there; before that it says what
is missing (exit 2).
"""

from __future__ import annotations

import argparse
import os
import shutil
import signal
import sqlite3
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
KEPT = ROOT / "results" / "methods-benchmark"
RUN_FILES = ("config.yaml", "results.json", "metrics.csv")
STUDY_FILES = ("*.md", "*.csv", "*.yaml", "*.png")
OURS = ("README.md",)  # the kept folder's own files, not the study's: never copied to the work folder or back
README = ROOT / "README.md"
BEGIN = "<!-- the methods table, written by `python scripts/methods_benchmark.py readme` -->"
END = "<!-- end of the methods table -->"


def run(work: Path) -> int:
    """The benchmark in ``work``, tuning first."""
    from snn_msi.cli import build_parser, main_guard
    from snn_msi.reports import study_methods as sm

    if not work.exists() and KEPT.is_dir():
        shutil.copytree(KEPT, work, ignore=shutil.ignore_patterns(*OURS))
    args = build_parser().parse_args(["study", "methods", "--benchmark", "--out", str(work), "--quiet"])
    real = sm.run_methods_study
    tuned = []

    def tune_first(cfg, report=False):
        if not tuned:  # the study's first call (the official rows): the tuning before it
            tuned.append(sm.tune(cfg, sm.BENCHMARK["tune"], sm.BENCHMARK["tune_seed"]))
        return real(cfg, report)

    sm.run_methods_study = tune_first
    return main_guard("snn-msi study methods", args.func, args)


def _processes() -> list[int]:
    """The ``run`` processes of this script and their descendants (the executor's workers)."""
    parent = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            parent[int(stat.parent.name)] = int(fields[1])
        except (OSError, ValueError, IndexError):
            continue
    found = [pid for pid in parent if pid != os.getpid() and b"methods_benchmark.py\0run" in _cmdline(pid)]
    todo = list(found)
    while todo:
        pid = todo.pop()
        children = [p for p, pp in parent.items() if pp == pid]
        found += children
        todo += children
    return found


def _cmdline(pid: int) -> bytes:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes()
    except OSError:
        return b""


def keep(work: Path) -> int:
    """Copy ``work``'s finished runs, sweeps and tables into :data:`KEPT`, the benchmark paused meanwhile."""
    if not work.is_dir():
        print(f"--work {work}: no such folder", file=sys.stderr)
        return 2
    pids = _processes()
    for pid in pids:
        os.kill(pid, signal.SIGSTOP)
    try:
        runs = [p.parent for p in work.rglob("results.json")]
        for run_dir in runs:
            dest = KEPT / run_dir.relative_to(work)
            dest.mkdir(parents=True, exist_ok=True)
            for name in RUN_FILES:
                shutil.copy2(run_dir / name, dest / name)
        for db in work.rglob("sweep.db"):
            dest = KEPT / db.relative_to(work)
            dest.parent.mkdir(parents=True, exist_ok=True)
            with sqlite3.connect(db) as src, sqlite3.connect(dest) as copy:
                src.backup(copy)
            for pattern in STUDY_FILES:
                for f in db.parent.glob(pattern):
                    shutil.copy2(f, dest.parent / f.name)
        for pattern in STUDY_FILES:
            for f in work.glob(pattern):
                if f.name not in OURS:
                    shutil.copy2(f, KEPT / f.name)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGCONT)
    print(f"kept {len(runs)} finished runs in {KEPT} ({len(pids)} benchmark processes paused meanwhile)")
    return 0


def kept_study():
    """The benchmark's study as ``--benchmark --out results/methods-benchmark`` reads it (its tuned values, once the
    tuning has written them) and what of it is not in :data:`KEPT` yet: ``(config, missing)``, ``missing`` a list
    of lines (empty when the table is complete)."""
    from snn_msi.cli import build_parser
    from snn_msi.reports import study_methods as sm
    from snn_msi.reports.runs import finished

    args = build_parser().parse_args(["study", "methods", "--benchmark", "--out", str(KEPT)])
    cfg, trials = sm.study_config(args)
    missing = []
    if (KEPT / sm.TUNED_FILE).is_file():
        cfg.tuned = sm.load_tuned(KEPT / sm.TUNED_FILE)
        untuned = [m for m in cfg.method_names() if m in sm.TUNE and m not in cfg.tuned]
        if untuned:
            missing.append(f"the tuned values of {', '.join(untuned)} (no completed trial in {sm.TUNED_FILE})")
    else:
        done, total = sm.tuning_progress(cfg, trials, sm.BENCHMARK["tune_seed"])
        missing.append(f"the tuning ({done} of {total} trials; no {sm.TUNED_FILE} yet)")
    configs = [sm.run_config_for(cfg, c, s) for c in sm.cells(cfg) for s in cfg.runs.seeds]
    left = sum(1 for c in configs if not finished(c))
    if left:
        missing.append(f"{left} of {len(configs)} runs")
    return cfg, missing


def with_table(text: str, table: str) -> str:
    """``text`` (the README) with ``table`` between its :data:`BEGIN` and :data:`END` lines."""
    if text.count(BEGIN) != 1 or text.count(END) != 1 or text.index(BEGIN) > text.index(END):
        raise ValueError(f"{README.name}: expected one {BEGIN!r} line, then one {END!r} line")
    head, _, rest = text.partition(BEGIN)
    return f"{head}{BEGIN}\n{table.rstrip()}\n{END}{rest.partition(END)[2]}"


def readme() -> int:
    """Write the kept runs' table into the README, or say what is missing (exit 2)."""
    from snn_msi.reports import study_methods as sm

    cfg, missing = kept_study()
    if missing:
        print(f"{KEPT}: the benchmark is not complete: {'; '.join(missing)} missing", file=sys.stderr)
        return 2
    table = sm.per_method_table(sm.run_methods_study(cfg, report=True), cfg)
    README.write_text(with_table(README.read_text(), table))
    print(f"wrote the table of {KEPT} into {README}; write the text around it from the same runs")
    return 0


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("what", choices=("run", "keep", "readme"))
    p.add_argument("--work", type=Path, default=ROOT.parent / "bench" / "methods-benchmark", help="the work folder")
    args = p.parse_args(argv)
    if args.what == "readme":
        return readme()
    return run(args.work) if args.what == "run" else keep(args.work)


if __name__ == "__main__":
    sys.exit(main())
