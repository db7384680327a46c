import csv
import math
from pathlib import Path

import numpy as np
import pytest

import snn_msi.reports.study_inverse_effectiveness as study
from snn_msi.reports.runs import RunOptions
from snn_msi.reports.stats import last_quarter_gain, seed_slopes, t_interval, tost
from snn_msi.reports.study_inverse_effectiveness import (
    MeasuredRun,
    StudyConfig,
    default_recipe,
    run_rows,
    run_study,
    samples_to_reach,
    trend_rows,
)
from snn_msi.training import RunResult, SplitMetrics

MODEL = {
    "num_classes": 10,
    "widths": [4],
    "blocks": [1],
    "stem": "small",
    "stem_stride": 2,
    "audio_channels": 1,
    "visual_channels": 1,
    "T": 2,
}
LEVELS = [(0.0, 10.0), (-15.0, -5.0)]


def tiny_recipe(epochs: int = 1):
    """The study's recipe shrunk: a 4-channel network on 32 samples per split."""
    base = default_recipe()
    return base.replace(model=MODEL, batch_size=16, epochs=epochs, data={**base.data.to_dict(), "limit": 32})


def test_t_interval():
    m, lo, hi = t_interval([1.0, 2.0, 3.0])
    assert m == 2.0 and lo == pytest.approx(2 - 4.302653 / 3**0.5, rel=1e-5) and hi == pytest.approx(4 - lo)


def test_tost_is_the_90_percent_interval_inside_the_margin():
    diffs = [0.01, -0.02, 0.015, 0.0, -0.005]
    _, lo, hi = t_interval(diffs, level=0.90)
    for margin in (0.01, 0.02, 0.05):
        equivalent, p = tost(diffs, margin)
        assert equivalent == (-margin < lo and hi < margin) and 0 <= p <= 1
    assert tost([0.1, 0.1], 0.05) == (False, 1.0) and tost([0.01], 0.05)[0] is False


def _measure(curve, sops=100.0, per_point=50.0):
    """A run's measures with one validation point per ``per_point`` training samples."""
    points = [(per_point * (i + 1), acc) for i, acc in enumerate(curve)]
    return {"val_acc": curve, "train_n": [50.0] * len(curve), "sops": sops, "macs": 10.0, "curve": points}


def _fake_result(acc, curve, sops=100.0, coeff=None):
    test = SplitMetrics(1.0, acc, 0.3, acc - 0.05, 0.3, 0.3, 100)
    means = {"iemf": {"coeff": coeff}} if coeff is not None else {}
    return MeasuredRun(RunResult(curve[-1], len(curve), len(curve), test, means), _measure(curve, sops))


def test_trend_is_the_mean_of_per_seed_slopes_with_a_t_interval():
    # difference iemf - normal = 0.01 - 0.002 * strength + seed offset: slope -0.02 per 10 dB whatever the offsets
    results = {}
    for s in range(4):
        for lv in [(0.0, 10.0), (-10.0, 0.0), (-15.0, -5.0)]:
            x = (lv[0] + lv[1]) / 2
            results[("concat", "always", lv, "normal", s)] = _fake_result(0.7 + 0.01 * x, [0.5, 0.6])
            d = 0.01 - 0.002 * x + 0.01 * s + 0.001 * (s % 2) * x
            results[("concat", "always", lv, "iemf", s)] = _fake_result(0.7 + 0.01 * x + d, [0.5, 0.6], coeff=1.2)
    scfg = StudyConfig(levels=[(0.0, 10.0), (-10.0, 0.0), (-15.0, -5.0)], methods=("normal", "iemf"))
    trend = {t["contrast"]: t for t in trend_rows(run_rows(results), scfg)}
    slopes = [10 * (-0.002 + 0.001 * (s % 2)) for s in range(4)]  # per 10 dB, per seed
    t = trend["iemf - normal (test_acc)"]
    m, lo, hi = t_interval(slopes)
    assert t["seeds"] == 4 and t["levels"] == 3
    assert t["slope_per_10db"] == pytest.approx(m) == -0.015  # accuracy (fraction) per +10 dB: -1.5 pts
    assert (t["ci_low"], t["ci_high"]) == (pytest.approx(lo), pytest.approx(hi)) and lo < -0.015 < hi
    assert trend["normal multisensory gain"]["slope_per_10db"] == pytest.approx(0.0, abs=1e-12)
    assert seed_slopes({0: [(0, 1.0), (10, 3.0)], 1: [(5, 1.0)]}) == [pytest.approx(0.2)]  # one x: no slope


