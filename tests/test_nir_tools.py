"""Our NIR graphs in other tools' own importers: snnTorch, Norse, Sinabs, Rockpool (`docs/nir.md`, "Other tools").

The demo-like network (the digits-av demo AVNet, seeded, with batch-norm statistics that are not the identity) is
written to a checkpoint and exported through `snn-msi export-nir` with the options each importer needs; the same
input then goes through our model and through theirs. snnTorch and Norse must give identical spikes in every
layer and the same fused output; for Sinabs and Rockpool the tests pin down what loads and how much agrees, and
why. A tool that is not installed skips (`make install` installs them all, Norse, Sinabs and Rockpool with
`--no-deps`); an importer that can hang runs in a child process with a timeout.
"""

import subprocess
import sys
import warnings
from pathlib import Path

import pytest
import torch
from torch import nn

import neurons
from snn_msi.cli import main
from snn_msi.models import build
from snn_msi.training import demo_config
from snn_msi.training.rundir import CHECKPOINT_VERSION, save_checkpoint

nir = pytest.importorskip("nir", reason="pip install 'snn-msi[nir]'")
from snn_msi.nir import export  # noqa: E402
from snn_msi.nir.interop import in_topological_order, run_steps  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
SHAPES = {"audio": (1, 40, 32), "visual": (1, 16, 16)}
B = 4


def _tool(module: str):
    return pytest.importorskip(module, reason=f"{module} is not installed (make install puts it beside our torch)")


