"""Classifier heads: the unimodal heads each modality has beside the fusion, and the model's output type.

IEMF and the balancing methods read four views of one forward pass (:class:`AVOutput`): the fused logits,
each unimodal head's logits, and each modality's part of the fused logits.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
from torch import nn

__all__ = ["AVOutput", "UnimodalHeads", "ParamGroups"]


@dataclass
class AVOutput:
    """What the model returns. Logits are averaged over the T time steps.

    Attributes:
        fused: ``[B, C]`` fused logits (the model's prediction).
        audio, visual: ``[B, C]`` unimodal heads (trained with their own loss).
        fused_audio, fused_visual: ``[B, C]`` each modality's part of the fused logits (OGM-GE reads these).
        features: ``{"audio": [B, D], "visual": [B, D]}`` time-averaged encoder features (methods that work on
            representations read these).
    """

    fused: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    fused_audio: torch.Tensor
    fused_visual: torch.Tensor
    features: dict[str, torch.Tensor] = field(default_factory=dict)


class UnimodalHeads(nn.Module):
    """A linear classifier per modality on its own features (``audio_fc`` / ``visual_fc`` of the IEMF code).

    Shape: ``a, v [T, B, D]`` -> ``([T, B, C], [T, B, C])``.
    """

    def __init__(self, dim: int, num_classes: int) -> None:
        super().__init__()
        self.audio = nn.Linear(dim, num_classes)
        self.visual = nn.Linear(dim, num_classes)

    def forward(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.audio(a), self.visual(v)


@dataclass
class ParamGroups:
    """The model's parameters by role: what balancing methods act on (a typed view, no name prefixes).

    ``audio_encoder`` / ``visual_encoder``: each backbone; ``fusion``: the fusion / integration layer (IEMF's
    target); ``audio_head`` / ``visual_head``: the unimodal heads.
    """

    audio_encoder: list[nn.Parameter]
    visual_encoder: list[nn.Parameter]
    fusion: list[nn.Parameter]
    audio_head: list[nn.Parameter]
    visual_head: list[nn.Parameter]

    def encoder(self, modality: str) -> list[nn.Parameter]:
        return {"audio": self.audio_encoder, "visual": self.visual_encoder}[modality]

    def head(self, modality: str) -> list[nn.Parameter]:
        return {"audio": self.audio_head, "visual": self.visual_head}[modality]

    def branch(self, modality: str) -> list[nn.Parameter]:
        """A modality's encoder and its unimodal head."""
        return self.encoder(modality) + self.head(modality)
