"""Video frames: frame sampling and batched augmentation as tensor ops (no torchvision needed).

A clip is ``[F, 3, H, W]`` (uint8 or float in [0, 1]); a batch ``[B, F, 3, H, W]``. Random parameters are drawn
once per clip and applied to all of its frames (the same crop and flip), as torchvision's video transforms do.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import NamedTuple

import torch
import torch.nn.functional as F
from torch import nn

from . import frames_cpu
from .noise import scale_noise

IMAGENET_MEAN = (0.485, 0.456, 0.406)
IMAGENET_STD = (0.229, 0.224, 0.225)


def sample_frame_indices(n_frames: int, k: int, train: bool, generator: torch.Generator | None = None) -> list[int]:
    """``k`` of ``n_frames`` indices: random distinct ones, sorted, in training; evenly spaced in evaluation."""
    if n_frames < k:
        raise ValueError(f"need at least {k} frames, clip has {n_frames}")
    if train:
        return sorted(torch.randperm(n_frames, generator=generator)[:k].tolist())
    return [int(i) for i in torch.linspace(0, n_frames - 1, k).round().long().tolist()]


class CropPlan(NamedTuple):
    """A clip's random draws: the crop box (pixels) shared by all its frames, and whether they are mirrored."""

    top: int
    left: int
    height: int
    width: int
    flip: bool


class FrameSpec(NamedTuple):
    """The non-random half of a :class:`FrameTransform`: output side and per-channel normalisation."""

    size: int
    mean: tuple[float, ...] | None
    std: tuple[float, ...] | None


