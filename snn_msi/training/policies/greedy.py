"""Greedy: balanced multi-modal learning by curating the cross-modal flow of MMTM mid-fusion blocks.

Wu, Jastrzebski, Cho & Geras, "Characterizing and overcoming the greedy nature of learning in multi-modal deep
neural networks", ICML 2022 (arXiv 2202.05306); code: github.com/nyukat/greedy_multimodal_learning@cf28c4c
(``src/balanced_mmtm.py: MMTM_mitigate``, ``src/model.py: MMTM_MVCNN``, ``src/callbacks.py:
Bias_Mitigation_Strong``, ``configs/training_guided.gin``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import torch
import torch.nn.functional as F
from torch import nn

import neurons

from ...schema import check
from . import register_method
from .base import Composition, ForwardContext, Policy, PolicyConfig, log_fields


@dataclass
class GreedyConfig(PolicyConfig):
    """``epsilon``: the conditional-utilisation-rate gap that starts a curation (0.01); ``window``: curation
    steps (``curation_windowsize`` 5); ``start``: first epoch that may curate, 0-based (1: the official
    ``starting_epoch`` 2 counts epochs from 1; the rates accumulate from the first step); ``ratio``: MMTM's squeeze
    ratio (4)."""

    epsilon: float = field(default=0.01, metadata=check(ge=0))
    window: int = field(default=5, metadata=check(ge=1))
    start: int = field(default=1, metadata=check(ge=0))
    ratio: float = field(default=4.0, metadata=check(gt=0))


class MMTM(nn.Module):
    """Multimodal transfer module between two encoder stages (``MMTM_mitigate``, without its sharing options).

    Squeeze each stream's maps over space (the visual stream also over its K frames) per time step, one shared
    ``squeeze`` layer on both, ReLU, a sigmoid excitation per modality that rescales that modality's channels.
    In curation, the caring modality's excitation is its running average over training steps instead (the same
    for every sample: no cross-modal information reaches it)."""

    def __init__(self, c_a: int, c_v: int, ratio: float) -> None:
        super().__init__()
        out = int(2 * (c_a + c_v) / ratio)
        self.squeeze = nn.Linear(c_a + c_v, out)
        self.excite_audio = nn.Linear(out, c_a)
        self.excite_visual = nn.Linear(out, c_v)
        self.register_buffer("running_audio", torch.zeros(c_a))
        self.register_buffer("running_visual", torch.zeros(c_v))
        self.register_buffer("steps", torch.zeros((), dtype=torch.long))

    def forward(self, sa: torch.Tensor, sv: torch.Tensor, frames: int, caring: int | None, update: bool):
        """``sa [T, B, C, H, W]``, ``sv [T, B*K, C, H, W]`` -> the rescaled maps; ``caring``: 0 (audio), 1 (visual)
        or None (no curation); ``update``: fold this step's excitation into the running averages."""
        t, b = sa.shape[:2]
        qa = sa.mean((-2, -1))
        qv = sv.mean((-2, -1)).view(t, b, frames, -1).mean(2)
        z = F.relu(self.squeeze(torch.cat([qa, qv], -1)))
        ea, ev = torch.sigmoid(self.excite_audio(z)), torch.sigmoid(self.excite_visual(z))  # [T, B, C]
        if update:
            n = int(self.steps)
            with torch.no_grad():
                self.running_audio.copy_((ea.mean((0, 1)) + self.running_audio * n) / (n + 1))
                self.running_visual.copy_((ev.mean((0, 1)) + self.running_visual * n) / (n + 1))
            self.steps += 1
        if caring == 0:
            ea = self.running_audio.expand_as(ea)
        elif caring == 1:
            ev = self.running_visual.expand_as(ev)
        ev = ev.unsqueeze(2).expand(t, b, frames, ev.shape[-1]).reshape(t, b * frames, -1)
        return sa * ea[..., None, None], sv * ev[..., None, None]


def mmtm_positions(stages: int) -> list[int]:
    """After every encoder stage but the first (``MMTM_MVCNN``: after ResNet-18 layers 2, 3, 4); after the only
    one when there is one."""
    return list(range(1, stages)) if stages > 1 else [0]


def conditional_utilisation(bypass: float, main: float) -> float:
    """A modality's bias-detection rate ``log10(M_bypass / M_main)`` from the accumulated relative gradient
    norms. bypass 0.2, main 0.1: 0.301030."""
    return math.log10(bypass / main)


def relative_grad_norm(params) -> float:
    """``sum ||g||^2 / sum ||theta||^2`` over ``params`` (0 where no gradient)."""
    gn = sum(float((p.grad.detach().float() ** 2).sum()) for p in params if p.grad is not None)
    wn = sum(float((p.detach().float() ** 2).sum()) for p in params)
    return gn / wn if wn > 0 else 0.0


