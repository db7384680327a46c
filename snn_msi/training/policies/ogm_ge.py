"""OGM-GE: on-the-fly gradient modulation with generalisation enhancement.

Peng, Wei, Deng, Wang & Hu, "Balanced multimodal learning via on-the-fly gradient modulation", CVPR 2022
(Eq. 10); code: github.com/GeWu-Lab/OGM-GE_CVPR2022 (main.py), the same rule in the IEMF code.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ...schema import check
from . import register_method
from .base import Composition, NoiseSource, Policy, WindowConfig, log_fields, scale_with_noise, true_class_score


@dataclass
class OGMGEConfig(WindowConfig):
    """``alpha``: modulation strength (0.8 in every IEMF script); window ``[start, end)`` = epochs 0-50 inclusive, as
    the originals' ``modulation_starts <= epoch <= modulation_ends``; ``params``: ``"conv"`` (the 4-D conv weights
    of each encoder, the original) or ``"all"`` (every encoder parameter); ``noise``: the generalisation-
    enhancement noise (added to both encoders, the weaker one's too, as the original)."""

    alpha: float = field(default=0.8, metadata=check(gt=0))
    end: int | None = field(default=51, metadata=check(ge=1))
    params: Literal["conv", "all"] = "conv"
    noise: bool = True


def ogm_ge_coefficients(s_a: float, s_v: float, alpha: float) -> tuple[float, float]:
    """``(coeff_audio, coeff_visual)`` from the true-class score sums of each modality's part of the fused logits.

    ``ratio_v = s_v / s_a``, ``ratio_a = 1 / ratio_v``; if ``ratio_v > 1`` vision gets
    ``1 - tanh(alpha * relu(ratio_v))``, else audio gets ``1 - tanh(alpha * relu(ratio_a))`` (Eq. 10 and both
    codes, ``ratio_v == 1`` included); the other modality 1. At alpha 0.8, ratio 1.05 gives 0.314191. The
    coefficient jumps from 1 to ``1 - tanh(alpha)`` at ratio 1, as in the original.
    """
    ratio_v = s_v / max(s_a, 1e-12)
    ratio_a = 1.0 / max(ratio_v, 1e-12)
    if ratio_v > 1:
        return 1.0, 1.0 - math.tanh(alpha * max(ratio_v, 0.0))
    return 1.0 - math.tanh(alpha * max(ratio_a, 0.0)), 1.0


@register_method(
    source="Peng et al., CVPR 2022 (Eq. 10); github.com/GeWu-Lab/OGM-GE_CVPR2022",
    modulates="the dominant modality's encoder conv gradients x (1 - tanh(alpha * ratio)) + noise",
    iemf=Composition(True, "OGM-GE on the encoders, IEMF on the fusion layer"),
)
class OGMGE(Policy):
    """On-the-fly gradient modulation with generalisation enhancement.

    ``s_m = sum_i softmax(out_m)[i, y_i]`` from each modality's part of the fused logits; the dominant
    modality's encoder gradients become ``grad * coeff + N(0, std(grad) + 1e-8)`` inside the window, with
    ``coeff`` from :func:`ogm_ge_coefficients`.
    """

    name = "ogm_ge"
    config_class = OGMGEConfig
    #: logged each step: the modalities' scores and coefficients.
    log_class = log_fields("OGMGELog", "score_audio", "score_visual", "coeff_audio", "coeff_visual", "active")

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.noise_source = NoiseSource(seed)

    def before_step(self, ctx):
        s_a = float(true_class_score(ctx.out.fused_audio, ctx.y))
        s_v = float(true_class_score(ctx.out.fused_visual, ctx.y))
        coeff_a, coeff_v = ogm_ge_coefficients(s_a, s_v, self.cfg.alpha)
        active = self.cfg.active(ctx.epoch)
        self.log.update(
            score_audio=s_a, score_visual=s_v, coeff_audio=coeff_a, coeff_visual=coeff_v, active=float(active)
        )
        if active:
            noise = self.noise_source if self.cfg.noise else None
            for modality, coeff in (("audio", coeff_a), ("visual", coeff_v)):
                params = ctx.groups.encoder(modality)
                if self.cfg.params == "conv":
                    params = [p for p in params if p.dim() == 4]
                scale_with_noise(params, coeff, noise)
