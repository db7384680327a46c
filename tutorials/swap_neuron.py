"""Swap the neuron model of the digits-av demo network and compare firing rates and accuracy.

Every neuron of the registry (`snn-msi neurons`) plugs into the same network with `--neuron NAME`; the shared
settings of the paper (threshold 0.5, piecewise-quadratic surrogate) apply wherever the neuron has them. The
settings below are tiny so that the tutorial runs in seconds: for real numbers drop `--set data.limit=...` and
train for 10 epochs (`snn-msi train --demo` alone).
"""

import json
from pathlib import Path

import torch

from snn_msi.cli import main
from snn_msi.data import build_datasets
from snn_msi.metrics import SpikeMonitor
from snn_msi.training import load_model

OUT = Path("runs/tutorials/swap_neuron")
TINY = ["--epochs", "1", "--batch-size", "16", "--set", "data.limit=16", "--quiet", "--overwrite"]

rows = []
for neuron in ["lif", "if", "synaptic"]:
    run = OUT / neuron
    # 1. train: the same command line with another --neuron
    assert main(["train", "--demo", "--neuron", neuron, *TINY, "--out", str(run)]) == 0
    result = json.loads((run / "results.json").read_text())
    # 2. firing rates of the trained model on 16 test clips
    model, cfg = load_model(run / "best.pt")
    test = build_datasets(cfg.data, cfg.seed)[2]
    audio = torch.stack([test[i].audio for i in range(16)])
    frames = torch.stack([test[i].frames for i in range(16)])
    with SpikeMonitor(model) as monitor, torch.no_grad():
        model(audio, frames)
    rates = monitor.firing_rates()
    rows.append((neuron, result["test_acc"], sum(rates.values()) / len(rates), len(rates)))

print(f"{'neuron':<10} {'test acc':>8} {'mean firing rate':>17} {'spiking layers':>15}")
for neuron, acc, rate, layers in rows:
    print(f"{neuron:<10} {acc:8.3f} {rate:17.3f} {layers:15d}")
