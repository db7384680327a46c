"""Training: configs, losses, balancing methods as policies (``METHODS``), the run folder and log, the trainer."""

from .config import DataConfig, LossConfig, TrainConfig, demo_config, policies_for, recipe_config
from .metrics import SplitMetrics
from .policies import METHODS, Compose, Policy, PolicyConfig, StepContext, build_policies, method_table
from .result import RunResult
from .rundir import RunDir, RunExistsError, load_checkpoint, save_checkpoint
from .runlog import RunLog, read_csv
from .trainer import NonFiniteLossError, Trainer, evaluate, load_model, resolve_device

__all__ = [
    "DataConfig",
    "LossConfig",
    "TrainConfig",
    "demo_config",
    "recipe_config",
    "policies_for",
    "SplitMetrics",
    "METHODS",
    "Compose",
    "Policy",
    "PolicyConfig",
    "StepContext",
    "build_policies",
    "method_table",
    "RunDir",
    "RunExistsError",
    "RunLog",
    "RunResult",
    "read_csv",
    "save_checkpoint",
    "load_checkpoint",
    "NonFiniteLossError",
    "Trainer",
    "evaluate",
    "load_model",
    "resolve_device",
]
