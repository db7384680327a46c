"""Matplotlib figures (PNG) for people who would rather look than read. Uses the non-interactive Agg backend."""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import torch  # noqa: E402

from .files import atomic_path  # noqa: E402


def save_figure(fig, path: str | Path, dpi: int) -> None:
    """``fig`` -> ``path`` (PNG) atomically: a full or read-only disk is one line naming the file, no partial PNG."""
    with atomic_path(path) as tmp:
        fig.savefig(tmp, dpi=dpi, format="png")


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
    save_figure(fig, path, 120)
    plt.close(fig)
    return path


def training_curves(history: list[dict], steps: list[dict], path: str | Path, column: str | None = None) -> Path:
    """Accuracy (fused and per head, train and validation), loss, and one step-log ``column`` over the steps (the
    trainer passes a method's headline field, e.g. ``iemf/coeff``: the fusion-gradient coefficient). ``history`` /
    ``steps``: the rows of ``metrics.csv`` / ``steps.csv``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    coeff = [(s["step"], s[column]) for s in steps if column in s] if column else []
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
        axes[2].set_ylabel(column)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def firing_rate_bars(rates: dict[str, float], path: str | Path) -> Path:
    """Mean firing rate of each spiking layer."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(max(6, 0.35 * len(rates)), 3.8))
    ax.bar(range(len(rates)), list(rates.values()), color="tab:blue")
    ax.set_xticks(range(len(rates)), list(rates), rotation=75, ha="right", fontsize=7)
    ax.set_ylabel("firing rate (spikes / neuron / step)")
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def energy_bars(totals: dict[str, float], path: str | Path, note: str = "") -> Path:
    """Compute and memory energy per sample, SNN against its ANN counterpart (log scale)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(6, 3.8))
    x = range(2)
    comp = [totals["snn_pj"], totals["ann_pj"]]
    mem = [totals["snn_mem_pj"], totals["ann_mem_pj"]]
    ax.bar([i - 0.2 for i in x], comp, 0.4, label="compute")
    ax.bar([i + 0.2 for i in x], mem, 0.4, label="memory traffic (estimate)")
    ax.set_xticks(list(x), ["SNN", "ANN (ReLU)"])
    ax.set_yscale("log")
    ax.set_ylabel("energy per sample (pJ)")
    ax.legend(fontsize=8)
    if note:
        ax.set_title(note, fontsize=6)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def inverse_effectiveness_plot(summary: list[dict], path: str | Path) -> Path:
    """Left: multisensory gain against the best unimodal accuracy (per method; weaker cues to the left).
    Right: fused accuracy difference against Normal with 95 % confidence intervals, per noise level."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    methods = list(dict.fromkeys(r["method"] for r in summary))
    levels = list(dict.fromkeys((r["audio_snr_db"], r["image_snr_db"]) for r in summary))
    fig, (ax1, ax2) = plt.subplots(1, 2, figsize=(11, 4))
    for m in methods:
        rs = [r for r in summary if r["method"] == m]
        x = [100 * max(r["audio_acc_mean"], r["visual_acc_mean"]) for r in rs]
        ax1.errorbar(
            x, [100 * r["gain_mean"] for r in rs], [100 * r["gain_std"] for r in rs], marker="o", capsize=3, label=m
        )
    ax1.set_xlabel("best unimodal head accuracy (%)")
    ax1.set_ylabel("multisensory gain (fused - best unimodal, pts)")
    ax1.set_title("inverse effectiveness")
    ax1.legend(fontsize=8)
    width = 0.8 / max(1, len(methods) - 1)
    for j, m in enumerate([m for m in methods if m != "normal"]):
        rs = {(r["audio_snr_db"], r["image_snr_db"]): r for r in summary if r["method"] == m}
        xs = [i + (j - (len(methods) - 2) / 2) * width for i in range(len(levels))]
        d = [100 * rs[lv]["diff_vs_normal"] for lv in levels]
        err = [
            [100 * (rs[lv]["diff_vs_normal"] - rs[lv]["ci_low"]) for lv in levels],
            [100 * (rs[lv]["ci_high"] - rs[lv]["diff_vs_normal"]) for lv in levels],
        ]
        ax2.bar(xs, d, width, yerr=err, capsize=3, label=m)
    ax2.axhline(0, color="k", lw=0.8)
    ax2.set_xticks(range(len(levels)), [f"audio {a:g} dB\nimage {v:g} dB" for a, v in levels], fontsize=8)
    ax2.set_ylabel("fused accuracy - normal (pts, 95% CI)")
    ax2.legend(fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def energy_breakdown(snn, ann, path: str | Path, chip: str = "Loihi", note: str = "") -> Path:
    """Stacked energy per inference: the SNN and its ReLU twin at 45 nm (MACs + accumulates, neuron updates or
    ReLU, memory traffic), and the SNN on the neuromorphic chip (synaptic events, neuron updates, spikes routed,
    analogue layers on a host). ``snn`` / ``ann``: the :class:`~snn_msi.metrics.energy.PriceTotals` of each."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    bars = {
        "SNN, 45 nm": [
            ("MACs + accumulates", snn.synaptic_pj),
            ("neuron updates", snn.neuron_pj),
            ("memory traffic", snn.memory_pj),
        ],
        "ReLU twin, 45 nm": [
            ("MACs + accumulates", ann.synaptic_pj),
            ("neuron updates", ann.neuron_pj),
            ("memory traffic", ann.memory_pj),
        ],
        f"SNN, {chip}": [
            ("synaptic events", snn.chip_synop_pj),
            ("neuron updates", snn.chip_neuron_pj),
            ("spikes routed", snn.chip_spike_pj),
            ("analogue layers (host)", snn.chip_host_mac_pj),
        ],
    }
    colors = {
        "MACs + accumulates": "tab:blue",
        "neuron updates": "tab:orange",
        "memory traffic": "tab:gray",
        "synaptic events": "tab:cyan",
        "spikes routed": "tab:red",
        "analogue layers (host)": "tab:purple",
    }
    fig, ax = plt.subplots(figsize=(7, 4))
    seen = set()
    for i, parts in enumerate(bars.values()):
        bottom = 0.0
        for label, value in parts:
            ax.bar(i, value / 1e6, 0.6, bottom=bottom, color=colors[label], label=None if label in seen else label)
            seen.add(label)
            bottom += value / 1e6
        ax.text(i, bottom, f"{bottom:.3g}", ha="center", va="bottom", fontsize=8)
    ax.set_xticks(range(len(bars)), list(bars))
    ax.set_ylabel("energy per inference (µJ)")
    ax.legend(fontsize=7)
    if note:
        ax.set_title(note, fontsize=8)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def spike_histograms(histograms: dict[str, dict], path: str | Path) -> Path:
    """Per spiking layer (rows): the histogram of its neurons' firing rates and of its spike counts per sample.
    ``histograms``: ``{layer: {"rate": {"edges", "counts"}, "count": {"edges", "counts"}}}``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    n = max(len(histograms), 1)
    fig, axes = plt.subplots(n, 2, figsize=(9, 0.4 + 1.25 * n), squeeze=False)
    for row, (layer, h) in zip(axes, histograms.items(), strict=False):
        for ax, kind, color in ((row[0], "rate", "tab:blue"), (row[1], "count", "tab:green")):
            edges, counts = h[kind]["edges"], h[kind]["counts"]
            ax.bar(
                edges[:-1],
                counts,
                [hi - lo for lo, hi in zip(edges[:-1], edges[1:], strict=True)],
                align="edge",
                color=color,
                edgecolor="white",
                linewidth=0.3,
            )
            ax.tick_params(labelsize=6)
        row[0].set_ylabel(layer, rotation=0, ha="right", va="center", fontsize=7)
    axes[0, 0].set_title("neurons by firing rate (spikes / step)", fontsize=8)
    axes[0, 1].set_title("samples by spike count of the layer", fontsize=8)
    axes[-1, 0].set_xlabel("firing rate", fontsize=7)
    axes[-1, 1].set_xlabel("spikes per sample", fontsize=7)
    fig.tight_layout()
    save_figure(fig, path, 110)
    plt.close(fig)
    return path


def pareto_plot(rows: list[dict], path: str | Path, title: str = "") -> Path:
    """Test accuracy against energy per inference (log scale), one panel per energy column. Each row is a point
    ``{"label", "model", "energy": {column: (mean, std)}, "acc": (mean, std), "front": {column: bool}}``; the
    points flagged on a column's Pareto front are joined by a step line (the best accuracy reachable at each
    energy). A point keeps its colour and marker in every panel."""
    from matplotlib.ticker import ScalarFormatter

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = list(dict.fromkeys(c for r in rows for c in r["energy"]))
    fig, axes = plt.subplots(1, len(columns), figsize=(5.6 * len(columns), 4.4), squeeze=False)
    markers = {"SNN": "o", "ReLU twin": "s", "ReLU twin, zero-skipping": "D", "SNN on Loihi": "^"}
    colors = {r["label"]: plt.cm.tab10(i % 10) for i, r in enumerate(rows)}
    handles = {}
    for ax, col in zip(axes[0], columns, strict=True):
        pts = [r for r in rows if col in r["energy"]]
        for r in pts:
            (e, es), (a, s) = r["energy"][col], r["acc"]
            handles[r["label"]] = ax.errorbar(
                e / 1e6,
                100 * a,
                100 * s,
                es / 1e6,
                marker=markers.get(r["model"], "v"),
                color=colors[r["label"]],
                capsize=2,
                linestyle="none",
            )
        front = sorted((r["energy"][col][0] / 1e6, 100 * r["acc"][0]) for r in pts if r["front"].get(col))
        if front:
            xs, ys = zip(*front, strict=True)
            handles["Pareto front"] = ax.step(xs, ys, where="post", color="k", lw=0.8, alpha=0.6)[0]
        ax.set_xscale("log")
        ax.xaxis.set_major_formatter(ScalarFormatter())
        ax.xaxis.set_minor_formatter(ScalarFormatter())
        ax.tick_params(axis="x", which="both", labelsize=7)
        ax.set_title(col, fontsize=9)
        ax.set_xlabel("energy per inference (µJ)")
        ax.set_ylabel("test accuracy (%)")
        ax.grid(alpha=0.3, which="both")
    fig.legend(list(handles.values()), list(handles), loc="lower center", ncol=min(4, len(handles)), fontsize=7)
    if title:
        fig.suptitle(title, fontsize=9)
    fig.tight_layout(rect=(0, 0.06 + 0.035 * ((len(handles) - 1) // 4), 1, 1))
    save_figure(fig, path, 120)
    plt.close(fig)
    return path


def confusion_matrix_plot(matrix, classes: list[str], path: str | Path, title: str = "confusion matrix") -> Path:
    """A confusion matrix ``[true, predicted]`` (counts) as a heat map, each row also as a share of its class."""
    import numpy as np

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    m = np.asarray(matrix, dtype=float)
    share = m / np.maximum(m.sum(1, keepdims=True), 1)
    n = len(classes)
    side = min(14.0, 2.5 + 0.5 * n)
    fig, ax = plt.subplots(figsize=(side + 1.2, side))
    im = ax.imshow(share, cmap="Blues", vmin=0, vmax=1)
    fig.colorbar(im, ax=ax, fraction=0.046, label="share of the true class")
    ax.set_xticks(range(n), classes, rotation=60, ha="right", fontsize=8)
    ax.set_yticks(range(n), classes, fontsize=8)
    ax.set_xlabel("predicted class")
    ax.set_ylabel("true class")
    ax.set_title(title)
    if n <= 30:
        for i in range(n):
            for j in range(n):
                if m[i, j]:
                    color = "white" if share[i, j] > 0.5 else "black"
                    ax.text(j, i, f"{m[i, j]:.0f}", ha="center", va="center", fontsize=7, color=color)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path
