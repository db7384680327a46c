"""The executors and study resume: a study on a synthetic Kinetics-Sounds tree through Ray and locally gives the same
runs bit for bit; a study killed mid-run and rerun trains only what is missing and prints the same table; a Ray
worker that dies mid-run is retried and its run resumes; parallel local runs get distinct GPUs (faked count)."""

import csv
import json
import os
import re
import sys
from pathlib import Path

import pytest
import torch

from snn_msi.cli import main
from snn_msi.reports import runs
from snn_msi.training import TrainConfig, demo_config

ray = pytest.importorskip("ray")

TINY = [
    f"--set={kv}"
    for kv in (
        "epochs=2",
        "model.widths=[4]",
        "model.blocks=[1]",
        "model.stem=small",
        "model.T=1",
        "data.image_size=16",
        "batch_size=8",
        "data.num_workers=0",
    )
]


@pytest.fixture(scope="module")
def ray_session():
    """One local Ray (2 CPUs) for the module; the executor uses it as it is."""
    ray.init(num_cpus=2, include_dashboard=False, log_to_driver=False)
    ray.cloudpickle.register_pickle_by_value(sys.modules[__name__])  # the test's own task functions
    yield
    ray.shutdown()


@pytest.fixture(scope="module")
def ks(tmp_path_factory):
    from .trees import make_ks_tree

    return make_ks_tree(tmp_path_factory.mktemp("ks"))


def _study(ks, out, executor):
    return [
        "study",
        "methods",
        "--dataset",
        "kinetics-sounds",
        "--data-root",
        str(ks),
        "--model",
        "ks-paper",
        *TINY,
        "--executor",
        executor,
        "--seed-list",
        "3-4",
        "--methods",
        "normal",
        "ogm_ge",
        "--no-iemf",
        "--quiet",
        "--out",
        str(out),
    ]


TIMES = ("compute_seconds", "compute_cpu_seconds")  # the one thing two executions do not repeat


def _table(out: Path) -> tuple[list[dict], str]:
    """The study's per-run rows and table, wall and CPU times left out."""
    with (out / "runs.csv").open() as fh:
        rows = [{k: v for k, v in r.items() if k not in TIMES} for r in csv.DictReader(fh)]
    lines = (out / "summary.md").read_text().splitlines()
    times = [lines[0].split("|").index(f" {c} ") for c in ("wall", "CPU")]
    table = ["|".join(c if i not in times else "" for i, c in enumerate(x.split("|"))) for x in lines if x[:1] == "|"]
    rest = [re.sub(r"[0-9.]+ s (wall|CPU)", r"- s \1", x) for x in lines if not x.startswith("|")]
    return rows, "\n".join(table + rest)


@pytest.fixture(scope="module")
def ray_study(ray_session, ks, tmp_path_factory):
    out = tmp_path_factory.mktemp("ray_study")
    assert main(_study(ks, out, "ray")) == 0
    return out


def test_ray_study_on_kinetics_sounds_prints_its_table(ray_study, ks, capsys):
    rows, md = _table(ray_study)
    assert [(r["method"], r["seed"]) for r in rows] == [
        ("normal", "3"),
        ("normal", "4"),
        ("ogm_ge", "3"),
        ("ogm_ge", "4"),
    ]
    assert "| ogm_ge | official | no | 2 |" in md and "kinetics-sounds" in md and "seeds 3,4" in md
    assert main(_study(ks, ray_study, "ray")) == 0  # rerun: every run read back from its folder
    assert "4 runs (ray): 0 trained, 0 resumed, 4 reused" in capsys.readouterr().out


