"""IEMF (inverse effectiveness driven multimodal fusion) and its controls.

He, Zhao, Li, Kong, Yang & Zeng, "Incorporating brain-inspired mechanisms for multisensory learning in
artificial intelligence" (arXiv 2505.10176); code: github.com/Brain-Cog-Lab/BIM-ML.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

from ...schema import check
from . import register_method
from .base import (
    Composition,
    NoiseSource,
    Policy,
    StepContext,
    WindowConfig,
    log_fields,
    scale_with_noise,
    true_class_score,
)


@dataclass
class FusionScaleConfig(WindowConfig):
    """``noise``: add ``N(0, std(grad) + 1e-8)`` after scaling (the original does)."""

    noise: bool = True


class FusionScale(Policy):
    """Scale the fusion layer's gradient by a coefficient (+ Gaussian noise of the gradient's std) in a window.

    The unimodal heads are trained alongside (``needs_unimodal_losses``), as in every IEMF run of the original.
    """

    config_class = FusionScaleConfig
    #: logged each step: the fusion-gradient coefficient and whether the window is open.
    log_class = log_fields("FusionScaleLog", "coeff", "active", headline="coeff")
    needs_unimodal_losses = True

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.noise_source = NoiseSource(seed)

    def coefficient(self, ctx: StepContext) -> float:
        raise NotImplementedError

    def before_step(self, ctx: StepContext) -> None:
        coeff = self.coefficient(ctx)
        active = self.cfg.active(ctx.epoch)
        self.log.update(coeff=coeff, active=float(active))
        if active:
            scale_with_noise(ctx.groups.fusion, coeff, self.noise_source if self.cfg.noise else None)


@dataclass
class IEMFConfig(FusionScaleConfig):
    """``lam``: lambda; ``lambda_mode``: ``"outside"`` (``lam * (1 + tanh(r))``, the paper's ablation script and
    the default) or ``"inside"`` (``1 + tanh(lam * r)``)."""

    lam: float = field(default=1.0, metadata=check(gt=0))
    lambda_mode: Literal["inside", "outside"] = "outside"


def iemf_coefficient(s_a: float, s_v: float, s_av: float, lam: float = 1.0, mode: str = "outside") -> float:
    """``r = 1 - ((s_a + s_v) / 2) / s_av``; ``lam * (1 + tanh(r))`` (outside) or ``1 + tanh(lam * r)``."""
    r = 1.0 - ((s_a + s_v) / 2.0) / max(s_av, 1e-12)
    return lam * (1.0 + math.tanh(r)) if mode == "outside" else 1.0 + math.tanh(lam * r)


@register_method(
    source="He et al., arXiv 2505.10176 (2025); github.com/Brain-Cog-Lab/BIM-ML",
    modulates="fusion-layer gradient x coefficient from unimodal vs fused true-class scores (+ noise)",
    iemf=Composition(True, itself=True),
)
class IEMF(FusionScale):
    """Inverse effectiveness driven multimodal fusion.

    Per batch ``s_m = sum_i softmax(z_m)[i, y_i]`` for the audio head, the visual head and the fused output;
    ``coeff = lam * (1 + tanh(1 - ((s_a + s_v) / 2) / s_av))`` (or ``1 + tanh(lam * ...)``, ``lambda_mode``).
    The fusion layer's gradient becomes ``grad * coeff + N(0, std(grad) + 1e-8)`` for epochs in ``[start,
    end)``: weak unimodal evidence relative to the fused one -> stronger multisensory learning.
    """

    name = "iemf"
    config_class = IEMFConfig
    #: logged each step: the true-class scores behind the coefficient.
    log_class = log_fields("IEMFLog", "score_audio", "score_visual", "score_fused", base=FusionScale.log_class)

    def coefficient(self, ctx):
        out, y = ctx.out, ctx.y
        s_a, s_v, s_av = (float(true_class_score(z, y)) for z in (out.audio, out.visual, out.fused))
        self.log.update(score_audio=s_a, score_visual=s_v, score_fused=s_av)
        return iemf_coefficient(s_a, s_v, s_av, self.cfg.lam, self.cfg.lambda_mode)


@dataclass
class ConstantConfig(FusionScaleConfig):
    """``coeff``: the fixed coefficient (the study sets it to IEMF's mean coefficient)."""

    coeff: float = field(default=1.0, metadata=check(gt=0))


@register_method(
    source="this toolkit: the control IEMF's paper did not run",
    iemf=Composition(False, "replaces IEMF's coefficient"),
    modulates="fusion-layer gradient x a fixed coefficient (+ the same noise)",
)
class ConstantScale(FusionScale):
    """Control for IEMF: a fixed coefficient on the fusion gradient with the same noise (is it the adaptivity, or
    a larger fusion learning rate?)."""

    name = "constant"
    config_class = ConstantConfig

    def coefficient(self, ctx):
        return self.cfg.coeff


@register_method(
    source="this toolkit: the noise-alone control",
    iemf=Composition(False, "replaces IEMF's coefficient"),
    modulates="fusion-layer gradient + N(0, std(grad)) (coefficient 1)",
)
class NoiseOnly(FusionScale):
    """Control for IEMF: coefficient 1 with the same gradient noise (is it the noise?)."""

    name = "noise"

    def coefficient(self, ctx):
        return 1.0
