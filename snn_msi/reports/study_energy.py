"""The accuracy-energy study: sweep the firing-rate regulariser's strength, train each point over several seeds,
and put each trained SNN beside its trained ReLU twin (the same recipe and seed) on one accuracy-energy plane.

For every strength ``lambda`` of :mod:`~snn_msi.training.policies.rate_reg` (0: plain training) and every seed,
the demo network is trained on digits-av; the ReLU twin is trained once per seed. Each finished run's energy
per inference is counted on ``samples`` test samples (:mod:`snn_msi.metrics.energy`: 45 nm CMOS compute, compute
plus memory traffic, and the SNN on Loihi) and its test accuracy read from the run. Reported per point: test
accuracy (mean ± std over seeds), the paired difference against the SNN at ``lambda = 0`` with a 95 % interval
(Student t over seeds), the firing rate, the operations and the energies, and whether the point is on the Pareto
front (no other point is both cheaper and more accurate), as ``runs.csv``, ``summary.csv``, ``summary.md`` and
``pareto.png``. Runs go on an executor and resume as every study's do (:mod:`snn_msi.reports.runs`).
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ..files import write_csv, write_text
from ..metrics.energy import CostModel, NeuromorphicProfile, PriceTotals, count_ops, price, relu_twin
from ..training.config import TrainConfig, demo_config
from . import register_study
from .energy import twin_config
from .runs import RunOptions, add_run_arguments, run_many, run_options, study_recipe
from .stats import t_interval

SNN, TWIN, TWIN_ZS, CHIP = "SNN", "ReLU twin", "ReLU twin, zero-skipping", "SNN on Loihi"
COMPUTE, FULL = "45 nm compute", "45 nm compute + memory traffic; Loihi: its per-event figures"


def default_recipe() -> TrainConfig:
    """The study's recipe unless the user gives one: the demo network on digits-av (hard), 10 epochs."""
    return demo_config()


@dataclass
class EnergyStudyConfig:
    """The sweep: ``strengths`` of the rate regulariser (towards ``target``) on the ``recipe`` (None:
    :func:`default_recipe`); ``samples``: test samples the energy is counted on; ``runs``: seeds, folder and
    executor."""

    strengths: tuple[float, ...] = (0.0, 3.0, 10.0, 30.0)
    target: float = 0.0
    samples: int = 64
    cost: CostModel = field(default_factory=CostModel)
    recipe: TrainConfig | None = None
    runs: RunOptions = field(default_factory=lambda: RunOptions(seeds=[0, 1, 2], out="runs/study_energy"))

    def __post_init__(self) -> None:
        self.recipe = self.recipe or default_recipe()
        if not self.strengths or any(not math.isfinite(s) or s < 0 for s in self.strengths):
            raise ValueError(f"strengths must be finite numbers >= 0, got {list(self.strengths)}")
        if len(set(self.strengths)) != len(self.strengths):
            raise ValueError(f"strengths must differ, got {list(self.strengths)}")
        if not 0.0 <= self.target <= 1.0:
            raise ValueError(f"target must be a rate in [0, 1], got {self.target}")
        if self.samples < 1:
            raise ValueError(f"samples must be >= 1, got {self.samples}")


def snn_config(scfg: EnergyStudyConfig, strength: float, seed: int) -> TrainConfig:
    """The recipe with the rate regulariser at ``strength`` (none at 0) on top of its own methods."""
    policies = [p for p in scfg.recipe.policies if p["name"] != "rate_reg"]
    policies += [{"name": "rate_reg", "strength": strength, "target": scfg.target}] if strength > 0 else []
    out = Path(scfg.runs.out) / f"snn_rr{strength:g}_s{seed}"
    return scfg.recipe.replace(seed=seed, out=str(out), policies=policies)


def _test_batch(cfg: TrainConfig, samples: int):
    """The first ``samples`` test samples of a run's data, as one batch."""
    from torch.utils.data import DataLoader, Subset

    from ..data import build_datasets

    test = build_datasets(cfg.data, cfg.seed)[2]
    n = min(samples, len(test))
    return next(iter(DataLoader(Subset(test, range(n)), batch_size=n)))


def _measure(ckpt: Path, batch, cost: CostModel, hw: NeuromorphicProfile) -> PriceTotals:
    """Energy totals per inference of a finished run's best weights on ``batch`` (the twin: one step, ReLU)."""
    from ..training import load_model

    model, cfg = load_model(ckpt)
    spiking = cfg.model.neuron != "relu"
    if not spiking:
        model = relu_twin(cfg.model, model.state_dict())
    n = len(batch.label)
    counts = count_ops(model, lambda: model(batch.audio, batch.frames), model.config.T, n, detect_spikes=spiking)
    return price(counts, cost, hw if spiking else None).totals


