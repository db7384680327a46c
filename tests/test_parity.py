"""Our LIF / IF against the peers' own modules: spikes identical, membrane and gradients to float32 tolerance."""

import pytest
import torch

import neurons

sj = pytest.importorskip("spikingjelly.activation_based", reason="SpikingJelly not installed (make test installs it)")
snntorch = pytest.importorskip("snntorch", reason="snnTorch not installed (make test installs it)")
from spikingjelly.activation_based import neuron as sj_neuron  # noqa: E402
from spikingjelly.activation_based import surrogate as sj_surrogate  # noqa: E402

T, B, N = 8, 4, 257


def _run(module, x, step_mode):
    if step_mode == "m":
        return module(x)
    return torch.stack([module(xt) for xt in x])


@pytest.mark.parametrize("node", ["lif", "if"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize("decay_input", [True, False])
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_against_spikingjelly(node, reset, step_mode, decay_input, backend):
    if node == "if" and not decay_input:
        pytest.skip("IF has no decay_input")
    torch.manual_seed(1)
    x = (torch.randn(T, B, N) * 0.8 + 0.4).requires_grad_(True)
    kw = dict(v_threshold=0.5, v_reset=0.0 if reset == "hard" else None, detach_reset=False, step_mode=step_mode)
    sg_ref = sj_surrogate.ATan(alpha=2.0)
    if node == "lif":
        ref = sj_neuron.LIFNode(tau=3.0, decay_input=decay_input, surrogate_function=sg_ref, **kw)
        ours = neurons.create(
            "lif",
            tau=3.0,
            decay_input=decay_input,
            v_threshold=0.5,
            reset=reset,
            surrogate="atan",
            alpha=2.0,
            step_mode=step_mode,
            backend=backend,
        )
    else:
        ref = sj_neuron.IFNode(surrogate_function=sg_ref, **kw)
        ours = neurons.create(
            "if",
            v_threshold=0.5,
            reset=reset,
            surrogate="atan",
            alpha=2.0,
            step_mode=step_mode,
            backend=backend,
        )
    s_ref = _run(ref, x, step_mode)
    s_ours = _run(ours, x, step_mode)
    assert torch.equal(s_ref, s_ours)
    assert s_ours.sum() > 0 and s_ours.mean() < 0.9
    torch.testing.assert_close(ours.v, ref.v, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(s_ref)
    (gx_ref,) = torch.autograd.grad((s_ref * g).sum(), x)
    (gx_ours,) = torch.autograd.grad((s_ours * g).sum(), x)
    torch.testing.assert_close(gx_ours, gx_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("reset", ["hard", "soft"])
@pytest.mark.parametrize("step_mode", ["m", "s"])
@pytest.mark.parametrize("tau", [2.0, 4.0])
@pytest.mark.parametrize("backend", ["torch", "auto"])
def test_against_snntorch_leaky(reset, step_mode, tau, backend):
    # snnTorch's Leaky: mem = beta * mem + x; beta = 1 - 1/tau. With reset_delay=False it resets in the step
    # that fires, as ours does; inputs stay below 2 * threshold so no post-reset membrane is above threshold
    # (where snnTorch applies a second, delayed reset).
    torch.manual_seed(2)
    x = (torch.rand(T, B, N) * 1.5 - 0.5).requires_grad_(True)
    ref = snntorch.Leaky(
        beta=1.0 - 1.0 / tau,
        threshold=1.0,
        spike_grad=snntorch.surrogate.atan(alpha=2.0),
        reset_mechanism="subtract" if reset == "soft" else "zero",
        reset_delay=False,
    )
    ours = neurons.create(
        "lif",
        tau=tau,
        decay_input=False,
        v_threshold=1.0,
        reset=reset,
        surrogate="atan",
        alpha=2.0,
        step_mode=step_mode,
        backend=backend,
    )
    ref.reset_mem()
    s_ref = torch.stack([ref(xt)[0] for xt in x])
    s_ours = _run(ours, x, step_mode)
    assert torch.equal(s_ref, s_ours)
    assert s_ours.sum() > 0
    torch.testing.assert_close(ours.v, ref.mem, rtol=1e-6, atol=1e-6)
    g = torch.randn_like(s_ref)
    (gx_ref,) = torch.autograd.grad((s_ref * g).sum(), x)
    (gx_ours,) = torch.autograd.grad((s_ours * g).sum(), x)
    torch.testing.assert_close(gx_ours, gx_ref, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize(
    "peer, ours, kw",
    [
        ("spikingjelly.lif", "lif", dict(tau=2.0, v_threshold=0.5)),
        ("spikingjelly.if", "if", dict(v_threshold=0.5, reset="soft")),
        ("spikingjelly.plif", "plif", dict(init_tau=2.0, v_threshold=0.5)),
        ("snntorch.leaky", "lif", dict(tau=2.0, decay_input=False, reset="soft")),
    ],
)
def test_adapters_swap_by_name(peer, ours, kw):
    x = torch.rand(T, B, 33) * 1.2 - 0.2
    a = neurons.create(peer, step_mode="m", **kw)
    b = neurons.create(ours, step_mode="m", **kw)  # the same arguments, by the same names
    first = a(x)
    assert torch.equal(first, b(x)) and first.sum() > 0
    neurons.reset(a)  # the peer's state is forgotten: the same input gives the same spikes again
    assert torch.equal(a(x), first)


def test_snntorch_synaptic_adapter_runs_in_both_step_modes():
    x = torch.rand(T, B, 9) * 1.2
    m = neurons.create("snntorch.synaptic", tau=2.0, tau_syn=4.0, step_mode="m")
    s = neurons.create("snntorch.synaptic", tau=2.0, tau_syn=4.0, step_mode="s")
    out = m(x)
    assert out.shape == x.shape and set(out.unique().tolist()) <= {0.0, 1.0} and out.sum() > 0
    assert torch.equal(out, torch.stack([s(xt) for xt in x]))


def test_adapter_rejects_what_peer_cannot_do():
    with pytest.raises(ValueError, match="decay_input"):
        neurons.create("snntorch.leaky", decay_input=True)
    with pytest.raises(ValueError, match="unknown surrogate 'triangel'.*Did you mean 'triangle'"):
        neurons.create("spikingjelly.lif", surrogate="triangel")


PEERS = list(neurons.available("spikingjelly.*")) + list(neurons.available("snntorch.*"))


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("sg", neurons.surrogate.available())
def test_every_surrogate_works_with_every_peer(peer, sg):
    """The surrogate's derivative reaches the input: one step, a neuron at distance d from its threshold gets
    dL/dx = dh/dx * surrogate'(d) from the peer, the same formula as ours (same alpha)."""
    n = neurons.create(peer, surrogate=sg, alpha=1.5, v_threshold=1.0, step_mode="m")
    x = torch.tensor([[[0.7, 1.1, 1.4]]], requires_grad=True)  # T=1, B=1, 3 neurons, v0 = 0
    n(x).sum().backward()
    # snnTorch and SpikingJelly's IF add x unscaled; SpikingJelly's LIF / PLIF (tau 2) add x / tau
    dh_dx = 1.0 if peer.startswith("snntorch") or peer == "spikingjelly.if" else 0.5
    h = x.detach() * dh_dx
    expected = dh_dx * neurons.surrogate.get(sg, 1.5).derivative(h - 1.0)
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("peer", PEERS)
@pytest.mark.parametrize("sg", neurons.surrogate.available())
def test_a_peer_takes_a_surrogates_default_alpha_and_stays_finite_far_below_threshold(peer, sg):
    """``surrogate=NAME`` without ``alpha`` is the same function on a peer as on ours (snnTorch's sigmoid had slope
    25 against 4), and a membrane far below threshold gets a finite gradient (snnTorch's own sigmoid gave NaN)."""
    n = neurons.create(peer, surrogate=sg, v_threshold=1.0, step_mode="m")
    x = torch.tensor([[[-8.0, 0.7, 1.1]]], requires_grad=True)
    n(x).sum().backward()
    dh_dx = 1.0 if peer.startswith("snntorch") or peer == "spikingjelly.if" else 0.5
    expected = dh_dx * neurons.surrogate.get(sg).derivative(x.detach() * dh_dx - 1.0)
    assert torch.isfinite(x.grad).all()
    torch.testing.assert_close(x.grad, expected, rtol=1e-5, atol=1e-6)


COUNTERPARTS = {"spikingjelly.lif": "lif", "spikingjelly.if": "if", "spikingjelly.plif": "plif"}
COUNTERPARTS |= {"snntorch.leaky": "lif", "snntorch.synaptic": "synaptic"}


@pytest.mark.parametrize("peer", PEERS)
def test_a_peer_takes_its_counterparts_argument_names_and_surrogate_objects(peer):
    """Every argument of a peer is one of our counterpart's, by the same name (``plif``'s ``init_tau``), so a
    swap keeps the arguments; one it has no use for is refused, not ignored; a Surrogate object is taken."""
    assert set(neurons.defaults(peer)) <= set(neurons.defaults(COUNTERPARTS[peer])), peer
    unused = {"spikingjelly.if": "tau", "snntorch.leaky": "tau_syn"}.get(peer)
    if unused:
        with pytest.raises(ValueError, match=f"does not take argument\\(s\\) {unused}"):
            neurons.create(peer, **{unused: 3.0})
    sg = neurons.surrogate.get("atan", 3.0)
    x = torch.tensor([[[0.7, 1.1]]], requires_grad=True)
    neurons.create(peer, surrogate=sg, step_mode="m")(x).sum().backward()
    dh_dx = 1.0 if peer.startswith("snntorch") or peer == "spikingjelly.if" else 0.5
    torch.testing.assert_close(x.grad, dh_dx * sg.derivative(x.detach() * dh_dx - 1.0))
