"""The inverse-effectiveness study: weaken the modalities step by step, train each method over several seeds,
and ask whether the multisensory gain grows as the unimodal cues weaken, and whether IEMF's *adaptive*
coefficient matters.

Methods at every noise level (paired by seed):

- ``normal``: no modulation;
- ``iemf``: the adaptive coefficient ``1 + tanh(1 - mean unimodal score / fused score)`` with gradient noise;
- ``constant``: a fixed coefficient equal to IEMF's mean coefficient at that level, with the same noise
  (the control the paper did not run: is it the adaptivity or just a larger fusion learning rate?);
- ``noise``: coefficient 1 with the same noise (is it the noise?).

Reported: each method's fused test accuracy (mean, std), the multisensory gain (fused accuracy minus the best
unimodal head's), and paired differences against ``normal`` with a 95 % confidence interval (Student t over
seeds), as CSV, Markdown and a plot. Runs go in parallel and the study resumes: a finished run made with the
same configuration is read back, not trained again; a folder that holds a run of another configuration is an
error (or, with ``overwrite``, trained again).
"""

from __future__ import annotations

import csv
import math
import os
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..schema import ConfigError
from ..training.config import TrainConfig, demo_config, policies_for
from ..training.rundir import RunDir, config_diff
from . import study

METHODS = ("normal", "iemf", "constant", "noise")


@dataclass
class StudyConfig:
    levels: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 10.0), (-10.0, 0.0), (-15.0, -5.0)])
    seeds: int = 5
    epochs: int = 6
    jobs: int = 2
    out: str = "runs/study"
    dataset: str = "digits-av"
    data_root: str | None = None
    methods: tuple[str, ...] = METHODS
    base: dict = field(default_factory=lambda: {"milestones": [5]})  # overrides of the demo training config


def _run_dir(out: Path, level: tuple[float, float], method: str, seed: int) -> Path:
    return out / f"a{level[0]:+g}_v{level[1]:+g}" / f"{method}_s{seed}"


def run_config(cfg_dict: dict, overwrite: bool = False) -> dict:
    """Train one configuration in this process unless its folder holds the same finished run; the results."""
    from ..training import Trainer

    cfg = TrainConfig.from_dict(cfg_dict)
    rd = RunDir(cfg.out)
    if rd.matches(cfg.to_dict()):
        return rd.results()
    if rd.holds_run() and not overwrite:
        diff = config_diff(rd.saved_config() or {}, cfg.to_dict(), ("out", "data.num_workers"))
        what = f"another config ({'; '.join(diff)})" if diff else "an unfinished run"
        raise ValueError(f"{rd.path} holds {what}; pass --overwrite to train it again, or another --out")
    return Trainer(cfg, mode="overwrite", progress=False).fit()


def run_many(configs: list[TrainConfig], jobs: int = 2, overwrite: bool = False) -> list[dict]:
    """Run configurations in parallel processes (spawned, one thread each); order of results = order given."""
    import functools

    dicts = [c.to_dict() for c in configs]
    run = functools.partial(run_config, overwrite=overwrite)
    if jobs <= 1:
        return [run(d) for d in dicts]
    import multiprocessing as mp

    with ProcessPoolExecutor(jobs, mp_context=mp.get_context("spawn"), initializer=_one_thread) as pool:
        return list(pool.map(run, dicts))


def _one_thread() -> None:
    """Worker initializer: parallel runs share the cores, so each run uses one thread."""
    import torch

    torch.set_num_threads(1)


def _config(scfg: StudyConfig, level, method: str, seed: int, coeff: float | None = None) -> TrainConfig:
    data = {"dataset": scfg.dataset, "root": scfg.data_root, "audio_snr_db": level[0], "image_snr_db": level[1],
            "preset": "clean"}  # fmt: skip
    over = {"epochs": scfg.epochs, "seed": seed, "out": str(_run_dir(Path(scfg.out), level, method, seed)),
            "data": data, **scfg.base}  # fmt: skip
    options = {"coeff": coeff} if method == "constant" else {}
    over["policies"] = policies_for(method, **options) if method != "iemf" else policies_for(iemf=True)
    return demo_config(**over)


COEFF = "mean iemf/coeff"  # the results key of IEMF's mean coefficient over all steps


def t_interval(diffs: list[float], level: float = 0.95) -> tuple[float, float, float]:
    """Mean and two-sided confidence interval of paired differences (Student t)."""
    from scipy import stats

    d = np.asarray(diffs, dtype=float)
    m = float(d.mean())
    if len(d) < 2:
        return m, float("nan"), float("nan")
    half = float(stats.t.ppf(0.5 + level / 2, len(d) - 1) * d.std(ddof=1) / math.sqrt(len(d)))
    return m, m - half, m + half


