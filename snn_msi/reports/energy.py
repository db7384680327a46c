"""The energy report of a trained checkpoint: load it, measure on test samples, print, write tables and plots.

``snn-msi energy CHECKPOINT`` runs :func:`energy_report_for_checkpoint`; the counting itself is
:mod:`snn_msi.metrics.energy`.
"""

from __future__ import annotations

from pathlib import Path

import torch

import neurons

from ..metrics.energy import ENERGY_TABLE, EnergyReport, energy_report
from . import command


def energy_report_for_checkpoint(checkpoint: str | Path, out: str | Path | None = None, samples: int = 64,
                                 precision: str = "fp32", e_mac: float | None = None,
                                 e_ac: float | None = None) -> EnergyReport:  # fmt: skip
    """``snn-msi energy``: measure a trained checkpoint on ``samples`` test samples; print, write CSV/JSON/plots."""
    from torch.utils.data import DataLoader, Subset

    from ..data import build_datasets
    from ..plots import energy_bars, firing_rate_bars, spike_raster
    from ..training import load_model

    model, cfg = load_model(checkpoint)
    test = build_datasets(cfg.data, cfg.seed)[2]
    batch = next(iter(DataLoader(Subset(test, range(min(samples, len(test)))), batch_size=samples)))
    report = energy_report(model, batch.audio, batch.frames, precision, e_mac, e_ac)
    print(report.table())
    out = Path(out) if out else Path(checkpoint).parent / "energy"
    csv_path, json_path = report.write(out)
    firing_rate_bars(report.firing_rates, out / "firing_rates.png")
    energy_bars(report.totals, out / "energy.png", report.assumptions())
    rasters = _one_sample_raster(model, batch.audio[:1], batch.frames[:1])
    spike_raster(rasters, out / "raster.png", "spikes of one test sample (64 neurons per layer)")
    print(f"wrote {csv_path}, {json_path} and plots in {out}")
    return report


def _one_sample_raster(model, audio, frames, per_layer: int = 64) -> dict[str, torch.Tensor]:
    seen = {}
    hooks = [m.register_forward_hook(lambda _m, _i, o, n=n: seen.setdefault(n, o.detach()))
             for n, m in model.named_modules() if neurons.is_spiking(m)]  # fmt: skip
    with torch.no_grad():
        model(audio, frames)
    for h in hooks:
        h.remove()
    return {n: s.flatten(2)[:, 0, :per_layer] for n, s in seen.items() if s.dim() >= 3}


@command("energy", description="firing rates, SOPs and energy of a checkpoint (table + CSV/JSON + plots)")
def _energy_command(q) -> None:
    from ..cli import nonnegative_float, positive_int

    q.add_argument("checkpoint")
    q.add_argument("--out", default=None, help="folder for energy.csv / energy.json / plots (default: beside it)")
    q.add_argument("--samples", type=positive_int, default=64, help="test samples to measure firing rates on")
    q.add_argument("--precision", choices=list(ENERGY_TABLE), default="fp32")
    q.add_argument("--e-mac", type=nonnegative_float, help="pJ per MAC (overrides the table)")
    q.add_argument("--e-ac", type=nonnegative_float, help="pJ per accumulate (overrides the table)")
    q.set_defaults(func=_run)


def _run(args) -> int:
    energy_report_for_checkpoint(args.checkpoint, args.out, args.samples, args.precision, args.e_mac, args.e_ac)
    return 0
