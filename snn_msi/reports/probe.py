"""Probe a trained network's integration layer as physiologists probe multisensory neurons.

``snn-msi probe CHECKPOINT`` presents each test sample's audio alone, its image alone and both together at several
stimulus strengths, and records every neuron of the integration layer (the fusion's spiking population, ``msi``
or ``bn_product``): its firing rate (spikes per time step, mean over the T steps) on each trial. "Alone" means the
other stream is absent: zero spikes into the layer (:meth:`~snn_msi.models.fusion.SpikingIntegration.responses`).

Three sweeps of strength (each modality at the same level):

- ``contrast``: the model's inputs scaled by ``c`` about their mean level (image contrast about mid-grey; the
  per-clip normalised spectrogram's contrast, i.e. loudness above the clip's average). The data set's own SNR.
- ``snr``: the data set's SNR knob (``audio dB, image dB``), noise drawn per sample as in evaluation.
- ``afferent``: the encoders' output rates (the layer's input) scaled by ``p``: the layer itself, with the
  encoders' spontaneous activity taken out of the picture.

Per neuron and level (Meredith & Stein 1983; Stein & Stanford 2008):

- multisensory enhancement ``ME = (CM - max(A, V)) / max(A, V)`` (where ``max(A, V) >= min_rate``);
- additivity ``AI = CM / (A + V)`` (where ``A + V >= min_rate``): > 1 super-additive, < 1 sub-additive;
- significance over trials (paired by sample, two-sided t at 5 %): enhanced (CM > best unisensory), super-
  additive (CM > A + V), sub-additive (CM < A + V);
- the same pairing with an incongruent image (another class), the analogue of cues out of spatial register.

Inverse effectiveness is ME (and AI) falling as strength rises. Written: ``probe.md`` and ``probe.csv`` (one row
per sweep and level), ``probe_neurons.csv`` (one row per neuron, sweep and level) and ``probe.png``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

import neurons

from ..files import write_csv, write_text
from . import register_command

SWEEPS = ("contrast", "snr", "afferent")


@dataclass
class ProbeConfig:
    """What to present. ``snr`` levels are ``(audio dB, image dB)``; ``min_rate`` in spikes per step."""

    samples: int = 128
    sweeps: tuple[str, ...] = SWEEPS
    contrast: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    snr: tuple[tuple[float, float], ...] = ((-25, -15), (-20, -10), (-15, -5), (-10, 0), (-5, 5), (0, 10), (10, 20))
    afferent: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    min_rate: float = 0.01
    batch_size: int = 128

    def check(self) -> None:
        bad = [s for s in self.sweeps if s not in SWEEPS]
        if bad or not self.sweeps:
            raise ValueError(f"sweeps must be some of {', '.join(SWEEPS)}, got {list(self.sweeps)}")
        if self.samples < 2 or self.batch_size < 1:
            raise ValueError(f"samples must be >= 2 and batch_size >= 1, got {self.samples} and {self.batch_size}")
        if any(not (math.isfinite(c) and c >= 0) for c in (*self.contrast, *self.afferent)):
            raise ValueError(f"contrast and afferent levels must be finite and >= 0, got {self.contrast}, "
                             f"{self.afferent}")  # fmt: skip
        if any(len(lv) != 2 for lv in self.snr):
            raise ValueError(f"snr levels must be (audio dB, image dB) pairs, got {self.snr}")
        if not self.min_rate > 0:
            raise ValueError(f"min_rate must be > 0, got {self.min_rate}")


# -- the measurements -------------------------------------------------------------------------------------------
def integration_layer(model) -> torch.nn.Module:
    """The model's integration layer (a fusion with ``responses``), or a ValueError naming the fusion."""
    fusion = model.fusion
    if not callable(getattr(fusion, "responses", None)):
        name = getattr(getattr(model, "config", None), "fusion", type(fusion).__name__)
        raise ValueError(f"the model's fusion {name!r} has no integration neurons to probe; train with --fusion msi "
                         "(or bn_product)")  # fmt: skip
    return fusion


