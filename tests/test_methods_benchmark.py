"""The methods benchmark (issue #24): compute counted for every method, the protocol's rules (fitted epoch
options, plateau check, accuracy at matched compute), official / tuned / IEMF rows paired as the table says."""

from __future__ import annotations

import csv
import logging
import math

import pytest
from torch.utils.data import Subset

import snn_msi.reports.study_methods as sm
from snn_msi.cli import main
from snn_msi.training import METHODS, Trainer, demo_config
from snn_msi.training.compute import Compute, ComputeMeter, not_counted
from snn_msi.training.runlog import accuracy_curve

TRAIN, VAL, TEST, BATCH = 16, 8, 8, 8


def _trainer(tmp_path, policies, epochs=1, name="run", **kw):
    from snn_msi.data import build_datasets

    model = {**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1}
    config = demo_config(
        epochs=epochs,
        milestones=[],
        batch_size=BATCH,
        model=model,
        out=str(tmp_path / name),
        policies=policies,
        data={"dataset": "digits-av", "preset": "hard", "limit": TRAIN},
    )
    train, val, test = build_datasets(config.data, 0)
    return Trainer(
        config, datasets=(train, Subset(val, range(VAL)), Subset(test, range(TEST))), progress=False, plots=False, **kw
    )


def _tiny_recipe():
    """Two epochs of a tiny network on 16 digits-av clips (what a sweep trains here)."""
    return demo_config(
        epochs=2,
        milestones=[],
        batch_size=8,
        model={**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1},
        data={"dataset": "digits-av", "preset": "hard", "limit": 16},
    )


def _normal_compute(tmp_path, epochs=2):
    return _trainer(tmp_path, [], epochs, name="normal").fit().compute


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_reports_what_it_computed(method, tmp_path):
    """Every registered method: at least one pass of every training sample per epoch, every optimizer step, the
    validation and test passes in evaluation mode, wall time and a finite operation count."""
    epochs = 2
    result = _trainer(tmp_path, [{"name": method}], epochs).fit()
    c = result.compute
    assert c["compute_samples"] >= TRAIN * epochs * (0.5 if method == "mla" else 1)  # MLA: one modality a step
    assert c["compute_steps"] >= 1 and "compute_seconds" not in c  # results.json stays reproducible
    assert c["compute_eval_samples"] >= VAL * epochs + TEST
    assert math.isfinite(c["compute_gop"]) and c["compute_gop"] > 0
    rows = list(csv.DictReader((tmp_path / "run" / "metrics.csv").open()))
    per_epoch = [float(r["compute_samples"]) for r in rows]
    assert per_epoch == sorted(per_epoch) and per_epoch[-1] <= c["compute_samples"]  # cumulative
    for key in ("compute_seconds", "compute_cpu_seconds"):
        assert 0 < float(rows[0][key]) < float(rows[-1][key]), key


def test_compute_counts_by_value(tmp_path):
    """Normal: each training sample once per epoch, one step per batch, validation + test in evaluation mode.
    MLA: one step per modality (twice Normal's steps, each encoder still sees each sample once). UMT: its
    teachers' epochs on top."""
    epochs, batches = 2, TRAIN // BATCH
    normal = _normal_compute(tmp_path, epochs)
    assert normal["compute_samples"] == TRAIN * epochs
    assert normal["compute_steps"] == batches * epochs
    assert normal["compute_eval_samples"] == VAL * epochs + TEST + 8  # + the 8 clips whose operations are counted
    mla = _trainer(tmp_path, [{"name": "mla"}], epochs, name="mla").fit().compute
    assert mla["compute_steps"] == 2 * batches * epochs and mla["compute_samples"] == TRAIN * epochs
    umt = _trainer(tmp_path, [{"name": "umt", "teacher_epochs": 3}], epochs, name="umt").fit().compute
    # the student, 3 epochs of the teachers' training, and the teachers' pass on every student batch
    assert umt["compute_samples"] == TRAIN * epochs + 3 * TRAIN + TRAIN * epochs
    assert umt["compute_steps"] == batches * epochs + 3 * batches
    assert umt["compute_eval_samples"] == normal["compute_eval_samples"]  # validation and test only


