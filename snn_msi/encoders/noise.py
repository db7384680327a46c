"""Per-modality corruption: additive Gaussian noise at a signal-to-noise ratio in dB."""

from __future__ import annotations

import torch


def add_noise_snr(x: torch.Tensor, snr_db: float | None, generator: torch.Generator | None = None) -> torch.Tensor:
    """Return ``x + n`` with ``n ~ N(0, s^2)``, ``s^2 = P_x / 10^(snr_db / 10)``; ``P_x`` the mean power of each
    sample (over all axes but the first). ``snr_db=None`` returns ``x`` unchanged.

    Shape: ``[B, ...] -> [B, ...]``.
    """
    if snr_db is None:
        return x
    return scale_noise(x, snr_db, torch.randn(x.shape, generator=generator, device=x.device, dtype=torch.float32))


def scale_noise(x: torch.Tensor, snr_db: float, noise: torch.Tensor) -> torch.Tensor:
    """``x + noise * s`` with ``s`` as in :func:`add_noise_snr`: the second half of it, for noise ``[B, ...]``
    (standard normal, float32) drawn elsewhere (a DataLoader worker draws it; the training device adds it)."""
    if not torch.isfinite(torch.as_tensor(float(snr_db))):
        raise ValueError(f"SNR must be a finite number of dB, got {snr_db}")
    power = x.float().pow(2).flatten(1).mean(1).clamp_min(1e-12)
    std = torch.sqrt(power / 10.0 ** (float(snr_db) / 10.0)).view(-1, *([1] * (x.dim() - 1)))
    return (x.float() + noise * std).to(x.dtype)
