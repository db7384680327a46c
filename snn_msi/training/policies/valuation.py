"""Sample-level and modality-level valuation: value each modality's Shapley contribution to the fused
prediction, then resample the training set so that low-contribution modalities get more training alone.

Wei, Feng, Wang & Hu, "Enhancing multimodal cooperation via sample-level modality valuation", CVPR 2024 (arXiv
2309.06255); code: github.com/GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation@7ed12b0
(``code/sample_level.py`` and ``code/modality_level.py: execute_modulation``; ``code/datasets/dataloader.py:
AV_KS_Dataset_sample_level, AV_KS_Dataset_modality_level``; ``code/models/models.py: AVClassifier.exec_drop``).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch

from ...schema import check
from . import register_method
from .base import (
    DROP_AUDIO,
    DROP_NONE,
    DROP_VISUAL,
    Composition,
    EpochView,
    ForwardContext,
    Policy,
    PolicyConfig,
    SamplePlan,
    log_fields,
    unmasked_heads,
)


@dataclass
class ValuationConfig(PolicyConfig):
    """``warmup``: the first epoch trained on a resampled set (the official code values the modalities after
    every epoch from ``warmup - 1`` = 4 on, for the next epoch)."""

    warmup: int = field(default=5, metadata=check(ge=0))


def contributions(correct_a: torch.Tensor, correct_v: torch.Tensor, correct_av: torch.Tensor):
    """Per-sample Shapley values ``(phi_a, phi_v)`` with the official value ``v(S) = |S| * 1[prediction of S is
    right]`` (``v({}) = 0``): ``phi_a = (v_a + v_av - v_v) / 2``. Correct (a, v, av) = (1, 0, 1): (1.5, 0.5)."""
    v_a, v_v, v_av = correct_a.float(), correct_v.float(), 2.0 * correct_av.float()
    return (v_a + v_av - v_v) / 2, (v_v + v_av - v_a) / 2


def sample_copies(phi: torch.Tensor) -> torch.Tensor:
    """Extra copies of a sample in which only this modality is kept, from its contribution: 1 for
    ``0.4 < phi < 1``, 2 for ``-0.1 < phi < 0.4``, 3 for ``phi < -0.1``, else 0 (the official thresholds, open
    intervals: a value on a boundary gets none)."""
    c = torch.zeros_like(phi, dtype=torch.long)
    c[(phi > 0.4) & (phi < 1)] = 1
    c[(phi > -0.1) & (phi < 0.4)] = 2
    c[phi < -0.1] = 3
    return c


def sample_plan(phi_a: torch.Tensor, phi_v: torch.Tensor, index: torch.Tensor) -> SamplePlan:
    """Every sample once, then each sample's audio-only copies (visual dropped) and visual-only copies."""
    n_a, n_v = sample_copies(phi_a), sample_copies(phi_v)
    extra_a = torch.repeat_interleave(index, n_a)
    extra_v = torch.repeat_interleave(index, n_v)
    indices = torch.cat([index, extra_a, extra_v])
    drop = torch.cat(
        [torch.full_like(index, DROP_NONE), torch.full_like(extra_a, DROP_VISUAL), torch.full_like(extra_v, DROP_AUDIO)]
    )
    return SamplePlan(indices, drop)


def modality_gap(mean_a: float, mean_v: float, alpha: float, mode: str) -> float:
    """How many extra copies, as a fraction of the set: from the gaps ``1 - mean phi_m``, ``|gap_a - gap_v| * 2/3
    * alpha`` (``linear``), its tanh (``tanh``), or ``(|gap_a - gap_v| * 2/3)^1.5 * alpha`` (``square``).
    Means (0.8, 1.1), alpha 1: 0.2."""
    diff = abs((1.0 - mean_a) - (1.0 - mean_v)) * 2.0 / 3.0
    if mode == "linear":
        return diff * alpha
    if mode == "tanh":
        return float(torch.tanh(torch.tensor(diff * alpha)))
    return diff**1.5 * alpha


class _Valuation(Policy):
    """Shared by both methods: the valuation pass and the training forward with the planned drops."""

    data_parallel = False  # the plan is made from one process's pass over the whole training set

    #: logged each step: mean Shapley contributions, the extra copies' fraction and the batch's dropped fraction.
    log_class = log_fields("ValuationLog", phi_audio=0.0, phi_visual=0.0, extra_fraction=0.0, dropped_in_batch=0.0)

    def valuate(self, view: EpochView):
        """Per-sample correctness of the fused prediction with both modalities, audio alone and visual alone
        (the other's features set to zero before the fusion: ``exec_drop``), evaluation mode, over the training
        set in order; the Shapley values and the samples' indices."""

        def one(fwd: ForwardContext, b):
            a, v = fwd.features()
            za, zv = torch.zeros_like(a), torch.zeros_like(v)
            preds = [fwd.output(x, y, keep=False).fused.argmax(1) for x, y in ((a, zv), (za, v), (a, v))]
            return [(p == b.y).cpu() for p in preds] + [b.index.cpu()]

        parts = view.map("train", one)
        c_a, c_v, c_av, index = (torch.cat([p[i] for p in parts]) for i in range(4))
        phi_a, phi_v = contributions(c_a, c_v, c_av)
        self.log.update(phi_audio=float(phi_a.mean()), phi_visual=float(phi_v.mean()))
        return phi_a, phi_v, index

    def forward(self, fwd: ForwardContext):
        drop = fwd.batch.drop
        if not fwd.train or not bool((drop != DROP_NONE).any()):
            if fwd.train:
                self.log.update(dropped_in_batch=0.0)
            return None
        a, v = fwd.features()
        keep_a = (drop != DROP_AUDIO).to(a.dtype).view(1, -1, 1)
        keep_v = (drop != DROP_VISUAL).to(v.dtype).view(1, -1, 1)
        self.log.update(dropped_in_batch=float((drop != DROP_NONE).float().mean()))
        return unmasked_heads(fwd.output(a * keep_a, v * keep_v), fwd.model, a, v)


