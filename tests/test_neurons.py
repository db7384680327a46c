import pytest
import torch
from torch import nn

import neurons

OWN = ["if", "lif", "plif", "alif", "izhikevich", "synaptic"]


def test_available_lists_own_models_and_peers():
    names = neurons.available()
    assert set(OWN) <= set(names) and "relu" in names
    assert all(isinstance(d, str) and d for d in names.values())
    assert "NOT SPIKING" in names["relu"]
    pytest.importorskip("spikingjelly", reason="peer not installed")
    pytest.importorskip("snntorch", reason="peer not installed")
    assert {"spikingjelly.lif", "spikingjelly.if", "snntorch.leaky"} <= set(names)
    assert set(neurons.available("snntorch.*")) == {n for n in names if n.startswith("snntorch.")}


def test_unknown_name_and_bad_kwargs_are_clear():
    with pytest.raises(ValueError, match="Did you mean 'lif'"):
        neurons.create("lfi")
    with pytest.raises(ValueError, match="does not take argument.*taux.*valid:.*tau"):
        neurons.create("lif", taux=2.0)


@pytest.mark.parametrize(
    "kwargs, param",
    [
        ({"tau": 0.0}, "tau"),
        ({"tau": -1.0}, "tau"),
        ({"v_threshold": 0.0}, "v_threshold"),
        ({"tau": "x"}, "tau"),
    ],
)
def test_numerics_guarded(kwargs, param):
    with pytest.raises((ValueError, TypeError), match=param):
        neurons.create("lif", **kwargs)


def test_nan_input_rejected():
    lif = neurons.create("lif", step_mode="m")
    x = torch.rand(4, 2, 3)
    x[1, 0, 0] = float("nan")
    with pytest.raises(ValueError, match="NaN"):
        lif(x)


@pytest.mark.parametrize("name", OWN + ["relu"])
@pytest.mark.parametrize("reset", ["hard", "soft"])
def test_single_and_multi_step_agree(name, reset):
    if name in ("izhikevich",) and reset == "soft":
        pytest.skip("Izhikevich has only its own hard reset")
    kw = {} if name == "relu" else {"reset": reset}
    x = torch.rand(6, 3, 5) * 2.0
    m = neurons.create(name, step_mode="m", **kw)
    s = neurons.create(name, step_mode="s", **kw)
    y_m = m(x)
    y_s = torch.stack([s(xt) for xt in x])
    assert torch.equal(y_m, y_s)
    if name != "relu":
        assert set(y_m.unique().tolist()) <= {0.0, 1.0}


def test_state_persists_and_reset_forgets():
    lif = neurons.create("lif", tau=2.0, v_threshold=0.5, step_mode="s")
    x = torch.full((1,), 0.6)
    out = [lif(x).item() for _ in range(4)]
    assert out[0] == 0.0 and 1.0 in out  # integrates over calls
    lif.reset()
    assert lif(x).item() == 0.0


def test_reset_helper_walks_model():
    model = nn.Sequential(nn.Linear(3, 3), neurons.create("lif"), nn.Linear(3, 3), neurons.create("alif"))
    model(torch.rand(2, 3))
    assert model[1].v is not None and model[3].a is not None
    neurons.reset(model)
    assert model[1].v is None and model[3].v is None and model[3].a is None


def test_reset_modes():
    x = torch.tensor([[1.5], [0.0]])
    for reset, v_after in (("hard", 0.0), ("soft", 0.5), ("none", 1.5)):
        n = neurons.create("if", reset=reset, v_threshold=1.0, step_mode="m")
        n(x[:1])
        assert n.v.item() == pytest.approx(v_after)


def test_decay_input():
    a = neurons.create("lif", tau=4.0, decay_input=True)
    b = neurons.create("lif", tau=4.0, decay_input=False)
    a(torch.tensor([0.4]))
    b(torch.tensor([0.4]))
    assert a.v.item() == pytest.approx(0.1) and b.v.item() == pytest.approx(0.4)


