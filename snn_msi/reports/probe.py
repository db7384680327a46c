"""Probe a network's integration layer as physiologists probe multisensory neurons.

``snn-msi probe CHECKPOINT [CHECKPOINT ...]`` presents audio alone, the image alone and both together at several
stimulus strengths and records every neuron of the integration layer (the fusion's spiking population, ``msi`` or
``bn_product``): its firing rate (spikes per time step, mean over the T steps) on each trial. "Alone" means the
other stream is absent: zero spikes into the layer (:meth:`~snn_msi.models.fusion.SpikingIntegration.responses`).

Two layers are probed on the same encoders (the checkpoint's): the trained integration layer and the same layer
freshly initialised (the checkpoint's config and seed, untrained). What the untrained layer shows is built into its
equations (for ``msi``, ``(E_a + E_v)^2 >= E_a^2 + E_v^2``: enhancement that falls with strength); the difference
``trained - untrained`` is what training added.

Trials (``trials``):

- ``repeats`` (default): each neuron at its most effective stimulus (of the first ``samples`` test samples, the one
  whose best unisensory response is largest; for a neuron with no unisensory response to any, the one whose
  combined response is), presented ``repeats`` times with independent draws of the data set's SNR noise (the
  same clip and image, fresh noise: the data set's per-sample noise seed is redrawn). Per-neuron t-tests then
  measure trial-to-trial variability, as in physiology. Needs noise: an SNR in the checkpoint's data config
  (the ``snr`` sweep brings its own).
- ``stimuli``: the first ``samples`` test samples, one presentation each, every neuron's mean over them; its
  t-tests measure variability across stimuli (different digits, voices and images), not across repeats.

Three sweeps of strength (each modality at the same level):

- ``contrast``: the model's inputs scaled by ``c`` about their mean level (image contrast about mid-grey; the
  per-clip normalised spectrogram's contrast, i.e. loudness above the clip's average), at the checkpoint's SNR.
- ``snr``: the data set's SNR knob (``audio dB, image dB``), noise drawn per sample as in evaluation.
- ``afferent``: the encoders' output rates (the layer's input) scaled by ``p``: the layer itself, with the
  encoders' spontaneous activity taken out of the picture.

Per neuron and level (Meredith & Stein 1983; Stein & Stanford 2008):

- multisensory enhancement ``ME = (CM - max(A, V)) / max(A, V)`` where ``max(A, V) >= min_rate`` (a responsive
  neuron), the more effective cue chosen on the other half of the trials (:func:`best_unisensory`: the larger of
  two noisy means chosen on the trials that measure it reads depression in a neuron that does not integrate); a
  neuron with no unisensory response that fires to both is *emergent* (counted apart: its ME is undefined, not
  infinite);
- additivity ``AI = CM / (A + V)`` (responsive neurons, as ME): > 1 super-additive, < 1 sub-additive;
- significance over trials (paired, two-sided t at 5 %): enhanced / depressed (CM against the best unisensory
  response), super-additive (CM > A + V), sub-additive (CM < A + V);
- the same with an incongruent image (another class), the analogue of cues out of spatial register.

Per level: the distribution of ME over responsive neurons (median with its 95 % order-statistic interval, and the
IQR) and the population index ``ME_pop = (sum_j CM_j - sum_j max(A_j, V_j)) / sum_j max(A_j, V_j)`` over the
responsive neurons (each neuron against its own best modality; the earlier ``max(sum_j A_j, sum_j V_j)`` reads
+100 % for A-only and V-only neurons whose combined response equals their best). Inverse effectiveness is ME (and AI)
falling as strength rises. Written: ``probe.md`` and ``probe.csv`` (one row per sweep, level and layer:
``trained``, ``untrained`` and ``learned`` = trained - untrained), ``probe_neurons.csv`` (one row per neuron, layer,
sweep and level) and ``probe.png``. With several checkpoints (seeds), also ``probe_seeds.md`` / ``probe_seeds.csv``:
per level, the mean over checkpoints of each layer's index and of the learned difference, with a Student-t 95 %
interval over checkpoints.
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
from .stats import t_interval

SWEEPS = ("contrast", "snr", "afferent")
TRIALS = ("repeats", "stimuli")
LAYERS = ("trained", "untrained")
#: the per-level indices whose difference trained - untrained is reported (and summarised over checkpoints)
LEARNED = (
    "rate_A",
    "rate_V",
    "rate_CM",
    "ME_median",
    "ME_population",
    "AI_median",
    "AI_population",
    "frac_enhanced",
    "frac_depressed",
    "frac_super_additive",
    "frac_sub_additive",
)


@dataclass
class ProbeConfig:
    """What to present. ``snr`` levels are ``(audio dB, image dB)``; ``min_rate`` in spikes per step; ``samples``
    test samples are the trials (``trials="stimuli"``) or the candidates for each neuron's most effective stimulus,
    presented ``repeats`` times (``trials="repeats"``)."""

    samples: int = 128
    trials: str = "repeats"
    repeats: int = 20
    sweeps: tuple[str, ...] = SWEEPS
    contrast: tuple[float, ...] = (0.0, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    snr: tuple[tuple[float, float], ...] = ((-25, -15), (-20, -10), (-15, -5), (-10, 0), (-5, 5), (0, 10), (10, 20))
    afferent: tuple[float, ...] = (0.05, 0.1, 0.2, 0.3, 0.5, 0.7, 1.0)
    min_rate: float = 0.01
    batch_size: int = 128
    noise_snr: tuple[float, float] | None = None  # (audio dB, image dB) of the contrast and afferent sweeps

    def data(self, cfg):
        """The data config of the candidates and of the contrast and afferent sweeps (``cfg``: a TrainConfig)."""
        if self.noise_snr is None:
            return cfg.data
        return cfg.data.replace(audio_snr_db=float(self.noise_snr[0]), image_snr_db=float(self.noise_snr[1]))

    def check(self) -> None:
        bad = [s for s in self.sweeps if s not in SWEEPS]
        if bad or not self.sweeps:
            raise ValueError(f"sweeps must be some of {', '.join(SWEEPS)}, got {list(self.sweeps)}")
        if self.trials not in TRIALS:
            raise ValueError(f"trials must be one of {', '.join(TRIALS)}, got {self.trials!r}")
        if self.samples < 2 or self.batch_size < 1 or self.repeats < 2:
            raise ValueError(
                f"samples and repeats must be >= 2 and batch_size >= 1, got {self.samples}, "
                f"{self.repeats} and {self.batch_size}"
            )
        if any(not (math.isfinite(c) and c >= 0) for c in (*self.contrast, *self.afferent)):
            raise ValueError(
                f"contrast and afferent levels must be finite and >= 0, got {self.contrast}, {self.afferent}"
            )
        if self.noise_snr is not None and len(self.noise_snr) != 2:
            raise ValueError(f"noise_snr must be an (audio dB, image dB) pair, got {self.noise_snr}")
        if any(len(lv) != 2 for lv in self.snr):
            raise ValueError(f"snr levels must be (audio dB, image dB) pairs, got {self.snr}")
        if not self.min_rate > 0:
            raise ValueError(f"min_rate must be > 0, got {self.min_rate}")


# -- the layers ----------------------------------------------------------------------------------------------------
def integration_layer(model) -> torch.nn.Module:
    """The model's integration layer (a fusion with ``responses``), or a ValueError naming the fusion."""
    fusion = model.fusion
    if not callable(getattr(fusion, "responses", None)):
        name = getattr(getattr(model, "config", None), "fusion", type(fusion).__name__)
        raise ValueError(
            f"the model's fusion {name!r} has no integration neurons to probe; train with --fusion msi (or bn_product)"
        )
    return fusion


