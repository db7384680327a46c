"""Spiking neuron models behind a registry, surrogate gradients and fused multi-step kernels.

import neurons
neurons.available()                         # names and one-line descriptions
lif = neurons.create("lif", tau=2.0, step_mode="m")
spikes = lif(x_seq)                         # [T, B, ...] -> [T, B, ...]
neurons.defaults("if")                      # what a name is built with
neurons.reset(model)                        # forget the state of every neuron in a model
neurons.checkpoint(block, x_seq)            # gradient checkpointing through neuron state (neurons.state)
"""

from __future__ import annotations

from torch import nn

from . import functional, kernels, surrogate
from .base import BaseNeuron, NonFiniteInputError, StatefulModule
from .catalog import NEURONS, SHARED_ARGS, available, create, defaults, info, register
from .functional import IFSpec
from .models import IF, LIF, AdaptiveLIF, Izhikevich, ParametricLIF, ReLU, Synaptic
from .peers import _register_peers
from .registry import Registry
from .state import checkpoint, detach, get_state, recomputing, reset, set_state

_register_peers()

__all__ = [
    "BaseNeuron",
    "StatefulModule",
    "NonFiniteInputError",
    "IF",
    "LIF",
    "ParametricLIF",
    "AdaptiveLIF",
    "Izhikevich",
    "Synaptic",
    "ReLU",
    "available",
    "create",
    "defaults",
    "info",
    "register",
    "NEURONS",
    "SHARED_ARGS",
    "Registry",
    "IFSpec",
    "functional",
    "reset",
    "detach",
    "get_state",
    "set_state",
    "checkpoint",
    "recomputing",
    "set_step_mode",
    "surrogate",
    "kernels",
    "is_spiking",
]


def set_step_mode(model: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` (``"s"`` or ``"m"``) on every neuron inside ``model``."""
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.step_mode = step_mode


def is_spiking(module: nn.Module) -> bool:
    """True for neuron modules whose output is spikes (not the ReLU control)."""
    return isinstance(module, StatefulModule) and getattr(module, "kind", "") != "analogue"
