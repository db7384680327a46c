"""MMCosine: the fused logits as a sum of scaled per-modality cosine similarities.

Xu, Feng, Zhang & Hu, "MMCosine: multi-modal cosine loss towards balanced audio-visual fine-grained learning",
ICASSP 2023 (arXiv 2303.05338); code: github.com/GeWu-Lab/MMCosine_ICASSP23@00ba0a9 (``main_CD.py:
train_epoch, valid``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...models.fusion import ConcatFusion, SumFusion
from ...models.heads import AVOutput
from ...schema import ConfigError, check
from . import register_method
from .base import Composition, Policy, PolicyConfig, log_fields

FUSIONS = ("concat", "sum")


@dataclass
class MMCosineConfig(PolicyConfig):
    """``scale``: the cosine logits' scale ``s`` (10 in the official code and README; BalanceBenchmark: 15)."""

    scale: float = field(default=10.0, metadata=check(gt=0))


def class_weights(fusion: torch.nn.Module) -> tuple[torch.Tensor, torch.Tensor]:
    """``(W_a, W_v)``, each ``[C, D]``: the rows of the fusion's output layer that act on each modality."""
    if isinstance(fusion, ConcatFusion):
        w = fusion.head.weight
        return w[:, : fusion.dim], w[:, fusion.dim :]
    if isinstance(fusion, SumFusion):
        return fusion.head_a.weight, fusion.head.weight
    raise ConfigError(
        f"mmcosine needs a fusion with a linear head per modality ({', '.join(FUSIONS)}); got {type(fusion).__name__}"
    )


def cosine_logits(h: torch.Tensor, w: torch.Tensor, scale: float) -> torch.Tensor:
    """``scale * normalize(h) @ normalize(w)^T``: ``[B, D] x [C, D] -> [B, C]`` (no bias)."""
    return scale * F.normalize(h, dim=1) @ F.normalize(w, dim=1).T


@register_method(
    source="Xu et al., ICASSP 2023 (arXiv 2303.05338); github.com/GeWu-Lab/MMCosine_ICASSP23@00ba0a9",
    modulates="the fused logits: s * cos(features_m, class weights_m) summed over modalities, no bias",
    iemf=Composition(True, "IEMF's fused score is the cosine logits"),
    fusions=FUSIONS,
)
class MMCosine(Policy):
    """Multi-modal cosine loss.

    ``z_m = s * normalize(h_m) @ normalize(W_m)^T`` with ``h_m`` a modality's (time-averaged) encoder features and
    ``W_m`` the rows of the fusion's output layer that act on it (concat: its half of the head; sum: that
    modality's head); the fused logits are ``z_a + z_v`` (no bias), in training and in evaluation. The loss is the
    run's cross-entropy on them.

    Deviations: the official code evaluates with the plain logits (with bias), a slip this does not copy; the
    project's spiking features are averaged over the T time steps before the cosine (the rate code the linear
    head sees); the official optional NCE term (``--lam``, default 0) is off. Only concat and sum fusions have a
    linear head per modality (the official FiLM / gated variants are mid-concat architectures the project
    lacks), so other fusions are refused.
    """

    name = "mmcosine"
    config_class = MMCosineConfig
    #: logged each step: each modality's mean largest cosine.
    log_class = log_fields("MMCosineLog", "cos_audio", "cos_visual")

    def setup(self, model):
        class_weights(model.fusion)  # refuses a fusion without per-modality class weights

    def predict(self, model, a, v):
        w_a, w_v = class_weights(model.fusion)
        h_a, h_v = a.mean(0), v.mean(0)
        z_a, z_v = cosine_logits(h_a, w_a, self.cfg.scale), cosine_logits(h_v, w_v, self.cfg.scale)
        head_a, head_v = model.heads(a, v)
        self.log.update(
            cos_audio=float(z_a.detach().max(1).values.mean()) / self.cfg.scale,
            cos_visual=float(z_v.detach().max(1).values.mean()) / self.cfg.scale,
        )
        return AVOutput(
            fused=z_a + z_v,
            audio=head_a.mean(0),
            visual=head_v.mean(0),
            fused_audio=z_a,
            fused_visual=z_v,
            features={"audio": h_a, "visual": h_v},
        )
