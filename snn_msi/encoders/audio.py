"""Audio front end: mono wav samples -> log-magnitude (or log-mel) spectrogram, in pure torch.

Paper parameters (Kinetics-Sounds, CREMA-D): 22,050 Hz, the first 3 s (shorter clips tiled), n_fft 512,
hop 353, Hann window, ``log(|STFT| + 1e-7)`` -> ``[1, 257, 188]``. Frames are centred with zero padding, as
librosa >= 0.10 does by default.
"""

from __future__ import annotations

import math

import torch
from torch import nn


def fit_length(wav: torch.Tensor, length: int, mode: str = "tile") -> torch.Tensor:
    """Cut or extend the last axis to ``length`` samples; ``mode`` = "tile" (repeat the clip) or "pad" (zeros)."""
    n = wav.shape[-1]
    if n == 0:
        raise ValueError("fit_length: empty waveform")
    if n >= length:
        return wav[..., :length]
    if mode == "tile":
        reps = math.ceil(length / n)
        return wav.repeat(*([1] * (wav.dim() - 1)), reps)[..., :length]
    if mode == "pad":
        return torch.nn.functional.pad(wav, (0, length - n))
    raise ValueError(f"fit_length: mode must be 'tile' or 'pad', got {mode!r}")


class LogSpectrogram(nn.Module):
    """``log(|STFT(wav)| + eps)``.

    Args:
        sample_rate: expected rate in Hz (used with ``duration`` to fix the length).
        duration: seconds kept (first ``duration`` s; shorter clips are tiled or zero padded, ``fit``).
        n_fft, hop_length: STFT size and hop in samples.
        eps: added to the magnitude before the log.

    Shape: ``[..., samples] -> [..., 1, n_fft // 2 + 1, frames]``.
    """

    def __init__(
        self,
        sample_rate: int = 22050,
        duration: float | None = 3.0,
        n_fft: int = 512,
        hop_length: int = 353,
        eps: float = 1e-7,
        fit: str = "tile",
    ) -> None:
        super().__init__()
        if n_fft <= 0 or hop_length <= 0:
            raise ValueError(f"n_fft and hop_length must be positive, got {n_fft}, {hop_length}")
        self.sample_rate, self.duration, self.n_fft, self.hop_length = sample_rate, duration, n_fft, hop_length
        self.eps, self.fit = eps, fit
        self.register_buffer("window", torch.hann_window(n_fft), persistent=False)

    @property
    def num_samples(self) -> int | None:
        return None if self.duration is None else int(round(self.sample_rate * self.duration))

    def magnitude(self, wav: torch.Tensor) -> torch.Tensor:
        if self.num_samples is not None:
            wav = fit_length(wav, self.num_samples, self.fit)
        lead = wav.shape[:-1]
        spec = torch.stft(
            wav.reshape(-1, wav.shape[-1]).float(),
            n_fft=self.n_fft,
            hop_length=self.hop_length,
            window=self.window,
            center=True,
            pad_mode="constant",
            return_complex=True,
        ).abs()
        return spec.reshape(*lead, *spec.shape[-2:])

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        return torch.log(self.magnitude(wav) + self.eps).unsqueeze(-3)


def _hz_to_mel(f):
    return 2595.0 * math.log10(1.0 + f / 700.0) if isinstance(f, float) else 2595.0 * torch.log10(1.0 + f / 700.0)


def _mel_to_hz(m):
    return 700.0 * (10.0 ** (m / 2595.0) - 1.0)


def mel_filterbank(n_freqs: int, f_min: float, f_max: float, n_mels: int, sample_rate: int) -> torch.Tensor:
    """Triangular HTK-scale filterbank ``[n_freqs, n_mels]`` (torchaudio's ``melscale_fbanks``, norm=None)."""
    all_freqs = torch.linspace(0, sample_rate // 2, n_freqs, dtype=torch.float64)
    m_pts = torch.linspace(_hz_to_mel(float(f_min)), _hz_to_mel(float(f_max)), n_mels + 2, dtype=torch.float64)
    f_pts = _mel_to_hz(m_pts)
    f_diff = f_pts[1:] - f_pts[:-1]
    slopes = f_pts.unsqueeze(0) - all_freqs.unsqueeze(1)
    down = -slopes[:, :-2] / f_diff[:-1]
    up = slopes[:, 2:] / f_diff[1:]
    return torch.clamp(torch.minimum(down, up), min=0.0).float()


class LogMelSpectrogram(LogSpectrogram):
    """``log(mel(|STFT|^power) + eps)``. Shape: ``[..., samples] -> [..., 1, n_mels, frames]``."""

    def __init__(self, n_mels: int = 64, f_min: float = 0.0, f_max: float | None = None, power: float = 2.0, **kw):
        super().__init__(**kw)
        self.n_mels, self.power = n_mels, power
        fb = mel_filterbank(self.n_fft // 2 + 1, f_min, f_max or self.sample_rate / 2, n_mels, self.sample_rate)
        self.register_buffer("fb", fb, persistent=False)

    def forward(self, wav: torch.Tensor) -> torch.Tensor:
        spec = self.magnitude(wav) ** self.power  # [..., F, frames]
        mel = torch.matmul(spec.transpose(-1, -2), self.fb).transpose(-1, -2)
        return torch.log(mel + self.eps).unsqueeze(-3)