def initial_layer(cfg) -> torch.nn.Module:
    """The integration layer of ``cfg`` (a TrainConfig) as training starts: the model built from its config after
    seeding with its seed (as the trainer does), untrained, in evaluation mode. The global RNG is left as it was."""
    from ..models import build

    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(cfg.seed)
        model = build(cfg.model)
    return integration_layer(model).eval()


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
def layer_rates(
    fusion, a: torch.Tensor, v: torch.Tensor, perm: torch.Tensor | None = None, batch_size: int = 128
) -> dict[str, torch.Tensor]:
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


# -- the measures --------------------------------------------------------------------------------------------------
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


def best_unisensory(a: torch.Tensor, v: torch.Tensor) -> torch.Tensor:
    """Per trial and neuron ``[N, H]``, the response to the neuron's more effective cue alone, the cue chosen on
    the other half of the trials (even trials by the odd ones' means and vice versa; with one trial, on itself).

    The larger of two noisy means is biased upward (most where A ~ V and rates are low), so choosing the cue on
    the trials that then measure ``ME`` reads depression where a neuron does not integrate at all: -25 % at 0.05
    spikes per step with 20 trials of T = 4 (``tests/test_probe.py``); chosen on independent trials, 0."""
    even = (torch.arange(a.shape[0], device=a.device) % 2 == 0).unsqueeze(1)
    if a.shape[0] < 2:
        return torch.where(a.mean(0) >= v.mean(0), a, v)

    def a_wins(trials: torch.Tensor) -> torch.Tensor:
        return a[trials.squeeze(1)].mean(0) >= v[trials.squeeze(1)].mean(0)

    return torch.where(torch.where(even, a_wins(~even), a_wins(even)), a, v)


def neuron_table(rates: dict[str, torch.Tensor], min_rate: float) -> dict[str, torch.Tensor]:
    """Per-neuron statistics ``[H]`` from trial rates ``[N, H]`` (see the module docstring)."""
    a, v, cm = rates["a"], rates["v"], rates["cm"]
    ma, mv, mcm = a.mean(0), v.mean(0), cm.mean(0)
    best_trials = best_unisensory(a, v)
    best = best_trials.mean(0)
    nan = torch.full_like(best, float("nan"))
    responsive = best >= min_rate
    me = torch.where(responsive, (mcm - best) / best.clamp_min(1e-12), nan)
    total = ma + mv
    ai = torch.where(responsive, mcm / total.clamp_min(1e-12), nan)  # as ME and AI_population: emergent apart
    enhanced, depressed = _significant(cm - best_trials)
    super_add, sub_add = _significant(cm - (a + v))
    table = {
        "A": ma,
        "V": mv,
        "CM": mcm,
        "A_sd": a.std(0),
        "V_sd": v.std(0),
        "CM_sd": cm.std(0),
        "best": best,
        "ME": me,
        "AI": ai,
        "responsive": responsive,
        "emergent": (~responsive) & (mcm >= min_rate),
        "enhanced": enhanced & responsive,
        "depressed": depressed & responsive,
        "super_additive": super_add,
        "sub_additive": sub_add,
    }
    if "cm_incongruent" in rates:
        mi = rates["cm_incongruent"].mean(0)
        table["CM_incongruent"] = mi
        table["ME_incongruent"] = torch.where(responsive, (mi - best) / best.clamp_min(1e-12), nan)
    return table


