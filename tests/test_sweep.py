"""``snn-msi sweep``: a tiny OGM-GE alpha sweep on digits-av killed mid-trial and rerun (the trial resumes from its
folder, the count of trials holds), its outputs, a changed sweep refused, and the values it parses."""

import csv
import dataclasses
import importlib.util
from pathlib import Path

import pytest
import yaml

import snn_msi.training as training
from snn_msi.cli import main
from snn_msi.reports.study_methods import Cell, MethodsStudyConfig, cells, run_config_for
from snn_msi.reports.sweep import parse_param

pytest.importorskip("optuna")

TINY = [f"--set={kv}" for kv in ("data.limit=32", "model.widths=[4]", "model.blocks=[1]", "model.T=2", "batch_size=16")]


def _sweep(out, *extra):
    return [
        "sweep",
        "--method",
        "ogm_ge",
        "--param",
        "alpha=0.05:2:log",
        "--trials",
        "3",
        "--epochs",
        "2",
        *TINY,
        "--jobs",
        "1",
        "--quiet",
        "--out",
        str(out),
        *extra,
    ]


def test_a_killed_sweep_continues_and_writes_its_table_plot_and_tuned_values(tmp_path, monkeypatch, capsys):
    real = training.Trainer

    class Killed(real):
        def fit(self):
            if not self.cfg.out.endswith("trial_001"):
                return super().fit()
            self.stop_after = 1
            super().fit()
            raise KeyboardInterrupt  # the sweep is killed after the first epoch of its second trial

    out = tmp_path / "sweep"
    monkeypatch.setattr(training, "Trainer", Killed)
    assert main(_sweep(out)) == 130  # Ctrl-C: one line, the shell's exit code for SIGINT
    assert "interrupted; the same command continues" in capsys.readouterr().err
    monkeypatch.setattr(training, "Trainer", real)
    assert (out / "trial_001" / "last.pt").is_file() and not (out / "trial_001" / "results.json").exists()
    capsys.readouterr()
    out = out.rename(tmp_path / "moved")  # a sweep folder moved (or copied) elsewhere continues where it is now
    assert main(_sweep(out)) == 0
    assert not (tmp_path / "sweep").exists()
    assert "1 trial(s) of a killed sweep continue from their folders" in capsys.readouterr().out
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert len(rows) == 3 and {r["state"] for r in rows} <= {"complete", "pruned"}
    assert sorted(r["run_dir"].rsplit("/", 1)[1] for r in rows) == ["trial_000", "trial_001", "trial_003"]
    assert all(r["run_dir"] == str(out / f"trial_{int(r['trial']):03d}") for r in rows)  # the rerun keeps its number
    metrics = (out / "trial_001" / "metrics.csv").read_text().splitlines()[1:]
    assert [float(r.split(",")[0]) for r in metrics] == [1, 2]  # resumed: each epoch once
    best = max((r for r in rows if r["state"] == "complete"), key=lambda r: float(r["value"]))
    assert yaml.safe_load((out / "tuned.yaml").read_text()) == {"ogm_ge": {"alpha": float(best["alpha"])}}
    assert "| trial | state | best val acc % | epochs | alpha |" in (out / "summary.md").read_text()
    assert (out / "sweep.png").stat().st_size > 1000
    if importlib.util.find_spec("tensorboard"):  # an optional backend (the `logging` extra)
        assert len(list((out / "trial_000" / "tb").iterdir())) == 1  # one trainer per trial, not one per epoch
    assert main(_sweep(out, "--trials", "3")) == 0  # done: nothing more to train
    assert main(_sweep(out).__add__(["--param", "lr=0.01:0.1:log"])) == 2  # another sweep in the same folder
    assert "holds another sweep" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("text", "error"),
    [
        ("alpha", "expected NAME=LOW:HIGH"),
        ("alpha=2:1", "need LOW < HIGH"),
        ("alpha=0:1:log", "LOW > 0"),
        ("alpha=1:2:cubic", "expected NAME=LOW:HIGH"),
        ("start=0.5:3:int", "whole numbers"),
    ],
)
def test_bad_params_are_one_line_errors(text, error, capsys):
    with pytest.raises(SystemExit) as e:
        main(["sweep", "--param", text])
    assert e.value.code == 2 and error in capsys.readouterr().err


