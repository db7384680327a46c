"""UrbanSound8K-AV: UrbanSound8K's audio paired with images of the same class, in either layout.

``urbansound8k`` (UrbanSound8K's own files plus an image pool per class)::

    root/metadata/UrbanSound8K.csv     slice_file_name,fsID,start,end,salience,fold,classID,class
    root/audio/fold<k>/<slice_file_name>
    root/images/<class>/*.jpg          each clip gets one image of its class (seeded, fixed)

Test split = ``test_folds`` (default fold 10); train (and val carved from it) = the other folds.

``iemf`` (the IEMF code's tree: each clip with its own image)::

    root/Dataset_v3_sound/<class>/<clip>.wav
    root/Dataset_v3_vision/<class>/<clip>.jpg

Split as the IEMF code: per class the first 70 % of the clips are train, the rest test, with the clips sorted by
name (the original took them in file-system order, which differs between machines).
"""

from __future__ import annotations

import csv
from pathlib import Path

import torch

from .base import AudioVisualFiles, require_dir
from .sample import BadClips, ClipRecord
from .scan import IMAGE_EXTS, files_with_suffix, label_folders, scan_labelled_clips

LAYOUTS = ("auto", "urbansound8k", "bim-ml")


def detect_layout(root: Path) -> str:
    if (root / "metadata" / "UrbanSound8K.csv").is_file():
        return "urbansound8k"
    if (root / "Dataset_v3_sound").is_dir() and (root / "Dataset_v3_vision").is_dir():
        return "bim-ml"
    raise FileNotFoundError(
        f"UrbanSound8K-AV: {root} has neither layout: metadata/UrbanSound8K.csv + audio/ + "
        "images/ (urbansound8k) or Dataset_v3_sound/ + Dataset_v3_vision/ (iemf)"
    )


class UrbanSound8KAV(AudioVisualFiles):
    """UrbanSound8K-AV clips of one split (``"train"``, ``"val"`` carved from train, or ``"test"``)."""

    name = "urbansound8k_av"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        test_folds=(10,),
        val_fraction: float = 0.1,
        seed: int = 0,
        layout: str = "auto",
        train_share: float = 0.7,
        **kw,
    ):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"UrbanSound8K-AV layout must be one of {LAYOUTS}, got {layout!r}")
        kw.setdefault("train", split == "train")
        kw.setdefault("frames_per_clip", 1)
        kw.setdefault("audio_seconds", 4.0)
        super().__init__(seed=seed, **kw)
        self.root = require_dir(Path(root), "UrbanSound8K-AV root")
        self.layout = detect_layout(self.root) if layout == "auto" else layout
        if self.layout == "bim-ml":
            sound = require_dir(self.root / "Dataset_v3_sound", "UrbanSound8K-AV sound tree")
            classes = label_folders(sound)
            records = scan_labelled_clips(sound, classes, self.root / "Dataset_v3_vision", qualified_ids=False)
            records, bad = self._share_split(records, len(classes), train_share, split), BadClips()
        else:
            records, classes, bad = self._from_metadata(split, set(test_folds), seed)
        self._finish_index(records, classes, bad, split, val_fraction, seed)

    @staticmethod
    def _share_split(records: list[ClipRecord], n_classes: int, share: float, split: str) -> list[ClipRecord]:
        keep = []
        for c in range(n_classes):
            mine = [r for r in records if r.label == c]
            n_train = round(share * len(mine))
            keep += mine[n_train:] if split == "test" else mine[:n_train]
        return keep

    def _from_metadata(self, split: str, test_folds: set[int], seed: int):
        meta = self.root / "metadata" / "UrbanSound8K.csv"
        images = require_dir(self.root / "images", "UrbanSound8K-AV image pool (images/<class>/*.jpg)")
        with meta.open(newline="", encoding="utf-8-sig") as fh:
            rows = list(csv.DictReader(fh))
        need = {"slice_file_name", "fold", "classID", "class"}
        if rows and not need <= set(rows[0]):
            raise ValueError(f"{meta}: missing columns {sorted(need - set(rows[0]))}")
        classes_by_id = {int(r["classID"]): r["class"] for r in rows}
        label_of = {cid: i for i, cid in enumerate(sorted(classes_by_id))}  # the identity for all 10 classes
        classes = [classes_by_id[i] for i in sorted(classes_by_id)]
        pools = {c: files_with_suffix(images / c, IMAGE_EXTS) for c in classes}
        g = torch.Generator().manual_seed(seed)
        records = []
        for r in rows:
            if (int(r["fold"]) in test_folds) != (split == "test"):
                continue
            clip, cls = Path(r["slice_file_name"]).stem, r["class"]
            pool = pools.get(cls, [])
            frame = [pool[int(torch.randint(len(pool), (1,), generator=g))]] if pool else []
            wav = self.root / "audio" / f"fold{r['fold']}" / r["slice_file_name"]
            records.append(ClipRecord(clip, label_of[int(r["classID"])], wav, frame))
        return records, classes, BadClips()
