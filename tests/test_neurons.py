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


def _backends(name):
    """The backends a test runs ``name`` on: the PyTorch path and the default (fused where one exists)."""
    return ("torch", "auto") if "backend" in neurons.defaults(name) else (None,)


def _make(name, backend, **kw):
    return neurons.create(name, **kw, **({"backend": backend} if backend else {}))


@pytest.mark.parametrize("dtype", [torch.bfloat16, torch.float16])
@pytest.mark.parametrize("step_mode", ["s", "m"])
@pytest.mark.parametrize("name", neurons.available())
def test_output_keeps_the_input_dtype_so_a_half_precision_model_runs(name, step_mode, dtype):
    """Spikes come back in the input's dtype (snnTorch's came back in float32: the next bf16 layer failed)."""
    x = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(0)).to(dtype) * 2
    model = nn.Sequential(nn.Linear(4, 4), neurons.create(name, step_mode=step_mode), nn.Linear(4, 2)).to(dtype)
    assert model[1](x).dtype == dtype
    neurons.reset(model)
    assert model(x).dtype == dtype


@pytest.mark.parametrize("name", neurons.available())
def test_a_deep_copy_mid_training_has_the_state_values_without_the_graph(name):
    """``copy.deepcopy(model)`` after a forward pass with gradients (an EMA or best-model copy): it failed on
    every neuron (a state inside a graph); the copy's state has the same values, no graph, and the original still
    back-propagates through its own."""
    import copy

    model = nn.Sequential(nn.Linear(4, 4), neurons.create(name, step_mode="m"))
    x = torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(0)) * 2
    y = model(x)
    twin = copy.deepcopy(model)
    (state,), (copied,) = neurons.get_state(model).values(), neurons.get_state(twin).values()
    assert state.keys() == copied.keys()
    for k, v in state.items():
        if isinstance(v, torch.Tensor):
            assert torch.equal(copied[k], v) and copied[k].grad_fn is None and copied[k] is not v
    y.sum().backward()
    assert model[0].weight.grad is not None and twin[0].weight.grad is None
    assert torch.equal(twin(x), model(x))  # each goes on from the same state


@pytest.mark.parametrize("name", neurons.available())
def test_get_state_and_set_state_replay_a_chunk(name):
    """``neurons.get_state`` / ``set_state``: back to the state after the first chunk, the second chunk gives
    the same output again; an unknown neuron or state name is one error."""
    for backend in _backends(name):
        model = nn.Sequential(nn.Linear(4, 4), _make(name, backend, step_mode="m"))
        x = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(0)) * 2
        model(x[:3])
        saved = {
            m: {k: v.clone() if isinstance(v, torch.Tensor) else v for k, v in s.items()}
            for m, s in neurons.get_state(model).items()
        }
        want = model(x[3:])
        neurons.set_state(model, saved)
        assert torch.equal(model(x[3:]), want)
    with pytest.raises(ValueError, match="no neuron named"):
        neurons.set_state(model, {"0": {}})
    with pytest.raises(ValueError, match="takes its whole state"):
        neurons.set_state(model, {"1": {"nope": None}})
    if len(saved["1"]) > 1:  # a part of the state (ALIF's a alone) would be dropped by a fresh neuron's first step
        with pytest.raises(ValueError, match="takes its whole state"):
            neurons.set_state(model, {"1": dict(list(saved["1"].items())[1:])})
    neurons.set_state(model, {"1": dict.fromkeys(saved["1"])})  # None everywhere: fresh again
    fresh = nn.Sequential(nn.Linear(4, 4), neurons.create(name, step_mode="m"))
    fresh.load_state_dict(model.state_dict())
    assert torch.equal(model(x[3:]), fresh(x[3:]))


@pytest.mark.parametrize("name", neurons.available())
def test_checkpoint_gives_the_gradients_of_the_plain_run(name):
    """``neurons.checkpoint`` over chunks of a sequence whose state carries over: the gradients of the plain run
    (``torch.utils.checkpoint`` recomputes from the state its forward left: wrong by up to 4.5 on synaptic, or an
    error, on most neurons), the state and the stored membrane (``v_seq``) the plain run ends with, and a
    SpikeMonitor that counts each batch once (the recompute is not a batch)."""
    from snn_msi.metrics import SpikeMonitor

    stores = "store_v_seq" in neurons.defaults(name)
    for backend in _backends(name):
        grads, states, counts = [], [], []
        for ck in (False, True):
            torch.manual_seed(0)
            kw = {"store_v_seq": True} if stores else {}
            model = nn.Sequential(nn.Linear(4, 6), _make(name, backend, step_mode="m", **kw), nn.Linear(6, 3))
            x = (torch.randn(8, 2, 4) * 2).requires_grad_()
            with SpikeMonitor(model) as mon:
                out = torch.cat([neurons.checkpoint(model, c) if ck else model(c) for c in x.split(4)])
                out.pow(2).sum().backward()
            grads.append([x.grad, *(p.grad for p in model.parameters())])
            states.append({**neurons.get_state(model)["1"], "v_seq": getattr(model[1], "v_seq", None)})
            counts.append(mon.counts_per_sample())
        for a, b in zip(*grads, strict=True):
            torch.testing.assert_close(a, b, rtol=1e-5, atol=1e-6)
        for k, v in states[0].items():
            assert (v is None and states[1][k] is None) or torch.equal(torch.as_tensor(states[1][k]), v), k
        assert counts[0].keys() == counts[1].keys()
        assert all(torch.equal(counts[0][k], counts[1][k]) for k in counts[0])