def test_params_parse_and_unknown_names_are_refused(capsys, tmp_path):
    p = parse_param("alpha=0.05:2:log")
    assert (p.low, p.high, p.log, p.integer) == (0.05, 2.0, True, False)
    assert parse_param("fusion=concat,msi").choices == ("concat", "msi")
    assert parse_param("start=0:3:int").integer
    assert main(["sweep", "--method", "ogm_ge", "--param", "beta=0:1", "--out", str(tmp_path / "s")]) == 2
    assert "has no key 'beta'" in capsys.readouterr().err and not (tmp_path / "s").exists()
    for bad, needle in (("projection=false,maybe", "projection must be true or false"), ("lr=-1:1", "lr must be > 0")):
        assert main(["sweep", "--method", "mla", "--param", bad, "--out", str(tmp_path / "s")]) == 2
        assert needle in capsys.readouterr().err and not (tmp_path / "s").exists()  # every value checked first


def test_the_methods_study_takes_tuned_values(tmp_path):
    tuned = tmp_path / "tuned.yaml"
    tuned.write_text("ogm_ge: {alpha: 0.3}\n")
    assert main(["study", "methods", "--tuned", str(tmp_path / "missing.yaml"), "--out", str(tmp_path / "o")]) == 2
    from snn_msi.reports.study_methods import load_tuned

    cfg = MethodsStudyConfig(methods=("ogm_ge",), tuned=load_tuned(tuned))
    assert run_config_for(cfg, Cell("ogm_ge", "tuned"), 0).policies == [{"name": "ogm_ge", "alpha": 0.3}]
    assert run_config_for(cfg, Cell("ogm_ge", iemf=True), 0).policies == [{"name": "ogm_ge"}, {"name": "iemf"}]
    assert run_config_for(cfg, Cell("normal"), 0).policies == []
    assert Cell("ogm_ge", "tuned") in cells(cfg)
    cfg.tuned = {"ogm_ge": {"alpha": 0.8}}  # the official value: no tuned row repeats the official one
    assert Cell("ogm_ge", "tuned") not in cells(cfg)


@pytest.mark.parametrize("prune", [True, False])
def test_every_trial_process_uses_the_sweeps_pruner(prune, monkeypatch):
    """A study loaded without its pruner gets Optuna's default (no warm-up): each trial must load the sweep's."""
    import optuna

    from snn_msi.reports import sweep

    seen = {}

    class Loaded(Exception):
        pass

    def load_study(**kwargs):
        seen.update(kwargs)
        raise Loaded

    monkeypatch.setattr(optuna, "load_study", load_study)
    with pytest.raises(Loaded):
        sweep.run_trial(({}, 0), storage="sqlite:///unused.db", prune=prune, jobs=3)
    pruner, want = seen.get("pruner"), sweep.make_pruner(prune, 3)
    assert type(pruner) is type(want)
    if prune:  # the median pruner, judging a trial against the batches of 3 before its own
        inner = pruner.pruner
        assert pruner.jobs == 3 and type(inner) is type(want.pruner) and vars(inner) == vars(want.pruner)
        assert inner._n_warmup_steps == 2 and inner._n_startup_trials == 2


