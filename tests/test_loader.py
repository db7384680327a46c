"""The batch transform (snn_msi.data.loader): compact samples from workers, finished on the device, give the same
numbers as the per-sample transform did before it was split (a copy of that code is the reference here): bit for
bit with PyTorch's ops (``fused=False``), to float32 rounding with the C++ pass that replaces them on the CPU
(tests/test_frames_cpu.py)."""

import math

import pytest
import soundfile as sf
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Subset
from torch.utils.data._utils.pin_memory import pin_memory

from snn_msi.data import DigitsAV, KineticsSounds
from snn_msi.data.base import load_wav, read_pcm16
from snn_msi.data.h5 import H5Dataset, build_h5
from snn_msi.data.loader import (
    PCM,
    Packed,
    PackedBatch,
    PackedSample,
    collate,
    loader_options,
    pack_sample,
    to_device,
)
from snn_msi.encoders import FrameTransform, LogSpectrogram, add_noise_snr, finish_frames, fit_length

from .test_frames_cpu import ATOL
from .trees import make_ks_tree


def reference_transform(t: FrameTransform, clip: torch.Tensor, g: torch.Generator, snr_db=None) -> torch.Tensor:
    """``FrameTransform.forward`` of one clip ``[F, C, H, W]`` and ``transform_frames``' noise, as they were
    before the transform was split into worker and device halves (verbatim but for the packaging)."""
    clips = clip.unsqueeze(0)
    scale = 1 / 255.0 if clips.dtype == torch.uint8 else 1.0
    b, f, c, h, w = clips.shape
    if t.train_mode:
        out = []
        for one in clips:
            area = h * w
            top, left, ch, cw = 0, 0, h, w
            for _ in range(10):
                target = area * (t.scale[0] + (t.scale[1] - t.scale[0]) * torch.rand(1, generator=g).item())
                log_r = math.log(3 / 4) + (math.log(4 / 3) - math.log(3 / 4)) * torch.rand(1, generator=g).item()
                r = math.exp(log_r)
                cw_, ch_ = int(round(math.sqrt(target * r))), int(round(math.sqrt(target / r)))
                if 0 < cw_ <= w and 0 < ch_ <= h:
                    top = int(torch.randint(0, h - ch_ + 1, (1,), generator=g))
                    left = int(torch.randint(0, w - cw_ + 1, (1,), generator=g))
                    ch, cw = ch_, cw_
                    break
            crop = one[..., top : top + ch, left : left + cw].float() * scale
            crop = F.interpolate(crop, size=(t.size, t.size), mode="bilinear", align_corners=False)
            if torch.rand(1, generator=g).item() < 0.5:
                crop = crop.flip(-1)
            out.append(crop)
        x = torch.stack(out)
    else:
        x = clips.reshape(b * f, c, h, w).float() * scale
        if (h, w) != (t.size, t.size):
            x = F.interpolate(x, size=(t.size, t.size), mode="bilinear")
        x = x.reshape(b, f, c, t.size, t.size)
    if snr_db is not None:
        x = add_noise_snr(x.flatten(0, 1), snr_db, g).view_as(x)
    if t.spec.mean is not None:
        x = (x - torch.tensor(t.spec.mean).view(-1, 1, 1)) / torch.tensor(t.spec.std).view(-1, 1, 1)
    return x[0]


@pytest.mark.parametrize("train", [True, False])
@pytest.mark.parametrize("snr_db", [None, -3.0])
@pytest.mark.parametrize("normalise", [True, False])
def test_batch_transform_equals_the_per_sample_transform(train, snr_db, normalise):
    torch.manual_seed(int(train) * 4 + (snr_db is None) * 2 + normalise)  # fresh random clips in every case
    norm = {} if normalise else {"mean": None, "std": None}
    t = FrameTransform(24, train=train, **norm)
    sizes = [(40, 32), (40, 32), (17, 61), (24, 24), (90, 20), (40, 32)]  # mixed and equal sizes in one batch
    clips = [torch.randint(0, 256, (3, 3, h, w), dtype=torch.uint8) for h, w in sizes]
    check_batch(t, clips, snr_db)
    check_batch(t, clips[:2] + clips[-1:], snr_db)  # one size: converted and resized as one batch


