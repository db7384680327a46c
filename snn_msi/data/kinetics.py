"""Kinetics-Sounds in the layout of the IEMF code (see docs and ``shared/seeds``)::

root/my_train.txt, my_test.txt             <clip_id>,<n_frames>,<class_index> per line
root/{train,test}/video/<label>/<clip_id>/frame_0.jpg ... frame_9.jpg
root/{train,test}/audio/<label>/<clip_id>.wav

As in the original code, a test clip may lie under the first 11 characters of its id (the YouTube id): the full
id is tried first, then the prefix. A clip in both lists is reported and kept out of training.
"""

from __future__ import annotations

from pathlib import Path

from .base import AudioVisualFiles, drop_overlap, read_list, require_dir
from .config import SPLITS
from .sample import BadClips, ClipRecord
from .scan import frame_paths, label_folders


class KineticsSounds(AudioVisualFiles):
    """Kinetics-Sounds clips of one split (``"train"``, ``"val"`` carved from train, or ``"test"``).

    Classes are the sorted label folders of the training split; the list file's class index of each clip is
    checked against the folder the clip lies in (a disagreement is reported as a bad clip, never relabelled).
    Without list files the folders are scanned.
    """

    name = "kinetics_sounds"

    def __init__(self, root: str | Path, split: str = "train", val_fraction: float = 0.1, seed: int = 0, **kw):
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        kw.setdefault("train", split == "train")
        super().__init__(**kw)
        self.root = require_dir(Path(root), "KineticsSounds root")
        files_split = "test" if split == "test" else "train"
        expected = f"KineticsSounds {files_split} split (expected {files_split}/video and {files_split}/audio)"
        base = require_dir(self.root / files_split, expected)
        class_base = self.root / "train" if (self.root / "train" / "video").is_dir() else base
        classes = label_folders(require_dir(class_base / "video", "label folders"))
        if not classes:
            raise ValueError(f"KineticsSounds: no label folders under {class_base / 'video'}")
        bad = BadClips()
        list_file = self.root / f"my_{files_split}.txt"
        records = self._from_list(list_file, base, classes, bad) if list_file.is_file() else self._scan(base, classes)
        other = self.root / "my_test.txt"
        if files_split == "train" and other.is_file():
            records = drop_overlap(records, {f[0] for _, f in read_list(other)}, bad, "test")
        self._finish_index(records, classes, bad, split, val_fraction, seed)

    @staticmethod
    def _record(base: Path, label_name: str, label: int, clip: str) -> ClipRecord:
        name = clip
        if not (base / "video" / label_name / clip).is_dir() and (base / "video" / label_name / clip[:11]).is_dir():
            name = clip[:11]  # the original's test layout: folders and wavs named by the YouTube id
        return ClipRecord(
            clip, label, base / "audio" / label_name / f"{name}.wav", frame_paths(base / "video" / label_name / name)
        )

    def _from_list(self, list_file: Path, base: Path, classes: list[str], bad: BadClips) -> list[ClipRecord]:
        where = {}  # clip id -> label folder it actually lies in
        for label_dir in (base / "video").iterdir():
            if label_dir.is_dir():
                for clip_dir in label_dir.iterdir():
                    where[clip_dir.name] = label_dir.name
        records = []
        for n, parts in read_list(list_file):
            if len(parts) != 3 or not parts[2].lstrip("-").isdigit():
                raise ValueError(
                    f"{list_file}:{n}: expected '<clip_id>,<n_frames>,<class_index>', got {','.join(parts)!r}"
                )
            clip, label = parts[0], int(parts[2])
            if not 0 <= label < len(classes):
                bad.add("label not in class list", clip)
                continue
            folder = where.get(clip, where.get(clip[:11]))
            if folder is not None and folder != classes[label]:
                bad.add("label disagrees with folder", clip)
                continue
            records.append(self._record(base, classes[label], label, clip))
        return records

    def _scan(self, base: Path, classes: list[str]) -> list[ClipRecord]:
        records = []
        for label, name in enumerate(classes):
            folder = base / "video" / name
            if folder.is_dir():
                records += [self._record(base, name, label, d.name) for d in sorted(folder.iterdir()) if d.is_dir()]
        return records
