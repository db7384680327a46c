"""MMPareto: Pareto-combined gradients of the multimodal and the unimodal losses on each encoder.

Wei & Hu, "MMPareto: boosting multimodal learning with innocent unimodal assistance", ICML 2024; code:
github.com/GeWu-Lab/MMPareto_ICML2024 (``code/MMPareto.py``, ``code/min_norm_solvers.py``). As the official code
(the IEMF code's branch is broken: it drops the fused loss and rescales a stale tensor): the conflict test and
the min-norm weights per modality over that encoder's whole gradient, the magnitude per tensor, gamma on every
encoder tensor, no epoch window.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...schema import check
from . import register_method
from .base import Composition, Policy, PolicyConfig, log_fields


@dataclass
class MMParetoConfig(PolicyConfig):
    """``gamma``: the multiplier of every encoder tensor's combined gradient (1.5 in the official code)."""

    gamma: float = field(default=1.5, metadata=check(gt=0))


def min_norm_weight(v11: float, v12: float, v22: float) -> float:
    """The weight ``c`` on the first of two vectors in their min-norm convex combination ``c g1 + (1 - c) g2``,
    from the inner products (the official two-task ``MinNormSolver``, with its clamps 0.999 and 0.001)."""
    if v12 >= v11:
        return 0.999
    if v12 >= v22:
        return 0.001
    return (v22 - v12) / (v11 + v22 - 2.0 * v12)


def pareto_weights(g_mm: list[torch.Tensor], g_uni: list[torch.Tensor]) -> tuple[float, float]:
    """``(k_mm, k_uni)`` for one modality from its encoder's gradients (all tensors together): 0.5 each without
    conflict (cosine > 0), else the min-norm weights."""
    v11 = sum(float((a * a).sum()) for a in g_mm)
    v12 = sum(float((a * b).sum()) for a, b in zip(g_mm, g_uni, strict=True))
    v22 = sum(float((b * b).sum()) for b in g_uni)
    if v12 > 0:  # cos > 0 (the norms are positive)
        return 0.5, 0.5
    c = min_norm_weight(v11, v12, v22)
    return c, 1.0 - c


def combine(g_mm: torch.Tensor, g_uni: torch.Tensor, k: tuple[float, float], gamma: float) -> torch.Tensor:
    """One tensor's new gradient: ``new = 2 k_mm g_mm + 2 k_uni g_uni``, scaled up to the norm of
    ``g_mm + g_uni`` where that is larger, times ``gamma``."""
    new = 2.0 * k[0] * g_mm + 2.0 * k[1] * g_uni
    norm_new, norm_sum = new.norm(), (g_mm + g_uni).norm()
    scale = norm_sum / norm_new if norm_new > 0 and norm_sum > norm_new else torch.ones((), device=new.device)
    return new * scale * gamma


@register_method(
    source="Wei & Hu, ICML 2024; github.com/GeWu-Lab/MMPareto_ICML2024",
    modulates="each encoder's gradient: Pareto combination of fused and unimodal losses, x gamma",
    iemf=Composition(True),
)
class MMPareto(Policy):
    """On each encoder, combine the gradient of the fused loss with that of the modality's unimodal loss
    (:func:`pareto_weights`, :func:`combine`); fusion and heads get the plain gradient of the summed loss.
    Another method's own loss term (``ctx.extra``: a rate regulariser, LFM) adds its plain gradient on the
    encoders too: the Pareto combination is over the two task losses only, as in the official code."""

    name = "mmpareto"
    config_class = MMParetoConfig
    #: logged each step: the Pareto weight of the fused loss in each encoder's gradient.
    log_class = log_fields("MMParetoLog", "k_fused_audio", "k_fused_visual")
    needs_unimodal_losses = True

    def backward(self, ctx, total):
        groups, combined = ctx.groups, {}
        for m in ("audio", "visual"):
            params = [p for p in groups.encoder(m) if p.requires_grad]
            g_mm = torch.autograd.grad(ctx.losses["fused"], params, retain_graph=True, allow_unused=True)
            g_uni = torch.autograd.grad(ctx.losses[m], params, retain_graph=True, allow_unused=True)
            g_mm = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_mm, strict=True)]
            g_uni = [torch.zeros_like(p) if g is None else g for p, g in zip(params, g_uni, strict=True)]
            k = pareto_weights(g_mm, g_uni)
            self.log.update(**{f"k_fused_{m}": k[0]})
            g_extra = [None] * len(params)
            if ctx.extra is not None and ctx.extra.requires_grad:
                g_extra = torch.autograd.grad(ctx.extra, params, retain_graph=True, allow_unused=True)
            for p, a, b, e in zip(params, g_mm, g_uni, g_extra, strict=True):
                g = combine(a, b, k, self.cfg.gamma)
                combined[id(p)] = (p, g if e is None else g + e)
        rest = [p for p in ctx.model.parameters() if p.requires_grad and id(p) not in combined]
        total.backward(inputs=rest)  # last: this frees the graph
        for p, g in combined.values():
            p.grad = g
        return True
