"""How samples travel from DataLoader workers to the training device.

A worker hands over a :class:`PackedSample`: the uint8 crop of the chosen frames (not 3 x 3 x 224 x 224 float32
pixels, 1.8 MB), the audio as int16 samples (16-bit PCM files; the spectrogram is made on the device) or as a
spectrogram (float16 as an HDF5 cache stores it; float32 where noise was added), and the sample's random draws
(crop box, flip, standard-normal image noise when an image SNR is set). :func:`collate` packs a batch of them into
one uint8 buffer: in a worker, one shared-memory segment, so one file descriptor crosses to the main process per
batch (each tensor of a batch costs a round trip to the worker); :func:`to_device` moves it to the training
device and finishes it there on the whole batch (spectrograms; frames to float, resize, flip, noise, normalise:
:func:`~snn_msi.encoders.finish_frames`). The draws are made where they always were (per sample, from the
generator of (seed, epoch, split, index)), so results do not depend on the worker count; and the finished batch
has the same numbers as samples finished one by one (``ds[i]``).

Data sets that can pack samples have a ``pack(i)`` method (``ds[i]`` is ``pack(i)`` finished on the CPU);
:class:`Packed` serves ``pack`` to a DataLoader, through ``Subset``s; others (in-memory ``digits-av``) are served
as they are. :func:`loader_options` are the DataLoader settings the trainer uses.

    loader = DataLoader(Packed(ds), batch_size=16, collate_fn=collate, **loader_options(4, device))
    for item in loader:
        batch = to_device(item, device)  # AVSample of float tensors on the device
"""

from __future__ import annotations

import copy
import functools
import math
from typing import NamedTuple

import torch
from torch.utils.data import Dataset, Subset, default_collate, get_worker_info

from ..encoders import CropPlan, FrameSpec, FrameTransform, LogSpectrogram, crop_frames, finish_frames
from .sample import AVSample


class PCM(NamedTuple):
    """A clip's int16 samples (already cut or tiled to ``transform``'s length) and the spectrogram to make of
    them, divided by 32768, on the device."""

    samples: torch.Tensor
    transform: LogSpectrogram


class PackedSample(NamedTuple):
    """One sample as a worker hands it over.

    audio: ``[1, F, T]`` spectrogram (float16 or float32; made float32 on the device) or :class:`PCM` samples;
    frames: uint8 ``[K, C, h, w]``, the crop of the K chosen frames; flip: mirror them; noise: standard normal
    ``[K, C, size, size]`` float32 for ``snr_db`` (None without image noise); spec: the transform's size and
    normalisation.
    """

    audio: torch.Tensor | PCM
    frames: torch.Tensor
    flip: bool
    noise: torch.Tensor | None
    label: int
    clip_id: str
    spec: FrameSpec
    snr_db: float | None


class Slot(NamedTuple):
    """Where a tensor lies in a :class:`PackedBatch`'s buffer: byte offset, dtype and shape."""

    offset: int
    dtype: torch.dtype
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * self.dtype.itemsize

    def of(self, data: torch.Tensor) -> torch.Tensor:
        """The tensor, a view of the uint8 buffer ``data`` (on any device)."""
        return data[self.offset : self.offset + self.nbytes].view(self.dtype).view(self.shape)


class PackedBatch(NamedTuple):
    """:func:`collate` of B :class:`PackedSample`: one uint8 buffer ``data`` holding, at their :class:`Slot`\\ s,
    ``audio`` (spectrograms ``[B, 1, F, T]`` or, with an ``audio_transform``, int16 samples ``[B, n]``), the B
    ``frames`` crops ``[K, C, h_b, w_b]`` (uint8) and the ``noise`` ``[B, K, C, size, size]`` (float32, or None);
    ``flip`` and ``labels`` per sample as Python values (no tensor of their own to pass between processes)."""

    data: torch.Tensor
    audio: Slot
    audio_transform: LogSpectrogram | None
    frames: tuple[Slot, ...]
    noise: Slot | None
    flip: tuple[bool, ...]
    labels: tuple[int, ...]
    clip_id: list[str]
    spec: FrameSpec
    snr_db: float | None

    @property
    def label(self) -> torch.Tensor:
        """``[B]`` int64 labels."""
        return torch.tensor(self.labels, dtype=torch.long)