def median_interval(x: torch.Tensor, level: float = 0.95) -> tuple[float, float, float]:
    """``(median, low, high)`` of the non-NaN values: the distribution-free order-statistic interval of the median
    (``[x_(k), x_(n+1-k)]`` with the largest k such that ``P(Binomial(n, 1/2) < k) <= (1 - level) / 2``; its
    coverage is at least ``level``). The bounds are NaN for fewer than 6 values (no such k at 95 %)."""
    from scipy import stats

    x = torch.sort(x[~torch.isnan(x)].double()).values
    n = x.numel()
    if n == 0:
        return float("nan"), float("nan"), float("nan")
    med = float(torch.quantile(x, 0.5))
    k = int(stats.binom.ppf((1 - level) / 2, n, 0.5))  # smallest k with P(B <= k) >= alpha / 2
    if stats.binom.cdf(k, n, 0.5) > (1 - level) / 2:
        k -= 1  # now P(B <= k) <= alpha / 2: the interval [x_(k+1), x_(n-k)] (1-based)
    if k < 0:
        return med, float("nan"), float("nan")
    return med, float(x[k]), float(x[n - 1 - k])


def _quantiles(x: torch.Tensor, name: str) -> dict[str, float]:
    """``{name_q25, name_q75}``: the quartiles of the non-NaN values of ``x`` (NaN if none)."""
    x = x[~torch.isnan(x)]
    if x.numel() == 0:
        return {f"{name}_q25": float("nan"), f"{name}_q75": float("nan")}
    q = torch.quantile(x.double(), torch.tensor([0.25, 0.75], dtype=torch.float64))
    return {f"{name}_q25": float(q[0]), f"{name}_q75": float(q[1])}


def _ratio_of_sums(num: torch.Tensor, den: torch.Tensor) -> float:
    d = float(den.sum())
    return float(num.sum()) / d if d > 0 else float("nan")


def level_summary(
    table: dict[str, torch.Tensor], rates: dict[str, torch.Tensor], labels: torch.Tensor, trials: int | None = None
) -> dict:
    """One row per level: population rates, ME and AI distributions, population indices, counts of responsive,
    emergent and significant neurons, and the fused accuracy of ``rates["logits"]`` against ``labels``.

    ``ME_population = (sum CM - sum best) / sum best`` and ``AI_population = sum CM / sum (A + V)``, both over the
    responsive neurons; ``CM_emergent_share`` is the emergent neurons' share of the combined response's spikes.
    ``trials``: trials per neuron (default ``len(labels)``)."""
    h = table["A"].numel()
    me, me_lo, me_hi = median_interval(table["ME"])
    ai, ai_lo, ai_hi = median_interval(table["AI"])
    r = table["responsive"]
    row = {
        "neurons": h,
        "trials": len(labels) if trials is None else trials,
        "responsive": int(r.sum()),
        "emergent": int(table["emergent"].sum()),
        "rate_A": float(table["A"].mean()),
        "rate_V": float(table["V"].mean()),
        "rate_CM": float(table["CM"].mean()),
        "ME_median": me,
        "ME_ci_low": me_lo,
        "ME_ci_high": me_hi,
        **_quantiles(table["ME"], "ME"),
        "ME_population": (_ratio_of_sums(table["CM"][r], table["best"][r]) - 1) if bool(r.any()) else float("nan"),
        "AI_median": ai,
        "AI_ci_low": ai_lo,
        "AI_ci_high": ai_hi,
        **_quantiles(table["AI"], "AI"),
        "AI_population": _ratio_of_sums(table["CM"][r], table["A"][r] + table["V"][r]),
        "CM_emergent_share": _ratio_of_sums(table["CM"][table["emergent"]], table["CM"]),
        "frac_enhanced": float(table["enhanced"].sum()) / h,
        "frac_depressed": float(table["depressed"].sum()) / h,
        "frac_super_additive": float(table["super_additive"].sum()) / h,
        "frac_sub_additive": float(table["sub_additive"].sum()) / h,
        "acc_fused": float((rates["logits"].argmax(1) == labels).float().mean()),
    }
    row["ME_incongruent_median"] = median_interval(table.get("ME_incongruent", torch.tensor([])))[0]
    return row


def learned_row(trained: dict, untrained: dict) -> dict:
    """``trained - untrained`` for the indices of :data:`LEARNED`; the level's identity copied, the rest NaN."""
    return {
        k: (
            trained[k] - untrained[k]
            if k in LEARNED
            else trained[k]
            if k in ("sweep", "strength", "level", "neurons", "trials")
            else float("nan")
        )
        for k in trained
    } | {"layer": "learned"}


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


# -- the stimuli and the trials ------------------------------------------------------------------------------------
def test_set(data_cfg, seed: int):
    """The test split of a data config (its own noise: one fixed draw per sample)."""
    from ..data import DATASETS

    return DATASETS.get(data_cfg.dataset).factory(data_cfg, "test", seed, None)


