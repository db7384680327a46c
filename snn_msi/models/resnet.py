"""Spiking ResNet backbones (ResNet-18 layout), multi-step over T with real membrane state.

Convolutions and batch norms see the ``T * B`` axis folded (one big batch, as SpikingJelly's
``SeqToANNContainer``); neurons see ``[T, B, ...]`` and integrate over T. Every activation is a neuron built by
``neurons.create(neuron, **neuron_args)``; ``neuron="relu"`` gives the ANN control with the same layout.
"""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

import neurons


def make_neuron(neuron: str, neuron_args: dict | None) -> nn.Module:
    """A multi-step neuron ``neuron`` with ``neuron_args`` (shared ones apply where the neuron has them)."""
    return neurons.create(neuron, **{**(neuron_args or {}), "step_mode": "m"})


class SeqConv(nn.Module):
    """Conv + BN applied to ``[T, B, C, H, W]`` with T folded into the batch. ``modality``: the input an
    encoder's stem reads (``"audio"`` / ``"visual"``; None elsewhere), for counters such as
    :class:`~snn_msi.training.compute.ComputeMeter`."""

    def __init__(self, c_in: int, c_out: int, kernel: int, stride: int = 1, modality: str | None = None) -> None:
        super().__init__()
        self.modality = modality
        self.conv = nn.Conv2d(c_in, c_out, kernel, stride, kernel // 2, bias=False)
        self.bn = nn.BatchNorm2d(c_out)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t, b = x.shape[:2]
        y = self.bn(self.conv(x.flatten(0, 1)))
        return y.view(t, b, *y.shape[1:])


class SpikingBasicBlock(nn.Module):
    """``s = neuron(BN(conv(neuron(BN(conv(x))))) + shortcut(x))`` over ``[T, B, C, H, W]``."""

    def __init__(self, c_in: int, c_out: int, stride: int, neuron: str, neuron_args: dict | None) -> None:
        super().__init__()
        self.conv1 = SeqConv(c_in, c_out, 3, stride)
        self.sn1 = make_neuron(neuron, neuron_args)
        self.conv2 = SeqConv(c_out, c_out, 3, 1)
        self.shortcut = SeqConv(c_in, c_out, 1, stride) if (stride != 1 or c_in != c_out) else nn.Identity()
        self.sn2 = make_neuron(neuron, neuron_args)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.sn2(self.conv2(self.sn1(self.conv1(x))) + self.shortcut(x))


class SpikingResNet(nn.Module):
    """Spiking ResNet over ``[T, B, C, H, W]`` -> features ``[T, B, D]`` (``D = widths[-1]``).

    Args:
        in_channels: 1 for spectrograms, 3 for RGB frames.
        widths: channels per stage (ResNet-18: 64, 128, 256, 512).
        blocks: basic blocks per stage (ResNet-18: 2, 2, 2, 2).
        stem: ``"imagenet"`` (7x7 stride 2 + max-pool, for 224 px / 257 x 188 inputs) or ``"small"`` (3x3,
            no pooling, for tiny inputs).
        stem_stride: stride of the stem convolution (default 2 for "imagenet", 1 for "small").
        neuron, neuron_args: any registry name and its arguments.
        modality: the input it encodes (``"audio"``, ``"visual"``), given to its stem for counters.
    """

    def __init__(
        self,
        in_channels: int,
        widths: Sequence[int] = (64, 128, 256, 512),
        blocks: Sequence[int] = (2, 2, 2, 2),
        stem: str = "imagenet",
        neuron: str = "lif",
        neuron_args: dict | None = None,
        stem_stride: int | None = None,
        modality: str | None = None,
    ) -> None:
        super().__init__()
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths and blocks need the same non-zero length, got {widths} and {blocks}")
        if stem not in ("imagenet", "small"):
            raise ValueError(f"stem must be 'imagenet' or 'small', got {stem!r}")
        if stem_stride is None:
            stem_stride = 2 if stem == "imagenet" else 1
        self.stem_conv = SeqConv(in_channels, widths[0], 7 if stem == "imagenet" else 3, stem_stride, modality)
        self.stem_sn = make_neuron(neuron, neuron_args)
        self.pool = nn.MaxPool2d(3, 2, 1) if stem == "imagenet" else nn.Identity()
        layers, c = [], widths[0]
        for i, (w, n) in enumerate(zip(widths, blocks, strict=True)):
            for j in range(n):
                layers.append(SpikingBasicBlock(c, w, 2 if (j == 0 and i > 0) else 1, neuron, neuron_args))
                c = w
        self.layers = nn.Sequential(*layers)
        self.out_features = c

    def forward_map(self, x: torch.Tensor) -> torch.Tensor:
        """``[T, B, C, H, W]`` -> last feature map ``[T, B, D, h, w]``."""
        s = self.stem_sn(self.stem_conv(x))
        t, b = s.shape[:2]
        s = self.pool(s.flatten(0, 1))
        return self.layers(s.view(t, b, *s.shape[1:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_map(x).mean(dim=(-2, -1))
