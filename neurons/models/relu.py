"""The non-spiking control: a ReLU behind the neuron call convention."""

from __future__ import annotations

import torch

from ..base import StatefulModule
from ..registry import register


@register("relu", description="NOT SPIKING: ReLU, the ANN control with the same architecture", kind="analogue")
class ReLU(StatefulModule):
    """ReLU with the neurons' call convention (``step_mode``, ``reset()``), for ANN controls.

    The neuron hyper-parameters (tau, v_threshold, ...) are accepted so that ``neuron="relu"`` swaps into any
    model built for a spiking neuron; they are ignored. Outputs are analogue, not spikes.
    """

    kind = "analogue"

    def __init__(
        self,
        tau: float | None = None,
        v_threshold: float | None = None,
        v_reset: float | None = None,
        reset: str | None = None,
        surrogate: str | None = None,
        alpha: float | None = None,
        detach_reset: bool | None = None,
        decay_input: bool | None = None,
        backend: str | None = None,
        check_inputs: bool | None = None,
        step_mode: str = "s",
    ) -> None:
        super().__init__(step_mode)

    def single_step_forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(x)

    def multi_step_forward(self, x_seq: torch.Tensor) -> torch.Tensor:
        return torch.relu(x_seq)