def test_no_multisensory_gain_against_heads_that_were_not_trained():
    """With loss.unimodal = with_iemf, Normal does not train its heads: its gain is not reported (nor trended)."""
    levels = [(0.0, 10.0), (-10.0, 0.0)]
    results = {}
    for s in range(3):
        for lv in levels:
            for loss in ("always", "with_iemf"):
                results[("concat", loss, lv, "normal", s)] = _fake_result(0.8 - 0.01 * s, [0.5, 0.6])
                results[("concat", loss, lv, "iemf", s)] = _fake_result(0.82, [0.5, 0.6], coeff=1.2)
    rows = run_rows(results)
    gains = {(r["loss"], r["method"]): r["gain"] for r in rows}
    assert math.isnan(gains[("with_iemf", "normal")])
    assert gains[("always", "normal")] == pytest.approx(0.05) and gains[("with_iemf", "iemf")] == pytest.approx(0.05)
    scfg = StudyConfig(levels=levels, methods=("normal", "iemf"), losses=["always", "with_iemf"])
    trended = {(t["loss"], t["contrast"]) for t in trend_rows(rows, scfg)}
    assert ("always", "normal multisensory gain") in trended
    assert ("with_iemf", "normal multisensory gain") not in trended


def test_compute_to_reach_fractions_of_normals_final_validation_accuracy_at_step_resolution():
    curve = [(10.0, 0.2), (20.0, 0.5), (30.0, 0.7), (40.0, 0.6)]
    assert samples_to_reach(curve, 0.6) == 30.0 and math.isinf(samples_to_reach(curve[:2], 0.6))
    assert math.isinf(samples_to_reach(curve, math.nan))
    lv = (-15.0, -5.0)
    cell = ("concat", "always", lv)
    results = {
        (*cell, "normal", 0): _fake_result(0.6, [0.3, 0.5, 0.6, 0.6], sops=100.0),
        (*cell, "iemf", 0): _fake_result(0.62, [0.4, 0.6, 0.6, 0.7], sops=120.0, coeff=1.1),
        (*cell, "constant", 0): _fake_result(0.5, [0.4, 0.5, 0.5, 0.55], sops=90.0),
    }
    rows = {r["method"]: r for r in run_rows(results)}
    assert rows["normal"]["samples_to_100"] == 150 and rows["normal"]["sops_to_100"] == 100.0 * 150
    assert rows["iemf"]["samples_to_100"] == 100 and rows["iemf"]["sops_to_100"] == 120.0 * 100
    assert rows["iemf"]["compute_ratio_100"] == pytest.approx(12000 / 15000)  # 20 % less computation
    assert math.isinf(rows["constant"]["compute_ratio_100"]) and math.isinf(rows["constant"]["samples_to_100"])
    # 90 % of Normal's 0.6 is 0.54: Normal reaches it at 150 samples, the constant control at 200
    assert rows["constant"]["compute_ratio_90"] == pytest.approx(90 * 200 / (100 * 150))


def test_the_geometric_mean_of_compute_ratios_is_over_every_seed_or_none():
    """A seed that never reaches the target is the costliest: a mean over the others would flatter the method that
    misses most (0.8, 0.8, never, 1.0 gave 0.86 against the median's 0.90)."""
    lv = (-10.0, 0.0)
    ratios = {"normal": [1.0] * 4, "iemf": [0.8, 0.8, math.inf, 1.0]}

    def row(method, seed):
        r = ratios[method][seed]
        ks = {study._pct(f): r if f == 1.0 else min(r, 0.9) for f in study.TARGETS}
        return {
            "fusion": "concat", "loss": "always", "audio_snr_db": lv[0], "image_snr_db": lv[1], "method": method,
            "sops_per_sample": 1.0,
            **{f"compute_ratio_{k}": v for k, v in ks.items()},
            **{f"sops_to_{k}": 100 * v for k, v in ks.items()},
            **{f"samples_to_{k}": 100 * v for k, v in ks.items()},
        }  # fmt: skip

    scfg = StudyConfig(levels=[lv], methods=("normal", "iemf"), fusions=("concat",))
    rows = [row(m, s) for m in ratios for s in range(4)]
    out = {(r["method"], r["target"]): r for r in study.compute_rows(rows, scfg)}
    full = out[("iemf", 1.0)]
    assert full["reached"] == 3 and full["ratio_median"] == pytest.approx(0.9) and math.isnan(full["ratio_geomean"])
    assert out[("iemf", 0.9)]["ratio_geomean"] == pytest.approx(math.exp(np.log([0.8, 0.8, 0.9, 0.9]).mean()))
    assert "| 3/4 |" in study.compute_table([full]) and math.isnan(full["ratio_geomean_low"])


