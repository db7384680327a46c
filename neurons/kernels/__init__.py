"""Fused multi-step kernels for the IF family (IF, LIF, ParametricLIF), behind one selector.

Implementations, each in its own file next to the reference:

- ``reference.py``: per-step PyTorch loop (autograd backward) -- the definition the others are tested against;
- ``cpu.py``: one C++ loop per direction, OpenMP over neurons (CPU);
- ``triton_if.py``: one Triton launch per direction (CUDA; CPU under ``TRITON_INTERPRET=1``).

``select(backend, x)`` picks one: ``"auto"`` is triton on CUDA, the C++ loop on CPU, torch when neither can
run. The environment variable ``SNN_MSI_BACKEND`` overrides ``"auto"``. Asking for an implementation that
cannot run raises a ``ValueError`` that says why.

Every implementation runs an :class:`~neurons.functional.IFSpec` (the neuron's dynamics as plain values) and
takes its integer codes from the tables in ``neurons.functional`` and ``neurons.surrogate``.
"""

from __future__ import annotations

import functools
import os

import torch

from ..functional import LEAKS, IFSpec
from . import reference

BACKENDS = ("auto", "torch", "cpu", "triton")
_MUL = LEAKS.index("mul")

__all__ = ["BACKENDS", "check_backend", "select", "unavailable_reason", "if_family_multi_step", "reference"]


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


def unavailable_reason(impl: str, x: torch.Tensor) -> str | None:
    """None if ``impl`` can run on tensor ``x``, else a one-line reason."""
    if impl == "torch":
        return None
    if impl == "cpu":
        if x.device.type != "cpu":
            return f"the C++ path runs on CPU tensors, got a {x.device.type} tensor"
        from . import cpu

        return cpu.unavailable_reason()
    if impl == "triton":
        err = _triton_import_error()
        if err:
            return err
        if x.device.type != "cuda" and not (x.device.type == "cpu" and _interpreting()):
            return f"triton needs a CUDA tensor (or TRITON_INTERPRET=1 on CPU), got a {x.device.type} tensor"
        return None
    raise ValueError(f"unknown implementation {impl!r}; valid: {BACKENDS}")


def select(backend: str, x: torch.Tensor, owner: str = "neuron") -> str:
    """Resolve ``backend`` for input ``x`` to one of ``"torch" | "cpu" | "triton"``."""
    if backend == "auto":
        backend = os.environ.get("SNN_MSI_BACKEND", "auto")
        check_backend(backend, owner="SNN_MSI_BACKEND")
    if backend == "auto":
        order = ("triton",) if x.device.type == "cuda" else ("cpu",)
        for impl in order:
            if unavailable_reason(impl, x) is None:
                return impl
        return "torch"
    reason = unavailable_reason(backend, x)
    if reason is not None:
        raise ValueError(f"{owner}: backend={backend!r} cannot run here: {reason}")
    return backend


