"""Fused multi-step kernels for the IF family (IF, LIF, ParametricLIF), behind one selector.

Implementations, each in its own file next to the reference:

- ``reference.py``: per-step PyTorch loop (autograd backward) -- the definition the others are tested against;
- ``cpu.py``: one C++ loop per direction, OpenMP over neurons (CPU);
- ``triton_if.py``: one Triton launch per direction (CUDA; CPU under ``TRITON_INTERPRET=1``).

``select(backend, x)`` picks one: ``"auto"`` is triton on CUDA, the C++ loop on CPU, torch when neither can
run. The environment variable ``SNN_MSI_BACKEND`` overrides ``"auto"``. Asking for an implementation that
cannot run raises a ``ValueError`` that says why.
"""

from __future__ import annotations

import functools
import os

import torch

from ..surrogate import Surrogate
from . import reference

BACKENDS = ("auto", "torch", "cpu", "triton")
_LEAK = {"none": 0, "div": 1, "mul": 2}
_RESET = {"hard": 0, "soft": 1, "none": 2}

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
    """Fused multi-step op. Saves the charged membrane ``h`` (float32) and, for ParametricLIF, ``x``."""

    @staticmethod
    def forward(ctx, x_seq, v0, k_tensor, impl, leak, tau, decay_input, th, vr, reset, surrogate, detach):
        T = x_seq.shape[0]
        x2 = x_seq.reshape(T, -1)
        v0f = v0.reshape(-1).float().contiguous()
        if impl == "cpu":
            from . import cpu

            xf = x2.float().contiguous()
            k = float(k_tensor)
            s, v, h = cpu.forward(xf, v0f, leak, tau, k, decay_input, th, vr, reset)
            s = s.to(x_seq.dtype)
            saved_x = xf
        else:
            from . import triton_if

            xc = x2.contiguous()
            n = v0f.numel()
            s = torch.empty_like(xc)
            h = torch.empty(xc.shape, dtype=torch.float32, device=xc.device)
            v = v0f.clone()
            triton_if.if_family_fwd_kernel[triton_if.grid(n)](
                xc, v, s, h, k_tensor, T, n, tau, th, vr,
                LEAK=leak, DECAY_INPUT=decay_input, RESET=reset, BLOCK=triton_if.BLOCK,
            )  # fmt: skip
            saved_x = xc
        ctx.save_for_backward(h, saved_x if leak == _LEAK["mul"] else None, v0f, k_tensor)
        ctx.cfg = (
            impl,
            leak,
            decay_input,
            th,
            vr,
            reset,
            surrogate,
            detach,
            x_seq.shape,
            x_seq.dtype,
            v0.shape,
        )
        return s.reshape(x_seq.shape), v.reshape(v0.shape)

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        h, x, v0f, k_tensor = ctx.saved_tensors
        impl, leak, decay_input, th, vr, reset, surrogate, detach, x_shape, x_dtype, v_shape = ctx.cfg
        T = h.shape[0]
        gs = (torch.zeros_like(h) if grad_s is None else grad_s.reshape(T, -1)).float().contiguous()
        gv = (torch.zeros_like(v0f) if grad_v is None else grad_v.reshape(-1)).float().contiguous()
        if impl == "cpu":
            from . import cpu

            k = float(k_tensor)
            empty = torch.empty(0)
            gx, gv0, gk = cpu.backward(
                gs, gv, h, x if x is not None else empty, v0f, leak, k, decay_input, th, vr, reset,
                surrogate.kernel_id, surrogate.alpha, detach,
            )  # fmt: skip
        else:
            from . import triton_if

            n = v0f.numel()
            gx = torch.empty_like(h)
            gv0 = torch.empty_like(v0f)
            gk = torch.empty_like(v0f) if leak == _LEAK["mul"] else gv0
            triton_if.if_family_bwd_kernel[triton_if.grid(n)](
                gs, gv, h, x if x is not None else h, v0f, k_tensor, gx, gv0, gk, T, n, (T - 1) * n, th, vr,
                surrogate.alpha, LEAK=leak, DECAY_INPUT=decay_input, RESET=reset, SG=surrogate.kernel_id,
                DETACH=detach, BLOCK=triton_if.BLOCK,
            )  # fmt: skip
        grad_k = None
        if leak == _LEAK["mul"] and ctx.needs_input_grad[2]:
            grad_k = gk.sum().to(k_tensor.dtype).reshape(k_tensor.shape)
        grad_x = gx.reshape(x_shape).to(x_dtype)
        return grad_x, gv0.reshape(v_shape), grad_k, *([None] * 9)


def if_family_multi_step(
    impl: str,
    x_seq: torch.Tensor,
    v: torch.Tensor,
    *,
    tau: float | None = None,
    k: torch.Tensor | None = None,
    decay_input: bool = True,
    v_threshold: float = 1.0,
    v_reset: float = 0.0,
    reset: str = "hard",
    surrogate: Surrogate,
    detach_reset: bool = False,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run an IF-family neuron for T steps with implementation ``impl``.

    The leak: neither ``tau`` nor ``k`` (IF); ``tau`` (LIF, a division by tau); ``k`` a 0-d tensor
    ``sigmoid(w) = 1/tau`` (ParametricLIF; receives a gradient).

    Shapes: ``x_seq [T, *]``, ``v [*]`` -> ``(spikes [T, *] in x's dtype, v_T [*] float32)``.
    """
    if impl == "torch":
        return reference.if_family_multi_step(
            x_seq, v, tau, k, decay_input, v_threshold, v_reset, reset, surrogate, detach_reset
        )
    if surrogate.kernel_id < 0:
        raise ValueError(f"surrogate {type(surrogate).__name__} has no fused kernel; use backend='torch'")
    if k is not None:
        leak, k_tensor = _LEAK["mul"], k.float()
    elif tau is not None:
        leak, k_tensor = _LEAK["div"], torch.tensor(1.0 / tau, device=x_seq.device)
    else:
        leak, k_tensor = _LEAK["none"], torch.zeros((), device=x_seq.device)
    return _IFFamily.apply(
        x_seq, v, k_tensor, impl, leak, 1.0 if tau is None else tau, decay_input, float(v_threshold),
        float(v_reset), _RESET[reset], surrogate, bool(detach_reset),
    )  # fmt: skip
