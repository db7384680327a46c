"""``digits-av``: a small real audio-visual task that ships with the package (no download).

- Visual: scikit-learn's handwritten digits (``load_digits``: 1,797 real 8 x 8 scans, 10 classes), upsampled
  to 16 x 16, one grey channel.
- Audio: the digit words "zero" .. "nine" spoken by espeak-ng in 50 synthetic voices (7 English accents x
  voice variants x rate x pitch; see ``scripts/make_digits_audio.py``), 16 kHz mono, 1 s, committed as FLAC;
  the model sees a 40-band log-mel spectrogram ``[1, 40, 32]``, normalised per clip (zero mean, unit std).
- Splits: images stratified 70/15/15; audio split by voice (35/7/8 voices), so test voices are unseen; each
  image is paired with a same-class clip from its own split's voices (seeded, fixed).
- Each modality has an SNR knob in dB (additive Gaussian noise on the waveform / the image): noise is drawn
  afresh each epoch in training (call ``set_epoch``) and fixed per sample in evaluation; both are seeded, so a
  resumed run sees the same noise, whatever the number of DataLoader workers.
"""

from __future__ import annotations

import functools
from pathlib import Path

import numpy as np
import soundfile as sf
import torch
import torch.nn.functional as F
from torch.utils.data import Dataset

from ..encoders import LogMelSpectrogram, add_noise_snr
from .base import stratified_split
from .config import SNR_PRESETS, SPLITS
from .rng import sample_generator
from .sample import AVSample

AUDIO_DIR = Path(__file__).parent / "digits_av"


@functools.lru_cache(maxsize=1)
def _load_audio() -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``(waves [N, 16000], digit [N], voice [N])`` of the committed clips."""
    files = sorted(AUDIO_DIR.glob("*.flac"))
    if not files:
        raise FileNotFoundError(f"digits-av: no clips in {AUDIO_DIR}; run scripts/make_digits_audio.py")
    waves, digits, voices = [], [], []
    for f in files:
        data, sr = sf.read(f, dtype="float32")
        if sr != 16000:
            raise ValueError(f"digits-av: {f} is {sr} Hz, expected 16000")
        d, v = f.stem.split("_")
        waves.append(torch.from_numpy(data))
        digits.append(int(d))
        voices.append(int(v))
    return torch.stack(waves), torch.tensor(digits), torch.tensor(voices)


@functools.lru_cache(maxsize=1)
def _load_digits():
    from sklearn.datasets import load_digits

    return load_digits()


def _split_voices(voices: torch.Tensor, seed: int) -> dict[str, set[int]]:
    ids = sorted(set(voices.tolist()))
    perm = [ids[i] for i in torch.randperm(len(ids), generator=torch.Generator().manual_seed(seed)).tolist()]
    n_train, n_val = round(0.7 * len(ids)), round(0.15 * len(ids))
    return {
        "train": set(perm[:n_train]),
        "val": set(perm[n_train : n_train + n_val]),
        "test": set(perm[n_train + n_val :]),
    }


def _split_images(labels: np.ndarray, seed: int) -> dict[str, list[int]]:
    rest, test = stratified_split(labels.tolist(), 0.15, seed)
    train_local, val_local = stratified_split([int(labels[i]) for i in rest], 0.15 / 0.85, seed + 1)
    return {"train": [rest[i] for i in train_local], "val": [rest[i] for i in val_local], "test": test}


class DigitsAV(Dataset):
    """The embedded audio-visual digits task.

    Args:
        split: ``"train"``, ``"val"`` or ``"test"``.
        preset: an SNR preset of ``snn_msi.data.SNR_PRESETS`` (``"clean"``, ``"hard"`` = audio -10 dB / image
            0 dB, ``"harder"`` = -15 / -5 dB); explicit ``audio_snr_db`` / ``image_snr_db`` override it.
        seed: pairing, splits and noise.
    """

    classes = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
    image_size = 16
    audio_shape = (1, 40, 32)
    in_memory = True  # no DataLoader workers needed

    def __init__(
        self,
        split: str = "train",
        preset: str = "clean",
        audio_snr_db: float | None = None,
        image_snr_db: float | None = None,
        seed: int = 0,
        split_seed: int = 0,
    ) -> None:
        if split not in SPLITS:
            raise ValueError(f"split must be one of {SPLITS}, got {split!r}")
        if preset not in SNR_PRESETS:
            raise ValueError(f"preset must be one of {sorted(SNR_PRESETS)}, got {preset!r}")
        a_snr, i_snr = SNR_PRESETS[preset]
        self.audio_snr_db = a_snr if audio_snr_db is None else audio_snr_db
        self.image_snr_db = i_snr if image_snr_db is None else image_snr_db
        self.split, self.train, self.seed, self.epoch = split, split == "train", seed, 0
        digits = _load_digits()
        idx = _split_images(digits.target, split_seed)[split]
        self.images = torch.from_numpy(digits.images[idx]).float() / 16.0  # [N, 8, 8] in [0, 1]
        self.labels = torch.from_numpy(digits.target[idx]).long()
        waves, wdigit, wvoice = _load_audio()
        keep = torch.tensor([int(v) in _split_voices(wvoice, split_seed)[split] for v in wvoice.tolist()])
        self.waves, wdigit = waves[keep], wdigit[keep]
        g = torch.Generator().manual_seed(seed * 1000 + SPLITS.index(split))
        pools = {d: torch.nonzero(wdigit == d).flatten() for d in range(10)}
        self.clip_of = torch.stack(
            [pools[int(y)][torch.randint(len(pools[int(y)]), (1,), generator=g)] for y in self.labels]
        ).flatten()
        self.mel = LogMelSpectrogram(n_mels=40, sample_rate=16000, duration=1.0, n_fft=512, hop_length=512)
        self._fixed: dict[tuple, AVSample] = {}  # evaluation samples made so far (see __getitem__)

    @property
    def targets(self) -> list[int]:
        return self.labels.tolist()

    def set_epoch(self, epoch: int) -> None:
        """Training noise depends on (seed, epoch, index): call once per epoch before iterating."""
        self.epoch = epoch

    def __len__(self) -> int:
        return len(self.labels)

    def __getitem__(self, i: int) -> AVSample:
        """A training sample is drawn afresh (its noise depends on the epoch); an evaluation sample is the same
        every epoch, so it is made once and kept (a 56-epoch run validated 55 times on the same samples), under
        what its noise depends on (the probe redraws it by setting ``seed``)."""
        if self.train:
            return self._make(i)
        key = (self.seed, self.audio_snr_db, self.image_snr_db, i)
        if key not in self._fixed:
            self._fixed[key] = self._make(i)
        return self._fixed[key]

    def _make(self, i: int) -> AVSample:
        g = sample_generator(self.seed, self.epoch if self.train else -1, self.split, i)
        wave = add_noise_snr(self.waves[self.clip_of[i]].unsqueeze(0), self.audio_snr_db, g)
        img = F.interpolate(self.images[i].view(1, 1, 8, 8), size=self.image_size, mode="bilinear", align_corners=False)
        img = add_noise_snr(img.view(1, -1), self.image_snr_db, g).view(1, 1, self.image_size, self.image_size)
        audio = self.mel(wave)[0]  # [1, 40, 32]
        audio = (audio - audio.mean()) / audio.std().clamp_min(1e-6)  # per-clip normalisation
        frames = (img - 0.5) / 0.5  # [K=1, C=1, 16, 16]
        return AVSample(audio, frames, int(self.labels[i]), f"{self.split}-{i:04d}")
