"""NIR export and import (`snn_msi.nir`, `snn-msi export-nir`): round trips give the same spikes, what NIR cannot
express raises naming it, and the cross-tool behaviour with snnTorch's NIR import and export is pinned down."""

import json

import numpy as np
import pytest
import torch
from torch import nn

import neurons
from snn_msi.cli import main
from snn_msi.models import build
from snn_msi.training import demo_config, load_model

nir = pytest.importorskip("nir", reason="pip install 'snn-msi[nir]'")
from snn_msi.nir import DEFAULT_DT, INTEGRATIONS, PARTS, NIRNetwork, export, neuron_to_nir  # noqa: E402

T, B, F, H = 16, 8, 10, 12


def _net(neuron: str, **kw) -> nn.Sequential:
    torch.manual_seed(1)
    return nn.Sequential(nn.Linear(F, H), neurons.create(neuron, step_mode="m", **kw)).eval()


def _input(scale=1.5) -> torch.Tensor:
    torch.manual_seed(2)
    return torch.randn(T, B, F) * scale + 0.3


def _through_file(graph, tmp_path):
    path = tmp_path / "g.nir"
    nir.write(path, graph)
    return nir.read(path)


CASES = {
    "lif": ("lif", {}),
    "lif-no-decay-input": ("lif", dict(tau=3.0, decay_input=False, v_threshold=0.7, v_reset=0.1)),
    "lif-reset-none": ("lif", dict(reset="none", tau=4.0, v_threshold=0.3)),
    "if": ("if", dict(v_threshold=0.8)),
    "if-reset-none": ("if", dict(reset="none")),
    "synaptic": ("synaptic", dict(reset="hard", tau=3.0, tau_syn=5.0)),
    "synaptic-reset-none": ("synaptic", dict(reset="none")),
}


@pytest.mark.parametrize("integration", INTEGRATIONS)
@pytest.mark.parametrize("case", CASES)
def test_export_import_gives_identical_spikes(case, integration, tmp_path):
    name, kw = CASES[case]
    net = _net(name, **kw)
    graph = _through_file(export(net, (F,), integration=integration), tmp_path)
    back = NIRNetwork(graph)
    x = _input()
    with torch.no_grad():
        ours, theirs = net(x), back(x)
    assert 0.02 < ours.mean().item() < 0.98, "the input must make the neurons fire sometimes"
    assert torch.equal(ours, theirs)
    imported = back.layer("1")
    assert type(imported) is type(net[1]) and imported.reset_mode == net[1].reset_mode


def test_time_constants_follow_the_documented_mapping():
    dt = 1e-3
    ((_, lif),) = neuron_to_nir(neurons.create("lif", tau=4.0, decay_input=True, v_reset=0.2), (3,), dt)
    assert np.allclose(lif.tau, 4.0 * dt) and np.allclose(lif.r, 1.0) and np.allclose(lif.v_leak, 0.2)
    ((_, lif2),) = neuron_to_nir(neurons.create("lif", tau=4.0, decay_input=False), (3,), dt)
    assert np.allclose(lif2.r, 4.0)
    ((_, if_),) = neuron_to_nir(neurons.create("if", v_threshold=0.5), (3,), dt)
    assert np.allclose(if_.r, 1.0 / dt) and np.allclose(if_.v_threshold, 0.5)
    ((_, cuba),) = neuron_to_nir(neurons.create("synaptic", tau=2.0, tau_syn=8.0, reset="hard"), (3,), dt)
    assert np.allclose(cuba.tau_mem, 2 * dt) and np.allclose(cuba.tau_syn, 8 * dt)
    assert np.allclose(cuba.w_in, 8.0) and np.allclose(cuba.r, 2.0)
    # Euler on the NIR LIF reproduces one of our steps: v + dt/tau_n (v_leak - v + r x)
    v, x = 0.3, 0.9
    h = v + dt / lif.tau[0] * (lif.v_leak[0] - v + lif.r[0] * x)
    assert h == pytest.approx(v + (x - (v - 0.2)) / 4.0)


