"""HDF5 cache: spectrograms (float16) and frames (uint8) precomputed once, served by :class:`H5Dataset`.

Layout of the file: one group per split (``train``, ``val``, ``test``) with datasets ``audio [N, 1, F, T]``
float16, ``frames [N, K, 3, H, W]`` uint8 (all K stored frames of each clip, at the stored size, so training
can still pick frames at random and augment), ``label [N]`` int64 and ``clip_id [N]`` strings, and with
``waveforms=True`` also ``wave [N, samples]`` float16 (then the spectrogram is made at load time, after noise
at the requested audio SNR); the file's attributes ``classes`` and ``audio_transform`` (the spectrogram's
settings, to remake it) describe it. Chunks hold one spectrogram or one frame each, uncompressed: training reads K
random frames of a clip, each one chunk (h5py's fancy indexing is slow), and of the layouts ``bench_data.py``
measures for that pattern (per frame, per clip, lzf, gzip) none reads faster, gzip several times slower.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import h5py
import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset
from tqdm.auto import tqdm

from ..encoders import CropPlan, FrameTransform, LogMelSpectrogram, LogSpectrogram, add_noise_snr, sample_frame_indices
from ..files import atomic_path
from .base import AudioVisualFiles, load_frames, load_wav
from .loader import PackedSample, pack_sample, unpack
from .rng import sample_generator
from .sample import AVSample


def _transform_spec(t) -> dict:
    keys = ("sample_rate", "duration", "n_fft", "hop_length", "eps", "fit")
    spec = {"type": type(t).__name__, **{k: getattr(t, k) for k in keys}}
    if isinstance(t, LogMelSpectrogram):
        spec.update(n_mels=t.n_mels, power=t.power)
    return spec


def _transform_from_spec(spec: dict):
    spec = dict(spec)
    cls = {"LogSpectrogram": LogSpectrogram, "LogMelSpectrogram": LogMelSpectrogram}[spec.pop("type")]
    return cls(**spec)


def _stored_frames(rec, frame_size: int | None) -> torch.Tensor:
    frames = load_frames(rec.frames)  # [K, 3, H, W] uint8
    if frame_size is not None and tuple(frames.shape[-2:]) != (frame_size, frame_size):
        frames = F.interpolate(frames.float(), size=(frame_size, frame_size), mode="bilinear", antialias=True)
        frames = frames.round().clamp(0, 255).to(torch.uint8)
    return frames


def build_h5(
    datasets: dict[str, AudioVisualFiles],
    out: str | Path,
    frame_size: int | None = None,
    progress: bool = True,
    waveforms: bool = False,
) -> Path:
    """Write the splits of file-backed data sets to ``out`` (atomically: a temporary file, then a rename; a full
    or read-only disk is a one-line :class:`~snn_msi.files.WriteError` and leaves no file).

    Args:
        datasets: ``{"train": ds, "val": ds, "test": ds}`` (their index checks have already run).
        frame_size: store frames resized to this square side (None: as they are; clips must then agree).
        waveforms: also store the waveforms, so that training can add noise at an audio SNR.
    """
    out = Path(out)
    with atomic_path(out) as tmp:
        # no chunk cache: every chunk goes to the disk as it is written, so a full disk fails that write (HDF5's
        # cache would fail later, in destructors that ignore errors, and go on into a crash)
        f = h5py.File(tmp, "w", rdcc_nbytes=0)
        try:
            _write_h5(datasets, f, frame_size, progress, waveforms)
        except BaseException:
            try:  # the first error is the one to report; closing a file on a full disk fails again
                f.close()
            except (OSError, RuntimeError):
                pass
            raise
        f.close()
    return out


def _write_h5(datasets, f: h5py.File, frame_size, progress: bool, waveforms: bool) -> None:
    classes = None
    for split, ds in datasets.items():
        classes = classes or ds.classes
        if ds.classes != classes:
            raise ValueError(f"build_h5: split {split!r} has other classes than the first split")
        n = len(ds)
        first = ds.records[0]
        spec = ds.audio_transform(load_wav(first.wav, ds.sample_rate, ds.audio_seconds))
        fr = _stored_frames(first, frame_size)
        g = f.create_group(split)
        a = g.create_dataset("audio", (n, *spec.shape), dtype="float16", chunks=(1, *spec.shape))
        v = g.create_dataset("frames", (n, *fr.shape), dtype="uint8", chunks=(1, 1, *fr.shape[1:]))
        g.create_dataset("label", data=np.asarray([r.label for r in ds.records], dtype=np.int64))
        g.create_dataset("clip_id", data=[r.clip_id for r in ds.records], dtype=h5py.string_dtype())
        n_wave = ds.audio_transform.num_samples
        if waveforms and n_wave is None:
            raise ValueError("build_h5: waveforms=True needs an audio transform of fixed duration")
        w = g.create_dataset("wave", (n, n_wave), dtype="float16", chunks=(1, n_wave)) if waveforms else None
        for i, rec in enumerate(tqdm(ds.records, desc=f"build-h5 {split}", disable=not progress)):
            wav = load_wav(rec.wav, ds.sample_rate, ds.audio_seconds)
            a[i] = ds.audio_transform(wav).numpy()
            if w is not None:
                from ..encoders import fit_length

                w[i] = fit_length(wav, n_wave, ds.audio_transform.fit).numpy()
            frames = _stored_frames(rec, frame_size)
            if frames.shape != fr.shape:
                raise ValueError(
                    f"clip {rec.clip_id}: frames {tuple(frames.shape)} differ from {tuple(fr.shape)}; "
                    "pass frame_size to resize all clips"
                )
            v[i] = frames.numpy()
        f.attrs["audio_transform"] = json.dumps(_transform_spec(ds.audio_transform))
    f.attrs["classes"] = classes or []


def available_memory() -> int:
    """Bytes of memory available to new allocations now (Linux ``MemAvailable``; elsewhere free pages; 0 if
    unknown)."""
    try:
        with open("/proc/meminfo") as f:
            for line in f:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    try:
        return os.sysconf("SC_AVPHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (ValueError, OSError, AttributeError):
        return 0


class H5Dataset(Dataset):
    """Serve one split of an HDF5 cache as :class:`AVSample` (``ds[i]``) or, to DataLoader workers, as compact
    samples (``pack(i)``: the uint8 crop and the stored float16 spectrogram; :mod:`snn_msi.data.loader`).

    Each process opens its own read-only handle on first use (a handle never crosses a fork or a pickle), and
    reads only the crop of the chosen frames (one chunk per frame).

    Args:
        train: random frame choice + augmentation (default: ``split == "train"``).
        frames_per_clip, image_size, frame_transform: as for the file-backed data sets.
        audio_snr_db, image_snr_db: noise at this SNR (dB); audio noise needs a cache built with waveforms.
        seed: the per-sample random streams.
        in_memory: read the split into memory once (``True``), read from the file on demand (``False``), or
            ``"auto"``: in memory when the split (times the ranks on this machine under ``torchrun``) takes less
            than a quarter of the memory available now. In memory, DataLoader workers (forked) share the arrays
            with the main process, and a read is a copy of the crop.
    """

    def __init__(
        self,
        path: str | Path,
        split: str = "train",
        train: bool | None = None,
        frames_per_clip: int = 3,
        image_size: int = 224,
        frame_transform=None,
        audio_snr_db: float | None = None,
        image_snr_db: float | None = None,
        seed: int = 0,
        in_memory: bool | str = "auto",
    ) -> None:
        self.path = Path(path)
        if not self.path.is_file():
            what = "is a folder, not an .h5 file" if self.path.is_dir() else "does not exist"
            raise FileNotFoundError(f"HDF5 cache {self.path} {what} (make one with `snn-msi build-h5`)")
        if in_memory not in (True, False, "auto"):
            raise ValueError(f"in_memory must be True, False or 'auto', got {in_memory!r}")
        try:
            with h5py.File(self.path, "r") as f:
                if split not in f:
                    raise ValueError(f"{self.path} has no split {split!r}; it has {sorted(f.keys())}")
                g = f[split]
                self.labels = torch.from_numpy(g["label"][:])
                self.clip_ids = [c.decode() if isinstance(c, bytes) else str(c) for c in g["clip_id"][:]]
                self.classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["classes"]]
                self.n_stored = g["frames"].shape[1]
                has_wave = "wave" in g
                spec = f.attrs.get("audio_transform")
                self.audio_key = "wave" if audio_snr_db is not None else "audio"
                nbytes = g["frames"].nbytes + (g[self.audio_key].nbytes if self.audio_key in g else 0)
        except (OSError, KeyError) as err:
            raise ValueError(
                f"HDF5 cache {self.path} is unreadable or not an snn-msi cache ({err}); rebuild it "
                "with `snn-msi build-h5`"
            ) from None
        if audio_snr_db is not None and not has_wave:
            raise ValueError(
                f"audio SNR {audio_snr_db} dB: the cache {self.path} stores spectrograms only; rebuild "
                "it with `snn-msi build-h5 --waveforms` or train from the clip folders"
            )
        self.audio_transform = _transform_from_spec(json.loads(spec)) if has_wave and spec else None
        self.split, self.seed, self.epoch = split, seed, 0
        self.audio_snr_db, self.image_snr_db = audio_snr_db, image_snr_db
        self.train = split == "train" if train is None else train
        self.frames_per_clip = min(frames_per_clip, self.n_stored)
        self.frame_transform = frame_transform or FrameTransform(image_size, train=self.train)
        self._arrays: dict | None = None  # the split in memory
        self._handle: tuple | None = None  # (pid, file, {name: dataset}) of this process
        ranks = int(os.environ.get("LOCAL_WORLD_SIZE", 1))  # torchrun: every rank of the machine holds a copy
        if in_memory is True or (in_memory == "auto" and nbytes * ranks < available_memory() / 4):
            with h5py.File(self.path, "r") as f:
                self._arrays = {k: f[split][k][:] for k in ("frames", self.audio_key)}

    @property
    def in_memory(self) -> bool:
        return self._arrays is not None

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def _data(self) -> dict:
        """``{"frames": ..., "audio" or "wave": ...}`` of the split: the arrays in memory, or this process's own
        handle's datasets (opened on first use in each process: after a DataLoader worker's fork)."""
        if self._arrays is not None:
            return self._arrays
        if self._handle is None or self._handle[0] != os.getpid():
            f = h5py.File(self.path, "r")
            self._handle = (os.getpid(), f, {k: f[self.split][k] for k in ("frames", self.audio_key)})
        return self._handle[2]

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def pack(self, i: int) -> PackedSample | AVSample:
        """Sample ``i`` as a DataLoader worker hands it over: the stored spectrogram (float16; with an audio SNR
        the noisy waveform's float32 spectrogram), the uint8 crop of the chosen frames and the sample's draws."""
        data, rng = self._data(), sample_generator(self.seed, self.epoch if self.train else -1, self.split, i)
        idx = sample_frame_indices(self.n_stored, self.frames_per_clip, self.train, generator=rng)
        if self.audio_snr_db is not None:
            wave = torch.from_numpy(np.asarray(data["wave"][i], dtype=np.float32))
            audio = self.audio_transform(add_noise_snr(wave[None], self.audio_snr_db, rng)[0])
        else:
            audio = torch.from_numpy(np.asarray(data["audio"][i]))
        frames = _FrameReader(data["frames"], i, idx)
        return pack_sample(
            audio, frames, int(self.labels[i]), self.clip_ids[i], self.frame_transform, self.image_snr_db, rng
        )

    def __getitem__(self, i: int) -> AVSample:
        return unpack(self.pack(i))

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_handle"] = None  # handles never cross process boundaries
        return state


class _FrameReader:
    """Frames ``idx`` of clip ``i`` of a ``[N, K, C, H, W]`` array or HDF5 data set, read when the crop is known
    (only the crop's pixels, one frame at a time: h5py's fancy indexing is slow)."""

    def __init__(self, frames, i: int, idx: list[int]) -> None:
        self.frames, self.i, self.idx = frames, i, idx
        self.shape = (len(idx), *frames.shape[2:])

    def crop(self, plan: CropPlan) -> torch.Tensor:
        rows, cols = slice(plan.top, plan.top + plan.height), slice(plan.left, plan.left + plan.width)
        if isinstance(self.frames, np.ndarray):
            return torch.from_numpy(np.ascontiguousarray(self.frames[self.i, self.idx, :, rows, cols]))
        out = np.empty((len(self.idx), self.shape[1], plan.height, plan.width), dtype=np.uint8)
        for k, j in enumerate(self.idx):
            self.frames.read_direct(out, np.s_[self.i, j, :, rows, cols], np.s_[k])
        return torch.from_numpy(out)
