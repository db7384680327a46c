"""Measure the spike rates and the energy of a trained model.

`snn-msi energy CHECKPOINT` counts, on test clips, the spikes of every layer, the synaptic operations they cause
(an accumulate per spike and outgoing synapse) and the multiply-accumulates of the layers fed by analogue
values, against the same network with ReLUs, and prices both (45 nm CMOS figures and a neuromorphic-chip
profile; every figure is a command-line option). It writes the tables (CSV / JSON) and plots beside the
checkpoint. `SpikeMonitor` gives the same firing rates in Python, per layer, per step and per neuron.
"""

from pathlib import Path

import torch

from snn_msi.cli import main
from snn_msi.data import build_datasets
from snn_msi.metrics import SpikeMonitor
from snn_msi.training import load_model

run = Path("runs/tutorials/energy")
# a tiny training run (for a real model: `snn-msi train --demo`, 10 epochs)
assert (
    main(
        [
            "train",
            "--demo",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--set",
            "data.limit=16",
            "--quiet",
            "--overwrite",
            "--out",
            str(run),
        ]
    )
    == 0
)

# 1. the energy report: a table on stdout, tables and plots in runs/tutorials/energy/energy/
assert main(["energy", str(run / "best.pt"), "--samples", "8", "--out", str(run / "energy")]) == 0
print("written:", sorted(p.name for p in (run / "energy").iterdir()))

# 2. firing rates in Python: attach a monitor, run test clips, read the rates
model, cfg = load_model(run / "best.pt")
test = build_datasets(cfg.data, cfg.seed)[2]
audio = torch.stack([test[i].audio for i in range(8)])
frames = torch.stack([test[i].frames for i in range(8)])
with SpikeMonitor(model) as monitor, torch.no_grad():
    model(audio, frames)
print(f"{'layer':<32} {'rate':>6}   per time step")
per_step = monitor.firing_rates_per_step()
for layer, rate in monitor.firing_rates().items():
    print(f"{layer:<32} {rate:6.3f}   {[round(r, 3) for r in per_step[layer].tolist()]}")
