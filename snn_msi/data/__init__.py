"""Audio-visual data sets, all returning :class:`AVSample`, behind one registry (``DATASETS``).

``build_datasets(DataConfig(...), seed)`` gives ``(train, val, test)``; ``snn-msi datasets`` lists the names.
:mod:`snn_msi.data.loader` is how their samples reach the training device (compact from DataLoader workers,
finished there on whole batches).
"""

from __future__ import annotations

from .base import AudioVisualFiles, carve_validation, stratified_split
from .catalog import DATASETS, build_datasets, dataset_info
from .config import SNR_PRESETS, DataConfig
from .cremad import CremaD
from .digits_av import DigitsAV
from .folder import AudioVisualFolder
from .kinetics import KineticsSounds
from .sample import AVSample, BadClips, ClipRecord
from .urbansound import UrbanSound8KAV

__all__ = [
    "AVSample",
    "BadClips",
    "ClipRecord",
    "AudioVisualFiles",
    "AudioVisualFolder",
    "KineticsSounds",
    "CremaD",
    "UrbanSound8KAV",
    "DigitsAV",
    "DataConfig",
    "SNR_PRESETS",
    "DATASETS",
    "build_datasets",
    "dataset_info",
    "stratified_split",
    "carve_validation",
]
