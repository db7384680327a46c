"""The audio-visual spiking network: coding -> backbones -> fusion / integration -> heads."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field

import torch
from torch import nn

import neurons

from ..encoders.coding import build_coding
from .fusion import build_fusion
from .resnet import SpikingResNet


@dataclass
class ModelConfig:
    """Everything that defines the architecture; plain values, so it saves to YAML/JSON next to a run.

    Defaults are the paper's (ResNet-18 both sides, T = 4, LIF tau 2, v_th 0.5, piecewise-quadratic surrogate
    with alpha 2, direct coding, concat fusion).
    """

    num_classes: int = 31
    neuron: str = "lif"
    neuron_kwargs: dict = field(
        default_factory=lambda: {"tau": 2.0, "v_threshold": 0.5, "surrogate": "piecewise_quadratic", "alpha": 2.0}
    )
    T: int = 4
    coding: str = "direct"
    fusion: str = "concat"
    widths: tuple[int, ...] = (64, 128, 256, 512)
    blocks: tuple[int, ...] = (2, 2, 2, 2)
    stem: str = "imagenet"
    stem_stride: int | None = None
    audio_channels: int = 1
    visual_channels: int = 3

    def to_dict(self) -> dict:
        d = asdict(self)
        d["widths"], d["blocks"] = list(self.widths), list(self.blocks)
        return d

    @classmethod
    def from_dict(cls, d: dict) -> ModelConfig:
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise ValueError(
                f"unknown model config key(s) {sorted(unknown)}; valid: {sorted(cls.__dataclass_fields__)}"
            )
        d = dict(d)
        for k in ("widths", "blocks"):
            if k in d:
                d[k] = tuple(d[k])
        return cls(**d)


@dataclass
class AVOutput:
    """What the model returns. Logits are averaged over the T time steps.

    Attributes:
        fused: ``[B, C]`` fused logits (the model's prediction).
        audio, visual: ``[B, C]`` unimodal heads (``audio_fc``, ``visual_fc``), trained with their own loss.
        fused_audio, fused_visual: ``[B, C]`` each modality's part of the fused logits (OGM-GE reads these).
        spikes: per-layer spike counts ``{layer: [B]}`` when asked for (``return_spikes=True``), else None.
    """

    fused: torch.Tensor
    audio: torch.Tensor
    visual: torch.Tensor
    fused_audio: torch.Tensor
    fused_visual: torch.Tensor
    spikes: dict[str, torch.Tensor] | None = None


class AVNet(nn.Module):
    """Audio-visual spiking classifier.

    Inputs: ``audio [B, 1, F, frames]`` (a spectrogram), ``frames [B, K, 3, H, W]`` (K frames per clip, folded
    into the batch and the features averaged over frames). Every forward starts from fresh neuron state.
    """

    def __init__(self, config: ModelConfig) -> None:
        super().__init__()
        self.config = config
        c = config
        kw = dict(widths=c.widths, blocks=c.blocks, stem=c.stem, stem_stride=c.stem_stride, neuron=c.neuron,
                  neuron_kwargs=c.neuron_kwargs)  # fmt: skip
        self.coding = build_coding(c.coding, c.T)
        self.audio_net = SpikingResNet(c.audio_channels, **kw)
        self.visual_net = SpikingResNet(c.visual_channels, **kw)
        dim = self.audio_net.out_features
        self.fusion = build_fusion(c.fusion, dim, c.num_classes, c.neuron, c.neuron_kwargs)
        self.audio_fc = nn.Linear(dim, c.num_classes)
        self.visual_fc = nn.Linear(dim, c.num_classes)

    def encoder_parameters(self, modality: str) -> list[nn.Parameter]:
        """Parameters of one modality's backbone (``"audio"`` or ``"visual"``)."""
        if modality not in ("audio", "visual"):
            raise ValueError(f"modality must be 'audio' or 'visual', got {modality!r}")
        return list((self.audio_net if modality == "audio" else self.visual_net).parameters())

    def fusion_parameters(self) -> list[nn.Parameter]:
        """Parameters of the fusion / integration layer: the ones IEMF modulates."""
        return list(self.fusion.parameters())

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

    def forward(self, audio: torch.Tensor, frames: torch.Tensor, return_spikes: bool = False) -> AVOutput:
        neurons.reset(self)
        monitor = None
        if return_spikes:
            from ..metrics.monitor import SpikeMonitor

            monitor = SpikeMonitor(self)
        try:
            a, v = self.features(audio, frames)
            fused, out_a, out_v = self.fusion(a, v)
            out = AVOutput(
                fused=fused.mean(0),
                audio=self.audio_fc(a).mean(0),
                visual=self.visual_fc(v).mean(0),
                fused_audio=out_a.mean(0),
                fused_visual=out_v.mean(0),
            )
            if monitor is not None:
                out.spikes = monitor.counts_per_sample()
        finally:
            if monitor is not None:
                monitor.remove()
        neurons.reset(self)
        return out


def build(config: ModelConfig | dict | None = None, **overrides) -> AVNet:
    """Build an :class:`AVNet` from a :class:`ModelConfig`, a dict, or keyword overrides of the defaults.

    ``build(neuron="relu")`` is the ANN control with the same architecture.
    """
    if config is None:
        config = ModelConfig()
    elif isinstance(config, dict):
        config = ModelConfig.from_dict(config)
    if overrides:
        config = ModelConfig.from_dict({**config.to_dict(), **overrides})
    return AVNet(config)
