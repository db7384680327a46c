"""The fused IF-family op on plain values: the launch code of both kernels, the eager autograd Function, and the
spec's primitive arguments.

Two entry points share :func:`forward` and :func:`backward` below (the only code that launches a kernel):

- :class:`IFFamilyFunction`, a ``torch.autograd.Function``: the eager Triton path (the eager C++ path has its
  autograd node in C++, ``csrc/if_family.cpp``: no Python in its backward);
- the custom operators ``torch.ops.snn_msi.if_family_fwd`` / ``if_family_bwd`` (``neurons.kernels.ops``): what
  ``torch.compile`` traces, with a fake (meta) implementation and a registered autograd formula.

Every argument that defines the dynamics travels as a primitive value (ints, floats, bools): ``KernelArgs``.
What each implementation saves for the backward: the C++ loop saves the input ``x`` and recomputes the membrane
in cache (its forward writes only the spikes); the Triton kernel saves the charged membrane ``h`` (float32, and
``x`` for ParametricLIF).
"""

from __future__ import annotations

import functools
from collections import namedtuple
from dataclasses import fields

import torch

from ..base import NonFiniteInputError
from ..functional import IF_SPEC_FIELDS, LEAKS, IFSpec

__all__ = [
    "IMPLS",
    "CPU",
    "TRITON",
    "CPU_DTYPES",
    "KernelArgs",
    "kernel_args",
    "forward",
    "backward",
    "IFFamilyFunction",
    "raise_nonfinite",
]

#: implementation codes of the custom operators (a primitive ``impl`` argument); dtypes the C++ loop reads
IMPLS = ("cpu", "triton")
CPU, TRITON = 0, 1
_MUL = LEAKS.index("mul")
CPU_DTYPES = (torch.float32, torch.bfloat16, torch.float16)


class KernelArgs(namedtuple("KernelArgs", IF_SPEC_FIELDS)):
    """An :class:`~neurons.functional.IFSpec` as the kernels take it, field by field in :data:`IF_SPEC_FIELDS`
    order (the C++ ``apply`` signature's): ``leak``, ``reset`` and ``surrogate`` as integer codes, the others as
    plain floats and bools."""

    __slots__ = ()

    @property
    def k(self) -> float:
        """The fixed leak as a multiplier: 0 (IF), 1 / tau (LIF); ParametricLIF passes its tensor instead."""
        return 0.0 if self.leak == 0 else 1.0 / self.tau


#: each spec field's plain type in the kernels (the codes are ints)
_PLAIN = {f.name: {"float": float, "bool": bool}.get(f.type, int) for f in fields(IFSpec)}


def _kernel_args(spec: IFSpec) -> KernelArgs:
    codes = dict(zip(("leak", "reset", "surrogate"), spec.codes, strict=True))
    if codes["surrogate"] < 0:
        raise ValueError(f"surrogate {spec.surrogate!r} has no fused kernel; use backend='torch'")
    return KernelArgs(*(_PLAIN[f](codes.get(f, getattr(spec, f))) for f in IF_SPEC_FIELDS))


_kernel_args_cached = functools.lru_cache(maxsize=256)(_kernel_args)


def kernel_args(spec: IFSpec) -> KernelArgs:
    """The primitive arguments of ``spec`` (cached per spec in eager mode; traced as plain code when compiling)."""
    if torch.compiler.is_compiling():
        return _kernel_args(spec)
    return _kernel_args_cached(spec)


def raise_nonfinite(x: torch.Tensor, owner: str) -> None:
    what = "NaN" if bool(torch.isnan(x).any()) else "infinite values"
    raise NonFiniteInputError(f"{owner}: input x contains {what}")


def _check_capture(x: torch.Tensor, owner: str) -> None:
    if x.is_cuda and torch.cuda.is_current_stream_capturing():
        raise ValueError(
            f"{owner}: check_inputs=True reads a flag back from the GPU, which a CUDA graph cannot "
            "capture; build the neuron with check_inputs=False to capture it"
        )