def test_detach_reset_changes_gradient():
    x = torch.rand(8, 64) * 1.5
    grads = []
    for detach in (False, True):
        xr = x.clone().requires_grad_(True)
        n = neurons.create("lif", detach_reset=detach, step_mode="m", backend="torch")
        n(xr).sum().backward()
        grads.append(xr.grad)
    assert not torch.allclose(grads[0], grads[1])


def test_plif_learns_tau():
    n = neurons.create("plif", init_tau=2.0, step_mode="m")
    assert n.tau == pytest.approx(2.0)
    n(torch.rand(4, 16) * 2).sum().backward()
    assert n.w.grad is not None and n.w.grad.abs().item() > 0


def test_alif_threshold_adapts():
    n = neurons.create("alif", tau=1.0, beta=0.5, tau_adapt=5.0, step_mode="m")
    x = torch.full((20, 1), 1.2)
    s = n(x)
    plain = neurons.create("lif", tau=1.0, step_mode="m")(x)
    # constant drive: the plain LIF fires every step; after each spike the adaptive threshold silences some
    assert plain.sum() == 20 and s[0].item() == 1.0 and s[1].item() == 0.0
    assert 2 <= s.sum() < 20 and n.a.item() > 0.3


def test_izhikevich_regular_spiking():
    n = neurons.create("izhikevich", step_mode="m")
    s = n(torch.full((200, 1), 1.0))  # 10 pA after input_scale
    assert 2 <= s.sum().item() <= 30
    assert n.v.item() <= 30.0
    with pytest.raises(ValueError, match="v_reset"):
        neurons.create("izhikevich", v_reset=-70.0)


def test_gradients_reach_input_through_surrogate():
    for name in OWN:
        x = (torch.rand(4, 2, 8) * 2).requires_grad_(True)
        neurons.create(name, step_mode="m")(x).sum().backward()
        assert x.grad is not None and x.grad.abs().sum() > 0, name


def test_set_step_mode():
    model = nn.Sequential(neurons.create("lif"), neurons.create("if"))
    neurons.set_step_mode(model, "m")
    assert model(torch.rand(3, 2, 4)).shape == (3, 2, 4)
    with pytest.raises(ValueError, match="step_mode"):
        neurons.set_step_mode(model, "x")


def test_multi_step_needs_time_axis():
    with pytest.raises(ValueError, match=r"\[T, B"):
        neurons.create("lif", step_mode="m")(torch.rand(5))


def test_a_factory_registered_with_kwargs_gets_the_shared_arguments():
    """``def f(**kw): return LIF(tau=3, **kw)`` registered as a neuron: ``create`` passes ``v_threshold``,
    ``step_mode`` and ``surrogate`` through (it dropped them, silently, as arguments the neuron does not take)."""
    from neurons.catalog import NEURONS

    @neurons.register("lif_tau3_test")
    def lif_tau3(**kwargs):
        return neurons.LIF(tau=3.0, **kwargs)

    try:
        n = neurons.create("lif_tau3_test", v_threshold=0.5, step_mode="m", surrogate="sigmoid")
        assert (n.v_threshold, n.step_mode, n.surrogate.name, n.tau) == (0.5, "m", "sigmoid", 3.0)
    finally:
        NEURONS._entries.pop("lif_tau3_test")  # the registry is global: leave it as the package ships it


@pytest.mark.parametrize("name", neurons.available())
def test_defaults_say_what_create_builds(name):
    """``neurons.defaults(name)`` is what ``create(name)`` uses (synaptic's said reset 'hard' and built 'soft')."""
    built, said = neurons.create(name), neurons.defaults(name)
    for arg, attr in (("reset", "reset_mode"), ("v_threshold", "v_threshold"), ("tau", "tau")):
        if arg in said and hasattr(built, attr) and not isinstance(getattr(built, attr), nn.Module):
            assert getattr(built, attr) == said[arg], (arg, getattr(built, attr), said[arg])


