"""Fused multi-step kernels for the IF family (IF, LIF, ParametricLIF), behind one selector.

Implementations, each in its own file next to the reference:

- ``reference.py``: per-step PyTorch loop (autograd backward) -- the definition the others are tested against;
- ``cpu.py``: one C++ loop per direction, OpenMP over neurons (CPU);
- ``triton_if.py``: one Triton launch per direction (CUDA; CPU under ``TRITON_INTERPRET=1``).

``fused.py`` launches them (one function per direction, an eager autograd Function) and ``ops.py`` registers
the same two functions as PyTorch custom operators (``torch.ops.snn_msi.if_family_fwd`` / ``_bwd``) for
``torch.compile`` and CUDA graphs.

``select(backend, x)`` picks one: ``"auto"`` is triton on CUDA, the C++ loop on CPU, torch when neither can
run. The environment variable ``SNN_MSI_BACKEND`` overrides ``"auto"``. Asking for an implementation that
cannot run raises a ``ValueError`` that says why.

Every implementation runs an :class:`~neurons.functional.IFSpec` (the neuron's dynamics as plain values) and
takes its integer codes from the tables in ``neurons.functional`` and ``neurons.surrogate``.
"""

from __future__ import annotations

import functools
import os
import warnings

import torch

from ..functional import IFSpec
from . import reference
from .fused import CPU, CPU_DTYPES, IMPLS, IFFamilyFunction, KernelArgs, kernel_args, raise_nonfinite

BACKENDS = ("auto", "torch", "cpu", "triton")

__all__ = [
    "BACKENDS",
    "check_backend",
    "select",
    "prepare",
    "unavailable_reason",
    "if_family_multi_step",
    "reference",
    "KernelArgs",
    "kernel_args",
    "run_fused",
    "IMPLS",
]


def check_backend(backend: str, owner: str = "neuron") -> str:
    if backend not in BACKENDS:
        raise ValueError(f"{owner}: backend must be one of {BACKENDS}, got {backend!r}")
    return backend


def _interpreting() -> bool:
    return os.environ.get("TRITON_INTERPRET", "0") == "1"


@functools.lru_cache(maxsize=1)
def _triton_import_error() -> str | None:
    try:
        import triton  # noqa: F401
    except Exception as err:
        return f"triton is not importable ({type(err).__name__}: {err}); pip install 'snn-msi[triton]'"
    return None


def _unavailable(impl: str, device_type: str) -> str | None:
    if impl == "torch":
        return None
    if impl == "cpu":
        if device_type != "cpu":
            return f"the C++ path runs on CPU tensors, got a {device_type} tensor"
        from . import cpu

        return cpu.unavailable_reason()
    if impl == "triton":
        err = _triton_import_error()
        if err:
            return err
        if device_type != "cuda" and not (device_type == "cpu" and _interpreting()):
            return f"triton needs a CUDA tensor (or TRITON_INTERPRET=1 on CPU), got a {device_type} tensor"
        return None
    raise ValueError(f"unknown implementation {impl!r}; valid: {BACKENDS}")


def unavailable_reason(impl: str, x: torch.Tensor) -> str | None:
    """None if ``impl`` can run on tensor ``x``, else a one-line reason."""
    return _unavailable(impl, x.device.type)


@functools.lru_cache(maxsize=64)
def _select(backend: str, device_type: str, env_backend: str, interpreting: bool, owner: str) -> str:
    if backend == "auto":
        backend = check_backend(env_backend, owner="SNN_MSI_BACKEND")
    if backend == "auto":
        impl = "triton" if device_type == "cuda" else "cpu"
        reason = _unavailable(impl, device_type)
        if reason is not None:  # once per setting (cached): the run is correct, only slower, and says why
            warnings.warn(f"{owner}: backend 'auto' uses the PyTorch path (slower): {reason}", stacklevel=2)
        return impl if reason is None else "torch"
    reason = _unavailable(backend, device_type)
    if reason is not None:
        raise ValueError(f"{owner}: backend={backend!r} cannot run here: {reason}")
    return backend


def _assume_constant_result(fn):
    """``torch.compiler.assume_constant_result`` without importing ``torch._dynamo`` at import time (which doubled
    the time of ``import neurons`` and so of every ``snn-msi`` command and run process: 2.5 -> 5 s on 2 busy
    cores): that decorator only marks ``fn``, as here (``tests/test_kernels.py`` checks both marks agree)."""
    fn._dynamo_marked_constant = True
    return fn


