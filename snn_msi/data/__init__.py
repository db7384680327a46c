"""Audio-visual data sets, all returning :class:`AVSample`."""

from .base import AudioVisualFiles, carve_validation, stratified_split
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
    "stratified_split",
    "carve_validation",
]


def build_datasets(cfg, seed: int = 0):
    """``(train, val, test)`` data sets for a :class:`~snn_msi.training.config.DataConfig`."""
    from torch.utils.data import Subset

    name = cfg.dataset
    if name == "digits-av":
        kw = dict(preset=cfg.preset, audio_snr_db=cfg.audio_snr_db, image_snr_db=cfg.image_snr_db, seed=seed)
        sets = [DigitsAV(s, **kw) for s in ("train", "val", "test")]
    elif name in ("kinetics-sounds", "cremad", "urbansound8k-av"):
        if not cfg.root:
            raise ValueError(f"data.root is required for dataset {name!r}")
        cls = {"kinetics-sounds": KineticsSounds, "cremad": CremaD, "urbansound8k-av": UrbanSound8KAV}[name]
        kw = dict(val_fraction=cfg.val_fraction, seed=seed, image_size=cfg.image_size)
        if name == "kinetics-sounds":
            kw["frames_per_clip"] = cfg.frames_per_clip
        sets = [cls(cfg.root, split=s, **kw) for s in ("train", "val", "test")]
    elif name == "h5":
        from .h5 import H5Dataset

        if not cfg.root:
            raise ValueError("data.root must be the .h5 file for dataset 'h5'")
        sets = [H5Dataset(cfg.root, s) for s in ("train", "val", "test")]
    else:
        raise ValueError(f"unknown dataset {name!r}; valid: digits-av, kinetics-sounds, cremad, urbansound8k-av, h5")
    if cfg.limit:
        sets[0] = Subset(sets[0], range(min(cfg.limit, len(sets[0]))))
    return tuple(sets)