def pack_sample(
    audio: torch.Tensor, frames, label: int, clip_id: str, transform, snr_db: float | None, g: torch.Generator
) -> PackedSample | AVSample:
    """A worker's half of a sample: draw the crop box and flip of ``frames`` and, with ``snr_db``, the image
    noise, all from ``g`` in the order :class:`FrameTransform` draws them; cut the crop.

    ``frames``: uint8 ``[K, C, H, W]``, or a reader with that ``shape`` whose ``crop(plan)`` reads only the crop.
    A ``transform`` that is not a :class:`FrameTransform` is applied whole here (the result is an ``AVSample``).
    """
    k, c, h, w = frames.shape
    crop = frames.crop if hasattr(frames, "crop") else lambda p: crop_frames(frames, p).contiguous()
    if not isinstance(transform, FrameTransform):
        kw = {} if snr_db is None else {"snr_db": snr_db}
        if isinstance(audio, PCM):
            audio = _spectrogram(audio.samples[None], audio.transform)[0]
        return AVSample(audio, transform(crop(CropPlan(0, 0, h, w, False)), generator=g, **kw), label, clip_id)
    plan = transform.plan(h, w, g)
    noise = None if snr_db is None else torch.randn((k, c, transform.size, transform.size), generator=g)
    return PackedSample(audio, crop(plan), plan.flip, noise, label, clip_id, transform.spec, snr_db)


#: byte alignment of the tensors in a batch's buffer (any dtype can be viewed at such an offset)
_ALIGN = 64


