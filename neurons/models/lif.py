"""Integrate-and-fire family: IF, LIF and ParametricLIF (learnable tau).

Charge equations (``k = 1 / tau``, ``v_r = v_reset``)::

    IF:                      h = v + x
    LIF, decay_input=True:   h = v + (x - (v - v_r)) / tau
    LIF, decay_input=False:  h = v - (v - v_r) / tau + x
    ParametricLIF:           as LIF with k = sigmoid(w) learnable (tau = 1 / k > 1)

These three share a fused multi-step implementation (``neurons.kernels``) selected by ``backend``.
"""

from __future__ import annotations

import math

import torch
from torch import nn

from .. import kernels
from ..base import BaseNeuron, check_positive
from ..registry import register

__all__ = ["IF", "LIF", "ParametricLIF"]


class _FusedIFFamily(BaseNeuron):
    """IF-family neuron whose multi-step forward can run as one fused op (see ``neurons.kernels``).

    Args (beyond :class:`~neurons.base.BaseNeuron`):
        backend: ``"torch"`` (per-step reference), ``"cpu"`` (fused C++ loop), ``"triton"`` (fused GPU kernel)
            or ``"auto"`` (triton on CUDA, the fused C++ loop on CPU when it builds, else torch).
    """

    decay_input = True

    def __init__(self, *args, backend: str = "auto", **kwargs) -> None:
        super().__init__(*args, **kwargs)
        self.backend = kernels.check_backend(backend, owner=type(self).__name__)

    def _leak(self) -> dict:
        """The leak as the fused op takes it: ``{}`` (IF), ``{"tau": tau}`` or ``{"k": sigmoid(w)}``."""
        return {}

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        self._check(x_seq)
        if self.store_v_seq:
            return super().multi_step_forward(x_seq)
        impl = kernels.select(self.backend, x_seq, owner=type(self).__name__)
        if impl == "torch":
            return super().multi_step_forward(x_seq)
        if self.v is None or self.v.shape != x_seq.shape[1:]:
            self.init_state(x_seq[0])
        spikes, self.v = kernels.if_family_multi_step(
            impl,
            x_seq,
            self.v,
            **self._leak(),
            decay_input=self.decay_input,
            v_threshold=self.v_threshold,
            v_reset=self.v_reset,
            reset=self.reset_mode,
            surrogate=self.surrogate,
            detach_reset=self.detach_reset,
        )
        return spikes

    def extra_repr(self) -> str:
        return super().extra_repr() + f", backend={self.backend!r}"


@register("if", description="integrate-and-fire: h = v + x")
class IF(_FusedIFFamily):
    """Integrate-and-fire neuron: ``h = v + x``, no leak."""

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        return self.v + x


@register("lif", description="leaky integrate-and-fire: h = v + (x - (v - v_reset)) / tau")
class LIF(_FusedIFFamily):
    """Leaky integrate-and-fire neuron.

    Args:
        tau: membrane time constant in steps (>= 1); the membrane keeps ``1 - 1/tau`` of its distance to rest.
        decay_input: scale the input by ``1/tau`` too (SpikingJelly's default) or add it unscaled (snnTorch).
        **kwargs: see :class:`~neurons.base.BaseNeuron` and ``backend``.
    """

    def __init__(self, tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tau = check_positive("tau", tau, type(self).__name__, minimum=1.0, inclusive=True)
        self.decay_input = bool(decay_input)

    def _leak(self):
        return {"tau": self.tau}

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        if self.decay_input:
            return self.v + (x - (self.v - self.v_reset)) / self.tau
        return self.v - (self.v - self.v_reset) / self.tau + x

    def extra_repr(self) -> str:
        return f"tau={self.tau}, decay_input={self.decay_input}, " + super().extra_repr()


@register("plif", description="parametric LIF: LIF with a learnable tau (k = sigmoid(w) = 1/tau)")
class ParametricLIF(_FusedIFFamily):
    """LIF with a learnable time constant (Fang et al., 2021): ``1/tau = sigmoid(w)``, one ``w`` per layer.

    Args:
        init_tau: initial tau (> 1).
        decay_input: as :class:`LIF`.
    """

    def __init__(self, init_tau: float = 2.0, decay_input: bool = True, **kwargs) -> None:
        super().__init__(**kwargs)
        init_tau = check_positive("init_tau", init_tau, type(self).__name__, minimum=1.0)
        self.decay_input = bool(decay_input)
        self.w = nn.Parameter(torch.tensor(-math.log(init_tau - 1.0)))

    @property
    def tau(self) -> float:
        return float(1.0 / torch.sigmoid(self.w.detach()))

    def _leak(self):
        return {"k": torch.sigmoid(self.w)}

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        k = torch.sigmoid(self.w)
        if self.decay_input:
            return self.v + (x - (self.v - self.v_reset)) * k
        return self.v - (self.v - self.v_reset) * k + x

    def extra_repr(self) -> str:
        return f"tau={self.tau:.4g}, decay_input={self.decay_input}, " + super().extra_repr()