@register_method(
    source="Wei et al., CVPR 2024 (arXiv 2309.06255); "
    "github.com/GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation@7ed12b0 sample_level.py",
    modulates="per-sample Shapley contribution of each modality -> extra single-modality copies of "
    "the samples where it contributes little",
    iemf=Composition(True, "caveat: a single-modality copy lowers IEMF's fused score on its batch"),
)
class SampleValuation(_Valuation):
    """Sample-level modality valuation.

    At the start of every epoch from ``warmup`` on: each training sample's Shapley contributions
    (:func:`contributions`) from the fused prediction with each modality alone; the epoch then trains on every
    sample once plus :func:`sample_copies` copies per sample and modality in which only that modality is kept
    (the other's features are zeroed before the fusion, as ``exec_drop``; the unimodal heads see both).

    Deviations: BalanceBenchmark values with ``v(S) = 1[correct]`` (so the thresholds, made for ``|S| *
    1[correct]``, select other samples), zeroes the raw input instead of the feature, and reads
    ``model.pridiction`` (an AttributeError); not followed.
    """

    name = "sample_valuation"
    config_class = ValuationConfig

    def on_epoch_start(self, view: EpochView):
        if view.epoch < self.cfg.warmup:
            self.log.update(extra_fraction=0.0)
            return None
        phi_a, phi_v, index = self.valuate(view)
        plan = sample_plan(phi_a, phi_v, index)
        self.log.update(extra_fraction=(len(plan.indices) - len(index)) / max(len(index), 1))
        return plan


@dataclass
class ModalityValuationConfig(ValuationConfig):
    """``part_ratio``: fraction of the set (drawn with replacement) whose mean contribution values each modality
    (0.2); ``alpha``: scale of the number of extra copies (1); ``mode``: ``linear``, ``tanh`` or ``square``."""

    part_ratio: float = field(default=0.2, metadata=check(gt=0, le=1))
    alpha: float = field(default=1.0, metadata=check(ge=0))
    mode: Literal["linear", "tanh", "square"] = "linear"


@register_method(
    source="Wei et al., CVPR 2024 (arXiv 2309.06255); "
    "github.com/GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation@7ed12b0 modality_level.py",
    modulates="mean Shapley contribution per modality -> extra copies with the stronger modality "
    "dropped, in proportion to the gap",
    iemf=Composition(True, "caveat: a single-modality copy lowers IEMF's fused score on its batch"),
)
class ModalityValuation(_Valuation):
    """Modality-level valuation.

    At the start of every epoch from ``warmup`` on: each modality's mean contribution over ``part_ratio`` of the
    training set (a seeded draw with replacement), the gap :func:`modality_gap`; ``int(gap * N)`` samples (drawn
    with replacement) get one extra copy with the *stronger* modality's features zeroed before the fusion.

    Deviations: the contributions are computed for every sample and the subset drawn from them (the same values
    as valuing only the subset). BalanceBenchmark sums the gap over ordered pairs (twice the official value
    for two modalities), has no ``alpha``, and adds a full copy beside each drop copy; not followed.
    """

    name = "modality_valuation"
    config_class = ModalityValuationConfig

    def on_epoch_start(self, view: EpochView):
        if view.epoch < self.cfg.warmup:
            self.log.update(extra_fraction=0.0)
            return None
        phi_a, phi_v, index = self.valuate(view)
        n = len(index)
        g = torch.Generator().manual_seed(view.seed * 1000003 + 7 * view.epoch + 1)
        part = torch.randint(0, n, (max(1, int(self.cfg.part_ratio * n)),), generator=g)
        mean_a, mean_v = float(phi_a[part].mean()), float(phi_v[part].mean())
        self.log.update(phi_audio=mean_a, phi_visual=mean_v)
        extra = int(modality_gap(mean_a, mean_v, self.cfg.alpha, self.cfg.mode) * n)
        chosen = index[torch.randint(0, n, (extra,), generator=g)]
        code = DROP_VISUAL if (1.0 - mean_a) > (1.0 - mean_v) else DROP_AUDIO  # drop the stronger modality
        self.log.update(extra_fraction=extra / max(n, 1))
        return SamplePlan(
            torch.cat([index, chosen]), torch.cat([torch.full_like(index, DROP_NONE), torch.full_like(chosen, code)])
        )
