"""Adaptive LIF: a LIF neuron whose threshold rises after each spike and relaxes back (Bellec et al., 2018)."""

from __future__ import annotations

import torch

from ..base import StepCost, check_positive
from ..catalog import register
from .lif import LIF


@register("alif", description="adaptive LIF: threshold v_th + beta * a, a jumps by 1 per spike and decays")
class AdaptiveLIF(LIF):
    """LIF with threshold adaptation (its own dynamics, so it runs the per-step loop, never LIF's kernel).

    ``theta_t = v_th + beta * a_{t-1}``; fire when ``h_t >= theta_t``; then ``a_t = a_{t-1} (1 - 1/tau_adapt) + s_t``.

    Args:
        tau_adapt: adaptation time constant in steps (>= 1).
        beta: threshold increment per unit of adaptation (>= 0).
        **kwargs: see :class:`LIF`.
    """

    step_cost = StepCost(muladds=3, adds=0, state=2)  # leak, threshold v_th + beta a, a <- a (1 - 1/tau_a) + s

    state_names = ("v", "a")

    def __init__(self, tau_adapt: float = 20.0, beta: float = 0.2, **kwargs) -> None:
        super().__init__(**kwargs)
        owner = type(self).__name__
        self.tau_adapt = check_positive("tau_adapt", tau_adapt, owner, minimum=1.0, inclusive=True)
        self.beta = check_positive("beta", beta, owner, inclusive=True)

    def init_state(self, x: torch.Tensor) -> None:
        super().init_state(x)
        self.a = torch.zeros_like(x)

    def threshold(self):
        return self.v_threshold + self.beta * self.a

    def after_spike(self, s: torch.Tensor) -> None:
        self.a = self.a * (1.0 - 1.0 / self.tau_adapt) + s

    def extra_repr(self) -> str:
        return f"tau_adapt={self.tau_adapt}, beta={self.beta}, " + super().extra_repr()
