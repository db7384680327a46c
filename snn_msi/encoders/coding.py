"""Spike coding: turn an analogue tensor into a ``[T, B, ...]`` input sequence.

- ``direct``: the same analogue value at every step (the paper's; the first layer sees currents, not spikes);
- ``rate``: Bernoulli spikes with probability ``clamp(x, 0, 1)``; decoded by the mean over T;
- ``latency``: one spike per element, earlier for larger values (``t = round((1 - x) (T - 1))``); decoded by
  ``1 - t / (T - 1)``; values <= 0 never spike;
- ``delta``: for frame sequences ``[B, F, ...]``, +1/-1 spikes where a frame differs from the previous one by
  more than ``threshold`` (ON/OFF channels stacked on a new axis 2); T = F.

All random codings take a ``torch.Generator`` for reproducibility.
"""

from __future__ import annotations

import torch
from torch import nn

from neurons.registry import Registry

#: spike codings over T steps: ``CODINGS.create(name, T=4)``
CODINGS = Registry("coding")


@CODINGS.register("direct", description="the same analogue value at every step (the paper's)")
class DirectCoding(nn.Module):
    def __init__(self, T: int) -> None:
        super().__init__()
        if T < 1:
            raise ValueError(f"T must be >= 1, got {T}")
        self.T = T

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x.unsqueeze(0).expand(self.T, *x.shape)

    @staticmethod
    def decode(seq: torch.Tensor) -> torch.Tensor:
        return seq.mean(0)


@CODINGS.register("rate", description="Bernoulli spikes with probability clamp(x, 0, 1)")
class RateCoding(DirectCoding):
    def __init__(self, T: int, generator: torch.Generator | None = None) -> None:
        super().__init__(T)
        self.generator = generator

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        p = x.clamp(0, 1).unsqueeze(0).expand(self.T, *x.shape)
        return torch.bernoulli(p, generator=self.generator)


@CODINGS.register("latency", description="one spike per element, earlier for larger values")
class LatencyCoding(DirectCoding):
    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xc = x.clamp(0, 1)
        t_fire = torch.round((1 - xc) * (self.T - 1)).long()
        steps = torch.arange(self.T, device=x.device).view(-1, *([1] * x.dim()))
        return ((steps == t_fire.unsqueeze(0)) & (x > 0).unsqueeze(0)).to(x.dtype)

    def decode(self, seq: torch.Tensor) -> torch.Tensor:
        steps = torch.arange(self.T, device=seq.device, dtype=seq.dtype).view(-1, *([1] * (seq.dim() - 1)))
        t_fire = (seq * steps).sum(0)
        fired = seq.sum(0) > 0
        return torch.where(fired, 1 - t_fire / max(self.T - 1, 1), torch.zeros_like(t_fire))


class DeltaCoding(nn.Module):
    """Change detection on a frame sequence ``[B, F, ...] -> [F, B, 2, ...]`` (ON, OFF); the first frame is
    compared with zeros."""

    def __init__(self, threshold: float = 0.1) -> None:
        super().__init__()
        self.threshold = threshold

    def forward(self, frames: torch.Tensor) -> torch.Tensor:
        prev = torch.cat([torch.zeros_like(frames[:, :1]), frames[:, :-1]], dim=1)
        d = (frames - prev).transpose(0, 1)
        return torch.stack([(d > self.threshold), (d < -self.threshold)], dim=2).to(frames.dtype)

    def decode(self, seq: torch.Tensor) -> torch.Tensor:
        """Approximate inverse: cumulative sum of ``threshold * (ON - OFF)`` -> ``[B, F, ...]``."""
        return (self.threshold * (seq[:, :, 0] - seq[:, :, 1])).cumsum(0).transpose(0, 1)


def build_coding(name: str, T: int, **kwargs) -> nn.Module:
    """A registered coding (``direct``, ``rate``, ``latency``) over T steps."""
    return CODINGS.create(name, T=T, **kwargs)
