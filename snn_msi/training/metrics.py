"""The numbers one pass over a split produces, as a typed record (what the trainer logs and policies read)."""

from __future__ import annotations

from dataclasses import asdict, dataclass

import torch

__all__ = ["SplitMetrics", "batch_sums", "SUM_FIELDS"]

#: per-batch sums the trainer accumulates (then all-reduces) to make a :class:`SplitMetrics`
SUM_FIELDS = ("loss", "acc", "acc_audio", "acc_visual", "acc_fused_audio", "acc_fused_visual", "n")


@dataclass(frozen=True)
class SplitMetrics:
    """Loss and accuracies of one split, each in [0, 1].

    ``acc``: fused prediction; ``acc_audio`` / ``acc_visual``: the unimodal heads; ``acc_fused_audio`` /
    ``acc_fused_visual``: each modality's part of the fused logits (what OGM-GE balances); ``n``: samples.
    """

    loss: float
    acc: float
    acc_audio: float
    acc_visual: float
    acc_fused_audio: float
    acc_fused_visual: float
    n: int

    @classmethod
    def from_sums(cls, sums: torch.Tensor) -> SplitMetrics:
        s = dict(zip(SUM_FIELDS, sums.tolist(), strict=True))
        n = max(s.pop("n"), 1.0)
        return cls(**{k: v / n for k, v in s.items()}, n=int(n))

    def row(self, prefix: str) -> dict[str, float]:
        """``{"<prefix>_loss": ..., "<prefix>_acc": ..., "<prefix>_n": ...}`` for the logs."""
        return {f"{prefix}_{k}": v for k, v in asdict(self).items()}


def batch_sums(loss: torch.Tensor, out, y: torch.Tensor) -> torch.Tensor:
    """The :data:`SUM_FIELDS` of one batch (``loss`` is the batch mean)."""
    n = y.numel()
    correct = [z.argmax(1).eq(y).sum() for z in (out.fused, out.audio, out.visual, out.fused_audio, out.fused_visual)]
    return torch.stack([loss.detach().float() * n, *correct, torch.tensor(n, device=y.device)]).float()
