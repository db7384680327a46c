"""Spiking neuron models behind a registry, surrogate gradients and fused multi-step kernels.

import neurons
neurons.available()                         # names and one-line descriptions
lif = neurons.create("lif", tau=2.0, step_mode="m")
spikes = lif(x_seq)                         # [T, B, ...] -> [T, B, ...]
neurons.defaults("if")                      # what a name is built with
neurons.reset(model)                        # forget the state of every neuron in a model
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
    "set_step_mode",
    "surrogate",
    "kernels",
    "is_spiking",
]


def reset(model: nn.Module) -> None:
    """Reset the state of every neuron (any :class:`StatefulModule`) inside ``model``."""
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.reset()


def detach(model: nn.Module) -> None:
    """Cut the graph of every neuron's state inside ``model``, keeping its values: feed a long sequence in chunks
    with truncated BPTT (SpikingJelly's ``detach_net``, snnTorch's ``detach_hidden``)::

        for chunk in x.split(50):          # [T, B, ...] in chunks of 50 steps
            loss(model(chunk)).backward(); opt.step(); opt.zero_grad()
            neurons.detach(model)
    """
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.detach()


def set_step_mode(model: nn.Module, step_mode: str) -> None:
    """Set ``step_mode`` (``"s"`` or ``"m"``) on every neuron inside ``model``."""
    for m in model.modules():
        if isinstance(m, StatefulModule):
            m.step_mode = step_mode


def is_spiking(module: nn.Module) -> bool:
    """True for neuron modules whose output is spikes (not the ReLU control)."""
    return isinstance(module, StatefulModule) and getattr(module, "kind", "") != "analogue"
