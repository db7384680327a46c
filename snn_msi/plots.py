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


def training_curves(history: list[dict], steps: list[dict], path: str | Path) -> Path:
    """Accuracy (fused and per head, train and validation), loss, and the IEMF coefficient over steps."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    coeff = [(s["step"], s["coeff"]) for s in steps if "coeff" in s]
    fig, axes = plt.subplots(1, 3 if coeff else 2, figsize=(13 if coeff else 9, 3.6))
    ep = [h["epoch"] for h in history]
    ax = axes[0]
    for key, style in (("acc", "-"), ("acc_audio", "--"), ("acc_visual", ":")):
        for split, color in (("train", "tab:blue"), ("val", "tab:orange")):
            k = f"{split}_{key}"
            if history and k in history[0]:
                ax.plot(ep, [h[k] for h in history], style, color=color, label=k)
    ax.set_xlabel("epoch")
    ax.set_ylabel("accuracy")
    ax.legend(fontsize=7)
    axes[1].plot(ep, [h["train_loss"] for h in history], label="train")
    axes[1].plot(ep, [h["val_loss"] for h in history], label="val (fused)")
    axes[1].set_xlabel("epoch")
    axes[1].set_ylabel("loss")
    axes[1].legend(fontsize=7)
    if coeff:
        x, y = zip(*coeff, strict=True)
        axes[2].plot(x, y, lw=0.6)
        axes[2].set_xlabel("step")
        axes[2].set_ylabel("fusion-gradient coefficient")
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
