"""Fused IF-family multi-step kernels in Triton: one launch per direction for all T steps.

Forward reads ``x [T, N]`` once and writes spikes (input dtype) and the charged membrane ``h`` (float32,
the one tensor per step the backward needs); a fresh state (``HAS_V0=False``) starts at ``v_reset`` without a
state tensor, and ``CHECK`` writes one non-finite-input flag per program. Backward walks T backwards, reading
``grad_s`` and ``h`` once and writing ``grad_x`` once (``HAS_GV=False``: no gradient for the final state, no
zero tensor). Arithmetic mirrors ``reference.py`` (true division for LIF), so spikes are exact.

Runs on CUDA, or on the CPU under ``TRITON_INTERPRET=1`` (how the tests check it without a GPU).
"""

from __future__ import annotations

import functools
import os

import triton
import triton.language as tl

from ..functional import LEAKS, RESETS
from ..surrogate import KERNEL_SURROGATES

BLOCK = 1024

# the integer codes, from the one table each (neurons/functional.py, neurons/surrogate.py)
SG_SIGMOID = tl.constexpr(KERNEL_SURROGATES.index("sigmoid"))
SG_ATAN = tl.constexpr(KERNEL_SURROGATES.index("atan"))
SG_FAST_SIGMOID = tl.constexpr(KERNEL_SURROGATES.index("fast_sigmoid"))
SG_TRIANGLE = tl.constexpr(KERNEL_SURROGATES.index("triangle"))
SG_PIECEWISE_QUADRATIC = tl.constexpr(KERNEL_SURROGATES.index("piecewise_quadratic"))
SG_RECTANGULAR = tl.constexpr(KERNEL_SURROGATES.index("rectangular"))
SG_ERF = tl.constexpr(KERNEL_SURROGATES.index("erf"))
LEAK_NONE = tl.constexpr(LEAKS.index("none"))
LEAK_DIV = tl.constexpr(LEAKS.index("div"))
LEAK_MUL = tl.constexpr(LEAKS.index("mul"))
RESET_HARD = tl.constexpr(RESETS.index("hard"))
RESET_SOFT = tl.constexpr(RESETS.index("soft"))


@triton.jit
def _surrogate_grad(x, SG: tl.constexpr, alpha):
    if SG == SG_SIGMOID:
        sg = 1.0 / (1.0 + tl.exp(-alpha * x))
        g = alpha * sg * (1.0 - sg)
    elif SG == SG_ATAN:
        t = 1.5707963267948966 * alpha * x
        g = alpha / 2.0 / (1.0 + t * t)
    elif SG == SG_FAST_SIGMOID:
        d = alpha * tl.abs(x) + 1.0
        g = 1.0 / (d * d)
    elif SG == SG_TRIANGLE:
        g = tl.maximum(1.0 - alpha * tl.abs(x), 0.0)
    elif SG == SG_PIECEWISE_QUADRATIC:
        g = tl.maximum(alpha - alpha * alpha * tl.abs(x), 0.0)
    elif SG == SG_RECTANGULAR:
        g = tl.where(tl.abs(x) < 0.5 / alpha, alpha, 0.0)
    else:  # SG_ERF
        g = alpha * 0.5641895835477563 * tl.exp(-(alpha * x) * (alpha * x))
    return g


@triton.jit
def _charge(x, v, tau, k, vr, LEAK: tl.constexpr, DECAY_INPUT: tl.constexpr):
    if LEAK == LEAK_NONE:
        h = v + x
    elif LEAK == LEAK_DIV:
        if DECAY_INPUT:
            h = v + tl.math.div_rn(x - (v - vr), tau)
        else:
            h = v - tl.math.div_rn(v - vr, tau) + x
    else:
        if DECAY_INPUT:
            h = v + (x - (v - vr)) * k
        else:
            h = v - (v - vr) * k + x
    return h


@triton.jit
def _reset(h, s, th, vr, RESET: tl.constexpr):
    if RESET == RESET_HARD:
        v = s * vr + (1.0 - s) * h
    elif RESET == RESET_SOFT:
        v = h - s * th
    else:
        v = h
    return v


@triton.jit
def if_family_fwd_kernel(
    x_ptr,
    v0_ptr,
    v_ptr,
    s_ptr,
    h_ptr,
    k_ptr,
    bad_ptr,
    k_val,
    T,
    N,
    tau,
    th,
    vr,
    LEAK: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    RESET: tl.constexpr,
    HAS_V0: tl.constexpr,
    CHECK: tl.constexpr,
    BLOCK: tl.constexpr,
):
    pid = tl.program_id(0)
    offs = pid.to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if HAS_V0:
        v = tl.load(v0_ptr + offs, mask=mask, other=0.0)
    else:  # a fresh state: v_reset everywhere (no fill kernel, no state tensor read)
        v = tl.zeros([BLOCK], dtype=tl.float32) + vr
    k = k_val
    if LEAK == LEAK_MUL:
        k = tl.load(k_ptr).to(tl.float32)
    bad = tl.zeros([BLOCK], dtype=tl.int32)
    # pointers step by N per time step (no t * N product, so no 32-bit overflow for any T * N)
    xp, sp, hp = x_ptr + offs, s_ptr + offs, h_ptr + offs
    for _ in range(T):
        x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
        if CHECK:  # NaN or infinite input (NaN fails every comparison)
            bad = bad | tl.where(tl.abs(x) <= 3.4028234663852886e38, 0, 1)
        h = _charge(x, v, tau, k, vr, LEAK, DECAY_INPUT)
        s = tl.where(h - th >= 0.0, 1.0, 0.0)
        tl.store(hp, h, mask=mask)
        tl.store(sp, s.to(s_ptr.dtype.element_ty), mask=mask)
        v = _reset(h, s, th, vr, RESET)
        xp += N
        sp += N
        hp += N
    tl.store(v_ptr + offs, v, mask=mask)
    if CHECK:  # one flag per program: no atomics, no zero-fill
        tl.store(bad_ptr + pid, tl.max(bad, axis=0))


