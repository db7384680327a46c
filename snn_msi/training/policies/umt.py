"""UMT and UME: uni-modal teachers (distil each unimodal model's features into the multimodal student) and the
uni-modal ensemble (train the unimodal models alone, average their predictions).

Du, Teng, Li, Liu, Yuan, Wang, Yuan & Zhao, "On uni-modal feature learning in supervised multi-modal learning",
ICML 2023 (arXiv 2305.01233; UMT first in arXiv 2106.11059). No official code was released; the UMT loss follows
BalanceBenchmark (GeWu-Lab/BalanceBenchmark@4c1482f ``balancemm/trainer/UMT_trainer.py: training_step``), which
has no UME.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

import neurons

from ...models.heads import AVOutput
from ...schema import check
from ..rundir import load_checkpoint
from . import register_method
from .base import MODALITIES, Composition, EpochView, Policy, PolicyConfig, log_fields


@dataclass
class UMTConfig(PolicyConfig):
    """``lam``: weight of the feature-distillation term (BalanceBenchmark's ``scaling``, 10); ``teacher``: a
    checkpoint whose encoders are the unimodal teachers (e.g. ``best.pt`` of a ``ume`` run); without one, the
    teachers are trained at the start of the run, alone, for ``teacher_epochs`` epochs (None: as many as the
    run has)."""

    lam: float = field(default=10.0, metadata=check(ge=0))
    teacher: str | None = None
    teacher_epochs: int | None = field(default=None, metadata=check(ge=1))


def unimodal_loss(out, y: torch.Tensor) -> torch.Tensor:
    """The unimodal heads' cross-entropies only: each encoder and its head learn alone (no fused term)."""
    return F.cross_entropy(out.audio.float(), y) + F.cross_entropy(out.visual.float(), y)


def distillation(student: dict[str, torch.Tensor], teacher: dict[str, torch.Tensor]) -> torch.Tensor:
    """``sum_m MSE(h_m^student, h_m^teacher)`` (``nn.MSELoss``: the mean over batch and feature)."""
    return sum(F.mse_loss(student[m].float(), teacher[m].float()) for m in MODALITIES)


@register_method(
    source="Du et al., ICML 2023 (arXiv 2305.01233); no official code; BalanceBenchmark@4c1482f UMT_trainer.py",
    modulates="adds lam * MSE(student features, frozen unimodal teachers' features) per modality",
    iemf=Composition(True, "the distillation term reaches the encoders; IEMF scales the fusion layer"),
)
class UMT(Policy):
    """Uni-modal teachers.

    The teachers are unimodal models of the same architecture: each encoder with its unimodal head trained on its
    own cross-entropy only. With ``teacher`` they are read from a checkpoint; otherwise a copy of the model is
    trained that way at the start of the run (``teacher_epochs``, the run's optimizer kind and learning rate; the
    two unimodal losses of one copy touch disjoint parameters, so this is two independent unimodal trainings).
    Each step then adds ``lam * sum_m MSE(h_m, h_m^T)``, with ``h_m`` the student's time-averaged encoder features
    and ``h_m^T`` the frozen teacher's (evaluation mode, no gradient).

    Deviations: no official code exists; BalanceBenchmark loads the teachers from its own unimodal runs' newest
    checkpoints (``teacher`` does that here), and its ``alpha`` option is unused.
    """

    name = "umt"
    config_class = UMTConfig
    #: logged each step: the teachers' last training loss and the distillation term.
    log_class = log_fields("UMTLog", "teacher_loss", mse=0.0)
    data_parallel = False  # the teachers are trained inside the run, in one process

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.teacher: torch.nn.Module | None = None
        self.teacher_state: dict | None = None

    def setup(self, model):
        self.teacher = copy.deepcopy(model)
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        if self.cfg.teacher is not None:
            state = load_checkpoint(self.cfg.teacher)
            self.teacher_state = {k: v for k, v in state["model"].items()}

    def on_epoch_start(self, view: EpochView):
        if self.teacher_state is None:  # train the teachers once, at the start of the run
            student = copy.deepcopy(view.model)
            student.requires_grad_(True)
            losses = view.train_copy(student, unimodal_loss, self.cfg.teacher_epochs or view.epochs)
            self.teacher_state = {k: v.detach().clone() for k, v in student.state_dict().items()}
            self.log.update(teacher_loss=losses[-1])
        try:
            self.teacher.load_state_dict(self.teacher_state)
        except RuntimeError as err:
            first = " ".join(str(err).strip().splitlines()[:2])
            raise ValueError(
                f"umt: the teacher {self.cfg.teacher or '(trained here)'} does not match this model: {first}"
            ) from None
        self.teacher.requires_grad_(False)
        self.teacher.eval()
        return None

    def loss(self, ctx):
        with torch.no_grad():
            neurons.reset(self.teacher)
            ta, tv = self.teacher.features(ctx.batch.audio, ctx.batch.frames)
            neurons.reset(self.teacher)
        mse = distillation(ctx.out.features, {"audio": ta.mean(0), "visual": tv.mean(0)})
        self.log.update(mse=float(mse.detach()))
        return self.cfg.lam * mse

    def state_dict(self):
        state = super().state_dict()
        if self.teacher_state is not None:
            state["teacher"] = {k: v.detach().cpu().clone() for k, v in self.teacher_state.items()}
        return state

    def load_state_dict(self, state):
        super().load_state_dict(state)
        if "teacher" in state:
            self.teacher_state = {k: v.clone() for k, v in state["teacher"].items()}


@dataclass
class UMEConfig(PolicyConfig):
    """No options: the unimodal models train alone, the prediction averages them."""


@register_method(
    source="Du et al., ICML 2023 (arXiv 2305.01233); no official code",
    modulates="trains each encoder + unimodal head alone (no fused loss); predicts their average logits",
    iemf=Composition(False, "UME trains no fusion layer (it averages independent unimodal models)"),
)
class UME(Policy):
    """Uni-modal ensemble.

    Training: the fused loss is switched off (weight 0), so each encoder and its unimodal head are an independent
    unimodal model trained on its own cross-entropy. Prediction (training and evaluation): the average of the two
    unimodal heads' logits (``fused_audio`` / ``fused_visual`` are the two halves).

    Deviation: the paper ensembles the unimodal models' predictions; it does not pin down logits or
    probabilities, and without official code the average of logits is used.
    """

    name = "ume"
    config_class = UMEConfig
    #: logged each step: the fused loss term's weight.
    log_class = log_fields("UMELog", "fused_weight")
    needs_unimodal_losses = True

    def loss_weights(self, ctx):
        self.log.update(fused_weight=0.0)
        return {"fused": 0.0}

    def predict(self, model, a, v):
        head_a, head_v = model.heads(a, v)
        z_a, z_v = head_a.mean(0), head_v.mean(0)
        return AVOutput(
            fused=(z_a + z_v) / 2,
            audio=z_a,
            visual=z_v,
            fused_audio=z_a / 2,
            fused_visual=z_v / 2,
            features={"audio": a.mean(0), "visual": v.mean(0)},
        )
