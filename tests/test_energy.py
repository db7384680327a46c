"""The cost model by value: every count, byte and picojoule of a hand-built network is written out by hand here
(the arithmetic in the comments), never computed by the code under test."""

import pytest
import torch
from torch import nn

import neurons
from snn_msi.metrics import SpikeMonitor
from snn_msi.metrics.energy import (
    CostModel,
    NeuromorphicProfile,
    OpCounter,
    count_ops,
    energy_report,
    layer_energy,
    neuron_cost,
    price,
    relu_twin,
)
from snn_msi.models import build


class TwoLayer(nn.Module):
    """Linear(4 -> 3) on analogue input, a neuron (IF by default), Linear(3 -> 2) on its output; ``[T, B, 4]``."""

    def __init__(self, neuron: str = "if"):
        super().__init__()
        self.fc1 = nn.Linear(4, 3, bias=False)
        kw = {"v_threshold": 1.0} if neuron != "relu" else {}
        self.sn = neurons.create(neuron, step_mode="m", **kw)
        self.fc2 = nn.Linear(3, 2, bias=False)
        with torch.no_grad():
            self.fc1.weight.copy_(torch.eye(3, 4))
            self.fc2.weight.fill_(0.5)

    def forward(self, x):
        return self.fc2(self.sn(self.fc1(x)))


X = torch.tensor([[[2.0, 0.0, 0.6, 0.0]]])  # [1, 1, 4]; the SNN sees it at T = 2 steps


def _snn_counts(neuron="if", x=X):
    model = TwoLayer(neuron)
    x = x.expand(2, 1, 4)
    return model, count_ops(model, lambda: model(x), T=2, samples=1)


def test_counts_of_a_hand_built_snn_by_value():
    # fc1 gets [2, 0, 0.6, 0] (analogue) at both steps -> currents [2, 0, 0.6]; IF with v_th 1 and hard reset:
    # neuron 0: 2 -> spike, 2 -> spike; neuron 1: never; neuron 2: 0.6, 1.2 -> spike at t1. Spikes per step [1, 2].
    _, c = _snn_counts()
    l1, l2 = c.layers["fc1"], c.layers["fc2"]
    assert not l1.input_spiking and l1.mac_steps.tolist() == [12.0, 12.0]  # 3 outputs x 4 inputs per step
    assert l1.zero_skip_steps.tolist() == [6.0, 6.0]  # 2 non-zero inputs x fan-out 3
    assert l1.sops == 0 and l2.macs == 0
    assert l2.input_spiking and l2.sop_steps.tolist() == [2.0, 4.0]  # 1 then 2 spikes x fan-out 2
    assert l2.fr_in == 0.5  # 3 spikes / (2 steps x 3 neurons)
    assert layer_energy(l1, 4.6, 0.9) + layer_energy(l2, 4.6, 0.9) == pytest.approx(4.6 * 24 + 0.9 * 6)


def test_prices_of_a_hand_built_snn_by_value():
    _, c = _snn_counts()
    p = price(c, CostModel(), NeuromorphicProfile())
    t = p.totals
    assert (t.macs, t.zero_skip_macs, t.sops, t.spikes) == (24, 12, 6, 3)
    # IF: per neuron and step one add (integrate), no multiply-add; 3 neurons x 2 steps = 6 updates
    assert (t.updates, t.state_muladds, t.state_adds, t.compares, t.resets) == (6, 0, 6, 6, 3)
    # fp32, bytes: fc1 weights 12 x 4 B x 2 steps = 96, in 8 x 4 = 32, out 6 x 4 = 24; fc2 weights 6 x 4 x 2 = 48,
    # in 6 spikes x 1/8 = 0.75, out 4 x 4 = 16; membrane 6 updates x 4 B x 2 (read + write) = 48; spikes 6 / 8
    assert (t.weight_bytes, t.act_bytes, t.state_bytes, t.spike_bytes) == (144, 72.75, 48, 0.75)
    assert t.bytes == 265.5
    # compute: 4.6 x 24 + 0.9 x 6 = 115.8 (synaptic); 0.9 x (6 adds + 3 resets) + 0.9 x 6 compares = 13.5
    assert t.synaptic_pj == pytest.approx(115.8) and t.neuron_pj == pytest.approx(13.5)
    assert t.compute_pj == pytest.approx(129.3) and t.memory_pj == pytest.approx(265.5 * 1.25)
    # per step: 12 MACs x 4.6 + 0.9 x (SOPs + spike resets) + (3 adds + 3 compares) x 0.9
    assert p.per_step["compute_pj"] == pytest.approx([55.2 + 0.9 * 3 + 5.4, 55.2 + 0.9 * 6 + 5.4])
    assert p.per_step["sops"] == [2.0, 4.0] and p.per_step["spikes"] == [1.0, 2.0]
    # Loihi: 23.6 x 6 SOPs + 81 x 6 updates + 1.7 x 3 spikes + the analogue layer on a host, 4.6 x 24
    assert t.chip_pj == pytest.approx(141.6 + 486 + 5.1 + 110.4)
    # zero-skipping: the analogue layer does 12 MACs, not 24
    assert price(c, CostModel(zero_skip=True)).totals.synaptic_pj == pytest.approx(4.6 * 12 + 0.9 * 6)