def test_exact_integration_writes_exponential_time_constants():
    """`integration="exact"`: exp(-dt/tau_nir) = 1 - 1/tau, the input gains as under Euler; tau = 1 has no value."""
    dt = 1.0
    ((_, lif),) = neuron_to_nir(neurons.create("lif", tau=4.0, decay_input=False), (3,), dt, integration="exact")
    assert np.allclose(np.exp(-dt / lif.tau), 0.75) and np.allclose(lif.r, 4.0)
    ((_, cuba),) = neuron_to_nir(
        neurons.create("synaptic", tau=2.0, tau_syn=8.0, reset="hard"), (3,), dt, integration="exact"
    )
    assert np.allclose(np.exp(-dt / cuba.tau_syn), 1 - 1 / 8) and np.allclose(cuba.w_in, 8.0)
    with pytest.raises(ValueError, match=r"1 \(LIF\): tau = 1 step"):
        export(_net("lif", tau=1.0), (F,), integration="exact")
    with pytest.raises(ValueError, match="integration must be one of euler, exact"):
        export(_net("lif"), (F,), integration="rk4")


def test_flatten_is_written_with_negative_dims_that_batch_aware_readers_share():
    """NIR's Flatten counts dimensions per sample; snnTorch and Norse hand them to torch.nn.Flatten with a batch
    axis in front. Negative dimensions mean the same axes either way."""
    torch.manual_seed(6)
    net = nn.Sequential(nn.Conv2d(1, 2, 3), neurons.create("lif", step_mode="m"), nn.Flatten(), nn.Linear(2 * 4 * 4, 3))
    graph = export(net, (1, 6, 6))
    flat = graph.nodes["2"]
    assert (int(flat.start_dim), int(flat.end_dim)) == (-3, -1)
    x = torch.randn(5, 2, 4, 4)
    assert torch.equal(nn.Flatten(int(flat.start_dim), int(flat.end_dim))(x), x.flatten(1))
    seq = torch.randn(4, 5, 1, 6, 6) * 2
    with torch.no_grad():
        s = net[1](net[0](seq.flatten(0, 1)).view(4, 5, 2, 4, 4))  # the convolution is not multi-step
        assert torch.equal(NIRNetwork(graph)(seq), net[3](s.flatten(2)))
    with pytest.raises(ValueError, match="flattens the batch axis"):
        export(nn.Sequential(nn.Flatten(0)), (3,))
    with pytest.raises(ValueError, match="apply to an AVNet"):
        export(net, (1, 6, 6), part="fusion")


def test_parametric_lif_exports_as_lif_with_its_current_tau():
    net = _net("plif", init_tau=3.0)
    back = NIRNetwork(export(net, (F,)))
    lif = back.layer("1")
    assert type(lif) is neurons.LIF and lif.tau == pytest.approx(net[1].tau)
    x = _input()
    with torch.no_grad():
        agree = (net(x) == back(x)).float().mean().item()
    assert agree >= 0.999  # k * (x - v) against (x - v) / tau: equal up to float rounding


class _SlowLIF(neurons.LIF):
    def charge(self, x):
        return self.v + (x - self.v) / (2 * self.tau)


NOT_EXPRESSIBLE = {
    "alif": (lambda: neurons.create("alif", step_mode="m"), "ALIF"),
    "izhikevich": (lambda: neurons.create("izhikevich", step_mode="m"), "Izhikevich"),
    "relu": (lambda: neurons.create("relu", step_mode="m"), "ReLU"),
    "soft reset": (lambda: neurons.create("lif", reset="soft"), "reset='soft'"),
    "synaptic default (soft)": (lambda: neurons.create("synaptic"), "reset='soft'"),
    "if reset none at v_reset 0.2": (lambda: neurons.create("if", reset="none", v_reset=0.2), "v_reset=0.2"),
    "own dynamics": (lambda: _SlowLIF(), "redefines"),
    "max pool": (lambda: nn.MaxPool2d(2), "max pooling"),
}


