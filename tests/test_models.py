import math

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


# -- the msi layer: a population of multisensory spiking neurons (normalisation model + threshold) ----------------
def _hand_set_msi(neuron="lif", gain=1.2, sigma=1.0, T=32):
    """One neuron, audio on input 0 and visual on input 1 (cross weights ~0), constant drive over T steps."""
    layer = FUSIONS.create(
        "msi", dim=2, num_classes=2, hidden=1, sigma=sigma, neuron=neuron, neuron_args={"v_threshold": 0.5}
    )
    with torch.no_grad():
        layer.w_a.weight = torch.tensor([[1.0, 1e-6]])  # through the parametrisation (softplus^-1)
        layer.w_v.weight = torch.tensor([[1e-6, 1.0]])
        layer.gain_raw.fill_(gain + math.log(-math.expm1(-gain)))

    def drive(x):
        return torch.tensor([x, 0.0]).expand(T, 1, 2), torch.tensor([0.0, x]).expand(T, 1, 2)

    return layer, drive


def _lif_rate(current: float, T: int) -> float:
    """Reference LIF (tau 2, decay_input, threshold 0.5, hard reset to 0) on a constant current."""
    v, spikes = 0.0, 0
    for _ in range(T):
        h = v + (current - v) / 2
        s = h >= 0.5
        spikes += s
        v = 0.0 if s else h
    return spikes / T


@pytest.mark.parametrize("x", [0.2, 0.5, 0.85, 1.5, 3.0])
def test_msi_by_value_normalisation_then_lif(x):
    layer, drive = _hand_set_msi()
    s_cm, s_a, s_v = (s.mean(0).item() for s in layer.responses(*drive(x)))
    r_alone, r_both = x**2 / (1 + x**2), (2 * x) ** 2 / (1 + (2 * x) ** 2)  # E^2 / (sigma^2 + mean E^2), H = 1
    assert s_a == pytest.approx(_lif_rate(1.2 * r_alone, 32)) and s_v == pytest.approx(s_a, abs=1e-6)
    assert s_cm == pytest.approx(_lif_rate(1.2 * r_both, 32))


def test_msi_inverse_effectiveness_from_normalisation_alone():
    """Analogue neurons (ReLU): CM / A = 4 (sigma^2 + x^2) / (sigma^2 + 4 x^2), from 4 (weak) down to 1 (strong)."""
    layer, drive = _hand_set_msi(neuron="relu", gain=1.0)
    xs = [0.05, 0.2, 0.5, 1.0, 3.0, 10.0]
    me, ai = [], []
    for x in xs:
        cm, a, v = (s.mean().item() for s in layer.responses(*drive(x)))
        assert cm / a == pytest.approx(4 * (1 + x**2) / (1 + 4 * x**2), rel=1e-4)
        me.append((cm - max(a, v)) / max(a, v))
        ai.append(cm / (a + v))
    assert all(m1 > m2 for m1, m2 in zip(me, me[1:], strict=False)) and me[0] > 2.9 and me[-1] < 0.05
    assert ai[0] > 1.9 and ai[-1] < 0.55  # super-additive when weak, sub-additive when strong


def test_msi_threshold_super_additive_when_weak_sub_additive_when_strong():
    layer, drive = _hand_set_msi()
    rates = {x: [s.mean().item() for s in layer.responses(*drive(x))] for x in (0.5, 0.85, 3.0)}
    cm, a, v = rates[0.5]
    assert a == v == 0.0 and cm > 0.3  # two sub-threshold inputs sum above threshold
    cm, a, v = rates[0.85]
    assert cm == 2 * (a + v) > 0 and (cm - a) / a == 3.0  # weak but effective: AI 2, ME 300 %
    cm, a, v = rates[3.0]
    assert cm == a == v == 1.0  # saturated: CM = max(A, V) < A + V


def test_msi_synapses_stay_excitatory_and_alone_means_absent():
    torch.manual_seed(0)
    layer = FUSIONS.create("msi", dim=6, num_classes=3, neuron="lif", neuron_args={"v_threshold": 0.5})
    opt = torch.optim.SGD(layer.parameters(), lr=5.0)
    a, v = torch.rand(4, 8, 6), torch.rand(4, 8, 6)
    for _ in range(3):  # large steps that push weights down
        opt.zero_grad()
        layer(a, v)[0].sum().backward()
        opt.step()
    assert bool((layer.w_a.weight >= 0).all()) and bool((layer.w_v.weight >= 0).all())
    fused, out_a, out_v = layer(a, v)
    torch.testing.assert_close(out_a, layer(a, torch.zeros_like(v))[0])  # audio alone = visual stream silent
    torch.testing.assert_close(out_v, layer(torch.zeros_like(a), v)[0])
    s, _, _ = layer.responses(torch.zeros_like(a), torch.zeros_like(v))
    assert s.sum() == 0  # no input, no drive, no spikes


def test_msi_monitors_and_counters_see_the_inference_pass_only():
    from snn_msi.metrics.energy import OpCounter

    layer = FUSIONS.create("msi", dim=6, num_classes=3, neuron="lif")
    with SpikeMonitor(layer) as mon, OpCounter(layer) as ops:
        layer(torch.rand(4, 5, 6), torch.rand(4, 5, 6))
        assert len(mon.records["neurons"]) == 1
        assert ops.layers["head"].calls == ops.layers["w_a"].calls == 1


