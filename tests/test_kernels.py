"""Every fused implementation against the PyTorch reference on fresh random inputs.

Spikes must be exactly equal; gradients (input, initial state, ParametricLIF's k) to float32 tolerance. Each
implementation is checked through both entry points: the eager autograd Function and the custom operators
(``torch.ops.snn_msi.if_family_fwd`` / ``_bwd``, what torch.compile traces).
The Triton kernels run on the CPU here under TRITON_INTERPRET=1 (set in conftest.py).
"""

import functools
import itertools
import os
import re

import pytest
import torch

import neurons
from neurons import kernels
from neurons.functional import IFSpec
from neurons.surrogate import KERNEL_SURROGATES

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
LEAKS = {"if": "none", "lif": "div", "plif": "mul"}
RESETS = ["hard", "soft", "none"]
SHAPES = [(5, 3, 7), (3, 2, 4, 33), (7, 1100)]
DTYPES = [torch.float32, torch.float16, torch.bfloat16]


def _check(impl, shape, dtype, leak, reset, decay_input, sg_name, detach, fresh=False, only_spikes=False):
    """The reference against ``impl`` through both entry points: the eager autograd Function and the custom
    operators (what torch.compile traces). ``fresh``: no initial state (v_reset); ``only_spikes``: no gradient
    reaches the final state."""
    torch.manual_seed(hash((impl, shape, leak, reset, decay_input, sg_name, detach)) % 2**31)
    x = (torch.randn(shape) * 0.7 + 0.3).to(dtype).to(DEVICE)
    v0 = (torch.randn(shape[1:]) * 0.2).to(DEVICE)
    spec = IFSpec(
        LEAKS[leak], decay_input, 3.0, 0.6, -0.1, reset, sg_name, {"fast_sigmoid": 5.0}.get(sg_name, 1.5), detach
    )
    g = torch.randn(shape).to(dtype).to(DEVICE)
    gv = torch.randn(shape[1:]).to(DEVICE)
    results = []
    for which, use_op in (("torch", False), (impl, False), (impl, True)):
        k = torch.tensor(0.37, device=DEVICE, requires_grad=True) if leak == "plif" else None
        xr = x.clone().requires_grad_(True)
        vr = None if fresh else v0.clone().requires_grad_(True)
        s, v = kernels.if_family_multi_step(which, xr, vr, spec, k, use_op=use_op)
        loss = (s * g).float().sum() + (0 if only_spikes else (v * gv).sum())
        grads = torch.autograd.grad(loss, [xr, *([] if fresh else [vr]), *([k] if k is not None else [])])
        results.append((s, v, grads))
    s_ref, v_ref, g_ref = results[0]
    assert 0 < s_ref.float().mean() < 1
    for api, (s_f, v_f, g_f) in zip(("function", "op"), results[1:], strict=True):
        assert s_f.dtype == dtype and s_f.shape == x.shape, api
        assert torch.equal(s_ref, s_f), f"{impl} ({api}): spikes differ in {(s_ref != s_f).sum()} places"
        torch.testing.assert_close(v_f, v_ref, rtol=1e-6, atol=1e-6)
        tol = dict(rtol=1e-4, atol=1e-5) if dtype == torch.float32 else dict(rtol=1e-2, atol=1e-2)
        for a, b in zip(g_f, g_ref, strict=True):
            assert a.dtype == b.dtype, api
            torch.testing.assert_close(a.float(), b.float(), **tol)


# every surrogate x reset x dtype; the leak, decay_input, shape, detach_reset, a fresh state and a final state
# without gradient cycle through theirs
CASES = [
    (list(LEAKS)[i % 3], reset, i % 5 != 2, sg, dtype, SHAPES[i % 3], i % 4 == 1, i % 2 == 0, i % 7 == 3)
    for i, (sg, reset, dtype) in enumerate(itertools.product(KERNEL_SURROGATES, RESETS, DTYPES))
]


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("leak, reset, decay, sg, dtype, shape, detach, fresh, only_spikes", CASES)
def test_fused_matches_reference(impl, leak, reset, decay, sg, dtype, shape, detach, fresh, only_spikes):
    if impl == "cpu" and kernels.unavailable_reason("cpu", torch.zeros(1)):
        pytest.skip(kernels.unavailable_reason("cpu", torch.zeros(1)))
    _check(impl, shape, dtype, leak, reset, decay, sg, detach, fresh, only_spikes)


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("leak", list(LEAKS))
@pytest.mark.parametrize("decay", [True, False])
def test_every_leak(impl, leak, decay):
    _check(impl, (4, 2, 50), torch.float32, leak, "hard", decay, "atan", False)


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