@pytest.mark.parametrize("case", NOT_EXPRESSIBLE)
def test_what_nir_cannot_express_raises_naming_it(case):
    make, words = NOT_EXPRESSIBLE[case]
    module = make()
    shape = (2, 4, 4) if isinstance(module, nn.MaxPool2d) else (F,)
    net = nn.Sequential(nn.Identity(), module)
    with pytest.raises(ValueError, match=words) as err:
        export(net, shape)
    assert "1 (" in str(err.value)  # the layer's name


@pytest.mark.parametrize("peer", ["spikingjelly.lif", "snntorch.leaky"])
def test_peer_wrappers_raise(peer):
    if peer not in neurons.available():
        pytest.skip(f"{peer} not installed")
    with pytest.raises(ValueError, match="wrapper"):
        export(nn.Sequential(neurons.create(peer, step_mode="m")), (F,))


def _demo_model(fusion: str = "concat", seed: int = 0):
    """The digits-av demo network with batch-norm statistics that are not the identity (as after training)."""
    torch.manual_seed(seed)
    model = build(demo_config().model, fusion=fusion).eval()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.3)
    return model


def _spikes_of(model, audio, frames) -> tuple[dict, object]:
    seen = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: seen.setdefault(n, o.detach()))
        for n, m in model.named_modules()
        if neurons.is_spiking(m)
    ]
    with torch.no_grad():
        out = model(audio, frames)
    for h in hooks:
        h.remove()
    return seen, out


def _graph_inputs(model, audio, frames, dtype):
    t = model.config.T
    return {
        "input.audio": audio.to(dtype).expand(t, *audio.shape),
        "input.visual": frames[:, 0].to(dtype).expand(t, frames.shape[0], *frames.shape[2:]),
    }


def _check_avnet_round_trip(model, graph, audio, frames, dtype):
    model = model.to(dtype)
    spikes, out = _spikes_of(model, audio.to(dtype), frames.to(dtype))
    back = NIRNetwork(graph, dtype=dtype)
    with torch.no_grad():
        res = back(**_graph_inputs(model, audio, frames, dtype), record=True)
    assert set(spikes) <= set(back.recorded), set(spikes) - set(back.recorded)
    for name, s in spikes.items():
        assert torch.equal(s, back.recorded[name]), name
    assert torch.allclose(res["output.fused"].mean(0), out.fused, atol=1e-5)
    assert torch.allclose(res["output.audio"].mean(0), out.audio, atol=1e-5)
    assert torch.allclose(res["output.visual"].mean(0), out.visual, atol=1e-5)
    return spikes


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory):
    """The digits-av demo network, trained one short epoch through the CLI."""
    out = tmp_path_factory.mktemp("demo") / "run"
    code = main(
        [
            "train",
            "--demo",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--quiet",
            "--set",
            "data.limit=16",
            "--out",
            str(out),
        ]
    )
    assert code == 0
    return out / "best.pt"


def test_export_nir_command_writes_a_graph_that_nir_reads(demo_checkpoint, tmp_path, capsys):
    path = tmp_path / "demo.nir"
    assert main(["export-nir", str(demo_checkpoint), str(path)]) == 0
    assert "wrote" in capsys.readouterr().out
    graph = nir.read(path)
    kinds = {type(n).__name__ for n in graph.nodes.values()}
    assert {"Conv2d", "LIF", "Affine", "AvgPool2d", "Flatten", "Input", "Output"} <= kinds
    assert float(graph.metadata["dt"]) == DEFAULT_DT
    # residual additions are two edges into the block's second neuron
    assert sum(1 for _, b in graph.edges if b == "audio_net.layers.0.sn2") == 2
    # and the demo network round-trips through the file: the same spikes in every layer, float64 and float32
    model, cfg = load_model(demo_checkpoint)
    from snn_msi.data import build_datasets

    test = build_datasets(cfg.data, cfg.seed)[2]
    audio = torch.stack([test[i].audio for i in range(8)])
    frames = torch.stack([test[i].frames for i in range(8)])
    spikes = _check_avnet_round_trip(model, graph, audio, frames, torch.float64)
    assert len(spikes) == 10 and 0.01 < torch.cat([s.flatten() for s in spikes.values()]).mean() < 0.9
    _check_avnet_round_trip(model, graph, audio, frames, torch.float32)