@_assume_constant_result
def _select_traced(backend: str, device_type: str, owner: str) -> str:
    """:func:`select` as a constant for ``torch.compile`` (run once while tracing, not traced)."""
    return _select(backend, device_type, os.environ.get("SNN_MSI_BACKEND", "auto"), _interpreting(), owner)


def select(backend: str, x: torch.Tensor, owner: str = "neuron") -> str:
    """Resolve ``backend`` for input ``x`` to one of ``"torch" | "cpu" | "triton"`` (cached per backend, device
    type and environment, so a call costs a dictionary look-up)."""
    if torch.compiler.is_compiling():
        return _select_traced(backend, x.device.type, owner)
    return _select(backend, x.device.type, os.environ.get("SNN_MSI_BACKEND", "auto"), _interpreting(), owner)


def prepare(model: torch.nn.Module, device: torch.device | str) -> None:
    """Select, now, the implementation each neuron of ``model`` will use on ``device``: the C++ extension is built
    (a cold cache: about a minute) or loaded here rather than inside the first step a run times."""
    probe = torch.empty(0, device=device)
    for m in model.modules():
        if isinstance(backend := getattr(m, "backend", None), str) and backend in BACKENDS:
            select(backend, probe, owner=type(m).__name__)


def if_family_multi_step(
    impl: str,
    x_seq: torch.Tensor,
    v: torch.Tensor | None,
    spec: IFSpec,
    k: torch.Tensor | None = None,
    *,
    check_finite: bool = False,
    owner: str = "neuron",
    use_op: bool | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an IF-family neuron (``spec``) for T steps with implementation ``impl``.

    ``v``: the state before the first step, or None for a fresh one (``v_reset`` everywhere, no state tensor).
    ``k``: ParametricLIF's 0-d leak tensor ``sigmoid(w) = 1/tau`` (receives a gradient); None otherwise.
    ``check_finite``: raise :class:`~neurons.base.NonFiniteInputError` naming ``owner`` if ``x_seq`` holds NaN or
    infinite values (the fused paths check inside the kernel, no extra pass on the CPU).
    ``use_op``: go through the custom operators (``neurons.kernels.ops``); default: only while compiling.

    Shapes: ``x_seq [T, *]``, ``v [*]`` -> ``(spikes [T, *] in x's dtype, v_T [*] float32)``.
    """
    if (k is not None) != (spec.leak == "mul"):
        raise ValueError(f"leak {spec.leak!r} {'needs' if spec.leak == 'mul' else 'takes no'} leak tensor k")
    if impl == "torch":
        if check_finite:
            from ..base import check_finite as check

            check(x_seq, owner)
        if v is None:
            v = torch.full(x_seq.shape[1:], spec.v_reset, dtype=torch.float32, device=x_seq.device)
        return reference.if_family_multi_step(x_seq, v, spec, k)
    a = kernel_args(spec)
    code = IMPLS.index(impl)
    kf = None if k is None else k.float()
    if use_op is None:
        use_op = torch.compiler.is_compiling()
    if use_op:
        from . import ops

        return ops.apply(x_seq, v, kf, a, check_finite, owner, code)
    return run_fused(code, x_seq, v, kf, a, check_finite, owner)


def run_fused(code: int, x, v, k, a: KernelArgs, check: bool, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The eager fused op, no argument checks (the neuron modules plan them once): implementation ``code``
    (``IMPLS.index``), ``k`` float32 or None, ``a`` from :func:`kernel_args`."""
    if code == CPU:
        return _cpu_eager(x, v, k, a, check, owner)
    return IFFamilyFunction.apply(x, v, None if k is None else k.float(), a, check, owner, code)


def _cpu_eager(x, v, k, a: KernelArgs, check: bool, owner: str) -> tuple[torch.Tensor, torch.Tensor]:
    """The C++ op with its autograd node in C++ (the eager CPU path: no Python in the backward)."""
    from . import cpu

    xc = x if x.dtype in CPU_DTYPES else x.float()
    try:
        s, v_t = cpu.apply_fn()(xc, v, k, *a, check)  # KernelArgs is in the C++ argument order
    except ValueError as err:
        if "SNN_MSI_NONFINITE" not in str(err):
            raise
        raise_nonfinite(x, owner)
    return (s if xc is x else s.to(x.dtype)), v_t
