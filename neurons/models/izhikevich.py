"""Izhikevich (2003) neuron: two variables, rich firing patterns at the cost of one multiply more."""

from __future__ import annotations

import torch

from ..base import BaseNeuron, StepCost, check_positive
from ..catalog import register


@register("izhikevich", description="Izhikevich 2003: v' = 0.04v^2 + 5v + 140 - u + I, u' = a(bv - u)")
class Izhikevich(BaseNeuron):
    """Izhikevich neuron in mV and ms, Euler steps of ``dt``.

    ``h = v + dt (0.04 v^2 + 5 v + 140 - u + x)``; spike when ``h >= v_peak`` (30 mV); after a spike
    ``v = c`` and ``u = u + d``; ``u`` follows ``u + dt a (b v - u)``. Defaults are regular spiking
    (a=0.02, b=0.2, c=-65, d=8). ``x`` is an input current; ``input_scale`` multiplies it first, so unit-scale
    network activations drive the neuron (default 10). The surrogate sees ``(h - v_peak) / voltage_scale``.

    The cut-off ``v_peak`` and the reset ``c`` are in millivolts, so the shared ``v_threshold`` / ``v_reset`` of
    the unit-scale models do not apply (``neurons.create`` drops a shared ``v_threshold``).
    """

    step_cost = StepCost(muladds=5, adds=2, state=2)  # v (0.04 v + 5), dt (...), + 140 - u, b v - u, u + dt a (...)

    state_names = ("v", "u")
    excluded_args = ("v_threshold", "v_reset")

    def __init__(
        self,
        a: float = 0.02,
        b: float = 0.2,
        c: float = -65.0,
        d: float = 8.0,
        dt: float = 1.0,
        input_scale: float = 10.0,
        voltage_scale: float = 10.0,
        v_peak: float = 30.0,
        **kwargs,
    ) -> None:
        kwargs.setdefault("reset", "hard")
        if kwargs["reset"] != "hard":
            raise ValueError(f"Izhikevich: reset must be 'hard' (v -> c, u -> u + d), got {kwargs['reset']!r}")
        for arg, own in (("v_reset", "c"), ("v_threshold", "v_peak")):
            if arg in kwargs:
                raise ValueError(f"Izhikevich: pass {own}=... (in mV), not {arg}")
        super().__init__(v_threshold=v_peak, v_reset=c, **kwargs)
        owner = type(self).__name__
        self.a = check_positive("a", a, owner)
        self.b = float(b)
        self.d = float(d)
        self.dt = check_positive("dt", dt, owner)
        self.input_scale = float(input_scale)
        self.voltage_scale = check_positive("voltage_scale", voltage_scale, owner)

    def init_state(self, x: torch.Tensor) -> None:
        self.v = torch.full_like(x, self.v_reset)
        self.u = self.b * self.v

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        v = self.v
        h = v + self.dt * (0.04 * v * v + 5.0 * v + 140.0 - self.u + self.input_scale * x)
        self.u = self.u + self.dt * self.a * (self.b * v - self.u)
        return h

    def fire(self, h: torch.Tensor) -> torch.Tensor:
        return self.surrogate((h - self.v_threshold) / self.voltage_scale)

    def _reset_hard(self, h, s):
        # clamp the pre-reset value to the threshold so that a spike never leaves an overshoot behind
        return s * self.v_reset + (1.0 - s) * torch.clamp(h, max=self.v_threshold)

    def after_spike(self, s: torch.Tensor) -> None:
        self.u = self.u + self.d * s

    def extra_repr(self) -> str:
        return f"a={self.a}, b={self.b}, c={self.v_reset}, d={self.d}, dt={self.dt}, " + super().extra_repr()