def _batch(dataset, indices: list[int]):
    from torch.utils.data import DataLoader, Subset

    return next(iter(DataLoader(Subset(dataset, indices), batch_size=len(indices))))


def first_test_samples(data_cfg, seed: int, samples: int, test=None):
    """One batch of the first ``samples`` test samples of a data config (the same every call); ``test``: its test
    split if already built (:func:`test_set`)."""
    test = test_set(data_cfg, seed) if test is None else test
    if data_cfg.limit:
        samples = min(samples, data_cfg.limit)
    return _batch(test, list(range(min(samples, len(test)))))


def noise_draw_seed(seed: int, draw: int) -> int:
    """The data set seed of noise draw ``draw`` >= 1 of a run seeded ``seed`` (0: the run's own evaluation draw)."""
    return seed if draw == 0 else 1_000_003 * (seed + 1) + draw


def repeated_presentations(data_cfg, seed: int, indices: list[int], repeats: int, test=None):
    """Test samples ``indices`` presented ``repeats`` times with independent draws of the data set's noise:
    ``(audio [R*U, ...], frames [R*U, ...], labels [R*U])``, draw r's samples at rows ``r*U .. r*U + U - 1``.

    A data set fixes each test sample's noise with its seed (which, after construction, seeds nothing else: the
    pairing of clips and the splits are made when it is built); draw r sets that seed to
    :func:`noise_draw_seed` (and restores it). Without noise (no SNR) every draw is the same: a ValueError.
    ``test``: the data config's test split if already built (:func:`test_set`)."""
    if data_cfg.snr() == (None, None):
        raise ValueError(
            "--trials repeats needs noise to repeat: the checkpoint's data has no SNR (set "
            "--noise-snr AUDIO_DB,IMAGE_DB, or use --trials stimuli)"
        )
    test = test_set(data_cfg, seed) if test is None else test
    own = getattr(test, "seed", None)
    if not isinstance(own, int):
        raise ValueError(f"data set {data_cfg.dataset!r} has no per-sample noise seed to redraw; use --trials stimuli")
    parts = []
    try:
        for r in range(1, repeats + 1):
            test.seed = noise_draw_seed(seed, r)
            parts.append(_batch(test, indices))
    finally:
        test.seed = own
    return (
        torch.cat([p.audio for p in parts]),
        torch.cat([p.frames for p in parts]),
        torch.cat([torch.as_tensor(p.label) for p in parts]),
    )


def most_effective(rates: dict[str, torch.Tensor], min_rate: float) -> torch.Tensor:
    """Per neuron ``[H]``: the index of the stimulus (row of ``rates[k] [N, H]``) that drives it most: the largest
    best unisensory response ``max(A, V)``; for a neuron with no unisensory response to any stimulus, the largest
    combined response."""
    best = torch.maximum(rates["a"], rates["v"])
    unisensory = best.max(0).values >= min_rate
    return torch.where(unisensory, best.argmax(0), rates["cm"].argmax(0))


@dataclass
class Level:
    """One level of one sweep: the integration layer's inputs ``a, v [T, N, D]`` of ``N`` presentations."""

    sweep: str
    strength: float
    label: str
    a: torch.Tensor
    v: torch.Tensor
    labels: torch.Tensor


def _levels(model, cfg, pcfg: ProbeConfig, stimuli: list[int] | None, base_set=None):
    """Yield every :class:`Level` of ``pcfg``: the first test samples once each (``stimuli=None``) or the test
    samples ``stimuli`` presented ``pcfg.repeats`` times with fresh noise. ``base_set``: the test split of
    ``pcfg.data(cfg)`` if already built."""

    def present(data_cfg, test=None):
        if stimuli is None:
            b = first_test_samples(data_cfg, cfg.seed, pcfg.samples, test)
            return b.audio, b.frames, torch.as_tensor(b.label)
        return repeated_presentations(data_cfg, cfg.seed, stimuli, pcfg.repeats, test)

    base = present(pcfg.data(cfg), base_set) if {"contrast", "afferent"} & set(pcfg.sweeps) else None
    full = None  # the encoders' output at full strength, shared by the contrast and afferent sweeps
    if "contrast" in pcfg.sweeps:
        audio, frames, labels = base
        for c in pcfg.contrast:
            a, v = features(model, audio * c, frames * c, pcfg.batch_size)
            full = (a, v) if c == 1 else full
            yield Level("contrast", float(c), f"contrast x{c:g}", a, v, labels)
    if "snr" in pcfg.sweeps:
        for adb, vdb in pcfg.snr:
            audio, frames, labels = present(cfg.data.replace(audio_snr_db=float(adb), image_snr_db=float(vdb)))
            a, v = features(model, audio, frames, pcfg.batch_size)
            yield Level("snr", (adb + vdb) / 2, f"audio {adb:g} dB, image {vdb:g} dB", a, v, labels)
    if "afferent" in pcfg.sweeps:
        a1, v1 = full or features(model, base[0], base[1], pcfg.batch_size)
        for p in pcfg.afferent:
            yield Level("afferent", float(p), f"afferent rates x{p:g}", a1 * p, v1 * p, base[2])


