"""The inverse-effectiveness study: weaken the modalities step by step, train each method over many seeds, and ask
(1) whether IEMF's advantage over Normal grows as the cues weaken (a trend test, not overlapping intervals), (2)
whether IEMF's *adaptive* coefficient matters (against a constant one, in every cell), (3) how much of the
paper's comparison is the loss setting, (4) what the ``msi`` integration layer changes next to ``concat``, and
(5) how much computation each method needs to reach Normal's accuracy.

Design. A *cell* is a fusion and a loss setting: ``always`` = every method trains the unimodal heads (the
cleaner control); ``with_iemf`` = only methods that read the heads train them (the original code's structure);
``original`` = ``with_iemf`` with the original loss, label smoothing 0.1 on every term (:data:`ORIGINAL_LOSS`).
The first cell (default ``concat`` / ``always``) runs every method; every other cell runs ``normal``, ``iemf``
and the constant-coefficient control. In a ``with_iemf`` cell, IEMF and its control train the heads anyway, so
their runs are those of the ``always`` cell of the same fusion (identical training; not run twice). Every run of
a level and seed is paired with Normal's run of the same cell, level and seed.

- ``normal``: no modulation; ``iemf``: the adaptive coefficient ``1 + tanh(1 - mean unimodal score / fused score)``
  with gradient noise; ``constant``: a fixed coefficient equal to IEMF's mean at that level and cell, the same
  noise; ``noise``: coefficient 1, the same noise. The controls run at ``control_levels`` (default: every level but
  the strongest, where IEMF and Normal differ).
- Per level: fused test accuracy, multisensory gain (fused minus the best unimodal head), paired differences
  against Normal (and IEMF against the constant control) with 95 % Student-t intervals over seeds.
- Trend: for each seed, the OLS slope of the paired difference (method - Normal) on the level's strength (mean SNR
  of the two modalities, dB); the mean slope over seeds with its 95 % t-interval (seeds are the independent units,
  so the correlation of a seed's runs across levels is accounted for). Inverse effectiveness predicts a negative
  slope: a larger advantage at lower SNR. Reported per 10 dB.
- Equivalence: a "no effect" is stated only where a TOST (two one-sided t-tests at 5 %) puts the paired difference
  within +-``margin`` points (default :data:`MARGIN`, fixed before the runs); otherwise the interval is the claim.
- Compute to reach an accuracy, at step resolution: the recipe validates every ``val_every`` steps (default 5, the
  random state restored so training is unchanged); the targets are fractions (:data:`TARGETS`) of the final
  validation accuracy of Normal's run (same cell, level, seed); each run's cost is ``SOPs per sample x training
  samples`` until the first validation whose accuracy reaches it, with SOPs per sample counted on a test batch
  (:class:`snn_msi.metrics.energy.OpCounter`) with the run's selected weights. Runs that never reach it within
  their epochs (the horizon) are counted as not reached (their ratio is infinite in the median).
- ``msi`` runs also report their integration layer's enhancement (:mod:`snn_msi.reports.probe`) on their own
  level's test samples: does the trained layer's ME grow as the cues weaken?

The recipe is the user's (``--config``, ``--model``, ``--set``, ...; default :func:`default_recipe`, the demo
network for 6 epochs); the study varies only the levels (the data's SNRs), the methods, the fusion and the loss
setting on it. Runs go on an executor and the study resumes (:mod:`snn_msi.reports.runs`): a finished run made
with the same configuration is read back, an interrupted one continues from its ``last.pt``; a folder that holds a
run of another configuration is an error (or, with ``--overwrite``, trained again). Written in ``out``:
``runs.csv``, ``summary.csv``, ``trend.csv``, ``compute.csv``, ``summary.md`` (all tables) and
``inverse_effectiveness.png``.
"""

from __future__ import annotations

import functools
import json
import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import write_csv, write_text
from ..schema import ConfigError, parse_value
from ..training.config import TrainConfig, demo_config, policies_for
from ..training.policies.iemf import IEMF, ConstantScale, NoiseOnly
from ..training.result import RunResult
from ..training.runlog import accuracy_curve
from . import register_study
from .runs import RunOptions, add_run_arguments, run_many, run_options, study_recipe
from .stats import PLATEAU_POINTS, fewer_seeds, last_quarter_gain, seed_slopes, t_interval, tost

_IEMF, _CONSTANT, _NOISE = IEMF.name, ConstantScale.name, NoiseOnly.name
METHODS = ("normal", _IEMF, _CONSTANT, _NOISE)
LOSSES = ("always", "with_iemf", "original")
#: the ``original`` cell's loss: the original code's (heads trained only with IEMF, label smoothing 0.1 on every term)
ORIGINAL_LOSS = {"unimodal": "with_iemf", "label_smoothing": 0.1, "unimodal_label_smoothing": 0.1}
#: the targets of the compute table: fractions of Normal's final validation accuracy (same cell, level, seed)
TARGETS = (0.9, 0.95, 1.0)
#: the equivalence margin of every "no effect" statement, fixed before the runs (points of fused test accuracy)
MARGIN = 2.0
DEFAULT_METHODS = ("normal", _IEMF, _CONSTANT)


def default_recipe() -> TrainConfig:
    """The study's recipe unless the user gives one: the demo network, 6 epochs, lr x0.1 at epoch 5, validation
    every 5 steps (compute to accuracy at step resolution)."""
    return demo_config(epochs=6, milestones=[5], val_every=5)