@pytest.mark.parametrize("mode", ["eval", "train"])
def test_agm_zero_input_passes_are_training_work_in_either_mode(mode, tmp_path):
    """AGM's two zero-input passes carry gradients: training samples whatever their batch-norm mode (the official
    ``eval`` as much as ``train``); its evaluation-path accuracy, a log, is not counted."""
    epochs = 2
    normal = _normal_compute(tmp_path, epochs)
    agm = _trainer(tmp_path, [{"name": "agm", "zero_pass_mode": mode}], epochs, name=mode).fit().compute
    assert agm["compute_samples"] == 3 * TRAIN * epochs
    assert agm["compute_eval_samples"] == normal["compute_eval_samples"]
    quiet = [{"name": "agm", "zero_pass_mode": mode, "report_eval_path": False}]
    assert _trainer(tmp_path, quiet, epochs, name=f"{mode}-quiet").fit().compute == agm


def test_compute_survives_a_resume_exactly(tmp_path):
    whole = _normal_compute(tmp_path)
    assert _trainer(tmp_path, [], 2, name="cut", stop_after=1).fit() is None
    resumed = _trainer(tmp_path, [], 2, name="cut", mode="resume").fit().compute
    for key in ("compute_samples", "compute_eval_samples", "compute_steps"):
        assert resumed[key] == whole[key], key


def test_gop_is_passes_times_operations_per_clip(caplog):
    c = Compute(steps=3)
    c.passes = {"audio": {"train": 10.0, "eval": 2.0}, "visual": {"train": 10.0, "eval": 4.0}}
    assert math.isnan(c.gop()) and "compute_gop" not in c.row()
    c.ops = {"audio": 1e8, "visual": 3e8, "rest": 1e6}
    assert c.gop() == pytest.approx((12 * 1e8 + 14 * 3e8 + 1e6 * 26 / 2) / 1e9)
    assert c.row()["compute_samples"] == 10 and c.row()["compute_eval_samples"] == 3
    d = Compute()
    d.load_state_dict(c.state_dict())
    assert d == c
    Compute().load_state_dict(None)  # a checkpoint from before compute was counted
    old = {k: v for k, v in c.state_dict().items() if k not in ("cpu_seconds", "counting")}  # ... before CPU time
    with caplog.at_level(logging.WARNING, logger="snn_msi.training.compute"):  # and the counting rule were saved
        d.load_state_dict(old)
    assert math.isnan(d.cpu_seconds) and d.seconds == c.seconds and d.counting == 1
    assert "compute rule 1" in caplog.text


def test_the_meter_counts_only_while_entered():
    import torch

    from snn_msi.models import build

    model = build("demo", num_classes=3, T=1)
    meter = ComputeMeter(frames_per_clip=2)
    audio, frames = torch.rand(4, 1, 20, 20), torch.rand(4, 2, 1, 32, 32)
    model(audio, frames)
    assert meter.compute.samples == 0
    with meter:
        model.train()(audio, frames)
        model.eval()(audio, frames)  # a method's pass in evaluation mode is training work too
        with meter.evaluating():  # the trainer's validation and test
            model(audio, frames)
        with not_counted():  # a log's pass
            model(audio, frames)
    model(audio, frames)
    assert meter.compute.passes == {"audio": {"train": 8.0, "eval": 4.0}, "visual": {"train": 8.0, "eval": 4.0}}


@pytest.mark.parametrize(
    "epochs, expected",
    [
        (4, {"opm": 1, "sample_valuation": 1, "modality_valuation": 1, "relearn": 1, "reconboost": 1, "gblend": 4}),
        (14, {"relearn": 3, "reconboost": 1}),
        (28, {"relearn": 7, "reconboost": 3}),
        (40, {"relearn": 10}),
        (100, {}),
    ],
)
def test_epoch_options_keep_official_values_that_fit(epochs, expected):
    """The rules of :func:`epoch_options`, by value: OPM's start 6 and the valuations' warm-up 5 fit a 14-epoch
    run (more than half of it stays modulated); re-learning's 3 re-initialisations every 20 epochs fit from 80
    epochs on; ReconBoost's 2 x 2 stages of 4 + 4 epochs from 32; G-Blending's super-epoch 10 below the run."""
    got = sm.epoch_options(epochs)
    first = {"opm": "start", "sample_valuation": "warmup", "modality_valuation": "warmup", "relearn": "reinit_epoch"}
    first |= {"reconboost": "epochs_per_stage", "gblend": "super_epoch"}
    assert {m: v[first[m]] for m, v in got.items()} == expected
    if "reconboost" in got:
        assert got["reconboost"]["correct_epoch"] == got["reconboost"]["epochs_per_stage"]


