"""The methods study: every registered balancing method on the recipe (default: the demo network on digits-av,
hard preset), over seeds, alone and with IEMF; each row's fused test accuracy as mean and 95 % confidence
interval (Student t over seeds), its paired difference from plain training, macro F1 and each modality's Shapley
contribution.

The default is sized for 2 CPU cores: the demo network, a few epochs, 5 seeds, two runs in parallel; any recipe
runs (``--config``, ``--model ks-paper``, ``--dataset``, ``--set``, ...), and the study varies only the method on
it. The epoch options of the methods whose official defaults assume runs of 50-300 epochs (warm-ups, windows,
stage lengths, re-initialisation periods) are scaled to the short run by :func:`short_run_options` (runs under 50
epochs), printed with the table; every other option is the method's official default, unless ``--tuned FILE``
gives tuned values (``snn-msi sweep`` writes such a file: ``{method: {option: value}}``), because methods compared
at their defaults on a new data set is not a fair comparison. A method that does not compose with IEMF gets no
IEMF row. IEMF's controls (``constant``, ``noise``) belong to the inverse-effectiveness study and are left out
here; ``iemf`` is the ``normal`` row with IEMF. Runs resume as the other studies' do
(:mod:`snn_msi.reports.runs`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import write_csv, write_text
from ..schema import ConfigError, load_yaml
from ..training.config import TrainConfig, demo_config, policies_for
from ..training.policies.iemf import IEMF, ConstantScale, NoiseOnly
from . import register_study
from .runs import RunOptions, add_run_arguments, run_many, run_options, study_recipe
from .stats import t_interval

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
#: runs of at least this many epochs take every method's official epoch options
LONG_RUN = 50


def default_recipe(epochs: int = 4) -> TrainConfig:
    """The study's recipe unless the user gives one: the demo network on digits-av (hard), lr x0.1 for the last
    epoch."""
    return demo_config(epochs=epochs, milestones=[max(1, epochs - 1)] if epochs > 1 else [])


@dataclass
class MethodsStudyConfig:
    """``methods``: None = every registered method but :data:`EXCLUDED`; ``tuned``: per method, options over its
    defaults (``--tuned FILE``); ``recipe``: the training config every run starts from (None:
    :func:`default_recipe`); ``runs``: seeds, folder and executor."""

    methods: tuple[str, ...] | None = None
    iemf: bool = True
    tuned: dict[str, dict] = field(default_factory=dict)
    recipe: TrainConfig | None = None
    runs: RunOptions = field(default_factory=lambda: RunOptions(seeds=list(range(5)), out="runs/methods"))

    def __post_init__(self) -> None:
        self.recipe = self.recipe or default_recipe()

    def method_names(self) -> list[str]:
        from ..training import METHODS

        names = list(self.methods) if self.methods else [n for n in METHODS.names() if n not in EXCLUDED]
        unknown = [n for n in [*names, *self.tuned] if n not in METHODS]
        if unknown:
            raise ConfigError(f"--methods: {METHODS.unknown(unknown[0])}")
        return ["normal", *[n for n in names if n != "normal"]]

    def options(self, method: str) -> dict:
        """The method's options: short-run epoch options (runs under :data:`LONG_RUN` epochs), then tuned ones."""
        epochs = self.recipe.epochs
        short = short_run_options(epochs).get(method, {}) if 2 <= epochs < LONG_RUN else {}
        return {**short, **self.tuned.get(method, {})}


def load_tuned(path: str | Path) -> dict[str, dict]:
    """A ``--tuned`` file: ``{method: {option: value}}`` (YAML, as ``snn-msi sweep`` writes ``tuned.yaml``)."""
    d = load_yaml(path)
    bad = [k for k, v in d.items() if not isinstance(v, dict)]
    if bad:
        raise ConfigError(f"--tuned {path}: expected method: {{option: value}}, got {bad[0]}: {d[bad[0]]!r}")
    return d


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
    """The recipe with one row's method (and IEMF), the seed and the run's folder."""
    out = Path(scfg.runs.out) / f"{method}{'+iemf' if iemf else ''}" / f"s{seed}"
    return scfg.recipe.replace(
        seed=seed, out=str(out), policies=policies_for(method, iemf=iemf, **scfg.options(method))
    )