def test_checkpoint_takes_the_blocks_arguments_and_any_stateful_module():
    """Keyword arguments go to the block (torch's own to torch); a SpikingJelly node used directly (not through
    our wrapper) is kept right too; a function is refused in one line."""
    sj = pytest.importorskip("spikingjelly.activation_based.neuron")

    class Block(nn.Module):
        def __init__(self):
            super().__init__()
            self.fc, self.node = nn.Linear(4, 4), sj.LIFNode(step_mode="m")

        def forward(self, x, scale=1.0):
            return self.node(self.fc(x) * scale)

    grads = []
    for ck in (False, True):
        torch.manual_seed(0)
        block, x = Block(), (torch.randn(8, 2, 4) * 2).requires_grad_()
        out = [neurons.checkpoint(block, c, scale=3.0) if ck else block(c, scale=3.0) for c in x.split(4)]
        torch.cat(out).pow(2).sum().backward()
        grads.append(x.grad)
    torch.testing.assert_close(grads[0], grads[1])
    with pytest.raises(TypeError, match="block must be an nn.Module"):
        neurons.checkpoint(lambda t: t, torch.zeros(1))
    with pytest.raises(ValueError, match="use_reentrant=True would drop the gradient through the state"):
        neurons.checkpoint(block, x[:4], use_reentrant=True)  # it lost 0.01 of a LIF's input gradient


def test_a_kernel_backend_on_a_neuron_no_kernel_runs_is_refused_when_built():
    """``backend="cpu"`` on ALIF (dynamics no kernel has) or with a surrogate that changes the gradient: refused
    at construction (it was at the first multi-step call)."""

    class Mine(neurons.surrogate.Sigmoid):
        def derivative(self, x):
            return torch.ones_like(x)

    for name, kw in (("alif", {}), ("lif", {"surrogate": Mine()})):
        with pytest.raises(ValueError, match="backend='cpu' cannot run it"):
            neurons.create(name, backend="cpu", **kw)
        neurons.create(name, backend="torch", **kw)


def test_plif_does_not_read_its_tau_in_a_step(monkeypatch):
    """ParametricLIF's leak takes ``k = sigmoid(w)``; reading ``tau`` (a host sync on a GPU, a graph break under
    ``torch.compile``) every step was waste."""

    def no_read(self):
        raise AssertionError("tau read in a step")

    monkeypatch.setattr(neurons.ParametricLIF, "tau", property(no_read))
    for step_mode, x in (("s", torch.rand(2, 3)), ("m", torch.rand(4, 2, 3))):
        for backend in ("torch", "auto"):
            neurons.create("plif", step_mode=step_mode, backend=backend)(x)


@pytest.mark.parametrize("name", neurons.available())
def test_a_whole_model_pickles_on_every_neuron(name):
    """``torch.save(model)`` (the whole module, not its state_dict) mid-sequence and back: the same next output
    (snnTorch's own surrogates are closures, which do not pickle: it failed on ``snntorch.*``)."""
    import io

    model = nn.Sequential(nn.Linear(4, 4), neurons.create(name, step_mode="m"))
    x = torch.rand(6, 2, 4, generator=torch.Generator().manual_seed(0)) * 2
    with torch.no_grad():
        model(x[:3])
    buf = io.BytesIO()
    torch.save(model, buf)
    buf.seek(0)
    loaded = torch.load(buf, weights_only=False)  # a whole module is code: only from a file you trust
    with torch.no_grad():
        assert torch.equal(loaded(x[3:]), model(x[3:]))


@pytest.mark.parametrize("name", neurons.available())
def test_training_goes_on_from_a_state_left_by_inference_mode(name):
    """A ``torch.inference_mode()`` pass, then a training step without ``reset()``: every backend goes on from
    that state as the PyTorch path does (the fused kernels raised 'Inference tensors cannot be saved')."""
    out = {}
    for backend in _backends(name):
        n = _make(name, backend, step_mode="m")
        with torch.inference_mode():
            n(torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(0)) * 2)
        x = (torch.rand(3, 2, 4, generator=torch.Generator().manual_seed(1)) * 2).requires_grad_()
        out[backend] = n(x)
        out[backend].sum().backward()
        assert x.grad is not None
    assert all(torch.equal(o, out[next(iter(out))]) for o in out.values())