def test_every_param_example_of_the_help_is_taken(capsys):
    """The examples `snn-msi sweep --help` gives for --param: each one checked as a trial's config, with a method
    that has the option (from the registry) or, for a config key, plain training."""
    import dataclasses
    import re

    from snn_msi.reports.sweep import SweepConfig
    from snn_msi.training import METHODS

    with pytest.raises(SystemExit):
        main(["sweep", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    help_text = text[text.rindex("--param NAME") :].split("--trials")[0]
    examples = re.findall(r"[a-z_.]+=[^\s,)]+(?:,[^\s,)]+)*", help_text)
    assert len(examples) >= 4, help_text
    for example in examples:
        p = parse_param(example)
        owners = [
            m
            for m in METHODS.names()
            if m != "normal" and p.name in {f.name for f in dataclasses.fields(METHODS.get(m).factory.config_class)}
        ]
        SweepConfig(method=owners[0] if owners else "normal", params=[p])


class _InProcess:
    """An executor running a batch's trials one after the other in this process, so that a fake ``run_trial`` is
    the one called."""

    def map(self, fn, items, labels=None, on_done=None):
        return [fn(x) for x in items]


def _killed_at(call, real):
    """``real``, raising KeyboardInterrupt (the machine stops) at its ``call``-th call (from 0) instead."""
    calls = iter(range(1000))

    def killed(*args, **kwargs):
        if next(calls) == call:
            raise KeyboardInterrupt
        return real(*args, **kwargs)

    return killed


def _trials(out):
    """A sweep's ``trials.csv`` rows in the order of the trials' places (a rerun keeps its first number)."""
    with (out / "trials.csv").open() as fh:
        return sorted(csv.DictReader(fh), key=lambda r: int(r["trial"]))


@pytest.mark.parametrize("jobs", [1, 2, pytest.param(3, marks=pytest.mark.slow)])
def test_a_sweep_stopped_anywhere_tries_the_points_of_one_that_ran_through(jobs, tmp_path, monkeypatch):
    """Each trial's values depend on the seed, --jobs, its place and the trials of the batches before its own, not
    on where the sweep was stopped: 16 trials of two values in one go, and in five sittings (the first ending
    inside a batch, the second killed between a trial's two random draws, the third ending past TPE's 10 random
    trials inside a batch, the fourth killed mid-batch), try the same points in the same order (a killed trial
    rerun with its values); another seed others."""
    import math

    from snn_msi.reports import sweep

    def value(item, storage, prune, jobs):  # peaks at alpha 0.3, lr 0.01, so that TPE has a model to fit
        (alpha,) = [p["alpha"] for p in item[0]["policies"] if p["name"] == "ogm_ge"]
        return "complete", 0.9 - 0.01 * math.log(alpha / 0.3) ** 2 - 0.01 * math.log(item[0]["lr"] / 0.01) ** 2

    def points(out):
        return [(float(r["alpha"]), float(r["lr"])) for r in _trials(out)]

    monkeypatch.setattr(sweep, "make_executor", lambda runs: _InProcess())
    monkeypatch.setattr(sweep, "run_trial", value)
    both = ["--param", "lr=0.001:0.1:log", "--jobs", str(jobs)]
    assert main(_sweep(tmp_path / "through", *both, "--trials", "16")) == 0
    through = points(tmp_path / "through")
    assert len(set(through)) == 16
    stopped, suggest = tmp_path / "stopped", sweep.Param.suggest
    assert main(_sweep(stopped, *both, "--trials", "5")) == 0  # ends inside a batch for --jobs 2 and 3
    monkeypatch.setattr(sweep.Param, "suggest", _killed_at(3, suggest))  # trial 6's second value (5: 0 and 1)
    assert main(_sweep(stopped, *both, "--trials", "13")) == 130
    monkeypatch.setattr(sweep.Param, "suggest", suggest)
    assert main(_sweep(stopped, *both, "--trials", "13")) == 0  # past TPE's random trials, inside a batch
    monkeypatch.setattr(sweep, "run_trial", _killed_at(1, value))  # trial 14: inside a batch for --jobs 2 and 3
    assert main(_sweep(stopped, *both, "--trials", "16")) == 130
    monkeypatch.setattr(sweep, "run_trial", value)
    assert main(_sweep(stopped, *both, "--trials", "16")) == 0
    assert points(stopped) == through
    assert main(_sweep(tmp_path / "seed", *both, "--trials", "16", "--seed-start", "1")) == 0
    assert points(tmp_path / "seed") != through


@pytest.mark.parametrize("jobs", [1, 2])
def test_a_pruned_grid_sweep_stopped_anywhere_is_the_one_that_ran_through(jobs, tmp_path, monkeypatch):
    """A grid's points keep their places behind a killed trial's rerun, the median pruner judges each trial
    against the same trials, and at the ceiling the batch a kill cut short is finished (with --jobs 2 the kill
    comes after the 100 % trial was told, before its batch-mate): the same trials, states and values as in one
    go."""
    import optuna

    from snn_msi.reports import sweep

    curves = {  # best validation accuracy so far, per epoch, by alpha
        0.1: [0.5, 0.6, 0.7, 0.8],
        0.2: [0.4, 0.5, 0.6, 0.7],
        0.3: [0.1, 0.1, 0.1, 0.1],  # pruned once two trials are complete before it
        0.4: [0.6, 0.7, 0.8, 0.85],
        0.5: [0.7, 0.8, 0.9, 1.0],  # the ceiling
        0.6: [0.2, 0.2, 0.2, 0.2],
        0.7: [0.9, 0.9, 0.9, 0.9],
        0.8: [0.9, 0.9, 0.9, 0.9],
    }

    def run(item, storage, prune, jobs):  # reports and asks to prune epoch by epoch, as a trial's process does
        cfg, trial_id = item
        (alpha,) = [p["alpha"] for p in cfg["policies"] if p["name"] == "ogm_ge"]
        study = optuna.load_study(study_name=sweep.STUDY, storage=storage, pruner=sweep.make_pruner(prune, jobs))
        trial = optuna.Trial(study, trial_id)
        for epoch, v in enumerate(curves[alpha], 1):
            trial.report(v, epoch)
            if trial.should_prune():
                return "pruned", v
        return "complete", curves[alpha][-1]

    def rows(out):
        return [(float(r["alpha"]), r["state"], r["value"]) for r in _trials(out)]

    grid = "alpha=" + ",".join(map(str, curves))
    argv = ["sweep", "--method", "ogm_ge", "--param", grid, "--trials", "8", *TINY, "--jobs", str(jobs), "--quiet"]
    monkeypatch.setattr(sweep, "make_executor", lambda runs: _InProcess())
    monkeypatch.setattr(sweep, "run_trial", run)
    assert main([*argv, "--out", str(tmp_path / "through")]) == 0
    through = rows(tmp_path / "through")
    assert [a for a, *_ in through] == [0.1, 0.2, 0.3, 0.4, 0.5, 0.6][: 5 + (jobs == 2)]  # ended at 0.5's 100 %
    assert through[2][1] == "pruned"
    stopped, tell = [*argv, "--out", str(tmp_path / "stopped")], optuna.study.Study.tell
    monkeypatch.setattr(sweep, "run_trial", _killed_at(1, run))  # at alpha 0.2: the grid's later points wait
    assert main(stopped) == 130

    def tell_killed(study, trial, *args, **kwargs):
        if getattr(trial, "params", {}).get("alpha") == 0.6:
            raise KeyboardInterrupt  # 0.5 (100 %) told, its batch-mate not
        return tell(study, trial, *args, **kwargs)

    monkeypatch.setattr(sweep, "run_trial", run)
    monkeypatch.setattr(optuna.study.Study, "tell", tell_killed)
    assert main(stopped) == (130 if jobs == 2 else 0)
    monkeypatch.setattr(optuna.study.Study, "tell", tell)
    assert main(stopped) == 0
    assert rows(tmp_path / "stopped") == through


def test_a_trial_is_sampled_and_judged_against_the_batches_before_its_own():
    """The sampler and the pruner read a trial's study as a sweep that ran through had it when it asked the trial:
    without the trials of its own batch of --jobs and after (finished or not); a kill's requeued trial has no
    place."""
    import optuna
    from optuna.trial import TrialState

    from snn_msi.reports._optuna import OneGoPruner, earlier

    study = optuna.create_study(direction="maximize")
    for v in range(3):
        study.tell(study.ask(), v)  # numbers and places 0, 1, 2
    killed = study.ask()  # number 3: left running by a kill, then requeued
    study._storage.set_trial_user_attr(killed._trial_id, "requeued", True)
    study._storage.set_trial_state_values(killed._trial_id, TrialState.FAIL)
    study.tell(study.ask(), 3)  # number 4, place 3
    study.tell(study.ask(), 4)  # number 5, place 4 (finished in an earlier sitting)
    trial = study._storage.get_trial(study.ask()._trial_id)  # number 6, place 5
    seen = {}

    class Record(optuna.pruners.BasePruner):
        def prune(self, s, t):
            complete = (TrialState.COMPLETE,)
            seen["public"] = [x.number for x in s.get_trials(deepcopy=False, states=complete)]
            seen["cached"] = [x.number for x in s._get_trials(deepcopy=False, states=complete, use_cache=True)]
            return False

    for jobs, want in ((1, [0, 1, 2, 4, 5]), (2, [0, 1, 2, 4]), (3, [0, 1, 2])):
        assert earlier(study, trial.number, jobs)[0] == 5
        assert OneGoPruner(Record(), jobs).prune(study, trial) is False
        assert seen == {"public": want, "cached": want}, jobs


def test_a_continued_sweep_draws_new_points_and_method_options_are_named_as_train_names_them(tmp_path, capsys):
    """A rerun with more --trials draws points the first sitting did not (each trial's draws seeded with its
    place); with --iemf a bare option both methods have is refused, METHOD.option goes to that method;
    a sweep is one seed."""
    from snn_msi.reports.sweep import SweepConfig

    out = tmp_path / "s"
    argv = _sweep(out, "--no-prune", "--epochs", "1")
    for trials in ("2", "4"):
        argv[argv.index("--trials") + 1] = trials
        assert main(argv) == 0
    with (out / "trials.csv").open() as fh:
        alphas = [r["alpha"] for r in csv.DictReader(fh)]
    assert len(alphas) == 4 and len(set(alphas)) == 4, alphas
    assert (out / "tuned.yaml").is_file()
    other = ["sweep", "--param", "lr=0.01:0.1", "--trials", "1", "--epochs", "1", *TINY, "--jobs", "1", "--quiet"]
    assert main([*other, "--out", str(out), "--overwrite"]) == 0  # another sweep: nothing of the old one stays
    assert not (out / "tuned.yaml").exists() and len(list(out.glob("trial_*"))) == 1
    with pytest.raises(Exception, match="say which: ogm_ge.start or iemf.start"):
        SweepConfig(method="ogm_ge", iemf=True, params=[parse_param("start=0:2:int")])
    scfg = SweepConfig(method="ogm_ge", iemf=True, params=[parse_param("iemf.lam=0.5:2"), parse_param("alpha=0.1:1")])
    policies = {p["name"]: p for p in scfg.config({"iemf.lam": 1.5, "alpha": 0.2}, str(tmp_path / "t")).policies}
    assert policies["iemf"]["lam"] == 1.5 and policies["ogm_ge"]["alpha"] == 0.2
    assert main([*_sweep(tmp_path / "seeds"), "--seeds", "2"]) == 2
    assert "a sweep trains each trial once, on one seed" in capsys.readouterr().err


def test_a_sweep_continues_on_a_moved_copy_of_its_data_and_not_on_other_data(tmp_path):
    from snn_msi.reports.runs import RunOptions
    from snn_msi.reports.sweep import SweepConfig, _open_study
    from snn_msi.training import demo_config

    from .trees import make_learnable_folder_tree

    roots = {
        "first": make_learnable_folder_tree(tmp_path / "first", per_class=4, labels=("red", "green")),
        "other": make_learnable_folder_tree(tmp_path / "other", per_class=4, labels=("red", "blue")),
    }

    def sweep(root):
        recipe = demo_config(data={"dataset": "folder", "root": str(root)})
        runs = RunOptions(seeds=[0], out=str(tmp_path / "s"))
        return SweepConfig(method="ogm_ge", params=[parse_param("alpha=0.1:1")], recipe=recipe, runs=runs)

    _open_study(sweep(roots["first"]))
    _open_study(sweep(roots["first"].rename(tmp_path / "moved")))  # the same data, moved: continued
    with pytest.raises(Exception, match="holds a sweep on other data"):
        _open_study(sweep(roots["other"]))


def test_a_tie_goes_to_the_earlier_trial_even_when_it_was_rerun_after_a_kill():
    """The sweep's first trial (a study's official values) keeps its place on a tie, also when a kill made Optuna
    number its rerun after the trials that followed it."""
    from types import SimpleNamespace

    from snn_msi.reports.sweep import trial_rows

    def trial(number, value, alpha, **attrs):
        return SimpleNamespace(
            number=number,
            value=value,
            params={"alpha": alpha},
            intermediate_values={0: value},
            state=SimpleNamespace(name="COMPLETE" if value is not None else "FAIL"),
            user_attrs=attrs,
        )

    trials = [
        trial(0, None, 0.8, requeued=True, run_dir="t0"),  # killed: rerun as number 3, first numbered 0
        trial(1, 0.9, 0.1, run_dir="t1"),
        trial(2, 0.95, 0.3, run_dir="t2"),
        trial(3, 0.95, 0.8, run_dir="/elsewhere/t0", trial=0),  # an older version's absolute path: its name
    ]
    study = SimpleNamespace(get_trials=lambda deepcopy: trials)
    scfg = SimpleNamespace(params=[SimpleNamespace(name="alpha")], runs=SimpleNamespace(out="/s"))
    rows = trial_rows(study, scfg)
    assert [(r["trial"], r["alpha"], r["run_dir"]) for r in rows] == [
        (0, 0.8, "/s/t0"),
        (2, 0.3, "/s/t2"),
        (1, 0.1, "/s/t1"),
    ]


@pytest.mark.parametrize("content", [b"junk", b""])
def test_a_sweep_folder_whose_database_is_not_one_is_a_one_line_error(content, tmp_path, capsys):
    out = tmp_path / "sweep"
    out.mkdir()
    (out / "sweep.db").write_bytes(content)
    assert main(_sweep(out)) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and "not a sweep's database" in err[0] and "move it away" in err[0]
    assert (out / "sweep.db").read_bytes() == content and not list(out.glob("trial_*"))


def test_a_database_without_the_sweep_starts_it_afresh(tmp_path):
    """A kill between --overwrite's delete and create leaves a database without the sweep: the sweep starts there
    again (it was refused as 'not a sweep's database')."""
    import optuna

    from snn_msi.reports.sweep import _saved_study

    out = tmp_path / "sweep"
    out.mkdir()
    storage = f"sqlite:///{(out / 'sweep.db').resolve()}"
    optuna.create_study(study_name="another", storage=storage)  # the schema is there, our study is not
    assert _saved_study(out / "sweep.db", storage, None, None) is None


def test_a_trial_is_pruned_where_optuna_says_and_resumes_to_the_end(tmp_path, monkeypatch):
    """The trial process reports each epoch's best validation accuracy so far and stops inside the run when the
    pruner says so (checkpoint written); a later attempt reports only the epochs Optuna lacks and trains on."""
    import optuna

    from snn_msi.reports import sweep
    from snn_msi.training import demo_config

    class AfterEpoch(optuna.pruners.BasePruner):
        def __init__(self, at):
            self.at = at

        def prune(self, study, trial):
            return trial.last_step is not None and trial.last_step >= self.at

    storage = f"sqlite:///{tmp_path / 'sweep.db'}"
    study = optuna.create_study(study_name=sweep.STUDY, storage=storage, direction="maximize")
    trial_id = study.ask()._trial_id
    tiny = {"limit": 32, "dataset": "digits-av"}
    model = {**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1}
    cfg = demo_config(epochs=3, milestones=[], batch_size=16, model=model, data=tiny, out=str(tmp_path / "t"))
    monkeypatch.setattr(sweep, "make_pruner", lambda prune, jobs: AfterEpoch(2) if prune else None)
    state, value = sweep.run_trial((cfg.to_dict(), trial_id), storage, prune=True)
    rows = training.runlog.read_csv(tmp_path / "t" / "metrics.csv")
    assert state == "pruned" and [int(r["epoch"]) for r in rows] == [1, 2]
    assert value == max(float(r["val_acc"]) for r in rows)
    assert training.load_checkpoint(tmp_path / "t" / "last.pt")["epoch"] == 2
    metrics = tmp_path / "t" / "metrics.csv"
    stale = {**rows[-1], "epoch": "3", "val_acc": "0.99"}  # epoch 3 logged, then killed before its checkpoint
    with metrics.open("a", newline="") as fh:
        csv.DictWriter(fh, fieldnames=list(stale)).writerow(stale)
    assert sweep.run_trial((cfg.to_dict(), trial_id), storage, prune=True) == ("pruned", value)  # nothing trained
    (frozen,) = study.get_trials()
    assert sorted(frozen.intermediate_values) == [1, 2]  # the row past the checkpoint is not the run's
    state, value = sweep.run_trial((cfg.to_dict(), trial_id), storage, prune=False)
    rows = training.runlog.read_csv(tmp_path / "t" / "metrics.csv")
    assert state == "complete" and [int(r["epoch"]) for r in rows] == [1, 2, 3]
    (frozen,) = study.get_trials()
    assert sorted(frozen.intermediate_values) == [1, 2, 3]
    assert frozen.intermediate_values[3] == value == max(float(r["val_acc"]) for r in rows)
    assert value < 0.99  # epoch 3 was trained again: its own row was reported, not the stale one
    # killed after the last epoch's checkpoint, in the test evaluation: complete, whatever the pruner says now
    (tmp_path / "t" / "results.json").unlink()
    assert sweep.run_trial((cfg.to_dict(), trial_id), storage, prune=True) == ("complete", value)


def test_a_sweep_ends_at_a_trial_no_later_one_can_beat(tmp_path, monkeypatch, capsys):
    """A complete trial at 100 % validation accuracy cannot be beaten (a tie keeps the earlier trial): the sweep
    ends there, and the tuning's progress counts no more trials for it."""
    from types import SimpleNamespace

    import snn_msi.reports.study_methods as sm
    from snn_msi.reports import sweep

    values = iter([0.5, 1.0])
    monkeypatch.setattr(sweep, "run_trial", lambda item, storage, prune, jobs: ("complete", next(values)))
    out = tmp_path / "sweep"
    assert main(_sweep(out)) == 0  # --trials 3, one at a time
    assert "the sweep ends after 2 of 3 trials" in capsys.readouterr().out
    with (out / "trials.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [(r["trial"], float(r["value"])) for r in rows] == [("1", 1.0), ("0", 0.5)]
    assert yaml.safe_load((out / "tuned.yaml").read_text()) == {"ogm_ge": {"alpha": float(rows[0]["alpha"])}}
    assert main(_sweep(out)) == 0 and "2 of 3 trials" in capsys.readouterr().out  # rerun: nothing more to do

    cfg = MethodsStudyConfig(
        methods=("cml", "ogm_ge"), runs=dataclasses.replace(MethodsStudyConfig().runs, out=str(tmp_path / "s"))
    )
    accuracy = {"trial_000": 0.9, "trial_001": 1.0}
    monkeypatch.setattr(sm, "results", lambda folder: SimpleNamespace(best_val_acc=accuracy[Path(folder).name]))
    for method, trials in (("cml", ["trial_000", "trial_001"]), ("ogm_ge", ["trial_000"])):
        for t in trials:
            (tmp_path / "s" / "sweeps" / method / t).mkdir(parents=True)
            (tmp_path / "s" / "sweeps" / method / t / "results.json").write_text("{}")
    assert sm.tuning_progress(cfg, 5, 100) == (3, 2 + 5)  # cml ended at its second trial; ogm_ge has 5 to run