@register_method(
    source="Wu et al., ICML 2022 (arXiv 2202.05306); github.com/nyukat/greedy_multimodal_learning@cf28c4c",
    modulates="adds MMTM mid-fusion blocks; when the modalities' bypass/main gradient ratios drift "
    "apart, cuts the cross-modal flow into the greedier one for a few steps",
    iemf=Composition(True, "the MMTM blocks are not the fusion layer IEMF scales"),
)
class Greedy(Policy):
    """Balanced multi-modal learning (the "guided" algorithm).

    The project's encoders have no mid-fusion, so the method adds the official architecture's: an MMTM block
    (:class:`MMTM`) between the two spiking ResNets after every stage but the first (:func:`mmtm_positions`), in
    training and evaluation. After each backward it accumulates, per modality, ``||g||^2 / ||theta||^2`` of its
    encoder ("main") and of the MMTM parameters ("bypass": its own excitation layer and the shared squeeze), and
    ``d = BDR_audio - BDR_visual`` with ``BDR_m = log10(M_bypass_m / M_main_m)``
    (:func:`conditional_utilisation`). From epoch ``start`` on, when not curating and ``|d| > epsilon``, the
    next ``window`` steps curate: the modality with the larger rate (audio if d > 0) gets its running-average
    excitation (no cross-modal input); the rates do not accumulate while curating.

    Deviations (the closest faithful variant on this project's networks): the MMTM squeeze averages the visual
    stream over its K frames and works per spiking time step; the rates' "main" part is the encoder (the
    official branch includes its own classifier; here the classifier is the shared fusion head); each
    modality's running average is its own (the official code updates both from the visual excitation, a slip)
    and only training forwards update it. BalanceBenchmark's MMTM resets the running averages and then reads
    them (a KeyError) and hard-codes batch 64; not followed.
    """

    name = "greedy"
    config_class = GreedyConfig
    #: logged each step: whether the step curates, the cared modality and the speed gap.
    log_class = log_fields("GreedyLog", "curating", "caring", "d_bdr")

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.m_main = [0.0, 0.0]
        self.m_bypass = [0.0, 0.0]
        self.curating, self.caring, self.curation_step, self.d = False, 0, 0, 0.0
        self.positions: list[int] = []

    def setup(self, model):
        widths, blocks = model.config.widths, model.config.blocks
        self.positions = mmtm_positions(len(blocks))
        self.extra = nn.ModuleDict({str(s): MMTM(widths[s], widths[s], self.cfg.ratio) for s in self.positions})
        self.extra.to(next(model.parameters()).device)

    def encode(self, model, audio: torch.Tensor, frames: torch.Tensor, caring: int | None, update: bool):
        """Both spiking ResNets stage by stage with the MMTM blocks between: ``(a, v)``, each ``[T, B, D]``."""
        neurons.reset(model)
        b, k = frames.shape[:2]
        xs = [model.coding(audio), model.coding(frames.flatten(0, 1))]
        nets = [model.audio_net, model.visual_net]
        for i, (net, x) in enumerate(zip(nets, xs, strict=True)):
            s = net.stem_sn(net.stem_conv(x))
            t, n = s.shape[:2]
            s = net.pool(s.flatten(0, 1))
            xs[i] = s.view(t, n, *s.shape[1:])
        layer = 0
        for stage, count in enumerate(model.config.blocks):
            for _ in range(count):
                xs = [net.layers[layer](x) for net, x in zip(nets, xs, strict=True)]
                layer += 1
            if str(stage) in self.extra:
                xs = list(self.extra[str(stage)](xs[0], xs[1], k, caring, update))
        a = xs[0].mean((-2, -1))
        v = xs[1].mean((-2, -1))
        return a, v.view(v.shape[0], b, k, -1).mean(2)

    def forward(self, fwd: ForwardContext):
        caring = self.caring if (fwd.train and self.curating) else None
        a, v = self.encode(fwd.model, fwd.batch.audio, fwd.batch.frames, caring, update=fwd.train)
        self.log.update(curating=float(caring is not None), caring=float(self.caring), d_bdr=self.d)
        return fwd.output(a, v)

    def _rates(self, ctx) -> None:
        squeeze = [p for blk in self.extra.values() for p in blk.squeeze.parameters()]
        for i, m in enumerate(("audio", "visual")):
            own = [p for blk in self.extra.values() for p in getattr(blk, f"excite_{m}").parameters()]
            self.m_main[i] += relative_grad_norm(ctx.groups.encoder(m))
            self.m_bypass[i] += relative_grad_norm(own + squeeze)
        bdr = [conditional_utilisation(max(self.m_bypass[i], 1e-30), max(self.m_main[i], 1e-30)) for i in range(2)]
        self.d = bdr[0] - bdr[1]

    def before_step(self, ctx):
        if ctx.epoch >= self.cfg.start:
            if not self.curating:
                self._rates(ctx)
                if abs(self.d) > self.cfg.epsilon:
                    self.curating, self.curation_step = True, 0
                    self.caring = 0 if self.d > 0 else 1
                else:
                    self.caring = 0
            else:
                self.curation_step += 1
                if self.curation_step == self.cfg.window:
                    self.curating = False
        else:
            self._rates(ctx)
            self.curating, self.caring = False, 0

    def state_dict(self):
        return {
            **super().state_dict(),
            "m_main": list(self.m_main),
            "m_bypass": list(self.m_bypass),
            "curating": self.curating,
            "caring": self.caring,
            "curation_step": self.curation_step,
            "d": self.d,
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.m_main, self.m_bypass = list(state.get("m_main", self.m_main)), list(state.get("m_bypass", self.m_bypass))
        self.curating, self.caring = bool(state.get("curating", False)), int(state.get("caring", 0))
        self.curation_step, self.d = int(state.get("curation_step", 0)), float(state.get("d", 0.0))
