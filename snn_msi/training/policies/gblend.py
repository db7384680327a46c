"""G-Blending: weight the fused and unimodal losses by each head's generalisation over overfitting.

Wang, Tran & Feiszli, "What makes training multi-modal classification networks hard?", CVPR 2020 (arXiv
1905.12681). No official code was released; BalanceBenchmark (GeWu-Lab/BalanceBenchmark@4c1482f
``balancemm/trainer/GBlending_trainer.py: super_epoch_origin, training_step``) is the only implementation.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...schema import check
from . import register_method
from .base import Composition, EpochView, Policy, PolicyConfig, log_fields

HEADS = ("fused", "audio", "visual")


@dataclass
class GBlendConfig(PolicyConfig):
    """``super_epoch``: the weights are re-estimated every this many epochs, from copies trained that long
    (BalanceBenchmark's 10; the last estimate's copies train only as long as the run has left)."""

    super_epoch: int = field(default=10, metadata=check(ge=1))


def blend_weights(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]]) -> dict[str, float]:
    """``w_k = (dG_k / dO_k^2) / Z`` from each head's ``(train loss, val loss)`` before and after N epochs:
    ``dG = L^V_n - L^V_{n+N}`` (generalisation gained), ``O = L^V - L^T``, ``dO = O_{n+N} - O_n`` (overfitting
    gained); ``Z`` makes them sum to 1. A head that did not generalise (``dG <= 0``) gets weight 0; if none did,
    all weigh equally. dG = (0.3, 0.2, 0.1), dO = (0.2, 0.3, 0.1) (fused, audio, visual) -> (0.380282, 0.112676,
    0.507042)."""
    raw = {}
    for k in before:
        (t0, v0), (t1, v1) = before[k], after[k]
        gain, over = v0 - v1, (v1 - t1) - (v0 - t0)
        raw[k] = gain / max(over * over, 1e-12) if gain > 0 else 0.0
    total = sum(raw.values())
    return {k: (r / total if total > 0 else 1.0 / len(raw)) for k, r in raw.items()}


def _head_loss(name: str):
    def loss(out, y):
        return F.cross_entropy(getattr(out, name).float(), y)

    return loss


def _all_heads(out, y):
    return torch.stack([F.cross_entropy(getattr(out, k).float(), y) for k in HEADS])


def _unimodal_loss(out, y):
    return F.cross_entropy(out.audio.float(), y) + F.cross_entropy(out.visual.float(), y)


@register_method(
    source="Wang et al., CVPR 2020 (arXiv 1905.12681); no official code; BalanceBenchmark@4c1482f GBlending_trainer.py",
    modulates="weights of the fused and unimodal losses: generalisation / overfitting^2 per head, "
    "re-estimated every super-epoch",
    iemf=Composition(True, "caveat: IEMF scales the fusion gradient the blend already weights"),
)
class GBlend(Policy):
    """Gradient blending (online, per super-epoch).

    Every ``super_epoch`` epochs, from the current weights: each head's training and validation loss (evaluation
    mode); then copies of the model train for N epochs (``super_epoch``, or what the run has left) on one head's
    loss each and are measured again; the weights are :func:`blend_weights`. The training loss is then
    ``w_fused CE(fused) + w_audio CE(audio head) + w_visual CE(visual head)`` (the unimodal heads are the paper's
    per-modality heads). The two unimodal heads train in one copy: their losses touch disjoint parameters and
    the copy has no gradient clipping, so this equals two separate copies.

    Deviations: without official code, the normalisation (weights summing to 1) follows BalanceBenchmark.
    BalanceBenchmark takes ``|dG / dO^2|`` (a head whose validation loss rose still gets weight), mixes the *sum*
    of the training loss over batches with the sum of the validation loss over a different number of batches,
    measures "before" after the copies' first epoch, and masks the other modality's input for its unimodal heads
    (the fused head's slices); none of that is followed.
    """

    name = "gblend"
    config_class = GBlendConfig
    #: logged each step: the blend weight of each loss term.
    log_class = log_fields("GBlendLog", "w_fused", "w_audio", "w_visual")
    needs_unimodal_losses = True
    data_parallel = False  # the copies train in one process

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.weights = {k: 1.0 / len(HEADS) for k in HEADS}

    def on_epoch_start(self, view: EpochView):
        if view.epoch % self.cfg.super_epoch == 0:
            n = min(self.cfg.super_epoch, view.epochs - view.epoch)
            before = self._losses(view, view.model)
            fused = copy.deepcopy(view.model)
            view.train_copy(fused, _head_loss("fused"), n)
            uni = copy.deepcopy(view.model)
            view.train_copy(uni, _unimodal_loss, n)
            after_fused, after_uni = self._losses(view, fused), self._losses(view, uni)
            after = {"fused": after_fused["fused"], "audio": after_uni["audio"], "visual": after_uni["visual"]}
            self.weights = blend_weights(before, after)
        self.log.update(**{f"w_{k}": w for k, w in self.weights.items()})
        return None

    @staticmethod
    def _losses(view: EpochView, model) -> dict[str, tuple[float, float]]:
        """Each head's (training loss, validation loss), one pass per split."""
        train, val = (view.mean_loss(model, _all_heads, split) for split in ("train", "val"))
        return {k: (train[i], val[i]) for i, k in enumerate(HEADS)}

    def loss_weights(self, ctx):
        return dict(self.weights)

    def state_dict(self):
        return {**super().state_dict(), "weights": dict(self.weights)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.weights = dict(state.get("weights", self.weights))
