"""MLA: multimodal learning by alternating unimodal adaptation (one shared head, one optimizer step per modality,
gradient projection against forgetting, entropy-gated fusion at test time).

Zhang, Yoon, Bansal & Yao, "Multimodal representation learning by alternating unimodal adaptation", CVPR 2024
(arXiv 2311.10707); code: github.com/Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation@ab6c184
(``main.py: train_epoch`` (``gs_flag``), ``calculate_entropy``, ``calculate_gating_weights``, ``valid``;
``utils/utils.py: GSPlugin.before_update``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F
from torch import nn

from ...models.heads import AVOutput
from ...schema import check
from . import register_method
from .base import Composition, Policy, PolicyConfig, TrainStep, log_fields


@dataclass
class MLAConfig(PolicyConfig):
    """``projection``: project the shared head's gradient (the paper's gradient modification). Default ``false``,
    as the official runs: their ``GSPlugin`` tests the parameter name ``module.weight`` on a bare ``nn.Linear``
    whose weight is named ``weight``, so it never projects; ``true`` is the paper's text; ``gating``: ``"entropy"`` (the
    paper's test-time fusion) or ``"average"`` (the official default without ``--dynamic``: ``av_alpha`` z_a +
    (1 - av_alpha) z_v); ``av_alpha``: 0.5."""

    projection: bool = False
    gating: Literal["entropy", "average"] = "entropy"
    av_alpha: float = field(default=0.5, metadata=check(ge=0, le=1))


def update_projection(p: torch.Tensor, r: torch.Tensor, alpha: float) -> torch.Tensor:
    """One ``GSPlugin`` update: ``k = P r^T``, ``P <- P - k k^T / (alpha + r k)``, ``P <- P / ||P||_F``.
    P = I (2 x 2), r = [1, 0], alpha 0.1: diag(0.0905357, 0.9958932). The denominator is the scalar of OWM's
    recursive least squares (Zeng et al. 2019, where ``GSPlugin`` comes from); the official MLA code and
    BalanceBenchmark write ``alpha + torch.mm(k, r)``, a D x D matrix divided elementwise (a deviation, listed
    in docs/methods.md)."""
    k = p @ r.T
    p = p - (k @ k.T) / (alpha + r @ k)
    return p / torch.linalg.matrix_norm(p)


def projection_alpha(batch_index: int, batches: int) -> float:
    """``0.1 ** (1 + batch_index / batches)`` (``GSPlugin``'s ``alpha``)."""
    return 0.1 ** (1.0 + batch_index / batches)


def entropy_gates(z_a: torch.Tensor, z_v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """Per-sample gates ``softmax(-[e_a, e_v])`` from the entropies ``e_m = -sum_c p_c log p_c`` of each modality's
    prediction (the paper's ``exp(max e - e_m)`` normalised). z_a = [2, 0], z_v = [0, 0]: (0.581227, 0.418773)."""
    e = torch.stack([-(F.softmax(z, 1) * F.log_softmax(z, 1)).sum(1) for z in (z_a.float(), z_v.float())], 1)
    w = F.softmax(-e, 1)
    return w[:, 0:1], w[:, 1:2]


class _SharedHead(nn.Module):
    """The head every modality shares (``fusion_module.fc_out`` on one modality's features) and the projection
    matrix P (a buffer: it is saved with the head)."""

    def __init__(self, dim: int, classes: int) -> None:
        super().__init__()
        self.head = nn.Linear(dim, classes)
        self.register_buffer("P", torch.eye(dim))
        self.register_buffer("count", torch.zeros((), dtype=torch.long))


@register_method(
    source="Zhang et al., CVPR 2024 (arXiv 2311.10707); "
    "github.com/Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation@ab6c184",
    modulates="one optimizer step per modality on a shared head (gradient projected); test-time entropy-gated sum",
    iemf=Composition(False, "MLA trains no fusion layer (modalities alternate on a shared head)"),
)
class MLA(Policy):
    """Alternating unimodal adaptation.

    Per batch: one forward of both encoders, then for audio and then visual: ``z_m = head(h_m)`` (the shared
    head, logits averaged over T), ``CE(z_m, y)``, backward, the head's weight gradient projected (``grad <- grad
    P^T`` after :func:`update_projection` with ``r`` the batch mean of ``h_m`` and :func:`projection_alpha`,
    except at the very first modality step of the run), an optimizer step. P persists over the run. The
    prediction is :func:`entropy_gates`-weighted ``w_a z_a + w_v z_v`` (or the fixed average); ``audio`` /
    ``visual`` are ``z_a`` / ``z_v``. The model's fusion layer and unimodal heads are unused.

    Deviations (the default does not project, as the official runs; see ``projection``): the
    gates are per sample, as in the paper and BalanceBenchmark (the official ``calculate_entropy`` takes a softmax
    over the batch axis and one entropy per batch); P is the feature size, not a fixed 512; P's update divides by
    the scalar ``alpha + r k`` (see :func:`update_projection`). BalanceBenchmark projects with ``grad (I + P^T)``
    and reads an undefined ``self.alpha``; not followed.
    """

    name = "mla"
    config_class = MLAConfig
    #: logged each step: each modality's loss, the head's alpha and the audio gate.
    log_class = log_fields("MLALog", "loss_audio", "loss_visual", "alpha", "gate_audio")

    def setup(self, model):
        head = model.heads.audio
        self.extra = _SharedHead(head.in_features, head.out_features).to(head.weight.device)

    def predict(self, model, a, v):
        z_a, z_v = self.extra.head(a).mean(0), self.extra.head(v).mean(0)
        if self.cfg.gating == "entropy":
            g_a, g_v = entropy_gates(z_a, z_v)
        else:
            g_a = torch.full_like(z_a[:, :1], self.cfg.av_alpha)
            g_v = 1.0 - g_a
        self.gate_audio = float(g_a.detach().mean())
        return AVOutput(
            fused=g_a * z_a + g_v * z_v,
            audio=z_a,
            visual=z_v,
            fused_audio=g_a * z_a,
            fused_visual=g_v * z_v,
            features={"audio": a.mean(0), "visual": v.mean(0)},
        )

    def train_step(self, step: TrainStep):
        a, v = step.fwd.features()
        shared = self.extra
        alpha = projection_alpha(step.batch_index, step.batches)
        losses = {}
        for m, h in (("audio", a), ("visual", v)):
            step.zero_grad()
            loss = F.cross_entropy(shared.head(h).mean(0).float(), step.batch.y)
            if not math.isfinite(float(loss.detach())):
                return None, loss.detach()
            loss.backward()
            if self.cfg.projection and int(shared.count) > 0 and shared.head.weight.grad is not None:
                with torch.no_grad():
                    r = h.detach().mean(0).mean(0, keepdim=True).float()
                    shared.P.copy_(update_projection(shared.P, r, alpha))
                    shared.head.weight.grad.copy_(shared.head.weight.grad @ shared.P.T)
            step.optimizer_step()
            shared.count += 1
            losses[m] = loss.detach()
        with torch.no_grad():
            out = self.predict(step.model, a.detach(), v.detach())
        self.log.update(
            loss_audio=float(losses["audio"]),
            loss_visual=float(losses["visual"]),
            alpha=alpha,
            gate_audio=self.gate_audio,
        )
        return out, (losses["audio"] + losses["visual"]) / 2
