"""MMPareto: Pareto-combined gradients of the multimodal and the unimodal losses on each encoder.

Wei & Hu, "MMPareto: boosting multimodal learning with innocent unimodal assistance", ICML 2024; code:
github.com/GeWu-Lab/MMPareto_ICML2024.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import torch

from ...schema import check
from . import register_method
from .base import Policy, PolicyConfig


@dataclass
class MMParetoConfig(PolicyConfig):
    """``gamma``: the multiplier of the combined gradient (1.5 in the official code)."""

    gamma: float = field(default=1.5, metadata=check(gt=0))


def pareto_combine(g_mm: torch.Tensor, g_uni: torch.Tensor) -> tuple[torch.Tensor, float]:
    """The direction for one tensor from its multimodal and unimodal gradients (flattened).

    No conflict (cosine >= 0): the sum. Conflict: the min-norm convex combination ``w g_mm + (1 - w) g_uni``
    (MGDA for two tasks; its inner product with both is non-negative), rescaled to the norm of the sum when that
    is larger. Returns the direction and the weight ``w`` on ``g_mm``.
    """
    dot = float(g_mm @ g_uni)
    if dot >= 0:
        return g_mm + g_uni, 0.5
    diff = g_mm - g_uni
    w = float(((g_uni - g_mm) @ g_uni) / diff.pow(2).sum().clamp_min(1e-20))
    w = min(max(w, 0.0), 1.0)
    d = w * g_mm + (1 - w) * g_uni
    target = (g_mm + g_uni).norm()
    norm = d.norm()
    return (d * (target / norm.clamp_min(1e-20)) if target > norm else d), w


@register_method(source="Wei & Hu, ICML 2024; github.com/GeWu-Lab/MMPareto_ICML2024",
                 modulates="each encoder tensor's gradient: Pareto combination of fused and unimodal losses x gamma",
                 iemf="yes")  # fmt: skip
class MMPareto(Policy):
    """On every encoder tensor, combine the gradient of the fused loss with that of the modality's own unimodal
    loss by :func:`pareto_combine`, times ``gamma``; fusion and heads get their plain gradients."""

    name = "mmpareto"
    config_class = MMParetoConfig
    needs_unimodal_losses = True

    def backward(self, ctx, total):
        groups = ctx.groups
        enc = {id(p) for m in ("audio", "visual") for p in groups.encoder(m)}
        weights = []
        for m in ("audio", "visual"):
            params = [p for p in groups.encoder(m) if p.requires_grad]
            g_mm = torch.autograd.grad(ctx.losses["fused"], params, retain_graph=True, allow_unused=True)
            g_uni = torch.autograd.grad(ctx.losses[m], params, retain_graph=True, allow_unused=True)
            for p, a, b in zip(params, g_mm, g_uni, strict=True):
                a = torch.zeros_like(p) if a is None else a
                b = torch.zeros_like(p) if b is None else b
                d, w = pareto_combine(a.flatten(), b.flatten())
                p.grad = (self.cfg.gamma * d).view_as(p).clone()
                weights.append(w)
            self.log[f"w_{m}"] = sum(weights[-len(params):]) / max(len(params), 1)
        rest = [p for p in ctx.model.parameters() if p.requires_grad and id(p) not in enc]
        total.backward(inputs=rest)  # last: this frees the graph
        return True
