"""OPM: on-the-fly prediction modulation (drop the dominant modality's features, per sample, with a probability
that grows with its dominance).

Wei, Hu, Du & Wen, "On-the-fly modulation for balanced multimodal learning", IEEE TPAMI 2024 (arXiv 2410.11582;
the extension of OGM-GE, CVPR 2022); code: github.com/GeWu-Lab/BML_TPAMI2024@4b3aa4f (``code/models/Classifier.py:
calcu_q, Modality_drop.execute_drop, custom_autograd``; ``code/main.py: train``; ``code/scripts/train_opm.sh``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch

from ...schema import check
from . import register_method
from .base import (
    Composition,
    ForwardContext,
    NoiseSource,
    Policy,
    WindowConfig,
    log_fields,
    true_class_score,
    unmasked_heads,
)


@dataclass
class OPMConfig(WindowConfig):
    """``q_base``: base drop probability (0.5: ``train_opm.sh`` and the argparse default; the unused
    ``config.py`` says 0.4); ``lam``: its growth with dominance (0.5); ``p_exe``: probability that a batch drops at
    all (0.7); ``start``: the official warm-up drops nothing while ``epoch <= 5``, so 6."""

    q_base: float = field(default=0.5, metadata=check(ge=0, le=1))
    lam: float = field(default=0.5, metadata=check(ge=0))
    p_exe: float = field(default=0.7, metadata=check(ge=0, le=1))
    start: int = field(default=6, metadata=check(ge=0))


def opm_drop_probabilities(s_a: float, s_v: float, q_base: float, lam: float) -> tuple[float, float]:
    """``(q_a, q_v)``: ``ratio_m = tanh(relu(s_m / s_other - 1))``; ``q_m = clip(q_base (1 + lam ratio_m), 0, 1)``
    where ``ratio_m > 0``, else 0 (only the dominant modality is dropped). s = (6, 3), q_base 0.5, lam 0.5:
    (0.690399, 0)."""
    r_a = math.tanh(max(s_a / max(s_v, 1e-12) - 1.0, 0.0))
    r_v = math.tanh(max(s_v / max(s_a, 1e-12) - 1.0, 0.0))
    q_a = min(max(q_base * (1 + lam * r_a), 0.0), 1.0) if r_a > 0 else 0.0
    q_v = min(max(q_base * (1 + lam * r_v), 0.0), 1.0) if r_v > 0 else 0.0
    return q_a, q_v


def drop_features(
    a: torch.Tensor, v: torch.Tensor, keep_a: torch.Tensor, keep_v: torch.Tensor, q_a: float, q_v: float
) -> tuple[torch.Tensor, torch.Tensor]:
    """``h_m * keep_m / (1 - theta)`` with ``theta = (d_a q_a + d_v q_v) / (d_a + d_v)`` (``d``: feature sizes),
    ``keep [B]`` broadcast over time and features (``custom_autograd`` scales forward and backward alike)."""
    d_a, d_v = a.shape[-1], v.shape[-1]
    theta = (d_a * q_a + d_v * q_v) / (d_a + d_v)
    scale = 1.0 / max(1.0 - theta, 1e-12)
    return a * keep_a.view(1, -1, 1).to(a.dtype) * scale, v * keep_v.view(1, -1, 1).to(v.dtype) * scale


@register_method(
    source="Wei et al., TPAMI 2024 (arXiv 2410.11582); github.com/GeWu-Lab/BML_TPAMI2024@4b3aa4f",
    modulates="drops the dominant modality's features per sample (prob. from score ratio), rescaled",
    iemf=Composition(True, "IEMF's fused score then comes from the dropped-feature prediction"),
)
class OPM(Policy):
    """On-the-fly prediction modulation ("OPRM").

    Each training step inside the window: the scores ``s_m = sum_i softmax(out_m)[i, y_i]`` of each modality's
    part of the fused logits (no gradient), the drop probabilities :func:`opm_drop_probabilities`; with
    probability ``p_exe`` the batch is modulated: each sample keeps modality m with probability ``1 - q_m``
    (independently), and the fusion sees ``drop_features``; otherwise it sees the features unchanged. With two
    modalities only the dominant one has ``q > 0``, so no sample loses both (the official code's removal of such
    samples never triggers). Draws come from the method's own seeded stream.

    Deviations: the project's unimodal heads (absent in the official model) see the features undropped; the
    features are masked at every time step of the spiking encoders' output. BalanceBenchmark uses q_base 0.4, no
    warm-up and adds 1e-5 to ``1 - theta``.
    """

    name = "opm"
    config_class = OPMConfig
    #: logged each step: scores, drop probabilities and the kept fraction of each modality.
    log_class = log_fields(
        "OPMLog",
        "score_audio",
        "score_visual",
        "q_audio",
        "q_visual",
        "active",
        "executed",
        "kept_audio",
        "kept_visual",
    )

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.noise_source = NoiseSource(seed)

    def forward(self, fwd: ForwardContext):
        if not fwd.train:
            return None
        a, v = fwd.features()
        with torch.no_grad():
            _, part_a, part_v = fwd.model.fusion(a, v)
        s_a, s_v = (float(true_class_score(p.mean(0), fwd.batch.y)) for p in (part_a, part_v))
        q_a, q_v = opm_drop_probabilities(s_a, s_v, self.cfg.q_base, self.cfg.lam)
        active = self.cfg.active(fwd.epoch)
        device = a.device
        executed = active and float(self.noise_source.rand((), device)) >= 1.0 - self.cfg.p_exe
        keep_a = keep_v = torch.ones(a.shape[1], device=device)
        if executed:
            draws = self.noise_source.rand((2, a.shape[1]), device)
            keep_a, keep_v = (draws[0] < 1.0 - q_a).float(), (draws[1] < 1.0 - q_v).float()
            a_in, v_in = drop_features(a, v, keep_a, keep_v, q_a, q_v)
        else:
            a_in, v_in = a, v
        self.log.update(
            score_audio=s_a,
            score_visual=s_v,
            q_audio=q_a,
            q_visual=q_v,
            active=float(active),
            executed=float(executed),
            kept_audio=float(keep_a.mean()),
            kept_visual=float(keep_v.mean()),
        )
        return unmasked_heads(fwd.output(a_in, v_in), fwd.model, a, v)
