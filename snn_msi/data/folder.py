"""A generic audio-visual folder: ``root/<label>/<clip>.wav`` next to ``root/<label>/<clip>/*.jpg``."""

from __future__ import annotations

from pathlib import Path

from .base import AudioVisualFiles, require_dir
from .kinetics import _frame_paths
from .sample import ClipRecord


class AudioVisualFolder(AudioVisualFiles):
    name = "folder"

    def __init__(self, root: str | Path, **kw):
        super().__init__(**kw)
        self.root = require_dir(Path(root), "AudioVisualFolder root")
        classes = sorted(p.name for p in self.root.iterdir() if p.is_dir())
        records = []
        for label, name in enumerate(classes):
            for wav in sorted((self.root / name).glob("*.wav")):
                records.append(ClipRecord(wav.stem, label, wav, _frame_paths(self.root / name / wav.stem)))
        self._finish_index(records, classes)