def run_energy_study(scfg: EnergyStudyConfig) -> list[dict]:
    """Train (or resume) every run, measure each, write the tables and the plot in ``scfg.runs.out``; the summary."""
    t0 = time.time()
    out = Path(scfg.runs.out)
    seeds = list(scfg.runs.seeds)
    keys = [(SNN, s, seed) for s in scfg.strengths for seed in seeds] + [(TWIN, None, seed) for seed in seeds]
    configs = [
        snn_config(scfg, s, seed) if m == SNN else twin_config(snn_config(scfg, 0.0, seed), out / f"relu_s{seed}")
        for m, s, seed in keys
    ]
    out.mkdir(parents=True, exist_ok=True)  # after the configs are checked: a bad option writes nothing
    results = run_many(configs, scfg.runs)
    hw, rows, batches = NeuromorphicProfile(), [], {}
    for (model, strength, seed), cfg, res in zip(keys, configs, results, strict=True):
        if seed not in batches:  # every run of a seed reads the same data (the SNNs and the twin alike)
            batches[seed] = _test_batch(cfg, scfg.samples)
        t = _measure(Path(cfg.out) / "best.pt", batches[seed], scfg.cost, hw)
        row = {
            "model": model,
            "strength": strength,
            "seed": seed,
            "test_acc": res.test.acc,
            "firing_rate": t.mean_firing_rate,
            "sops": t.sops,
            "macs": t.macs,
            "zero_skip_macs": t.zero_skip_macs,
            "compute_pj": t.compute_pj,
            "memory_pj": t.memory_pj,
            "total_pj": t.total_pj,
            "chip_pj": float("nan") if t.chip_pj is None else t.chip_pj,
        }
        rows.append(row)
        if model == TWIN:  # the same trained twin on sparse hardware: MACs on non-zero inputs only
            zs = t.compute_pj - scfg.cost.e_mac * (t.macs - t.zero_skip_macs)
            rows.append(
                {**row, "model": TWIN_ZS, "macs": t.zero_skip_macs, "compute_pj": zs, "total_pj": zs + t.memory_pj}
            )
    write_csv(out / "runs.csv", rows)
    summary = summarise(rows, scfg.strengths, seeds)
    write_csv(out / "summary.csv", summary)
    wall = time.time() - t0
    md = markdown_table(summary)
    n, r = len(seeds), scfg.recipe
    note = (
        f"{len(configs)} runs ({len(scfg.strengths)} strengths x {n} seeds + {n} twins), {r.data.dataset} "
        f"(preset {r.data.preset}), {r.epochs} epochs each; energy on {scfg.samples} test samples; "
        f"wall time {wall / 60:.1f} min"
    )
    write_text(out / "summary.md", f"{md}\n\n{note}; {scfg.cost.describe()}; {hw.describe()}.\n")
    from ..plots import pareto_plot

    pareto_plot(
        _points(summary),
        out / "pareto.png",
        f"{r.data.dataset}, {n} seeds per point; rate_reg target {scfg.target:g}; mean ± std",
    )
    print(md)
    print(f"\n{note}\nwrote {out / 'runs.csv'}, {out / 'summary.md'}, {out / 'pareto.png'}")
    return summary


def summarise(rows: list[dict], strengths, seeds) -> list[dict]:
    """One row per point (model and strength): means, stds, paired differences against the SNN at strength 0,
    and Pareto-front flags for both energy columns."""
    by = {(r["model"], r["strength"], r["seed"]): r for r in rows}
    ref = {s: by.get((SNN, 0.0, s)) for s in seeds}
    points = [(SNN, s) for s in strengths] + [(TWIN, None), (TWIN_ZS, None)]
    summary = []
    for model, strength in points:
        runs = [by[(model, strength, s)] for s in seeds if (model, strength, s) in by]
        if not runs:
            continue
        row = {"model": model, "strength": strength, "n": len(runs)}
        for key in ("test_acc", "firing_rate", "sops", "macs", "compute_pj", "total_pj", "chip_pj"):
            v = np.array([r[key] for r in runs], dtype=float)
            row[f"{key}_mean"] = float(v.mean())
            row[f"{key}_std"] = float(v.std(ddof=1)) if len(v) > 1 else 0.0
        pairs = [(by[(model, strength, s)], ref[s]) for s in seeds if (model, strength, s) in by and ref[s]]
        if pairs and (model, strength) != (SNN, 0.0):
            d, lo, hi = t_interval([r["test_acc"] - r0["test_acc"] for r, r0 in pairs])
            ratio = float(np.mean([r["total_pj"] / r0["total_pj"] for r, r0 in pairs]))
        else:
            d, lo, hi, ratio = 0.0, 0.0, 0.0, 1.0
        row.update(acc_diff=d, acc_diff_low=lo, acc_diff_high=hi, energy_ratio=ratio)
        summary.append(row)
    for key in ("compute_pj", "total_pj"):
        pts = [(r[f"{key}_mean"], r["test_acc_mean"], i) for i, r in enumerate(summary)]
        if key == "total_pj":
            pts += [(r["chip_pj_mean"], r["test_acc_mean"], -1 - i) for i, r in enumerate(summary) if r["model"] == SNN]
        front = pareto_front(pts)
        for i, r in enumerate(summary):
            r[f"front_{key}"] = i in front
            if r["model"] == SNN and key == "total_pj":
                r["front_chip_pj"] = -1 - i in front
    return summary