@pytest.mark.parametrize("neuron", list(neurons.available()))
def test_msi_runs_and_passes_gradients_with_every_neuron(neuron):
    from snn_msi.models import PAPER_NEURON_ARGS

    torch.manual_seed(0)
    layer = FUSIONS.create("msi", dim=6, num_classes=3, neuron=neuron, neuron_args=dict(PAPER_NEURON_ARGS))
    outs = layer(torch.rand(4, 5, 6), torch.rand(4, 5, 6))
    assert all(o.shape == (4, 5, 3) and bool(torch.isfinite(o).all()) for o in outs)
    sum(o.sum() for o in outs).backward()
    assert all(p.grad is not None and bool(torch.isfinite(p.grad).all()) for p in layer.head.parameters())


def test_bn_product_absent_stream_leaves_running_statistics_alone():
    torch.manual_seed(0)
    layer = FUSIONS.create("bn_product", dim=6, num_classes=3, neuron="lif")
    twin = FUSIONS.create("bn_product", dim=6, num_classes=3, neuron="lif")
    twin.load_state_dict(layer.state_dict())
    a, v = torch.rand(4, 5, 6), torch.rand(4, 5, 6)
    layer(a, v)
    twin._bn(twin.bn_v, twin.w_v(v))  # the one real update of the visual BN
    torch.testing.assert_close(layer.bn_v.running_mean, twin.bn_v.running_mean)
    layer.eval()
    _, dv = layer.drives(a, v)
    bn = layer.bn_a
    bn0 = (0 - bn.running_mean) / (bn.running_var + bn.eps).sqrt() * bn.weight + bn.bias
    torch.testing.assert_close(layer.current(None, dv), bn0 + dv)  # batch norm turns "absent" into BN(0), not 0


def _current(layer, a, v):
    da, dv = layer.drives(a, v)
    return layer.current(da, dv), layer.current(da, None), layer.current(None, dv)


@pytest.mark.parametrize(
    "options", [{"learn_exponent": True}, {"bias": True}, {"dominance": True}, {"pool": 16}, {"exponent": 1.5}]
)
def test_msi_options_start_as_the_plain_layer_and_learn(options):
    """Each option of the msi layer: at initialisation the same currents as the plain layer with the same weights
    (a learned exponent starts at ``exponent``, the bias at 0, the dominance weights at 1, one pool of H is the
    population); its new parameters get gradients."""
    a, v = torch.rand(4, 3, 16), torch.rand(4, 3, 16)
    torch.manual_seed(0)
    plain = FUSIONS.create("msi", dim=16, num_classes=3, exponent=options.get("exponent", 2.0))
    torch.manual_seed(0)
    with_option = FUSIONS.create("msi", dim=16, num_classes=3, **options)
    for x, y in zip(_current(with_option, a, v), _current(plain, a, v), strict=True):
        assert torch.allclose(x, y, rtol=1e-5, atol=1e-7)
    new = {n for n, _ in with_option.named_parameters()} - {n for n, _ in plain.named_parameters()}
    with_option(a, v)[0].sum().backward()
    grads = {n: p.grad for n, p in with_option.named_parameters() if n in new}
    assert all(g is not None and torch.isfinite(g).all() for g in grads.values())
    assert bool(new) == any(k in options for k in ("learn_exponent", "bias", "dominance"))


def test_msi_pools_normalise_within_their_group_by_value():
    """Two pools of 2 neurons: each neuron's drive is divided by its own group's mean of E^n (n = 2)."""
    layer = FUSIONS.create("msi", dim=4, num_classes=2, pool=2, sigma=0.5, neuron="relu")
    e = torch.tensor([[[1.0, 3.0, 0.0, 2.0]]])  # [T, B, H]
    got = layer.current(e, None) / layer.gain
    pooled = torch.tensor([5.0, 5.0, 2.0, 2.0])  # (1 + 9) / 2, (0 + 4) / 2
    assert torch.allclose(got, e**2 / (0.25 + pooled), rtol=1e-5)
    with pytest.raises(ValueError, match="pool must divide"):
        FUSIONS.create("msi", dim=4, num_classes=2, pool=3)


@pytest.mark.parametrize("fusion", FUSIONS.names())
def test_every_fusion_takes_its_options_from_the_config(fusion):
    """``model.fusion_args``: each fusion's own options (at their defaults here) build the same layer; the model's
    own arguments and unknown ones are one-line errors naming them."""
    import inspect

    from neurons.registry import accepted_arguments
    from snn_msi.models.avnet import FUSION_FROM_MODEL
    from snn_msi.schema import ConfigError

    options = {
        k: v
        for k, v in accepted_arguments(FUSIONS.get(fusion).factory)[0].items()
        if k not in FUSION_FROM_MODEL and v is not inspect.Parameter.empty
    }
    kw = dict(num_classes=3, widths=(4,), blocks=(1,), stem="small", T=1, audio_channels=1, visual_channels=1)
    torch.manual_seed(0)
    given = build(fusion=fusion, fusion_args=options, **kw)
    torch.manual_seed(0)
    default = build(fusion=fusion, **kw)
    assert {k: p.shape for k, p in given.state_dict().items()} == {k: p.shape for k, p in default.state_dict().items()}
    with pytest.raises(ConfigError, match="fusion_args: .*does not take argument.*nonsense"):
        build(fusion=fusion, fusion_args={"nonsense": 1}, **kw)
    with pytest.raises(ConfigError, match="fusion_args: dim come from the model"):
        build(fusion=fusion, fusion_args={"dim": 3}, **kw)