@pytest.mark.parametrize("pool, integration", [("avg", "euler"), ("sum", "exact")])
def test_export_nir_parts_chain_to_the_model(demo_checkpoint, tmp_path, pool, integration):
    """`--part` for each part (one input, one output): chained through our NIRNetwork they give the model's spikes
    in every layer and its fused output; with `--pool sum` a backbone part outputs the sum over its map and the
    fusion part takes the 1/N. `--outputs fused` leaves one output."""
    model, cfg = load_model(demo_checkpoint)
    model = model.double()
    torch.manual_seed(7)
    audio, frames = torch.randn(3, 1, 40, 32).double() * 2, torch.randn(3, 1, 1, 16, 16).double() * 2
    spikes, out = _spikes_of(model, audio, frames)
    inputs = _graph_inputs(model, audio, frames, torch.float64)
    shapes = ["--audio-shape", "1,40,32", "--visual-shape", "1,16,16", "--frames", "1"]
    options = ["--pool", pool, "--integration", integration, *shapes]
    graphs = {}
    for part in PARTS:
        path = tmp_path / f"{part}.nir"
        assert main(["export-nir", str(demo_checkpoint), str(path), "--part", part, *options]) == 0
        graphs[part] = nir.read(path)
        assert (sorted(graphs[part].inputs), sorted(graphs[part].outputs)) == (["input"], ["output"])
    features = {}
    for part, key in (("audio_net", "input.audio"), ("visual_net", "input.visual")):
        net = NIRNetwork(graphs[part], dtype=torch.float64)
        with torch.no_grad():
            features[part] = net(inputs[key], record=True)
        for name, s in spikes.items():
            if name.startswith(part + "."):
                assert torch.equal(s, net.recorded[name]), name
        n = int(np.prod(spikes[f"{part}.layers.1.sn2"].shape[-2:]))
        assert float(graphs[part].metadata["output_scale"]) == pytest.approx(1.0 / n if pool == "sum" else 1.0)
    with torch.no_grad():
        fused = NIRNetwork(graphs["fusion"], dtype=torch.float64)(torch.cat(list(features.values()), -1))
    assert torch.allclose(fused.mean(0), out.fused, atol=1e-9)
    if pool == "avg":
        path = tmp_path / "fused.nir"
        assert main(["export-nir", str(demo_checkpoint), str(path), "--outputs", "fused", *options]) == 0
        graph = nir.read(path)
        assert sorted(graph.outputs) == ["output.fused"] and not any(n.startswith("heads.") for n in graph.nodes)
        with torch.no_grad():
            assert torch.allclose(NIRNetwork(graph, dtype=torch.float64)(**inputs).mean(0), out.fused, atol=1e-9)