def check_batch(t: FrameTransform, clips: list[torch.Tensor], snr_db) -> None:
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(clips))]
    expected = torch.stack([reference_transform(t, c, g, snr_db) for c, g in zip(clips, gens, strict=True)])
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(clips))]
    pairs = enumerate(zip(clips, gens, strict=True))
    packed = [pack_sample(torch.randn(1, 5, 7), c, i, f"c{i}", t, snr_db, g) for i, (c, g) in pairs]
    assert all(isinstance(p, PackedSample) and p.frames.dtype == torch.uint8 for p in packed)
    batch = collate(packed)
    assert isinstance(batch, PackedBatch) and batch.data.dtype == torch.uint8 and batch.data.dim() == 1
    assert [t for t in batch if isinstance(t, torch.Tensor)] == [batch.data]  # one buffer crosses processes
    assert batch.label.tolist() == list(range(len(clips)))
    out = to_device(batch, "cpu")
    assert out.frames.dtype == torch.float32 and out.frames.shape == (len(clips), 3, 3, 24, 24)
    torch.testing.assert_close(out.frames, expected, atol=ATOL, rtol=0)
    crops = [s.of(batch.data) for s in batch.frames]
    assert [c.shape for c in crops] == [p.frames.shape for p in packed]
    noise = None if batch.noise is None else batch.noise.of(batch.data)
    torch_ops = finish_frames(crops, list(batch.flip), batch.spec, snr_db, noise, fused=False)
    assert torch.equal(torch_ops, expected)
    gens = [torch.Generator().manual_seed(100 + i) for i in range(len(clips))]
    alone = torch.stack([t(c, generator=g, snr_db=snr_db) for c, g in zip(clips, gens, strict=True)])
    assert torch.equal(alone, out.frames)


def test_other_transforms_and_in_memory_sets_pass_through():
    custom = lambda frames, generator=None: frames.float()  # noqa: E731
    s = pack_sample(torch.zeros(1, 2, 2), torch.ones(1, 3, 4, 4, dtype=torch.uint8), 1, "x", custom, None, None)
    assert not isinstance(s, PackedSample) and s.frames.dtype == torch.float32
    digits = DigitsAV("test")
    batch = collate([Packed(digits)[i] for i in range(3)])
    out = to_device(batch, "cpu")
    assert torch.equal(out.frames, torch.stack([digits[i].frames for i in range(3)]))
    clip = torch.ones(1, 3, 9, 9, dtype=torch.uint8)
    h5ish = collate([pack_sample(torch.zeros(1, 2, 2), clip, 0, "x", FrameTransform(4), None, None)])
    with pytest.MonkeyPatch.context() as mp:  # pinning needs CUDA: keep the structure, copy the tensors
        mp.setattr(torch.Tensor, "pin_memory", lambda self, *a: self.clone())
        pinned = pin_memory(h5ish)
    assert isinstance(pinned, PackedBatch)
    assert torch.equal(to_device(pinned, "cpu").frames, to_device(h5ish, "cpu").frames)
    opts = loader_options(2, "cuda")
    assert opts["pin_memory"] and opts["num_workers"] == 2 and not opts["persistent_workers"]
    assert loader_options(0, "cpu") == {"num_workers": 0, "pin_memory": False}


