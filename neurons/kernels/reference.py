"""Pure-PyTorch reference of the fused IF-family multi-step op: the per-step functions of
``neurons.functional`` in a loop, autograd does the backward.

Arithmetic is float32 whatever the input dtype (spikes are returned in the input dtype); it is the neuron
modules' own loop, so every fast path tested against this function is tested against the modules.
"""

from __future__ import annotations

import torch

from ..functional import IFSpec, if_step


def if_family_multi_step(
    x_seq: torch.Tensor, v: torch.Tensor, spec: IFSpec, k: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """Run T steps of the neuron ``spec`` (``k``: ParametricLIF's learnable leak tensor).

    Shapes: ``x_seq [T, *]``, ``v [*]`` -> ``(spikes [T, *] in x's dtype, v_T [*] float32)``.
    """
    spike_fn = spec.spike_fn()
    v = v.float()
    spikes = []
    for x in x_seq.float():
        s, v = if_step(x, v, spec, spike_fn, k)
        spikes.append(s)
    return torch.stack(spikes).to(x_seq.dtype), v
