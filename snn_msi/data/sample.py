"""The one sample type every data set returns, and the records and reports behind the file-based ones."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import NamedTuple

import torch

from ..files import write_text


class AVSample(NamedTuple):
    """One audio-visual example.

    audio: ``[1, F, frames]`` spectrogram (float32); frames: ``[K, C, H, W]`` float32; label: class index;
    clip_id: the clip's name. ``torch.utils.data.default_collate`` batches it into an ``AVSample`` of
    ``[B, ...]`` tensors, a ``[B]`` label tensor and a list of ids.
    """

    audio: torch.Tensor
    frames: torch.Tensor
    label: int
    clip_id: str


@dataclass
class ClipRecord:
    """Where one clip's files are: a wav and its frame images (sorted)."""

    clip_id: str
    label: int
    wav: Path
    frames: list[Path]


@dataclass
class BadClips:
    """What an index-time check found: ``{problem: [clip ids]}``."""

    problems: dict[str, list[str]] = field(default_factory=dict)

    def add(self, problem: str, clip_id: str) -> None:
        self.problems.setdefault(problem, []).append(clip_id)

    @property
    def count(self) -> int:
        return len({c for ids in self.problems.values() for c in ids})

    def summary(self) -> str:
        if not self.problems:
            return "no bad clips"
        parts = []
        for problem, ids in sorted(self.problems.items()):
            parts.append(f"{len(ids)} {problem} (e.g. {', '.join(_printable(i) for i in ids[:3])})")
        return f"{self.count} bad clip(s): " + "; ".join(parts)

    def write(self, path: str | Path) -> Path:
        return write_text(path, json.dumps({"count": self.count, "problems": self.problems}, indent=1))


def _printable(clip_id: str) -> str:
    """An id as text any terminal takes (the bytes of a non-UTF-8 name as ``\\xNN``)."""
    return clip_id.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