@pytest.mark.parametrize("backend", ["auto", "torch"])
@pytest.mark.parametrize("name", neurons.available())
def test_a_batch_of_another_size_without_reset_is_an_error_on_every_backend(name, backend):
    """State from a batch of 8, then a batch of 5 without ``reset()``: the documented ValueError on every path
    (the fused ones restarted silently from rest), and after ``reset()`` it runs."""
    kw = {"backend": backend} if "backend" in neurons.defaults(name) else {}
    if (not kw and backend != "auto") or neurons.info(name).kind == "analogue":
        pytest.skip(f"{name} has no backend argument or no state")
    n = neurons.create(name, step_mode="m", **kw)
    n(torch.rand(3, 8, 4))
    with pytest.raises(ValueError, match="holds state of shape"):
        n(torch.rand(3, 5, 4))
    neurons.reset(n)
    assert n(torch.rand(3, 5, 4)).shape == (3, 5, 4)


@pytest.mark.parametrize("name", [n for n in neurons.available() if neurons.info(n).kind == "spiking"])
def test_copies_and_replicas_reset_themselves(name):
    """``copy.copy`` and DataParallel's replica of a neuron step with their own state (the reset was a method
    bound to the original: ALIF's soft reset then failed), and a ``reset_mode`` changed after construction takes
    effect on the PyTorch path as on the fused one."""
    import copy

    if "reset" in neurons.defaults(name) and name != "izhikevich":
        n = neurons.create(name, step_mode="m", reset="soft")
    else:
        n = neurons.create(name, step_mode="m")
    x = torch.rand(4, 2, 3, generator=torch.Generator().manual_seed(0)) * 3
    want = n(x)
    replica = n._replicate_for_data_parallel()  # what nn.parallel.replicate makes, then gives the parameters
    replica._parameters.update(n._parameters)
    for other in (copy.copy(n), replica):
        neurons.reset(other)
        assert torch.equal(other(x), want)
    if "backend" in neurons.defaults(name):
        out = {}
        for backend in ("torch", "auto"):
            m = neurons.create(name, step_mode="m", backend=backend)
            m.reset_mode = "none"  # no reset: every step after the first crossing fires
            out[backend] = m(x)
        assert torch.equal(out["torch"], out["auto"])


@pytest.mark.parametrize("name", [n for n in neurons.available() if neurons.info(n).kind != "analogue"])
def test_detach_cuts_the_graph_between_chunks_and_keeps_the_state(name):
    """``neurons.detach(model)`` between two chunks of a sequence: the same spikes as one pass over it, and the
    second chunk's loss no longer reaches the first chunk's input (truncated BPTT)."""
    x = torch.rand(6, 2, 3, generator=torch.Generator().manual_seed(0)) * 3
    want = neurons.create(name, step_mode="m")(x)
    n = neurons.create(name, step_mode="m")
    first = x[:3].clone().requires_grad_()
    out = [n(first)]
    neurons.detach(n)
    second = x[3:].clone().requires_grad_()
    out.append(n(second))
    assert torch.equal(torch.cat(out), want)
    out[1].sum().backward()
    assert first.grad is None and second.grad is not None


def test_a_registration_run_again_replaces_itself_and_another_factory_is_refused():
    """A notebook cell that registers a neuron, run twice: the second definition replaces the first (it raised
    'already registered'); another factory under a taken name is still refused."""
    from neurons.catalog import NEURONS

    def cell():
        @neurons.register("again_test")
        class Again(neurons.LIF):
            """A LIF registered from a cell."""

        return Again

    try:
        first, second = cell(), cell()
        assert first is not second and neurons.info("again_test").factory is second
        with pytest.raises(ValueError, match="'again_test' is already registered"):
            neurons.register("again_test")(neurons.LIF)
        with pytest.raises(ValueError, match="'lif' is already registered"):
            neurons.register("lif")(second)
    finally:
        NEURONS._entries.pop("again_test")


@pytest.mark.parametrize("name", neurons.available())
def test_a_neuron_name_in_another_case_is_the_same_neuron(name):
    """``create("LIF")`` is ``create("lif")``, as surrogate names already were."""
    assert type(neurons.create(name.upper())) is type(neurons.create(name))
