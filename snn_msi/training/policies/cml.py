"""CML: calibrating multimodal learning (a subset of the modalities may not be more confident than all of them).

Ma, Zhang, Zhang, Wu, Fu, Zhou & Hu, "Calibrating multimodal learning", ICML 2023 (arXiv 2306.01265); code:
github.com/QingyangZhang/CML@9d2496e (``cpm/CPM_Nets.py: CPMNet_Works.rank_loss``; ``miwae/train.py`` for the
weight); BalanceBenchmark ``CML_trainer.py: conf_loss``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...schema import check
from . import register_method
from .base import Composition, Policy, WindowConfig, log_fields


@dataclass
class CMLConfig(WindowConfig):
    """``lam``: weight of the confidence-ranking term (0.1: the miwae stage's beta / 100 with the README's beta 10,
    and BalanceBenchmark's ``lam``)."""

    lam: float = field(default=0.1, metadata=check(ge=0))


def confidence_penalty(full: torch.Tensor, reduced: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_i relu((conf_reduced_i - conf_full_i) * sign_i)``, ``conf`` the max softmax probability and
    ``sign_i = 0`` where the reduced prediction is right and the full one wrong (the official "trick 1"), else 1.
    Full logits [2, 0], reduced [3, 0], y 0: 0.952574 - 0.880797 = 0.071777."""
    p_full, p_red = F.softmax(full.float(), 1), F.softmax(reduced.float(), 1)
    conf_full, pred_full = p_full.max(1)
    conf_red, pred_red = p_red.max(1)
    sign = (~((pred_red == y) & (pred_full != y))).float()
    return F.relu((conf_red - conf_full) * sign).sum()


@register_method(
    source="Ma et al., ICML 2023 (arXiv 2306.01265); github.com/QingyangZhang/CML@9d2496e",
    modulates="adds lam * sum relu(conf(one modality) - conf(both)): no subset more confident than all",
    iemf=Composition(True, "a loss term; IEMF scales the fusion layer's share of its gradient"),
)
class CML(Policy):
    """Calibrating multimodal learning.

    Each step, the fused prediction with one modality removed (its features set to zero before the fusion, which
    for concat is BalanceBenchmark's ``out - z_removed + b / M``) is a reduced prediction; for each of the two
    reductions, ``lam * confidence_penalty(fused, reduced)`` (:func:`confidence_penalty`, the official CPM
    ``rank_loss``: per-sample hinge, summed over the batch) is added to the loss. Gradients flow through both
    confidences, as in the official code.

    Deviations: the official code is for incomplete multi-view data (CPM / MIWAE), not audio-visual; with two
    modalities both reductions are used every step (BalanceBenchmark removes one modality, chosen once per
    epoch). BalanceBenchmark also applies the hinge to the batch sum instead of each sample, computes the sign
    mask without using it, and adds the reduced predictions' cross-entropies; none of that is followed.
    """

    name = "cml"
    config_class = CMLConfig
    #: logged each step: CML's penalties of the one-modality predictions.
    log_class = log_fields("CMLLog", "penalty_audio_only", "penalty_visual_only", "active")
    needs_features = True

    def loss(self, ctx):
        a, v = ctx.fwd.used
        fwd = ctx.fwd
        only_a = fwd.output(a, torch.zeros_like(v), keep=False).fused
        only_v = fwd.output(torch.zeros_like(a), v, keep=False).fused
        pen_a = confidence_penalty(ctx.out.fused, only_a, ctx.y)
        pen_v = confidence_penalty(ctx.out.fused, only_v, ctx.y)
        active = self.cfg.active(ctx.epoch)
        self.log.update(
            penalty_audio_only=float(pen_a.detach()), penalty_visual_only=float(pen_v.detach()), active=float(active)
        )
        return self.cfg.lam * (pen_a + pen_v) if active else None
