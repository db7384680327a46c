"""``torch.compile(fullgraph=True)`` traces spiking networks through the fused custom operators (the CPU op).

The fast tests use ``backend="aot_eager"``: Dynamo (the whole network as one graph, no break) and AOTAutograd
(forward and backward graphs through the ops' fake and autograd registrations), without Inductor's C++ code
generation, which takes about a minute per network on 2 cores; the Inductor run is a slow test. Results must
match eager mode: spikes and outputs exactly, gradients to float32 tolerance.
"""

import copy

import pytest
import torch

import neurons
from neurons.functional import IFSpec
from neurons.kernels import fused, ops

pytestmark = pytest.mark.skipif(
    neurons.kernels.unavailable_reason("cpu", torch.zeros(1)) is not None, reason="the C++ extension does not build"
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
    return build(num_classes=5, widths=(4,), blocks=(1,), stem="small", audio_channels=1, visual_channels=3, T=2,
                 neuron=neuron, neuron_args=args)  # fmt: skip


def _step(model, net, a, v):
    out = model(a, v)
    loss = sum(getattr(out, k).float().logsumexp(1).sum() for k in ("fused", "audio", "visual"))
    loss.backward()
    return out, {n: p.grad.clone() for n, p in net.named_parameters() if p.grad is not None}


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


def test_compiled_layer_rejects_nonfinite_input():
    torch._dynamo.reset()
    n = torch.compile(neurons.create("lif", step_mode="m"), fullgraph=True, backend="aot_eager")
    x = torch.zeros(3, 2, 5)
    x[1, 0, 3] = float("nan")
    with pytest.raises(neurons.NonFiniteInputError, match="LIF: input x contains NaN"):
        n(x)


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
    torch.library.opcheck(ops.if_family_fwd, (x.detach().bfloat16().requires_grad_(True), v0, k, *plif, False, "P",
                                              fused.CPU))  # fmt: skip
    torch.library.opcheck(ops.if_family_bwd, (torch.randn(3, 2, 7), None, x.detach(), torch.empty(0), None, None, *a,
                                              fused.CPU))  # fmt: skip


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
