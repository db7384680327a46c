"""ReconBoost: modality-alternating boosting with reconcilement (each modality's learner is refit, not added to).

Hua, Xu, Bao, Yang & Huang, "ReconBoost: boosting can achieve modality reconcilement", ICML 2024 (arXiv
2405.09321); code: github.com/huacong/ReconBoost@14ab57a (``train.py: main``, ``models/dynamic_net.py:
DynamicNet, Head``, ``schedule.py: schedule_model``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

from ...models.heads import AVOutput
from ...schema import check
from . import register_method
from .base import MODALITIES, Composition, EpochView, Policy, PolicyConfig, log_fields


@dataclass
class ReconBoostConfig(PolicyConfig):
    """``w1`` / ``w2``: the boosting loss's weights (5.0 / 1.0, the official CREMA-D defaults); ``boost_rate``: the
    ensemble's learnable scale's start (``--boost_rate`` 1.0; BalanceBenchmark 0.01); ``epochs_per_stage`` /
    ``correct_epoch``: boosting and rectification epochs per stage (4 / 4); ``hidden``: the shared head's hidden
    width (``Head``: 256)."""

    w1: float = field(default=5.0, metadata=check(ge=0))
    w2: float = field(default=1.0, metadata=check(ge=0))
    boost_rate: float = 1.0
    epochs_per_stage: int = field(default=4, metadata=check(ge=1))
    correct_epoch: int = field(default=4, metadata=check(ge=0))
    hidden: int = field(default=256, metadata=check(ge=1))


def boosting_loss(
    logits_j: torch.Tensor, ensemble_others: torch.Tensor | None, y: torch.Tensor, w1: float, w2: float
) -> torch.Tensor:
    """The official per-sample ``-w1 mean_c(y_c log p_c) + w2 mean_c(y_c q_c log p_c)``, averaged over the batch:
    ``p = softmax(learner j)``, ``q = softmax(ensemble of the others)`` (a constant); equals
    ``-(w1 - w2 q_y) log p_y / C``. C 3, uniform p, q_y 0.6, w (5, 1): 4.4 ln(3) / 3 = 1.611298.
    ``ensemble_others=None`` (no learner yet): the official code's ensemble is then one constant column per sample
    (``c0.expand(B, 1)``), whose softmax is 1, so ``q`` broadcasts to the one-hot target and ``q_y = 1``."""
    logp = F.log_softmax(logits_j.float(), 1)
    onehot = F.one_hot(y, logits_j.shape[1]).float()
    q = torch.ones_like(onehot) if ensemble_others is None else F.softmax(ensemble_others.detach().float(), 1)
    per_sample = -w1 * (onehot * logp).mean(1) + w2 * (onehot * q * logp).mean(1)
    return per_sample.mean()


def schedule(epoch: int, epochs_per_stage: int, correct_epoch: int) -> tuple[int, str, bool]:
    """``(stage, modality, boosting)`` of an epoch: stages of ``epochs_per_stage`` boosting epochs then
    ``correct_epoch`` rectification epochs, modalities alternating audio, visual, ... (``schedule_model``'s
    fixed mode)."""
    per = epochs_per_stage + correct_epoch
    stage, within = divmod(epoch, per)
    return stage, MODALITIES[stage % 2], within < epochs_per_stage


class _Ensemble(nn.Module):
    """The shared head (``Head``: Linear, ReLU, Linear) and the boost rate rho."""

    def __init__(self, dim: int, hidden: int, classes: int, rho: float) -> None:
        super().__init__()
        self.head = nn.Sequential(nn.Linear(dim, hidden), nn.ReLU(), nn.Linear(hidden, classes))
        self.rho = nn.Parameter(torch.tensor(float(rho)))


@register_method(
    source="Hua et al., ICML 2024 (arXiv 2405.09321); github.com/huacong/ReconBoost@14ab57a",
    modulates="alternates stages: one modality's learner fit to the others' residual, then the "
    "ensemble rho * sum_m head(f_m) rectified",
    iemf=Composition(False, "ReconBoost has no fusion layer (it predicts with an additive ensemble)"),
)
class ReconBoost(Policy):
    """Modality reconcilement by boosting.

    The learners are ``f_m = head(encoder_m)`` with one shared head (``common_space``, the official default; an
    MLP, its logits averaged over T like every head here); the prediction is ``F = rho * sum_m f_m`` over the
    learners added so far (rho learnable). Epochs follow :func:`schedule`: in a boosting epoch of stage s,
    modality j's learner minimises :func:`boosting_loss` against the others' ensemble (before any is
    added, the official constant ``c0``: ``q_y = 1``); in a rectification epoch, after j joins the ensemble,
    every learner, the head and rho minimise the cross-entropy of ``F``. The model's fusion layer and unimodal
    heads are unused (its fused and unimodal loss terms are switched off except the fused one, which is ``F``'s
    cross-entropy, in rectification). Evaluation predicts with the ensemble of the current stage (with the
    learner being boosted).

    Deviations: the run's optimizer serves both phases (the official code makes a fresh SGD per stage, with
    its own learning rates and a decay every 30 stages; BalanceBenchmark also shares one); the "GA" term, which
    both codes compute from two detached tensors and so has no gradient, is left out.
    """

    name = "reconboost"
    config_class = ReconBoostConfig
    #: logged each step: the stage, the boosted modality and the boosting loss.
    log_class = log_fields("ReconBoostLog", "stage", "boosting", "modality", "rho", "boost_loss")
    needs_unimodal_losses = True

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.members: list[str] = []
        self.others: list[str] = []
        self.boosting: str | None = None

    def setup(self, model):
        head = model.heads.audio
        self.extra = _Ensemble(head.in_features, self.cfg.hidden, head.out_features, self.cfg.boost_rate)
        self.extra.to(head.weight.device)

    def on_epoch_start(self, view: EpochView):
        stage, modality, boosting = schedule(view.epoch, self.cfg.epochs_per_stage, self.cfg.correct_epoch)
        added = [MODALITIES[s % 2] for s in range(stage)]
        self.members = [m for m in MODALITIES if m in added or (m == modality)]
        self.boosting = modality if boosting else None
        self.others = [m for m in MODALITIES if m in added and m != modality]
        self.log.update(
            stage=float(stage),
            boosting=float(boosting),
            modality=float(MODALITIES.index(modality)),
            rho=float(self.extra.rho.detach()),
        )
        return None

    def predict(self, model, a, v):
        f = {"audio": self.extra.head(a).mean(0), "visual": self.extra.head(v).mean(0)}
        rho = self.extra.rho
        fused = rho * sum(f[m] for m in (self.members or MODALITIES))
        return AVOutput(
            fused=fused,
            audio=f["audio"],
            visual=f["visual"],
            fused_audio=rho * f["audio"],
            fused_visual=rho * f["visual"],
            features={"audio": a.mean(0), "visual": v.mean(0)},
        )

    def loss_weights(self, ctx):
        return {"fused": 0.0 if self.boosting else 1.0, "audio": 0.0, "visual": 0.0}

    def loss(self, ctx):
        self.log.update(rho=float(self.extra.rho.detach()))
        if self.boosting is None:
            self.log.update(boost_loss=0.0)
            return None
        j = self.boosting
        logits = getattr(ctx.out, j)
        ens = None  # no learner yet: the official constant ensemble (q_y = 1, see boosting_loss)
        if self.others:
            ens = self.extra.rho.detach() * sum(getattr(ctx.out, m).detach() for m in self.others)
        loss = boosting_loss(logits, ens, ctx.y, self.cfg.w1, self.cfg.w2)
        self.log.update(boost_loss=float(loss.detach()))
        return loss

    def state_dict(self):
        return {
            **super().state_dict(),
            "members": list(self.members),
            "boosting": self.boosting,
            "others": list(self.others),
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.members, self.boosting = list(state.get("members", [])), state.get("boosting")
        self.others = list(state.get("others", []))