def run_study(scfg: StudyConfig, overwrite: bool = False) -> list[dict]:
    """Run (or resume) the study; write ``runs.csv``, ``summary.csv``, ``summary.md`` and
    ``inverse_effectiveness.png`` in ``scfg.out``. Returns the summary rows."""
    out = Path(scfg.out)
    out.mkdir(parents=True, exist_ok=True)
    seeds = list(range(scfg.seeds))
    first = [m for m in scfg.methods if m != "constant"]
    specs = [(lv, m, s) for lv in scfg.levels for m in first for s in seeds]
    results = dict(zip(specs, run_many([_config(scfg, *sp) for sp in specs], scfg.jobs, overwrite), strict=True))
    if "constant" in scfg.methods:
        if "iemf" not in scfg.methods:
            raise ValueError("the constant-coefficient control needs the iemf runs (add 'iemf' to methods)")
        coeff = {lv: float(np.mean([results[(lv, "iemf", s)][COEFF] for s in seeds])) for lv in scfg.levels}
        specs2 = [(lv, "constant", s) for lv in scfg.levels for s in seeds]
        cfgs2 = [_config(scfg, lv, "constant", s, coeff[lv]) for lv, _, s in specs2]
        results.update(zip(specs2, run_many(cfgs2, scfg.jobs, overwrite), strict=True))
    rows = []
    for (lv, m, s), r in results.items():
        best_uni = max(r["test_acc_audio"], r["test_acc_visual"])
        rows.append({"audio_snr_db": lv[0], "image_snr_db": lv[1], "method": m, "seed": s,
                     "test_acc": r["test_acc"], "test_acc_audio": r["test_acc_audio"],
                     "test_acc_visual": r["test_acc_visual"], "gain": r["test_acc"] - best_uni,
                     "coeff_mean": next((v for k, v in r.items() if k.endswith("/coeff")), float("nan"))})  # fmt: skip
    _write_csv(out / "runs.csv", rows)
    summary = summarise(rows, scfg.levels, [m for m in METHODS if m in scfg.methods], seeds)
    _write_csv(out / "summary.csv", summary)
    md = markdown_table(summary)
    (out / "summary.md").write_text(md + "\n")
    from ..plots import inverse_effectiveness_plot

    inverse_effectiveness_plot(summary, out / "inverse_effectiveness.png")
    print(md)
    print(f"\nwrote {out / 'runs.csv'}, {out / 'summary.md'}, {out / 'inverse_effectiveness.png'}")
    return summary


def summarise(rows: list[dict], levels, methods, seeds) -> list[dict]:
    by = {(r["audio_snr_db"], r["image_snr_db"], r["method"], r["seed"]): r for r in rows}
    summary = []
    for lv in levels:
        for m in methods:
            runs = [by[(lv[0], lv[1], m, s)] for s in seeds if (lv[0], lv[1], m, s) in by]
            if not runs:
                continue
            acc = np.array([r["test_acc"] for r in runs])
            gain = np.array([r["gain"] for r in runs])
            diffs = [by[(lv[0], lv[1], m, s)]["test_acc"] - by[(lv[0], lv[1], "normal", s)]["test_acc"]
                     for s in seeds if (lv[0], lv[1], m, s) in by and (lv[0], lv[1], "normal", s) in by]  # fmt: skip
            d, lo, hi = t_interval(diffs) if m != "normal" else (0.0, 0.0, 0.0)
            summary.append({
                "audio_snr_db": lv[0], "image_snr_db": lv[1], "method": m, "n": len(runs),
                "acc_mean": float(acc.mean()), "acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                "audio_acc_mean": float(np.mean([r["test_acc_audio"] for r in runs])),
                "visual_acc_mean": float(np.mean([r["test_acc_visual"] for r in runs])),
                "gain_mean": float(gain.mean()), "gain_std": float(gain.std(ddof=1)) if len(gain) > 1 else 0.0,
                "diff_vs_normal": d, "ci_low": lo, "ci_high": hi,
                "coeff_mean": float(np.nanmean([r["coeff_mean"] for r in runs])) if m != "normal" else float("nan"),
            })  # fmt: skip
    return summary


def markdown_table(summary: list[dict]) -> str:
    head = (
        "| audio dB | image dB | method | n | fused acc % | audio % | visual % | gain (pts) | vs normal (pts, 95% CI) |"
    )
    lines = [head + " coeff |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in summary:
        vs = "-" if r["method"] == "normal" else (f"{100 * r['diff_vs_normal']:+.1f} "
                                                  f"[{100 * r['ci_low']:+.1f}, {100 * r['ci_high']:+.1f}]")  # fmt: skip
        coeff = "-" if math.isnan(r["coeff_mean"]) else f"{r['coeff_mean']:.3f}"
        lines.append(f"| {r['audio_snr_db']:g} | {r['image_snr_db']:g} | {r['method']} | {r['n']} | "
                     f"{100 * r['acc_mean']:.1f} ± {100 * r['acc_std']:.1f} | {100 * r['audio_acc_mean']:.1f} | "
                     f"{100 * r['visual_acc_mean']:.1f} | {100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f} | "
                     f"{vs} | {coeff} |")  # fmt: skip
    return "\n".join(lines)


def _write_csv(path: Path, rows: list[dict]) -> None:
    tmp = path.with_suffix(".tmp")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)


@study("inverse-effectiveness", description="weaken both modalities step by step; Normal, IEMF and its controls")
def _inverse_effectiveness_command(q) -> None:
    from ..cli import positive_int

    q.add_argument("--levels", nargs="+", help="'AUDIO_DB,IMAGE_DB' pairs, weakest last (default: 3 levels)")
    q.add_argument("--seeds", type=positive_int, default=5)
    q.add_argument("--epochs", type=positive_int, default=6)
    q.add_argument("--jobs", "-j", type=positive_int, default=2, help="runs in parallel")
    q.add_argument("--dataset", default="digits-av")
    q.add_argument("--data-root")
    q.add_argument("--out", default="runs/study")
    q.add_argument("--overwrite", action="store_true", help="retrain runs whose folders hold another config")
    q.set_defaults(func=_run)


def _level(text: str) -> tuple[float, float]:
    try:
        a, v = (float(x) for x in text.split(","))
    except ValueError:
        raise ConfigError(f"--levels: expected 'AUDIO_DB,IMAGE_DB', got {text!r}") from None
    return a, v


def _run(args) -> int:
    cfg = StudyConfig(
        levels=[_level(lv) for lv in args.levels] if args.levels else StudyConfig().levels,
        seeds=args.seeds,
        epochs=args.epochs,
        jobs=args.jobs,
        out=args.out,
        dataset=args.dataset,
        data_root=args.data_root,
    )
    run_study(cfg, overwrite=args.overwrite)
    return 0