@dataclass
class StudyConfig:
    """What the study trains. ``levels``: ``(audio dB, image dB)``, strongest first; ``control_levels``: where the
    constant / noise controls run (None: every level but the first); ``fusions`` x ``losses``: the cells, the first
    of each is the primary cell (every method), the others run normal, iemf and the constant control
    (``fusions`` None: the recipe's); ``sop_samples``: test samples for counting operations; ``margin``: the
    equivalence margin in points (a paired difference is called equivalent to 0 when a TOST at 5 % puts it within
    +-margin), fixed before the runs; ``recipe``: the training config every run starts from (None:
    :func:`default_recipe`); ``runs``: seeds, folder and executor."""

    levels: list[tuple[float, float]] = field(default_factory=lambda: [(0.0, 10.0), (-10.0, 0.0), (-15.0, -5.0)])
    methods: tuple[str, ...] = DEFAULT_METHODS
    control_levels: list[tuple[float, float]] | None = None
    fusions: tuple[str, ...] | None = None
    losses: tuple[str, ...] = ("always",)
    sop_samples: int = 64
    margin: float = MARGIN
    recipe: TrainConfig | None = None
    runs: RunOptions = field(default_factory=lambda: RunOptions(seeds=list(range(10)), out="runs/study"))

    def __post_init__(self) -> None:
        self.recipe = self.recipe or default_recipe()
        self.fusions = tuple(self.fusions or (self.recipe.model.fusion,))

    def check(self) -> None:
        from ..models import FUSIONS

        bad = [m for m in self.methods if m not in METHODS]
        if bad or "normal" not in self.methods:
            raise ValueError(f"methods must include 'normal' and be some of {', '.join(METHODS)}, got {self.methods}")
        if _CONSTANT in self.methods and _IEMF not in self.methods:
            raise ValueError(f"the constant-coefficient control needs the {_IEMF} runs (add {_IEMF!r} to methods)")
        if not self.levels or self.sop_samples < 1:
            raise ValueError(
                f"levels must be non-empty and sop_samples >= 1, got {len(self.levels)} levels, {self.sop_samples}"
            )
        if len(set(self.levels)) != len(self.levels):
            raise ValueError(f"levels must be distinct, got {self.levels}")
        strength = [sum(math.inf if db is None else db for db in level) / 2 for level in self.levels]
        late = [i for i in range(1, len(strength)) if strength[i] > strength[i - 1]]
        if late:
            i = late[0]
            raise ValueError(
                f"levels go strongest first (the highest SNR; the controls run at the others): "
                f"{self.levels[i]} comes after the weaker {self.levels[i - 1]} (audio dB, image dB)"
            )
        missing = [lv for lv in self.controls() if lv not in self.levels]
        if missing:
            raise ValueError(f"control_levels must be among the levels, got {missing}")
        for f in self.fusions:
            name, _ = fusion_spec(f)
            if name not in FUSIONS:
                raise ValueError(f"fusions: {FUSIONS.unknown(name)}")
            try:  # the options, checked by the model config now rather than by every run
                _config(self, self.levels[0], "normal", 0, cell=(f, "always"))
            except ConfigError as err:
                raise ValueError(f"fusions: {f}: {err}") from None
        if not self.fusions or not self.losses or any(x not in LOSSES for x in self.losses):
            raise ValueError(f"losses must be some of {', '.join(LOSSES)}, got {self.losses}")
        for what, items in (("fusions", self.fusions), ("losses", self.losses), ("methods", self.methods)):
            if len(set(items)) != len(items):  # the same cell twice: its runs would share folders
                raise ValueError(f"{what} must be distinct, got {list(items)}")

    def controls(self) -> list[tuple[float, float]]:
        return list(self.levels[1:] if self.control_levels is None else self.control_levels)

    def cells(self) -> list[tuple[str, str]]:
        return [(f, x) for f in self.fusions for x in self.losses]

    def methods_of(self, cell: tuple[str, str]) -> list[str]:
        """Every cell runs Normal, IEMF and the constant-coefficient control; the noise control only the first."""
        primary = cell == self.cells()[0]
        return [m for m in self.methods if primary or m in ("normal", _IEMF, _CONSTANT)]

    def levels_of(self, method: str) -> list[tuple[float, float]]:
        return self.controls() if method in (_CONSTANT, _NOISE) else list(self.levels)


def _run_dir(out: Path, level: tuple[float, float], method: str, seed: int, cell: str = "") -> Path:
    return out / cell / f"a{level[0]:+g}_v{level[1]:+g}" / f"{method}_s{seed}"


def fusion_spec(spec: str) -> tuple[str, dict]:
    """A cell's fusion: a registered name, optionally with options: ``msi:pool=8,bias=true`` -> ``("msi", {"pool":
    8, "bias": True})`` (values read as ``--fusion-arg`` reads them)."""
    name, _, rest = spec.partition(":")
    options = {}
    for item in filter(None, rest.split(",")):
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ValueError(f"fusions: {spec!r}: options are KEY=VALUE, separated by commas")
        options[key] = parse_value(value, f"fusions {spec} {key}")
    return name, options


def _cell_folder(scfg: StudyConfig, cell: tuple[str, str]) -> str:
    """The primary cell keeps the study's original layout (``out/a+0_v+10/...``), so its runs resume; a fusion's
    options become part of the name (``msi:pool=8`` -> ``msi_pool8``)."""
    fusion = cell[0].replace(":", "_").replace(",", "_").replace("=", "")
    return "" if cell == scfg.cells()[0] else f"{fusion}-{cell[1]}"


def _config(
    scfg: StudyConfig,
    level,
    method: str,
    seed: int,
    coeff: float | None = None,
    cell: tuple[str, str] = ("concat", "always"),
) -> TrainConfig:
    """The recipe with the study's knobs of one run: the level's SNRs, the cell's fusion and loss setting, the
    method, the seed and the run's folder."""
    fusion, loss = cell
    name, fusion_options = fusion_spec(fusion)
    r = scfg.recipe
    own = r.model.fusion_args if name == r.model.fusion else {}  # the recipe's options are its fusion's
    data = {**r.data.to_dict(), "audio_snr_db": level[0], "image_snr_db": level[1], "preset": "clean"}
    out = _run_dir(Path(scfg.runs.out), level, method, seed, _cell_folder(scfg, cell))
    options = {"coeff": coeff} if method == _CONSTANT else {}
    policies = policies_for(method, **options) if method != _IEMF else policies_for(iemf=True)
    return r.replace(
        seed=seed,
        out=str(out),
        data=data,
        model={**r.model.to_dict(), "fusion": name, "fusion_args": {**own, **fusion_options}},
        loss={**r.loss.to_dict(), **(ORIGINAL_LOSS if loss == "original" else {"unimodal": loss})},
        policies=policies,
    )