def _metrics(path, val, samples=None):
    path.mkdir(parents=True)
    with (path / "metrics.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["epoch", "val_acc", "train_acc", "train_n", "compute_samples"])
        for i, v in enumerate(val):
            w.writerow([i + 1, v, v, 100, (samples or [100 * (i + 1) for i in range(len(val))])[i]])


def test_plateau_and_accuracy_at_matched_compute(tmp_path):
    """Each row's last-quarter validation gain and accuracy within Normal's samples, from its run folders: a seed
    without a validation point within Normal's samples is left out of the mean and counted."""
    _metrics(tmp_path / "normal" / "s0", [0.5, 0.7, 0.80, 0.81])  # last quarter: after 300 of 400 samples; +1 point
    _metrics(tmp_path / "normal" / "s1", [0.5, 0.9, 0.90, 0.90])  # +0
    _metrics(tmp_path / "agm" / "s0", [0.6, 0.95], samples=[250, 500])  # 2.5x Normal's samples per epoch
    _metrics(tmp_path / "agm" / "s1", [0.6, 0.95], samples=[500, 1000])  # its first point already past Normal's
    assert sm.matched_val_acc(accuracy_curve(tmp_path / "agm" / "s0"), 400) == 0.6
    assert math.isnan(sm.matched_val_acc(accuracy_curve(tmp_path / "agm" / "s1"), 400))
    rows = [
        {"method": m, "variant": "official", "with_iemf": False, "seed": s, "test_acc": 0.9, "compute_samples": 400.0}
        for m in ("normal", "agm")
        for s in (0, 1)
    ]
    by = {r["method"]: r for r in sm.summarise(rows, [0, 1], tmp_path)}
    assert by["normal"]["last_quarter_gain"] == pytest.approx(0.5)
    assert (by["normal"]["val_acc_at_normal_samples"], by["normal"]["matched_n"]) == (pytest.approx(0.855), 2)
    assert (by["agm"]["val_acc_at_normal_samples"], by["agm"]["matched_n"]) == (0.6, 1)
    assert "| 60.0 (n = 1) |" in sm.per_method_table(list(by.values()))
    assert "last quarter of its run minus the best before it: +0.50 points" in sm.markdown_table(list(by.values()))


def test_the_table_pairs_iemf_with_the_method_alone(tmp_path):
    seeds = [0, 1, 2]
    acc = {("normal", False): [0.5, 0.6, 0.7], ("pmr", False): [0.4, 0.5, 0.9], ("pmr", True): [0.5, 0.6, 0.9]}
    rows = [
        {"method": m, "variant": "official", "with_iemf": i, "seed": s, "test_acc": a[k], "compute_samples": 10.0}
        for (m, i), a in acc.items()
        for k, s in enumerate(seeds)
    ]
    by = {(r["method"], r["with_iemf"]): r for r in sm.summarise(rows, seeds)}
    assert by[("pmr", True)]["iemf_effect"] == pytest.approx(0.1 * 2 / 3)  # +0.1, +0.1, 0 against pmr alone
    assert by[("pmr", True)]["diff_vs_normal"] == pytest.approx((0.0 + 0.0 + 0.2) / 3)
    assert by[("pmr", True)]["diff_n"] == 3
    assert math.isnan(by[("pmr", False)]["iemf_effect"]) and by[("pmr", True)]["compute_samples_x_normal"] == 1
    table = sm.markdown_table(list(by.values()))
    assert "| pmr | official | yes | 3 |" in table
    by[("pmr", False)]["val_acc_at_normal_samples"], by[("pmr", False)]["matched_n"] = 0.456, 3
    (cells,) = _lines(sm.per_method_table(list(by.values())), "pmr")
    assert cells[5].startswith("+6.7 [") and cells[7] == "45.6"  # IEMF against pmr alone; at matched compute


def test_the_tuned_row_is_paired_with_the_official_one(tmp_path):
    """A tuned row's effect is its paired difference from the method's official row (same seeds), in both tables;
    a seed the tuned row lacks is left out of the pair and said."""
    seeds = [0, 1, 2]
    acc = {
        ("normal", "official"): [0.5, 0.6, 0.7],
        ("ogm_ge", "official"): [0.4, 0.5, 0.6],
        ("ogm_ge", "tuned"): [0.5, 0.7, None],
    }
    rows = [
        {"method": m, "variant": v, "with_iemf": False, "seed": s, "test_acc": a[k], "compute_samples": 10.0}
        for (m, v), a in acc.items()
        for k, s in enumerate(seeds)
        if a[k] is not None
    ]
    by = {(r["method"], r["variant"]): r for r in sm.summarise(rows, seeds)}
    tuned = by[("ogm_ge", "tuned")]
    assert tuned["tuning_effect"] == pytest.approx((0.1 + 0.2) / 2) and tuned["tuning_n"] == 2
    assert math.isnan(by[("ogm_ge", "official")]["tuning_effect"])
    assert "| ogm_ge | tuned | no | 2 | 60.0 [" in sm.markdown_table(list(by.values()))
    assert "| +15.0 [" in sm.markdown_table(list(by.values()))
    scfg = sm.MethodsStudyConfig(methods=["ogm_ge"], tuned={"ogm_ge": {"alpha": 0.1}})
    scfg.runs.seeds = seeds
    official, tuned = _lines(sm.per_method_table(list(by.values()), scfg), "ogm_ge")
    assert official[1] == "official" and official[4] == "-"
    assert tuned[1] == "tuned: alpha 0.1" and tuned[2].startswith("60.0 [") and tuned[2].endswith("(n = 2)")
    assert tuned[4].startswith("+15.0 [") and tuned[4].endswith("(n = 2)")


def _lines(table: str, method: str) -> list[list[str]]:
    """The cells of ``method``'s lines in a markdown table."""
    return [[c.strip() for c in x.strip("|").split("|")] for x in table.splitlines() if x.startswith(f"| {method} |")]


def test_the_readme_table_says_which_methods_tuning_left_at_the_official_values_and_why_iemf_is_missing():
    """Every method has its official row; the options cell says where tuning kept the official values (no tuned
    row was trained) and where a method has nothing to tune, the IEMF cell why a method has no IEMF row."""
    from snn_msi.training import METHODS
    from snn_msi.training.policies import composes_with_iemf

    methods = [m for m in METHODS.names() if m not in sm.EXCLUDED]
    scfg = sm.MethodsStudyConfig(tuned={m: {ps[0].split("=")[0]: "x"} for m, ps in sm.TUNE.items()})
    scfg.tuned["cml"] = {"lam": sm._official("cml")["lam"]}  # tuning kept the official value
    rows = [
        {"method": m, "variant": v, "with_iemf": False, "seed": s, "test_acc": 0.9, "compute_samples": 10.0}
        for m in methods
        for v in ("official", "tuned")
        for s in (0, 1)
        if v == "official" or scfg.has_tuned_row(m)
    ]
    table = sm.per_method_table(sm.summarise(rows, [0, 1]), scfg)
    for m in methods:
        lines = _lines(table, m)
        official = "official (no options)" if not sm._official(m) else "official"
        if m == "cml":
            official = "official; tuning kept them (lam 0.1)"
        assert lines[0][1] == ("-" if m == "normal" else official)
        assert len(lines) == (2 if m in sm.TUNE and m != "cml" else 1)
        with_iemf = composes_with_iemf(m)
        assert lines[0][5] == ("-" if with_iemf.composes else f"no IEMF row: {with_iemf.reason}")


def test_a_tuning_sweep_starts_at_the_given_values(tmp_path):
    from snn_msi.reports.runs import RunOptions
    from snn_msi.reports.sweep import SweepConfig, parse_param, run_sweep

    recipe = demo_config(
        epochs=1,
        batch_size=8,
        model={**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1},
        data={"dataset": "digits-av", "preset": "hard", "limit": 16},
        policies=[{"name": "ogm_ge", "start": 0, "end": 1}],
    )
    runs = RunOptions(seeds=[0], jobs=1, out=str(tmp_path / "s"), progress=False)
    cfg = SweepConfig("ogm_ge", params=[parse_param("alpha=0.05:2:log")], trials=1, recipe=recipe, runs=runs)
    cfg.first = {"alpha": 0.8}
    rows = run_sweep(cfg)
    assert rows[0]["alpha"] == 0.8
    saved = (tmp_path / "s" / "trial_000" / "config.yaml").read_text()
    assert "alpha: 0.8" in saved and "end: 1" in saved  # the recipe's own options for the method stay


def test_a_search_space_smaller_than_the_trials_is_tried_point_by_point(tmp_path):
    """MLA's tuned knob (its gradient projection, off in the official runs): two points, each tried once, the
    official first, however many trials are asked; every trial reports its best validation accuracy so far."""
    import optuna

    from snn_msi.reports.runs import RunOptions
    from snn_msi.reports.sweep import STUDY, SweepConfig, parse_param, run_sweep

    recipe = _tiny_recipe()
    runs = RunOptions(seeds=[0], jobs=1, out=str(tmp_path), progress=False)
    params = [parse_param(t) for t in sm.TUNE["mla"]]
    cfg = SweepConfig("mla", params=params, trials=1, recipe=recipe, runs=runs, first={"projection": False})
    assert [r["projection"] for r in run_sweep(cfg)] == [False]  # one trial: the first values
    cfg.trials = 5  # the same sweep rerun with more trials: now the space is smaller, each point once
    rows = run_sweep(cfg)
    assert sorted((r["trial"], r["projection"]) for r in rows) == [(0, False), (1, True)]
    assert cfg.grid() == [{"projection": False}, {"projection": True}] and cfg.budget() == 2
    assert SweepConfig("mla", params=params, trials=5, recipe=recipe, first={"projection": 1.5}).grid() is None
    huge = SweepConfig("gblend", params=[parse_param("super_epoch=1:1000000000:int")], trials=5, recipe=recipe)
    assert huge.grid() is None and huge.budget() == 5  # sized, not listed
    study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{tmp_path / 'sweep.db'}")
    for t in study.trials:
        curve = [t.intermediate_values[k] for k in sorted(t.intermediate_values)]
        assert curve == sorted(curve) and curve[-1] == t.value


def test_the_help_shows_the_benchmark_setting_and_its_time(capsys):
    with pytest.raises(SystemExit):
        main(["study", "methods", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    assert "--benchmark" in text and "h on 2 CPU cores" in text and f"{sm.BENCHMARK['epochs']} epochs" in text


def test_the_plateau_check_trains_normal_for_twice_the_budget_and_reads_its_gain():
    cfg = sm.MethodsStudyConfig(methods=("pmr",), long_check=True, recipe=sm.benchmark_recipe())
    assert sm.cells(cfg)[:2] == [sm.NORMAL, sm.LONG] and sm.LONG not in sm.cells(sm.MethodsStudyConfig())
    long = sm.run_config_for(cfg, sm.LONG, 3)
    b = sm.BENCHMARK
    assert (long.epochs, list(long.milestones), long.seed) == (2 * b["epochs"], [2 * m for m in b["milestones"]], 3)
    assert long.out.endswith("normal-2x/s3")
    row = {
        "method": "normal",
        "variant": "long",
        "with_iemf": False,
        "n": 5,
        "diff_n": 4,
        "diff_vs_normal": 0.003,
        "diff_ci_low": -0.01,
    }
    row["diff_ci_high"] = 0.016
    normal = {"method": "normal", "variant": "official", "with_iemf": False, "last_quarter_gain": 1.1}
    text = " ".join(sm.plateau_lines([normal, row], 14))
    assert "+0.3 [-1.0, +1.6] points of test accuracy (paired by seed, 4 seeds): plateaued" in text
    assert "its 14 epochs' training samples (after epoch 10.5) minus the best before it: +1.10 points" in text
    text = " ".join(sm.plateau_lines([{**row, "diff_vs_normal": 0.02}]))
    assert "NOT plateaued" in text and "last quarter" not in text  # no Normal row: no last-quarter gain
    assert "NOT plateaued" in " ".join(sm.plateau_lines([normal], 14))  # without the long runs: last quarter
    text = " ".join(sm.plateau_lines([{**normal, "last_quarter_gain": 0.2}], 14))
    assert "< 0.5 points): plateaued." in text and "NOT" not in text
    assert sm.plateau_lines([]) == []


def test_tuning_runs_a_sweep_per_method_side_by_side_from_the_official_values(tmp_path):
    import yaml

    from snn_msi.reports.runs import RunOptions

    recipe = _tiny_recipe()
    runs = RunOptions(seeds=[0], jobs=2, out=str(tmp_path), progress=False)
    cfg = sm.MethodsStudyConfig(methods=("cml", "lfm", "ume"), recipe=recipe, runs=runs)
    assert sm.tuning_progress(cfg, trials=2, seed=100) == (0, 4)
    tuned = sm.tune(cfg, trials=2, seed=100)
    assert sm.tuning_progress(cfg, trials=2, seed=100) == (4, 4)
    assert set(tuned) == {"cml", "lfm"}  # ume has no options to tune
    assert yaml.safe_load((tmp_path / "tuned.yaml").read_text()) == tuned
    for m, official in (("cml", {"lam": 0.1}), ("lfm", {"weight": 1.0})):
        trials = list(csv.DictReader((tmp_path / "sweeps" / m / "trials.csv").open()))
        assert len(trials) == 2
        first = next(t for t in trials if t["trial"] == "0")
        assert {k: float(first[k]) for k in official} == official  # trial 0: the official values
        assert "seed: 100" in (tmp_path / "sweeps" / m / "trial_000" / "config.yaml").read_text()


def test_report_tables_the_finished_runs_and_trains_nothing(tmp_path, capsys):
    """``--report`` on a study that is still running (or was stopped): the rows of its finished runs, n counting
    them; an unfinished run is neither trained nor tabled; the tuned rows come from the tuning's tuned.yaml."""
    out = tmp_path / "s"
    tiny = [f"--set={kv}" for kv in ("data.limit=32", "model.widths=[4]", "model.blocks=[1]", "model.T=2")]
    study = ["study", "methods", "--methods", "normal", "cml", "--no-iemf", "--seeds", "2", "--epochs", "1", *tiny]
    study += ["--jobs", "1", "--quiet", "--out", str(out)]
    assert main([*study, "--report"]) == 2  # a study not started (or a typo): nothing to report, one line
    assert "no such study folder" in capsys.readouterr().err and not out.exists()
    assert main(study) == 0
    (out / "cml" / "s1" / "results.json").unlink()  # a run still training
    capsys.readouterr()
    assert main([*study, "--report"]) == 0
    text = capsys.readouterr().out
    assert (
        "3 of 4 runs finished" in text
        and "| cml | official | no | 1 |" in text
        and "| normal | official | no | 2 |" in text
    )
    assert not (out / "cml" / "s1" / "results.json").exists()
    assert "nan" not in text  # one seed: no interval, shown as [-, -]
    assert "| cml | official | no | 1 |" in (out / "summary.md").read_text()
    lines = {ln.split(" | ")[0]: ln for ln in (out / "per_method.md").read_text().splitlines()}
    assert "(n = 1)" in lines["| cml"] and "(n = " not in lines["| normal"]  # the README's table says it too
    assert main([*study, "--report", "--tune", "2"]) == 0  # a tuning under way: its progress
    assert "tuning: 0 of 2 trials finished" in capsys.readouterr().out
    (out / "sweeps" / "cml").mkdir(parents=True)
    for lam, said in ((0.5, "ended: cml: lam=0.5 "), (0.1, "ended: cml: the official values ")):  # what each chose
        (out / "sweeps" / "cml" / sm.TUNED_FILE).write_text(f"cml: {{lam: {lam}}}\n")
        assert main([*study, "--report", "--tune", "2"]) == 0
        assert said in capsys.readouterr().out
    (out / sm.TUNED_FILE).write_text("cml: {lam: 0.5}\n")
    assert main([*study, "--report", "--tune", "2"]) == 0
    assert "3 of 6 runs finished" in capsys.readouterr().out  # + the tuned row's two runs, not trained
    assert not (out / "cml-tuned").exists()


@pytest.mark.parametrize("method", METHODS.names())
def test_every_row_the_study_makes_for_a_method_is_a_run_that_builds(method):
    """`study methods --methods M` for every registered M: each of its rows (official, + IEMF where it composes)
    is a run whose methods build (IEMF itself gets no '+ IEMF' row)."""
    from snn_msi.training.policies import build_policies

    cfg = sm.MethodsStudyConfig(methods=(method,))
    for cell in sm.cells(cfg):
        build_policies(sm.run_config_for(cfg, cell, 0).policies, 0)


def test_the_runs_in_the_repository_are_the_ones_the_benchmark_asks_for(tmp_path):
    """``results/methods-benchmark/`` (the runs the README's table comes from) holds only finished runs that
    ``study methods --benchmark`` reuses, and sweeps it continues: a change to a default, the recipe or a method's
    options that changes what the benchmark trains fails here (for the runs there so far), instead of the study
    silently retraining or the table no longer coming from the code."""
    import shutil
    from pathlib import Path

    import optuna
    import yaml

    from snn_msi.cli import build_parser
    from snn_msi.reports.runs import finished
    from snn_msi.reports.sweep import STUDY, trial_folder

    out = Path(__file__).resolve().parents[1] / "results" / "methods-benchmark"
    cfg, trials = sm.study_config(build_parser().parse_args(["study", "methods", "--benchmark", "--out", str(out)]))
    if (out / sm.TUNED_FILE).is_file():  # written by the tuning from its sweeps' values: checked against them below
        cfg.tuned = sm.load_tuned(out / sm.TUNED_FILE)
    asked = {Path(c.out): c for c in (sm.run_config_for(cfg, x, s) for x in sm.cells(cfg) for s in cfg.runs.seeds)}
    runs = [p.parent for p in out.glob("*/*/results.json") if p.parts[-3] != "sweeps"]
    for run in runs:
        assert run in asked and finished(asked[run]), f"{run}: not a run the benchmark reuses"
    swept, found = set(), {}
    for sweep in sm.tuning_sweeps(cfg, trials, sm.BENCHMARK["tune_seed"]):
        folder = Path(sweep.runs.out)
        if not (folder / "sweep.db").is_file():
            continue
        db = tmp_path / f"{sweep.method}.db"
        shutil.copy(folder / "sweep.db", db)  # read a copy: opening a study may write
        study = optuna.load_study(study_name=STUDY, storage=f"sqlite:///{db}")
        assert study.user_attrs["spec"] == sweep.spec(), f"{folder}: the benchmark would refuse this sweep"
        for t in study.get_trials(deepcopy=False):
            run = Path(trial_folder(folder, t))
            if not t.user_attrs.get("requeued") and (run / "results.json").is_file():  # a requeued one: its rerun's
                values = {p.name: t.params[p.name] for p in sweep.params}
                assert finished(sweep.config(values, str(run))), f"{run}: not the trial the sweep asked for"
                swept.add(run)
        if (folder / sm.TUNED_FILE).is_file():
            found.update(yaml.safe_load((folder / sm.TUNED_FILE).read_text()))
    assert runs or swept, f"{out}: no finished run to check"
    every = {p.parent for p in out.rglob("results.json")}
    assert every == set(runs) | swept  # every run in the folder was checked
    assert {p.parent for p in out.rglob("config.yaml")} == every  # no unfinished run kept
    assert not [p for p in out.rglob("*") if p.suffix == ".pt" or p.name in ("steps.csv", "tb")]  # kept small
    if (out / sm.TUNED_FILE).is_file():
        assert cfg.tuned == found  # the tuned rows' values are the sweeps' own


def _script():
    """``scripts/methods_benchmark.py``, imported."""
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "scripts" / "methods_benchmark.py"
    spec = importlib.util.spec_from_file_location("methods_benchmark", path)
    script = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(script)
    return script


def test_the_readme_table_is_the_table_of_the_runs_in_the_repository(tmp_path, monkeypatch, capsys):
    """Once ``results/methods-benchmark`` holds every run and sweep of the benchmark, the README's methods table is
    the one they make (what ``scripts/methods_benchmark.py readme`` writes); until then the README says the
    benchmark is not finished, and ``readme`` refuses, saying what is missing."""
    import shutil

    script = _script()
    kept = shutil.copytree(script.KEPT, tmp_path / "kept")  # the report writes its tables in the folder it reads
    monkeypatch.setattr(script, "KEPT", kept)
    text = script.README.read_text()
    cfg, missing = script.kept_study()
    if missing:
        assert "**It is not finished.**" in text
        monkeypatch.setattr(script, "README", tmp_path / "README.md")  # not written: nothing to write there
        assert script.readme() == 2 and not script.README.exists()
        assert "the benchmark is not complete" in capsys.readouterr().err
    else:
        assert "**It is not finished.**" not in text
        assert script.with_table(text, sm.per_method_table(sm.run_methods_study(cfg, report=True), cfg)) == text


def test_a_method_whose_sweep_chose_nothing_is_missing_from_the_table(tmp_path, monkeypatch):
    """A tuned.yaml without a tuned method (its sweep completed no trial) is not a complete benchmark: ``readme``
    would show that method's official row as if tuning had not been asked for."""
    script = _script()
    monkeypatch.setattr(script, "KEPT", tmp_path)
    (tmp_path / sm.TUNED_FILE).write_text("agm: {alpha: 0.5, zero_pass_mode: eval}\ncml: {lam: 0.1}\n")
    cfg, missing = script.kept_study()
    assert cfg.tuned["agm"]["alpha"] == 0.5 and len(missing) == 2
    untuned = [m for m in cfg.method_names() if m in sm.TUNE and m not in ("agm", "cml")]
    assert missing[0] == f"the tuned values of {', '.join(untuned)} (no completed trial in {sm.TUNED_FILE})"
    assert missing[1].endswith(f"of {len(sm.cells(cfg)) * len(cfg.runs.seeds)} runs")


def test_readme_writes_the_table_between_its_lines_and_nothing_else(tmp_path, monkeypatch):
    script = _script()
    readme = tmp_path / "README.md"
    readme.write_text(f"intro\n{script.BEGIN}\n| old |\n|---|\n{script.END}\n\nafter\n")
    monkeypatch.setattr(script, "README", readme)
    monkeypatch.setattr(script, "kept_study", lambda: (None, []))
    monkeypatch.setattr(sm, "run_methods_study", lambda cfg, report: [{"report": report}])
    monkeypatch.setattr(sm, "per_method_table", lambda summary, cfg: f"| new |\n|---|\n| {summary} |\n")
    assert script.readme() == 0
    assert readme.read_text() == (
        f"intro\n{script.BEGIN}\n| new |\n|---|\n| [{{'report': True}}] |\n{script.END}\n\nafter\n"
    )
    for broken in ("no lines", script.END + script.BEGIN, script.BEGIN + script.BEGIN + script.END):
        with pytest.raises(ValueError, match="expected one"):
            script.with_table(broken, "| t |")


def test_keep_copies_only_finished_runs_and_consistent_sweeps_with_the_benchmark_paused(tmp_path, monkeypatch):
    """``scripts/methods_benchmark.py keep``: a finished run's three files, each sweep's database and outputs, the
    study's tables; nothing of a run still training, no checkpoint or step log; the benchmark's processes are
    found by their command line and running again afterwards."""
    import sqlite3
    import subprocess
    import sys
    from pathlib import Path

    script = _script()
    work, kept = tmp_path / "work", tmp_path / "kept"
    monkeypatch.setattr(script, "KEPT", kept)
    done, running, sweep = work / "normal" / "s0", work / "normal" / "s1", work / "sweeps" / "agm"
    for folder, names in (
        (done, (*script.RUN_FILES, "last.pt", "best.pt", "steps.csv")),
        (running, ("config.yaml", "metrics.csv", "last.pt")),
        (sweep / "trial_000", (*script.RUN_FILES, "last.pt")),
        (sweep, ("trials.csv", "summary.md")),
        (work, ("summary.md", "runs.csv", "README.md")),  # a README seeded from the kept folder is not copied back
    ):
        folder.mkdir(parents=True, exist_ok=True)
        for name in names:
            (folder / name).write_text(name)
    with sqlite3.connect(sweep / "sweep.db") as db:
        db.execute("create table trials (n integer)")
        db.execute("insert into trials values (7)")
    fake = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)", "methods_benchmark.py", "run"])
    try:
        assert fake.pid in script._processes()
        assert script.keep(work) == 0
        state = Path(f"/proc/{fake.pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
        assert state in "RS"  # running again (SIGCONT), not left stopped
    finally:
        fake.kill()
    files = sorted(str(p.relative_to(kept)) for p in kept.rglob("*") if p.is_file())
    runs = [f"{d}/{n}" for d in ("normal/s0", "sweeps/agm/trial_000") for n in script.RUN_FILES]
    assert files == sorted(
        [*runs, "runs.csv", "summary.md", "sweeps/agm/summary.md", "sweeps/agm/sweep.db", "sweeps/agm/trials.csv"]
    )
    with sqlite3.connect(kept / "sweeps" / "agm" / "sweep.db") as db:
        assert db.execute("select n from trials").fetchall() == [(7,)]
    assert script.keep(tmp_path / "nope") == 2