def test_workers_hand_over_compact_samples_with_the_same_numbers(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    kw = dict(val_fraction=0.0, image_size=16, audio_seconds=0.5, seed=5)
    files = KineticsSounds(root, "train", train=True, image_snr_db=0.0, audio_snr_db=-5.0, **kw)
    cache = {"train": KineticsSounds(root, "train", train=False, **kw)}
    path = build_h5(cache, tmp_path / "ks.h5", progress=False, waveforms=True)
    h5_disk = H5Dataset(path, "train", image_size=16, image_snr_db=0.0, audio_snr_db=-5.0, seed=5, in_memory=False)
    h5_mem = H5Dataset(path, "train", image_size=16, image_snr_db=0.0, audio_snr_db=-5.0, seed=5, in_memory=True)
    assert h5_mem.in_memory and not h5_disk.in_memory
    with pytest.raises(ValueError, match="in_memory"):
        H5Dataset(path, "train", in_memory="yes")
    for ds in (files, h5_disk, h5_mem):
        ds.set_epoch(2)
    one_by_one = [torch.stack([ds[i].frames for i in range(8)]) for ds in (files, h5_disk)]
    assert torch.equal(torch.stack([h5_mem[i].frames for i in range(8)]), one_by_one[1])
    for ds, expected, workers in ((files, one_by_one[0], 2), (Subset(h5_disk, range(8)), one_by_one[1], 1)):
        loader = DataLoader(Packed(ds), batch_size=4, collate_fn=collate, **loader_options(workers, "cpu"))
        items = list(loader)
        assert all(isinstance(b, PackedBatch) and b.data.is_shared() for b in items)
        assert torch.equal(torch.cat([to_device(b, "cpu").frames for b in items])[:8], expected)


def test_pcm_audio_becomes_the_same_spectrograms_on_the_device(tmp_path):
    g = torch.Generator().manual_seed(7)
    t = LogSpectrogram(sample_rate=22050, duration=0.5)
    paths = []
    for i, n in enumerate([22050, 5000, 11025, 30000, 97]):  # longer, shorter (tiled) and exact lengths
        paths.append(tmp_path / f"{i}.wav")
        sf.write(paths[-1], torch.randint(-30000, 30000, (n,), generator=g, dtype=torch.int16).numpy(), 22050)
    others = {
        "float": ((9000,), 22050, "FLOAT"),
        "stereo": ((9000, 2), 22050, "PCM_16"),
        "16k": ((9000,), 16000, "PCM_16"),
    }
    for name, (shape, sr, subtype) in others.items():
        sf.write(tmp_path / f"{name}.wav", torch.rand(shape, generator=g).numpy() - 0.5, sr, subtype=subtype)
        assert read_pcm16(tmp_path / f"{name}.wav", 22050, 0.5) is None
    expected = torch.stack([t(load_wav(p, 22050, 0.5)) for p in paths])
    frames = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    pcm = [PCM(fit_length(read_pcm16(p, 22050, 0.5), t.num_samples, t.fit), t) for p in paths]
    samples = [pack_sample(a, frames, 0, "x", FrameTransform(8), None, None) for a in pcm]
    batch = collate(samples)
    assert batch.audio.dtype == torch.int16 and batch.audio_transform is t and batch.audio.of(batch.data).dim() == 2
    assert torch.equal(to_device(batch, "cpu").audio, expected)
    mixed = collate([samples[0]._replace(audio=expected[0]), *samples[1:]])  # spectrograms made in the worker
    assert mixed.audio_transform is None and torch.equal(to_device(mixed, "cpu").audio, expected)


def test_frame_files_read_only_the_crop_with_the_pixels_of_whole_frames(tmp_path):
    """Frames of other sizes (resized to the first one's) and other modes (converted to RGB); a broken file other
    than the first is named when the crop is read."""
    from PIL import Image

    from snn_msi.data.base import ClipReadError, FrameFiles, load_frames
    from snn_msi.encoders import CropPlan, crop_frames

    g = torch.Generator().manual_seed(11)
    paths = []
    for i, (mode, size) in enumerate([("RGB", (40, 30)), ("L", (40, 30)), ("P", (33, 21)), ("RGBA", (40, 30))]):
        pixels = torch.randint(0, 256, (size[1], size[0], 4), generator=g, dtype=torch.uint8).numpy()
        img = Image.fromarray(
            pixels[..., :1].squeeze(-1) if mode in ("L", "P") else pixels[..., :4],
            "L" if mode in ("L", "P") else "RGBA",
        )
        img = img.convert(mode)
        paths.append(tmp_path / f"f{i}.png")
        img.save(paths[-1])
    files = FrameFiles(paths)
    whole = load_frames(paths)
    assert files.shape == tuple(whole.shape) == (4, 3, 30, 40)
    for plan in (CropPlan(0, 0, 30, 40, False), CropPlan(3, 5, 11, 17, True), CropPlan(29, 39, 1, 1, False)):
        assert torch.equal(files.crop(plan), crop_frames(whole, plan))
    paths[2].write_bytes(b"not an image")
    with pytest.raises(ClipReadError, match="f2.png"):
        FrameFiles(paths).crop(CropPlan(0, 0, 4, 4, False))


def test_a_batch_of_mixed_spectrogram_dtypes_is_promoted_not_truncated():
    t = FrameTransform(8)
    frames = torch.zeros(1, 3, 8, 8, dtype=torch.uint8)
    spectrograms = [torch.randn(1, 5, 7).half(), torch.randn(1, 5, 7)]
    batch = collate([pack_sample(a, frames, 0, "x", t, None, None) for a in spectrograms])
    assert batch.audio.dtype == torch.float32
    assert torch.equal(to_device(batch, "cpu").audio, torch.stack([a.float() for a in spectrograms]))