@torch.no_grad()
def features(model, audio: torch.Tensor, frames: torch.Tensor, batch_size: int = 128):
    """The encoders' time-resolved output ``([T, N, D], [T, N, D])`` (the integration layer's input)."""
    parts = []
    for i in range(0, len(audio), batch_size):
        neurons.reset(model)
        parts.append(model.features(audio[i : i + batch_size], frames[i : i + batch_size]))
    neurons.reset(model)
    return torch.cat([p[0] for p in parts], 1), torch.cat([p[1] for p in parts], 1)


@torch.no_grad()
def layer_rates(fusion, a: torch.Tensor, v: torch.Tensor, perm: torch.Tensor | None = None,
                batch_size: int = 128) -> dict[str, torch.Tensor]:  # fmt: skip
    """Firing rates ``[N, H]`` (spikes per step) of the integration layer: ``cm`` (both), ``a`` (audio alone),
    ``v`` (visual alone), ``cm_incongruent`` (audio with the image of sample ``perm[i]``, if given), and the fused
    logits ``[N, C]`` of the congruent pair."""
    out: dict[str, list[torch.Tensor]] = {"cm": [], "a": [], "v": [], "cm_incongruent": [], "logits": []}
    for i in range(0, a.shape[1], batch_size):
        sl = slice(i, i + batch_size)
        s_cm, s_a, s_v = fusion.responses(a[:, sl], v[:, sl])
        out["cm"].append(s_cm.float().mean(0))
        out["a"].append(s_a.float().mean(0))
        out["v"].append(s_v.float().mean(0))
        out["logits"].append(fusion.head(s_cm).float().mean(0))
        if perm is not None:
            out["cm_incongruent"].append(fusion.responses(a[:, sl], v[:, perm[sl]])[0].float().mean(0))
    return {k: torch.cat(vs) for k, vs in out.items() if vs}


