"""Run configuration: typed dataclasses (model, data, loss, methods, optimisation), saved as YAML next to every run.

The defaults are the paper's recipe (SGD Nesterov, lr 5e-3, momentum 0.9, weight decay 5e-4, lr x0.1 at epoch
70, 100 epochs, batch 32, T = 4, concat fusion, label smoothing 0.1, unimodal losses with IEMF only); every
value can be overridden (``--set key=value`` on the command line). Loading is strict (``snn_msi.schema``).
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from typing import Literal

from ..data.config import DataConfig
from ..models import ModelConfig, Recipe, get_recipe
from ..schema import Config, ConfigError, check
from .losses import LossConfig
from .policies import parse_policy
from .policies.iemf import IEMF

log = logging.getLogger(__name__)

__all__ = [
    "TrainConfig",
    "DataConfig",
    "LossConfig",
    "demo_config",
    "recipe_config",
    "policies_for",
    "schedule_warnings",
]


def policies_for(method: str = "normal", iemf: bool = False, **options) -> list[dict]:
    """The ``policies`` list of a base method plus IEMF: ``policies_for("ogm_ge", iemf=True, alpha=0.9)``.

    ``options`` go to the base method (``normal`` takes none).
    """
    specs = [] if method == "normal" and not options else [{"name": method, **options}]
    return specs + ([{"name": IEMF.name}] if iemf else [])


def check_device(name: str) -> None:
    """``auto``, ``cpu``, ``cuda`` or ``cuda:N`` (a one-line ``ConfigError`` otherwise); whether it exists here is
    checked when a run starts (:func:`~snn_msi.training.trainer.resolve_device`)."""
    if not isinstance(name, str) or not re.fullmatch(r"auto|cpu|cuda(:\d+)?", name):
        raise ConfigError(f"device must be auto, cpu, cuda or cuda:N, got {name!r}")


@dataclass
class TrainConfig(Config):
    """One training run.

    Attributes:
        policies: the balancing methods, in order (``[{name: ogm_ge, alpha: 0.8}, {name: iemf}]``; empty:
            plain training); ``snn-msi methods`` lists them.
        weight_decay_1d: decay biases and normalisation parameters too (the original, through timm, does not).
        on_nonfinite: a non-finite loss ``stop``s the run (naming the batch's clips) or ``skip``s the batch
            (counted in the logs).
        device: ``auto``, ``cpu``, ``cuda`` or ``cuda:N``.
        amp: bfloat16 autocast on CUDA (ignored on CPU).
        val_every: also measure the validation accuracy every this many optimizer steps (0: once per epoch
            only), logged in ``steps.csv`` (``val_acc``, ``compute_samples``) for accuracy-to-compute curves at
            step resolution; the random state is restored after each, so the run trains exactly as without.
    """

    model: ModelConfig = field(default_factory=ModelConfig)
    data: DataConfig = field(default_factory=DataConfig)
    loss: LossConfig = field(default_factory=LossConfig)
    policies: list[dict] = field(default_factory=list)
    epochs: int = field(default=100, metadata=check(ge=1))
    batch_size: int = field(default=32, metadata=check(ge=1))
    optimizer: Literal["sgd", "adam"] = "sgd"
    lr: float = field(default=5e-3, metadata=check(gt=0))
    momentum: float = field(default=0.9, metadata=check(ge=0, lt=1))
    nesterov: bool = True
    weight_decay: float = field(default=5e-4, metadata=check(ge=0))
    weight_decay_1d: bool = False
    milestones: tuple[int, ...] = (70,)
    gamma: float = field(default=0.1, metadata=check(gt=0))
    grad_clip: float | None = field(default=None, metadata=check(gt=0))
    on_nonfinite: Literal["stop", "skip"] = "stop"
    val_every: int = field(default=0, metadata=check(ge=0))
    seed: int = field(default=0, metadata=check(ge=0, le=2**32 - 1))  # numpy's and Python's seeding range
    device: str = "auto"
    amp: bool = True
    compile: bool = False
    out: str = "runs/exp"

    @classmethod
    def upgrade(cls, d: dict) -> dict:
        """Convert the flat method keys of version-1 configs (``method``, ``iemf``, ``iemf_*``, ``ogm_*``, ...)."""
        flag = IEMF.name  # version 1's `iemf: true` was the method's name
        flat = (
            "method",
            flag,
            "iemf_lambda",
            "iemf_lambda_mode",
            "iemf_noise",
            "iemf_start",
            "iemf_end",
            "ogm_alpha",
            "ogm_start",
            "ogm_end",
            "lfm_weight",
            "constant_coeff",
            "unimodal_label_smoothing",
        )
        if not any(k in d for k in flat):
            return d
        if "policies" in d:
            raise ConfigError(
                f"give either 'policies' or the old flat keys ({', '.join(k for k in flat if k in d)}), not both"
            )
        old = {k: d.pop(k) for k in flat if k in d}
        for key in (flag, "iemf_noise"):
            if key in old and not isinstance(old[key], bool):
                raise ConfigError(f"{key} must be true or false, got {old[key]!r}")
        window = {"start": old.get("iemf_start", 0), "end": old.get("iemf_end")}
        method = old.get("method", "normal")
        base: dict = {
            "normal": {},
            "mslr": {},
            "mmpareto": {},
            "lfm": {"weight": old.get("lfm_weight", 1.0)},
            "ogm_ge": {"alpha": old.get("ogm_alpha", 0.8), "start": old.get("ogm_start", 0), "end": old.get("ogm_end")},
            "constant": {"coeff": old.get("constant_coeff", 1.0), "noise": old.get("iemf_noise", True), **window},
            "noise": dict(window),
        }.get(method, {})
        d["policies"] = policies_for(method, **base) if method != "normal" else []
        if old.get(flag) is True:
            d["policies"].append(
                {
                    "name": IEMF.name,
                    "lam": old.get("iemf_lambda", 1.0),
                    "lambda_mode": old.get("iemf_lambda_mode", "inside"),
                    "noise": old.get("iemf_noise", True),
                    **window,
                }
            )
        if "unimodal_label_smoothing" in old:
            d.setdefault(
                "loss",
                {
                    "unimodal": "always",
                    "label_smoothing": 0.0,
                    "unimodal_label_smoothing": old["unimodal_label_smoothing"],
                },
            )
        log.warning("converted the old flat method keys %s to policies: %s", sorted(old), d["policies"])
        return d

    def validate(self, where: str = "") -> None:
        check_device(self.device)
        if list(self.milestones) != sorted(self.milestones) or any(m < 1 for m in self.milestones):
            raise ConfigError(f"milestones must be increasing epochs >= 1, got {list(self.milestones)}")
        for i, spec in enumerate(self.policies):
            parse_policy(spec, f"policies[{i}]")

    @property
    def method_names(self) -> list[str]:
        return [p["name"] for p in self.policies]


#: fewer optimizer steps per epoch than this, and an epoch-based schedule made for large data sets barely moves
FEW_STEPS = 4


def schedule_warnings(cfg: TrainConfig, train_samples: int) -> list[str]:
    """One-line warnings about a schedule that does not fit the run: a learning-rate milestone at or beyond
    the last epoch (the rate never drops), or fewer than :data:`FEW_STEPS` steps per epoch."""
    out = []
    late = [m for m in cfg.milestones if m >= cfg.epochs]
    if late:
        out.append(
            f"lr milestone(s) {late} lie at or beyond the run's {cfg.epochs} epochs: the learning rate stays "
            f"{cfg.lr:g} all run (set --set milestones=[...] in epochs)"
        )
    steps = math.ceil(train_samples / cfg.batch_size)
    if steps < FEW_STEPS:
        small = {k: v for k, v in get_recipe("small").model_config().to_dict().items() if v is not None}
        is_small = all(cfg.model.to_dict().get(k) == v for k, v in small.items())
        out.append(
            f"{steps} step(s) per epoch ({train_samples} training samples, batch {cfg.batch_size}) for {cfg.epochs} "
            f"epochs at lr {cfg.lr:g}: the model may barely move; try "
            + ("" if is_small else "--model small (its schedule is for small data), ")
            + "a larger --lr or a smaller --batch-size"
        )
    return out


def recipe_config(recipe: str | Recipe, base: TrainConfig | dict | None = None) -> TrainConfig:
    """``base`` (default: the paper's defaults) with a model recipe applied: the recipe's ``model`` replaces the
    architecture, its ``train`` part is merged into the rest (``snn_msi.models.recipe``)."""
    recipe = get_recipe(recipe) if isinstance(recipe, str) else recipe
    d = base.to_dict() if isinstance(base, TrainConfig) else dict(base or TrainConfig().to_dict())
    merged = _merge(d, recipe.train)
    merged["model"] = recipe.model_config().to_dict()
    try:
        return TrainConfig.from_dict(merged)
    except ConfigError as err:
        raise ConfigError(f"recipe {recipe.name}: {err}") from None


def _merge(d: dict, over: dict) -> dict:
    """``d`` with ``over`` merged in, nested mappings key by key."""
    out = dict(d)
    for k, v in over.items():
        out[k] = _merge(out[k], v) if isinstance(v, dict) and isinstance(out.get(k), dict) else v
    return out


def demo_config(**overrides) -> TrainConfig:
    """The ``demo`` recipe: a small spiking AV net on ``digits-av`` (hard preset) that trains in about half a
    minute on 2 CPU cores (``snn_msi/models/recipes/demo.yaml``).

    The loss is this toolkit's cleaner control (unimodal heads trained in every run, no smoothing on the fused
    term), so vanilla and IEMF runs differ only by IEMF; weight decay applies to every parameter.
    """
    cfg = recipe_config("demo")
    return cfg.replace(**overrides) if overrides else cfg
