import pytest
import torch
import torch.nn.functional as F

import neurons
from snn_msi.metrics import SpikeMonitor
from snn_msi.models import FUSIONS, build

TINY = dict(num_classes=4, widths=(4, 8), blocks=(1, 1), stem="small", T=2, audio_channels=1, visual_channels=3)


def _inputs(b=3, seed=0):
    g = torch.Generator().manual_seed(seed)
    return torch.randn(b, 1, 8, 8, generator=g), torch.randn(b, 2, 3, 8, 8, generator=g)


def test_spikes_are_binary_in_every_spiking_layer():
    model = build(**TINY)
    a, f = _inputs()
    seen = {}

    def hook(name):
        def h(_m, _i, out):
            seen[name] = out.detach()

        return h

    for name, m in model.named_modules():
        if neurons.is_spiking(m):
            m.register_forward_hook(hook(name))
    model(a, f)
    assert len(seen) >= 10
    for name, s in seen.items():
        assert set(s.unique().tolist()) <= {0.0, 1.0}, name
    assert sum(float(s.sum()) for s in seen.values()) > 0


def test_output_depends_on_T():
    torch.manual_seed(0)
    m4 = build(**{**TINY, "T": 4}).eval()
    m1 = build(**{**TINY, "T": 1}).eval()
    m1.load_state_dict(m4.state_dict())
    a, f = _inputs()
    assert not torch.allclose(m4(a, f).fused, m1(a, f).fused)


def test_state_is_reset_between_samples():
    model = build(**TINY).eval()
    a, f = _inputs(2)
    first = model(a, f).fused
    assert torch.equal(first, model(a, f).fused)  # no state left from the last call
    alone = model(a[:1], f[:1]).fused
    torch.testing.assert_close(alone, first[:1])  # in eval mode a sample does not see its batch-mates


def test_gradients_reach_the_first_layer():
    model = build(**TINY)
    a, f = _inputs()
    out = model(a, f)
    (out.fused.sum() + out.audio.sum() + out.visual.sum()).backward()
    for conv in (model.audio_net.stem_conv.conv, model.visual_net.stem_conv.conv):
        assert conv.weight.grad is not None and conv.weight.grad.abs().sum() > 0


def test_concat_split_adds_up():
    model = build(**TINY)
    out = model(*_inputs())
    torch.testing.assert_close(out.fused, out.fused_audio + out.fused_visual)


def test_monitor_rates_and_zero_cost_when_off():
    model = build(**TINY)
    a, f = _inputs()
    with SpikeMonitor(model) as mon:
        model(a, f)
        rates = mon.firing_rates()
        per_step = mon.firing_rates_per_step()
    assert rates and all(0.0 <= r <= 1.0 for r in rates.values())
    assert all(v.shape == (2,) for v in per_step.values())
    assert not any(m._forward_hooks for m in model.modules())  # hooks gone after the block


def test_relu_control_and_peer_neuron_build_the_same_architecture():
    shapes = {}
    for neuron, kw in (("lif", {}), ("relu", {}), ("spikingjelly.lif", {"tau": 2.0, "v_threshold": 0.5})):
        if neuron.startswith("spikingjelly"):
            pytest.importorskip("spikingjelly", reason="SpikingJelly not installed")
        model = build(**TINY, neuron=neuron, neuron_args=kw)
        out = model(*_inputs())
        assert out.fused.shape == (3, 4)
        shapes[neuron] = {k: v.shape for k, v in model.state_dict().items()}
    assert shapes["lif"] == shapes["relu"] == shapes["spikingjelly.lif"]


def _synthetic_task(n=96, classes=4, seed=0):
    templates = torch.Generator().manual_seed(123)  # the same classes for every split
    ta, tv = torch.randn(classes, 1, 8, 8, generator=templates), torch.randn(classes, 3, 8, 8, generator=templates)
    g = torch.Generator().manual_seed(seed)
    y = torch.arange(n) % classes
    audio = ta[y] + 0.8 * torch.randn(n, 1, 8, 8, generator=g)
    frames = (tv[y] + 0.8 * torch.randn(n, 3, 8, 8, generator=g)).unsqueeze(1)
    return audio, frames, y


@pytest.mark.parametrize("fusion", sorted(FUSIONS))
def test_every_fusion_learns_a_synthetic_two_modality_task(fusion):
    torch.manual_seed(0)
    audio, frames, y = _synthetic_task()
    model = build(**TINY, fusion=fusion)
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    for _ in range(8):
        for i in range(0, len(y), 32):
            out = model(audio[i : i + 32], frames[i : i + 32])
            loss = sum(F.cross_entropy(z, y[i : i + 32]) for z in (out.fused, out.audio, out.visual))
            opt.zero_grad()
            loss.backward()
            opt.step()
    model.eval()
    test_a, test_f, test_y = _synthetic_task(seed=1)
    acc = (model(test_a, test_f).fused.argmax(1) == test_y).float().mean().item()
    assert acc > 0.5, f"{fusion}: accuracy {acc:.2f} (chance 0.25)"


def test_bad_inputs_are_named():
    model = build(**TINY)
    with pytest.raises(ValueError, match="frames must be"):
        model(torch.randn(2, 1, 8, 8), torch.randn(2, 3, 8, 8))
    with pytest.raises(ValueError, match="unknown fusion"):
        build(**TINY, fusion="attention")
    with pytest.raises(ValueError, match="unknown key.*neurons"):
        build(**TINY, neurons="lif")
    with pytest.raises(ValueError, match="neuron 'if' does not take argument.*tau"):
        build(**TINY, neuron="if", neuron_args={"tau": 2.0})
