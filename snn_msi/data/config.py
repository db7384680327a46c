"""Which data set a run reads and how: :class:`DataConfig` (saved inside every run's config)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

from ..schema import Config, ConfigError, check

#: the three splits every data set serves, in this order (``build_datasets`` returns them so)
SPLITS = ("train", "val", "test")

#: signal-to-noise presets in dB, ``(audio, image)``; None = no noise
SNR_PRESETS = {"clean": (None, None), "hard": (-10.0, 0.0), "harder": (-15.0, -5.0)}


@dataclass
class DataConfig(Config):
    """Which data set and how it is read.

    Attributes:
        dataset: a name of ``snn_msi.data.DATASETS`` (``snn-msi datasets`` lists them).
        root: its folder (or the ``.h5`` file for ``h5``); digits-av needs none.
        layout: folder layout for data sets that come in several (``auto`` detects it).
        preset: SNR preset for both modalities (``clean``, ``hard`` = audio -10 dB / image 0 dB, ``harder`` =
            -15 / -5 dB); ``audio_snr_db`` / ``image_snr_db`` override it. Noise works on every data set.
        val_fraction: share of the training clips held out (seeded, stratified) for model selection.
        test_fraction: share held out for testing where a data set has no test split of its own (folders).
        frames_per_clip: frames per sample (None: the data set's default, Kinetics-Sounds 3, CREMA-D 1).
        num_workers: DataLoader processes (None: 0 for in-memory data, else the machine's cores, at most 8).
        limit: use only the first N samples of each split (quick checks).
        on_bad_clip: ``skip`` (reported) or ``raise``.
    """

    dataset: str = "digits-av"
    root: str | None = None
    layout: str = "auto"
    preset: str = "clean"
    audio_snr_db: float | None = None
    image_snr_db: float | None = None
    val_fraction: float = field(default=0.1, metadata=check(gt=0, lt=1))
    test_fraction: float = field(default=0.2, metadata=check(gt=0, lt=1))
    frames_per_clip: int | None = field(default=None, metadata=check(ge=1))
    image_size: int = field(default=224, metadata=check(ge=8))
    num_workers: int | None = field(default=None, metadata=check(ge=0))
    limit: int | None = field(default=None, metadata=check(ge=1))
    on_bad_clip: Literal["skip", "raise"] = "skip"

    def validate(self, where: str = "") -> None:
        pre = f"{where}." if where else ""
        from . import DATASETS

        if self.dataset not in DATASETS:
            raise ConfigError(f"{pre}dataset: {DATASETS.unknown(self.dataset)}")
        if self.preset not in SNR_PRESETS:
            raise ConfigError(f"{pre}preset must be one of {', '.join(SNR_PRESETS)}, got {self.preset!r}")
        layouts = DATASETS.get(self.dataset).layouts
        if self.layout not in layouts:
            raise ConfigError(f"{pre}layout of {self.dataset} must be one of {', '.join(layouts)}, got {self.layout!r}")

    def with_root(self, root: str | Path) -> DataConfig:
        """This config reading ``root`` (a user's ``--data-root``, :func:`check_given_root`)."""
        check_given_root(self.dataset, root)
        return self.replace(root=str(root))

    def snr(self) -> tuple[float | None, float | None]:
        """``(audio dB, image dB)`` in force: the preset's, overridden by the explicit values."""
        a, v = SNR_PRESETS[self.preset]
        return (
            a if self.audio_snr_db is None else self.audio_snr_db,
            v if self.image_snr_db is None else self.image_snr_db,
        )


def check_given_root(dataset: str, root: str | Path, option: str = "--data-root") -> None:
    """A root the user gives: refused, in one line naming ``option``, for a data set that reads no folder
    (digits-av is embedded: the root would be ignored and the user believe their folder was read). A root already
    in a saved config is not checked (older versions saved one)."""
    from . import DATASETS

    if dataset in DATASETS and not DATASETS.get(dataset).needs_root:
        raise ConfigError(
            f"{option} {root}: {dataset} is embedded and reads no folder ({option} is for a data set on disk: "
            "--dataset folder, kinetics-sounds, ...)"
        )
