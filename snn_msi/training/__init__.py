"""Training: gradient policies (IEMF, OGM-GE, MSLR, LFM, MMPareto, controls), configs and the trainer."""

from .config import DataConfig, TrainConfig, demo_config
from .policies import (
    IEMF,
    LFM,
    MSLR,
    OGMGE,
    Compose,
    ConstantScale,
    GradientPolicy,
    MMPareto,
    Normal,
    build_policies,
    true_class_score,
)
from .trainer import Trainer, load_checkpoint, load_model, save_checkpoint

__all__ = [
    "DataConfig",
    "TrainConfig",
    "demo_config",
    "GradientPolicy",
    "Normal",
    "IEMF",
    "ConstantScale",
    "OGMGE",
    "MSLR",
    "LFM",
    "MMPareto",
    "Compose",
    "build_policies",
    "true_class_score",
    "Trainer",
    "save_checkpoint",
    "load_checkpoint",
    "load_model",
]
