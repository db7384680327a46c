"""Own neuron models, one file each; importing this package registers every one of them (a new model is one new
file here plus its test)."""

import importlib
import pkgutil

from .adaptive import AdaptiveLIF
from .izhikevich import Izhikevich
from .lif import IF, LIF, ParametricLIF
from .relu import ReLU
from .synaptic import Synaptic

for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")

__all__ = ["IF", "LIF", "ParametricLIF", "AdaptiveLIF", "Izhikevich", "Synaptic", "ReLU"]
