"""File-backed audio-visual data sets: an index of clips, checked when the index is built, then loaded lazily.

Subclasses only build the list of :class:`ClipRecord` (and the class names) for their layout; this base class
checks every clip (missing or unreadable wav / jpg, too few frames, empty, silent or non-finite audio, a clip
listed twice, a file name that is not UTF-8), reports what it found (count, ids, one JSON file per split) and
skips those clips or raises, as asked. The check decodes every image and the audio the loader reads, so
``__getitem__`` never meets a bad file it was not told about; a file that goes bad after the check (changed on
disk during a run) is a :class:`ClipReadError` naming the clip and the file.

Every sample's random draws (frame choice, crop, flip, noise at the requested SNR) come from a generator seeded
by (seed, epoch, split, index), so results do not depend on the DataLoader's worker count.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
from PIL import Image
from torch.utils.data import Dataset

from ..encoders import CropPlan, FrameTransform, LogSpectrogram, add_noise_snr, fit_length, sample_frame_indices
from .loader import PCM, PackedSample, pack_sample, unpack
from .rng import sample_generator
from .sample import AVSample, BadClips, ClipRecord

log = logging.getLogger(__name__)


class ClipReadError(OSError):
    """A clip's file could not be read or decoded; the message names the clip and the file."""

    def __init__(self, message: str) -> None:
        super().__init__(message)


