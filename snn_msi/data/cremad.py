"""CREMA-D in either of the two layouts its users have.

``ogm-ge`` (the balancing literature: OGM-GE, MMPareto)::

    root/train.csv, test.csv           <clip>,<emotion> per line (emotion one of NEU HAP SAD FEA DIS ANG)
    root/AudioWAV/<clip>.wav
    root/Image-01-FPS/<clip>/*.jpg     (1 frame per second)

``iemf`` (the IEMF code's pre-split tree; one image per clip)::

    root/{train,test}/visual/<EMOTION>/<clip>.jpg
    root/{train,test}/audio/<EMOTION>/<clip>.wav

``auto`` picks the one that is there. Class order: the CSV layout's ``NEU HAP SAD FEA DIS ANG`` (as OGM-GE);
the tree's label folders sorted (``ANG DIS FEA HAP NEU SAD``, as the IEMF code).
"""

from __future__ import annotations

from pathlib import Path

from .base import AudioVisualFiles, read_list, require_dir
from .sample import BadClips, ClipRecord
from .scan import frame_paths, label_folders, scan_labelled_clips

EMOTIONS = ["NEU", "HAP", "SAD", "FEA", "DIS", "ANG"]
LAYOUTS = ("auto", "ogm-ge", "bim-ml")


def detect_layout(root: Path) -> str:
    if (root / "AudioWAV").is_dir() and ((root / "train.csv").is_file() or (root / "test.csv").is_file()):
        return "ogm-ge"
    if (root / "train" / "visual").is_dir() and (root / "train" / "audio").is_dir():
        return "bim-ml"
    raise FileNotFoundError(
        f"CREMA-D: {root} has neither layout: AudioWAV/ + Image-01-FPS/ + train.csv (ogm-ge) or "
        "train/{audio,visual}/<EMOTION>/ (iemf)"
    )


class CremaD(AudioVisualFiles):
    """CREMA-D clips of one split (``"train"``, ``"val"`` carved from train, or ``"test"``).

    Args:
        root: the data set folder; ``layout``: ``auto``, ``ogm-ge`` or ``iemf`` (see the module docstring).
        **kw: see :class:`~snn_msi.data.base.AudioVisualFiles` (``frames_per_clip`` defaults to 1).
    """

    name = "cremad"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        val_fraction: float = 0.1,
        seed: int = 0,
        layout: str = "auto",
        **kw,
    ):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        if layout not in LAYOUTS:
            raise ValueError(f"CREMA-D layout must be one of {LAYOUTS}, got {layout!r}")
        kw.setdefault("train", split == "train")
        kw.setdefault("frames_per_clip", 1)
        super().__init__(seed=seed, **kw)
        self.root = require_dir(Path(root), "CREMA-D root")
        self.layout = detect_layout(self.root) if layout == "auto" else layout
        files_split = "test" if split == "test" else "train"
        if self.layout == "bim-ml":
            base = require_dir(self.root / files_split / "audio", f"CREMA-D {files_split}/audio")
            classes = label_folders(require_dir(self.root / "train" / "visual", "label folders"))
            records = scan_labelled_clips(base, classes, self.root / files_split / "visual", qualified_ids=False)
            bad = BadClips()
        else:
            classes = EMOTIONS
            records, bad = self._from_csv(files_split)
        self._finish_index(records, classes, bad, split, val_fraction, seed)

    def _from_csv(self, files_split: str) -> tuple[list[ClipRecord], BadClips]:
        table = self.root / f"{files_split}.csv"
        if not table.is_file():
            raise FileNotFoundError(f"CREMA-D: {table} not found (expected lines '<clip>,<emotion>')")
        bad, records = BadClips(), []
        for _, row in read_list(table):
            if row[0].lower() in ("clip", "name"):
                continue
            clip, emotion = row[0], row[1] if len(row) > 1 else ""
            if emotion not in EMOTIONS:
                bad.add("label not in class list", clip)
                continue
            records.append(
                ClipRecord(
                    clip,
                    EMOTIONS.index(emotion),
                    self.root / "AudioWAV" / f"{clip}.wav",
                    frame_paths(self.root / "Image-01-FPS" / clip),
                )
            )
        return records, bad
