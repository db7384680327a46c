"""LFM: an alignment term between the unimodal predictions, as the IEMF code's LFM baseline.

Yang et al., "Facilitating multimodal classification via dynamically learning modality gap", NeurIPS 2024; code:
github.com/njustkmg/NeurIPS24-LFM. The term is on the unimodal heads' logits (the official LFM code and the IEMF
ablation script; the IEMF main script put it on the softmax of the 512-d features) and is the Jensen-Shannon
divergence ``(KL(p || m) + KL(q || m)) / 2`` (every original passes its arguments to ``F.kl_div`` the wrong way
round and computes ``(KL(m || p) + KL(m || q)) / 2``). The fitted epoch weights of the official code are unused
in the IEMF main script, and so here: weight 1.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch
import torch.nn.functional as F

from ...schema import check
from . import register_method
from .base import Composition, Policy, PolicyConfig, log_fields


@dataclass
class LFMConfig(PolicyConfig):
    """``weight``: of the Jensen-Shannon term (1 in the original)."""

    weight: float = field(default=1.0, metadata=check(ge=0))


def js_divergence(logits_p: torch.Tensor, logits_q: torch.Tensor) -> torch.Tensor:
    """Mean over the batch of ``JS(softmax(p) || softmax(q)) = (KL(P || M) + KL(Q || M)) / 2``, ``M = (P + Q) / 2``."""
    log_p, log_q = F.log_softmax(logits_p.float(), 1), F.log_softmax(logits_q.float(), 1)
    log_m = torch.logsumexp(torch.stack([log_p, log_q]), 0) - torch.log(torch.tensor(2.0, device=log_p.device))
    kl_pm = (log_p.exp() * (log_p - log_m)).sum(1)
    kl_qm = (log_q.exp() * (log_q - log_m)).sum(1)
    return (0.5 * (kl_pm + kl_qm)).mean()


@register_method(
    source="Yang et al., NeurIPS 2024; github.com/njustkmg/NeurIPS24-LFM; the IEMF code's baseline",
    modulates="adds weight * JS(softmax(audio head) || softmax(visual head)) to the loss",
    iemf=Composition(True),
)
class LFM(Policy):
    """Adds ``weight * JS(softmax(z_audio) || softmax(z_visual))`` on the unimodal heads' logits (the original
    used batch 16 with it); the heads are trained by their own losses too."""

    name = "lfm"
    config_class = LFMConfig
    #: logged each step: the Jensen-Shannon term.
    log_class = log_fields("LFMLog", "js")
    needs_unimodal_losses = True

    def loss(self, ctx):
        js = js_divergence(ctx.out.audio, ctx.out.visual)
        self.log.update(js=float(js.detach()))
        return self.cfg.weight * js
