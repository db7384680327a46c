"""Every fused implementation against the PyTorch reference on fresh random inputs.

Spikes must be exactly equal; gradients (input, initial state, ParametricLIF's k) to float32 tolerance.
The Triton kernels run on the CPU here under TRITON_INTERPRET=1 (set in conftest.py).
"""

import itertools
import os

import pytest
import torch

import neurons
from neurons import kernels
from neurons.surrogate import available, get

# SNN_MSI_TEST_DEVICE=cuda (with TRITON_INTERPRET=0) runs the Triton cases on a GPU
DEVICE = os.environ.get("SNN_MSI_TEST_DEVICE", "cpu")
IMPLS = [
    pytest.param("cpu", id="cpu", marks=pytest.mark.skipif(DEVICE != "cpu", reason="C++ path is CPU only")),
    pytest.param(
        "triton",
        id="triton",
        marks=pytest.mark.skipif(kernels._triton_import_error() is not None, reason="triton not installed"),
    ),
]
LEAKS = ["if", "lif", "plif"]
RESETS = ["hard", "soft", "none"]
SHAPES = [(5, 3, 7), (3, 2, 4, 33), (7, 1100)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _leak_kwargs(leak):
    if leak == "lif":
        return {"tau": 3.0}
    if leak == "plif":
        return {"k": torch.tensor(0.37, device=DEVICE, requires_grad=True)}
    return {}


def _run(impl, x, v0, leak_kw, **kw):
    return kernels.if_family_multi_step(impl, x, v0, **leak_kw, **kw)


def _check(impl, shape, dtype, leak, reset, decay_input, sg_name, detach):
    torch.manual_seed(hash((impl, shape, leak, reset, decay_input, sg_name, detach)) % 2**31)
    x = (torch.randn(shape) * 0.7 + 0.3).to(dtype).to(DEVICE)
    v0 = (torch.randn(shape[1:]) * 0.2).to(DEVICE)
    sg = get(sg_name, {"fast_sigmoid": 5.0}.get(sg_name))
    kw = dict(decay_input=decay_input, v_threshold=0.6, v_reset=-0.1, reset=reset, surrogate=sg,
              detach_reset=detach)  # fmt: skip
    g = torch.randn(shape).to(dtype).to(DEVICE)
    gv = torch.randn(shape[1:]).to(DEVICE)
    results = []
    for which in ("torch", impl):
        leak_kw = _leak_kwargs(leak)
        xr = x.clone().requires_grad_(True)
        vr = v0.clone().requires_grad_(True)
        s, v = _run(which, xr, vr, leak_kw, **kw)
        grads = torch.autograd.grad(
            (s * g).float().sum() + (v * gv).sum(),
            [xr, vr, *(t for t in leak_kw.values() if isinstance(t, torch.Tensor))],
        )
        results.append((s, v, grads))
    (s_ref, v_ref, g_ref), (s_f, v_f, g_f) = results
    assert s_f.dtype == dtype and s_f.shape == x.shape
    assert torch.equal(s_ref, s_f), f"{impl}: spikes differ in {(s_ref != s_f).sum()} places"
    assert 0 < s_ref.float().mean() < 1
    torch.testing.assert_close(v_f, v_ref, rtol=1e-6, atol=1e-6)
    tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
    for a, b in zip(g_f, g_ref, strict=True):
        torch.testing.assert_close(a.float(), b.float(), **tol)


CASES = [
    (leak, reset, decay, available()[i % len(available())], DTYPES[i % 3], SHAPES[i % 3], i % 4 == 1)
    for i, (leak, reset, decay) in enumerate(itertools.product(LEAKS, RESETS, [True, False]))
    if not (leak == "if" and not decay)
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("leak, reset, decay, sg, dtype, shape, detach", CASES)
def test_fused_matches_reference(impl, leak, reset, decay, sg, dtype, shape, detach):
    if impl == "cpu" and kernels.unavailable_reason("cpu", torch.zeros(1)):
        pytest.skip(kernels.unavailable_reason("cpu", torch.zeros(1)))
    _check(impl, shape, dtype, leak, reset, decay, sg, detach)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("sg", available())
def test_every_surrogate(impl, sg):
    _check(impl, (4, 2, 50), torch.float32, "lif", "hard", True, sg, False)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("name", ["if", "lif", "plif"])
def test_module_backends_agree_across_chunks(impl, name):
    """A module fed two chunks of a sequence gives the same spikes and gradients with every backend."""
    x = (torch.randn(6, 3, 40) + 0.5).to(DEVICE)
    outs = []
    for backend in ("torch", impl):
        n = neurons.create(name, v_threshold=0.5, step_mode="m", backend=backend).to(DEVICE)
        xr = x.clone().requires_grad_(True)
        s = torch.cat([n(xr[:3]), n(xr[3:])])
        params = list(n.parameters())
        weights = torch.linspace(-1, 1, s.numel(), device=DEVICE).view_as(s)
        grads = torch.autograd.grad((s * weights).sum(), [xr, *params])
        outs.append((s, grads))
    assert torch.equal(outs[0][0], outs[1][0])
    for a, b in zip(outs[0][1], outs[1][1], strict=True):
        torch.testing.assert_close(a, b, rtol=1e-4, atol=1e-5)


@pytest.mark.skipif(DEVICE != "cpu", reason="checks the CPU fallback")
def test_selection_explains_failure(monkeypatch):
    with pytest.raises(ValueError, match="backend"):
        neurons.create("lif", backend="cuda")
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    n = neurons.create("lif", backend="triton", step_mode="m")
    with pytest.raises(ValueError, match="triton.*cannot run here.*CUDA"):
        n(torch.rand(2, 3))
    assert kernels.select("auto", torch.zeros(1)) in ("cpu", "torch")
