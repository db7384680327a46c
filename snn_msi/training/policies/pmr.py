"""PMR: prototypical modal rebalance.

Fan, Xu, Wang, Wang & Guo, "PMR: prototypical modal rebalance for multimodal learning", CVPR 2023 (arXiv
2211.07089); code: github.com/fanyunfeng-bit/Modal-Imbalance-PMR@3615e48 (``main_Prototype_grad.py``:
``EU_dist``, ``calculate_prototype``, ``train_epoch``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...schema import check
from . import register_method
from .base import MODALITIES, Composition, EpochView, Policy, WindowConfig, log_fields


@dataclass
class PMRConfig(WindowConfig):
    """``alpha``: weight of the weaker modality's prototypical cross-entropy (1.0, the official default);
    ``momentum``: prototype momentum (``momentum_coef`` 0.2); window: the official ``modulation_starts <= epoch
    <= modulation_ends`` with 0 .. 100, i.e. ``[0, 101)``."""

    alpha: float = field(default=1.0, metadata=check(ge=0))
    momentum: float = field(default=0.2, metadata=check(ge=0, lt=1))
    end: int | None = field(default=101, metadata=check(ge=1))


def prototypes(features: torch.Tensor, y: torch.Tensor, classes: int, previous: torch.Tensor | None = None):
    """Class means ``[classes, D]`` of ``features [N, D]``; a class with no sample keeps its ``previous`` row
    (zeros without one; the official code divides by zero there)."""
    sums = torch.zeros(classes, features.shape[1], dtype=features.dtype).index_add_(0, y, features)
    counts = torch.bincount(y, minlength=classes).to(features.dtype)
    means = sums / counts.clamp_min(1).unsqueeze(1)
    fallback = previous if previous is not None else torch.zeros_like(means)
    return torch.where((counts > 0).unsqueeze(1), means, fallback)


def euclidean(h: torch.Tensor, protos: torch.Tensor) -> torch.Tensor:
    """``[B, C]`` Euclidean distances (``EU_dist``; the square root's argument floored at 1e-12 so that a
    feature on a prototype has a finite gradient)."""
    return ((h.unsqueeze(1) - protos.unsqueeze(0)) ** 2).sum(-1).clamp_min(1e-12).sqrt()


def pmr_coefficients(score_a: float, score_v: float, alpha: float) -> tuple[float, float]:
    """``(beta, gamma)``, the weights of the audio and visual prototypical losses: alpha on the weaker modality
    only (``rho = score_a / score_v``: > 1 -> (0, alpha), < 1 -> (alpha, 0), = 1 -> (0, 0))."""
    rho = score_a / max(score_v, 1e-12)
    if rho > 1:
        return 0.0, alpha
    if rho < 1:
        return alpha, 0.0
    return 0.0, 0.0


@register_method(
    source="Fan et al., CVPR 2023 (arXiv 2211.07089); github.com/fanyunfeng-bit/Modal-Imbalance-PMR@3615e48",
    modulates="adds alpha * CE(-distance to class prototypes) of the weaker modality's features",
    iemf=Composition(True, "the prototype term reaches the encoders only; IEMF scales the fusion layer"),
)
class PMR(Policy):
    """Prototypical modal rebalance.

    At the start of every epoch, class prototypes of each modality's encoder features (time-averaged) from the
    first tenth of the training batches (at least one; shuffled, evaluation mode); from epoch 2 on blended with
    the previous ones, ``(1 - momentum) new + momentum old`` (the official code skips the momentum on the first
    update, after epoch 0, and so here). Each step, inside the window: ``sim_m = -||h_m - c_m||``,
    ``score_m = sum_i softmax(sim_m)[i, y_i]``, and ``alpha * CE(sim_m, y)`` added for the weaker modality only
    (:func:`pmr_coefficients`). The prototypes are constants: the term's gradient reaches the encoders.

    Deviations: a class absent from the prototype batches keeps its previous prototype (the official code
    divides by zero and trains on NaN); the paper's prototype-entropy regulariser is in neither the official
    ``main_Prototype_grad.py`` nor BalanceBenchmark, and not here. BalanceBenchmark uses alpha 0.6 and momentum
    0.5 and recomputes the prototypes at each epoch's start (the same as after each epoch).
    """

    name = "pmr"
    config_class = PMRConfig
    #: logged each step: prototype scores, coefficients and losses.
    log_class = log_fields(
        "PMRLog", "score_audio", "score_visual", "beta", "gamma", "loss_audio", "loss_visual", "active"
    )
    data_parallel = False  # the prototypes come from each process's own batches

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.protos: dict[str, torch.Tensor] = {}

    def on_epoch_start(self, view: EpochView):
        limit = max(1, view.num_batches("train") // 10)
        feats = view.features("train", shuffle=True, limit=limit)
        for m, h in (("audio", feats.audio), ("visual", feats.visual)):
            old = self.protos.get(m)
            new = prototypes(h, feats.y, view.num_classes, None if old is None else old.cpu())
            if view.epoch >= 2 and old is not None:
                new = (1 - self.cfg.momentum) * new + self.cfg.momentum * old.cpu()
            self.protos[m] = new
        return None

    def loss(self, ctx):
        h = {m: ctx.out.features[m].float() for m in MODALITIES}
        sims = {m: -euclidean(h[m], self.protos[m].to(h[m].device, torch.float32)) for m in MODALITIES}
        scores = {m: float(F.softmax(s.detach(), 1).gather(1, ctx.y.view(-1, 1)).sum()) for m, s in sims.items()}
        losses = {m: F.cross_entropy(s, ctx.y) for m, s in sims.items()}
        beta, gamma = pmr_coefficients(scores["audio"], scores["visual"], self.cfg.alpha)
        active = self.cfg.active(ctx.epoch)
        self.log.update(
            score_audio=scores["audio"],
            score_visual=scores["visual"],
            beta=beta,
            gamma=gamma,
            loss_audio=float(losses["audio"].detach()),
            loss_visual=float(losses["visual"].detach()),
            active=float(active),
        )
        if not active or (beta == 0 and gamma == 0):
            return None
        return beta * losses["audio"] + gamma * losses["visual"]

    def state_dict(self):
        return {**super().state_dict(), "protos": {m: p.detach().cpu().clone() for m, p in self.protos.items()}}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.protos = {m: p.clone() for m, p in state.get("protos", {}).items()}
