"""Second-order (current-based synapse) LIF, as snnTorch's ``Synaptic``."""

from __future__ import annotations

import torch

from ..base import BaseNeuron, StepCost, check_positive
from ..catalog import register


@register("synaptic", description="2nd-order LIF: syn = a*syn + x; h = b*v + syn (snnTorch Synaptic)")
class Synaptic(BaseNeuron):
    """LIF driven by a synaptic current that itself decays.

    ``i_t = (1 - 1/tau_syn) i_{t-1} + x_t``; ``h_t = (1 - 1/tau) (v_{t-1} - v_r) + v_r + i_t``.

    Args:
        tau: membrane time constant in steps (>= 1); snnTorch's ``beta = 1 - 1/tau``.
        tau_syn: synaptic time constant in steps (>= 1); snnTorch's ``alpha = 1 - 1/tau_syn``.
    """

    step_cost = StepCost(muladds=2, adds=0, state=2)  # i <- alpha i + x, v <- beta v + i

    state_names = ("v", "i_syn")

    def __init__(self, tau: float = 2.0, tau_syn: float = 4.0, reset: str = "soft", **kwargs) -> None:
        super().__init__(reset=reset, **kwargs)  # soft, as snnTorch's Synaptic (in the signature: defaults() says so)
        owner = type(self).__name__
        self.tau = check_positive("tau", tau, owner, minimum=1.0, inclusive=True)
        self.tau_syn = check_positive("tau_syn", tau_syn, owner, minimum=1.0, inclusive=True)

    def init_state(self, x: torch.Tensor) -> None:
        super().init_state(x)
        self.i_syn = torch.zeros_like(x)

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        self.i_syn = self.i_syn * (1.0 - 1.0 / self.tau_syn) + x
        return self.v - (self.v - self.v_reset) / self.tau + self.i_syn

    def extra_repr(self) -> str:
        return f"tau={self.tau}, tau_syn={self.tau_syn}, " + super().extra_repr()