@pytest.mark.parametrize("impl", IMPLS)
@pytest.mark.parametrize("use_op", [False, True], ids=["function", "op"])
@pytest.mark.filterwarnings("ignore:invalid value encountered")
@pytest.mark.parametrize("bad, what", [(float("nan"), "NaN"), (float("inf"), "infinite"), (-float("inf"), "infinite")])
def test_fused_paths_reject_nonfinite_input(impl, use_op, bad, what):
    """check_finite runs inside the fused op (no separate pass on the CPU) and names the owner."""
    spec = IFSpec("div", True, 2.0, 1.0, 0.0, "hard", "atan", 2.0, False)
    x = torch.zeros(3, 2, 300, device=DEVICE)
    x[2, 1, 257] = bad
    with pytest.raises(neurons.NonFiniteInputError, match=f"MyLIF: input x contains {what}"):
        kernels.if_family_multi_step(impl, x, None, spec, check_finite=True, owner="MyLIF", use_op=use_op)
    s, _ = kernels.if_family_multi_step(impl, x, None, spec, check_finite=False, use_op=use_op)  # unchecked: runs
    assert s.shape == x.shape


@pytest.mark.parametrize("impl", IMPLS)
def test_module_keeps_state_dtype_and_shape(impl):
    """A fresh module state is created by the kernel (no init_state call): float32, the input's shape minus T."""
    n = neurons.create("lif", step_mode="m", backend=impl).to(DEVICE)
    s = n(torch.rand(4, 2, 3, 5, device=DEVICE, dtype=torch.bfloat16) * 2)
    assert s.dtype == torch.bfloat16 and n.v.dtype == torch.float32 and n.v.shape == (2, 3, 5)
    with pytest.raises(ValueError, match="holds state of shape"):  # a new shape without reset(): the error
        n(torch.rand(4, 7, device=DEVICE))
    neurons.reset(n)
    n(torch.rand(4, 7, device=DEVICE))  # after reset(): a fresh state of the new shape
    assert n.v.shape == (7,)


def _cpp_parameters(source: str, function: str) -> list[str]:
    """The parameter names of a top-level C++ function of ``if_family.cpp``."""
    m = re.search(rf"^\S[^\n(]*\b{function}\(([^)]*)\)\s*\{{", source, re.M)
    assert m is not None, function
    return [re.findall(r"\w+", p)[-1] for p in m.group(1).split(",")]


def test_the_cpp_signatures_follow_the_spec_fields():
    """One list of the IF spec's fields: the kernel arguments are it, the C++ ``apply`` takes it in order and by
    name, and the launch code passes ``forward`` / ``backward`` the fields their C++ parameters name."""
    import ast
    from pathlib import Path

    from neurons.functional import IF_SPEC_FIELDS
    from neurons.kernels.fused import KernelArgs

    csrc = Path(kernels.__file__).parent / "csrc" / "if_family.cpp"
    source = csrc.read_text()
    assert KernelArgs._fields == IF_SPEC_FIELDS == tuple(f for f in IFSpec.__dataclass_fields__)
    assert _cpp_parameters(source, "apply") == ["x", "v0", "k", *IF_SPEC_FIELDS, "check"]
    # forward / backward take some fields (and k) under short names: the launch code passes those fields there
    short = {"th": "v_threshold", "vr": "v_reset", "sg_id": "surrogate"}
    launch = ast.parse((Path(kernels.__file__).parent / "fused.py").read_text())
    calls = {
        node.func.attr: node
        for node in ast.walk(launch)
        if isinstance(node, ast.Call)
        and isinstance(node.func, ast.Attribute)
        and getattr(node.func.value, "id", None) == "cpu"
    }
    for fn in ("forward", "backward"):
        params = [short.get(p, p) for p in _cpp_parameters(source, fn)]
        passed = [
            a.attr if isinstance(a, ast.Attribute) and getattr(a.value, "id", None) == "a" else None
            for a in calls[fn].args
        ]
        assert len(params) == len(passed), fn
        for name, field in zip(params, passed, strict=True):
            if field is not None:  # an argument taken from the KernelArgs: the parameter names that field
                assert name == field, (fn, name, field)
        assert {p for p in params if p in IF_SPEC_FIELDS} == {f for f in passed if f is not None}, fn