def test_cells_reuse_iemf_runs_across_loss_settings_and_controls_run_where_asked(tmp_path, monkeypatch):
    """The study's plan without training: which runs it asks for, and what it does with their results."""
    asked = []

    def fake_run_all(configs, scfg):
        out = []
        for c in configs:
            asked.append(c)
            lv, m = (c.data.audio_snr_db, c.data.image_snr_db), c.policies[0]["name"] if c.policies else "normal"
            acc = 0.8 + 0.01 * (lv[0] / 5) + (0.02 if m == "iemf" else 0.0) + 0.001 * c.seed
            out.append(_fake_result(acc, [acc - 0.1, acc], coeff=1.2 + 0.01 * c.seed if m == "iemf" else None))
        return out

    monkeypatch.setattr(study, "_run_all", fake_run_all)
    runs = RunOptions(seeds=[0, 1, 2], out=str(tmp_path))
    cfg = StudyConfig(
        levels=[(0.0, 10.0), (-10.0, 0.0), (-15.0, -5.0)],
        runs=runs,
        fusions=("concat", "msi"),
        losses=("always", "with_iemf"),
    )
    summary = run_study(cfg)
    plan = {(c.model.fusion, c.loss.unimodal, c.policies[0]["name"] if c.policies else "normal") for c in asked}
    assert ("concat", "with_iemf", "iemf") not in plan and ("msi", "with_iemf", "normal") in plan
    assert ("concat", "with_iemf", "constant") not in plan  # IEMF's control is reused like IEMF
    assert ("msi", "always", "constant") in plan  # the constant control runs in every cell
    n = {k: sum(1 for c in asked if (c.model.fusion, c.loss.unimodal) == k) for k in [("concat", "always")]}
    assert n[("concat", "always")] == 3 * 3 * 2 + 2 * 3  # normal, iemf at 3 levels; constant at the 2 weak ones
    constant = [c for c in asked if c.policies and c.policies[0]["name"] == "constant"]
    assert all(c.policies[0]["coeff"] == pytest.approx(1.21) for c in constant)  # IEMF's mean coefficient
    assert {c.data.audio_snr_db for c in constant} == {-10.0, -15.0}
    rows = {(r["fusion"], r["loss"], r["method"], r["audio_snr_db"]): r for r in summary}
    assert rows[("concat", "with_iemf", "iemf", 0.0)]["acc_mean"] == rows[("concat", "always", "iemf", 0.0)]["acc_mean"]
    assert rows[("concat", "always", "iemf", -15.0)]["iemf_vs_constant"] == pytest.approx(0.02)
    assert rows[("msi", "with_iemf", "iemf", -15.0)]["iemf_vs_constant"] == pytest.approx(0.02)
    md = (tmp_path / "summary.md").read_text()
    for section in ("## Trend across levels", "## Compute to reach", "## Cells against each other"):
        assert section in md
    with (tmp_path / "cells.csv").open() as fh:
        cells = list(csv.DictReader(fh))
    assert {(r["cell"], r["reference"]) for r in cells} >= {
        ("msi, always", "concat, always"),
        ("concat, with_iemf", "concat, always"),
    }


def test_bad_study_configs_are_named():
    with pytest.raises(ValueError, match="needs the iemf runs"):
        StudyConfig(methods=("normal", "constant")).check()
    with pytest.raises(ValueError, match="control_levels must be among the levels"):
        StudyConfig(control_levels=[(5.0, 5.0)]).check()
    with pytest.raises(ValueError, match="unknown fusion"):
        StudyConfig(fusions=("attention",)).check()
    with pytest.raises(ValueError, match="fusions: 'msi:pool': options are KEY=VALUE"):
        StudyConfig(fusions=("concat", "msi:pool")).check()
    with pytest.raises(ValueError, match="fusions: msi:pools=8: .*pools"):
        StudyConfig(fusions=("concat", "msi:pools=8")).check()
    with pytest.raises(ValueError, match="fusions: concat:pool=8: "):
        StudyConfig(fusions=("concat:pool=8",)).check()
    with pytest.raises(ValueError, match="losses must be some of"):
        StudyConfig(losses=("never",)).check()
    for key, value in (("fusions", ("concat", "concat")), ("losses", ("always",) * 2), ("methods", ("normal",) * 2)):
        with pytest.raises(ValueError, match=f"{key} must be distinct"):  # the same runs twice, sharing folders
            StudyConfig(**{key: value}).check()