def _utf8(path: Path) -> bool:
    """The path's name is UTF-8 (``os.fsdecode`` turns other bytes into lone surrogates that no library takes)."""
    try:
        str(path).encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def load_wav(path: Path, sample_rate: int, seconds: float | None = None) -> torch.Tensor:
    """Mono float32 samples at ``sample_rate`` (resampled if the file differs), the first ``seconds`` if given."""
    try:
        info = sf.info(str(path))
        frames = -1 if seconds is None else int(math.ceil(seconds * info.samplerate))
        data, sr = sf.read(str(path), frames=frames, dtype="float32", always_2d=True)
    except Exception as err:  # any decoder failure: name the file
        raise ClipReadError(f"cannot read {path}: {_first_line(err)}") from None
    wav = data.mean(axis=1)
    if sr != sample_rate:
        from scipy.signal import resample_poly

        g = math.gcd(sr, sample_rate)
        wav = resample_poly(wav, sample_rate // g, sr // g).astype(np.float32)
    return torch.from_numpy(np.ascontiguousarray(wav))


def read_pcm16(path: Path, sample_rate: int, seconds: float | None = None) -> torch.Tensor | None:
    """The samples :func:`load_wav` reads, as int16 (``load_wav`` = these / 32768, exactly), where the file is
    mono 16-bit PCM at ``sample_rate``; None for any other file."""
    try:
        with sf.SoundFile(str(path)) as f:
            if f.subtype != "PCM_16" or f.channels != 1 or f.samplerate != sample_rate:
                return None
            return torch.from_numpy(f.read(-1 if seconds is None else int(math.ceil(seconds * sample_rate)), "int16"))
    except Exception as err:  # any decoder failure: name the file
        raise ClipReadError(f"cannot read {path}: {_first_line(err)}") from None


def _decode(path: Path, size: tuple[int, int] | None = None) -> Image.Image:
    """An image file decoded to RGB (resized to ``size``, PIL's ``(W, H)``, where it differs)."""
    try:
        with Image.open(path) as im:
            if im.mode != "RGB":
                im = im.convert("RGB")
            else:
                im.load()
    except Exception as err:  # any decoder failure: name the file
        raise ClipReadError(f"cannot read {path}: {_first_line(err)}") from None
    return im if size is None or im.size == size else im.resize(size)


def load_frames(paths: Sequence[Path]) -> torch.Tensor:
    """RGB uint8 ``[K, 3, H, W]`` (all frames resized to the first one's size if they differ)."""
    first = _decode(paths[0])
    imgs = [np.asarray(first), *(np.asarray(_decode(p, first.size)) for p in paths[1:])]
    return torch.from_numpy(np.stack(imgs)).permute(0, 3, 1, 2).contiguous()


class FrameFiles:
    """A clip's K frames as image files, read as a DataLoader worker needs them: ``shape`` ``[K, 3, H, W]`` from
    the first file's header, and ``crop(plan)``: the uint8 crop ``[K, 3, h, w]``, each frame decoded (resized to
    the first one's size where it differs) and only the crop converted to an array (what ``load_frames`` then
    cropping gives, without the whole frames' copies)."""

    def __init__(self, paths: Sequence[Path]) -> None:
        self.paths = list(paths)
        try:
            with Image.open(self.paths[0]) as im:
                self.size = im.size
        except Exception as err:
            raise ClipReadError(f"cannot read {self.paths[0]}: {_first_line(err)}") from None
        self.shape = (len(self.paths), 3, self.size[1], self.size[0])

    def crop(self, plan: CropPlan) -> torch.Tensor:
        out = np.empty((len(self.paths), 3, plan.height, plan.width), dtype=np.uint8)
        box = (plan.left, plan.top, plan.left + plan.width, plan.top + plan.height)
        for k, path in enumerate(self.paths):
            out[k] = np.asarray(_decode(path, self.size).crop(box)).transpose(2, 0, 1)
        return torch.from_numpy(out)


def _first_line(err: BaseException) -> str:
    text = str(err).strip()
    return f"{type(err).__name__}: {text.splitlines()[0]}" if text else type(err).__name__


def check_clip(rec: ClipRecord, min_frames: int, audio_seconds: float | None) -> str | None:
    """The first problem of a clip, or None. Reads wav headers and the used audio; decodes each image (as the
    loader will: a truncated JPEG passes ``Image.verify`` but not this)."""
    if not all(_utf8(p) for p in (rec.wav, *rec.frames)):
        return "file name not UTF-8 (rename it, or convert the videos with `snn-msi prepare`)"
    if not rec.wav.is_file():
        return "missing wav"
    try:
        info = sf.info(str(rec.wav))
        if info.frames == 0:
            return "empty wav"
        n = -1 if audio_seconds is None else int(math.ceil(audio_seconds * info.samplerate))
        data, _ = sf.read(str(rec.wav), frames=n, dtype="float32")
    except Exception:  # any decoder failure means the file is unusable: reported, not raised
        return "unreadable wav"
    if data.size == 0:
        return "empty wav"
    if not np.isfinite(data).all():
        return "non-finite samples in wav"
    if float(np.abs(data).max()) < 1e-6:
        return "silent wav"
    if len(rec.frames) < min_frames:
        return "too few frames"
    for p in rec.frames:
        try:
            with Image.open(p) as im:
                im.convert("RGB")
        except Exception:  # unreadable or truncated image: reported, not raised
            return "unreadable jpg"
    return None


class AudioVisualFiles(Dataset):
    """Base class. Subclasses call :meth:`_finish_index` with their records and class names.

    Args:
        train: random frame choice and augmentation (else evenly spaced frames, plain resize).
        frames_per_clip: K frames per sample (KS: 3, CREMA-D: 1).
        image_size: frame side after transforms.
        audio_transform: wav -> spectrogram module (default: the paper's :class:`LogSpectrogram`).
        frame_transform: default :class:`FrameTransform` (random resized crop + flip in training).
        on_error: ``"skip"`` bad clips (reported) or ``"raise"`` ValueError listing them.
        report_dir: where ``bad_clips_<name>_<split>.json`` goes (None: not written).
        audio_snr_db, image_snr_db: add Gaussian noise at this SNR (dB) to the waveform / the pixels (None: none).
        seed: the per-sample random streams (and the validation split).
    """

    name = "av"

    def __init__(
        self,
        train: bool = False,
        frames_per_clip: int = 3,
        image_size: int = 224,
        sample_rate: int = 22050,
        audio_seconds: float | None = 3.0,
        audio_transform: Callable | None = None,
        frame_transform: Callable | None = None,
        on_error: str = "skip",
        report_dir: str | Path | None = None,
        check_workers: int = 8,
        audio_snr_db: float | None = None,
        image_snr_db: float | None = None,
        seed: int = 0,
    ) -> None:
        if on_error not in ("skip", "raise"):
            raise ValueError(f"on_error must be 'skip' or 'raise', got {on_error!r}")
        self.train, self.frames_per_clip, self.sample_rate = train, frames_per_clip, sample_rate
        self.audio_seconds, self.on_error, self.report_dir = audio_seconds, on_error, report_dir
        self.check_workers = check_workers
        self.audio_snr_db, self.image_snr_db, self.seed, self.epoch = audio_snr_db, image_snr_db, seed, 0
        self.split = "train" if train else "test"
        self.audio_transform = audio_transform or LogSpectrogram(sample_rate=sample_rate, duration=audio_seconds)
        self.frame_transform = frame_transform or FrameTransform(image_size, train=train)
        self.records: list[ClipRecord] = []
        self.classes: list[str] = []
        self.bad = BadClips()

    def _finish_index(
        self,
        records: list[ClipRecord],
        classes: list[str],
        bad: BadClips | None = None,
        split: str | None = None,
        val_fraction: float = 0.0,
        seed: int = 0,
    ) -> None:
        """Check every record, keep the good ones, report the rest; then, for ``split`` "train" / "val", keep
        that part of a seeded stratified split of the good clips (:func:`carve_validation`).

        A clip listed twice is kept once (its first entry) and reported, so it can never land in two splits.
        """
        self.classes = list(classes)
        self.bad = bad or BadClips()
        if split is not None:
            self.split = split
        seen: set[str] = set()
        unique = []
        for rec in records:
            if rec.clip_id in seen:
                self.bad.add("listed twice (first entry kept)", rec.clip_id)
                continue
            seen.add(rec.clip_id)
            unique.append(rec)
        records = unique
        with ThreadPoolExecutor(self.check_workers) as pool:
            problems = list(pool.map(lambda r: check_clip(r, self.frames_per_clip, self.audio_seconds), records))
        for rec, problem in zip(records, problems, strict=True):
            if problem:
                self.bad.add(problem, rec.clip_id)
            elif not 0 <= rec.label < len(self.classes):
                self.bad.add("label not in class list", rec.clip_id)
        bad_ids = {c for p, ids in self.bad.problems.items() if not p.startswith("listed twice") for c in ids}
        self.records = [r for r in records if r.clip_id not in bad_ids]
        usable = len(self.records)
        if split is not None:
            self.records = carve_validation(self.records, split, val_fraction, seed)
        if self.bad.count:
            msg = f"{type(self).__name__}: {self.bad.summary()}"
            if self.report_dir is not None:
                report = Path(self.report_dir) / f"bad_clips_{self.name}_{self.split}.json"
                msg += f"; list written to {self.bad.write(report)}"
            if self.on_error == "raise":
                raise ValueError(msg)
            log.warning(msg + " (skipped)")
        where = f"{type(self).__name__} {getattr(self, 'root', '')}".rstrip()
        if not self.records and usable:
            raise ValueError(
                f"{where}: the {self.split} split is empty: it holds out {val_fraction:g} of each class's "
                f"training clips ({usable} in all), and only a class with 2 or more gives one; add clips "
                "(a few per class at least)"
            )
        if not self.records:
            raise ValueError(f"{where}: no usable clips in the {self.split} split ({self.bad.summary()})")

    @property
    def targets(self) -> list[int]:
        return [r.label for r in self.records]

    def __len__(self) -> int:
        return len(self.records)

    def set_epoch(self, epoch: int) -> None:
        """Training draws depend on (seed, epoch, index): the trainer calls this once per epoch."""
        self.epoch = epoch

    def generator(self, i: int) -> torch.Generator:
        return sample_generator(self.seed, self.epoch if self.train else -1, self.split, i)

    def pack(self, i: int) -> PackedSample | AVSample:
        """Sample ``i`` as a DataLoader worker hands it over (:mod:`snn_msi.data.loader`): the spectrogram, the
        uint8 crop of the chosen frames and the sample's draws (audio noise, frames, crop, flip, image noise)."""
        rec, g = self.records[i], self.generator(i)
        try:
            audio = self._pcm(rec.wav)
            if audio is None:
                wav = load_wav(rec.wav, self.sample_rate, self.audio_seconds)[None]
                audio = self.audio_transform(add_noise_snr(wav, self.audio_snr_db, g)[0])
            idx = sample_frame_indices(len(rec.frames), self.frames_per_clip, self.train, generator=g)
            frames = FrameFiles([rec.frames[j] for j in idx])
            return pack_sample(audio, frames, rec.label, rec.clip_id, self.frame_transform, self.image_snr_db, g)
        except ClipReadError as err:
            raise ClipReadError(f"clip {rec.clip_id} of the {self.split} split: {err}") from None

    def _pcm(self, path: Path) -> PCM | None:
        """The clip's int16 samples cut or tiled to the spectrogram's length, to be transformed on the device;
        None where that would not give the same numbers (noise to add, a transform of its own, other files)."""
        t = self.audio_transform
        if self.audio_snr_db is not None or not isinstance(t, LogSpectrogram) or t.num_samples is None:
            return None
        pcm = read_pcm16(path, self.sample_rate, self.audio_seconds)
        return None if pcm is None else PCM(fit_length(pcm, t.num_samples, t.fit), t)

    def __getitem__(self, i: int) -> AVSample:
        return unpack(self.pack(i))


def read_list(path: Path) -> list[tuple[int, list[str]]]:
    """``(line number, comma-separated fields)`` of a list file: a UTF-8 byte-order mark, CRLF line ends,
    blank lines and surrounding spaces are tolerated."""
    try:
        text = path.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as err:
        raise ValueError(f"{path}: not UTF-8 text ({err.reason} at byte {err.start})") from None
    return [(n, [f.strip() for f in line.split(",")]) for n, line in enumerate(text.splitlines(), 1) if line.strip()]


def drop_overlap(records: list[ClipRecord], other_ids: set[str], bad: BadClips, what: str) -> list[ClipRecord]:
    """Records whose clip is not in ``other_ids``; the others are reported as ``"also in the <what> list"``."""
    keep = []
    for r in records:
        if r.clip_id in other_ids:
            bad.add(f"also in the {what} list", r.clip_id)
        else:
            keep.append(r)
    return keep


def require_dir(path: Path, what: str) -> Path:
    if not path.is_dir():
        raise FileNotFoundError(f"{what}: {path} does not exist or is not a folder")
    return path


def stratified_split(labels: Sequence[int], fraction: float, seed: int) -> tuple[list[int], list[int]]:
    """Indices ``(rest, held_out)``: ``fraction`` of each class held out, chosen with ``seed``."""
    if not 0.0 < fraction < 1.0:
        raise ValueError(f"validation fraction must be in (0, 1), got {fraction}")
    g = torch.Generator().manual_seed(seed)
    by_class: dict[int, list[int]] = {}
    for i, y in enumerate(labels):
        by_class.setdefault(int(y), []).append(i)
    held = []
    for y in sorted(by_class):
        idx = by_class[y]
        k = max(1, int(round(fraction * len(idx)))) if len(idx) > 1 else 0
        perm = torch.randperm(len(idx), generator=g).tolist()
        held.extend(idx[j] for j in perm[:k])
    held_set = set(held)
    return [i for i in range(len(labels)) if i not in held_set], sorted(held)


def carve_validation(records: list[ClipRecord], split: str, val_fraction: float, seed: int) -> list[ClipRecord]:
    """For ``split="train"`` / ``"val"`` built from the training files: keep the train or the held-out part.

    ``val_fraction=0`` keeps everything for ``"train"`` (and ``"val"`` is then an error).
    """
    if split not in ("train", "val"):
        return records
    if val_fraction == 0.0:
        if split == "val":
            raise ValueError("split='val' needs val_fraction > 0")
        return records
    rest, held = stratified_split([r.label for r in records], val_fraction, seed)
    return [records[i] for i in (held if split == "val" else rest)]
