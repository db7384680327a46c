"""Per-sample random streams: what a sample draws (noise, frame choice, crop, flip) depends on the run's seed,
the epoch, the split and the index alone, never on the DataLoader's worker count or order."""

from __future__ import annotations

import torch

SPLIT_CODES = {"train": 0, "val": 1, "test": 2}


def sample_generator(seed: int, epoch: int, split: str, index: int) -> torch.Generator:
    """A generator seeded from ``(seed, epoch, split, index)`` (splitmix64 of the four, so nearby keys differ).

    Evaluation splits pass ``epoch=-1`` so their noise is the same every epoch.
    """
    x = 0
    for part in (seed, epoch + 1, SPLIT_CODES.get(split, 3), index):
        x = (x ^ (int(part) & 0xFFFFFFFFFFFFFFFF)) * 0x9E3779B97F4A7C15 & 0xFFFFFFFFFFFFFFFF
        x ^= x >> 31
    return torch.Generator().manual_seed(x & 0x7FFFFFFFFFFFFFFF)
