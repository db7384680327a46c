"""Write your own neuron, register it, and train the demo network with it.

A neuron is charge / fire / reset (`neurons.BaseNeuron`): a new model writes `charge` (the membrane before
firing, from the input `x` and the state `self.v`); threshold, surrogate gradient, reset, step modes, state
handling and the checks come from the base class. `@neurons.register` puts it in the registry, so
`neurons.create("eif")`, `snn-msi train --neuron eif` and every registry-driven test find it. In the package you
would put it in `neurons/models/eif.py` (see CONTRIBUTING.md); here it lives in the script.
"""

import json
import math
from pathlib import Path

import torch

import neurons
from neurons.base import BaseNeuron, check_positive
from snn_msi.cli import main


@neurons.register("eif", description="exponential IF: h = v + (-(v - v_r) + d exp((v - v_t) / d) + x) / tau")
class ExponentialIF(BaseNeuron):
    """Exponential integrate-and-fire (Fourcaud-Trocme et al. 2003), Euler steps of one time step.

    Args:
        tau: membrane time constant in steps (>= 1).
        delta: sharpness of the spike initiation (> 0).
        v_rheobase: where the exponential takes over (below the threshold).
    """

    def __init__(self, tau: float = 2.0, delta: float = 0.1, v_rheobase: float = 0.3, **kwargs) -> None:
        super().__init__(**kwargs)
        self.tau = check_positive("tau", tau, type(self).__name__, minimum=1.0, inclusive=True)
        self.delta = check_positive("delta", delta, type(self).__name__)
        self.v_rheobase = float(v_rheobase)

    def charge(self, x: torch.Tensor) -> torch.Tensor:
        # clamp the exponent so that a large membrane cannot overflow float32 before the reset
        spike_drive = self.delta * torch.exp(((self.v - self.v_rheobase) / self.delta).clamp(max=20.0))
        return self.v + (-(self.v - self.v_reset) + spike_drive + x) / self.tau


# 1. it is in the registry, with its defaults
print(neurons.available("eif"))
print(neurons.defaults("eif"))

# 2. check the update by value on a hand-built input, as its unit test would
eif = neurons.create("eif", tau=2.0, v_threshold=1.0, step_mode="m")
x = torch.full((3, 1), 0.4)
spikes = eif(x)
v1 = (0.1 * math.exp((0.0 - 0.3) / 0.1) + 0.4) / 2.0  # first step from v = 0
eif.reset()
eif.step_mode = "s"
eif(x[0])
assert abs(eif.v.item() - v1) < 1e-6, (eif.v.item(), v1)
print("first-step membrane", round(v1, 4), "spikes", spikes.flatten().tolist())

# 3. firing rate against the input on a ramp, next to LIF
ramp = torch.linspace(0.0, 2.0, 9).expand(50, 9)
for name in ["eif", "lif"]:
    rate = neurons.create(name, step_mode="m")(ramp).mean(0)
    print(f"{name:<4} rate on inputs 0 .. 2:", [round(r, 2) for r in rate.tolist()])

# 4. train the demo network with it: the registry name is all the command line needs
out = Path("runs/tutorials/own_neuron")
assert (
    main(
        [
            "train",
            "--demo",
            "--neuron",
            "eif",
            "--neuron-arg",
            "delta=0.2",
            "--epochs",
            "1",
            "--batch-size",
            "16",
            "--set",
            "data.limit=16",
            "--quiet",
            "--overwrite",
            "--out",
            str(out),
        ]
    )
    == 0
)
print("test accuracy with eif:", json.loads((out / "results.json").read_text())["test_acc"])
