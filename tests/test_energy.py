import json

import pytest
import torch
from torch import nn

import neurons
from snn_msi.cli import main as cli
from snn_msi.metrics.energy import ENERGY_TABLE, OpCounter, energy_report, layer_energy
from snn_msi.models import build


class TwoLayer(nn.Module):
    """Linear(4 -> 3) on analogue input, an IF neuron, Linear(3 -> 2) on its spikes; multi-step [T, B, 4]."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, bias=False)
        self.sn = neurons.create("if", v_threshold=1.0, step_mode="m")
        self.fc2 = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(3, 4))
            self.fc2.weight.fill_(0.5)

    def forward(self, x):
        return self.fc2(self.sn(self.fc1(x)))


def test_sops_and_energy_against_hand_count():
    model = TwoLayer()
    x = torch.tensor([[[2.0, 0.0, 0.6, 0.0]]]).expand(2, 1, 4)  # T = 2, B = 1
    with OpCounter(model) as ops:
        model(x)
    l1, l2 = ops.layers["fc1"], ops.layers["fc2"]
    # fc1: analogue input -> T * B * 3 outputs * 4 inputs MACs
    assert not l1.input_spiking and l1.macs == 2 * 3 * 4 and l1.sops == 0
    # IF: neuron 0 gets 2.0 each step -> spikes twice; neuron 2 gets 0.6 -> 0.6, 1.2 -> spikes once at t = 1
    # fc2: 3 input spikes x fan-out 2 = 6 accumulates; fr_in = 3 spikes / (2 steps x 3 neurons)
    assert l2.input_spiking and l2.sops == 6 and l2.macs == 0 and l2.fr_in == pytest.approx(0.5)
    e_mac, e_ac = ENERGY_TABLE["fp32"]
    assert layer_energy(l1, e_mac, e_ac) + layer_energy(l2, e_mac, e_ac) == pytest.approx(4.6 * 24 + 0.9 * 6)


TINY = dict(num_classes=4, widths=(4, 8), blocks=(1, 1), stem="small", T=2, audio_channels=1, visual_channels=3)


def test_report_totals_and_ann_ratio():
    model = build(**TINY)
    a, f = torch.randn(3, 1, 8, 8), torch.randn(3, 2, 3, 8, 8)
    rep = energy_report(model, a, f, precision="fp16")
    assert rep.e_mac == 1.5 and rep.e_ac == 0.4
    t = rep.totals
    assert t["snn_pj"] == pytest.approx(sum(r["energy_pj"] for r in rep.layers))
    assert t["ann_pj"] == pytest.approx(1.5 * t["ann_macs"])
    # every conv after the stem is fed spikes; the ANN does the dense work once (T = 1)
    assert all(r["input_spiking"] for r in rep.layers if "layers." in r["name"])
    dense_snn = sum(r["dense_macs"] for r in rep.layers)
    assert t["ann_macs"] == pytest.approx(dense_snn / TINY["T"], rel=1e-6)
    assert 0 < rep.totals["mean_firing_rate"] < 1 and "E_MAC=1.5" in rep.table()
    with pytest.raises(ValueError, match="precision"):
        energy_report(model, a, f, precision="fp8")


def test_sop_count_agrees_with_spikingjelly_counter():
    sj = pytest.importorskip("spikingjelly.activation_based.op_counter", reason="SpikingJelly not installed")
    model = build(**TINY).eval()
    a, f = torch.randn(3, 1, 8, 8), torch.randn(3, 2, 3, 8, 8)
    with torch.no_grad(), OpCounter(model) as ops:
        model(a, f)
    counter = sj.SynOpCounter()
    with torch.no_grad(), sj.DispatchCounterMode([counter]):
        model(a, f)
    ours = sum(r.sops for r in ops.layers.values())
    assert ours > 0 and ours == counter.get_total()


def test_energy_command_on_a_trained_checkpoint(tmp_path, capsys):
    from snn_msi.training import Trainer, demo_config

    cfg = demo_config(epochs=1, out=str(tmp_path / "run"), data={"dataset": "digits-av", "limit": 32},
                      model={**demo_config().model.to_dict(), "widths": [4], "blocks": [1], "T": 2})  # fmt: skip
    Trainer(cfg, progress=False).fit()
    assert cli(["energy", str(tmp_path / "run" / "best.pt"), "--samples", "8", "--out", str(tmp_path / "e")]) == 0
    printed = capsys.readouterr().out
    assert "compute energy SNN / ANN" in printed and "assumptions" in printed
    data = json.loads((tmp_path / "e" / "energy.json").read_text())
    assert data["samples"] == 8 and data["layers"]
    for png in ("firing_rates.png", "energy.png", "raster.png"):
        assert (tmp_path / "e" / png).stat().st_size > 1000
    assert cli(["energy", str(tmp_path / "missing.pt")]) == 2
