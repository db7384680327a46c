"""Spiking audio-visual models: backbones, fusion / cross-modal spiking integration, heads, the AV network."""

from .avnet import PAPER_NEURON_ARGS, AVNet, ModelConfig, build
from .fusion import FUSIONS, SpikingIntegration
from .heads import AVOutput, ParamGroups, UnimodalHeads
from .resnet import SpikingBasicBlock, SpikingResNet

__all__ = [
    "AVNet",
    "AVOutput",
    "ModelConfig",
    "PAPER_NEURON_ARGS",
    "ParamGroups",
    "UnimodalHeads",
    "build",
    "FUSIONS",
    "SpikingIntegration",
    "SpikingResNet",
    "SpikingBasicBlock",
]