# -- the probe of a model ------------------------------------------------------------------------------------------
@dataclass
class ProbeResult:
    levels: list[dict] = field(default_factory=list)  # one row per sweep, level and layer (trained, untrained, learned)
    neurons: list[dict] = field(default_factory=list)  # one row per neuron, layer, sweep and level
    stimuli: dict[str, list[int]] = field(default_factory=dict)  # per layer: each neuron's stimulus (repeats)
    head: str = ""  # what was probed and how (the first line of probe.md)


def probe_model(model, cfg, pcfg: ProbeConfig | None = None, untrained: torch.nn.Module | None = None) -> ProbeResult:
    """Run every sweep of ``pcfg`` on the integration layer of ``model`` (an AVNet whose config is ``cfg``, a
    TrainConfig) and on ``untrained`` (default :func:`initial_layer` of ``cfg``), both on ``model``'s encoders."""
    pcfg = pcfg or ProbeConfig()
    pcfg.check()
    model.eval()
    layers = {"trained": integration_layer(model), "untrained": untrained or initial_layer(cfg)}
    result = ProbeResult()
    needs_base = pcfg.trials == "repeats" or bool({"contrast", "afferent"} & set(pcfg.sweeps))
    stimuli, base_set = None, test_set(pcfg.data(cfg), cfg.seed) if needs_base else None
    if pcfg.trials == "repeats":  # each neuron's most effective of the first test samples, in each layer
        base = first_test_samples(pcfg.data(cfg), cfg.seed, pcfg.samples, base_set)
        a, v = features(model, base.audio, base.frames, pcfg.batch_size)
        chosen = {
            k: most_effective(layer_rates(layer, a, v, None, pcfg.batch_size), pcfg.min_rate)
            for k, layer in layers.items()
        }
        result.stimuli = {k: c.tolist() for k, c in chosen.items()}
        stimuli = sorted(set(torch.cat(list(chosen.values())).tolist()))
        where = {s: i for i, s in enumerate(stimuli)}
        draws = torch.arange(pcfg.repeats).unsqueeze(1) * len(stimuli)
        rows = {k: draws + torch.tensor([where[s] for s in c.tolist()]).unsqueeze(0) for k, c in chosen.items()}
    for lv in _levels(model, cfg, pcfg, stimuli, base_set):
        perm = incongruent_partner(lv.labels)
        ident = {"sweep": lv.sweep, "strength": lv.strength, "level": lv.label}
        summary = {}
        for name, layer in layers.items():
            rates = layer_rates(layer, lv.a, lv.v, perm, pcfg.batch_size)
            trial = rates
            if stimuli is not None:  # neuron j's trials: the presentations of its own stimulus
                cols = torch.arange(rows[name].shape[1]).unsqueeze(0)
                trial = {k: x[rows[name], cols] for k, x in rates.items() if k != "logits"}
            table = neuron_table(trial, pcfg.min_rate)
            n_trials = pcfg.repeats if stimuli is not None else len(lv.labels)
            summary[name] = {**ident, "layer": name, **level_summary(table, rates, lv.labels, n_trials)}
            for j in range(table["A"].numel()):
                result.neurons.append(
                    {
                        **ident,
                        "layer": name,
                        "neuron": j,
                        "stimulus": result.stimuli[name][j] if stimuli is not None else -1,
                        **{k: (float(t[j]) if t.dtype.is_floating_point else int(t[j])) for k, t in table.items()},
                    }
                )
        result.levels += [
            summary["trained"],
            summary["untrained"],
            learned_row(summary["trained"], summary["untrained"]),
        ]
    return result


# -- checkpoints -----------------------------------------------------------------------------------------------------
def _trials_line(pcfg: ProbeConfig, cfg, result: ProbeResult) -> str:
    if pcfg.trials == "repeats":
        a_db, v_db = pcfg.noise_snr or cfg.data.snr()
        n = len(set(result.stimuli.get("trained", [])) | set(result.stimuli.get("untrained", [])))
        return (
            f"trials: repeats, each neuron at its most effective of the first {pcfg.samples} test samples "
            f"({n} distinct), presented {pcfg.repeats} times with independent noise (audio {a_db} dB, image "
            f"{v_db} dB; the snr sweep at its own levels): t-tests over repeated presentations"
        )
    n = result.levels[0]["trials"]
    return (
        f"trials: stimuli, {n} test samples presented once each: t-tests over different stimuli, not over "
        "repeats of one"
    )


def probe_checkpoint(
    checkpoint: str | Path,
    out: str | Path | None = None,
    pcfg: ProbeConfig | None = None,
    quiet: bool = False,
    data_root: str | Path | None = None,
) -> ProbeResult:
    """Probe one checkpoint (trained and untrained layer); write ``probe.md``, ``probe.csv``, ``probe_neurons.csv``
    and ``probe.png`` in ``out`` (default: ``probe/`` beside the checkpoint); ``data_root``: the data's folder
    where it moved."""
    from ..training import load_model
    from ..training.rundir import checkpoint_file

    pcfg = pcfg or ProbeConfig()
    checkpoint = checkpoint_file(checkpoint)
    model, cfg = load_model(checkpoint, data_root=data_root)
    result = probe_model(model, cfg, pcfg)
    out = Path(out) if out else Path(checkpoint).parent / "probe"
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "probe.csv", result.levels)
    write_csv(out / "probe_neurons.csv", result.neurons)
    result.head = head = (
        f"Integration layer of {checkpoint} ({cfg.model.fusion}, {cfg.model.neuron}, "
        f"{result.levels[0]['neurons']} neurons, T = {cfg.model.T}), trained and untrained (the same config and "
        f"seed {cfg.seed}, freshly initialised) on the checkpoint's encoders; learned = trained - untrained. "
        f"{_trials_line(pcfg, cfg, result)}."
    )
    md = markdown_table(result.levels)
    write_text(out / "probe.md", head + "\n\n" + md + "\n")
    probe_plot(result.levels, result.neurons, out / "probe.png", title=f"{cfg.model.fusion}: {checkpoint}")
    if not quiet:
        print(head + "\n\n" + md)
        print(f"\nwrote {out / 'probe.md'}, {out / 'probe.csv'}, {out / 'probe_neurons.csv'}, {out / 'probe.png'}")
    return result