def test_tiny_study_runs_resumes_and_reports(tmp_path, monkeypatch):
    """Train, measure (operations, the msi layer's enhancement), report and resume a tiny study of the msi layer."""
    runs = RunOptions(seeds=[0, 1], jobs=1, out=str(tmp_path), progress=False)
    cfg = StudyConfig(levels=LEVELS, recipe=tiny_recipe(), runs=runs, fusions=("msi",), sop_samples=16)
    summary = run_study(cfg)
    assert [(r["method"], r["audio_snr_db"]) for r in summary] == [
        ("normal", 0),
        ("iemf", 0),
        ("normal", -15),
        ("iemf", -15),
        ("constant", -15),
    ]
    assert all(r["n"] == 2 and r["fusion"] == "msi" for r in summary)
    iemf = {r["audio_snr_db"]: r["coeff_mean"] for r in summary if r["method"] == "iemf"}
    const = {r["audio_snr_db"]: r["coeff_mean"] for r in summary if r["method"] == "constant"}
    assert const == pytest.approx({-15.0: iemf[-15.0]})  # the control: IEMF's mean coefficient, at the weak level
    with (tmp_path / "runs.csv").open() as fh:
        runs = list(csv.DictReader(fh))
    assert len(runs) == 10 and all(float(r["sops_per_sample"]) > 0 for r in runs)
    assert all(float(r["compute_ratio_100"]) == 1.0 for r in runs if r["method"] == "normal")
    assert {"ME_median", "ME_population", "AI_median"} <= set(runs[0])
    for f in ("summary.csv", "trend.csv", "compute.csv", "summary.md", "inverse_effectiveness.png"):
        assert (tmp_path / f).is_file()
    md = (tmp_path / "summary.md").read_text()
    assert "| msi | always | -15 | -5 | constant |" in md
    assert "| msi | always | iemf - normal (test_acc) | 2 | 2 |" in md  # the trend over 2 levels and 2 seeds
    mtime = (tmp_path / "a+0_v+10" / "normal_s0" / "results.json").stat().st_mtime
    run_study(cfg)  # resumes: nothing is trained again
    assert (tmp_path / "a+0_v+10" / "normal_s0" / "results.json").stat().st_mtime == mtime
    changed = StudyConfig(**{**cfg.__dict__, "recipe": tiny_recipe(epochs=2)})
    with pytest.raises(ValueError, match="another config.*epochs: 1 -> 2"):
        run_study(changed)  # a cached run is only reused with the same config


def test_the_original_loss_cell_smooths_every_term_and_trains_its_own_iemf_runs(tmp_path, monkeypatch):
    asked = []

    def fake_run_all(configs, scfg):
        asked.extend(configs)
        return [
            _fake_result(
                0.8 + (0.01 if c.policies else 0.0) + 0.002 * c.seed, [0.5, 0.8], coeff=1.2 if c.policies else None
            )
            for c in configs
        ]

    monkeypatch.setattr(study, "_run_all", fake_run_all)
    runs = RunOptions(seeds=[0, 1, 2], out=str(tmp_path))
    cfg = StudyConfig(levels=[(0.0, 10.0), (-10.0, 0.0)], runs=runs, losses=("always", "original"))
    summary = run_study(cfg)
    original = [c for c in asked if c.loss.label_smoothing == 0.1]
    assert original and all((c.loss.unimodal, c.loss.unimodal_label_smoothing) == ("with_iemf", 0.1) for c in original)
    assert {c.policies[0]["name"] if c.policies else "normal" for c in original} == {"normal", "iemf", "constant"}
    # TOST against the +-2 point margin: IEMF - Normal is +1 point with almost no spread -> equivalent
    row = next(r for r in summary if (r["loss"], r["method"], r["audio_snr_db"]) == ("original", "iemf", 0.0))
    assert row["diff_vs_normal"] == pytest.approx(0.01) and row["equivalent"] and row["tost_p"] < 0.05
    md = (tmp_path / "summary.md").read_text()
    assert "within the margin? (TOST p)" in md and "| yes (p " in md


