"""Your own audio-visual data: a folder of labelled clips, with or without a test split of its own.

    root/<label>/<clip>.wav + root/<label>/<clip>/*.jpg        (frames of the clip; or one root/<label>/<clip>.jpg)
    root/train/<label>/... and root/test/<label>/...          (the same, split by you)

Without ``train/`` and ``test/`` the test split is carved from all clips (stratified, ``test_fraction``, always
with seed 0, so every run tests on the same clips); the validation split is carved from the rest with the run's
seed. Class names are the label folders (of ``train/`` when it exists); a clip's id is ``<label>/<clip>``, so
clips of the same name in two classes stay two clips.
"""

from __future__ import annotations

from pathlib import Path

from .base import AudioVisualFiles, require_dir, stratified_split
from .kinetics import _frame_paths
from .sample import ClipRecord

IMAGE_EXTS = (".jpg", ".jpeg", ".png")


def _clip_frames(label_dir: Path, clip: str) -> list[Path]:
    frames = _frame_paths(label_dir / clip)
    if frames:
        return frames
    return [p for ext in IMAGE_EXTS if (p := label_dir / f"{clip}{ext}").is_file()][:1]


def scan_labelled_clips(
    base: Path, classes: list[str], visual_base: Path | None = None, qualified_ids: bool = True
) -> list[ClipRecord]:
    """Every ``<label>/<clip>.wav`` under ``base`` with its frames (under ``visual_base`` when the images live
    in a tree of their own), labelled by ``classes.index(label)``, sorted by name.

    A clip's id is ``<label>/<clip>`` (``qualified_ids``) or ``<clip>`` (for data sets whose clip names are
    unique across classes).
    """
    records = []
    for label, name in enumerate(classes):
        folder = base / name
        if folder.is_dir():
            images = (visual_base or base) / name
            for w in sorted(folder.glob("*.wav")):
                clip_id = f"{name}/{w.stem}" if qualified_ids else w.stem
                records.append(ClipRecord(clip_id, label, w, _clip_frames(images, w.stem)))
    return records


class AudioVisualFolder(AudioVisualFiles):
    """Clips of one split (``"train"``, ``"val"`` or ``"test"``) of a labelled folder (see the module docstring).

    Args:
        root: the folder.
        split: which split.
        val_fraction: share of the training clips held out for validation (seeded with ``seed``).
        test_fraction: share of all clips held out for testing when there is no ``test/`` folder.
        **kw: see :class:`~snn_msi.data.base.AudioVisualFiles` (``frames_per_clip`` defaults to 1).
    """

    name = "folder"

    def __init__(
        self,
        root: str | Path,
        split: str = "train",
        val_fraction: float = 0.1,
        test_fraction: float = 0.2,
        seed: int = 0,
        **kw,
    ):
        if split not in ("train", "val", "test"):
            raise ValueError(f"split must be 'train', 'val' or 'test', got {split!r}")
        kw.setdefault("train", split == "train")
        kw.setdefault("frames_per_clip", 1)
        super().__init__(seed=seed, **kw)
        self.root = require_dir(Path(root), "AudioVisualFolder root")
        presplit = (self.root / "train").is_dir() and (self.root / "test").is_dir()
        class_base = self.root / "train" if presplit else self.root
        classes = sorted(p.name for p in class_base.iterdir() if p.is_dir())
        if not classes:
            raise ValueError(f"AudioVisualFolder: no label folders under {class_base} (expected <label>/<clip>.wav)")
        if presplit:
            records = scan_labelled_clips(self.root / ("test" if split == "test" else "train"), classes)
        else:
            records = scan_labelled_clips(self.root, classes)
            if not records:
                raise ValueError(f"AudioVisualFolder: no <label>/<clip>.wav under {self.root}")
            rest, test = stratified_split([r.label for r in records], test_fraction, 0)
            records = [records[i] for i in (test if split == "test" else rest)]
        self._finish_index(records, classes, None, split, val_fraction, seed)