def test_lif_leak_and_other_precisions_by_value():
    _, c = _snn_counts("lif", torch.tensor([[[3.0, 0.0, 0.6, 0.0]]]))
    t = price(c, CostModel(precision="int8", memory="dram")).totals
    # LIF, tau 2: h = v/2 + x/2: neuron 0 gets 1.5 -> spike, reset, 1.5 -> spike; neuron 2 0.3, 0.45: never
    assert t.spikes == 2 and t.sops == 4 and t.state_muladds == 6 and t.state_adds == 0
    # int8: MAC 0.23, AC 0.03 pJ; 8-bit values; DRAM 1.3 nJ per 64 bits = 162.5 pJ per byte
    assert t.synaptic_pj == pytest.approx(0.23 * 24 + 0.03 * 4)
    assert t.neuron_pj == pytest.approx(0.23 * 6 + 0.03 * 2 + 0.03 * 6)
    assert t.weight_bytes == 12 * 2 + 6 * 2 and t.memory_pj == pytest.approx(t.bytes * 162.5)


def test_relu_twin_counts_by_value():
    model = TwoLayer("relu")
    c = count_ops(model, lambda: model(X), T=1, samples=1, detect_spikes=False)
    t = price(c, CostModel()).totals
    # fc1: 3 x 4 = 12 MACs (6 on non-zero inputs); ReLU([2, 0, 0.6]) -> fc2: 2 x 3 = 6 MACs (2 non-zero x 2 = 4)
    assert (t.macs, t.zero_skip_macs, t.sops, t.compares, t.updates) == (18, 10, 0, 3, 0)
    assert t.weight_bytes == 48 + 24 and t.act_bytes == (16 + 12) + (12 + 8)
    assert t.compute_pj == pytest.approx(4.6 * 18 + 0.9 * 3)
    assert price(c, CostModel(zero_skip=True)).totals.compute_pj == pytest.approx(4.6 * 10 + 0.9 * 3)


def test_conv_fan_out_with_padding_by_value():
    conv = nn.Conv2d(1, 1, 3, padding=1, bias=False)
    x = torch.zeros(1, 1, 3, 3)
    x[0, 0, 0, 0] = x[0, 0, 1, 1] = 1.0  # a corner spike reaches 4 outputs, the centre one all 9
    with OpCounter(conv) as ops:
        conv(x)
    r = ops.layers[""]
    assert r.sops == 13 and r.dense_macs == 81 and r.fr_in == 2 / 9


def test_neuron_costs_and_histograms_by_value():
    assert neuron_cost(neurons.create("lif")) == (1, 0, 1, "LIF")
    assert neuron_cost(neurons.create("if")) == (0, 1, 1, "IF")
    assert neuron_cost(neurons.create("alif")) == (3, 0, 2, "AdaptiveLIF")
    assert neuron_cost(neurons.create("izhikevich")) == (5, 2, 2, "Izhikevich")
    assert neuron_cost(neurons.create("synaptic")) == (2, 0, 2, "Synaptic")

    class OwnLIF(neurons.models.LIF):  # a subclass is priced by its own declaration, not its parent's
        pass

    assert neuron_cost(OwnLIF()) == (1, 0, 1, "OwnLIF (assumed: 1 multiply-add per state variable)")
    for name in neurons.available("spikingjelly.*"):
        assert neuron_cost(neurons.create(name))[3] in ("IFNode", "LIFNode", "ParametricLIFNode")
        assert "assumed" not in neuron_cost(neurons.create(name))[3]
    model = TwoLayer()
    with SpikeMonitor(model) as mon:
        model(X.expand(2, 1, 4))
    h = mon.histograms(bins=2)["sn"]
    # neuron rates 1.0, 0.0, 0.5 over [0, 0.5) and [0.5, 1]; one sample with 3 spikes: one unit from 3
    assert h["rate"] == {"edges": [0.0, 0.5, 1.0], "counts": [1, 2]}
    assert h["count"] == {"edges": [3.0, 3.5, 4.0], "counts": [1, 0]}
    with pytest.raises(ValueError, match="bins"):
        mon.histograms(bins=0)