@pytest.mark.skipif(DEVICE != "cpu", reason="builds a C++ extension on this machine")
def test_a_dead_builders_lock_does_not_block_the_next_build(tmp_path):
    """PyTorch's build ``lock`` left by a process killed while building: the next load removes it and goes on (with
    PyTorch's lock alone it waits forever)."""
    import subprocess
    import sys
    import textwrap

    from neurons.kernels import cpu

    if cpu.unavailable_reason() is not None:
        pytest.skip(cpu.unavailable_reason())
    src = tmp_path / "tiny.cpp"
    src.write_text(
        "#include <torch/extension.h>\nint one() { return 1; }\nPYBIND11_MODULE(TORCH_EXTENSION_NAME, m) "
        '{ m.def("one", &one); }\n'
    )
    script = textwrap.dedent(f"""
        import os
        os.environ["SNN_MSI_EXT_DIR"] = {str(tmp_path / "ext")!r}
        os.environ["SNN_MSI_PORTABLE_BUILD"] = "1"
        from pathlib import Path
        from neurons.kernels.cpu import load_extension
        print(load_extension("snn_msi_lock_test", Path({str(src)!r})).one())
    """)

    def load(timeout: int) -> None:
        done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout)
        assert done.stdout.strip() == "1", done.stderr

    load(timeout=300)  # the build
    (build_dir,) = (tmp_path / "ext").iterdir()
    (build_dir / "lock").write_text("")  # what a killed builder leaves
    load(timeout=60)
    assert not (build_dir / "lock").exists()


def test_a_builds_name_changes_with_source_text_path_flags_and_cpu(tmp_path, monkeypatch):
    """The cached build's name: the same for the same source file, flags and CPU; another for an edited source,
    the same text in another checkout (ninja's command names the path: two checkouts sharing a folder rebuilt it in
    turn), other flags, or (native builds only) another CPU."""
    from neurons.kernels import cpu

    a, b = tmp_path / "a" / "k.cpp", tmp_path / "b" / "k.cpp"
    for f in (a, b):
        f.parent.mkdir()
        f.write_text("int one() { return 1; }\n")
    name = functools.partial(cpu.build_name, "ext")
    base = name(a, ["-O3"], True)
    assert name(a, ["-O3"], True) == base
    assert base.startswith("ext_")
    assert name(b, ["-O3"], True) != base
    assert name(a, ["-O2"], True) != base
    portable = name(a, ["-O3"], False)
    assert portable != base
    monkeypatch.setattr(cpu, "_cpu_id", lambda: "another cpu")
    assert name(a, ["-O3"], True) != base
    assert name(a, ["-O3"], False) == portable
    a.write_text("int one() { return 2; }\n")
    assert name(a, ["-O3"], True) != base


def test_select_is_marked_constant_for_torch_compile_without_importing_dynamo():
    """``kernels`` marks its traced selection as ``torch.compiler.assume_constant_result`` does (compared on a fresh
    function: a torch whose decorator does more fails here), and importing the package and the CLI does not import
    ``torch._dynamo`` (about half of their import time)."""
    import subprocess
    import sys

    def fn():
        return None

    marked = torch.compiler.assume_constant_result(fn)
    assert marked is fn and vars(fn) and vars(fn).items() <= vars(kernels._select_traced).items()
    code = "import sys, neurons, snn_msi.cli, snn_msi.training; print('torch._dynamo' in sys.modules)"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.stdout.strip() == "False", done.stderr


def test_prepare_selects_each_neurons_implementation_before_a_run(monkeypatch):
    """``kernels.prepare`` (the trainer calls it before its compute meter starts) resolves every neuron's backend
    on the run's device, so the C++ build is not timed as training; an impossible backend fails there, naming it."""
    seen = []
    monkeypatch.setattr(kernels, "select", lambda backend, x, owner: seen.append((backend, x.device.type, owner)))
    model = torch.nn.Sequential(
        neurons.create("lif", backend="cpu"), torch.nn.ReLU(), neurons.create("plif", backend="torch")
    )
    kernels.prepare(model, "cpu")
    assert sorted(seen) == sorted([("cpu", "cpu", type(model[0]).__name__), ("torch", "cpu", type(model[2]).__name__)])
    monkeypatch.undo()
    monkeypatch.setenv("TRITON_INTERPRET", "0")
    with pytest.raises(ValueError, match="triton.*cannot run here"):
        kernels.prepare(torch.nn.Sequential(neurons.create("lif", backend="triton")), "cpu")


@pytest.mark.skipif(DEVICE != "cpu", reason="checks the CPU fallback")
def test_auto_says_when_it_falls_back_to_the_pytorch_path(monkeypatch):
    """A C++ extension that does not build: ``auto`` runs (the PyTorch path is correct, only slower) and warns,
    once per setting, why."""
    from neurons.kernels import cpu

    monkeypatch.setattr(cpu, "unavailable_reason", lambda: "C++ extension failed to build/load: no compiler")
    kernels._select.cache_clear()
    try:
        with pytest.warns(UserWarning, match="backend 'auto' uses the PyTorch path.*no compiler"):
            assert kernels.select("auto", torch.zeros(1)) == "torch"
    finally:
        kernels._select.cache_clear()
