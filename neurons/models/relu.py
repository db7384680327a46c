"""The non-spiking control: a ReLU behind the neuron call convention."""

from __future__ import annotations

import torch

from ..base import StatefulModule
from ..catalog import register


@register("relu", description="NOT SPIKING: ReLU, the ANN control with the same architecture", kind="analogue")
class ReLU(StatefulModule):
    """ReLU with the neurons' call convention (``step_mode``, ``reset()``), for ANN controls.

    It takes none of the neuron arguments: the shared ones (threshold, surrogate, ...) that a model passes to
    every neuron are dropped by ``neurons.create``. Outputs are analogue, not spikes.
    """

    kind = "analogue"

    def __init__(self, step_mode: str = "s") -> None:
        super().__init__(step_mode)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.relu(x_seq)
