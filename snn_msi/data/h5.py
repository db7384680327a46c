"""HDF5 cache: spectrograms (float16) and frames (uint8) precomputed once, served by :class:`H5Dataset`.

Layout of the file: one group per split (``train``, ``val``, ``test``) with datasets ``audio [N, 1, F, T]``
float16, ``frames [N, K, 3, H, W]`` uint8 (all K stored frames of each clip, at the stored size, so training
can still pick frames at random and augment), ``label [N]`` int64 and ``clip_id [N]`` strings, and with
``waveforms=True`` also ``wave [N, samples]`` float16 (then the spectrogram is made at load time, after noise
at the requested audio SNR); the file's attributes ``classes`` and ``audio_transform`` (the spectrogram's
settings, to remake it) describe it. Chunks hold one spectrogram or one frame each (h5py's fancy indexing is
slow, so frames are read one chunk at a time).
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

from ..encoders import FrameTransform, LogMelSpectrogram, LogSpectrogram, add_noise_snr, sample_frame_indices
from ..files import atomic_path
from .base import AudioVisualFiles, load_frames, load_wav, transform_frames
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


def build_h5(datasets: dict[str, AudioVisualFiles], out: str | Path, frame_size: int | None = None,
             progress: bool = True, waveforms: bool = False) -> Path:  # fmt: skip
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
                raise ValueError(f"clip {rec.clip_id}: frames {tuple(frames.shape)} differ from {tuple(fr.shape)}; "
                                 "pass frame_size to resize all clips")  # fmt: skip
            v[i] = frames.numpy()
        f.attrs["audio_transform"] = json.dumps(_transform_spec(ds.audio_transform))
    f.attrs["classes"] = classes or []


class H5Dataset(Dataset):
    """Serve one split of an HDF5 cache as :class:`AVSample`. Safe with DataLoader workers: each process opens
    its own file handle on first use.

    Args:
        train: random frame choice + augmentation (default: ``split == "train"``).
        frames_per_clip, image_size, frame_transform: as for the file-backed data sets.
        audio_snr_db, image_snr_db: noise at this SNR (dB); audio noise needs a cache built with waveforms.
        seed: the per-sample random streams.
    """

    def __init__(self, path: str | Path, split: str = "train", train: bool | None = None, frames_per_clip: int = 3,
                 image_size: int = 224, frame_transform=None, audio_snr_db: float | None = None,
                 image_snr_db: float | None = None, seed: int = 0) -> None:  # fmt: skip
        self.path = Path(path)
        if not self.path.is_file():
            raise FileNotFoundError(f"HDF5 cache {self.path} does not exist (make one with `snn-msi build-h5`)")
        try:
            with h5py.File(self.path, "r") as f:
                if split not in f:
                    raise ValueError(f"{self.path} has no split {split!r}; it has {sorted(f.keys())}")
                self.labels = torch.from_numpy(f[split]["label"][:])
                self.classes = [c.decode() if isinstance(c, bytes) else str(c) for c in f.attrs["classes"]]
                self.n_stored = f[split]["frames"].shape[1]
                has_wave = "wave" in f[split]
                spec = f.attrs.get("audio_transform")
        except (OSError, KeyError) as err:
            raise ValueError(f"HDF5 cache {self.path} is unreadable or not an snn-msi cache ({err}); rebuild it "
                             "with `snn-msi build-h5`") from None  # fmt: skip
        if audio_snr_db is not None and not has_wave:
            raise ValueError(f"audio SNR {audio_snr_db} dB: the cache {self.path} stores spectrograms only; rebuild "
                             "it with `snn-msi build-h5 --waveforms` or train from the clip folders")  # fmt: skip
        self.audio_transform = _transform_from_spec(json.loads(spec)) if has_wave and spec else None
        self.split, self.seed, self.epoch = split, seed, 0
        self.audio_snr_db, self.image_snr_db = audio_snr_db, image_snr_db
        self.train = split == "train" if train is None else train
        self.frames_per_clip = min(frames_per_clip, self.n_stored)
        self.frame_transform = frame_transform or FrameTransform(image_size, train=self.train)
        self._file, self._pid = None, None

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def _group(self):
        if self._file is None or self._pid != os.getpid():
            self._file, self._pid = h5py.File(self.path, "r"), os.getpid()
        return self._file[self.split]

    def __len__(self) -> int:
        return len(self.labels)

    def set_epoch(self, epoch: int) -> None:
        self.epoch = epoch

    def __getitem__(self, i: int) -> AVSample:
        h5, rng = self._group(), sample_generator(self.seed, self.epoch if self.train else -1, self.split, i)
        idx = sample_frame_indices(self.n_stored, self.frames_per_clip, self.train, generator=rng)
        frames = torch.from_numpy(np.stack([h5["frames"][i, j] for j in idx]))  # one chunk per frame read
        if self.audio_snr_db is not None:
            wave = torch.from_numpy(h5["wave"][i].astype(np.float32))
            audio = self.audio_transform(add_noise_snr(wave[None], self.audio_snr_db, rng)[0])
        else:
            audio = torch.from_numpy(h5["audio"][i].astype(np.float32))
        clip = h5["clip_id"][i]
        clip = clip.decode() if isinstance(clip, bytes) else str(clip)
        frames = transform_frames(self.frame_transform, frames, self.image_snr_db, rng)
        return AVSample(audio, frames, int(self.labels[i]), clip)

    def __getstate__(self):
        state = dict(self.__dict__)
        state["_file"], state["_pid"] = None, None  # handles never cross process boundaries
        return state
