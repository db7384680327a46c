"""Pure-PyTorch reference of the fused IF-family multi-step op: a per-step loop, autograd does the backward.

Arithmetic is float32 whatever the input dtype (spikes are returned in the input dtype), in the same order as
the neuron modules' ``charge``, so for float32 it is the modules' own loop. Every fast path is tested
against this function.
"""

from __future__ import annotations

import torch

from ..surrogate import Surrogate


def if_family_multi_step(
    x_seq: torch.Tensor,
    v: torch.Tensor,
    tau: float | None,
    k: torch.Tensor | None,
    decay_input: bool,
    v_threshold: float,
    v_reset: float,
    reset: str,
    surrogate: Surrogate,
    detach_reset: bool,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run T steps. Leak: ``tau`` (LIF, divides by tau), ``k`` a 0-d tensor (ParametricLIF) or neither (IF).

    Shapes: ``x_seq [T, *]``, ``v [*]`` -> ``(spikes [T, *] in x's dtype, v_T [*] float32)``.
    """
    out_dtype = x_seq.dtype
    x_seq = x_seq.float()
    v = v.float()
    spikes = []
    for x in x_seq:
        if k is not None:
            h = v + (x - (v - v_reset)) * k if decay_input else v - (v - v_reset) * k + x
        elif tau is not None:
            h = v + (x - (v - v_reset)) / tau if decay_input else v - (v - v_reset) / tau + x
        else:
            h = v + x
        s = surrogate(h - v_threshold)
        sr = s.detach() if detach_reset else s
        if reset == "hard":
            v = sr * v_reset + (1.0 - sr) * h
        elif reset == "soft":
            v = h - sr * v_threshold
        else:
            v = h
        spikes.append(s)
    return torch.stack(spikes).to(out_dtype), v
