"""Video frames: frame sampling and batched augmentation as tensor ops (no torchvision needed).

A clip is ``[F, 3, H, W]`` (uint8 or float in [0, 1]); a batch ``[B, F, 3, H, W]``. Random parameters are drawn
once per clip and applied to all of its frames (the same crop and flip), as torchvision's video transforms do.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
import torch.nn.functional as F
from torch import nn

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_frame_indices(n_frames: int, k: int, train: bool, generator: torch.Generator | None = None) -> list[int]:
    """``k`` of ``n_frames`` indices: random distinct ones, sorted, in training; evenly spaced in evaluation."""
    if n_frames < k:
        raise ValueError(f"need at least {k} frames, clip has {n_frames}")
    if train:
        return sorted(torch.randperm(n_frames, generator=generator)[:k].tolist())
    return [int(i) for i in torch.linspace(0, n_frames - 1, k).round().long().tolist()]


class FrameTransform(nn.Module):
    """Resize / random-resized-crop / horizontal flip / normalise a batch of clips.

    Args:
        size: output side in pixels.
        train: random resized crop (scale ``scale``, ratio 3/4..4/3) and flip with p = 0.5; else resize.
        mean, std: per-channel normalisation (ImageNet by default; ``None`` to skip).

    Shape: ``[B, F, C, H, W]`` or ``[F, C, H, W]`` -> same with ``H = W = size``, float32.
    """

    def __init__(
        self,
        size: int = 224,
        train: bool = False,
        scale: tuple[float, float] = (0.08, 1.0),
        mean: tuple[float, ...] | None = IMAGENET_MEAN,
        std: tuple[float, ...] | None = IMAGENET_STD,
        generator: torch.Generator | None = None,
    ) -> None:
        super().__init__()
        self.size, self.train_mode, self.scale, self.generator = size, train, scale, generator
        self.mean = None if mean is None else torch.tensor(mean).view(-1, 1, 1)
        self.std = None if std is None else torch.tensor(std).view(-1, 1, 1)

    def _crop_box(self, h: int, w: int, g: torch.Generator | None) -> tuple[int, int, int, int]:
        area = h * w
        for _ in range(10):
            target = area * (self.scale[0] + (self.scale[1] - self.scale[0]) * torch.rand(1, generator=g).item())
            log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=g).item()
            r = math.exp(log_r)
            cw, ch = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
            if 0 < cw <= w and 0 < ch <= h:
                top = int(torch.randint(0, h - ch + 1, (1,), generator=g))
                left = int(torch.randint(0, w - cw + 1, (1,), generator=g))
                return top, left, ch, cw
        return 0, 0, h, w

    def forward(self, clips: torch.Tensor, generator: torch.Generator | None = None,
                corrupt: Callable[[torch.Tensor], torch.Tensor] | None = None) -> torch.Tensor:  # fmt: skip
        """Transform ``clips``; random draws come from ``generator`` (default: the one given at construction);
        ``corrupt`` (e.g. noise at an SNR) acts on the ``[B, F, C, size, size]`` pixels in [0, 1] before the
        normalisation."""
        g = generator if generator is not None else self.generator
        single = clips.dim() == 4
        if single:
            clips = clips.unsqueeze(0)
        if clips.dim() != 5:
            raise ValueError(f"FrameTransform expects [B, F, C, H, W] or [F, C, H, W], got {tuple(clips.shape)}")
        scale = 1 / 255.0 if clips.dtype == torch.uint8 else 1.0
        b, f, c, h, w = clips.shape
        if self.train_mode:
            out = []
            for clip in clips:  # one crop box per clip (cheap parameter draw; the resize itself is batched per clip)
                top, left, ch, cw = self._crop_box(h, w, g)
                crop = clip[..., top : top + ch, left : left + cw].float() * scale  # convert only the crop
                crop = F.interpolate(crop, size=(self.size, self.size), mode="bilinear", align_corners=False)
                if torch.rand(1, generator=g).item() < 0.5:
                    crop = crop.flip(-1)
                out.append(crop)
            x = torch.stack(out)
        else:
            x = clips.reshape(b * f, c, h, w).float() * scale
            if (h, w) != (self.size, self.size):
                x = F.interpolate(x, size=(self.size, self.size), mode="bilinear")
            x = x.reshape(b, f, c, self.size, self.size)
        if corrupt is not None:
            x = corrupt(x)
        if self.mean is not None:
            x = (x - self.mean.to(x.device)) / self.std.to(x.device)
        return x[0] if single else x