def _significant(diff: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per neuron (columns of ``diff [N, H]``): ``(mean > 0, mean < 0)`` significant by a two-sided paired t-test
    at 5 % (a constant non-zero difference counts as significant)."""
    from scipy import stats

    n = diff.shape[0]
    mean = diff.mean(0)
    se = diff.std(0, unbiased=True) / math.sqrt(n)
    crit = float(stats.t.ppf(0.975, n - 1))
    sig = (mean.abs() > crit * se) & (mean != 0)
    return sig & (mean > 0), sig & (mean < 0)


def neuron_table(rates: dict[str, torch.Tensor], min_rate: float) -> dict[str, torch.Tensor]:
    """Per-neuron statistics ``[H]`` from trial rates ``[N, H]`` (see the module docstring)."""
    a, v, cm = rates["a"], rates["v"], rates["cm"]
    ma, mv, mcm = a.mean(0), v.mean(0), cm.mean(0)
    best = torch.where(ma >= mv, ma, mv)
    best_trials = torch.where((ma >= mv).unsqueeze(0), a, v)
    nan = torch.full_like(best, float("nan"))
    responsive = best >= min_rate
    me = torch.where(responsive, (mcm - best) / best.clamp_min(1e-12), nan)
    total = ma + mv
    ai = torch.where(total >= min_rate, mcm / total.clamp_min(1e-12), nan)
    enhanced, depressed = _significant(cm - best_trials)
    super_add, sub_add = _significant(cm - (a + v))
    table = {"A": ma, "V": mv, "CM": mcm, "A_sd": a.std(0), "V_sd": v.std(0), "CM_sd": cm.std(0), "best": best,
             "ME": me, "AI": ai, "responsive": responsive, "emergent": (~responsive) & (mcm >= min_rate),
             "enhanced": enhanced & responsive, "depressed": depressed & responsive,
             "super_additive": super_add, "sub_additive": sub_add}  # fmt: skip
    if "cm_incongruent" in rates:
        mi = rates["cm_incongruent"].mean(0)
        table["CM_incongruent"] = mi
        table["ME_incongruent"] = torch.where(responsive, (mi - best) / best.clamp_min(1e-12), nan)
    return table


def _quantiles(x: torch.Tensor) -> tuple[float, float, float]:
    x = x[~torch.isnan(x)]
    if x.numel() == 0:
        return float("nan"), float("nan"), float("nan")
    q = torch.quantile(x.double(), torch.tensor([0.25, 0.5, 0.75], dtype=torch.float64))
    return float(q[1]), float(q[0]), float(q[2])


def level_summary(table: dict[str, torch.Tensor], rates: dict[str, torch.Tensor], labels: torch.Tensor) -> dict:
    """One row per level: population rates, ME and AI distributions, counts of significant neurons, accuracy."""
    h = table["A"].numel()
    me, me_lo, me_hi = _quantiles(table["ME"])
    ai, ai_lo, ai_hi = _quantiles(table["AI"])
    pa, pv, pcm = float(table["A"].sum()), float(table["V"].sum()), float(table["CM"].sum())
    row = {
        "neurons": h, "trials": len(labels), "responsive": int(table["responsive"].sum()),
        "emergent": int(table["emergent"].sum()),
        "rate_A": pa / h, "rate_V": pv / h, "rate_CM": pcm / h,
        "ME_median": me, "ME_q25": me_lo, "ME_q75": me_hi,
        "ME_population": (pcm - max(pa, pv)) / max(pa, pv) if max(pa, pv) > 0 else float("nan"),
        "AI_median": ai, "AI_q25": ai_lo, "AI_q75": ai_hi,
        "AI_population": pcm / (pa + pv) if pa + pv > 0 else float("nan"),
        "frac_enhanced": float(table["enhanced"].sum()) / h, "frac_depressed": float(table["depressed"].sum()) / h,
        "frac_super_additive": float(table["super_additive"].sum()) / h,
        "frac_sub_additive": float(table["sub_additive"].sum()) / h,
        "acc_fused": float((rates["logits"].argmax(1) == labels).float().mean()),
    }  # fmt: skip
    if "ME_incongruent" in table:
        row["ME_incongruent_median"] = _quantiles(table["ME_incongruent"])[0]
    return row


def incongruent_partner(labels: torch.Tensor) -> torch.Tensor | None:
    """``perm`` with ``labels[perm[i]] != labels[i]`` for every i (sorted by class, shifted by the largest class's
    count), or None when one class holds more than half the samples."""
    counts = torch.bincount(labels)
    n, shift = len(labels), int(counts.max())
    if 2 * shift > n:
        return None
    order = torch.argsort(labels, stable=True)
    perm = torch.empty_like(order)
    perm[order] = order.roll(shift)
    return perm


# -- the probe of a checkpoint -------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    levels: list[dict] = field(default_factory=list)  # one row per sweep and level
    neurons: list[dict] = field(default_factory=list)  # one row per neuron, sweep and level


def first_test_samples(data_cfg, seed: int, samples: int):
    """One batch of the first ``samples`` test samples of a data config (the same every call)."""
    from torch.utils.data import DataLoader, Subset

    from ..data import DATASETS

    test = DATASETS.get(data_cfg.dataset).factory(data_cfg, "test", seed, None)  # the test split only
    if data_cfg.limit:
        samples = min(samples, data_cfg.limit)
    return next(iter(DataLoader(Subset(test, range(min(samples, len(test)))), batch_size=samples)))


def _stimuli(model, cfg, pcfg: ProbeConfig):
    """Yield ``(sweep, strength, label, a, v, labels)`` for every level: the integration layer's inputs."""
    base = None
    if "contrast" in pcfg.sweeps or "afferent" in pcfg.sweeps:
        base = first_test_samples(cfg.data, cfg.seed, pcfg.samples)
    full = None  # the encoders' output at full strength, shared by the contrast and afferent sweeps
    if "contrast" in pcfg.sweeps:
        for c in pcfg.contrast:
            a, v = features(model, base.audio * c, base.frames * c, pcfg.batch_size)
            full = (a, v) if c == 1 else full
            yield "contrast", float(c), f"contrast x{c:g}", a, v, torch.as_tensor(base.label)
    if "snr" in pcfg.sweeps:
        for adb, vdb in pcfg.snr:
            data = cfg.data.replace(audio_snr_db=float(adb), image_snr_db=float(vdb))
            batch = first_test_samples(data, cfg.seed, pcfg.samples)
            a, v = features(model, batch.audio, batch.frames, pcfg.batch_size)
            yield "snr", (adb + vdb) / 2, f"audio {adb:g} dB, image {vdb:g} dB", a, v, torch.as_tensor(batch.label)
    if "afferent" in pcfg.sweeps:
        a1, v1 = full or features(model, base.audio, base.frames, pcfg.batch_size)
        for p in pcfg.afferent:
            yield "afferent", float(p), f"afferent rates x{p:g}", a1 * p, v1 * p, torch.as_tensor(base.label)


def probe_model(model, cfg, pcfg: ProbeConfig | None = None) -> ProbeResult:
    """Run every sweep of ``pcfg`` on ``model`` (an AVNet whose config is ``cfg``, a TrainConfig)."""
    pcfg = pcfg or ProbeConfig()
    pcfg.check()
    fusion = integration_layer(model)
    model.eval()
    result = ProbeResult()
    for sweep, strength, label, a, v, labels in _stimuli(model, cfg, pcfg):
        rates = layer_rates(fusion, a, v, incongruent_partner(labels), pcfg.batch_size)
        table = neuron_table(rates, pcfg.min_rate)
        result.levels.append({"sweep": sweep, "strength": strength, "level": label,
                              **level_summary(table, rates, labels)})  # fmt: skip
        for j in range(table["A"].numel()):
            result.neurons.append({"sweep": sweep, "strength": strength, "neuron": j,
                                   **{k: (float(t[j]) if t.dtype.is_floating_point else int(t[j]))
                                      for k, t in table.items()}})  # fmt: skip
    return result


def probe_checkpoint(checkpoint: str | Path, out: str | Path | None = None, pcfg: ProbeConfig | None = None,
                     quiet: bool = False) -> ProbeResult:  # fmt: skip
    """``snn-msi probe``: probe a checkpoint; write ``probe.md``, ``probe.csv``, ``probe_neurons.csv`` and
    ``probe.png`` in ``out`` (default: ``probe/`` beside the checkpoint)."""
    from ..training import load_model

    model, cfg = load_model(checkpoint)
    result = probe_model(model, cfg, pcfg)
    out = Path(out) if out else Path(checkpoint).parent / "probe"
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "probe.csv", result.levels)
    write_csv(out / "probe_neurons.csv", result.neurons)
    md = markdown_table(result.levels)
    head = (f"Integration layer of {checkpoint} ({cfg.model.fusion}, {cfg.model.neuron}, "
            f"{result.levels[0]['neurons']} neurons, T = {cfg.model.T}); trials: "
            f"{result.levels[0]['trials']} test samples per level.")  # fmt: skip
    write_text(out / "probe.md", head + "\n\n" + md + "\n")
    probe_plot(result.levels, result.neurons, out / "probe.png", title=f"{cfg.model.fusion}: {checkpoint}")
    if not quiet:
        print(head + "\n\n" + md)
        print(f"\nwrote {out / 'probe.md'}, {out / 'probe.csv'}, {out / 'probe_neurons.csv'}, {out / 'probe.png'}")
    return result


