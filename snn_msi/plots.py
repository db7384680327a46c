"""Matplotlib figures (PNG) for people who would rather look than read. Uses the non-interactive Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402


def spike_raster(spikes: Mapping[str, torch.Tensor], path: str | Path, title: str = "spike raster") -> Path:
    """One panel per entry; each ``[T, N]`` 0/1 tensor is drawn as dots at (t, neuron)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = len(spikes)
    fig, axes = plt.subplots(n, 1, figsize=(8, 1.2 + 1.1 * n), sharex=True, squeeze=False)
    for ax, (name, s) in zip(axes[:, 0], spikes.items(), strict=True):
        t, i = torch.nonzero(s.detach().float().cpu() > 0, as_tuple=True)
        ax.scatter(t.numpy(), i.numpy(), s=4, marker="|", color="k")
        ax.set_ylabel(name, rotation=0, ha="right", va="center", fontsize=8)
        ax.set_ylim(-0.5, s.shape[1] - 0.5)
        ax.set_yticks([])
    axes[-1, 0].set_xlabel("time step")
    fig.suptitle(title)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path
