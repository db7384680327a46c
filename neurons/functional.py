"""The integrate-and-fire family's dynamics, defined once: pure per-step functions and a frozen spec.

The neuron modules (``neurons.models``) and the reference loop (``neurons.kernels.reference``) call these
functions; the fused C++ and Triton kernels take their integer codes from the tables here
(:data:`LEAKS`, :data:`RESETS` and :data:`neurons.surrogate.KERNEL_SURROGATES`), so the three implementations
cannot disagree on what "soft reset" or "leak 2" means. Each step (after Norse's functional/module split)::

    h = charge(x, v)          IF: v + x;  LIF: v + (x - (v - v_r)) / tau  (decay_input) or v - (v - v_r) / tau + x;
                              ParametricLIF: the same with a learnable k = 1 / tau in place of the division
    s = H(h - v_th)           surrogate gradient in the backward
    v = reset(h, s)           hard: s v_r + (1 - s) h;  soft: h - s v_th;  none: h

State and arithmetic are float32 whatever the input dtype; spikes come back in the input dtype.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, fields

import torch

from . import surrogate as surrogate_mod

__all__ = ["LEAKS", "RESETS", "IFSpec", "IF_SPEC_FIELDS", "charge", "reset_membrane", "if_step"]

#: leak codes of the fused kernels: IF (no leak), LIF (divide by tau), ParametricLIF (multiply by k)
LEAKS = ("none", "div", "mul")
#: reset codes of the fused kernels
RESETS = ("hard", "soft", "none")


@dataclass(frozen=True)
class IFSpec:
    """Everything that defines one IF-family neuron's dynamics, as plain values (hashable, comparable).

    A neuron module offers its spec to the fused kernels (``spec()``); the kernels run nothing else.

    Attributes:
        leak: ``"none"`` (IF), ``"div"`` (LIF, ``tau``) or ``"mul"`` (ParametricLIF, a learnable ``k``).
        decay_input: the input is scaled by the leak too (SpikingJelly's LIF) or added unscaled (snnTorch).
        tau: membrane time constant in steps (``leak="div"``).
        v_threshold, v_reset: threshold and reset / resting potential.
        reset: ``"hard"``, ``"soft"`` or ``"none"``.
        surrogate, alpha: surrogate name (one of :data:`~neurons.surrogate.KERNEL_SURROGATES` for the fused
            kernels) and sharpness.
        detach_reset: no gradient through the spike in the reset term.
    """

    leak: str = "div"
    decay_input: bool = True
    tau: float = 2.0
    v_threshold: float = 1.0
    v_reset: float = 0.0
    reset: str = "hard"
    surrogate: str = "atan"
    alpha: float = 2.0
    detach_reset: bool = False

    def __post_init__(self) -> None:
        if self.leak not in LEAKS:
            raise ValueError(f"IFSpec: leak must be one of {LEAKS}, got {self.leak!r}")
        if self.reset not in RESETS:
            raise ValueError(f"IFSpec: reset must be one of {RESETS}, got {self.reset!r}")
        if not (math.isfinite(self.tau) and self.tau >= 1.0):
            raise ValueError(f"IFSpec: tau must be finite and >= 1, got {self.tau}")

    @property
    def codes(self) -> tuple[int, int, int]:
        """``(leak, reset, surrogate)`` integer codes of the fused kernels (surrogate -1: none)."""
        sg = surrogate_mod.KERNEL_SURROGATES
        return (
            LEAKS.index(self.leak),
            RESETS.index(self.reset),
            sg.index(self.surrogate) if self.surrogate in sg else -1,
        )

    @property
    def k(self) -> float:
        """The leak as a multiplier: 0 (IF), 1 / tau (LIF); ParametricLIF passes its own tensor."""
        return 0.0 if self.leak == "none" else 1.0 / self.tau

    def spike_fn(self) -> surrogate_mod.Surrogate:
        return surrogate_mod.get(self.surrogate, self.alpha)


#: the spec's fields, in order: the one list the kernel arguments (:class:`~neurons.kernels.fused.KernelArgs`),
#: the neuron modules' plan key and the C++ ``apply`` signature (``csrc/if_family.cpp``) follow
IF_SPEC_FIELDS: tuple[str, ...] = tuple(f.name for f in fields(IFSpec))


def charge(
    x: torch.Tensor,
    v: torch.Tensor,
    leak: str,
    decay_input: bool,
    v_reset: float,
    tau: float = 1.0,
    k: torch.Tensor | float | None = None,
) -> torch.Tensor:
    """The membrane before firing, ``h_t``, of the IF family (see the module docstring)."""
    if leak == "none":
        return v + x
    if leak == "div":
        return v + (x - (v - v_reset)) / tau if decay_input else v - (v - v_reset) / tau + x
    return v + (x - (v - v_reset)) * k if decay_input else v - (v - v_reset) * k + x


def reset_membrane(h: torch.Tensor, s: torch.Tensor, reset: str, v_threshold, v_reset: float) -> torch.Tensor:
    """The membrane after the spike ``s``: hard (to ``v_reset``), soft (minus the threshold) or none."""
    if reset == "hard":
        return s * v_reset + (1.0 - s) * h
    if reset == "soft":
        return h - s * v_threshold
    return h


def if_step(
    x: torch.Tensor, v: torch.Tensor, spec: IFSpec, spike_fn: surrogate_mod.Surrogate, k: torch.Tensor | None = None
) -> tuple[torch.Tensor, torch.Tensor]:
    """One step of an IF-family neuron: ``(spikes, v_next)`` (float32 arithmetic; ``x``, ``v`` float32)."""
    h = charge(x, v, spec.leak, spec.decay_input, spec.v_reset, spec.tau, k)
    s = spike_fn(h - spec.v_threshold)
    sr = s.detach() if spec.detach_reset else s
    return s, reset_membrane(h, sr, spec.reset, spec.v_threshold, spec.v_reset)