def test_cost_model_arguments_are_checked():
    c = CostModel(precision="fp16")
    assert (c.e_mac, c.e_ac, c.e_cmp, c.weight_bits, c.e_byte) == (1.5, 0.4, 0.4, 16, 1.25)
    for kwargs, name in (
        ({"precision": "fp8"}, "precision"),
        ({"e_mac": -1.0}, "e_mac"),
        ({"memory": "l3"}, "memory"),
        ({"state_bits": 0}, "state_bits"),
        ({"e_byte": float("nan")}, "e_byte"),
    ):
        with pytest.raises(ValueError, match=name):
            CostModel(**kwargs)
    with pytest.raises(ValueError, match="e_synop"):
        NeuromorphicProfile(e_synop=-2)


TINY = dict(num_classes=4, widths=(4, 8), blocks=(1, 1), stem="small", T=2, audio_channels=1, visual_channels=3)


def test_report_on_an_avnet_and_its_untrained_twin():
    model = build(**TINY)
    a, f = torch.randn(3, 1, 8, 8), torch.randn(3, 2, 3, 8, 8)
    rep = energy_report(model, a, f, CostModel(precision="fp16"))
    s, t = rep.snn.totals, rep.ann.totals
    assert s.compute_pj == pytest.approx(sum(r["compute_pj"] for r in rep.snn.layers + rep.snn.neurons))
    assert t.macs == pytest.approx(sum(r["dense_macs"] for r in rep.snn.layers) / TINY["T"])  # one ANN step
    assert all(r["input"] == "spikes" for r in rep.snn.layers if "layers." in r["name"])
    assert not rep.ann_trained and "UNTRAINED" in rep.table() and "E_MAC=1.5" in rep.table()


def test_sop_count_agrees_with_spikingjelly_counter():
    sj = pytest.importorskip("spikingjelly.activation_based.op_counter", reason="SpikingJelly not installed")
    model = build(**TINY).eval()
    a, f = torch.randn(3, 1, 8, 8), torch.randn(3, 2, 3, 8, 8)
    with torch.no_grad(), OpCounter(model, T=2) as ops:
        model(a, f)
    counter = sj.SynOpCounter()
    with torch.no_grad(), sj.DispatchCounterMode([counter]):
        model(a, f)
    ours = sum(r.sops for r in ops.layers.values())
    assert ours > 0 and ours == counter.get_total()


def test_relu_twin_keeps_the_architecture_and_drops_a_neurons_own_arguments():
    snn = build(**TINY, neuron="lif", neuron_args={"tau": 4.0, "v_threshold": 0.5})
    twin = relu_twin(snn.config, None)
    assert twin.config.neuron == "relu" and twin.config.T == 1 and twin.config.neuron_args == {"v_threshold": 0.5}
    assert twin.config.replace(neuron="lif", T=2, neuron_args=snn.config.neuron_args) == snn.config
    assert twin.state_dict().keys() == snn.state_dict().keys()


def test_the_monitor_keeps_samples_of_several_batches_apart():
    """Two batches (2 samples, then 1): three per-sample counts, each the sample's spikes (the counts of sample i
    of each batch were added up, and batches of other sizes raised); a single-step layer's calls within one
    forward (its T steps) are summed; the rate at each step is the spikes of that step over every sample (a
    single-step layer's came back as one number)."""
    import neurons

    class Steps(torch.nn.Module):  # a single-step neuron called once per step, T = 3
        def __init__(self):
            super().__init__()
            self.lif = neurons.create("lif", step_mode="s")

        def forward(self, x):
            neurons.reset(self)
            return torch.stack([self.lif(x) for _ in range(3)])

    for model, seq in ((torch.nn.Sequential(neurons.create("lif", step_mode="m")), True), (Steps(), False)):
        g = torch.Generator().manual_seed(0)
        batches = [torch.rand(3, 2, 5, generator=g) * 3, torch.rand(3, 1, 5, generator=g) * 3]
        inputs = batches if seq else [b[0] for b in batches]
        with SpikeMonitor(model) as mon:
            outs = []
            for x in inputs:
                neurons.reset(model)
                outs.append(model(x))
        (counts,) = mon.counts_per_sample().values()
        want = torch.cat([o.sum((0, 2)) for o in outs])
        assert torch.equal(counts, want) and counts.shape == (3,)
        (per_step,) = mon.firing_rates_per_step().values()  # [T]: a single-step layer's calls are its steps
        torch.testing.assert_close(per_step, torch.cat(outs, 1).mean((1, 2)))
        neurons.set_step_mode(model, "s" if seq else "m")  # what was recorded keeps its own step mode
        torch.testing.assert_close(mon.firing_rates_per_step()[next(iter(mon.records))], per_step)
    with pytest.raises(ValueError, match="nothing recorded in layer 'lif'"):
        SpikeMonitor(Steps()).spikes_per_step("lif")