def test_export_nir_command_errors_are_one_line(demo_checkpoint, tmp_path, capsys):
    with pytest.raises(SystemExit) as e:
        main(["export-nir", "--help"])
    assert e.value.code == 0 and "usage: snn-msi export-nir" in capsys.readouterr().out
    assert main(["export-nir", str(tmp_path / "missing.pt"), str(tmp_path / "x.nir")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err
    for bad, words in (
        (["--dt", "0"], "dt must be"),
        (["--part", "heads"], "invalid choice"),
        (["--pool", "max"], "invalid choice"),
        (["--integration", "rk4"], "invalid choice"),
    ):
        out = tmp_path / "bad.nir"
        try:
            code = main(["export-nir", str(demo_checkpoint), str(out), *bad])
        except SystemExit as e:  # argparse refuses a choice before the command runs
            code = e.code
        err = capsys.readouterr().err.strip()
        assert code == 2 and words in err.splitlines()[-1] and not out.exists(), (bad, err)
    # the file to write: an existing one only with --overwrite, never the checkpoint, never a folder; shapes checked
    kept = tmp_path / "kept.nir"
    kept.write_text("mine")
    ckpt = demo_checkpoint.read_bytes()
    for target, extra, words in (
        (kept, [], "exists; pass --overwrite"),
        (demo_checkpoint, ["--overwrite"], "is the file this command reads"),
        (tmp_path, [], "is a folder"),
        (tmp_path / "s.nir", ["--visual-shape", "3,16,16"], "--visual-shape 3,16,16: the model's visual input"),
        (tmp_path / "s.nir", ["--audio-shape", "2,40,32"], "--audio-shape 2,40,32: the model's audio input"),
    ):
        code = main(["export-nir", str(demo_checkpoint), str(target), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0 and words in err, (target, err)
    assert kept.read_text() == "mine" and demo_checkpoint.read_bytes() == ckpt
    assert main(["export-nir", str(demo_checkpoint.parent), str(kept), "--overwrite"]) == 0  # a run folder: its best
    assert nir.read(kept).nodes


@pytest.mark.parametrize("fusion", ["concat", "sum", "bn_product"])
def test_every_expressible_fusion_round_trips(fusion, tmp_path):
    model = _demo_model(fusion)
    graph = _through_file(export(model, {"audio": (1, 40, 32), "visual": (1, 16, 16)}), tmp_path)
    torch.manual_seed(3)
    audio, frames = torch.randn(2, 1, 40, 32) * 2, torch.randn(2, 1, 1, 16, 16) * 2
    _check_avnet_round_trip(model, graph, audio, frames, torch.float64)


@pytest.mark.parametrize(
    "fusion, words", [("film", "FiLMFusion"), ("gated", "GatedFusion"), ("msi", "divisive normalisation")]
)
def test_fusions_nir_cannot_express_raise(fusion, words):
    with pytest.raises(ValueError, match=f"fusion .*{words}"):
        export(_demo_model(fusion), {"audio": (1, 40, 32), "visual": (1, 16, 16)})


def test_trained_product_term_raises_and_paper_stem_max_pool_raises():
    model = _demo_model("bn_product")
    model.fusion.interaction.data.fill_(0.1)
    with pytest.raises(ValueError, match="product term"):
        export(model, {"audio": (1, 40, 32), "visual": (1, 16, 16)})
    paper = build(demo_config().model, stem="imagenet")
    with pytest.raises(ValueError, match=r"audio_net.pool \(MaxPool2d\)"):
        export(paper, {"audio": (1, 40, 32), "visual": (1, 16, 16)})


def test_several_frames_per_clip_average_like_the_model():
    model = _demo_model("concat").double()
    graph = export(model, {"audio": (1, 40, 32), "visual": (1, 16, 16)}, frames=3)
    torch.manual_seed(4)
    audio, frames = torch.randn(2, 1, 40, 32).double(), torch.randn(2, 3, 1, 16, 16).double()
    with torch.no_grad():
        out = model(audio, frames)
        back = NIRNetwork(graph, dtype=torch.float64)
        t = model.config.T
        inputs = {"input.audio": audio.expand(t, *audio.shape)}
        inputs.update({f"input.visual.{k}": frames[:, k].expand(t, 2, 1, 16, 16) for k in range(3)})
        res = back(**inputs)
    assert torch.allclose(res["output.fused"].mean(0), out.fused, atol=1e-9)


def test_import_rejects_what_our_modules_cannot_run():
    shape = np.array([H])
    ones = np.ones(H)

    def graph(node, edges_extra=(), metadata=None):
        nodes = {"input": nir.Input(input_type=shape), "n": node, "output": nir.Output(output_type=shape)}
        edges = [("input", "n"), ("n", "output"), *edges_extra]
        return nir.NIRGraph(
            nodes=nodes, edges=edges, metadata={"dt": 1e-3} if metadata is None else metadata, type_check=False
        )

    odd_gain = nir.LIF(tau=ones * 2e-3, r=ones * 0.3, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones)
    with pytest.raises(ValueError, match="'n' \\(LIF\\): input gain"):
        NIRNetwork(graph(odd_gain))
    mixed = nir.LIF(tau=np.linspace(2e-3, 3e-3, H), r=ones, v_leak=0 * ones, v_threshold=ones, v_reset=0 * ones)
    with pytest.raises(ValueError, match="tau differs between neurons"):
        NIRNetwork(graph(mixed))
    with pytest.raises(ValueError, match="Delay"):
        NIRNetwork(graph(nir.Delay(delay=ones)))
    with pytest.raises(ValueError, match="recurrent cycle"):
        NIRNetwork(graph(nir.Affine(weight=np.eye(H), bias=0 * ones), edges_extra=[("n", "n")]))
    with pytest.raises(ValueError, match="pass dt="):
        NIRNetwork(graph(nir.Affine(weight=np.eye(H), bias=0 * ones), metadata={}))
    with pytest.raises(ValueError, match="without a threshold"):
        NIRNetwork(graph(nir.LI(tau=ones * 2e-3, r=ones, v_leak=0 * ones)))


def test_metadata_survives_the_file(tmp_path):
    graph = _through_file(export(_net("lif", surrogate="sigmoid", alpha=3.0), (F,), dt=1e-3), tmp_path)
    back = NIRNetwork(graph)
    assert back.dt == 1e-3 and back.layer("1").surrogate.name == "sigmoid" and back.layer("1").surrogate.alpha == 3
    assert json.dumps({k: str(v) for k, v in back.metadata.items()})


# -- the peers: snnTorch's NIR import and export ---------------------------------------------------------------
def _snntorch():
    pytest.importorskip("nirtorch", reason="snnTorch's NIR support needs nirtorch: pip install 'snn-msi[nir]'")
    return pytest.importorskip("snntorch")


def _run_snntorch(net, x):
    from snntorch import utils

    utils.reset(net)
    outs = []
    with torch.no_grad():
        for xt in x:
            o = net(xt)
            outs.append(o[0] if isinstance(o, tuple) else o)
    return torch.stack(outs)


@pytest.mark.parametrize("case", ["lif-no-decay-input", "synaptic"])
def test_snntorch_imports_our_graph_with_the_same_spikes(case, capsys):
    from snntorch.import_nir import import_from_nir

    _snntorch()
    name, kw = {
        "lif-no-decay-input": ("lif", dict(tau=4.0, decay_input=False)),
        "synaptic": ("synaptic", dict(reset="hard", tau=4.0, tau_syn=2.0)),
    }[case]
    net = _net(name, **kw)
    theirs = import_from_nir(export(net, (F,)))
    x = _input()
    with torch.no_grad():
        ours = net(x)
    assert 0.02 < ours.mean().item() < 0.98
    assert torch.equal(ours, _run_snntorch(theirs, x))


def test_snntorch_folds_decay_input_into_its_threshold(capsys):
    """Documented difference: for `decay_input=True` (input gain 1/tau) snnTorch scales its threshold by tau instead
    of the input (`hack_w_scale`): the same dynamics, equal up to float rounding."""
    from snntorch.import_nir import import_from_nir

    _snntorch()
    net = _net("lif", tau=3.0, v_threshold=0.5)  # not a power of two: the folding rounds
    theirs = import_from_nir(export(net, (F,)))
    assert "scaling weights" in capsys.readouterr().out
    x = _input()
    with torch.no_grad():
        agree = (net(x) == _run_snntorch(theirs, x)).float().mean().item()
    assert agree >= 0.999


def test_snntorch_cannot_import_an_if_neuron():
    """Documented difference: NIR's IF is `dv/dt = r I`, so our IF is `r = 1/dt`; snnTorch's import asserts r == 1
    (and would build a leaky neuron with beta 0.9 for it)."""
    from snntorch.import_nir import import_from_nir

    _snntorch()
    with pytest.raises(AssertionError, match="r != 1"):
        import_from_nir(export(_net("if"), (F,)))


def test_threshold_equality_fires_here_and_not_in_snntorch():
    """Documented difference: we fire at v >= v_th (NIR's text and snnTorch: v > v_th)."""
    from snntorch.import_nir import import_from_nir

    _snntorch()
    lif = nn.Sequential(neurons.create("lif", tau=2.0, decay_input=False, v_threshold=1.0, step_mode="m"))
    theirs = import_from_nir(export(lif, (1,)))
    x = torch.tensor([1.0, 0.0, 0.5]).view(3, 1, 1)  # the membrane lands exactly on the threshold at step 0
    with torch.no_grad():
        assert lif(x).flatten().tolist() == [1.0, 0.0, 0.0]
    assert _run_snntorch(theirs, x).flatten().tolist() == [0.0, 0.0, 0.0]


def _snntorch_net(cell: str, reset_delay: bool):
    snn = _snntorch()
    torch.manual_seed(5)
    n = torch.full((H,), 1.0)
    lin = nn.Linear(F, H)
    if cell == "leaky":
        sn = snn.Leaky(
            beta=n * 0.75, threshold=n * 0.8, reset_mechanism="zero", init_hidden=True, reset_delay=reset_delay
        )
    else:
        sn = snn.Synaptic(
            alpha=n * 0.5,
            beta=n * 0.75,
            threshold=n * 0.8,
            reset_mechanism="zero",
            init_hidden=True,
            reset_delay=reset_delay,
        )
    return nn.Sequential(lin, sn)


@pytest.mark.parametrize("cell", ["leaky", "synaptic"])
def test_we_import_snntorch_exports_with_the_same_spikes(cell):
    from snntorch.export_nir import export_to_nir

    net = _snntorch_net(cell, reset_delay=False)
    graph = export_to_nir(net, torch.randn(1, F), ignore_dims=[0])
    ours = NIRNetwork(graph, dt=1e-4)  # snnTorch writes no dt; it assumes 1e-4 s
    x = _input()
    expected = _run_snntorch(net, x)
    with torch.no_grad():
        got = ours(x)
    assert 0.02 < expected.mean().item() < 0.98
    assert torch.equal(got, expected)


def test_snntorch_delayed_reset_of_synaptic_is_not_in_its_graph():
    """Documented difference: snnTorch's default `reset_delay=True` Synaptic (reset "zero") also clears the synaptic
    current one step after a spike; its NIR export writes the same CubaLIF either way, and NIR's CubaLIF (like ours)
    resets only the membrane. So a default snnTorch Synaptic does not spike like its exported graph."""
    from snntorch.export_nir import export_to_nir

    delayed, now = _snntorch_net("synaptic", True), _snntorch_net("synaptic", False)
    g1, g2 = (export_to_nir(n, torch.randn(1, F), ignore_dims=[0]) for n in (delayed, now))
    for key in ("tau_mem", "tau_syn", "r", "w_in", "v_threshold", "v_reset"):
        assert np.array_equal(getattr(g1.nodes["1"], key), getattr(g2.nodes["1"], key))
    x = _input()
    with torch.no_grad():
        got = NIRNetwork(g1, dt=1e-4)(x)
    assert torch.equal(got, _run_snntorch(now, x))
    assert not torch.equal(got, _run_snntorch(delayed, x))