# -- tables and the plot -----------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:+.0f}"


def _ratio(x: float) -> str:
    return "-" if math.isnan(x) else f"{x:.2f}"


def markdown_table(levels: list[dict]) -> str:
    lines = ["| sweep | level | rate A | rate V | rate CM | responsive | ME % median [IQR] | ME % pop. | "
             "AI median [IQR] | AI pop. | enhanced | super-add. | sub-add. | ME % incongr. | fused acc % |",
             "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|"]  # fmt: skip
    for r in levels:
        h = r["neurons"]
        lines.append(
            f"| {r['sweep']} | {r['level']} | {r['rate_A']:.3f} | {r['rate_V']:.3f} | {r['rate_CM']:.3f} | "
            f"{r['responsive']}/{h} | {_pct(r['ME_median'])} [{_pct(r['ME_q25'])}, {_pct(r['ME_q75'])}] | "
            f"{_pct(r['ME_population'])} | {_ratio(r['AI_median'])} [{_ratio(r['AI_q25'])}, {_ratio(r['AI_q75'])}] | "
            f"{_ratio(r['AI_population'])} | {round(r['frac_enhanced'] * h)} | {round(r['frac_super_additive'] * h)} | "
            f"{round(r['frac_sub_additive'] * h)} | {_pct(r.get('ME_incongruent_median', float('nan')))} | "
            f"{100 * r['acc_fused']:.1f} |"
        )
    return "\n".join(lines)