def run_methods_study(scfg: MethodsStudyConfig) -> list[dict]:
    """Run (or resume) the study; write ``runs.csv``, ``summary.csv`` and ``summary.md`` in ``scfg.runs.out`` and
    print the table. Returns the summary rows."""
    seeds = list(scfg.runs.seeds)
    specs = [(m, i, s) for m, i in cells(scfg) for s in seeds]
    configs = [run_config_for(scfg, *sp) for sp in specs]  # checked before anything is written
    out = Path(scfg.runs.out)
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    results = run_many(configs, scfg.runs)
    wall = time.time() - t0
    rows = [
        {"method": m, "with_iemf": i, "seed": s, **{k: v for k, v in r.to_dict().items() if k in _KEYS}}
        for (m, i, s), r in zip(specs, results, strict=True)
    ]
    write_csv(out / "runs.csv", rows)
    summary = summarise(rows, seeds)
    write_csv(out / "summary.csv", summary)
    md = markdown_table(summary, scfg)
    write_text(out / "summary.md", md + "\n")
    print(md)
    print(f"\n{len(specs)} runs in {wall / 60:.1f} min; wrote {out / 'summary.md'}")
    return summary


_KEYS = (
    "test_acc",
    "test_acc_audio",
    "test_acc_visual",
    "test_f1",
    "test_map",
    "test_shapley_audio",
    "test_shapley_visual",
    "best_epoch",
)


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
        summary.append(
            {
                "method": m,
                "with_iemf": i,
                "n": len(runs),
                "acc_mean": acc,
                "acc_ci_low": lo,
                "acc_ci_high": hi,
                "diff_vs_normal": d,
                "diff_ci_low": dlo,
                "diff_ci_high": dhi,
                **means,
            }
        )
    return summary


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}"


def markdown_table(summary: list[dict], scfg: MethodsStudyConfig | None = None) -> str:
    lines = [
        "| method | IEMF | n | fused acc % (95% CI) | vs normal (pts, 95% CI) | macro F1 % | audio % | visual % | "
        "Shapley audio / visual (pts) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        d, lo, hi = (100 * r[k] for k in ("diff_vs_normal", "diff_ci_low", "diff_ci_high"))
        vs = "-" if (r["method"], r["with_iemf"]) == ("normal", False) else f"{d:+.1f} [{lo:+.1f}, {hi:+.1f}]"
        lines.append(
            f"| {r['method']} | {'yes' if r['with_iemf'] else 'no'} | {r['n']} | {_pct(r['acc_mean'])} "
            f"[{_pct(r['acc_ci_low'])}, {_pct(r['acc_ci_high'])}] | {vs} | {_pct(r['f1'])} | "
            f"{_pct(r['acc_audio'])} | {_pct(r['acc_visual'])} | {_pct(r['shapley_audio'])} / "
            f"{_pct(r['shapley_visual'])} |"
        )
    if scfg is not None:
        used = {m: scfg.options(m) for m in dict.fromkeys(r["method"] for r in summary) if scfg.options(m)}
        r = scfg.recipe
        lines.append("")
        lines.append(
            f"{r.data.dataset}, preset {r.data.preset}, {r.model.neuron} T={r.model.T} widths "
            f"{list(r.model.widths)}, {r.epochs} epochs, seeds {_seeds(scfg.runs.seeds)}; options over the "
            f"defaults: {used or 'none'}"
        )
    return "\n".join(lines)


def _seeds(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}-{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        else (",".join(map(str, seeds)))
    )


@register_study(
    "methods",
    description="every balancing method on the recipe (default: digits-av, hard), alone and "
    "with IEMF, over seeds: mean and 95% CI of the fused test accuracy, F1, Shapley",
)
def _methods_study_command(q) -> None:
    """``snn-msi study methods``."""
    d = MethodsStudyConfig()
    q.add_argument("--methods", nargs="+", help="registered method names (default: all but iemf, constant, noise)")
    q.add_argument("--no-iemf", action="store_true", help="only the methods alone")
    q.add_argument("--tuned", help="YAML {method: {option: value}} over the defaults (snn-msi sweep's tuned.yaml)")
    add_run_arguments(q, seeds=len(d.runs.seeds), out=d.runs.out, jobs=d.runs.jobs)
    q.set_defaults(func=_run)


def _run(args) -> int:
    cfg = MethodsStudyConfig(
        methods=tuple(args.methods) if args.methods else None,
        iemf=not args.no_iemf,
        tuned=load_tuned(args.tuned) if args.tuned else {},
        recipe=study_recipe(args, default_recipe(args.epochs or 4)),
        runs=run_options(args),
    )
    run_methods_study(cfg)
    return 0