def test_a_killed_local_study_trains_only_what_is_missing_and_equals_the_ray_study(
    ray_study, ks, tmp_path, monkeypatch, capsys
):
    """Local (in this process, one thread as each Ray task) against Ray: the same runs bit for bit. The study is
    killed after the first epoch of its second run; the rerun resumes that run and trains the other two."""
    import snn_msi.training as training

    real = training.Trainer

    class Killed(real):
        def __init__(self, cfg, **kw):
            self.kill = cfg.out.endswith(os.path.join("normal", "s4"))
            super().__init__(cfg, **{**kw, "stop_after": 1} if self.kill else kw)

        def fit(self):
            result = super().fit()
            if self.kill:
                raise KeyboardInterrupt  # the study is killed mid-run
            return result

    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        out = tmp_path / "local"
        cmd = [*_study(ks, out, "local"), "--jobs", "1"]
        monkeypatch.setattr(training, "Trainer", Killed)
        assert main(cmd) == 130  # Ctrl-C: one line, the shell's exit code for SIGINT
        monkeypatch.setattr(training, "Trainer", real)
        assert (out / "normal" / "s4" / "last.pt").is_file() and not (out / "normal" / "s4" / "results.json").exists()
        capsys.readouterr()
        assert main(cmd) == 0
    finally:
        torch.set_num_threads(threads)
    assert "4 runs (local): 2 trained, 1 resumed, 1 reused" in capsys.readouterr().out
    assert _table(out) == _table(ray_study)  # every per-run metric and the table, bit for bit
    epochs = [float(r.split(",")[0]) for r in (out / "normal" / "s4" / "metrics.csv").read_text().splitlines()[1:]]
    assert epochs == [1, 2]  # the resumed run logged each epoch once


def _dies_once(cfg_dict: dict) -> runs.RunOutcome:
    """A Ray task whose worker dies (``os._exit``) after the first epoch of its run, the first time only."""
    marker = Path(cfg_dict["out"] + ".died")
    if not marker.exists():
        import snn_msi.training as training

        marker.touch()
        training.Trainer(TrainConfig.from_dict(cfg_dict), stop_after=1, progress=False).fit()
        os._exit(1)
    return runs.run_config(cfg_dict)


def test_a_dead_ray_worker_is_retried_and_its_run_resumes(ray_study, tmp_path):
    cfg = TrainConfig.from_dict(runs.RunDir(ray_study / "normal" / "s3").saved_config())
    cfg = cfg.replace(out=str(tmp_path / "run"))
    (outcome,) = runs.RayExecutor(max_retries=2, progress=False).map(_dies_once, [cfg.to_dict()])
    assert outcome.status == "resumed"
    same = [json.dumps(runs.results(p).to_dict()) for p in (tmp_path / "run", ray_study / "normal" / "s3")]
    assert same[0] == same[1]  # bit for bit (NaN fields included)


def _probe(_):
    import time

    time.sleep(0.5)  # both workers take items
    return os.getpid(), runs.worker_device()


def test_parallel_local_runs_get_distinct_gpus(monkeypatch):
    """Two workers, two (faked) GPUs: each worker holds its own device, never both cuda:0; ``device: auto`` (and
    ``cuda``) land on it, an explicit device stays."""
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "device_count", lambda: 2)
    seen = runs.LocalExecutor(jobs=2, progress=False).map(_probe, list(range(6)))
    by_worker = {}
    for pid, device in seen:
        by_worker.setdefault(pid, set()).add(device)
    assert len(by_worker) == 2 and all(len(d) == 1 for d in by_worker.values())  # a worker keeps its device
    devices = [d for (d,) in by_worker.values()]
    assert len(set(devices)) == len(devices) and set(devices) <= {"cuda:0", "cuda:1"}
    monkeypatch.setattr(runs, "_DEVICE", "cuda:1")
    assert runs._placed(demo_config()).device == "cuda:1" and runs._placed(demo_config(device="cpu")).device == "cpu"


def test_a_local_ray_without_the_gpus_a_run_asks_for_is_one_line(ks, tmp_path):
    """This machine's own Ray (no --address) never has more GPUs than the machine: --gpus-per-run beyond them
    would wait forever. Its own process: a Ray another test of this module started must not be the one used."""
    import subprocess

    more = torch.cuda.device_count() + 1
    argv = [*_study(ks, tmp_path / "ray_gpu", "ray"), "--gpus-per-run", str(more)]
    done = subprocess.run([sys.executable, "-m", "snn_msi.cli", *argv], capture_output=True, text=True, timeout=120)
    assert done.returncode == 2, done.stderr
    assert done.stderr.strip().splitlines() == [
        f"snn-msi study methods: error: --gpus-per-run {more}: this machine has {more - 1} GPU(s) and no --address "
        "(a Ray cluster) was given; the runs would wait forever"
    ]
    assert not any((tmp_path / "ray_gpu").rglob("*.pt"))
