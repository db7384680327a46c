"""The fused IF-family op as PyTorch custom operators, for ``torch.compile`` and CUDA graphs.

``torch.ops.snn_msi.if_family_fwd`` and ``torch.ops.snn_msi.if_family_bwd`` (``torch.library.custom_op``) take
the neuron's dynamics as primitive values (integer codes, floats, bools: :class:`~neurons.kernels.fused.KernelArgs`
flattened), carry a fake implementation (``register_fake``: shapes and dtypes without running a kernel) and an
autograd formula (``register_autograd``: the backward is the second op). So ``torch.compile(model,
fullgraph=True)`` traces a whole spiking network through them without a graph break, AOTAutograd puts the
backward op in the compiled backward graph, and ``mode="reduce-overhead"`` can capture the step in CUDA graphs
(with ``check_inputs=False``: the non-finite check reads a flag back from the GPU).

Eager code does not go through these operators: the dispatcher and the custom-op autograd wrapper cost about
40 us a call on the CPU, more than the kernel of a small layer, so :func:`neurons.kernels.if_family_multi_step`
uses them only while compiling (or when asked, ``use_op=True``; the tests run both paths against the reference).
Both run the same launch code, ``neurons.kernels.fused.forward`` / ``backward``.
"""

import torch
from torch import Tensor

from ..functional import LEAKS
from .fused import CPU, KernelArgs, backward, forward

__all__ = ["if_family_fwd", "if_family_bwd", "apply"]

_MUL = LEAKS.index("mul")


@torch.library.custom_op("snn_msi::if_family_fwd", mutates_args=())
def if_family_fwd(
    x: Tensor,
    v0: Tensor | None,
    k: Tensor | None,
    leak: int,
    decay_input: bool,
    tau: float,
    v_threshold: float,
    v_reset: float,
    reset: int,
    surrogate: int,
    alpha: float,
    detach_reset: bool,
    check_finite: bool,
    owner: str,
    impl: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(spikes [T, *] in x's dtype, v_T [*] float32, h)``: ``h`` is the float32 membrane ``[T, *]`` the Triton
    backward reads, or an empty tensor for the C++ loop (which saves ``x`` and recomputes it)."""
    a = KernelArgs(leak, decay_input, tau, v_threshold, v_reset, reset, surrogate, alpha, detach_reset)
    return forward(x, v0, k, a, check_finite, owner, impl)


@if_family_fwd.register_fake
def _(
    x,
    v0,
    k,
    leak,
    decay_input,
    tau,
    v_threshold,
    v_reset,
    reset,
    surrogate,
    alpha,
    detach_reset,
    check_finite,
    owner,
    impl,
):
    s = x.new_empty(x.shape)
    v = x.new_empty(x.shape[1:], dtype=torch.float32)
    h = x.new_empty((0,) if impl == CPU else x.shape, dtype=torch.float32)
    return s, v, h


@torch.library.custom_op("snn_msi::if_family_bwd", mutates_args=())
def if_family_bwd(
    grad_s: Tensor,
    grad_v: Tensor | None,
    x: Tensor | None,
    h: Tensor,
    v0: Tensor | None,
    k: Tensor | None,
    leak: int,
    decay_input: bool,
    tau: float,
    v_threshold: float,
    v_reset: float,
    reset: int,
    surrogate: int,
    alpha: float,
    detach_reset: bool,
    impl: int,
) -> tuple[Tensor, Tensor, Tensor]:
    """``(grad_x [T, *] in grad_s's dtype, grad_v0 [*] float32, grad_k partial sums [N] or empty)``. ``x`` is
    needed by the C++ loop and by ParametricLIF; None elsewhere (Triton reads ``h``)."""
    a = KernelArgs(leak, decay_input, tau, v_threshold, v_reset, reset, surrogate, alpha, detach_reset)
    if x is None:  # a zero-stride stand-in carries x's shape and dtype
        x = torch.empty((), dtype=grad_s.dtype, device=grad_s.device).expand(grad_s.shape)
    return backward(grad_s, grad_v, x, h, v0, k, a, impl)


@if_family_bwd.register_fake
def _(
    grad_s,
    grad_v,
    x,
    h,
    v0,
    k,
    leak,
    decay_input,
    tau,
    v_threshold,
    v_reset,
    reset,
    surrogate,
    alpha,
    detach_reset,
    impl,
):
    n = grad_s[0].numel()
    gx = grad_s.new_empty(grad_s.shape)
    gv0 = grad_s.new_empty(grad_s.shape[1:], dtype=torch.float32)
    gk = grad_s.new_empty((n if leak == _MUL else 0,), dtype=torch.float32)
    return gx, gv0, gk


def _setup_context(ctx, inputs, output):
    x, v0, k, leak, decay_input, tau, th, vr, reset, sg, alpha, detach, _check, _owner, impl = inputs
    ctx.args = (leak, decay_input, tau, th, vr, reset, sg, alpha, detach, impl)
    ctx.x_dtype = x.dtype
    keep_x = impl == CPU or leak == _MUL
    ctx.save_for_backward(x if keep_x else None, output[2], v0, k)
    ctx.mark_non_differentiable(output[2])


def _backward(ctx, grad_s, grad_v, _grad_h):
    x, h, v0, k = ctx.saved_tensors
    leak = ctx.args[0]
    if grad_s is None:
        grad_s = torch.zeros(h.shape if x is None else x.shape, dtype=ctx.x_dtype, device=h.device)
    gx, gv0, gk = torch.ops.snn_msi.if_family_bwd(grad_s.to(ctx.x_dtype), grad_v, x, h, v0, k, *ctx.args)
    grad_k = gk.sum().to(k.dtype).reshape(k.shape) if leak == _MUL and ctx.needs_input_grad[2] else None
    grad_v0 = gv0 if v0 is not None and ctx.needs_input_grad[1] else None
    return (gx, grad_v0, grad_k) + (None,) * 12


if_family_fwd.register_autograd(_backward, setup_context=_setup_context)


def apply(
    x: Tensor, v0: Tensor | None, k: Tensor | None, a: KernelArgs, check: bool, owner: str, impl: int
) -> tuple[Tensor, Tensor]:
    """Run the forward op (autograd through the backward op): ``(spikes, v_T)``."""
    s, v, _ = torch.ops.snn_msi.if_family_fwd(x, v0, k, *a, check, owner, impl)
    return s, v