class FrameTransform(nn.Module):
    """Resize / random-resized-crop / horizontal flip / normalise a batch of clips.

    Args:
        size: output side in pixels.
        train: random resized crop (scale ``scale``, ratio 3/4..4/3) and flip with p = 0.5; else resize.
        mean, std: per-channel normalisation (ImageNet by default; ``None`` to skip).

    Shape: ``[B, F, C, H, W]`` or ``[F, C, H, W]`` -> same with ``H = W = size``, float32.

    The transform comes in two halves, which DataLoader workers and the training device split between them:
    :meth:`plan` draws a clip's crop box and flip (and :func:`crop_frames` cuts the uint8 crop, so a worker hands
    over only those pixels); :func:`finish_frames` converts, resizes, flips, adds noise and normalises whole
    batches on any device. ``forward`` is the two in sequence.
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
        self.spec = FrameSpec(size, None if mean is None else tuple(mean), None if std is None else tuple(std))

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

    def plan(self, h: int, w: int, generator: torch.Generator | None = None) -> CropPlan:
        """One clip's draws for frames of ``h x w`` pixels: a random crop box, then a flip with p = 0.5, in
        training; the whole frame, unflipped, in evaluation (no draws)."""
        if not self.train_mode:
            return CropPlan(0, 0, h, w, False)
        g = generator if generator is not None else self.generator
        box = self._crop_box(h, w, g)
        return CropPlan(*box, torch.rand(1, generator=g).item() < 0.5)

    def forward(
        self, clips: torch.Tensor, generator: torch.Generator | None = None, snr_db: float | None = None
    ) -> torch.Tensor:
        """Transform ``clips``; random draws come from ``generator`` (default: the one given at construction):
        each clip's crop box and flip in turn, then, with ``snr_db``, Gaussian noise at that SNR (dB, per frame)
        added to the ``[0, 1]`` pixels before the normalisation."""
        g = generator if generator is not None else self.generator
        single = clips.dim() == 4
        if single:
            clips = clips.unsqueeze(0)
        if clips.dim() != 5:
            raise ValueError(f"FrameTransform expects [B, F, C, H, W] or [F, C, H, W], got {tuple(clips.shape)}")
        b, f, c, h, w = clips.shape
        plans = [self.plan(h, w, g) for _ in range(b)]
        noise = None
        if snr_db is not None:
            noise = torch.randn((b * f, c, self.size, self.size), generator=g, dtype=torch.float32)
        crops = [crop_frames(clip, p) for clip, p in zip(clips, plans, strict=True)]
        x = finish_frames(crops, [p.flip for p in plans], self.spec, snr_db, noise)
        return x[0] if single else x


def crop_frames(clip: torch.Tensor, plan: CropPlan) -> torch.Tensor:
    """The crop of ``plan`` out of a clip ``[F, C, H, W]`` (a view)."""
    return clip[..., plan.top : plan.top + plan.height, plan.left : plan.left + plan.width]


def finish_frames(
    crops: Sequence[torch.Tensor],
    flips: Sequence[bool],
    spec: FrameSpec,
    snr_db: float | None = None,
    noise: torch.Tensor | None = None,
    fused: bool = True,
) -> torch.Tensor:
    """The batched half of :class:`FrameTransform`, on the crops' device: to float in [0, 1] (from uint8),
    bilinear resize to ``spec.size``, mirror where ``flips``, add ``noise`` (standard normal ``[B * F, C, size,
    size]`` or ``[B, F, C, size, size]``) scaled to ``snr_db`` per frame, normalise.

    Shape: B crops ``[F, C, h_b, w_b]`` -> ``[B, F, C, size, size]`` float32. uint8 crops on the CPU take the C++
    pass of :mod:`~snn_msi.encoders.frames_cpu` (``fused``, where it builds; equal to the PyTorch ops to float32
    rounding, 1-2 ulp); otherwise crops of one shape are converted and resized as one batch, others one by one;
    both give the same numbers as a clip transformed alone.
    """
    s = spec.size
    if fused and all(c.device.type == "cpu" and c.dtype == torch.uint8 for c in crops):
        if frames_cpu.unavailable_reason() is None:
            if snr_db is None:
                return frames_cpu.finish(crops, flips, s, spec.mean, spec.std)
            x = frames_cpu.finish(crops, flips, s, None, None)
            return _noise_and_normalise(x, spec, snr_db, noise)
    if len({tuple(c.shape) for c in crops}) == 1:
        x = torch.stack(list(crops))
        b, f, c, h, w = x.shape
        x = _to_unit(x.reshape(b * f, c, h, w))
        if (h, w) != (s, s):
            x = F.interpolate(x, size=(s, s), mode="bilinear", align_corners=False)
        x = x.reshape(b, f, c, s, s)
        if any(flips):  # in place, the flipped clips only (a where() over the batch costs two full passes)
            idx = torch.tensor([i for i, f in enumerate(flips) if f], device=x.device)
            x = x.index_copy_(0, idx, x.index_select(0, idx).flip(-1))
    else:
        out = []
        for crop, flip in zip(crops, flips, strict=True):
            y = _to_unit(crop)
            if tuple(y.shape[-2:]) != (s, s):
                y = F.interpolate(y, size=(s, s), mode="bilinear", align_corners=False)
            out.append(y.flip(-1) if flip else y)
        x = torch.stack(out)
    return _noise_and_normalise(x, spec, snr_db, noise)


def _noise_and_normalise(
    x: torch.Tensor, spec: FrameSpec, snr_db: float | None, noise: torch.Tensor | None
) -> torch.Tensor:
    """``x [B, F, C, size, size]`` in [0, 1] with ``noise`` scaled to ``snr_db`` per frame, then normalised."""
    if snr_db is not None:
        x = scale_noise(x.flatten(0, 1), snr_db, noise.reshape(-1, *x.shape[2:])).view_as(x)
    if spec.mean is not None:  # in place: x is new here, and a fresh batch-sized buffer costs page faults on a CPU
        x = x.sub_(torch.tensor(spec.mean, device=x.device).view(-1, 1, 1))
        x = x.div_(torch.tensor(spec.std, device=x.device).view(-1, 1, 1))
    return x


def _to_unit(x: torch.Tensor) -> torch.Tensor:
    """Float pixels in [0, 1]: ``uint8 * (1 / 255)`` in one pass (the same float32 product as converting first)."""
    return x * (1 / 255.0) if x.dtype == torch.uint8 else x.float()
