"""Spiking audio-visual models: backbones, fusion / cross-modal spiking integration, heads, the AV network, and
model recipes by name (``build("small", num_classes=3)``)."""

from .avnet import PAPER_NEURON_ARGS, AVNet, ModelConfig
from .factory import DEFAULT_CHANNELS, build
from .fusion import FUSIONS, SpikingIntegration
from .heads import AVOutput, ParamGroups, UnimodalHeads
from .recipe import RECIPES, Recipe, get_recipe, register_recipe
from .resnet import SpikingBasicBlock, SpikingResNet

__all__ = [
    "AVNet",
    "AVOutput",
    "ModelConfig",
    "PAPER_NEURON_ARGS",
    "ParamGroups",
    "UnimodalHeads",
    "build",
    "DEFAULT_CHANNELS",
    "RECIPES",
    "Recipe",
    "get_recipe",
    "register_recipe",
    "FUSIONS",
    "SpikingIntegration",
    "SpikingResNet",
    "SpikingBasicBlock",
]
