"""The methods study: every registered balancing method on the recipe (default: the demo network on digits-av,
hard preset), over seeds, as its authors ran it and tuned, alone and with IEMF, with the compute each used.

Rows. Per method: ``official`` (every option at the official default of its cited source, epoch-valued ones
fitted to the run by :func:`epoch_options`), ``official`` with IEMF on top (where the method composes with it),
and ``tuned`` (options tuned on the validation split: ``--tuned FILE``, or ``--tune N``, which runs ``snn-msi
sweep`` for every method over its key options, :data:`TUNE`, starting from the official values, and writes
``tuned.yaml``). A method without tuned values, or whose tuned values are the official ones, has no tuned row
(the README's table, :func:`per_method_table`, says which).
Each row: fused test accuracy mean and 95 % interval (Student t over seeds); its paired difference from Normal;
for a row with IEMF, the paired difference from the same method alone (the IEMF effect on that method); the
last epoch's training accuracy (a method whose evaluated network collapses shows it here); and compute: the
samples its encoders processed (copies, teachers, extra passes included), optimizer steps, wall and CPU time and
estimated synaptic operations (:mod:`snn_msi.training.compute`), each relative to Normal, and the best validation
accuracy reached within Normal's samples (accuracy at matched compute).

Protocol. The default is sized for CI (4 epochs: early training, not convergence). ``--benchmark`` is the
setting the README's table comes from (:data:`BENCHMARK`): the demo recipe for 56 epochs (learning rate x0.1
after epoch 36), 5 seeds, 5 tuning trials per method on seed 100's validation split; the study checks that
Normal has plateaued at that budget: Normal trained for twice the epochs (milestones scaled) must gain less than
0.5 points of test accuracy (paired by seed, :func:`plateau_lines`), and says so under the table with Normal's
validation gain over the last quarter of its run. Model selection is on validation (the best
epoch), the test split is read once per run. Any recipe runs (``--config``, ``--model ks-paper``,
``--dataset``, ``--set``, ...); the study varies only the method. IEMF's controls (``constant``, ``noise``)
belong to the inverse-effectiveness study and are left out; ``iemf`` is Normal's IEMF row. Runs resume as the
other studies' do (:mod:`snn_msi.reports.runs`).
"""

from __future__ import annotations

import dataclasses
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import yaml

from ..files import write_csv, write_text
from ..schema import ConfigError, load_yaml
from ..training.config import TrainConfig, demo_config, policies_for
from ..training.policies.iemf import IEMF, ConstantScale, NoiseOnly
from ..training.runlog import accuracy_curve, read_csv
from . import register_study
from .runs import RunOptions, add_run_arguments, finished, results, run_many, run_options, study_recipe
from .stats import PLATEAU_POINTS, fewer_seeds, last_quarter_gain, t_interval

#: left out by default (see the module docstring)
EXCLUDED = (IEMF.name, ConstantScale.name, NoiseOnly.name)

#: the benchmark setting (``--benchmark``): epochs and milestones of the demo recipe, tuning trials and the seed
#: tuning uses (not one of the table's seeds); its seeds are the study's default, 0-4
BENCHMARK = {"epochs": 56, "milestones": [36], "tune": 5, "tune_seed": 100}

#: what ``--benchmark`` takes (``--help`` shows it)
BENCHMARK_TIME = (
    "about 18 h on 2 CPU cores, 2 runs at a time (Normal's 56-epoch run took 4.4 min two at a time on 2026-12-05; "
    "the 37 official and IEMF rows and the plateau check, 190 runs: 9.6 h of training measured; "
    "at most 87 tuning trials, about 4.1 h (a sweep ends at a trial with perfect validation accuracy); up to 18 tuned "
    "rows, about 4.3 h); it resumes where it was stopped"
)

#: each method's key options for ``--tune`` (``snn-msi sweep --param`` syntax): the modulation strength or the
#: knob its paper varies; methods without options (normal, ume) have none
TUNE: dict[str, tuple[str, ...]] = {
    "agm": ("alpha=0.1:3:log", "zero_pass_mode=eval,train"),
    "cml": ("lam=0.01:1:log",),
    "gblend": ("super_epoch=1:10:int",),
    "greedy": ("epsilon=0.001:0.1:log",),
    "lfm": ("weight=0.1:3:log",),
    "mla": ("projection=false,true",),
    "mmcosine": ("scale=3:30:log",),
    "mmpareto": ("gamma=1:3",),
    "modality_valuation": ("part_ratio=0.05:0.5",),
    "mslr": ("base_audio=0.5:1.5",),
    "ogm_ge": ("alpha=0.05:2:log",),
    "opm": ("q_base=0.1:0.9",),
    "pmr": ("alpha=0.1:3:log",),
    "rate_reg": ("strength=0.01:3:log",),
    "reconboost": ("w1=1:10:log",),
    "relearn": ("lam=0.3:10:log",),
    "sample_valuation": ("warmup=1:7:int",),
    "umt": ("lam=0.3:30:log",),
}


