"""``torch.compile(fullgraph=True)`` traces spiking networks through the fused custom operators (the CPU op).

The fast tests use ``backend="aot_eager"``: Dynamo (the whole network as one graph, no break) and AOTAutograd
(forward and backward graphs through the ops' fake and autograd registrations), without Inductor's C++ code
generation, which takes about a minute per network on 2 cores; the Inductor run is a slow test. Results must
match eager mode: spikes and outputs exactly, gradients to float32 tolerance.
"""

import copy
import os

import pytest
import torch

import neurons
from neurons import kernels
from neurons.functional import IFSpec
from neurons.kernels import fused, ops

# SNN_MSI_TEST_DEVICE=cuda (benchmarks/gpu_check.sh) runs the CUDA tests and skips the CPU-op ones
DEVICE = os.environ.get("SNN_MSI_TEST_DEVICE", "cpu")
cpu_op = pytest.mark.skipif(
    DEVICE != "cpu" or kernels.unavailable_reason("cpu", torch.zeros(1)) is not None,
    reason="the CPU op's tests (DEVICE=cpu, and the C++ extension builds)",
)

OPS = ("snn_msi.if_family_fwd", "snn_msi.if_family_bwd")


class Recorder:
    """A torch.compile backend that records the ops of every graph and hands it to aot_eager."""

    def __init__(self):
        self.graphs, self.ops = 0, set()

    def __call__(self, gm, example_inputs):
        from torch._dynamo.backends.common import aot_autograd
        from torch._functorch.aot_autograd import make_boxed_func

        self.graphs += 1

        def record(g, _inputs):
            self.ops |= {str(n.target) for n in g.graph.nodes if n.op == "call_function"}
            return make_boxed_func(g.forward)

        return aot_autograd(fw_compiler=record, bw_compiler=record)(gm, example_inputs)


def _tiny_net(neuron="lif", **neuron_args):
    from snn_msi.models import build

    torch.manual_seed(0)
    args = {"v_threshold": 0.5, "surrogate": "atan", "alpha": 2.0, **neuron_args}
    return build(
        num_classes=5,
        widths=(4,),
        blocks=(1,),
        stem="small",
        audio_channels=1,
        visual_channels=3,
        T=2,
        neuron=neuron,
        neuron_args=args,
    )


def _step(model, net, a, v):
    out = model(a, v)
    loss = sum(getattr(out, k).float().logsumexp(1).sum() for k in ("fused", "audio", "visual"))
    loss.backward()
    return out, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


@cpu_op
def test_whole_network_compiles_without_a_graph_break():
    """snn_msi.models.build(...) with LIF: one graph (fullgraph=True raises on any break), the fused ops in the
    forward and backward graphs, outputs and gradients equal to eager mode."""
    torch._dynamo.reset()
    eager = _tiny_net()
    compiled_net = copy.deepcopy(eager)
    rec = Recorder()
    compiled = torch.compile(compiled_net, fullgraph=True, backend=rec)
    a, v = torch.randn(2, 1, 12, 10), torch.randn(2, 1, 3, 12, 12)
    out_e, grads_e = _step(eager, eager, a, v)
    out_c, grads_c = _step(compiled, compiled_net, a, v)
    assert rec.graphs == 1
    assert {f"{op}.default" for op in OPS} <= rec.ops, rec.ops
    torch.testing.assert_close(out_c.fused, out_e.fused, rtol=0, atol=0)
    assert grads_c.keys() == grads_e.keys() and len(grads_e) > 10
    for name, g in grads_e.items():
        torch.testing.assert_close(grads_c[name], g, rtol=1e-4, atol=1e-5, msg=name)


@cpu_op
@pytest.mark.parametrize("name", ["if", "plif"])
def test_compiled_layer_matches_eager(name):
    """IF and ParametricLIF (the learnable leak tensor through the op) under fullgraph compile, state carried
    between two calls."""
    torch._dynamo.reset()
    x = (torch.randn(4, 3, 33) + 0.5).requires_grad_(True)
    outs = []
    for compile_it in (False, True):
        torch.manual_seed(0)
        n = neurons.create(name, v_threshold=0.5, step_mode="m")
        f = torch.compile(n, fullgraph=True, backend="aot_eager") if compile_it else n
        xr = x.detach().clone().requires_grad_(True)
        s = torch.cat([f(xr[:2]), f(xr[2:])])
        grads = torch.autograd.grad((s * torch.linspace(-1, 1, s.numel()).view_as(s)).sum(), [xr, *n.parameters()])
        outs.append((s, n.v, grads))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=0, atol=0)
    for a, b in zip(outs[0][2], outs[1][2], strict=True):
        torch.testing.assert_close(b, a, rtol=1e-4, atol=1e-5)


@cpu_op
def test_compiled_layer_rejects_nonfinite_input():
    torch._dynamo.reset()
    n = torch.compile(neurons.create("lif", step_mode="m"), fullgraph=True, backend="aot_eager")
    x = torch.zeros(3, 2, 5)
    x[1, 0, 3] = float("nan")
    with pytest.raises(neurons.NonFiniteInputError, match="LIF: input x contains NaN"):
        n(x)


