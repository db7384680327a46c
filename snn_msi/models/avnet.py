"""The audio-visual spiking network: coding -> backbones -> fusion / integration and unimodal heads."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import torch
from torch import nn

import neurons

from ..encoders.coding import CODINGS
from ..schema import Config, ConfigError, check
from .fusion import FUSIONS
from .heads import AVOutput, ParamGroups, UnimodalHeads
from .resnet import SpikingResNet

#: the paper's neuron settings that every neuron shares (LIF's tau = 2 is LIF's own default)
PAPER_NEURON_ARGS = {"v_threshold": 0.5, "surrogate": "piecewise_quadratic", "alpha": 2.0}


#: the fusion arguments the model gives every fusion (not settable through ``fusion_args``)
FUSION_FROM_MODEL = ("dim", "num_classes", "neuron", "neuron_args")


@dataclass
class ModelConfig(Config):
    """Everything that defines the architecture; plain values, so it saves to YAML next to a run.

    Defaults are the paper's (ResNet-18 both sides, T = 4, LIF with tau 2, v_th 0.5, piecewise-quadratic
    surrogate with alpha 2, direct coding, concat fusion).

    Attributes:
        num_classes, audio_channels, visual_channels: None = taken from the data set when training starts.
        neuron: any name of ``neurons.available()``.
        neuron_args: overrides of that neuron's defaults. Shared arguments (``neurons.SHARED_ARGS``: threshold,
            surrogate, alpha, ...) apply to every neuron that has them; any other must belong to ``neuron``.
        fusion_args: options of the fusion (``msi``: ``hidden``, ``exponent``, ``sigma``, ...; ``snn-msi train
            --fusion-arg KEY=VALUE``); the sizes, the class count and the neuron come from the model.
    """

    num_classes: int | None = field(default=None, metadata=check(ge=2))
    neuron: str = "lif"
    neuron_args: dict = field(default_factory=lambda: dict(PAPER_NEURON_ARGS))
    T: int = field(default=4, metadata=check(ge=1))
    coding: str = "direct"
    fusion: str = "concat"
    fusion_args: dict = field(default_factory=dict)
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    stem: Literal["imagenet", "small"] = "imagenet"
    stem_stride: int | None = field(default=None, metadata=check(ge=1))
    audio_channels: int | None = field(default=None, metadata=check(ge=1))
    visual_channels: int | None = field(default=None, metadata=check(ge=1))

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        if "neuron_kwargs" in d:  # version 1 stored LIF's arguments under this name
            d["neuron_args"] = d.pop("neuron_kwargs")
        return d

    def validate(self, where: str = "") -> None:
        pre = f"{where}." if where else ""
        for registry, key in ((FUSIONS, "fusion"), (CODINGS, "coding"), (neurons.NEURONS, "neuron")):
            if getattr(self, key) not in registry:
                raise ConfigError(f"{pre}{key}: {registry.unknown(getattr(self, key))}")
        try:
            neurons.NEURONS.check_arguments(self.neuron, neurons.catalog.split_shared(self.neuron, self.neuron_args)[0])
        except ValueError as err:
            raise ConfigError(f"{pre}neuron_args: {err}") from None
        reserved = sorted(set(self.fusion_args) & set(FUSION_FROM_MODEL))
        if reserved:
            raise ConfigError(f"{pre}fusion_args: {', '.join(reserved)} come from the model, not from fusion_args")
        try:
            FUSIONS.check_arguments(self.fusion, self.fusion_args)
        except ValueError as err:
            raise ConfigError(f"{pre}fusion_args: {err}") from None
        if len(self.widths) != len(self.blocks) or not self.widths or min(self.widths + self.blocks) < 1:
            raise ConfigError(
                f"{pre}widths and blocks need the same non-zero length and positive values, got "
                f"{list(self.widths)} and {list(self.blocks)}"
            )

    def missing_from_data(self) -> list[str]:
        """The fields still None, which the data set has to supply."""
        return [k for k in ("num_classes", "audio_channels", "visual_channels") if getattr(self, k) is None]


class AVNet(nn.Module):
    """Audio-visual spiking classifier.

    Inputs: ``audio [B, C_a, F, frames]`` (a spectrogram), ``frames [B, K, C_v, H, W]`` (K frames per clip,
    folded into the batch and the features averaged over frames). Every forward starts from fresh neuron
    state.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        missing = config.missing_from_data()
        if missing:
            raise ConfigError(
                f"model config needs {', '.join(missing)} (set them, or let the trainer take them from the data set)"
            )
        self.config = c = config
        kw = dict(
            widths=c.widths,
            blocks=c.blocks,
            stem=c.stem,
            stem_stride=c.stem_stride,
            neuron=c.neuron,
            neuron_args=c.neuron_args,
        )
        self.coding = CODINGS.create(c.coding, T=c.T)
        self.audio_net = SpikingResNet(c.audio_channels, modality="audio", **kw)
        self.visual_net = SpikingResNet(c.visual_channels, modality="visual", **kw)
        dim = self.audio_net.out_features
        self.fusion = FUSIONS.create(
            c.fusion, dim=dim, num_classes=c.num_classes, neuron=c.neuron, neuron_args=c.neuron_args, **c.fusion_args
        )
        self.heads = UnimodalHeads(dim, c.num_classes)

    def parameter_groups(self) -> ParamGroups:
        """The parameters by role (what balancing methods act on)."""
        return ParamGroups(
            list(self.audio_net.parameters()),
            list(self.visual_net.parameters()),
            list(self.fusion.parameters()),
            list(self.heads.audio.parameters()),
            list(self.heads.visual.parameters()),
        )

    def features(self, audio: torch.Tensor, frames: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Time-resolved features ``([T, B, D], [T, B, D])``."""
        if audio.dim() != 4:
            raise ValueError(f"audio must be [B, C, F, frames], got shape {tuple(audio.shape)}")
        if frames.dim() != 5:
            raise ValueError(f"frames must be [B, K, C, H, W], got shape {tuple(frames.shape)}")
        b, k = frames.shape[:2]
        a = self.audio_net(self.coding(audio))
        v = self.visual_net(self.coding(frames.flatten(0, 1)))  # [T, B*K, D]
        return a, v.view(v.shape[0], b, k, -1).mean(2)

    def forward(self, audio: torch.Tensor, frames: torch.Tensor) -> AVOutput:
        neurons.reset(self)
        a, v = self.features(audio, frames)
        fused, out_a, out_v = self.fusion(a, v)
        head_a, head_v = self.heads(a, v)
        neurons.reset(self)
        return AVOutput(
            fused=fused.mean(0),
            audio=head_a.mean(0),
            visual=head_v.mean(0),
            fused_audio=out_a.mean(0),
            fused_visual=out_v.mean(0),
            features={"audio": a.mean(0), "visual": v.mean(0)},
        )