# -- measuring a finished run -----------------------------------------------------------------------------------
def measure_run(run_dir: str | Path, samples: int = 64) -> dict:
    """Validation curve, operations per sample and (for an integration layer) enhancement of a finished run.

    ``{"val_acc": [per epoch], "train_n": [per epoch], "sops": ..., "macs": ..., "ME_median": ...}``; SOPs and
    MACs per sample are counted on ``samples`` test samples with the run's selected weights (``best.pt``). Cached
    in ``energy/study_compute.json`` (valid while ``best.pt`` is unchanged)."""
    import torch

    from ..metrics.energy import count_ops
    from ..training import load_model, read_csv
    from .probe import features, first_test_samples, incongruent_partner, layer_rates, level_summary, neuron_table

    run_dir = Path(run_dir)
    best = run_dir / "best.pt"
    cache = run_dir / "energy" / "study_compute.json"
    stamp = {"best_mtime_ns": best.stat().st_mtime_ns, "samples": samples, "version": 2}
    if cache.is_file():
        saved = json.loads(cache.read_text())
        if {k: saved.get(k) for k in stamp} == stamp:
            return saved
    rows = read_csv(run_dir / "metrics.csv")
    out = {
        **stamp,
        "val_acc": [float(r["val_acc"]) for r in rows],
        "train_n": [float(r["train_n"]) for r in rows],
        "curve": accuracy_curve(run_dir),
    }
    model, cfg = load_model(best)
    batch = first_test_samples(cfg.data, cfg.seed, samples)
    n = len(batch.label)
    ops = count_ops(model, lambda: model(batch.audio, batch.frames), model.config.T, n)
    out["sops"] = sum(r.sops for r in ops.layers.values()) / n
    out["macs"] = sum(r.macs for r in ops.layers.values()) / n
    if callable(getattr(model.fusion, "responses", None)):
        labels = torch.as_tensor(batch.label)
        a, v = features(model, batch.audio, batch.frames)
        rates = layer_rates(model.fusion, a, v, incongruent_partner(labels))
        s = level_summary(neuron_table(rates, 0.01), rates, labels)
        out.update(
            {
                k: s[k]
                for k in (
                    "ME_median",
                    "ME_population",
                    "AI_median",
                    "AI_population",
                    "rate_CM",
                    "responsive",
                    "frac_super_additive",
                )
            }
        )
    write_text(cache, json.dumps(out))
    return out


def horizon_rows(rows: list[dict], scfg: StudyConfig) -> list[dict]:
    """Per cell and level: Normal's gain over the last quarter of its runs (points, mean and 95 % t-interval over
    seeds) and whether it has plateaued by the methods benchmark's rule (mean gain < :data:`PLATEAU_POINTS`): the
    horizon against which every compute-to-accuracy number is read."""
    out = []
    for cell in scfg.cells():
        for lv in scfg.levels:
            key = (*cell, *lv, "normal")
            gains = [
                r["last_quarter_gain"]
                for r in rows
                if (r["fusion"], r["loss"], r["audio_snr_db"], r["image_snr_db"], r["method"]) == key
                and math.isfinite(r["last_quarter_gain"])
            ]
            if gains:
                mean, lo, hi = t_interval(gains)
                out.append(
                    {
                        "fusion": cell[0],
                        "loss": cell[1],
                        "audio_snr_db": lv[0],
                        "image_snr_db": lv[1],
                        "n": len(gains),
                        "gain": mean,
                        "ci_low": lo,
                        "ci_high": hi,
                        "plateau": mean < PLATEAU_POINTS,
                    }
                )
    return out