@cpu_op
def test_ops_pass_opcheck():
    """torch.library.opcheck: schema, fake tensors, autograd registration and AOT dispatch of both ops."""
    spec = IFSpec("div", True, 2.0, 0.5, 0.0, "hard", "atan", 2.0, False)
    a = fused.kernel_args(spec)
    x = (torch.randn(3, 2, 7) + 0.5).requires_grad_(True)
    v0 = torch.randn(2, 7).requires_grad_(True)
    for v in (None, v0):
        torch.library.opcheck(ops.if_family_fwd, (x, v, None, *a, False, "LIF", fused.CPU))
    k = torch.tensor(0.4, requires_grad=True)
    plif = fused.kernel_args(IFSpec("mul", False, 1.0, 0.5, 0.0, "soft", "sigmoid", 4.0, False))
    torch.library.opcheck(
        ops.if_family_fwd, (x.detach().bfloat16().requires_grad_(True), v0, k, *plif, False, "P", fused.CPU)
    )
    torch.library.opcheck(
        ops.if_family_bwd, (torch.randn(3, 2, 7), None, x.detach(), torch.empty(0), None, None, *a, fused.CPU)
    )


@cpu_op
@pytest.mark.slow
def test_network_compiles_with_inductor():
    """The default backend (Inductor, C++ code generation on the CPU): the same step as eager mode."""
    torch._dynamo.reset()
    eager = _tiny_net()
    net = copy.deepcopy(eager)
    compiled = torch.compile(net, fullgraph=True)
    a, v = torch.randn(2, 1, 12, 10), torch.randn(2, 1, 3, 12, 12)
    out_e, grads_e = _step(eager, eager, a, v)
    out_c, grads_c = _step(compiled, net, a, v)
    torch.testing.assert_close(out_c.fused, out_e.fused, rtol=1e-4, atol=1e-5)
    for name, g in grads_e.items():
        torch.testing.assert_close(grads_c[name], g, rtol=1e-3, atol=1e-4, msg=name)


@pytest.mark.skipif(kernels._triton_import_error() is not None, reason="triton not installed")
def test_triton_op_compiles_fullgraph():
    """The Triton op through torch.compile (on the CPU under TRITON_INTERPRET=1, or on CUDA): as eager."""
    torch._dynamo.reset()
    x = (torch.randn(4, 2, 300, device=DEVICE) + 0.5).requires_grad_(True)
    outs = []
    for compile_it in (False, True):
        n = neurons.create("lif", v_threshold=0.5, step_mode="m", backend="triton", check_inputs=False).to(DEVICE)
        f = torch.compile(n, fullgraph=True, backend="aot_eager") if compile_it else n
        xr = x.detach().clone().requires_grad_(True)
        s = f(xr)
        (gx,) = torch.autograd.grad((s * torch.linspace(-1, 1, s.numel(), device=DEVICE).view_as(s)).sum(), [xr])
        outs.append((s, gx))
    assert torch.equal(outs[0][0], outs[1][0])
    torch.testing.assert_close(outs[1][1], outs[0][1], rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(DEVICE != "cuda", reason="CUDA graphs need a GPU (SNN_MSI_TEST_DEVICE=cuda)")
def test_cuda_graph_captures_a_layer_forward_and_backward():
    """Eager LIF fwd + bwd (Triton) captured in one CUDA graph: a replay gives the eager spikes and gradient;
    check_inputs=True refuses to be captured with an error that says what to do."""
    x = (torch.randn(4, 10_000, device="cuda") + 0.5).requires_grad_(True)
    g = torch.randn(4, 10_000, device="cuda")
    n = neurons.create("lif", step_mode="m", check_inputs=False).cuda()
    s_ref = n(x)
    (gx_ref,) = torch.autograd.grad(s_ref, x, g)
    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            n.reset()
            x.grad = None
            n(x).backward(g)
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    x.grad = None
    with torch.cuda.graph(graph):
        n.reset()
        s = n(x)
        s.backward(g)
    graph.replay()
    torch.cuda.synchronize()
    assert torch.equal(s, s_ref)
    torch.testing.assert_close(x.grad, gx_ref, rtol=1e-5, atol=1e-6)
    checked = neurons.create("lif", step_mode="m", check_inputs=True).cuda()
    checked(x)  # warm (compiles the kernel outside the capture)
    with pytest.raises(ValueError, match="check_inputs=False"):
        with torch.cuda.graph(torch.cuda.CUDAGraph()):
            checked(x)


@pytest.mark.skipif(DEVICE != "cuda", reason="needs a GPU (SNN_MSI_TEST_DEVICE=cuda)")
def test_network_step_under_cuda_graphs_on_gpu():
    """torch.compile(mode="reduce-overhead") of the tiny network on the GPU: CUDA graphs through Inductor and
    the Triton op; the same outputs as eager."""
    torch._dynamo.reset()
    eager = _tiny_net(check_inputs=False).cuda()
    net = copy.deepcopy(eager)
    compiled = torch.compile(net, fullgraph=True, mode="reduce-overhead")
    a, v = torch.randn(2, 1, 12, 10, device="cuda"), torch.randn(2, 1, 3, 12, 12, device="cuda")
    for _ in range(3):  # warm-up runs, then the recorded graph replays
        out_c = compiled(a, v)
    out_e = eager(a, v)
    torch.testing.assert_close(out_c.fused, out_e.fused, rtol=1e-4, atol=1e-5)


@pytest.mark.parametrize("name", [n for n in neurons.available() if neurons.info(n).kind == "spiking"])
def test_every_neuron_compiles_fullgraph_as_create_gives_it(name):
    """``torch.compile(create(name), fullgraph=True)``: the default single-step neuron with its input check on (the
    check was a graph break); spikes equal eager over three steps, and a NaN still stops it, naming the neuron."""
    torch._dynamo.reset()
    xs = torch.rand(3, 2, 5, generator=torch.Generator().manual_seed(0)) * 3
    eager, compiled = neurons.create(name), torch.compile(neurons.create(name), fullgraph=True, backend="aot_eager")
    for x in xs:
        assert torch.equal(compiled(x), eager(x))
    with pytest.raises((RuntimeError, neurons.NonFiniteInputError), match="input x contains NaN"):
        compiled(torch.full((2, 5), float("nan")))
