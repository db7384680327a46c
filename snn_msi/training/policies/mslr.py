"""MSLR: modality-specific learning rates, the dynamic variant, driven by the validation split.

Yao & Mihalcea, "Modality-specific learning rates for effective multimodal additive late-fusion", Findings of
ACL 2022; the rule as the IEMF code runs it (copied there from the AGM code's MSLR baseline,
github.com/lihong2303/AGM_ICCV2023 ``run/CREMAD_main.py``): gradients scaled, not learning rates changed.
Differences from the IEMF code: the accuracies come from the validation split (the original read the test
split), and the unimodal heads are trained in MSLR runs (the original read the accuracies of heads that were
never trained unless IEMF was on, so its ratios were noise).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from ...schema import check
from . import register_method
from .base import Composition, Policy, WindowConfig, log_fields


@dataclass
class MSLRConfig(WindowConfig):
    """``history``: epochs averaged for the reference accuracy; ``base_audio`` / ``base_visual``: the fixed
    factors (0.9 / 1.1 in the IEMF code, AGM's CREMA-D values); window epochs 0-50 inclusive, as the original."""

    history: int = field(default=5, metadata=check(ge=1))
    base_audio: float = field(default=0.9, metadata=check(gt=0))
    base_visual: float = field(default=1.1, metadata=check(gt=0))
    end: int | None = field(default=51, metadata=check(ge=1))


def mslr_ratio(history: list[float], acc: float, window: int) -> float:
    """``acc / mean(history[-window:])``, 1 until ``window`` epochs exist."""
    if len(history) < window:
        return 1.0
    mean = sum(history[-window:]) / window
    return acc / mean if mean > 0 else 1.0


@register_method(
    source="Yao & Mihalcea, Findings of ACL 2022; the IEMF code's dynamic variant",
    modulates="each branch's gradients x base_m * (val acc_m / its mean over the last 5 epochs)",
    iemf=Composition(True),
)
class MSLR(Policy):
    """After each validation, ``ratio_m = acc_m / mean(acc_m over the previous history epochs)`` (1 until that
    many epochs exist; recomputed each epoch, not compounded) from the unimodal heads' validation accuracy; in
    the next epoch, inside the window, the gradients of modality m's branch (encoder and unimodal head) are
    scaled by ``base_m * ratio_m``.
    """

    name = "mslr"
    config_class = MSLRConfig
    #: logged each step: each branch's learning-rate scale.
    log_class = log_fields("MSLRLog", "scale_audio", "scale_visual", "active")
    needs_unimodal_losses = True

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.history: dict[str, list[float]] = {"audio": [], "visual": []}
        self.ratio = {"audio": 1.0, "visual": 1.0}

    def on_validation(self, val, epoch):
        for m, acc in (("audio", val.acc_audio), ("visual", val.acc_visual)):
            self.ratio[m] = mslr_ratio(self.history[m], acc, self.cfg.history)
            self.history[m].append(acc)

    def before_step(self, ctx):
        active = self.cfg.active(ctx.epoch)
        scales = {
            "audio": self.cfg.base_audio * self.ratio["audio"],
            "visual": self.cfg.base_visual * self.ratio["visual"],
        }
        self.log.update(scale_audio=scales["audio"], scale_visual=scales["visual"], active=float(active))
        if active:
            for m, scale in scales.items():
                for p in ctx.groups.branch(m):
                    if p.grad is not None:
                        p.grad.mul_(scale)

    def state_dict(self):
        return {
            **super().state_dict(),
            "history": {k: list(v) for k, v in self.history.items()},
            "ratio": dict(self.ratio),
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.history = {k: list(v) for k, v in state["history"].items()}
        self.ratio = dict(state["ratio"])
