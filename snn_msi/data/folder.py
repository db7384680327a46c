"""Your own audio-visual data: a folder of labelled clips, with or without a test split of its own.

    root/<label>/<clip>.wav + root/<label>/<clip>/*.jpg        (frames of the clip; or one root/<label>/<clip>.jpg)
    root/train/<label>/... and root/test/<label>/...          (the same, split by you)

Frames are ``.jpg``, ``.jpeg`` or ``.png``, extensions in any case (``snn_msi.data.scan``). Every label folder is
a class and must hold clips (an empty one is an error, as in torchvision's ``ImageFolder``); hidden and tool
folders (``.ipynb_checkpoints``, ``__MACOSX``) are not classes. In a split folder, ``test/`` may not hold a class
that ``train/`` lacks.

Without ``train/`` and ``test/`` the test split is carved from all clips (stratified, ``test_fraction``, always
with seed 0, so every run tests on the same clips); the validation split is carved from the rest with the run's
seed. Class names are the label folders (of ``train/`` when it exists); a clip's id is ``<label>/<clip>``, so
clips of the same name in two classes stay two clips.
"""

from __future__ import annotations

from pathlib import Path

from .base import AudioVisualFiles, require_dir, stratified_split
from .scan import AUDIO_EXTS, files_with_suffix, label_folders, scan_labelled_clips, what_is_there


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
        halves = [h for h in ("train", "test") if (self.root / h).is_dir()]
        if len(halves) == 1:
            other = "test" if halves == ["train"] else "train"
            raise ValueError(
                f"AudioVisualFolder: {self.root / halves[0]} has no {other}/ beside it: a folder split by you needs "
                f"both train/ and test/ (or take {self.root / halves[0]} as the root, to split it here)"
            )
        presplit = bool(halves)
        class_base = self.root / "train" if presplit else self.root
        classes = label_folders(class_base)
        if not classes:
            raise ValueError(f"AudioVisualFolder: no label folders under {class_base} (expected <label>/<clip>.wav)")
        _require_clips(class_base, classes)
        if presplit:
            base = self.root / ("test" if split == "test" else "train")
            if split == "test":
                strangers = [c for c in label_folders(base) if c not in classes]
                if strangers:
                    raise ValueError(
                        f"AudioVisualFolder: {', '.join(str(base / c) for c in strangers)}: not a class of "
                        f"{class_base} (its classes: {', '.join(classes)}); a test clip must be of a trained class"
                    )
            records = scan_labelled_clips(base, classes)
        else:
            records = scan_labelled_clips(self.root, classes)
            rest, test = stratified_split([r.label for r in records], test_fraction, 0)
            records = [records[i] for i in (test if split == "test" else rest)]
        self._finish_index(records, classes, None, split, val_fraction, seed)


def _require_clips(base: Path, classes: list[str]) -> None:
    """Every label folder of ``base`` holds at least one ``<clip>.wav``: an empty one would be a class the
    model is asked to predict and never sees (a wrong softmax, a wrong macro F1)."""
    empty = [c for c in classes if not files_with_suffix(base / c, AUDIO_EXTS)]
    if empty:
        shown = ", ".join(f"{base / c} ({what_is_there(base / c)})" for c in empty[:5])
        more = f" and {len(empty) - 5} more" if len(empty) > 5 else ""
        raise ValueError(
            f"AudioVisualFolder: label folders without a <clip>.wav: {shown}{more}; each label folder is a class "
            "and needs clips (remove it, or add its clips)"
        )
