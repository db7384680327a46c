"""Own neuron models; importing this package registers them."""

from .adaptive import AdaptiveLIF
from .izhikevich import Izhikevich
from .lif import IF, LIF, ParametricLIF
from .relu import ReLU
from .synaptic import Synaptic

__all__ = ["IF", "LIF", "ParametricLIF", "AdaptiveLIF", "Izhikevich", "Synaptic", "ReLU"]
