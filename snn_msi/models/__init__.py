"""Spiking audio-visual models: backbones, fusion / cross-modal spiking integration, the AV network."""

from .avnet import AVNet, AVOutput, ModelConfig, build
from .fusion import FUSIONS, SpikingIntegration, build_fusion
from .resnet import SpikingBasicBlock, SpikingResNet

__all__ = [
    "AVNet",
    "AVOutput",
    "ModelConfig",
    "build",
    "FUSIONS",
    "SpikingIntegration",
    "build_fusion",
    "SpikingResNet",
    "SpikingBasicBlock",
]