def find_checkpoints(paths: list[str | Path]) -> list[Path]:
    """Checkpoint files from ``paths``: a file is itself; a folder gives its own ``best.pt`` or, failing that,
    every ``best.pt`` below it (a folder of runs), sorted. A path that gives none is a FileNotFoundError."""
    found = []
    for p in map(Path, paths):
        if p.is_file():
            found.append(p)
        elif p.is_dir():
            runs = [p / "best.pt"] if (p / "best.pt").is_file() else sorted(p.rglob("best.pt"))
            if not runs:
                raise FileNotFoundError(f"{p}: no best.pt in this folder or below it")
            found += runs
        else:
            raise FileNotFoundError(f"{p}: no such checkpoint or folder")
    return list(dict.fromkeys(found))


def _t_interval(x: list[float]) -> tuple[float, float, float]:
    """:func:`~snn_msi.reports.stats.t_interval` of ``x`` with NaNs dropped (all NaN for no value left)."""
    d = [v for v in x if not math.isnan(v)]
    return t_interval(d) if d else (math.nan, math.nan, math.nan)


SEED_KEYS = ("ME_population", "ME_median", "AI_population", "AI_median", "frac_super_additive")


def seeds_summary(results: list[ProbeResult]) -> list[dict]:
    """Per sweep and level, over checkpoints: the mean of each index of :data:`SEED_KEYS` in the trained and the
    untrained layer, and the learned difference with its 95 % Student-t interval over the checkpoints where both
    layers have it (``KEY_learned_n``; a layer with no responsive neuron has none)."""
    by_level: dict[tuple, list[dict]] = {}
    for res in results:
        for r in res.levels:
            by_level.setdefault((r["sweep"], r["strength"], r["level"]), []).append(r)
    rows = []
    for (sweep, strength, level), rs in by_level.items():
        row = {"sweep": sweep, "strength": strength, "level": level, "checkpoints": len(rs) // 3}
        for key in SEED_KEYS:
            for layer in LAYERS:
                row[f"{key}_{layer}"] = _t_interval([r[key] for r in rs if r["layer"] == layer])[0]
            learned = [r[key] for r in rs if r["layer"] == "learned"]
            m, lo, hi = _t_interval(learned)
            n = sum(not math.isnan(v) for v in learned)  # a layer with no responsive neuron has no index
            row |= {f"{key}_learned": m, f"{key}_learned_low": lo, f"{key}_learned_high": hi, f"{key}_learned_n": n}
        rows.append(row)
    return rows


def probe_checkpoints(
    paths: list[str | Path],
    out: str | Path | None = None,
    pcfg: ProbeConfig | None = None,
    quiet: bool = False,
    data_root: str | Path | None = None,
) -> tuple[list[ProbeResult], list[dict]]:
    """``snn-msi probe``: probe each checkpoint of ``paths`` (:func:`find_checkpoints`). One checkpoint: its files
    in ``out`` (default ``probe/`` beside it). Several: each one's files in ``out/<run folder name>/`` and the
    summary over them in ``out/probe_seeds.md`` / ``probe_seeds.csv`` (default ``out``: ``probe/`` in the folder
    that holds all their run folders)."""
    checkpoints = find_checkpoints(paths)
    pcfg = pcfg or ProbeConfig()
    pcfg.check()
    if len(checkpoints) == 1:
        return [probe_checkpoint(checkpoints[0], out, pcfg, quiet, data_root)], []
    import os

    out = Path(out) if out else Path(os.path.commonpath([c.resolve().parent.parent for c in checkpoints])) / "probe"
    names = [c.parent.name for c in checkpoints]
    if len(set(names)) < len(names):
        names = [f"{i}_{n}" for i, n in enumerate(names)]
    results = [
        probe_checkpoint(c, out / n, pcfg, quiet=True, data_root=data_root)
        for c, n in zip(checkpoints, names, strict=True)
    ]
    summary = seeds_summary(results)
    out.mkdir(parents=True, exist_ok=True)
    write_csv(out / "probe_seeds.csv", summary)
    head = (
        f"{len(checkpoints)} checkpoints ({', '.join(map(str, checkpoints))}): mean over checkpoints of each "
        "layer's index and the learned difference (trained - untrained) with its 95 % Student-t interval over "
        "checkpoints."
    )
    md = seeds_table(summary)
    write_text(out / "probe_seeds.md", head + "\n\n" + md + "\n")
    if not quiet:
        for c, n, res in zip(checkpoints, names, results, strict=True):
            print(f"## {c}\n\n{res.head}\n\n{markdown_table(res.levels)}\n\n(files in {out / n})\n")
        print(head + "\n\n" + md)
        print(f"\nwrote {out / 'probe_seeds.md'}, {out / 'probe_seeds.csv'}")
    return results, summary


# -- tables and the plot -----------------------------------------------------------------------------------------
def _pct(x: float) -> str:
    return "-" if math.isnan(x) else f"{100 * x:+.0f}"


def _ratio(x: float, signed: bool = False) -> str:
    return "-" if math.isnan(x) else (f"{x:+.2f}" if signed else f"{x:.2f}")


def _count(row: dict, key: str) -> str:
    """A share of the neurons as a count (signed on a ``learned`` row)."""
    n = round(row[key] * row["neurons"])
    return f"{n:+d}" if row["layer"] == "learned" else f"{n}"


def markdown_table(levels: list[dict]) -> str:
    """One line per sweep, level and layer; the ``learned`` line holds the differences trained - untrained (ME in
    percentage points, AI in units, neurons in counts)."""
    lines = [
        "| sweep | level | layer | rate A | rate V | rate CM | responsive / emergent | ME % median [95 % CI] | "
        "ME % pop. | AI median [95 % CI] | AI pop. | enhanced / depressed | super- / sub-add. | "
        "ME % incongr. | fused acc % |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for r in levels:
        h = r["neurons"]
        if r["layer"] == "learned":
            rates = f"{r['rate_A']:+.3f} | {r['rate_V']:+.3f} | {r['rate_CM']:+.3f} | |"
            me = f"{_pct(r['ME_median'])} | {_pct(r['ME_population'])}"
            ai = f"{_ratio(r['AI_median'], True)} | {_ratio(r['AI_population'], True)}"
            tail = " | "
        else:
            rates = (
                f"{r['rate_A']:.3f} | {r['rate_V']:.3f} | {r['rate_CM']:.3f} | "
                f"{r['responsive']} / {r['emergent']} of {h}"
            )
            me = (
                f"{_pct(r['ME_median'])} [{_pct(r['ME_ci_low'])}, {_pct(r['ME_ci_high'])}] | {_pct(r['ME_population'])}"
            )
            ai = (
                f"{_ratio(r['AI_median'])} [{_ratio(r['AI_ci_low'])}, {_ratio(r['AI_ci_high'])}] | "
                f"{_ratio(r['AI_population'])}"
            )
            tail = f"{_pct(r['ME_incongruent_median'])} | {100 * r['acc_fused']:.1f}"
        lines.append(
            f"| {r['sweep']} | {r['level']} | {r['layer']} | {rates} | {me} | {ai} | "
            f"{_count(r, 'frac_enhanced')} / {_count(r, 'frac_depressed')} | "
            f"{_count(r, 'frac_super_additive')} / {_count(r, 'frac_sub_additive')} | {tail} |"
        )
    return "\n".join(lines)


def seeds_table(summary: list[dict]) -> str:
    lines = [
        "| sweep | level | n | ME % pop. trained / untrained | learned [95 % CI] | ME % median trained / "
        "untrained | learned [95 % CI] | AI pop. trained / untrained | learned [95 % CI] |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def cell(key, fmt):
        n = r.get(f"{key}_learned_n", r["checkpoints"])
        fewer = f" (n = {n})" if 0 < n < r["checkpoints"] else ""  # over the checkpoints that have the index
        return (
            f"{fmt(r[f'{key}_trained'])} / {fmt(r[f'{key}_untrained'])} | {fmt(r[f'{key}_learned'])} "
            f"[{fmt(r[f'{key}_learned_low'])}, {fmt(r[f'{key}_learned_high'])}]{fewer}"
        )

    for r in summary:
        lines.append(
            f"| {r['sweep']} | {r['level']} | {r['checkpoints']} | {cell('ME_population', _pct)} | "
            f"{cell('ME_median', _pct)} | {cell('AI_population', lambda x: _ratio(x, True))} |"
        )
    return "\n".join(lines)


def probe_plot(levels: list[dict], neurons_rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Per sweep (rows): ME against strength (median neuron with its 95 % interval, population index) and
    additivity against strength, for the trained and the untrained layer; and ME against the best unisensory
    response of each trained neuron (the classic inverse-effectiveness scatter)."""
    import matplotlib.pyplot as plt
    from matplotlib.ticker import NullFormatter

    from .. import plots  # noqa: F401  (selects the non-interactive backend)
    from ..plots import save_figure

    sweeps = list(dict.fromkeys(r["sweep"] for r in levels))
    xlabel = {
        "contrast": "input contrast (x)",
        "snr": "mean SNR of the two modalities (dB)",
        "afferent": "afferent rate scale (x)",
    }
    style = {"trained": ("C0", "-"), "untrained": ("0.5", "--")}
    fig, axes = plt.subplots(len(sweeps), 3, figsize=(13, 3.4 * len(sweeps)), squeeze=False)
    for row, sweep in zip(axes, sweeps, strict=True):
        for ax, key, unit, ref in ((row[0], "ME", 100, 0.0), (row[1], "AI", 1, 1.0)):
            for layer, (color, ls) in style.items():
                rs = [r for r in levels if r["sweep"] == sweep and r["layer"] == layer]
                if not rs:
                    continue
                x = np.array([r["strength"] for r in rs])
                lo, med, hi = (np.array([r[f"{key}_{q}"] for r in rs]) * unit for q in ("ci_low", "median", "ci_high"))
                ax.fill_between(x, lo, hi, color=color, alpha=0.2, lw=0)
                ax.plot(x, med, "o" + ls, color=color, ms=4, label=f"{layer}: median neuron (95 % CI)")
                ax.plot(
                    x,
                    np.array([r[f"{key}_population"] for r in rs]) * unit,
                    "s" + ls,
                    color=color,
                    ms=4,
                    mfc="none",
                    alpha=0.8,
                    label=f"{layer}: population",
                )
            ax.axhline(ref, color="k", lw=0.8, ls=":")
            ax.set_xlabel(xlabel[sweep])
        row[0].set_ylabel("enhancement ME (%)")
        row[0].set_title(f"{sweep}: enhancement vs strength")
        row[0].legend(fontsize=6)
        row[1].set_ylabel("additivity CM / (A + V)")
        row[1].set_title("additivity (1 = additive)")
        ns = [n for n in neurons_rows if n["sweep"] == sweep and n["layer"] == "trained" and not math.isnan(n["ME"])]
        if ns:
            sc = row[2].scatter(
                [n["best"] for n in ns], [100 * n["ME"] for n in ns], c=[n["strength"] for n in ns], s=8, cmap="viridis"
            )
            fig.colorbar(sc, ax=row[2], label="strength")
            row[2].set_xscale("log")
            row[2].xaxis.set_minor_formatter(NullFormatter())
        row[2].axhline(0, color="k", lw=0.8, ls=":")
        row[2].set_xlabel("best unisensory response (spikes / step)")
        row[2].set_ylabel("ME (%)")
        row[2].set_title("inverse effectiveness, per trained neuron")
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout()
    save_figure(fig, Path(path), 110)
    plt.close(fig)
    return Path(path)


# -- the command ---------------------------------------------------------------------------------------------------
@register_command(
    "probe",
    description="multisensory responses of a checkpoint's integration layer, trained and "
    "untrained (ME, additivity against stimulus strength)",
)
def _probe_command(q) -> None:
    from ..argtypes import int_at_least, nonnegative_float

    d = ProbeConfig()
    q.add_argument(
        "checkpoint",
        nargs="+",
        help="best.pt / last.pt of a run with an integration layer (--fusion "
        "msi), several (seeds), or a folder of runs (every best.pt below it)",
    )
    q.add_argument("--data-root", help="the data's folder, where it is not where the run(s) found it")
    q.add_argument(
        "--out",
        help="folder for probe.md / probe.csv / probe_neurons.csv / probe.png (default: beside "
        "the checkpoint; several: probe/ in the folder holding their runs, one subfolder per run and "
        "probe_seeds.md)",
    )
    q.add_argument(
        "--trials",
        choices=TRIALS,
        default=d.trials,
        help="repeats: each neuron at its most effective stimulus, presented --repeats times with "
        "independent noise (t-tests over trial-to-trial variability); stimuli: --samples test samples "
        "once each (t-tests over stimuli)",
    )
    q.add_argument("--repeats", type=int_at_least(2), default=d.repeats, help="presentations per stimulus (repeats)")
    q.add_argument(
        "--samples",
        type=int_at_least(2),
        default=d.samples,
        help="test samples: the trials (stimuli) or the candidate stimuli (repeats)",
    )
    q.add_argument(
        "--noise-snr",
        metavar="AUDIO_DB,IMAGE_DB",
        help="SNR of the candidates and of the contrast and afferent sweeps (default: the checkpoint's)",
    )
    q.add_argument("--sweeps", nargs="+", choices=SWEEPS, default=list(d.sweeps), help="which input sweeps to run")
    q.add_argument("--contrast", nargs="+", type=nonnegative_float, default=list(d.contrast), help="input scales")
    q.add_argument(
        "--snr",
        default=" ".join(f"{a:g},{v:g}" for a, v in d.snr),
        help="'AUDIO_DB,IMAGE_DB' pairs separated by spaces, in one argument: --snr '-15,-5 0,10' "
        "(one pair: --snr -15,-5)",
    )
    q.add_argument(
        "--afferent",
        nargs="+",
        type=nonnegative_float,
        default=list(d.afferent),
        help="scales of the encoders' output rates",
    )
    q.add_argument(
        "--min-rate",
        type=float,
        default=d.min_rate,
        help="spikes per step below which a response counts as none (ME, AI undefined)",
    )
    q.set_defaults(func=_run)


def _run(args) -> int:
    from ..argtypes import snr_pairs

    noise = None
    if args.noise_snr is not None:
        pairs = snr_pairs("--noise-snr", args.noise_snr)
        if len(pairs) != 1:
            raise ValueError(f"--noise-snr: expected one 'AUDIO_DB,IMAGE_DB' pair, got {args.noise_snr!r}")
        noise = pairs[0]
    pcfg = ProbeConfig(
        samples=args.samples,
        trials=args.trials,
        repeats=args.repeats,
        noise_snr=noise,
        sweeps=tuple(args.sweeps),
        contrast=tuple(args.contrast),
        snr=tuple(snr_pairs("--snr", args.snr)),
        afferent=tuple(args.afferent),
        min_rate=args.min_rate,
    )
    probe_checkpoints(args.checkpoint, args.out, pcfg, data_root=args.data_root)
    return 0
