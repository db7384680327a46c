"""CREMA-D in the layout of the balancing literature (OGM-GE, MMPareto)::

root/train.csv, test.csv           <clip>,<emotion> per line (emotion one of NEU HAP SAD FEA DIS ANG)
root/AudioWAV/<clip>.wav
root/Image-01-FPS/<clip>/*.jpg     (1 frame per second)
"""

from __future__ import annotations

import csv
from pathlib import Path

from .base import AudioVisualFiles, require_dir
from .kinetics import _frame_paths
from .sample import BadClips, ClipRecord

EMOTIONS = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]


class CremaD(AudioVisualFiles):
    name = "cremad"

    def __init__(self, root: str | Path, split: str = "train", val_fraction: float = 0.1, seed: int = 0, **kw):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        kw.setdefault("train", split == "train")
        kw.setdefault("frames_per_clip", 1)
        super().__init__(**kw)
        self.root = require_dir(Path(root), "CREMA-D root")
        table = self.root / ("test.csv" if split == "test" else "train.csv")
        if not table.is_file():
            raise FileNotFoundError(f"CREMA-D: {table} not found (expected lines '<clip>,<emotion>')")
        bad, records = BadClips(), []
        with table.open(newline="") as fh:
            for row in csv.reader(fh):
                if not row or row[0].strip().lower() in ("clip", "name"):
                    continue
                clip, emotion = row[0].strip(), row[1].strip() if len(row) > 1 else ""
                if emotion not in EMOTIONS:
                    bad.add("label not in class list", clip)
                    continue
                records.append(
                    ClipRecord(
                        clip,
                        EMOTIONS.index(emotion),
                        self.root / "AudioWAV" / f"{clip}.wav",
                        _frame_paths(self.root / "Image-01-FPS" / clip),
                    )
                )
        self._finish_index(records, EMOTIONS, bad, split, val_fraction, seed)
