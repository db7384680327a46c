"""The loss terms of a training step: fused cross-entropy, and the unimodal heads' when they are trained.

``unimodal``: ``"always"`` (every method trains the unimodal heads: the cleaner control) or ``"with_iemf"`` (the
original code: only runs whose methods read the heads, IEMF and MMPareto, add them). Label smoothing applies to
every term (0.1 in the original).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from ..schema import Config, check

__all__ = ["LossConfig", "av_losses"]


@dataclass
class LossConfig(Config):
    """Which terms and how smoothed (defaults: the original code's)."""

    unimodal: Literal["always", "with_iemf"] = "with_iemf"
    label_smoothing: float = field(default=0.1, metadata=check(ge=0, lt=1))
    unimodal_label_smoothing: float | None = field(default=None, metadata=check(ge=0, lt=1))

    def trains_heads(self, required: bool) -> bool:
        """Whether the unimodal cross-entropies join the loss (``required``: a method reads the heads)."""
        return required or self.unimodal == "always"


def av_losses(out, y: torch.Tensor, cfg: LossConfig, unimodal: bool) -> dict[str, torch.Tensor]:
    """``{"fused": CE, "audio": CE, "visual": CE}`` (the last two only when ``unimodal``), in float32."""
    uni_ls = cfg.label_smoothing if cfg.unimodal_label_smoothing is None else cfg.unimodal_label_smoothing
    losses = {"fused": F.cross_entropy(out.fused.float(), y, label_smoothing=cfg.label_smoothing)}
    if unimodal:
        losses["audio"] = F.cross_entropy(out.audio.float(), y, label_smoothing=uni_ls)
        losses["visual"] = F.cross_entropy(out.visual.float(), y, label_smoothing=uni_ls)
    return losses