def horizon_table(horizon: list[dict]) -> str:
    lines = [
        "| fusion | loss | audio dB | image dB | n | Normal's val acc gain in the last quarter (pts, 95% CI) | "
        f"plateau (< {PLATEAU_POINTS:g} pts)? |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in horizon:
        lines.append(
            f"| {r['fusion']} | {r['loss']} | {r['audio_snr_db']:g} | {r['image_snr_db']:g} | {r['n']} | "
            f"{r['gain']:+.1f} [{r['ci_low']:+.1f}, {r['ci_high']:+.1f}] | {'yes' if r['plateau'] else 'no'} |"
        )
    return "\n".join(lines)


def samples_to_reach(curve: list[tuple[float, float]], target: float) -> float:
    """The training samples at the first point of ``curve`` whose validation accuracy is >= ``target``; inf when
    none is (or the target is NaN)."""
    if math.isnan(target):
        return math.inf
    return next((n for n, acc in curve if acc >= target - 1e-12), math.inf)


@dataclass(frozen=True)
class MeasuredRun:
    """A finished run's results and what :func:`measure_run` counted on it."""

    result: RunResult
    measure: dict


def _run_all(configs: list[TrainConfig], scfg: StudyConfig) -> list[MeasuredRun]:
    """Train (or reuse, or resume) every run on the executor, measure each where it ran (cached in its folder),
    and read results and measures back from the folders."""
    measure = functools.partial(measure_run, samples=scfg.sop_samples)
    done = run_many(configs, scfg.runs, after=measure)
    return [MeasuredRun(r, measure(c.out)) for c, r in zip(configs, done, strict=True)]


# -- the study -------------------------------------------------------------------------------------------------------
Key = tuple  # (fusion, loss, level, method, seed)
PROBED = ("ME_median", "ME_population", "AI_median")  # what runs.csv keeps of an integration layer's probe


def run_study(scfg: StudyConfig) -> list[dict]:
    """Run (or resume) the study; write the tables and the plot in ``scfg.runs.out``. Returns the per-level summary."""
    scfg.check()
    out = Path(scfg.runs.out)
    seeds = list(scfg.runs.seeds)
    specs, configs, reused = [], [], {}
    for cell in scfg.cells():
        for m in scfg.methods_of(cell):
            if m == _CONSTANT:
                continue
            for lv in scfg.levels_of(m):
                for s in seeds:
                    if _reuses_always(scfg, cell, m):
                        reused[(*cell, lv, m, s)] = (cell[0], "always", lv, m, s)
                        continue
                    specs.append((*cell, lv, m, s))
                    configs.append(_config(scfg, lv, m, s, cell=cell))
    out.mkdir(parents=True, exist_ok=True)  # after every config is checked: a bad option writes nothing
    results = dict(zip(specs, _run_all(configs, scfg), strict=True))
    specs2, configs2 = [], []
    for cell in scfg.cells():
        if _CONSTANT not in scfg.methods_of(cell):
            continue
        for lv in scfg.controls():
            runs = [results[_source(reused, (*cell, lv, _IEMF, s))].result for s in seeds]
            coeff = float(np.mean([r.policy_mean(_IEMF, "coeff") for r in runs]))
            for s in seeds:
                if _reuses_always(scfg, cell, _CONSTANT):
                    reused[(*cell, lv, _CONSTANT, s)] = (cell[0], "always", lv, _CONSTANT, s)
                    continue
                specs2.append((*cell, lv, _CONSTANT, s))
                configs2.append(_config(scfg, lv, _CONSTANT, s, coeff, cell))
    results.update(zip(specs2, _run_all(configs2, scfg), strict=True))
    results.update({k: results[src] for k, src in reused.items()})
    rows = run_rows(results)
    write_csv(out / "runs.csv", [{k: v for k, v in r.items() if k != "curve"} for r in rows])
    summary = summarise_cells(rows, scfg, seeds)
    trend = trend_rows(rows, scfg)
    compute = compute_rows(rows, scfg)
    cells = cell_contrasts(rows, scfg)
    write_csv(out / "summary.csv", summary)
    write_csv(out / "trend.csv", trend)
    write_csv(out / "compute.csv", compute)
    if cells:
        write_csv(out / "cells.csv", cells)
    md = report_markdown(summary, trend, compute, rows, scfg, cells)
    write_text(out / "summary.md", md + "\n")
    study_plot(summary, trend, rows, scfg, out / "inverse_effectiveness.png")
    print(md)
    print(f"\nwrote {out / 'runs.csv'}, {out / 'summary.md'}, {out / 'inverse_effectiveness.png'} and the CSV tables")
    return summary


def _reuses_always(scfg: StudyConfig, cell: tuple[str, str], method: str) -> bool:
    """IEMF and its controls train the unimodal heads in both settings: their with_iemf runs are the always runs
    (the constant control's coefficient is IEMF's mean, the same in both)."""
    return cell[1] == "with_iemf" and method != "normal" and "always" in scfg.losses


def _source(reused: dict, key: Key) -> Key:
    return reused.get(key, key)


def _heads_trained(loss: str, method: str) -> bool:
    """Whether a run trained its unimodal heads: always with ``loss.unimodal: always``; with ``with_iemf`` only
    when IEMF (or one of its controls, which read the heads) runs. An untrained head is at chance, and a
    multisensory gain measured against it would mean nothing."""
    return loss == "always" or method != "normal"


def run_rows(results: dict[Key, MeasuredRun]) -> list[dict]:
    """One row per run, with Normal's paired target and the compute to reach it."""
    rows = []
    for (fusion, loss, lv, m, s), run in results.items():
        meas, t = run.measure, run.result.test
        rows.append(
            {
                "fusion": fusion,
                "loss": loss,
                "audio_snr_db": lv[0],
                "image_snr_db": lv[1],
                "method": m,
                "seed": s,
                "test_acc": t.acc,
                "test_acc_audio": t.acc_audio,
                "test_acc_visual": t.acc_visual,
                "gain": t.acc - max(t.acc_audio, t.acc_visual) if _heads_trained(loss, m) else float("nan"),
                "coeff_mean": run.result.policy_mean(m, "coeff") if m != "normal" else float("nan"),
                "final_val_acc": meas["val_acc"][-1],
                "sops_per_sample": meas["sops"],
                "macs_per_sample": meas["macs"],
                "curve": [tuple(p) for p in meas["curve"]],
                "last_quarter_gain": last_quarter_gain(meas["curve"]),
                **{k: meas.get(k, float("nan")) for k in PROBED},
            }
        )
    by = {_row_key(r): r for r in rows}
    for r in rows:
        normal = by.get((r["fusion"], r["loss"], r["audio_snr_db"], r["image_snr_db"], "normal", r["seed"]))
        final = normal["final_val_acc"] if normal else float("nan")
        r["target_val_acc"] = final
        for f in TARGETS:
            samples = samples_to_reach(r["curve"], f * final)
            r[f"samples_to_{_pct(f)}"] = samples
            r[f"sops_to_{_pct(f)}"] = r["sops_per_sample"] * samples
    for r in rows:
        normal = by.get((r["fusion"], r["loss"], r["audio_snr_db"], r["image_snr_db"], "normal", r["seed"]))
        for f in TARGETS:
            k = _pct(f)
            r[f"compute_ratio_{k}"] = r[f"sops_to_{k}"] / normal[f"sops_to_{k}"] if normal else float("nan")
    rows.sort(
        key=lambda r: (
            r["fusion"],
            r["loss"],
            -r["audio_snr_db"] - r["image_snr_db"],
            METHODS.index(r["method"]),
            r["seed"],
        )
    )
    return rows


def _row_key(r: dict) -> Key:
    return r["fusion"], r["loss"], r["audio_snr_db"], r["image_snr_db"], r["method"], r["seed"]


def _pct(f: float) -> str:
    """A target fraction as a column suffix: 0.95 -> ``95``."""
    return f"{round(100 * f)}"


def strength(level) -> float:
    """A level's strength on one axis: the mean SNR of the two modalities (dB)."""
    return (level[0] + level[1]) / 2


def _paired(rows: list[dict], cell, lv, m: str, ref: str, key: str = "test_acc") -> list[float]:
    by = {_row_key(r): r for r in rows}
    out = []
    for r in rows:
        if (r["fusion"], r["loss"], (r["audio_snr_db"], r["image_snr_db"]), r["method"]) == (*cell, lv, m):
            other = by.get((*cell, *lv, ref, r["seed"]))
            if other is not None:
                out.append(r[key] - other[key])
    return out


def summarise_cells(rows: list[dict], scfg: StudyConfig, seeds) -> list[dict]:
    summary = []
    for cell in scfg.cells():
        cell_rows = [r for r in rows if (r["fusion"], r["loss"]) == cell]
        for row in summarise(cell_rows, scfg.levels, scfg.methods_of(cell), seeds, scfg.margin):
            lv = (row["audio_snr_db"], row["image_snr_db"])
            paired = row["method"] == _IEMF and _CONSTANT in scfg.methods_of(cell) and lv in scfg.controls()
            diffs = _paired(rows, cell, lv, _IEMF, _CONSTANT) if paired else []
            d, lo, hi = t_interval(diffs) if diffs else (float("nan"),) * 3
            eq, p = tost(diffs, scfg.margin / 100) if diffs else (False, float("nan"))
            summary.append(
                {
                    "fusion": cell[0],
                    "loss": cell[1],
                    **row,
                    "iemf_vs_constant": d,
                    "iemf_vs_constant_n": len(diffs),
                    "iemf_vs_constant_low": lo,
                    "iemf_vs_constant_high": hi,
                    "iemf_vs_constant_equivalent": eq,
                    "iemf_vs_constant_tost_p": p,
                }
            )
    return summary


def summarise(rows: list[dict], levels, methods, seeds, margin: float = MARGIN) -> list[dict]:
    """Per level and method: accuracy, gain, the paired difference from Normal with its 95 % interval and a TOST
    of it against +-``margin`` points."""
    by = {(r["audio_snr_db"], r["image_snr_db"], r["method"], r["seed"]): r for r in rows}
    summary = []
    for lv in levels:
        for m in methods:
            runs = [by[(lv[0], lv[1], m, s)] for s in seeds if (lv[0], lv[1], m, s) in by]
            if not runs:
                continue
            acc = np.array([r["test_acc"] for r in runs])
            gain = np.array([r["gain"] for r in runs])
            diffs = [
                by[(lv[0], lv[1], m, s)]["test_acc"] - by[(lv[0], lv[1], "normal", s)]["test_acc"]
                for s in seeds
                if (lv[0], lv[1], m, s) in by and (lv[0], lv[1], "normal", s) in by
            ]
            d, lo, hi = t_interval(diffs) if m != "normal" else (0.0, 0.0, 0.0)
            eq, p = tost(diffs, margin / 100) if m != "normal" else (False, float("nan"))
            summary.append(
                {
                    "audio_snr_db": lv[0],
                    "image_snr_db": lv[1],
                    "method": m,
                    "n": len(runs),
                    "n_paired": len(diffs) if m != "normal" else len(runs),
                    "acc_mean": float(acc.mean()),
                    "acc_std": float(acc.std(ddof=1)) if len(acc) > 1 else 0.0,
                    "audio_acc_mean": float(np.mean([r["test_acc_audio"] for r in runs])),
                    "visual_acc_mean": float(np.mean([r["test_acc_visual"] for r in runs])),
                    "gain_mean": float(gain.mean()),
                    "gain_std": float(gain.std(ddof=1)) if len(gain) > 1 else 0.0,
                    "diff_vs_normal": d,
                    "ci_low": lo,
                    "ci_high": hi,
                    "equivalent": eq,
                    "tost_p": p,
                    "coeff_mean": _nanmean([r["coeff_mean"] for r in runs]) if m != "normal" else float("nan"),
                }
            )
    return summary


def _nanmean(xs: list[float]) -> float:
    finite = [x for x in xs if not math.isnan(x)]
    return float(np.mean(finite)) if finite else float("nan")


def trend_rows(rows: list[dict], scfg: StudyConfig) -> list[dict]:
    """Per cell: the slope on strength (per 10 dB) of each method's paired difference against Normal, of IEMF
    against the constant control, and of Normal's multisensory gain; mean over seeds with a 95 % t-interval."""
    out, by = [], {_row_key(r): r for r in rows}
    for cell in scfg.cells():
        methods = scfg.methods_of(cell)
        contrasts = [(m, "normal", "test_acc") for m in methods if m != "normal"]
        if _CONSTANT in methods:
            contrasts.append((_IEMF, _CONSTANT, "test_acc"))
        for m, ref, key in [*contrasts, ("normal", None, "gain")]:
            points: dict[int, list[tuple[float, float]]] = {}
            levels = scfg.controls() if _CONSTANT in (m, ref) or m == _NOISE else scfg.levels
            for lv in levels:
                for r in rows:
                    if (r["fusion"], r["loss"], (r["audio_snr_db"], r["image_snr_db"]), r["method"]) != (*cell, lv, m):
                        continue
                    if ref is None:
                        if not math.isnan(r[key]):
                            points.setdefault(r["seed"], []).append((strength(lv), r[key]))
                        continue
                    other = by.get((*cell, *lv, ref, r["seed"]))
                    if other is not None:
                        points.setdefault(r["seed"], []).append((strength(lv), r[key] - other[key]))
            slopes = seed_slopes(points)
            if not slopes:
                continue
            mean, lo, hi = t_interval(slopes)
            what = f"{m} - {ref} ({key})" if ref else f"{m} multisensory gain"
            out.append(
                {
                    "fusion": cell[0],
                    "loss": cell[1],
                    "contrast": what,
                    "levels": len(levels),
                    "seeds": len(slopes),
                    "slope_per_10db": 10 * mean,
                    "ci_low": 10 * lo,
                    "ci_high": 10 * hi,
                }
            )
    return out


def cell_contrasts(rows: list[dict], scfg: StudyConfig) -> list[dict]:
    """Each cell against the cell that differs from it in one factor only (fusion or loss), the first value of
    that factor being the reference: paired by level, method and seed, with a 95 % t-interval (e.g. msi - concat
    for each method; Normal with_iemf - Normal always)."""
    by, out = {_row_key(r): r for r in rows}, []
    for cell in scfg.cells():
        refs = [(scfg.fusions[0], cell[1]), (cell[0], scfg.losses[0])]
        for ref in dict.fromkeys(c for c in refs if c != cell):
            same_runs = ref == (cell[0], "always")  # IEMF's with_iemf runs are its always runs
            shared = [
                m
                for m in scfg.methods_of(cell)
                if m in scfg.methods_of(ref) and not (same_runs and _reuses_always(scfg, cell, m))
            ]
            for lv in scfg.levels:
                for m in shared:
                    diffs = [
                        r["test_acc"] - by[(*ref, *lv, m, r["seed"])]["test_acc"]
                        for r in rows
                        if _row_key(r)[:5] == (*cell, *lv, m) and (*ref, *lv, m, r["seed"]) in by
                    ]
                    if diffs:
                        d, lo, hi = t_interval(diffs)
                        out.append(
                            {
                                "cell": f"{cell[0]}, {cell[1]}",
                                "reference": f"{ref[0]}, {ref[1]}",
                                "audio_snr_db": lv[0],
                                "image_snr_db": lv[1],
                                "method": m,
                                "n": len(diffs),
                                "diff": d,
                                "ci_low": lo,
                                "ci_high": hi,
                            }
                        )
    return out


def compute_rows(rows: list[dict], scfg: StudyConfig) -> list[dict]:
    """Per cell, level, method and target (:data:`TARGETS`, fractions of Normal's final validation accuracy of the
    same cell, level and seed): how often and after how many training samples each method reaches it, at step
    resolution (``val_every``), and the ratio of its SOPs to Normal's (median over seeds; not reached = infinite;
    the geometric mean with a 95 % interval where every seed reached it, else NaN). The horizon is the run: a
    target not reached within its epochs counts as not reached."""
    out = []
    for cell in scfg.cells():
        for lv in scfg.levels:
            for m in scfg.methods_of(cell):
                rs = [
                    r
                    for r in rows
                    if (r["fusion"], r["loss"], (r["audio_snr_db"], r["image_snr_db"]), r["method"]) == (*cell, lv, m)
                ]
                for f in TARGETS if rs else ():
                    k = _pct(f)
                    ratios = np.array([r[f"compute_ratio_{k}"] for r in rs], dtype=float)
                    reached = [r for r in rs if math.isfinite(r[f"sops_to_{k}"])]
                    # over every seed or none: a seed that never reaches the target is the costliest one, and a
                    # mean without it would flatter the method that misses most (the median counts it as infinite)
                    every = bool(np.isfinite(ratios).all())
                    gm, lo, hi = t_interval(np.log(ratios).tolist()) if every else (float("nan"),) * 3
                    out.append(
                        {
                            "fusion": cell[0],
                            "loss": cell[1],
                            "audio_snr_db": lv[0],
                            "image_snr_db": lv[1],
                            "method": m,
                            "target": f,
                            "n": len(rs),
                            "reached": len(reached),
                            "samples_to_target_median": float(np.median([r[f"samples_to_{k}"] for r in reached]))
                            if reached
                            else float("nan"),
                            "sops_per_sample": float(np.mean([r["sops_per_sample"] for r in rs])),
                            "ratio_median": float(np.median(ratios)),
                            "ratio_q25": float(np.quantile(ratios, 0.25, method="nearest")),
                            "ratio_q75": float(np.quantile(ratios, 0.75, method="nearest")),
                            "ratio_geomean": math.exp(gm) if every else float("nan"),
                            "ratio_geomean_low": math.exp(lo) if every and len(ratios) > 1 else float("nan"),
                            "ratio_geomean_high": math.exp(hi) if every and len(ratios) > 1 else float("nan"),
                        }
                    )
    return out


# -- tables and the plot ---------------------------------------------------------------------------------------------
def _ci(d: float, lo: float, hi: float, scale: float = 100.0) -> str:
    if math.isnan(d):
        return "-"
    if math.isnan(lo):
        return f"{scale * d:+.1f}"
    return f"{scale * d:+.1f} [{scale * lo:+.1f}, {scale * hi:+.1f}]"


def markdown_table(summary: list[dict]) -> str:
    head = (
        "| fusion | loss | audio dB | image dB | method | n | fused acc % | audio % | visual % | gain (pts) | "
        "vs normal (pts, 95% CI) | within the margin? (TOST p) | iemf vs constant (pts, 95% CI) | "
        "within the margin? (TOST p) | coeff |"
    )
    lines = [head, "|" + "---|" * 15]
    for r in summary:
        vs = "-" if r["method"] == "normal" else _ci(r["diff_vs_normal"], r["ci_low"], r["ci_high"])
        vs += fewer_seeds(r["n_paired"], r["n"])  # a seed of one of the pair missing
        vc = _ci(
            r.get("iemf_vs_constant", float("nan")),
            r.get("iemf_vs_constant_low", float("nan")),
            r.get("iemf_vs_constant_high", float("nan")),
        )
        vc += fewer_seeds(r.get("iemf_vs_constant_n", r["n"]), r["n"]) if vc != "-" else ""
        coeff = "-" if math.isnan(r["coeff_mean"]) else f"{r['coeff_mean']:.3f}"
        eq_n = _equivalence(r.get("equivalent"), r.get("tost_p", float("nan")))
        eq_c = _equivalence(r.get("iemf_vs_constant_equivalent"), r.get("iemf_vs_constant_tost_p", float("nan")))
        gain = (
            "- (heads untrained)"
            if math.isnan(r["gain_mean"])
            else f"{100 * r['gain_mean']:+.1f} ± {100 * r['gain_std']:.1f}"
        )
        lines.append(
            f"| {r.get('fusion', '')} | {r.get('loss', '')} | {r['audio_snr_db']:g} | {r['image_snr_db']:g} | "
            f"{r['method']} | {r['n']} | {100 * r['acc_mean']:.1f} ± {100 * r['acc_std']:.1f} | "
            f"{100 * r['audio_acc_mean']:.1f} | {100 * r['visual_acc_mean']:.1f} | "
            f"{gain} | {vs} | {eq_n} | {vc} | {eq_c} | {coeff} |"
        )
    return "\n".join(lines)


def _equivalence(equivalent, p: float) -> str:
    """``yes (p 0.01)``: the TOST puts the paired difference within the margin; ``no (p 0.3)``: it cannot."""
    return "-" if math.isnan(p) else f"{'yes' if equivalent else 'no'} (p {p:.2g})"


def trend_table(trend: list[dict]) -> str:
    lines = [
        "| fusion | loss | contrast | levels | seeds | slope (pts per +10 dB, 95% CI) |",
        "|---|---|---|---|---|---|",
    ]
    for r in trend:
        lines.append(
            f"| {r['fusion']} | {r['loss']} | {r['contrast']} | {r['levels']} | {r['seeds']} | "
            f"{_ci(r['slope_per_10db'], r['ci_low'], r['ci_high'])} |"
        )
    return "\n".join(lines)


def _ratio(x: float) -> str:
    return "inf" if math.isinf(x) else ("-" if math.isnan(x) else f"{x:.2f}")


def compute_table(compute: list[dict]) -> str:
    lines = [
        "| fusion | loss | audio dB | image dB | method | target (x normal's final val acc) | reached | "
        "training samples (median) | SOPs / sample | compute / normal's, median [IQR] | "
        "geometric mean (95% CI; where every seed reached it) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in compute:
        gm = f"{_ratio(r['ratio_geomean'])} [{_ratio(r['ratio_geomean_low'])}, {_ratio(r['ratio_geomean_high'])}]"
        n = "-" if math.isnan(r["samples_to_target_median"]) else f"{r['samples_to_target_median']:.0f}"
        lines.append(
            f"| {r['fusion']} | {r['loss']} | {r['audio_snr_db']:g} | {r['image_snr_db']:g} | {r['method']} | "
            f"{r['target']:g} | {r['reached']}/{r['n']} | {n} | {r['sops_per_sample']:.3g} | "
            f"{_ratio(r['ratio_median'])} [{_ratio(r['ratio_q25'])}, {_ratio(r['ratio_q75'])}] | {gm} |"
        )
    return "\n".join(lines)


def msi_table(rows: list[dict]) -> str:
    """The trained integration layers' enhancement on their own level's test samples (msi runs only)."""
    rs = [
        r
        for r in rows
        if not math.isnan(r.get("ME_median", float("nan"))) or not math.isnan(r.get("ME_population", float("nan")))
    ]
    if not rs:
        return ""
    lines = [
        "| fusion | loss | audio dB | image dB | method | n | ME % median neuron (mean over seeds) | "
        "ME % population | additivity (median neuron) |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    groups: dict[tuple, list[dict]] = {}
    for r in rs:
        groups.setdefault((r["fusion"], r["loss"], r["audio_snr_db"], r["image_snr_db"], r["method"]), []).append(r)
    for (f, x, a, v, m), g in groups.items():
        me, pop = (_seed_mean(g, k, lambda y: f"{100 * y:+.0f}") for k in ("ME_median", "ME_population"))
        ai = _seed_mean(g, "AI_median", lambda y: f"{y:.2f}")
        lines.append(f"| {f} | {x} | {a:g} | {v:g} | {m} | {len(g)} | {me} | {pop} | {ai} |")
    return "\n".join(lines)


def _seed_mean(runs: list[dict], key: str, fmt) -> str:
    """The mean of ``key`` over the runs that have a value (a layer with no responsive neuron has none), with
    `` (n = k)`` when that is fewer than the row's runs; ``-`` when none has one."""
    vals = [r[key] for r in runs if not math.isnan(r.get(key, float("nan")))]
    return fmt(float(np.mean(vals))) + fewer_seeds(len(vals), len(runs)) if vals else "-"


def cells_table(cells: list[dict]) -> str:
    lines = [
        "| cell | minus | audio dB | image dB | method | n | fused acc difference (pts, 95% CI) |",
        "|---|---|---|---|---|---|---|",
    ]
    for r in cells:
        lines.append(
            f"| {r['cell']} | {r['reference']} | {r['audio_snr_db']:g} | {r['image_snr_db']:g} | "
            f"{r['method']} | {r['n']} | {_ci(r['diff'], r['ci_low'], r['ci_high'])} |"
        )
    return "\n".join(lines)


def report_markdown(summary, trend, compute, rows, scfg: StudyConfig, cells: list[dict] | None = None) -> str:
    parts = [
        "## Accuracy per level (paired by seed)",
        markdown_table(summary),
        "## Trend across levels (per-seed OLS slope on the mean SNR, mean over seeds)",
        trend_table(trend),
        "## Compute to reach a fraction of Normal's final validation accuracy (SOPs x training samples, step "
        "resolution)",
        compute_table(compute),
        "## The horizon: has Normal plateaued? (its validation gain over the last quarter of its training samples)",
        horizon_table(horizon_rows(rows, scfg)),
    ]
    if cells:
        parts += [
            "## Cells against each other (fusion, loss setting; paired by level, method and seed)",
            cells_table(cells),
        ]
    msi = msi_table(rows)
    if msi:
        parts += ["## The trained integration layer (probe at the run's own level)", msi]
    return "\n\n".join(parts)


def study_plot(summary: list[dict], trend: list[dict], rows: list[dict], scfg: StudyConfig, path: Path) -> Path:
    """Left: paired difference against Normal by level (mean, 95 % CI) with the fitted trend, per method and cell.
    Middle: multisensory gain against the best unimodal accuracy. Right: compute to reach Normal's accuracy."""
    import matplotlib.pyplot as plt

    from .. import plots  # noqa: F401  (selects the non-interactive backend)
    from ..plots import save_figure

    fig, (ax1, ax2, ax3) = plt.subplots(1, 3, figsize=(16, 4.4))
    for cell in scfg.cells():
        tag = "" if len(scfg.cells()) == 1 else f" ({cell[0]}, {cell[1]})"
        for m in scfg.methods_of(cell):
            rs = [r for r in summary if (r["fusion"], r["loss"], r["method"]) == (*cell, m)]
            x = np.array([strength((r["audio_snr_db"], r["image_snr_db"])) for r in rs])
            if m != "normal":
                d = np.array([100 * r["diff_vs_normal"] for r in rs])
                err = np.array(
                    [
                        [100 * (r["diff_vs_normal"] - r["ci_low"]) for r in rs],
                        [100 * (r["ci_high"] - r["diff_vs_normal"]) for r in rs],
                    ]
                )
                line = ax1.errorbar(x, d, np.nan_to_num(err), marker="o", capsize=3, label=f"{m}{tag}")
                what = (*cell, f"{m} - normal (test_acc)")
                tr = [t for t in trend if (t["fusion"], t["loss"], t["contrast"]) == what]
                if tr and len(x) >= 2:
                    slope, xm = 100 * tr[0]["slope_per_10db"] / 10, x.mean()  # pts per dB
                    ax1.plot(x, d.mean() + slope * (x - xm), ls="--", color=line[0].get_color(), lw=1)
            shown = [r for r in rs if not math.isnan(r["gain_mean"])]  # not against untrained heads
            if shown:
                best = [100 * max(r["audio_acc_mean"], r["visual_acc_mean"]) for r in shown]
                ax2.errorbar(
                    best,
                    [100 * r["gain_mean"] for r in shown],
                    [100 * r["gain_std"] for r in shown],
                    marker="o",
                    capsize=3,
                    label=f"{m}{tag}",
                )
            ratios = [
                (strength((r["audio_snr_db"], r["image_snr_db"])), r["compute_ratio_100"])
                for r in rows
                if (r["fusion"], r["loss"], r["method"]) == (*cell, m) and m != "normal"
            ]
            if ratios:
                xs = np.array([p[0] for p in ratios])
                ys = np.array([p[1] for p in ratios])
                missed = int((~np.isfinite(ys)).sum())
                ax3.scatter(
                    xs[np.isfinite(ys)] + 0.3 * (scfg.methods_of(cell).index(m) - 1),
                    ys[np.isfinite(ys)],
                    s=10,
                    label=f"{m}{tag}" + (f" ({missed} not reached)" if missed else ""),
                )
    ax1.axhline(0, color="k", lw=0.8)
    ax1.set_xlabel("mean SNR of the two modalities (dB)")
    ax1.set_ylabel("fused test accuracy - normal (pts, 95% CI)")
    ax1.set_title("advantage over Normal by level (dashed: trend)")
    ax2.set_xlabel("best unimodal head accuracy (%)")
    ax2.set_ylabel("multisensory gain (fused - best unimodal, pts)")
    ax2.set_title("multisensory gain")
    ax3.axhline(1, color="k", lw=0.8)
    ax3.set_xlabel("mean SNR of the two modalities (dB)")
    ax3.set_ylabel("SOPs to reach Normal's val. acc. / Normal's")
    ax3.set_title("compute to reach Normal's accuracy (per seed)")
    for ax in (ax1, ax2, ax3):
        if ax.get_legend_handles_labels()[0]:  # a Normal-only study has no differences to label
            ax.legend(fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


# -- the command -----------------------------------------------------------------------------------------------------
FULL = {"fusions": ["concat", "msi"], "losses": list(LOSSES)}


@register_study(
    "inverse-effectiveness",
    description="weaken both modalities step by step; Normal, IEMF, its "
    "controls, the trend across levels and the compute to reach Normal's accuracy",
)
def _inverse_effectiveness_command(q) -> None:
    from ..argtypes import positive_float

    d = StudyConfig()
    q.add_argument(
        "--levels",
        nargs="+",
        help="'AUDIO_DB,IMAGE_DB' pairs, strongest first (default: --levels "
        + " ".join(f"{a:g},{v:g}" for a, v in d.levels)
        + ")",
    )
    q.add_argument(
        "--methods",
        nargs="+",
        choices=METHODS,
        default=list(d.methods),
        help="normal and any of iemf, constant (needs iemf), noise",
    )
    q.add_argument(
        "--control-levels",
        choices=["weak", "all"],
        default="weak",
        help="where constant / noise run: every level but the strongest (weak) or all",
    )
    q.add_argument(
        "--fusions",
        nargs="+",
        help="cells: fusions, each NAME or NAME:KEY=VALUE,... with options of the fusion (msi:pool=8; `snn-msi "
        "fusions`); the first runs every method (default: the recipe's)",
    )
    q.add_argument(
        "--losses",
        nargs="+",
        choices=LOSSES,
        default=list(d.losses),
        help="cells: loss settings (always; with_iemf: heads only with IEMF; original: with_iemf and label "
        "smoothing 0.1 on every term)",
    )
    q.add_argument(
        "--margin",
        type=positive_float,
        default=d.margin,
        help=f"equivalence margin of 'no effect' statements, in points, fixed before the runs (default {MARGIN:g})",
    )
    q.add_argument(
        "--full",
        action="store_true",
        help="all six cells: --fusions concat msi --losses always with_iemf original (about 4x the default's time)",
    )
    add_run_arguments(q, seeds=len(d.runs.seeds), out=d.runs.out, jobs=d.runs.jobs)
    q.set_defaults(func=_run)


def _run(args) -> int:
    from ..argtypes import snr_pairs

    levels = snr_pairs("--levels", args.levels) if args.levels else StudyConfig().levels
    cfg = StudyConfig(
        levels=levels,
        methods=tuple(args.methods),
        control_levels=None if args.control_levels == "weak" else levels,
        fusions=tuple(FULL["fusions"] if args.full else args.fusions or ()),
        losses=tuple(FULL["losses"] if args.full else args.losses),
        margin=args.margin,
        recipe=study_recipe(args, default_recipe()),
        runs=run_options(args),
    )
    run_study(cfg)
    return 0