def test_fusion_cells_with_options_train_those_options_and_are_compared_with_the_first(tmp_path, monkeypatch):
    asked = []

    def fake_run_all(configs, scfg):
        asked.extend(configs)
        return [_fake_result(0.8 + 0.01 * bool(c.model.fusion_args) + 0.002 * c.seed, [0.5, 0.8]) for c in configs]

    monkeypatch.setattr(study, "_run_all", fake_run_all)
    runs = RunOptions(seeds=[0, 1, 2], out=str(tmp_path))
    recipe = default_recipe().replace(
        model={**default_recipe().model.to_dict(), "fusion": "msi", "fusion_args": {"exponent": 3.0}}
    )
    cfg = StudyConfig(
        levels=LEVELS, runs=runs, methods=("normal",), fusions=("concat", "msi", "msi:pool=8,bias=true"), recipe=recipe
    )
    cfg.check()
    run_study(cfg)
    by_cell = {}
    for c in asked:
        by_cell.setdefault((c.model.fusion, tuple(sorted(c.model.fusion_args.items()))), []).append(c)
    assert set(by_cell) == {  # the recipe's options go with its own fusion only; a cell's options add to them
        ("concat", ()),
        ("msi", (("exponent", 3.0),)),
        ("msi", (("bias", True), ("exponent", 3.0), ("pool", 8))),
    }
    assert all(len(v) == len(LEVELS) * 3 for v in by_cell.values())
    pooled = by_cell[("msi", (("bias", True), ("exponent", 3.0), ("pool", 8)))]
    assert {Path(c.out).parent.parent.name for c in pooled} == {"msi_pool8_biastrue-always"}
    md = (tmp_path / "summary.md").read_text()
    row = next(ln for ln in md.splitlines() if ln.startswith("| msi:pool=8,bias=true, always | concat, always | 0 |"))
    assert "+1.0" in row


def test_the_horizon_is_normals_gain_over_the_last_quarter_of_its_samples():
    curve = [(100.0, 0.5), (300.0, 0.8), (600.0, 0.9), (700.0, 0.85), (800.0, 0.93)]  # cut at 600 samples
    assert last_quarter_gain(curve) == pytest.approx(3.0)  # 0.93 after the cut - 0.90 before it
    assert math.isnan(last_quarter_gain([(800.0, 0.9)])) and math.isnan(last_quarter_gain([]))
    rows = [
        {
            "fusion": "concat",
            "loss": "always",
            "audio_snr_db": a,
            "image_snr_db": v,
            "method": m,
            "seed": s,
            "last_quarter_gain": g,
        }
        for (a, v), gains in {(0.0, 10.0): [0.1, 0.3, 0.2], (-15.0, -5.0): [2.0, 1.0, 3.0]}.items()
        for s, g in enumerate(gains)
        for m in ("normal", "iemf")
    ]
    horizon = study.horizon_rows(rows, StudyConfig(levels=LEVELS))
    assert [(r["gain"], r["plateau"], r["n"]) for r in horizon] == [
        (pytest.approx(0.2), True, 3),
        (pytest.approx(2.0), False, 3),
    ]
    assert "| concat | always | -15 | -5 | 3 | +2.0 [" in study.horizon_table(horizon)


def test_a_paired_or_measured_value_over_fewer_seeds_says_so():
    """A paired difference over fewer seeds than its row (Normal's seed 2 missing), and an enhancement index a
    seed has no value of (no responsive neuron): the tables say over how many seeds (they showed the row's n)."""
    rows = []
    for s in range(3):
        for m in ("normal", "iemf"):
            if (m, s) != ("normal", 2):
                r = {"audio_snr_db": 0.0, "image_snr_db": 10.0, "method": m, "seed": s, "test_acc": 0.7 + 0.01 * s}
                r.update(test_acc_audio=0.5, test_acc_visual=0.6, gain=0.1, coeff_mean=1.1)
                r.update(fusion="msi", loss="always", ME_median=0.1, AI_median=1.2)
                r["ME_population"] = float("nan") if s == 0 else 0.2
                rows.append(r)
    summary = {r["method"]: r for r in study.summarise(rows, [(0.0, 10.0)], ("normal", "iemf"), range(3))}
    assert summary["iemf"]["n"] == 3 and summary["iemf"]["n_paired"] == 2
    assert "(n = 2)" in study.markdown_table([summary["iemf"]]) and "(n = " not in study.markdown_table(
        [summary["normal"]]
    )
    iemf_line = next(line for line in study.msi_table(rows).splitlines() if "| iemf |" in line)
    assert iemf_line.split("|")[6:9] == [" 3 ", " +10 ", " +20 (n = 2) "]
