"""UrbanSound8K-AV: UrbanSound8K's audio paired with images of the same class::

root/metadata/UrbanSound8K.csv     slice_file_name,fsID,start,end,salience,fold,classID,class
root/audio/fold<k>/<slice_file_name>
root/images/<class>/*.jpg          a pool of images per class; each clip gets one (seeded, fixed)
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from .base import AudioVisualFiles, require_dir
from .sample import BadClips, ClipRecord


class UrbanSound8KAV(AudioVisualFiles):
    """Test split = ``test_folds`` (default fold 10); train (and val carved from it) = the other folds."""

    name = "urbansound8k_av"

    def __init__(self, root: str | Path, split: str = "train", test_folds=(10,), val_fraction: float = 0.1,
                 seed: int = 0, **kw):  # fmt: skip
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        kw.setdefault("train", split == "train")
        kw.setdefault("frames_per_clip", 1)
        kw.setdefault("audio_seconds", 4.0)
        super().__init__(**kw)
        self.root = require_dir(Path(root), "UrbanSound8K-AV root")
        meta = self.root / "metadata" / "UrbanSound8K.csv"
        if not meta.is_file():
            raise FileNotFoundError(f"UrbanSound8K-AV: {meta} not found")
        images = require_dir(self.root / "images", "UrbanSound8K-AV image pool (images/<class>/*.jpg)")
        with meta.open(newline="") as fh:
            rows = list(csv.DictReader(fh))
        need = {"slice_file_name", "fold", "classID", "class"}
        if rows and not need <= set(rows[0]):
            raise ValueError(f"{meta}: missing columns {sorted(need - set(rows[0]))}")
        classes_by_id = {int(r["classID"]): r["class"] for r in rows}
        label_of = {cid: i for i, cid in enumerate(sorted(classes_by_id))}  # the identity for all 10 classes
        classes = [classes_by_id[i] for i in sorted(classes_by_id)]
        pools = {c: sorted((images / c).glob("*.jpg")) for c in classes}
        g = torch.Generator().manual_seed(seed)
        bad, records = BadClips(), []
        for r in rows:
            in_test = int(r["fold"]) in set(test_folds)
            if in_test != (split == "test"):
                continue
            clip, cls = Path(r["slice_file_name"]).stem, r["class"]
            pool = pools.get(cls, [])
            frame = [pool[int(torch.randint(len(pool), (1,), generator=g))]] if pool else []
            records.append(ClipRecord(clip, label_of[int(r["classID"])], self.root / "audio" / f"fold{r['fold']}" /
                                      r["slice_file_name"], frame))  # fmt: skip
        self._finish_index(records, classes, bad, split, val_fraction, seed)