def _official(method: str) -> dict:
    from ..training import METHODS

    return {
        f.name: f.default
        for f in dataclasses.fields(METHODS.get(method).factory.config_class)
        if f.default is not dataclasses.MISSING
    }


#: the warm-up / start options :func:`epoch_options` fits
WARMUPS = (("opm", "start"), ("greedy", "start"), ("sample_valuation", "warmup"), ("modality_valuation", "warmup"))


def epoch_options(epochs: int) -> dict[str, dict]:
    """The epoch-valued official options that do not fit a run of ``epochs`` epochs, fitted by one stated rule
    each; every other option keeps its official value (read from the method's defaults):

    - a warm-up or start (OPM's ``start``, Greedy's ``start``, the valuations' ``warmup``) is kept when it leaves
      at least half the run modulated, else 1 (the first epoch unmodulated, as the warm-ups intend);
    - re-learning's re-initialisations (every ``reinit_epoch`` epochs, ``reinit_num`` times) are kept when they
      fall within the first three quarters of the run, else the same number spread evenly over them;
    - ReconBoost's stages (``epochs_per_stage`` boosting + ``correct_epoch`` rectification epochs) are kept when
      each modality gets two stages, else ``e + e`` epochs with ``e = max(1, epochs // 8)``;
    - G-Blending's ``super_epoch`` is kept when shorter than the run (two or more estimates), else the run (one
      estimate, at the start).
    """
    out: dict[str, dict] = {}
    for method, key in WARMUPS:
        if _official(method)[key] > epochs / 2:
            out[method] = {key: min(1, epochs - 1)}
    rl = _official("relearn")
    span = max(1, 3 * epochs // 4)
    if rl["reinit_epoch"] * rl["reinit_num"] > span:
        out["relearn"] = {"reinit_epoch": max(1, span // rl["reinit_num"])}
    rb = _official("reconboost")
    if 2 * 2 * (rb["epochs_per_stage"] + rb["correct_epoch"]) > epochs:
        e = max(1, epochs // 8)
        out["reconboost"] = {"epochs_per_stage": e, "correct_epoch": e}
    if _official("gblend")["super_epoch"] >= epochs:
        out["gblend"] = {"super_epoch": epochs}
    return out


def default_recipe(epochs: int = 4) -> TrainConfig:
    """The study's recipe unless the user gives one: the demo network on digits-av (hard), lr x0.1 for the last
    epoch."""
    return demo_config(epochs=epochs, milestones=[max(1, epochs - 1)] if epochs > 1 else [])


def benchmark_recipe() -> TrainConfig:
    """The ``--benchmark`` recipe: the demo network on digits-av (hard) for :data:`BENCHMARK`'s epochs."""
    return demo_config(epochs=BENCHMARK["epochs"], milestones=list(BENCHMARK["milestones"]))


@dataclass(frozen=True)
class Cell:
    """One row: ``method`` with ``variant`` (``"official"`` / ``"tuned"``) options, with or without IEMF."""

    method: str
    variant: str = "official"
    iemf: bool = False

    @property
    def folder(self) -> str:
        return f"{self.method}{VARIANT_SUFFIX[self.variant]}{'+iemf' if self.iemf else ''}"

    @property
    def label(self) -> str:
        return f"{self.method} ({self.variant}){' + IEMF' if self.iemf else ''}"


#: the row variants and their run folders' suffixes; ``long`` is Normal at twice the budget (the plateau check)
VARIANT_SUFFIX = {"official": "", "tuned": "-tuned", "long": "-2x"}
NORMAL = Cell("normal")
NORMAL_KEY = ("normal", "official", False)  # its rows' key in the summary: (method, variant, with_iemf)
LONG = Cell("normal", "long")


@dataclass
class MethodsStudyConfig:
    """``methods``: None = every registered method but :data:`EXCLUDED`; ``tuned``: per method, options over its
    defaults (``--tuned FILE`` or ``--tune``); ``long_check``: also train Normal for twice the epochs (milestones
    scaled), the plateau check; ``recipe``: the training config every run starts from (None:
    :func:`default_recipe`); ``runs``: seeds, folder and executor."""

    methods: tuple[str, ...] | None = None
    iemf: bool = True
    tuned: dict[str, dict] = field(default_factory=dict)
    long_check: bool = False
    recipe: TrainConfig | None = None
    runs: RunOptions = field(default_factory=lambda: RunOptions(seeds=list(range(5)), out="runs/methods"))

    def __post_init__(self) -> None:
        self.recipe = self.recipe or default_recipe()

    def method_names(self) -> list[str]:
        from ..training import METHODS

        names = list(self.methods) if self.methods else [n for n in METHODS.names() if n not in EXCLUDED]
        for option, given in (("--methods", names), ("--tuned", self.tuned)):
            unknown = [n for n in given if n not in METHODS]
            if unknown:
                raise ConfigError(f"{option}: {METHODS.unknown(unknown[0])}")
        return ["normal", *[n for n in names if n != "normal"]]

    def options(self, method: str, variant: str = "official") -> dict:
        """The method's options over its defaults: the epoch options fitted to the run, then (``tuned``) the tuned
        values."""
        fitted = epoch_options(self.recipe.epochs).get(method, {}) if self.recipe.epochs >= 2 else {}
        return {**fitted, **(self.tuned.get(method, {}) if variant == "tuned" else {})}

    def has_tuned_row(self, method: str) -> bool:
        """Tuned values that differ from the official ones (equal ones would repeat the official row)."""
        tuned = self.tuned.get(method, {})
        official = {**_official(method), **self.options(method)} if method != "normal" else {}
        return bool(tuned) and any(official.get(k) != v for k, v in tuned.items())


def load_tuned(path: str | Path) -> dict[str, dict]:
    """A ``--tuned`` file: ``{method: {option: value}}`` (YAML, as ``snn-msi sweep`` writes ``tuned.yaml``)."""
    from ..training import METHODS

    d = load_yaml(path)
    bad = [k for k, v in d.items() if not isinstance(v, dict)]
    if bad:
        raise ConfigError(f"--tuned {path}: expected method: {{option: value}}, got {bad[0]}: {d[bad[0]]!r}")
    unknown = [k for k in d if k not in METHODS]
    if unknown:
        raise ConfigError(f"--tuned {path}: {METHODS.unknown(unknown[0])}")
    return d


def cells(scfg: MethodsStudyConfig) -> list[Cell]:
    """Every row, per method: official, official + IEMF (where it composes), tuned (where tuned values differ)."""
    from ..training.policies import composes_with_iemf

    rows = []
    for m in scfg.method_names():
        rows.append(Cell(m))
        if m == "normal" and scfg.long_check:
            rows.append(LONG)
        with_iemf = composes_with_iemf(m)
        if scfg.iemf and with_iemf.composes and not with_iemf.itself:  # IEMF's own row has it already
            rows.append(Cell(m, iemf=True))
        if scfg.has_tuned_row(m):
            rows.append(Cell(m, "tuned"))
    return rows


def run_config_for(scfg: MethodsStudyConfig, cell: Cell, seed: int) -> TrainConfig:
    """The recipe with one row's method (options, IEMF), the seed and the run's folder."""
    out = Path(scfg.runs.out) / cell.folder / f"s{seed}"
    r = scfg.recipe
    if cell.variant == "long":
        r = r.replace(epochs=2 * r.epochs, milestones=[2 * m for m in r.milestones])
    return r.replace(
        seed=seed,
        out=str(out),
        policies=policies_for(cell.method, iemf=cell.iemf, **scfg.options(cell.method, cell.variant)),
    )


#: what ``--tune`` writes in the study's folder (``--report`` reads it back)
TUNED_FILE = "tuned.yaml"


# -- tuning ----------------------------------------------------------------------------------------------------
def tune(scfg: MethodsStudyConfig, trials: int, seed: int) -> dict[str, dict]:
    """``snn-msi sweep`` for every method of the study with :data:`TUNE` options: ``trials`` trials on ``seed``'s
    validation split, the first at the official values (so a tuned value is the official one unless another
    validates better); writes ``out/sweeps/METHOD/`` and ``out/tuned.yaml``. Returns ``{method: {option:
    value}}``.

    The sweeps run side by side on the study's executor, each one's trials one after the other in its own
    process (so no core waits for the slowest trial of a batch, and each trial's pruning sees every trial before
    it); a killed tuning resumes each sweep where it stopped."""
    from .runs import make_executor

    sweeps = tuning_sweeps(scfg, trials, seed)
    found = make_executor(scfg.runs).map(_tune_one, sweeps, [f"tune {s.method}" for s in sweeps])
    tuned = {s.method: best for s, best in zip(sweeps, found, strict=True) if best}
    write_text(Path(scfg.runs.out) / TUNED_FILE, yaml.safe_dump(tuned, sort_keys=False))
    return tuned


def tuning_sweeps(scfg: MethodsStudyConfig, trials: int, seed: int) -> list:
    """The :class:`~snn_msi.reports.sweep.SweepConfig` of each method :func:`tune` tunes (in ``out/sweeps/``)."""
    from .sweep import SweepConfig, parse_param

    sweeps = []
    for m in [n for n in scfg.method_names() if n in TUNE]:
        params = [parse_param(t) for t in TUNE[m]]
        start = {**_official(m), **scfg.options(m)}
        out = str(Path(scfg.runs.out) / "sweeps" / m)
        sweeps.append(
            SweepConfig(
                method=m,
                params=params,
                trials=trials,
                recipe=scfg.recipe.replace(policies=policies_for(m, **scfg.options(m))),
                runs=dataclasses.replace(scfg.runs, seeds=[seed], out=out, jobs=1, executor="local", progress=False),
                first={p.name: start[p.name] for p in params},
                prune=False,  # 5 trials to the end: early epochs are too noisy to cut one (docs/methods.md)
            )
        )
    return sweeps


def tuning_progress(scfg: MethodsStudyConfig, trials: int, seed: int) -> tuple[int, int]:
    """``(trials finished, trials in all)`` of the tuning in ``out/sweeps/`` (a trial is finished when its run
    has written its results; a sweep with a trial at 100 % validation accuracy has no more)."""
    from .sweep import CEILING

    done = total = 0
    for sweep in tuning_sweeps(scfg, trials, seed):
        finished_trials = [results(p.parent) for p in Path(sweep.runs.out).glob("trial_*/results.json")]
        done += len(finished_trials)
        ended = any(r.best_val_acc >= CEILING for r in finished_trials)  # the sweep ends there (sweep.CEILING)
        total += len(finished_trials) if ended else sweep.budget()
    return done, total


def tuning_choices(scfg: MethodsStudyConfig, trials: int, seed: int) -> list[tuple[str, str]]:
    """What each sweep that has ended chose (its ``tuned.yaml``): ``("agm", "alpha=1.77, zero_pass_mode=train")``,
    or ``("cml", "the official values")`` where its first trial, the official values, was not beaten."""
    lines = []
    for sweep in tuning_sweeps(scfg, trials, seed):
        chosen = Path(sweep.runs.out) / TUNED_FILE
        if chosen.is_file():
            values = load_tuned(chosen).get(sweep.method) or {}
            official = all(values.get(k) == v for k, v in sweep.first.items())
            lines.append((sweep.method, "the official values" if official else _values(values, "=")))
    return lines


def _tune_one(sweep) -> dict | None:
    """One method's sweep (in this process); its best trial's values, None when no trial completed."""
    from .sweep import run_sweep

    rows = run_sweep(sweep)
    best = next((r for r in rows if r["state"] == "complete"), None)
    return {p.name: best[p.name] for p in sweep.params} if best else None


# -- the study ---------------------------------------------------------------------------------------------------
def run_methods_study(scfg: MethodsStudyConfig, report: bool = False) -> list[dict]:
    """Run (or resume) the study; write ``runs.csv`` (every run: test metrics, compute, the last epoch's training
    accuracy and each method's logged quantities averaged over the run, e.g. ``agm/acc_eval_mode``),
    ``summary.csv``, ``summary.md`` and ``per_method.md`` in ``scfg.runs.out`` and print the table. Returns the
    summary rows.

    ``report``: train nothing; the tables from the runs already finished in the folder (a running or stopped
    study's table so far: a row's ``n`` counts its finished seeds, and paired columns use the seeds both rows
    have)."""
    seeds = list(scfg.runs.seeds)
    specs = [(c, s) for c in cells(scfg) for s in seeds]
    configs = [run_config_for(scfg, *sp) for sp in specs]  # checked before anything is written
    out = Path(scfg.runs.out)
    total = len(specs)
    if report:
        if not out.is_dir():
            raise ConfigError(f"--out {out}: no such study folder")
        kept = [i for i, c in enumerate(configs) if finished(c)]
        asked = {Path(c.out).resolve() for c in configs}
        others = [p.parent for p in out.glob("*/*/config.yaml") if p.parent.resolve() not in asked]
        others += [Path(c.out) for c in configs if (Path(c.out) / "results.json").is_file() and not finished(c)]
        if not kept and others:
            raise ConfigError(
                f"--out {out}: none of the {total} runs these options ask for is there, but {len(others)} run "
                f"folder(s) of other settings (e.g. {others[0]}): --report takes the options the study was run "
                "with (--methods, --epochs, --seeds, --model, ...)"
            )
        specs, configs = [specs[i] for i in kept], [configs[i] for i in kept]
        print(f"{len(specs)} of {total} runs finished in {out} (--report: nothing trained)")
        if not specs:
            return []
    out.mkdir(parents=True, exist_ok=True)
    t0 = time.time()
    done = [results(c.out) for c in configs] if report else run_many(configs, scfg.runs)
    wall = time.time() - t0
    rows = [
        {
            "method": c.method,
            "variant": c.variant,
            "with_iemf": c.iemf,
            "seed": s,
            **{k: v for k, v in r.to_dict().items() if k in _KEYS or k.startswith("compute_")},
            **_curve(cfg.out),
            **{f"{p}/{k}": v for p, fields in r.policy_means.items() for k, v in fields.items()},
        }
        for (c, s), r, cfg in zip(specs, done, configs, strict=True)
    ]
    columns = list(dict.fromkeys(k for row in rows for k in row))  # each method's logged means: its own columns
    write_csv(out / "runs.csv", rows, columns)
    summary = summarise(rows, seeds, out)
    write_csv(out / "summary.csv", summary)
    md = markdown_table(summary, scfg)
    write_text(out / "summary.md", md + "\n")
    write_text(out / "per_method.md", per_method_table(summary, scfg) + "\n")
    print(md)
    done_in = "" if report else f" in {wall / 60:.1f} min"
    print(f"\n{len(specs)} runs{done_in}; wrote {out / 'summary.md'} and {out / 'per_method.md'}")
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
_MEANS = ("acc_audio", "acc_visual", "f1", "map", "shapley_audio", "shapley_visual", "train_acc")
_COMPUTE = ("compute_samples", "compute_steps", "compute_seconds", "compute_cpu_seconds", "compute_gop")


def _curve(out: str) -> dict:
    """The last epoch's training accuracy and the run's wall and CPU time (set-up and every epoch) from its
    ``metrics.csv``."""
    rows = read_csv(Path(out) / "metrics.csv")
    last = rows[-1] if rows else {}
    return {k: float(last.get(k, math.nan)) for k in ("train_acc", "compute_seconds", "compute_cpu_seconds")}


def matched_val_acc(curve: list[tuple[float, float]], budget: float) -> float:
    """The best validation accuracy a run reached within ``budget`` training samples (the points of its
    :func:`~snn_msi.training.runlog.accuracy_curve` whose cumulative ``compute_samples`` is at most ``budget``); NaN
    when its first point already used more."""
    return max((a for n, a in curve if n <= budget * 1.001), default=math.nan)


def summarise(rows: list[dict], seeds: list[int], out: Path | None = None) -> list[dict]:
    """Per row: accuracy mean and 95 % CI, paired differences from Normal, (IEMF rows) from the method alone and
    (tuned rows) from the method's official row with the same IEMF setting, means of the other metrics, compute
    relative to Normal (mean over seeds of per-seed ratios) and, read from the run folders in ``out``: the best
    validation accuracy within Normal's samples (``val_acc_at_normal_samples``, mean over the ``matched_n`` seeds
    that have a validation point within them) and the validation gain over the last quarter of the run's training
    samples (``last_quarter_gain``, points, :func:`~snn_msi.reports.stats.last_quarter_gain`, the
    inverse-effectiveness study's rule)."""
    by = {(r["method"], r["variant"], r["with_iemf"], r["seed"]): r for r in rows}

    def acc(key, s):
        r = by.get((*key, s))
        return r["test_acc"] if r is not None else None

    normal = NORMAL_KEY
    summary = []
    for key in dict.fromkeys((r["method"], r["variant"], r["with_iemf"]) for r in rows):
        runs = [by[(*key, s)] for s in seeds if (*key, s) in by]
        mean, lo, hi = t_interval([r["test_acc"] for r in runs])

        def paired(other, key=key):
            """Mean, 95 % CI and the number of seeds both rows have."""
            d = [acc(key, s) - acc(other, s) for s in seeds if acc(key, s) is not None and acc(other, s) is not None]
            return (*t_interval(d), len(d)) if key != other and d else (math.nan, math.nan, math.nan, 0)

        vs_normal = paired(normal)
        vs_alone = paired((key[0], key[1], False)) if key[2] else (math.nan, math.nan, math.nan, 0)
        vs_official = paired((key[0], "official", key[2])) if key[1] == "tuned" else (math.nan, math.nan, math.nan, 0)
        ratios = {}
        for k in _COMPUTE:
            rs = [
                by[(*key, s)].get(k, math.nan) / by[(*normal, s)].get(k, math.nan)
                for s in seeds
                if (*key, s) in by and (*normal, s) in by
            ]
            ratios[f"{k}_x_normal"] = float(np.mean(rs)) if rs else math.nan
        curves = {
            s: accuracy_curve(out / Cell(*key).folder / f"s{s}") for s in seeds if out is not None and (*key, s) in by
        }
        matched = [
            matched_val_acc(c, by[(*normal, s)].get("compute_samples", math.nan))
            for s, c in curves.items()
            if (*normal, s) in by
        ]
        matched = [a for a in matched if math.isfinite(a)]
        quarter = [last_quarter_gain(c) for c in curves.values()]
        quarter = [g for g in quarter if math.isfinite(g)]
        summary.append(
            {
                "method": key[0],
                "variant": key[1],
                "with_iemf": key[2],
                "n": len(runs),
                "acc_mean": mean,
                "acc_ci_low": lo,
                "acc_ci_high": hi,
                "diff_vs_normal": vs_normal[0],
                "diff_ci_low": vs_normal[1],
                "diff_ci_high": vs_normal[2],
                "diff_n": vs_normal[3],
                "iemf_effect": vs_alone[0],
                "iemf_effect_ci_low": vs_alone[1],
                "iemf_effect_ci_high": vs_alone[2],
                "iemf_n": vs_alone[3],
                "tuning_effect": vs_official[0],
                "tuning_effect_ci_low": vs_official[1],
                "tuning_effect_ci_high": vs_official[2],
                "tuning_n": vs_official[3],
                "val_acc_at_normal_samples": float(np.mean(matched)) if matched else math.nan,
                "matched_n": len(matched),
                "last_quarter_gain": float(np.mean(quarter)) if quarter else math.nan,
                **{
                    k: float(np.mean([r.get(k if k == "train_acc" else f"test_{k}", math.nan) for r in runs]))
                    for k in _MEANS
                },
                **{k: float(np.mean([r.get(k, math.nan) for r in runs])) for k in _COMPUTE},
                **ratios,
            }
        )
    return summary


def _pct(x: float) -> str:
    return "-" if not math.isfinite(x) else f"{100 * x:.1f}"


def _pts(d: float, lo: float, hi: float) -> str:
    def one(x: float) -> str:
        return f"{100 * x:+.1f}" if math.isfinite(x) else "-"

    return "-" if not math.isfinite(d) else f"{one(d)} [{one(lo)}, {one(hi)}]"


def _x(v: float) -> str:
    return "-" if not math.isfinite(v) else f"{v:.2f}"


def markdown_table(summary: list[dict], scfg: MethodsStudyConfig | None = None) -> str:
    """The table, one line per row: accuracy with intervals, paired differences, training accuracy, accuracy at
    Normal's samples and compute relative to Normal; under it :func:`notes`."""
    lines = [
        "| method | options | IEMF | n | fused test acc % [95% CI] | vs normal (pts) | IEMF vs alone (pts) | "
        "tuned vs official (pts) | train acc % | val acc at normal's samples % | samples | steps | wall | CPU | GOP | "
        "audio / visual head % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        lines.append(
            f"| {r['method']} | {r['variant']} | {'yes' if r['with_iemf'] else 'no'} | {r['n']} | "
            f"{_pct(r['acc_mean'])} [{_pct(r['acc_ci_low'])}, {_pct(r['acc_ci_high'])}] | "
            f"{_pts(r['diff_vs_normal'], r['diff_ci_low'], r['diff_ci_high'])} | "
            f"{_pts(r['iemf_effect'], r['iemf_effect_ci_low'], r['iemf_effect_ci_high'])} | "
            f"{_pts(r['tuning_effect'], r['tuning_effect_ci_low'], r['tuning_effect_ci_high'])} | "
            f"{_pct(r['train_acc'])} | {_matched(r, r['n'])} | "
            + " | ".join(_x(r[f"{k}_x_normal"]) for k in _COMPUTE)
            + f" | {_pct(r['acc_audio'])} / {_pct(r['acc_visual'])} |"
        )
    return "\n".join([*lines, "", *notes(summary, scfg)])


def notes(summary: list[dict], scfg: MethodsStudyConfig | None = None) -> list[str]:
    """What both tables need under them: what Normal's compute was (the columns are ratios to it), whether it
    plateaued (:func:`plateau_lines`), and (with ``scfg``) the recipe, the epoch options fitted to it and the tuned
    values."""
    lines = []
    n = _normal_row(summary)
    if n is not None:
        lines.append(
            f"Compute columns: x Normal (mean of per-seed ratios); Normal used {n['compute_samples']:.0f} samples, "
            f"{n['compute_steps']:.0f} steps, {n['compute_seconds']:.0f} s wall, {n['compute_cpu_seconds']:.0f} s "
            f"CPU and {n['compute_gop']:.1f} GOP per run (samples: clips through the encoders while training, "
            "copies, teachers and extra passes included; CPU: the run's process, unlike the wall time not "
            "lengthened by other work on the machine; GOP: forward synaptic operations, estimated)."
        )
    lines += plateau_lines(summary, scfg.recipe.epochs if scfg is not None else None)
    if scfg is not None:
        r = scfg.recipe
        methods = dict.fromkeys(x["method"] for x in summary)
        fitted = "; ".join(f"{m} {_values(scfg.options(m))}" for m in methods if scfg.options(m))
        tuned = "; ".join(f"{m} {_values(v)}" for m, v in scfg.tuned.items() if m in methods and scfg.has_tuned_row(m))
        lines.append(
            f"{r.data.dataset}, preset {r.data.preset}, {r.model.neuron} T={r.model.T} widths "
            f"{list(r.model.widths)}, {r.epochs} epochs (lr x{r.gamma} at {list(r.milestones)}), seeds "
            f"{_seeds(scfg.runs.seeds)}; epoch options fitted to the run: {fitted or 'none'}; tuned: {tuned or 'none'}."
        )
    return lines


def _normal_row(summary: list[dict]) -> dict | None:
    return next((r for r in summary if (r["method"], r["variant"], r["with_iemf"]) == NORMAL_KEY), None)


def _matched(r: dict, n: int) -> str:
    """The accuracy at matched compute, with the number of seeds it is over where fewer than ``n``."""
    k = r.get("matched_n", 0)
    return _pct(r["val_acc_at_normal_samples"]) + (fewer_seeds(k, n) if k else "")


def _paired(r: dict, value: str, ci: str, k: int, n: int) -> str:
    """A paired difference ``r[value]`` with its interval ``r[ci_low]``, ``r[ci_high]``, over ``k`` seeds (said
    where fewer than ``n``); "-" without a seed both rows have."""
    return _pts(r[value], r[f"{ci}_low"], r[f"{ci}_high"]) + fewer_seeds(k, n) if k else "-"


def per_method_table(summary: list[dict], scfg: MethodsStudyConfig | None = None) -> str:
    """The README's table: per method its ``official`` row (with IEMF's effect on it, against the method alone)
    and, where tuning chose other values, its ``tuned`` row (against the official one); each with the accuracy, its
    difference from Normal, the last epoch's training accuracy, the best validation accuracy within Normal's
    training samples (accuracy at matched compute) and compute relative to Normal; methods sorted by the official
    row's accuracy; under it :func:`notes`. The options column says where tuning kept the official values and
    the IEMF column why a method has no IEMF row. A value over fewer seeds than the study's (a study still
    running, read by ``--report``) says how many it has."""
    from ..training.policies import composes_with_iemf

    rows = {(r["method"], r["variant"], r["with_iemf"]): r for r in summary}
    seeds = len(scfg.runs.seeds) if scfg is not None else max((r["n"] for r in summary), default=0)

    def n(r: dict) -> str:
        return fewer_seeds(r["n"], seeds)

    def accuracy(r: dict) -> str:
        vs = "-" if r["method"] == "normal" else _paired(r, "diff_vs_normal", "diff_ci", r["diff_n"], seeds)
        return f"{_pct(r['acc_mean'])} [{_pct(r['acc_ci_low'])}, {_pct(r['acc_ci_high'])}]{n(r)} | {vs}"

    def rest(r: dict) -> str:
        compute = " / ".join(_x(r[f"{k}_x_normal"]) for k in _COMPUTE)
        return f"{_pct(r['train_acc'])} | {_matched(r, seeds)} | {compute} |"

    methods = sorted(
        dict.fromkeys(r["method"] for r in summary if r["variant"] != "long"),
        key=lambda m: -rows[(m, "official", False)]["acc_mean"] if (m, "official", False) in rows else 0.0,
    )
    lines = [
        "| method | options | fused acc % [95% CI] | vs normal (pts) | tuned vs official (pts) | "
        "+ IEMF vs the method alone (pts) | train acc % | val acc at normal's samples % | "
        "samples / steps / wall / CPU / GOP (x normal) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for m in methods:
        o = rows.get((m, "official", False))
        if o is None:
            continue
        i, t = rows.get((m, "official", True)), rows.get((m, "tuned", False))
        with_iemf = composes_with_iemf(m)
        iemf = (
            _paired(i, "iemf_effect", "iemf_effect_ci", i["iemf_n"], seeds)
            if i is not None
            else "-"
            if with_iemf.composes
            else f"no IEMF row: {with_iemf.reason}"
        )
        lines.append(f"| {m} | {_official_options(m, scfg)} | {accuracy(o)} | - | {iemf} | {rest(o)}")
        if t is not None:
            values = scfg.tuned.get(m, {}) if scfg is not None else {}
            gain = _paired(t, "tuning_effect", "tuning_effect_ci", t["tuning_n"], seeds)
            lines.append(f"| {m} | tuned: {_values(values) or '?'} | {accuracy(t)} | {gain} | - | {rest(t)}")
    return "\n".join([*lines, "", *notes(summary, scfg)])


def _official_options(method: str, scfg: MethodsStudyConfig | None) -> str:
    """The options cell of a method's official row: whether it has options, whether they were tuned, and whether
    tuning kept them."""
    if method == "normal":
        return "-"
    if not _official(method):
        return "official (no options)"
    if scfg is None or not scfg.tuned:  # no tuning asked for: no tuned rows at all
        return "official"
    if method not in scfg.tuned:
        return "official (not tuned)"
    if not scfg.has_tuned_row(method):
        return f"official; tuning kept them ({_values(scfg.tuned[method])})"
    return "official"


def _values(values: dict, sep: str = " ") -> str:
    """``{option: value}`` as text: ``alpha 0.0714, zero_pass_mode eval`` (floats to 3 significant digits)."""
    return ", ".join(f"{k}{sep}{v:.3g}" if isinstance(v, float) else f"{k}{sep}{v}" for k, v in values.items())


def plateau_lines(summary: list[dict], epochs: int | None = None) -> list[str]:
    """Whether Normal has plateaued at the budget: with the ``long`` row, Normal at twice the epochs against
    Normal (paired test accuracy; plateaued when the mean gain is below
    :data:`~snn_msi.reports.stats.PLATEAU_POINTS`); else Normal's validation gain over the last quarter of its runs
    (its row's ``last_quarter_gain``), which is printed either way. ``epochs``: the run's, for the text."""
    lines = []
    normal = _normal_row(summary)
    gain = normal.get("last_quarter_gain", math.nan) if normal is not None else math.nan
    if math.isfinite(gain):
        run = f"its {epochs} epochs' training samples (after epoch {0.75 * epochs:g})" if epochs else "its run"
        lines.append(
            f"Normal's best validation accuracy in the last quarter of {run} minus the best before it: {gain:+.2f} "
            "points (mean over seeds)."
        )
    long = next((r for r in summary if (r["method"], r["variant"]) == (LONG.method, LONG.variant)), None)
    if long is not None and math.isfinite(long["diff_vs_normal"]):
        d = 100 * long["diff_vs_normal"]
        gain_long = _pts(long["diff_vs_normal"], long["diff_ci_low"], long["diff_ci_high"])
        verdict = "plateaued" if d < PLATEAU_POINTS else "NOT plateaued: this budget is short of convergence"
        lines.append(
            f"Plateau check: Normal trained for twice the epochs gains {gain_long} points of test accuracy (paired "
            f"by seed, {long['diff_n']} seed{'s' * (long['diff_n'] != 1)}): {verdict} (criterion: mean gain < "
            f"{PLATEAU_POINTS} points)."
        )
    elif math.isfinite(gain):
        verdict = "plateaued" if gain < PLATEAU_POINTS else "NOT plateaued: this budget shows early training"
        lines.append(f"Plateau (last-quarter criterion < {PLATEAU_POINTS} points): {verdict}.")
    return lines


def _seeds(seeds: list[int]) -> str:
    return (
        f"{seeds[0]}-{seeds[-1]}"
        if seeds == list(range(seeds[0], seeds[-1] + 1)) and len(seeds) > 2
        else (",".join(map(str, seeds)))
    )


@register_study(
    "methods",
    description="every balancing method on the recipe (default: digits-av, hard), as its authors ran it "
    "and tuned, alone and with IEMF, over seeds: accuracy with 95% CI and compute",
)
def _methods_study_command(q) -> None:
    """``snn-msi study methods``."""
    from ..argtypes import positive_int

    d = MethodsStudyConfig()
    b = BENCHMARK
    q.add_argument("--methods", nargs="+", help="registered method names (default: all but iemf, constant, noise)")
    q.add_argument("--no-iemf", action="store_true", help="only the methods alone")
    q.add_argument(
        "--tuned", help="YAML {method: {option: value}}: a tuned row per method (snn-msi sweep's tuned.yaml)"
    )
    q.add_argument(
        "--tune",
        type=positive_int,
        metavar="TRIALS",
        help="tune every method's key options first (snn-msi sweep, TRIALS trials each, the first at the official "
        "values, on --tune-seed's validation split); writes OUT/tuned.yaml and adds the tuned rows",
    )
    q.add_argument(
        "--tune-seed", type=int, default=b["tune_seed"], help=f"the seed tuning trains (default {b['tune_seed']})"
    )
    q.add_argument(
        "--benchmark",
        action="store_true",
        help=f"the benchmark setting of the README's table: the demo recipe for {b['epochs']} epochs (lr x0.1 after "
        f"epoch {b['milestones'][0]}), {len(d.runs.seeds)} seeds, --tune {b['tune']}, official, tuned and IEMF rows, a "
        f"plateau check (Normal for {2 * b['epochs']} epochs); {BENCHMARK_TIME}",
    )
    q.add_argument(
        "--report",
        action="store_true",
        help="train nothing: the tables from the runs already finished in --out (a running or stopped study's "
        "table so far; the tuned rows from OUT/tuned.yaml once the tuning has written it)",
    )
    q.add_argument(
        "--plateau-check",
        action="store_true",
        help="also train Normal for twice the epochs: has it plateaued at this budget? (on with --benchmark)",
    )
    add_run_arguments(q, seeds=len(d.runs.seeds), out=d.runs.out, jobs=d.runs.jobs)
    q.set_defaults(func=_run)


def study_config(args) -> tuple[MethodsStudyConfig, int | None]:
    """The study and its tuning trials (None: no tuning) that ``snn-msi study methods``'s arguments ask for."""
    if args.tune_seed != BENCHMARK["tune_seed"] and args.tune is None and not args.benchmark:
        raise ConfigError(f"--tune-seed {args.tune_seed}: the seed --tune trains (give --tune TRIALS too)")
    if args.benchmark:
        recipe = study_recipe(args, benchmark_recipe())
        trials = args.tune if args.tune is not None else BENCHMARK["tune"]
    else:
        recipe = study_recipe(args, default_recipe(args.epochs or 4))
        trials = args.tune
    cfg = MethodsStudyConfig(
        methods=tuple(args.methods) if args.methods else None,
        iemf=not args.no_iemf,
        tuned=load_tuned(args.tuned) if args.tuned else {},
        long_check=args.benchmark or args.plateau_check,
        recipe=recipe,
        runs=run_options(args),
    )
    return cfg, trials


def _run(args) -> int:
    cfg, trials = study_config(args)
    runs = cfg.runs
    if args.report:
        written = Path(runs.out) / TUNED_FILE
        if trials and written.is_file():
            cfg.tuned = {**load_tuned(written), **cfg.tuned}
        run_methods_study(cfg, report=True)
        if trials and not written.is_file():
            done, total = tuning_progress(cfg, trials, args.tune_seed)
            print(
                f"tuning: {done} of {total} trials finished in {Path(runs.out) / 'sweeps'}; the tuned rows come "
                f"once every sweep has ended and written {written}"
            )
            for method, chosen in tuning_choices(cfg, trials, args.tune_seed):
                print(f"  ended: {method}: {chosen} (its trials: sweeps/{method}/summary.md)")
        return 0
    if trials:  # the official and IEMF rows first (a table while the tuning runs), then tune, then the tuned rows
        run_methods_study(cfg)
        cfg.tuned = {**tune(cfg, trials, args.tune_seed), **cfg.tuned}
    run_methods_study(cfg)
    return 0
