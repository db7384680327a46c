"""What every balancing method is built from: the policy protocol, its context objects and shared helpers.

A policy is a small object with hooks that the trainer calls in a fixed order (Lightning's callbacks)::

    policy.setup(model)                    # once, before training (forward hooks, state shaped by the model)
    extra = policy.loss(ctx)               # add a term to the loss (LFM)
    policy.backward(ctx, total)            # at most one policy replaces loss.backward() (MMPareto)
    policy.before_step(ctx)                # scale / perturb gradients (IEMF, OGM-GE, MSLR)
    optimizer.step()
    ...
    policy.on_validation(val, epoch)       # once per epoch, validation split only (MSLR)

It sees the model through a typed :class:`~snn_msi.models.ParamGroups` (no parameter-name prefixes), the
output through :class:`~snn_msi.models.AVOutput` and the validation numbers through
:class:`~snn_msi.training.metrics.SplitMetrics`. What it did in the last step is in ``self.log`` (plain
floats, the same keys every step); the trainer namespaces the keys by the policy's name (``iemf/coeff``).
Options are a small :class:`PolicyConfig` dataclass per method, loaded strictly from the run's YAML.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F

from ...models.heads import AVOutput, ParamGroups
from ...schema import Config, ConfigError, check
from ..metrics import SplitMetrics

__all__ = ["Policy", "PolicyConfig", "WindowConfig", "StepContext", "NoiseSource", "scale_with_noise",
           "true_class_score"]  # fmt: skip


@dataclass
class PolicyConfig(Config):
    """Options of a method (subclasses add theirs)."""


@dataclass
class WindowConfig(PolicyConfig):
    """Options of a method that acts inside an epoch window ``[start, end)`` (0-based epochs; end None: open)."""

    start: int = field(default=0, metadata=check(ge=0))
    end: int | None = field(default=None, metadata=check(ge=1))

    def validate(self, where: str = "") -> None:
        if self.end is not None and self.end <= self.start:
            raise ConfigError(f"{where or 'window'}: end ({self.end}) must be after start ({self.start})")

    def active(self, epoch: int) -> bool:
        return epoch >= self.start and (self.end is None or epoch < self.end)


@dataclass
class StepContext:
    """One training step as a policy sees it.

    Attributes:
        model: the network (unwrapped from DDP / compile), for methods that need more forward passes.
        groups: its parameters by role.
        out: the forward pass's output; ``y``: labels ``[B]``; ``epoch``: 0-based.
        losses: the loss terms by name (``fused``, and ``audio`` / ``visual`` when the heads are trained).
    """

    model: torch.nn.Module
    groups: ParamGroups
    out: AVOutput
    y: torch.Tensor
    epoch: int
    losses: dict[str, torch.Tensor] = field(default_factory=dict)


def true_class_score(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_i softmax(logits)[i, y_i]`` over the batch (all-reduced across ranks when distributed)."""
    s = F.softmax(logits.detach().float(), dim=1).gather(1, y.view(-1, 1)).sum()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(s)
    return s


class NoiseSource:
    """Seeded Gaussian noise on whatever device the gradients live (one generator per device, resumable)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generators: dict[str, torch.Generator] = {}

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        key = str(like.device)
        if key not in self.generators:
            self.generators[key] = torch.Generator(device=like.device).manual_seed(self.seed)
        return torch.randn(like.shape, generator=self.generators[key], device=like.device, dtype=like.dtype)

    def state_dict(self) -> dict:
        return {k: g.get_state() for k, g in self.generators.items()}

    def load_state_dict(self, state: dict) -> None:
        for key, st in state.items():
            self.generators[key] = torch.Generator(device=key)
            self.generators[key].set_state(st)


def scale_with_noise(params, coeff: float, noise: NoiseSource | None) -> None:
    """``grad <- grad * coeff + N(0, std(grad) + 1e-8)`` in place (the std of the unscaled gradient, as the
    original code draws it); no noise when ``noise`` is None."""
    for p in params:
        if p.grad is None:
            continue
        g = p.grad
        std = (g.std() if g.numel() > 1 else torch.zeros((), device=g.device)) + 1e-8
        g.mul_(coeff)
        if noise is not None:
            g.add_(noise.randn(g) * std)


class Policy:
    """Base class: a method that does nothing (plain training). Subclasses override the hooks they need.

    Class attributes:
        name: the registry name (also the log namespace).
        config_class: its options dataclass.
        needs_unimodal_losses: the method reads the unimodal heads or their losses (IEMF, MMPareto), so they are
            trained whatever ``loss.unimodal`` says (the original code added them exactly in these runs).
    """

    name: ClassVar[str] = "normal"
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    needs_unimodal_losses: ClassVar[bool] = False

    def __init__(self, config: PolicyConfig | None = None, seed: int = 0) -> None:
        self.cfg = config if config is not None else self.config_class()
        if not isinstance(self.cfg, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(self.cfg).__name__}"
            )
        self.seed = seed
        self.log: dict[str, float] = {}

    # -- hooks ----------------------------------------------------------------------------------------------
    def setup(self, model: torch.nn.Module) -> None:
        """Once, before training, with the (unwrapped) model: attach forward hooks, build prototypes, ..."""

    def loss(self, ctx: StepContext) -> torch.Tensor | None:
        """An extra loss term (added to the total), or None."""
        return None

    def backward(self, ctx: StepContext, total: torch.Tensor) -> bool:
        """Compute the gradients itself and return True, or return False for ``total.backward()``."""
        return False

    def before_step(self, ctx: StepContext) -> None:
        """Act on ``p.grad`` (unscaled, before clipping and the optimizer step)."""

    def on_validation(self, val: SplitMetrics, epoch: int) -> None:
        """Once per epoch with the validation split's numbers (never the test split's)."""

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state: dict = {"log": dict(self.log)}
        if hasattr(self, "noise_source"):  # policies that perturb gradients resume their noise stream
            state["noise"] = self.noise_source.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.log = dict(state.get("log", {}))
        if hasattr(self, "noise_source"):
            self.noise_source.load_state_dict(state.get("noise", {}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg})"
