"""The data-set registry: each name builds ``(train, val, test)`` from a :class:`DataConfig`.

An entry's factory takes ``(cfg, split, seed, report_dir)``; its ``layouts`` (``meta``) are the folder layouts
it reads (``auto`` first: detect). Every entry applies the config's SNR (per modality, in dB) or refuses it with
a reason; none ignores it.
"""

from __future__ import annotations

from pathlib import Path

from neurons.registry import Registry

from .config import SPLITS, DataConfig

DATASETS = Registry("data set")


def _root(cfg: DataConfig) -> str:
    if not cfg.root:
        raise ValueError(f"data set {cfg.dataset!r} needs a folder: set --data-root (data.root)")
    if not Path(cfg.root).exists():
        raise FileNotFoundError(
            f"data.root {cfg.root} does not exist (if the data moved, give its new folder: --data-root DIR)"
        )
    return cfg.root


def _files_kw(cfg: DataConfig, seed: int, report_dir) -> dict:
    audio_snr, image_snr = cfg.snr()
    kw = dict(
        val_fraction=cfg.val_fraction,
        seed=seed,
        image_size=cfg.image_size,
        audio_snr_db=audio_snr,
        image_snr_db=image_snr,
        on_error=cfg.on_bad_clip,
        report_dir=report_dir,
    )
    if cfg.frames_per_clip is not None:
        kw["frames_per_clip"] = cfg.frames_per_clip
    return kw


@DATASETS.register(
    "digits-av",
    layouts=("auto",),
    needs_root=False,
    description="embedded: sklearn handwritten digits + espeak-ng spoken digits (50 voices); nothing to download",
)
def _digits_av(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .digits_av import DigitsAV

    audio_snr, image_snr = cfg.snr()
    return DigitsAV(split, preset="clean", audio_snr_db=audio_snr, image_snr_db=image_snr, seed=seed)


@DATASETS.register(
    "kinetics-sounds",
    layouts=("auto",),
    needs_root=True,
    description="31 classes, ~14.7k/2.6k clips; the IEMF code's layout (my_train.txt, "
    "train/video/<label>/<clip>/frame_i.jpg, train/audio/<label>/<clip>.wav, the same for test); "
    "`snn-msi prepare VIDEO_DIR OUT_ROOT` makes it from videos",
)
def _kinetics(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .kinetics import KineticsSounds

    return KineticsSounds(_root(cfg), split=split, **_files_kw(cfg, seed, report_dir))


@DATASETS.register(
    "cremad",
    layouts=("auto", "ogm-ge", "bim-ml"),
    needs_root=True,
    description="6 emotions, 7,442 clips; the OGM-GE layout (AudioWAV/, Image-01-FPS/<clip>/, "
    "train.csv, test.csv) or the IEMF code's tree ({train,test}/{audio,visual}/<label>/)",
)
def _cremad(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .cremad import CremaD

    return CremaD(_root(cfg), split=split, layout=cfg.layout, **_files_kw(cfg, seed, report_dir))


@DATASETS.register(
    "urbansound8k-av",
    layouts=("auto", "urbansound8k", "bim-ml"),
    needs_root=True,
    description="10 classes, 8,732 clips; UrbanSound8K's layout (audio/fold*/, metadata/"
    "UrbanSound8K.csv, images/<class>/*.jpg) or the IEMF code's (Dataset_v3_sound/, "
    "Dataset_v3_vision/)",
)
def _urbansound(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .urbansound import UrbanSound8KAV

    return UrbanSound8KAV(_root(cfg), split=split, layout=cfg.layout, **_files_kw(cfg, seed, report_dir))


@DATASETS.register(
    "folder",
    layouts=("auto",),
    needs_root=True,
    description="your own data: root/<label>/<clip>.wav + root/<label>/<clip>/*.jpg|png (or <clip>.jpg), "
    "optionally under train/ and test/; seeded stratified splits otherwise",
)
def _folder(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .folder import AudioVisualFolder

    return AudioVisualFolder(
        _root(cfg), split=split, test_fraction=cfg.test_fraction, **_files_kw(cfg, seed, report_dir)
    )


@DATASETS.register(
    "h5",
    layouts=("auto",),
    needs_root=True,
    description="a cache of a file-based data set made by `snn-msi build-h5` (--data-root is the "
    ".h5 file); audio SNR needs a cache built with --waveforms",
)
def _h5(cfg: DataConfig, split: str, seed: int, report_dir=None):
    from .h5 import H5Dataset

    audio_snr, image_snr = cfg.snr()
    kw = {} if cfg.frames_per_clip is None else {"frames_per_clip": cfg.frames_per_clip}
    return H5Dataset(
        _root(cfg), split, image_size=cfg.image_size, audio_snr_db=audio_snr, image_snr_db=image_snr, seed=seed, **kw
    )


def dataset_info(name: str):
    """The registry entry of a data set (``.description``, ``.layouts``, ``.needs_root``)."""
    return DATASETS.get(name)


def build_datasets(cfg: DataConfig, seed: int = 0, report_dir: str | Path | None = None):
    """``(train, val, test)`` data sets for a :class:`DataConfig` (``report_dir``: bad-clip reports)."""
    from torch.utils.data import Subset

    factory = DATASETS.get(cfg.dataset).factory
    sets = [factory(cfg, split, seed, report_dir) for split in SPLITS]
    if cfg.limit:
        sets = [Subset(s, range(min(cfg.limit, len(s)))) for s in sets]
    return tuple(sets)