def pareto_front(points: list[tuple[float, float, object]]) -> set:
    """The ids of ``(energy, accuracy, id)`` points that no other point beats: cheaper-or-equal and at least as
    accurate, better in one."""
    front, best = set(), -math.inf
    for _, a, i in sorted(points, key=lambda p: (p[0], -p[1])):
        if a > best:
            front.add(i)
            best = a
    return front


def _label(r: dict) -> str:
    return f"{r['model']}, λ={r['strength']:g}" if r["strength"] is not None else r["model"]


def _points(summary: list[dict]) -> list[dict]:
    """The summary as the plot's points: one per row, and the SNN rows again on Loihi (full-estimate panel)."""
    pts = []
    for r in summary:
        energy = {COMPUTE: (r["compute_pj_mean"], r["compute_pj_std"]), FULL: (r["total_pj_mean"], r["total_pj_std"])}
        front = {COMPUTE: r["front_compute_pj"], FULL: r["front_total_pj"]}
        pts.append(
            {
                "label": _label(r),
                "model": r["model"],
                "energy": energy,
                "front": front,
                "acc": (r["test_acc_mean"], r["test_acc_std"]),
            }
        )
        if r["model"] == SNN:
            pts.append(
                {
                    "label": _label({**r, "model": CHIP}),
                    "model": CHIP,
                    "front": {FULL: r["front_chip_pj"]},
                    "energy": {FULL: (r["chip_pj_mean"], r["chip_pj_std"])},
                    "acc": (r["test_acc_mean"], r["test_acc_std"]),
                }
            )
    return pts


def markdown_table(summary: list[dict]) -> str:
    lines = [
        "| model | rate_reg λ | n | test acc % | vs SNN λ=0 (pts, 95% CI) | firing rate | SOPs (M) | MACs (M) | "
        "45 nm compute (µJ) | 45 nm compute + memory (µJ) | Loihi (µJ) | energy vs SNN λ=0 | Pareto |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in summary:
        d, lo, hi = (100 * r[k] for k in ("acc_diff", "acc_diff_low", "acc_diff_high"))
        ci = f"[{lo:+.1f}, {hi:+.1f}]" if math.isfinite(lo) else "(one seed: no interval)"
        vs = "-" if r["model"] == SNN and r["strength"] == 0.0 else f"{d:+.1f} {ci}"
        chip = "-" if r["model"] != SNN else f"{r['chip_pj_mean'] / 1e6:.2f}"
        front = (
            ", ".join(
                n
                for n, k in (("compute", "front_compute_pj"), ("full", "front_total_pj"), ("Loihi", "front_chip_pj"))
                if r.get(k)
            )
            or "-"
        )
        lam = "-" if r["strength"] is None else f"{r['strength']:g}"
        m = {k: r[f"{k}_mean"] / 1e6 for k in ("sops", "macs", "compute_pj", "total_pj")}
        lines.append(
            f"| {r['model']} | {lam} | {r['n']} | {100 * r['test_acc_mean']:.1f} ± "
            f"{100 * r['test_acc_std']:.1f} | {vs} | {r['firing_rate_mean']:.3f} | {m['sops']:.2f} | "
            f"{m['macs']:.2f} | {m['compute_pj']:.2f} | {m['total_pj']:.2f} | {chip} | "
            f"{r['energy_ratio']:.2f}x | {front} |"
        )
    return "\n".join(lines)


@register_study(
    "energy",
    description="accuracy against energy per inference: the firing-rate regulariser's "
    "strength swept, the trained ReLU twin beside it (Pareto plot + table)",
)
def _energy_study_command(q) -> None:
    """``snn-msi study energy``."""
    from ..argtypes import positive_int

    d = EnergyStudyConfig()
    listed = " ".join(f"{s:g}" for s in d.strengths)
    q.add_argument(
        "--strengths",
        type=_strength,
        nargs="+",
        default=list(d.strengths),
        help=f"rate_reg strengths (0: plain training; default {listed})",
    )
    q.add_argument("--target", type=float, default=d.target, help="rate_reg target rate of every layer")
    q.add_argument("--samples", type=positive_int, default=d.samples, help="test samples the energy is counted on")
    add_run_arguments(q, seeds=len(d.runs.seeds), out=d.runs.out, jobs=d.runs.jobs)
    q.set_defaults(func=_run)


def _strength(text: str) -> float:
    from argparse import ArgumentTypeError

    try:
        value = float(text)
    except ValueError:
        raise ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not math.isfinite(value) or value < 0:
        raise ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def _run(args) -> int:
    cfg = EnergyStudyConfig(
        strengths=tuple(args.strengths),
        target=args.target,
        samples=args.samples,
        recipe=study_recipe(args, default_recipe()),
        runs=run_options(args),
    )
    run_energy_study(cfg)
    return 0