class _IFFamily(torch.autograd.Function):
    """Fused multi-step op. Saves the charged membrane ``h`` (float32) and, for ParametricLIF, ``x`` and ``v0``.

    ``k`` is the 0-d leak tensor of ParametricLIF (it gets a gradient) or None; IF and LIF use the spec's
    ``1 / tau`` as a plain float, so no host-to-device copy happens per call.
    """

    @staticmethod
    def forward(ctx, x_seq: torch.Tensor, v0: torch.Tensor, k: torch.Tensor | None, spec: IFSpec, impl: str):
        T = x_seq.shape[0]
        leak, reset, _ = spec.codes
        v0f = v0.reshape(-1).float().contiguous()
        n = v0f.numel()
        if impl == "cpu":
            from . import cpu

            x2 = x_seq.reshape(T, -1).float().contiguous()
            k_val = float(k) if k is not None else spec.k
            s, v, h = cpu.forward(x2, v0f, leak, spec.tau, k_val, spec.decay_input, spec.v_threshold, spec.v_reset,
                                  reset)  # fmt: skip
            s = s.to(x_seq.dtype)
        else:
            from . import triton_if

            x2 = x_seq.reshape(T, -1).contiguous()
            s = torch.empty_like(x2)
            h = torch.empty(x2.shape, dtype=torch.float32, device=x2.device)
            v = v0f.clone()
            triton_if.if_family_fwd_kernel[triton_if.grid(n)](
                x2, v, s, h, k if k is not None else v, spec.k, T, n, spec.tau, spec.v_threshold, spec.v_reset,
                LEAK=leak, DECAY_INPUT=spec.decay_input, RESET=reset, BLOCK=triton_if.BLOCK,
            )  # fmt: skip
        plif = leak == _MUL
        ctx.save_for_backward(h, x2 if plif else None, v0f if plif else None, k)
        ctx.spec, ctx.impl, ctx.x_shape, ctx.x_dtype = spec, impl, x_seq.shape, x_seq.dtype
        return s.reshape(x_seq.shape), v.reshape(v0.shape)

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        h, x2, v0f, k = ctx.saved_tensors
        spec, x_shape = ctx.spec, ctx.x_shape
        leak, reset, sg = spec.codes
        T, n = h.shape
        plif = leak == _MUL
        gs = torch.zeros_like(h) if grad_s is None else grad_s.reshape(T, -1)
        gv = torch.zeros(n, device=h.device) if grad_v is None else grad_v.reshape(-1).float().contiguous()
        if ctx.impl == "cpu":
            from . import cpu

            empty = torch.empty(0)
            gx, gv0, gk = cpu.backward(
                gs.float().contiguous(), gv, h, x2 if plif else empty, v0f if plif else empty, leak,
                float(k) if plif else spec.k, spec.decay_input, spec.v_threshold, spec.v_reset, reset, sg,
                spec.alpha, spec.detach_reset,
            )  # fmt: skip
            gx = gx.to(ctx.x_dtype)
        else:
            from . import triton_if

            gs = gs.contiguous()  # read in its own dtype, converted in registers
            gx = torch.empty(h.shape, dtype=ctx.x_dtype, device=h.device)
            gv0 = torch.empty_like(gv)
            gk = torch.empty_like(gv) if plif else gv0
            triton_if.if_family_bwd_kernel[triton_if.grid(n)](
                gs, gv, h, x2 if plif else h, v0f if plif else gv, k if plif else gv, spec.k, gx, gv0, gk, T, n,
                (T - 1) * n, spec.v_threshold, spec.v_reset, spec.alpha, LEAK=leak, DECAY_INPUT=spec.decay_input,
                RESET=reset, SG=sg, DETACH=spec.detach_reset, BLOCK=triton_if.BLOCK,
            )  # fmt: skip
        grad_k = gk.sum().to(k.dtype).reshape(k.shape) if plif and ctx.needs_input_grad[2] else None
        return gx.reshape(x_shape), gv0.reshape(x_shape[1:]), grad_k, None, None


def if_family_multi_step(
    impl: str, x_seq: torch.Tensor, v: torch.Tensor, spec: IFSpec, k: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an IF-family neuron (``spec``) for T steps with implementation ``impl``.

    ``k``: ParametricLIF's 0-d leak tensor ``sigmoid(w) = 1/tau`` (receives a gradient); None otherwise.

    Shapes: ``x_seq [T, *]``, ``v [*]`` -> ``(spikes [T, *] in x's dtype, v_T [*] float32)``.
    """
    if (k is not None) != (spec.leak == "mul"):
        raise ValueError(f"leak {spec.leak!r} {'needs' if spec.leak == 'mul' else 'takes no'} leak tensor k")
    if impl == "torch":
        return reference.if_family_multi_step(x_seq, v, spec, k)
    if spec.codes[2] < 0:
        raise ValueError(f"surrogate {spec.surrogate!r} has no fused kernel; use backend='torch'")
    return _IFFamily.apply(x_seq, v, None if k is None else k.float(), spec, impl)