def _pack(parts: list[torch.Tensor | list[torch.Tensor]]) -> tuple[torch.Tensor, list[Slot]]:
    """One uint8 buffer holding the ``parts`` (a tensor as it is, a list of tensors stacked) -> ``(buffer, their
    slots)``; in a worker the buffer is one shared-memory segment (as ``default_collate`` allocates), so the batch
    is not copied again on its way to the main process."""
    slots, offset = [], 0
    for part in parts:
        group = [part] if isinstance(part, torch.Tensor) else part
        shape = tuple(part.shape) if isinstance(part, torch.Tensor) else (len(part), *part[0].shape)
        slots.append(Slot(offset, functools.reduce(torch.promote_types, (x.dtype for x in group)), shape))
        offset += -(-slots[-1].nbytes // _ALIGN) * _ALIGN
    if get_worker_info() is not None:
        data = torch.empty(0, dtype=torch.uint8)
        data.set_(torch.UntypedStorage._new_shared(offset))
    else:
        data = torch.empty(offset, dtype=torch.uint8)
    for part, slot in zip(parts, slots, strict=True):
        if isinstance(part, torch.Tensor):
            slot.of(data).copy_(part)
        else:  # mixed dtypes (float16 cache spectrograms beside float32 ones) promoted, as torch.stack would
            torch.stack([x.to(slot.dtype) for x in part], out=slot.of(data))
    return data, slots


def collate(items: list) -> PackedBatch | AVSample:
    """Batch :class:`PackedSample` into a :class:`PackedBatch` (anything else: ``default_collate``)."""
    first = items[0]
    if not isinstance(first, PackedSample):
        return default_collate(items)
    if any(s.spec != first.spec or s.snr_db != first.snr_db for s in items):
        raise ValueError("collate: the samples of a batch come from transforms with different settings")
    audio, transform = [s.audio for s in items], None
    if all(isinstance(a, PCM) and a.transform is first.audio.transform for a in audio):
        audio, transform = [a.samples for a in audio], first.audio.transform
    else:  # spectrograms here where a batch mixes clips (other files, noise): one shape for the batch
        audio = [_spectrogram(a.samples[None], a.transform)[0] if isinstance(a, PCM) else a for a in audio]
    noise = [] if first.noise is None else [[s.noise for s in items]]
    data, slots = _pack([audio, *(s.frames for s in items), *noise])
    return PackedBatch(
        data=data,
        audio=slots[0],
        audio_transform=transform,
        frames=tuple(slots[1 : 1 + len(items)]),
        noise=slots[-1] if noise else None,
        flip=tuple(bool(s.flip) for s in items),
        labels=tuple(int(s.label) for s in items),
        clip_id=[s.clip_id for s in items],
        spec=first.spec,
        snr_db=first.snr_db,
    )


def to_device(batch: PackedBatch | AVSample, device: torch.device | str) -> AVSample:
    """A collated batch on ``device`` with float32 audio ``[B, 1, F, T]`` and frames ``[B, K, C, size, size]``: a
    :class:`PackedBatch` is finished there; an ``AVSample`` batch is moved as it is. Labels and ids stay as
    they are."""
    if not isinstance(batch, PackedBatch):
        audio, frames = batch.audio.to(device, non_blocking=True), batch.frames.to(device, non_blocking=True)
        return AVSample(audio, frames, batch.label, batch.clip_id)
    data = batch.data.to(device, non_blocking=True)
    noise = None if batch.noise is None else batch.noise.of(data)
    frames = finish_frames([s.of(data) for s in batch.frames], list(batch.flip), batch.spec, batch.snr_db, noise)
    audio = batch.audio.of(data)
    if batch.audio_transform is None:
        audio = audio.float()
    else:
        t = batch.audio_transform
        audio = _spectrogram(audio, t if t.window.device == audio.device else copy.deepcopy(t).to(audio.device))
    return AVSample(audio, frames, batch.label, batch.clip_id)


def _spectrogram(samples: torch.Tensor, transform: LogSpectrogram) -> torch.Tensor:
    """``[B, n]`` int16 -> ``[B, 1, F, T]``: what the transform makes of ``load_wav``'s float samples."""
    return transform(samples * (1 / 32768.0))


def unpack(sample: PackedSample | AVSample) -> AVSample:
    """One packed sample finished on the CPU (what ``ds[i]`` returns): float32 audio and frames."""
    if not isinstance(sample, PackedSample):
        return sample
    b = to_device(collate([sample]), "cpu")
    return AVSample(b.audio[0], b.frames[0], sample.label, sample.clip_id)


class Packed(Dataset):
    """``dataset`` as DataLoader workers serve it: ``pack(i)`` of the data set under any ``Subset`` wrappers where
    it has one, else its items as they are. Collate with :func:`collate`, finish with :func:`to_device`."""

    def __init__(self, dataset: Dataset) -> None:
        self.dataset = dataset

    def __len__(self) -> int:
        return len(self.dataset)

    def __getitem__(self, i: int):
        ds, j = self.dataset, i
        while isinstance(ds, Subset):
            ds, j = ds.dataset, ds.indices[j]
        return ds.pack(j) if hasattr(ds, "pack") else self.dataset[i]


def loader_options(workers: int, device: torch.device | str, persistent: bool = False) -> dict:
    """DataLoader settings: ``workers`` processes, page-locked batches for a CUDA device (``pin_memory``: the
    host-to-device copy runs asynchronously), and with workers 4 batches in flight per worker (compact batches
    make that cheaper than PyTorch's default 2 of float batches) and ``persistent`` workers.

    Persistent workers keep the data set copy they were started with: only a loader iterated again over an
    unchanged data set (a benchmark, a fixed evaluation set) may use them. The trainer makes one loader per epoch
    (the epoch's draws, order and sample plan reach the workers at their start), so it does not.
    """
    device = torch.device(device)
    opts: dict = {"num_workers": workers, "pin_memory": device.type == "cuda"}
    if workers > 0:
        opts.update(prefetch_factor=4, persistent_workers=persistent)
    return opts