def probe_plot(levels: list[dict], neurons_rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Per sweep (rows): ME against strength (median, IQR, population), additivity against strength, and ME
    against the best unisensory response of each neuron (the classic inverse-effectiveness scatter)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from .. import plots  # noqa: F401  (selects the non-interactive backend)
    from ..plots import save_figure

    sweeps = list(dict.fromkeys(r["sweep"] for r in levels))
    xlabel = {"contrast": "input contrast (x)", "snr": "mean SNR of the two modalities (dB)",
              "afferent": "afferent rate scale (x)"}  # fmt: skip
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(13, 3.4 * len(sweeps)), squeeze=False)
    for row, sweep in zip(axes, sweeps, strict=True):
        rs = [r for r in levels if r["sweep"] == sweep]
        x = np.array([r["strength"] for r in rs])
        for ax, key, unit, ref in ((row[0], "ME", 100, 0.0), (row[1], "AI", 1, 1.0)):
            lo, med, hi = (np.array([r[f"{key}_{q}"] for r in rs]) * unit for q in ("q25", "median", "q75"))
            ax.fill_between(x, lo, hi, alpha=0.25, label="IQR of neurons")
            ax.plot(x, med, "o-", label="median neuron")
            ax.plot(x, np.array([r[f"{key}_population"] for r in rs]) * unit, "s--", label="population")
            ax.axhline(ref, color="k", lw=0.8, ls=":")
            ax.set_xlabel(xlabel[sweep])
        row[0].set_ylabel("enhancement ME (%)")
        row[0].set_title(f"{sweep}: enhancement vs strength")
        row[0].legend(fontsize=7)
        row[1].set_ylabel("additivity CM / (A + V)")
        row[1].set_title("additivity (1 = additive)")
        ns = [n for n in neurons_rows if n["sweep"] == sweep and not math.isnan(n["ME"])]
        if ns:
            sc = row[2].scatter([n["best"] for n in ns], [100 * n["ME"] for n in ns], c=[n["strength"] for n in ns],
                                s=8, cmap="viridis")  # fmt: skip
            fig.colorbar(sc, ax=row[2], label="strength")
            row[2].set_xscale("log")
            row[2].xaxis.set_minor_formatter(NullFormatter())
        row[2].axhline(0, color="k", lw=0.8, ls=":")
        row[2].set_xlabel("best unisensory response (spikes / step)")
        row[2].set_ylabel("ME (%)")
        row[2].set_title("inverse effectiveness, per neuron")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, Path(path), 110)
    plt.close(fig)
    return path


# -- the command ---------------------------------------------------------------------------------------------------
@register_command("probe", description="multisensory responses of a checkpoint's integration layer (ME, additivity "
                  "against stimulus strength)")  # fmt: skip
def _probe_command(q) -> None:
    from ..argtypes import nonnegative_float, positive_int

    d = ProbeConfig()
    q.add_argument("checkpoint", help="best.pt / last.pt of a run with an integration layer (--fusion msi)")
    q.add_argument("--out", help="folder for probe.md / probe.csv / probe_neurons.csv / probe.png (default: beside it)")
    q.add_argument("--samples", type=positive_int, default=d.samples, help="test samples (trials) per level")
    q.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(d.sweeps), help="which input sweeps to run")
    q.add_argument("--contrast", nargs="+", type=nonnegative_float, default=list(d.contrast), help="input scales")
    q.add_argument("--snr", default=" ".join(f"{a:g},{v:g}" for a, v in d.snr),
                   help="'AUDIO_DB,IMAGE_DB' pairs separated by spaces, in one argument: --snr '-15,-5 0,10' "
                   "(one pair: --snr=-15,-5)")  # fmt: skip
    q.add_argument("--afferent", nargs="+", type=nonnegative_float, default=list(d.afferent),
                   help="scales of the encoders' output rates")  # fmt: skip
    q.add_argument("--min-rate", type=float, default=d.min_rate,
                   help="spikes per step below which a response counts as none (ME, AI undefined)")  # fmt: skip
    q.set_defaults(func=_run)


def _run(args) -> int:
    from ..argtypes import snr_pairs

    pcfg = ProbeConfig(samples=args.samples, sweeps=tuple(args.sweeps), contrast=tuple(args.contrast),
                       snr=tuple(snr_pairs("--snr", args.snr)), afferent=tuple(args.afferent),
                       min_rate=args.min_rate)  # fmt: skip
    probe_checkpoint(args.checkpoint, args.out, pcfg)
    return 0