@triton.jit
def if_family_bwd_kernel(
    gs_ptr,
    gv_ptr,
    h_ptr,
    x_ptr,
    v0_ptr,
    k_ptr,
    k_val,
    gx_ptr,
    gv0_ptr,
    gk_ptr,
    T,
    N,
    last,
    th,
    vr,
    alpha,
    LEAK: tl.constexpr,
    DECAY_INPUT: tl.constexpr,
    RESET: tl.constexpr,
    SG: tl.constexpr,
    DETACH: tl.constexpr,
    HAS_GV: tl.constexpr,
    HAS_V0: tl.constexpr,
    BLOCK: tl.constexpr,
):
    offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
    mask = offs < N
    if HAS_GV:
        gv = tl.load(gv_ptr + offs, mask=mask, other=0.0).to(tl.float32)
    else:  # the final state's gradient is zero (no zero-fill kernel)
        gv = tl.zeros([BLOCK], dtype=tl.float32)
    k = k_val
    if LEAK == LEAK_MUL:
        k = tl.load(k_ptr).to(tl.float32)
    dh_dv = 1.0 - k
    gk = tl.zeros([BLOCK], dtype=tl.float32)
    # walk backwards from the last step (offset ``last = (T - 1) * N``), stepping pointers by -N
    hp, gsp, gxp, xp = h_ptr + last + offs, gs_ptr + last + offs, gx_ptr + last + offs, x_ptr + last + offs
    for tt in range(T):
        t = T - 1 - tt
        h = tl.load(hp, mask=mask, other=0.0)
        sp = tl.where(h - th >= 0.0, 1.0, 0.0)
        sg = _surrogate_grad(h - th, SG, alpha)
        if RESET == RESET_HARD:
            dr_dh = 1.0 - sp
            dr_ds = vr - h
        elif RESET == RESET_SOFT:
            dr_dh = 1.0
            dr_ds = -th
        else:
            dr_dh = 1.0
            dr_ds = 0.0
        gh = tl.load(gsp, mask=mask, other=0.0).to(tl.float32) * sg + gv * dr_dh
        if not DETACH:
            gh += gv * dr_ds * sg
        if LEAK != LEAK_NONE and DECAY_INPUT:
            gx = gh * k
        else:
            gx = gh
        tl.store(gxp, gx.to(gx_ptr.dtype.element_ty), mask=mask)
        if LEAK == LEAK_MUL:
            if t == 0:
                if HAS_V0:
                    v_prev = tl.load(v0_ptr + offs, mask=mask, other=0.0)
                else:
                    v_prev = tl.zeros([BLOCK], dtype=tl.float32) + vr
            else:
                h_prev = tl.load(hp - N, mask=mask, other=0.0)
                v_prev = _reset(h_prev, tl.where(h_prev - th >= 0.0, 1.0, 0.0), th, vr, RESET)
            if DECAY_INPUT:
                x = tl.load(xp, mask=mask, other=0.0).to(tl.float32)
                gk += gh * (x - (v_prev - vr))
            else:
                gk += -gh * (v_prev - vr)
        if LEAK == LEAK_NONE:
            gv = gh
        else:
            gv = gh * dh_dv
        hp -= N
        gsp -= N
        gxp -= N
        xp -= N
    tl.store(gv0_ptr + offs, gv, mask=mask)
    if LEAK == LEAK_MUL:
        tl.store(gk_ptr + offs, gk, mask=mask)


@functools.lru_cache(maxsize=256)
def _launch(n: int, interpreting: bool) -> tuple[tuple[int], int, int]:
    if interpreting:  # the interpreter runs programs one after another: fewer, larger blocks test faster
        block = BLOCK
    else:
        block = 256 if n <= 65536 else (512 if n <= 1 << 20 else BLOCK)
    return (triton.cdiv(n, block),), block, max(1, min(8, block // 128))


def launch(n: int) -> tuple[tuple[int], int, int]:
    """``(grid, BLOCK, num_warps)`` for ``n`` neurons, cached: small layers get small blocks, so that more
    programs share the work (a layer of 1e4 neurons is 40 programs of 256, not 10 of 1024)."""
    return _launch(n, os.environ.get("TRITON_INTERPRET", "0") == "1")


def grid(n: int):
    return launch(n)[0]