def forward(
    x: torch.Tensor, v0: torch.Tensor | None, k: torch.Tensor | None, a: KernelArgs, check: bool, owner: str, impl: int
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """``x [T, *]``, ``v0 [*]`` float32 or None (fresh: ``v_reset``) -> ``(spikes [T, *] in x's dtype, v_T [*]
    float32, h)`` with ``h [T, *]`` float32 for Triton and an empty tensor for the C++ loop (which recomputes it).

    ``check``: raise :class:`~neurons.base.NonFiniteInputError` (naming ``owner``) if ``x`` holds NaN or inf.
    """
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    n = x2.shape[1]
    v0f = None if v0 is None else v0.reshape(-1).float().contiguous()
    if impl == CPU:
        from . import cpu

        xc = x if x.dtype in CPU_DTYPES else x.float()
        k_val = float(k) if a.leak == _MUL else a.k
        s, v, bad = cpu.forward(xc, v0f, a.leak, a.tau, k_val, a.decay_input, a.v_threshold, a.v_reset, a.reset)
        if check and bad:
            raise_nonfinite(x, owner)
        return s.to(x.dtype), v.view(x.shape[1:]), xc.new_empty(0, dtype=torch.float32)
    from . import triton_if

    if check:
        _check_capture(x, owner)
    x2 = x2.contiguous()
    s = torch.empty_like(x2)
    h = torch.empty(x2.shape, dtype=torch.float32, device=x2.device)
    v = torch.empty(n, dtype=torch.float32, device=x2.device)
    grid, block, warps = triton_if.launch(n)
    bad = torch.empty(grid[0], dtype=torch.int32, device=x2.device) if check else v
    triton_if.if_family_fwd_kernel[grid](
        x2,
        v if v0f is None else v0f,
        v,
        s,
        h,
        k if k is not None else v,
        bad,
        a.k,
        T,
        n,
        a.tau,
        a.v_threshold,
        a.v_reset,
        LEAK=a.leak,
        DECAY_INPUT=a.decay_input,
        RESET=a.reset,
        HAS_V0=v0f is not None,
        CHECK=check,
        BLOCK=block,
        num_warps=warps,
    )
    if check and bool(bad.any()):
        raise_nonfinite(x, owner)
    h = h.view(x.shape)
    return s.view(x.shape), v.view(x.shape[1:]), h


def backward(
    grad_s: torch.Tensor | None,
    grad_v: torch.Tensor | None,
    x: torch.Tensor,
    h: torch.Tensor,
    v0: torch.Tensor | None,
    k: torch.Tensor | None,
    a: KernelArgs,
    impl: int,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Gradients of :func:`forward`: ``(grad_x [T, *] in x's dtype, grad_v0 [*] float32, grad_k)`` with
    ``grad_k`` the per-neuron partial sums ``[N]`` for ParametricLIF (an empty tensor otherwise).

    ``x``: the forward's input (read by the C++ loop, and by Triton for ParametricLIF); ``h``: the forward's
    membrane (Triton). A None ``grad_s`` / ``grad_v`` is zero; a None ``v0`` a fresh state.
    """
    T = x.shape[0]
    x2 = x.reshape(T, -1)
    n = x2.shape[1]
    if grad_s is None:
        grad_s = torch.zeros_like(x)
    gs = grad_s.reshape(T, -1)
    gv = None if grad_v is None else grad_v.reshape(-1).float().contiguous()
    v0f = None if v0 is None else v0.reshape(-1).float().contiguous()
    plif = a.leak == _MUL
    if impl == CPU:
        from . import cpu

        xc = x if x.dtype in CPU_DTYPES else x.float()
        gx, gv0, gk = cpu.backward(
            grad_s.to(xc.dtype),
            gv,
            xc,
            v0f,
            a.leak,
            a.tau,
            float(k) if plif else a.k,
            a.decay_input,
            a.v_threshold,
            a.v_reset,
            a.reset,
            a.surrogate,
            a.alpha,
            a.detach_reset,
        )
        return gx.to(x.dtype), gv0.view(x.shape[1:]), gk
    from . import triton_if

    gs = gs.contiguous()  # read in its own dtype, converted in registers
    h2 = h.reshape(T, -1)
    gx = torch.empty(x2.shape, dtype=x.dtype, device=x.device)
    gv0 = torch.empty(n, dtype=torch.float32, device=x.device)
    gk = torch.empty(n if plif else 0, dtype=torch.float32, device=x.device)
    grid, block, warps = triton_if.launch(n)
    xp = x2.contiguous() if plif else h2
    triton_if.if_family_bwd_kernel[grid](
        gs,
        gv0 if gv is None else gv,
        h2,
        xp,
        gv0 if v0f is None else v0f,
        k if plif else gv0,
        a.k,
        gx,
        gv0,
        gk if plif else gv0,
        T,
        n,
        (T - 1) * n,
        a.v_threshold,
        a.v_reset,
        a.alpha,
        LEAK=a.leak,
        DECAY_INPUT=a.decay_input,
        RESET=a.reset,
        SG=a.surrogate,
        DETACH=a.detach_reset,
        HAS_GV=gv is not None,
        HAS_V0=v0f is not None,
        BLOCK=block,
        num_warps=warps,
    )
    return gx.view(x.shape), gv0.view(x.shape[1:]), gk


class IFFamilyFunction(torch.autograd.Function):
    """The eager fused op: :func:`forward` and :func:`backward` under autograd (no grad materialised for an
    unused output: the kernels take None as zero)."""

    @staticmethod
    def forward(ctx, x, v0, k, a: KernelArgs, check: bool, owner: str, impl: int):
        s, v, h = forward(x, v0, k, a, check, owner, impl)
        plif = a.leak == _MUL
        ctx.set_materialize_grads(False)
        ctx.save_for_backward(x if impl == CPU or plif else None, h if impl == TRITON else None, v0, k)
        ctx.a, ctx.impl, ctx.x_meta = a, impl, (x.shape, x.dtype, x.device)
        return s, v

    @staticmethod
    def backward(ctx, grad_s, grad_v):
        x, h, v0, k = ctx.saved_tensors
        if x is None:  # Triton without ParametricLIF reads only h: a zero-stride stand-in carries x's shape
            shape, dtype, device = ctx.x_meta
            x = torch.empty((), dtype=dtype, device=device).expand(shape)
        gx, gv0, gk = backward(grad_s, grad_v, x, h, v0, k, ctx.a, ctx.impl)
        grad_k = gk.sum().to(k.dtype).reshape(k.shape) if k is not None and ctx.needs_input_grad[2] else None
        return gx, gv0 if v0 is not None and ctx.needs_input_grad[1] else None, grad_k, None, None, None, None
