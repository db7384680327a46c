"""A firing-rate regulariser: a loss term that pulls each spiking layer's firing rate towards a target.

Fewer spikes mean fewer synaptic events, so the term trades accuracy for energy (``snn-msi study energy`` sweeps
its strength). For each spiking layer ``l`` (``neurons.is_spiking``) the rate of the last forward pass is
``r_l = sum of its spikes / (neurons x T x samples)``, differentiable through the spikes' surrogate gradients,
and the term is::

    L_rate = strength * mean_l d(r_l - target_l)^2,   d(x) = x ("both") or max(x, 0) ("above": only rates above
                                                        the target cost anything)

a per-layer squared penalty on the rate, like the squared-hinge activity regularisers of Zenke & Vogels (Neural
Computation 33, 2021) and unlike snnTorch's ``functional.reg.l1_rate_sparsity`` (L1 on the total spike count);
the mean over layers keeps ``strength`` from growing with depth, and the rate (not the count) from growing with
the batch, T or the layer size. ``target`` applies to every layer unless a pattern of ``targets`` (shell-style,
first match wins) names it: ``{name: rate_reg, strength: 2, target: 0.05, targets: {"visual_net.*": 0.02}}``.
The policy is off unless listed (``--method rate_reg`` or ``policies: [{name: rate_reg}]``); on a network
without spiking layers (the ReLU twin) it adds nothing.
"""

from __future__ import annotations

import fnmatch
import logging
from dataclasses import dataclass, field
from typing import Literal

import torch

import neurons

from ...schema import ConfigError, check
from . import register_method
from .base import Composition, Policy, PolicyConfig, log_fields

log = logging.getLogger(__name__)


@dataclass
class RateRegConfig(PolicyConfig):
    """``strength``: weight of the term; ``target``: the rate every layer is pulled to (spikes per neuron and
    step); ``targets``: per-layer targets by name pattern; ``side``: ``both`` or ``above`` (see the module)."""

    strength: float = field(default=1.0, metadata=check(ge=0))
    target: float = field(default=0.0, metadata=check(ge=0, le=1))
    targets: dict = field(default_factory=dict)
    side: Literal["both", "above"] = "both"

    def validate(self, where: str = "") -> None:
        pre = f"{where}: " if where else ""
        for pattern, value in self.targets.items():
            number = isinstance(value, int | float) and not isinstance(value, bool)
            if not isinstance(pattern, str) or not number or not 0.0 <= value <= 1.0:
                raise ConfigError(
                    f"{pre}targets must map layer-name patterns to rates in [0, 1], got {pattern!r}: {value!r}"
                )


@register_method(
    source="per-layer squared rate penalty, as the activity regularisers of Zenke & Vogels, Neural Computation 2021",
    modulates="adds strength * mean over spiking layers of (rate - target)^2 to the loss",
    iemf=Composition(True),
)
class RateReg(Policy):
    """Adds ``strength * mean_l (r_l - target_l)^2`` over the spiking layers' firing rates of the forward pass."""

    name = "rate_reg"
    config_class = RateRegConfig
    #: logged each step: the penalty, the mean and largest firing rate and the layers counted.
    log_class = log_fields("RateRegLog", "penalty", "rate", "max_rate", "layers")

    def __init__(self, config: RateRegConfig | None = None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.layers: dict[str, float] = {}  # layer name -> its target
        self._sums: dict[str, list[torch.Tensor]] = {}
        self._sizes: dict[str, int] = {}
        self._handles = []

    def target_of(self, layer: str) -> float:
        return next((float(t) for p, t in self.cfg.targets.items() if fnmatch.fnmatchcase(layer, p)), self.cfg.target)

    def setup(self, model: torch.nn.Module) -> None:
        """Hook every spiking layer (its spike sum and size, while gradients are on) and clear them at the start
        of each forward pass of ``model``."""
        self.remove()
        self.layers = {n: self.target_of(n) for n, m in model.named_modules() if neurons.is_spiking(m)}
        if not self.layers:
            log.warning(
                "rate_reg: the model has no spiking layers (neuron %r); the term is zero",
                getattr(getattr(model, "config", None), "neuron", "?"),
            )
        self._handles.append(model.register_forward_pre_hook(lambda _m, _i: self._clear()))
        for n, m in model.named_modules():
            if n in self.layers:
                self._handles.append(m.register_forward_hook(self._record(n)))
        self._clear()

    def _record(self, name: str):
        def hook(_m, _inputs, out):
            if torch.is_grad_enabled():
                self._sums[name].append(out.float().sum())
                self._sizes[name] += out.numel()

        return hook

    def _clear(self) -> None:
        self._sums = {n: [] for n in self.layers}
        self._sizes = dict.fromkeys(self.layers, 0)

    def remove(self) -> None:
        """Detach the hooks (a policy set up on a model leaves them until then)."""
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def rates(self) -> dict[str, torch.Tensor]:
        """``{layer: rate}`` of the last forward pass with gradients (scalars in the graph)."""
        return {n: torch.stack(s).sum() / self._sizes[n] for n, s in self._sums.items() if s}

    def loss(self, ctx):
        rates = self.rates()
        if not rates:
            self.log.update(penalty=0.0, rate=0.0, max_rate=0.0, layers=0.0)
            return None
        r = torch.stack(list(rates.values()))
        gap = r - torch.tensor([self.layers[n] for n in rates], device=r.device)
        penalty = (gap.clamp(min=0.0) if self.cfg.side == "above" else gap).pow(2).mean()
        self.log.update(
            penalty=float(penalty.detach()),
            rate=float(r.detach().mean()),
            max_rate=float(r.detach().max()),
            layers=float(len(rates)),
        )
        self._clear()
        return self.cfg.strength * penalty