@pytest.fixture(scope="module")
def demo(tmp_path_factory):
    """The seeded demo network, its checkpoint, one batch of inputs and our reference run of each part."""
    torch.manual_seed(0)
    cfg = demo_config()
    model = build(cfg.model).eval()
    for m in model.modules():
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 2.0)
            m.weight.data.uniform_(0.5, 1.5)
            m.bias.data.uniform_(-0.1, 0.3)
    ckpt = tmp_path_factory.mktemp("tools") / "demo.pt"
    save_checkpoint({"version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "model": model.state_dict()}, ckpt)
    torch.manual_seed(1)
    t = cfg.model.T
    xa = (torch.randn(B, *SHAPES["audio"]) * 2).expand(t, B, *SHAPES["audio"])  # direct coding
    xv = (torch.randn(B, *SHAPES["visual"]) * 2).expand(t, B, *SHAPES["visual"])
    spikes = {}
    hooks = [
        m.register_forward_hook(lambda _m, _i, o, n=n: spikes.setdefault(n, o.detach()))
        for n, m in model.named_modules()
        if neurons.is_spiking(m)
    ]
    with torch.no_grad():
        a, v = model.audio_net(xa), model.visual_net(xv)
        fused = model.fusion(a, v)[0]
    for h in hooks:
        h.remove()
    assert 0.02 < torch.cat([s.flatten() for s in spikes.values()]).mean() < 0.9
    return dict(model=model, ckpt=ckpt, xa=xa, xv=xv, a=a, v=v, fused=fused, spikes=spikes, graphs={})


def _export(demo, *options) -> nir.NIRGraph:
    """`snn-msi export-nir` of the demo checkpoint with `options` (each set written once per module)."""
    if options in demo["graphs"]:
        return demo["graphs"][options]
    out = demo["ckpt"].parent / f"{'_'.join(o.strip('-') for o in options) or 'full'}.nir"
    argv = [
        "export-nir",
        str(demo["ckpt"]),
        str(out),
        "--audio-shape",
        "1,40,32",
        "--visual-shape",
        "1,16,16",
        "--frames",
        "1",
        *options,
    ]
    assert main(argv) == 0
    demo["graphs"][options] = nir.read(out)
    return demo["graphs"][options]


def _parts(demo, *options) -> dict:
    return {p: _export(demo, "--part", p, *options) for p in ("audio_net", "visual_net", "fusion")}


def _record(net: nn.Module, kinds: tuple) -> tuple[dict, list]:
    """Forward hooks keeping the spikes of every module of `kinds` per step, by NIR node name."""
    seen: dict[str, list] = {}

    def keep(name):
        return lambda _m, _i, o: seen.setdefault(name, []).append((o[0] if isinstance(o, tuple) else o).detach())

    hooks = [m.register_forward_hook(keep(n)) for n, m in net.named_children() if isinstance(m, kinds)]
    return seen, hooks


def _same_spikes(demo, seen: dict, part: str) -> int:
    """Every neuron layer of `part` spikes as ours, step for step; returns how many layers were compared."""
    ours = {n: s for n, s in demo["spikes"].items() if n.startswith(part + ".")}
    assert ours and {n.replace(".", "_") for n in ours} == set(seen), (sorted(ours), sorted(seen))
    for name, s in ours.items():
        assert torch.equal(torch.stack(seen[name.replace(".", "_")]), s), name
    return len(ours)


# -- snnTorch ------------------------------------------------------------------------------------------------
def test_snntorch_runs_the_demo_parts_with_identical_spikes(demo, capsys):
    """`--part` x 3 (nirtorch's `nir_to_torch` takes one input), `--pool avg` (snnTorch maps AvgPool2d, not
    SumPool2d), the default Euler time constants at dt = 1e-4 s (snnTorch's fixed step)."""
    snn = _tool("snntorch")
    _tool("nirtorch")
    from snntorch import utils
    from snntorch.import_nir import import_from_nir

    graphs = _parts(demo, "--pool", "avg")
    out = {}
    for part, x in (("audio_net", demo["xa"]), ("visual_net", demo["xv"])):
        net = import_from_nir(graphs[part])
        seen, _ = _record(net, (snn.Leaky,))
        utils.reset(net)
        with torch.no_grad():
            out[part] = run_steps(net, x, stateful=False)
        assert _same_spikes(demo, seen, part) == 5
    assert torch.allclose(out["audio_net"], demo["a"], atol=1e-6)
    fusion = import_from_nir(graphs["fusion"])
    with torch.no_grad():
        fused = run_steps(fusion, torch.cat([out["audio_net"], out["visual_net"]], -1), stateful=False)
    assert torch.allclose(fused, demo["fused"], atol=1e-5)
    assert torch.equal(fused.argmax(-1), demo["fused"].argmax(-1))
    capsys.readouterr()  # snnTorch prints a warning per LIF layer (it folds r = 1 into its threshold)


def test_snntorch_refuses_two_inputs(demo):
    """Why `--part`: the whole graph with `--outputs fused` (no hang on several outputs) still has two inputs,
    which nirtorch's `nir_to_torch` refuses (`scripts/nir_nirtorch_multi_output_hang.py`, case 2)."""
    _tool("snntorch")
    _tool("nirtorch")
    from snntorch.import_nir import import_from_nir

    graph = _export(demo, "--outputs", "fused")
    assert sorted(graph.outputs) == ["output.fused"] and len(graph.inputs) == 2
    with pytest.raises(RuntimeError, match="redefined name"):
        import_from_nir(graph)


@pytest.mark.slow
def test_nirtorch_hangs_on_several_outputs():
    """The default graph (three outputs) never loads in snnTorch: nirtorch's graph builder loops forever on two
    Output nodes; the reproduction runs it in a child process with a timeout (exit 0: the bug is present)."""
    _tool("nirtorch")
    script = ROOT / "scripts" / "nir_nirtorch_multi_output_hang.py"
    proc = subprocess.run([sys.executable, str(script), "--timeout", "2"], capture_output=True, text=True, timeout=180)
    assert proc.returncode == 0 and "hangs" in proc.stdout, proc.stdout + proc.stderr


# -- Norse ---------------------------------------------------------------------------------------------------
def _norse(graph, dt: float):
    norse = _tool("norse.torch")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        return norse.from_nir(graph, dt=dt)


def test_norse_runs_the_demo_parts_with_identical_spikes(demo):
    """`--part` x 3, `--pool sum` (Norse maps SumPool2d only), Norse told the graph's dt; and nirtorch's executor
    put in topological order (its own order runs the projection shortcut last)."""
    _tool("norse.torch")
    from norse.torch.module.lif_box import LIFBoxCell

    graphs = _parts(demo, "--pool", "sum")
    out = {}
    for part, x in (("audio_net", demo["xa"]), ("visual_net", demo["xv"])):
        graph = graphs[part]
        net = _norse(graph, dt=float(graph.metadata["dt"]))
        in_topological_order(net)
        seen, _ = _record(net, (LIFBoxCell,))
        with torch.no_grad():
            out[part] = run_steps(net, x, stateful=True)
        assert _same_spikes(demo, seen, part) == 5
        scale = float(graph.metadata["output_scale"])  # the part outputs the sum over the map
        assert torch.allclose(out[part] * scale, demo[part[0]], atol=1e-6)
    fusion = _norse(graphs["fusion"], dt=float(graphs["fusion"].metadata["dt"]))
    with torch.no_grad():
        fused = run_steps(fusion, torch.cat([out["audio_net"], out["visual_net"]], -1), stateful=True)
    assert torch.allclose(fused, demo["fused"], atol=1e-5)
    assert torch.equal(fused.argmax(-1), demo["fused"].argmax(-1))


def test_norse_without_the_workarounds(demo):
    """What goes wrong without the options: nirtorch's own execution order returns the projection shortcut's
    conv map; with `--pool avg` Norse has no module for AvgPool2d, the executor skips the node and the Flatten
    after it has no input."""
    _tool("norse.torch")
    graph = _export(demo, "--part", "audio_net", "--pool", "sum")
    with torch.no_grad():
        out, _ = _norse(graph, dt=1e-4)(demo["xa"][0])
    assert out.dim() == 4  # [B, C, h, w]: the shortcut conv's output, not the [B, C] features
    net = _norse(_export(demo, "--part", "audio_net", "--pool", "avg"), dt=1e-4)
    in_topological_order(net)
    with torch.no_grad(), pytest.raises(ValueError, match="No inputs found for node audio_net_flatten"):
        net(demo["xa"][0])


# -- Sinabs --------------------------------------------------------------------------------------------------
def _sinabs_run(net, x: torch.Tensor) -> torch.Tensor:
    """Sinabs' squeeze layers take `[B * T, ...]` (batch-major) at once."""
    t, b = x.shape[:2]
    with torch.no_grad():
        y = run_steps(net, x.transpose(0, 1).reshape(b * t, *x.shape[2:])[None], stateful=False)[0]
    return y.view(b, t, *y.shape[1:]).transpose(0, 1)


def _mlp(neuron: str, **kw) -> nn.Sequential:
    torch.manual_seed(3)
    return nn.Sequential(nn.Linear(10, 12), neurons.create(neuron, step_mode="m", **kw)).eval()


def _mlp_input() -> torch.Tensor:
    torch.manual_seed(4)
    return torch.randn(20, B, 10) * 1.5 + 0.3


def test_sinabs_loads_the_fusion_part_and_not_a_backbone(demo):
    """The fusion part (one Affine) runs the same; a backbone fails in Sinabs' own check of v_leak
    (`any(...)` over a [C, H, W] array: `scripts/nir_sinabs_lif.py`), with either pooling."""
    sinabs = _tool("sinabs")
    graphs = _parts(demo, "--pool", "sum")
    with pytest.raises(ValueError, match="truth value of an array"):
        sinabs.from_nir(graphs["audio_net"], batch_size=B)
    scale = lambda p: float(graphs[p].metadata["output_scale"])  # noqa: E731
    features = torch.cat([demo["a"] / scale("audio_net"), demo["v"] / scale("visual_net")], -1)
    fused = _sinabs_run(sinabs.from_nir(graphs["fusion"], batch_size=B), features)
    assert torch.allclose(fused, demo["fused"], atol=1e-5)


def _agreement(ours: torch.Tensor, theirs: torch.Tensor) -> tuple[float, float]:
    """The fraction of equal spike counts (over steps, samples and neurons), and the fraction of (sample, neuron)
    pairs whose first spike comes at the same step (or never in both)."""
    first = lambda s: torch.where((s > 0).any(0), (s > 0).float().argmax(0), -1)  # noqa: E731
    return (ours == theirs).float().mean().item(), (first(ours) == first(theirs)).float().mean().item()


def test_sinabs_reads_tau_in_steps_and_resets_by_subtraction():
    """A 1-D LIF layer loads. Sinabs ignores dt (tau in steps) and r, emits several spikes in a step where the
    membrane is several thresholds high and resets by subtracting them: with `--dt 1 --integration exact` and
    `decay_input=False` (r = tau, which Sinabs' un-normalised input matches) the membranes follow ours up to the
    first spike, so the first spikes agree (up to float rounding of exp(-1/tau)); the default export (tau = 2e-4
    read as steps: no memory) agrees less. The fractions are in docs/nir.md."""
    sinabs = _tool("sinabs")
    net, x = _mlp("lif", tau=4.0, decay_input=False), _mlp_input()
    with torch.no_grad():
        ours = net(x)
    exact = export(net, (10,), dt=1.0, integration="exact")
    theirs = _sinabs_run(sinabs.from_nir(exact, batch_size=B), x)
    frac, first = _agreement(ours, theirs)
    print(f"Sinabs, LIF, --dt 1 --integration exact: {frac:.3f} of spikes, {first:.3f} of first spikes agree")
    assert first >= 0.9 and frac < 1.0, (frac, first)  # after a spike: reset to 0 here, v - threshold there
    frac_default, first_default = _agreement(ours, _sinabs_run(sinabs.from_nir(export(net, (10,)), batch_size=B), x))
    print(f"Sinabs, LIF, default export: {frac_default:.3f} of spikes, {first_default:.3f} of first spikes agree")
    assert first_default < first


# -- Rockpool ------------------------------------------------------------------------------------------------
def _rockpool(graph):
    _tool("rockpool")
    from rockpool.nn.modules import from_nir

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return from_nir(graph)


def _rockpool_run(net, x: torch.Tensor) -> torch.Tensor:
    """Rockpool's torch modules take `[B, T, N]` at once."""
    with torch.no_grad():
        y = net(x.transpose(0, 1).contiguous())
    return (y[0] if isinstance(y, tuple) else y).transpose(0, 1)


def test_rockpool_loads_the_fusion_part_and_no_conv_or_lif(demo):
    """The fusion part (one Affine) runs the same; Rockpool has no Conv2d (so no backbone loads) and fails on NIR's
    LIF node (it reads `tau_mem`: `scripts/nir_rockpool_lif.py`)."""
    graphs = _parts(demo, "--pool", "sum")
    with pytest.raises(NotImplementedError, match="Cannot convert .*(Conv2d|Flatten)"):
        _rockpool(graphs["audio_net"])
    with pytest.raises(AttributeError, match="tau_mem"):
        _rockpool(export(_mlp("lif", tau=4.0, decay_input=False), (10,)))
    scale = lambda p: float(graphs[p].metadata["output_scale"])  # noqa: E731
    features = torch.cat([demo["a"] / scale("audio_net"), demo["v"] / scale("visual_net")], -1)
    fused = _rockpool_run(_rockpool(graphs["fusion"]), features)
    assert torch.allclose(fused, demo["fused"], atol=1e-5)


def test_rockpool_runs_a_cuba_lif_at_its_own_dt():
    """A Synaptic layer (CubaLIF) loads, but Rockpool derives its step from tau_mem / (1 + r) instead of the
    graph's dt and resets by subtraction (several spikes per step allowed): few spikes agree."""
    net, x = _mlp("synaptic", reset="hard", tau=4.0, tau_syn=2.0), _mlp_input()
    with torch.no_grad():
        ours = net(x)
    theirs = _rockpool_run(_rockpool(export(net, (10,), dt=1.0, integration="exact")), x)
    frac, first = _agreement(ours, theirs)
    print(f"Rockpool, CubaLIF: {frac:.3f} of spikes, {first:.3f} of first spikes agree")
    assert theirs.shape == ours.shape and first < 0.9 and frac < 1.0, (frac, first)
