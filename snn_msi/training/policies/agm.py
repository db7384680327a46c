"""AGM: adaptive gradient modulation with Shapley-style mono-modal responses.

Li, Li, Hu, Lei, Li & Zhou, "Boosting multi-modal model performance with adaptive gradient modulation", ICCV 2023
(arXiv 2308.07686); code: github.com/lihong2303/AGM_ICCV2023@5a65542 (``model/CREMAD_net.py: GradMod``,
``run/CREMAD_main.py: train``). BalanceBenchmark's ``AGM_trainer.py`` differs (see the class docstring).
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from typing import Literal

import torch
import torch.nn.functional as F

from ...schema import check
from ..compute import not_counted
from . import register_method
from .base import Composition, ForwardContext, Policy, WindowConfig, log_fields, scale_gradient


@dataclass
class AGMConfig(WindowConfig):
    """``alpha``: modulation strength (1.0, the official ``utils/config.py``); window: the official
    ``modulation_starts <= epoch <= modulation_ends`` with 1-based epochs 0 .. 20, i.e. 0-based ``[0, 20)``;
    ``clip_threshold`` / ``clip_norm``: when a fusion-layer gradient entry leaves ``[-1, 1]`` every gradient is
    clipped to total norm 1 (official; None: never); ``zero_pass_mode``: the mode of the two zero-input passes,
    ``"eval"`` (official: ``GradMod.forward`` calls ``self.eval()`` around them, with autograd) or ``"train"``
    (batch statistics; batch-norm running statistics and counters restored after the passes, so they update once
    a step as in every other method); ``report_eval_path``: log the training batch's accuracy in evaluation mode
    beside the training-mode accuracy (one extra forward without autograd; see the class docstring)."""

    alpha: float = field(default=1.0, metadata=check(gt=0))
    zero_pass_mode: Literal["eval", "train"] = "eval"
    report_eval_path: bool = True
    end: int | None = field(default=20, metadata=check(ge=1))
    clip_threshold: float | None = field(default=1.0, metadata=check(gt=0))
    clip_norm: float = field(default=1.0, metadata=check(gt=0))


def agm_score(logits: torch.Tensor, y: torch.Tensor) -> float:
    """``mean_i -log p_i(y_i)`` with ``p = softmax(logits)`` and ``p`` below 1e-8 counted as 1e-8 (the official
    per-sample loop's guard)."""
    p = F.softmax(logits.detach().float(), 1).gather(1, y.view(-1, 1)).squeeze(1)
    return float(-torch.log(p.clamp_min(1e-8)).mean())


def agm_coefficients(s_a: float, s_v: float, t_a: float, t_v: float, alpha: float) -> tuple[float, float]:
    """``(coeff_a, coeff_v)``: ``ratio_a = exp(s_v - s_a)``, ``optimal_a = exp(t_v - t_a)`` (t: running means of
    the scores), ``coeff_a = exp(alpha * min(optimal_a - ratio_a, 10))``, and the same with a and v swapped.
    At alpha 1, s = (0.5, 1.0), t = (0.6, 0.8): (0.652256, 1.236395)."""
    ratio_a, ratio_v = math.exp(s_v - s_a), math.exp(s_a - s_v)
    opt_a, opt_v = math.exp(t_v - t_a), math.exp(t_a - t_v)
    return math.exp(alpha * min(opt_a - ratio_a, 10.0)), math.exp(alpha * min(opt_v - ratio_v, 10.0))


def _norm_buffers(model: torch.nn.Module) -> list[tuple[torch.Tensor, torch.Tensor]]:
    """``(buffer, copy)`` for the running statistics and counters of every batch-norm layer of ``model``."""
    norms = [m for m in model.modules() if isinstance(m, torch.nn.modules.batchnorm._NormBase)]
    return [(buf, buf.detach().clone()) for m in norms for buf in m.buffers()]


def running_mean(t: float, s: float, k: int) -> float:
    """The official running mean over all iterations: ``t (k - 1) / k + s / k`` (k: 1-based global step)."""
    return t * (k - 1) / k + s / k


@register_method(
    source="Li et al., ICCV 2023 (arXiv 2308.07686); github.com/lihong2303/AGM_ICCV2023@5a65542",
    modulates="the gradient reaching each Shapley mono-modal response (and so that modality's encoder) "
    "x exp(alpha (optimal ratio - ratio))",
    iemf=Composition(True, "AGM on the mono-modal responses, IEMF on the fusion layer"),
)
class AGM(Policy):
    """Adaptive gradient modulation.

    Every training step runs the model three times, as the official ``GradMod.forward``: ``f(a, v)`` in training
    mode, and ``f(a, 0)`` and ``f(0, v)`` (a modality's *input* set to zero) in evaluation mode with autograd.
    The mono-modal responses ``m_a = (f(a, v) - f(0, v) + f(a, 0)) / 2`` and ``m_v = (f(a, v) - f(a, 0) +
    f(0, v)) / 2`` sum to the fused output the loss sees. Scores ``s_m = mean -log softmax(m_m)[y]``, the
    running means ``t_m`` over every step so far (updated after the coefficients, on every step, also outside the
    window), coefficients :func:`agm_coefficients`; inside the window the gradient reaching ``m_a`` is multiplied
    by ``coeff_a`` and the one reaching ``m_v`` by ``coeff_v`` (the official backward hooks). Before the
    optimizer step, if a fusion-layer gradient entry leaves ``[-clip_threshold, clip_threshold]``, all gradients
    are clipped to total norm ``clip_norm``.

    Deviations from the official code: ``f(0, 0)``, computed there and unused, is not run; the clipping test reads
    every fusion-layer gradient (the official reads ``fusion_module.fc_out.weight``; the project's fusions differ
    in layout); outside the window the coefficients are 1 (the official hooks keep the last coefficients after
    the window ends). BalanceBenchmark (``AGM_trainer.py``) flips the ratio's sign (``exp(s_a - s_v)`` for
    audio, so it boosts the modality the official code suppresses), leaves out the empty coalition, scales the
    encoders' non-1-D gradients instead of using hooks, clips the exponent at 7 and uses alpha 0.1 and
    threshold 5; none of that is followed here.

    Why AGM can collapse at evaluation (measured on digits-av, issue #24): the official design back-propagates
    through the two zero-input passes run in ``eval()`` mode, one of them with a negative weight in each
    mono-modal response, so training also moves the *evaluation-mode* path (batch-norm running statistics, then
    spikes) while the training-mode path it is scored on keeps improving; a checkpoint scored 13.8 % with batch
    norm in evaluation mode and 62.8 % with batch statistics. ``report_eval_path`` logs both accuracies on every
    training batch (``agm/acc_train_mode``, ``agm/acc_eval_mode``), so a run shows the gap as it opens (its pass is
    a log: not counted in the run's compute, :func:`~snn_msi.training.compute.not_counted`);
    ``zero_pass_mode: train`` runs the passes with batch statistics (not the official design; listed as an
    option, not a default).
    """

    name = "agm"
    config_class = AGMConfig
    #: logged each step: AGM's scores, running means, coefficients, whether the step clipped them, and the batch's
    #: accuracy in evaluation and in training mode
    log_class = log_fields(
        "AGMLog",
        "score_audio",
        "score_visual",
        "running_audio",
        "running_visual",
        "coeff_audio",
        "coeff_visual",
        "active",
        "clipped",
        "acc_eval_mode",
        "acc_train_mode",
    )

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.t = {"audio": 0.0, "visual": 0.0}
        self.k = 0

    def forward(self, fwd: ForwardContext):
        if not fwd.train:
            return None
        b = fwd.batch
        out = fwd.run()
        f_a0, f_0v = self._zero_passes(fwd)
        acc_eval = self._eval_mode_accuracy(fwd) if self.cfg.report_eval_path else float("nan")
        m_a = 0.5 * (out.fused - f_0v + f_a0)
        m_v = 0.5 * (out.fused - f_a0 + f_0v)
        s_a, s_v = agm_score(m_a, b.y), agm_score(m_v, b.y)
        coeff_a, coeff_v = agm_coefficients(s_a, s_v, self.t["audio"], self.t["visual"], self.cfg.alpha)
        self.k += 1
        self.t = {
            "audio": running_mean(self.t["audio"], s_a, self.k),
            "visual": running_mean(self.t["visual"], s_v, self.k),
        }
        active = self.cfg.active(fwd.epoch)
        if not active:
            coeff_a = coeff_v = 1.0
        self.log.update(
            score_audio=s_a,
            score_visual=s_v,
            running_audio=self.t["audio"],
            running_visual=self.t["visual"],
            coeff_audio=coeff_a,
            coeff_visual=coeff_v,
            active=float(active),
            clipped=0.0,
            acc_eval_mode=acc_eval,
            acc_train_mode=float((out.fused.detach().argmax(1) == b.y).float().mean()),
        )
        fused = scale_gradient(m_a, coeff_a) + scale_gradient(m_v, coeff_v)
        return dataclasses.replace(out, fused=fused)

    def _zero_passes(self, fwd: ForwardContext) -> tuple[torch.Tensor, torch.Tensor]:
        """``f(a, 0)`` and ``f(0, v)`` (fused logits, with autograd) in ``zero_pass_mode``."""
        model, b = fwd.model, fwd.batch
        was = model.training
        saved = _norm_buffers(model) if self.cfg.zero_pass_mode == "train" else None
        model.train(self.cfg.zero_pass_mode == "train")
        try:
            f_a0 = fwd.output(*fwd.features(b.audio, torch.zeros_like(b.frames)), keep=False).fused
            f_0v = fwd.output(*fwd.features(torch.zeros_like(b.audio), b.frames), keep=False).fused
        finally:
            model.train(was)
            if saved is not None:  # through .data: batch norm saved these buffers for its backward (unused in
                for buf, value in saved:  # training mode), so an in-place copy would fail the version check
                    buf.data.copy_(value)
        return f_a0, f_0v

    @staticmethod
    @torch.no_grad()
    def _eval_mode_accuracy(fwd: ForwardContext) -> float:
        """The training batch's accuracy with the model in evaluation mode (no autograd, no buffer changes, and the
        random streams forked, so a stochastic coding draws the same numbers for training with or without it)."""
        model, b = fwd.model, fwd.batch
        was = model.training
        model.eval()
        devices = [b.y.device] if b.y.device.type == "cuda" else []
        try:
            with torch.random.fork_rng(devices=devices), not_counted():
                fused = fwd.output(*fwd.features(), keep=False).fused
        finally:
            model.train(was)
        return float((fused.argmax(1) == b.y).float().mean())

    def before_step(self, ctx):
        thr = self.cfg.clip_threshold
        grads = [p.grad for p in ctx.groups.fusion if p.grad is not None]
        if thr is not None and grads and max(float(g.abs().max()) for g in grads) > thr:
            torch.nn.utils.clip_grad_norm_([p for p in ctx.model.parameters()], max_norm=self.cfg.clip_norm)
            self.log.update(clipped=1.0)

    def state_dict(self):
        return {**super().state_dict(), "t": dict(self.t), "k": self.k}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.t, self.k = dict(state.get("t", self.t)), int(state.get("k", 0))
