"""The methods study: every registered balancing method on digits-av (hard preset), over seeds, alone and with
IEMF; each row's fused test accuracy as mean and 95 % confidence interval (Student t over seeds), its paired
difference from plain training, macro F1 and each modality's Shapley contribution.

The default is sized for 2 CPU cores: the demo network, a few epochs, 5 seeds, two runs in parallel. The epoch
options of the methods whose official defaults assume runs of 50-300 epochs (warm-ups, windows, stage lengths,
re-initialisation periods) are scaled to the short run by :data:`SHORT_RUN_OPTIONS`, printed with the table;
every other option is the method's official default. A method that does not compose with IEMF gets no IEMF row.
IEMF's controls (``constant``, ``noise``) belong to the inverse-effectiveness study and are left out here;
``iemf`` is the ``normal`` row with IEMF. Runs resume as the other studies' do (:func:`run_many`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import write_csv, write_text
from ..schema import ConfigError
from ..training.config import TrainConfig, demo_config, policies_for
from ..training.policies.iemf import IEMF, ConstantScale, NoiseOnly
from . import register_study
from .study import add_run_arguments, run_many, t_interval

#: left out by default (see the module docstring)
EXCLUDED = (IEMF.name, ConstantScale.name, NoiseOnly.name)


def short_run_options(epochs: int) -> dict[str, dict]:
    """Per-method overrides of epoch-valued official defaults for a run of ``epochs`` epochs (at least 2): the
    first epoch stays unmodulated where the official code has a warm-up, and periodic actions happen inside the
    run."""
    one = min(1, epochs - 1)
    return {
        "opm": {"start": one},  # official: no drop while epoch <= 5
        "greedy": {"start": one},  # the default (official starting_epoch 2, 1-based)
        "sample_valuation": {"warmup": one},  # official: resampled from epoch 5
        "modality_valuation": {"warmup": one},
        "relearn": {"reinit_epoch": 1, "reinit_num": max(1, epochs // 2)},  # official every 20 epochs, 3 times
        "reconboost": {"epochs_per_stage": 1, "correct_epoch": 1},  # official 4 + 4 epochs per stage
        "gblend": {"super_epoch": epochs},  # official (BalanceBenchmark) 10: one estimate, at the start
    }


SHORT_RUN_OPTIONS = short_run_options(4)


@dataclass
class MethodsStudyConfig:
    """``methods``: None = every registered method but :data:`EXCLUDED`; ``base``: overrides of the demo config
    (tests shrink the model and the data with it)."""

    methods: tuple[str, ...] | None = None
    seeds: int = 5
    epochs: int = 4
    jobs: int = 2
    iemf: bool = True
    out: str = "runs/methods"
    preset: str = "hard"
    base: dict = field(default_factory=dict)

    def method_names(self) -> list[str]:
        from ..training import METHODS

        names = list(self.methods) if self.methods else [n for n in METHODS.names() if n not in EXCLUDED]
        unknown = [n for n in names if n not in METHODS]
        if unknown:
            raise ConfigError(f"--methods: {METHODS.unknown(unknown[0])}")
        return ["normal", *[n for n in names if n != "normal"]]


def cells(scfg: MethodsStudyConfig) -> list[tuple[str, bool]]:
    """``(method, with IEMF)`` of every row."""
    from ..training.policies import composes_with_iemf

    rows = []
    for m in scfg.method_names():
        rows.append((m, False))
        if scfg.iemf and composes_with_iemf(m).composes:
            rows.append((m, True))
    return rows


def run_config_for(scfg: MethodsStudyConfig, method: str, iemf: bool, seed: int) -> TrainConfig:
    options = short_run_options(scfg.epochs).get(method, {}) if scfg.epochs >= 2 else {}
    base = dict(scfg.base)
    data = {"dataset": "digits-av", "preset": scfg.preset, **base.pop("data", {})}
    out = Path(scfg.out) / f"{method}{'+iemf' if iemf else ''}" / f"s{seed}"
    milestones = [max(1, scfg.epochs - 1)] if scfg.epochs > 1 else []
    return demo_config(epochs=scfg.epochs, seed=seed, out=str(out), data=data, milestones=milestones,
                       policies=policies_for(method, iemf=iemf, **options), **base)  # fmt: skip


def run_methods_study(scfg: MethodsStudyConfig, overwrite: bool = False) -> list[dict]:
    """Run (or resume) the study; write ``runs.csv``, ``summary.csv`` and ``summary.md`` in ``scfg.out`` and
    print the table. Returns the summary rows."""
    seeds = list(range(scfg.seeds))
    specs = [(m, i, s) for m, i in cells(scfg) for s in seeds]
    configs = [run_config_for(scfg, *sp) for sp in specs]  # checked before anything is written
    out = Path(scfg.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = run_many(configs, scfg.jobs, overwrite)
    wall = time.time() - t0
    rows = [{"method": m, "with_iemf": i, "seed": s, **{k: v for k, v in r.to_dict().items() if k in _KEYS}}
            for (m, i, s), r in zip(specs, results, strict=True)]  # fmt: skip
    write_csv(out / "runs.csv", rows)
    summary = summarise(rows, seeds)
    write_csv(out / "summary.csv", summary)
    md = markdown_table(summary, scfg)
    write_text(out / "summary.md", md + "\n")
    print(md)
    print(f"\n{len(specs)} runs ({scfg.jobs} in parallel) in {wall / 60:.1f} min; wrote {out / 'summary.md'}")
    return summary


_KEYS = ("test_acc", "test_acc_audio", "test_acc_visual", "test_f1", "test_map", "test_shapley_audio",
         "test_shapley_visual", "best_epoch")  # fmt: skip


_MEANS = ("acc_audio", "acc_visual", "f1", "map", "shapley_audio", "shapley_visual")


def summarise(rows: list[dict], seeds: list[int]) -> list[dict]:
    """Per (method, IEMF): accuracy mean and 95 % CI, paired difference from ``normal`` (plain) and its CI, mean
    F1, mAP and Shapley contributions."""
    by = {(r["method"], r["with_iemf"], r["seed"]): r for r in rows}
    base = {s: by[("normal", False, s)]["test_acc"] for s in seeds if ("normal", False, s) in by}
    summary = []
    for m, i in dict.fromkeys((r["method"], r["with_iemf"]) for r in rows):
        runs = [by[(m, i, s)] for s in seeds if (m, i, s) in by]
        acc, lo, hi = t_interval([r["test_acc"] for r in runs])
        diffs = [by[(m, i, s)]["test_acc"] - base[s] for s in seeds if (m, i, s) in by and s in base]
        d, dlo, dhi = t_interval(diffs) if (m, i) != ("normal", False) and diffs else (0.0, 0.0, 0.0)
        means = {k: float(np.mean([r.get(f"test_{k}", math.nan) for r in runs])) for k in _MEANS}
        summary.append({"method": m, "with_iemf": i, "n": len(runs), "acc_mean": acc, "acc_ci_low": lo,
                        "acc_ci_high": hi, "diff_vs_normal": d, "diff_ci_low": dlo, "diff_ci_high": dhi,
                        **means})  # fmt: skip
    return summary


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}"


def markdown_table(summary: list[dict], scfg: MethodsStudyConfig | None = None) -> str:
    lines = ["| method | IEMF | n | fused acc % (95% CI) | vs normal (pts, 95% CI) | macro F1 % | audio % | visual % | "
             "Shapley audio / visual (pts) |", "|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in summary:
        d, lo, hi = (100 * r[k] for k in ("diff_vs_normal", "diff_ci_low", "diff_ci_high"))
        vs = "-" if (r["method"], r["with_iemf"]) == ("normal", False) else f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        lines.append(f"| {r['method']} | {'yes' if r['with_iemf'] else 'no'} | {r['n']} | {_pct(r['acc_mean'])} "
                     f"[{_pct(r['acc_ci_low'])}, {_pct(r['acc_ci_high'])}] | {vs} | {_pct(r['f1'])} | "
                     f"{_pct(r['acc_audio'])} | {_pct(r['acc_visual'])} | {_pct(r['shapley_audio'])} / "
                     f"{_pct(r['shapley_visual'])} |")  # fmt: skip
    if scfg is not None:
        opts = short_run_options(scfg.epochs) if scfg.epochs >= 2 else {}
        used = {m: o for m, o in opts.items() if m in {r["method"] for r in summary}}
        lines.append("")
        lines.append(f"digits-av, preset {scfg.preset}, demo network, {scfg.epochs} epochs, {scfg.seeds} seeds; "
                     f"short-run options: {used or 'none'}")  # fmt: skip
    return "\n".join(lines)


@register_study("methods", description="every balancing method on digits-av (hard), alone and with IEMF, over "
                "seeds: mean and 95% CI of the fused test accuracy, F1, Shapley")  # fmt: skip
def _methods_study_command(q) -> None:
    """``snn-msi study methods``."""
    d = MethodsStudyConfig()
    q.add_argument("--methods", nargs="+", help="registered method names (default: all but iemf, constant, noise)")
    q.add_argument("--no-iemf", action="store_true", help="only the methods alone")
    q.add_argument("--preset", default=d.preset, help="SNR preset (clean, hard, harder)")
    add_run_arguments(q, d)
    q.set_defaults(func=_run)


def _run(args) -> int:
    cfg = MethodsStudyConfig(methods=tuple(args.methods) if args.methods else None, seeds=args.seeds,
                             epochs=args.epochs, jobs=args.jobs, iemf=not args.no_iemf, out=args.out,
                             preset=args.preset)  # fmt: skip
    run_methods_study(cfg, overwrite=args.overwrite)
    return 0
