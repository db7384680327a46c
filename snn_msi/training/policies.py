"""Gradient policies: small objects that act on the loss, the gradients or the learning rates.

A training step calls, for every policy in order (see :class:`Compose`)::

    loss = policy.loss(out, y, losses, epoch)              # add terms (LFM)
    policy.backward(model, losses, loss)                    # at most one policy replaces backward (MMPareto)
    policy.before_step(model, out, y, epoch)                # scale / perturb gradients (IEMF, OGM-GE)
    optimizer.step()
    ...
    policy.on_validation(metrics, optimizer, epoch)         # per epoch, on the validation split (MSLR)

Each keeps ``last`` (what it did in the last step: coefficients, scores) for logging, and ``state_dict()``.
Scores are sums over the batch, computed vectorised; under ``torch.distributed`` they are all-reduced first,
so every rank applies the same coefficient.
"""

from __future__ import annotations

import math

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

__all__ = [
    "GradientPolicy",
    "Normal",
    "IEMF",
    "ConstantScale",
    "OGMGE",
    "MSLR",
    "LFM",
    "MMPareto",
    "Compose",
    "true_class_score",
    "build_policies",
    "METHODS",
]


def true_class_score(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_i softmax(logits)[i, y_i]`` over the batch (all-reduced across ranks when distributed)."""
    s = F.softmax(logits.detach().float(), dim=1).gather(1, y.view(-1, 1)).sum()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(s)
    return s


def _in_window(epoch: int, start: int, end: int | None) -> bool:
    return epoch >= start and (end is None or epoch < end)


class NoiseSource:
    """Seeded Gaussian noise on whatever device the gradients live (one generator per device, resumable)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generators: dict[str, torch.Generator] = {}

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        key = str(like.device)
        if key not in self.generators:
            self.generators[key] = torch.Generator(device=like.device).manual_seed(self.seed)
        return torch.randn(like.shape, generator=self.generators[key], device=like.device, dtype=like.dtype)

    def state_dict(self) -> dict:
        return {k: g.get_state() for k, g in self.generators.items()}

    def load_state_dict(self, state: dict) -> None:
        for key, st in state.items():
            self.generators[key] = torch.Generator(device=key)
            self.generators[key].set_state(st)


def scale_with_noise(params, coeff: float, noise: NoiseSource | None) -> None:
    """``grad <- grad * coeff + N(0, std(grad) + 1e-8)`` in place (std of the unscaled gradient, as in the
    original code); no noise when ``noise`` is None."""
    for p in params:
        if p.grad is None:
            continue
        g = p.grad
        std = (g.std() if g.numel() > 1 else torch.zeros((), device=g.device)) + 1e-8
        g.mul_(coeff)
        if noise is not None:
            g.add_(noise.randn(g) * std)


class GradientPolicy:
    """Base class: does nothing. Subclasses override the hooks they need."""

    name = "normal"

    def __init__(self) -> None:
        self.last: dict[str, float] = {}

    def loss(self, out, y: torch.Tensor, losses: dict[str, torch.Tensor], epoch: int) -> torch.Tensor | None:
        """Extra loss term (added to the total), or None."""
        return None

    def backward(self, model: nn.Module, losses: dict[str, torch.Tensor], total: torch.Tensor) -> bool:
        """Return True if this policy computed the gradients itself."""
        return False

    def before_step(self, model: nn.Module, out, y: torch.Tensor, epoch: int) -> None:
        """Act on ``p.grad`` (unscaled, before clipping and the optimizer step)."""

    def on_validation(self, metrics: dict[str, float], optimizer, epoch: int) -> None:
        """Once per epoch with validation metrics (never the test split)."""

    def state_dict(self) -> dict:
        state = {"last": dict(self.last)}
        if hasattr(self, "noise_source"):  # policies that perturb gradients resume their noise stream
            state["noise"] = self.noise_source.state_dict()
        return state

    def load_state_dict(self, state: dict) -> None:
        self.last = dict(state.get("last", {}))
        if hasattr(self, "noise_source"):
            self.noise_source.load_state_dict(state.get("noise", {}))

    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class Normal(GradientPolicy):
    """Plain training: fused + unimodal losses, no modulation."""


class _FusionScale(GradientPolicy):
    """Scale the fusion layer's gradient by a coefficient (+ Gaussian noise of the gradient's std)."""

    def __init__(self, noise: bool = True, start: int = 0, end: int | None = None, seed: int = 0) -> None:
        super().__init__()
        self.noise, self.start, self.end = noise, start, end
        self.noise_source = NoiseSource(seed)

    def coefficient(self, out, y: torch.Tensor) -> float:
        raise NotImplementedError

    def before_step(self, model, out, y, epoch):
        coeff = self.coefficient(out, y)
        active = _in_window(epoch, self.start, self.end)
        self.last["coeff"], self.last["active"] = coeff, float(active)
        if active:
            scale_with_noise(_unwrap(model).fusion_parameters(), coeff, self.noise_source if self.noise else None)


class IEMF(_FusionScale):
    """Inverse effectiveness driven multimodal fusion.

    ``s_m = sum_i p_m[i, y_i]`` for the audio head, the visual head and the fused output; then
    ``coeff = 1 + tanh(lam * (1 - ((s_a + s_v) / 2) / s_av))`` (``lambda_mode="inside"``, the paper's form) or
    ``coeff = lam * (1 + tanh(1 - ((s_a + s_v) / 2) / s_av))`` (``"outside"``, as the original code did). The
    fusion layer's gradient becomes ``grad * coeff + N(0, std(grad) + 1e-8)`` (noise switchable) for epochs in
    ``[start, end)``. Weak unimodal evidence relative to the fused one -> larger coefficient.
    """

    name = "iemf"

    def __init__(self, lam: float = 1.0, lambda_mode: str = "inside", **kw) -> None:
        super().__init__(**kw)
        if lambda_mode not in ("inside", "outside"):
            raise ValueError(f"lambda_mode must be 'inside' or 'outside', got {lambda_mode!r}")
        self.lam, self.lambda_mode = float(lam), lambda_mode

    def coefficient(self, out, y):
        s_a, s_v, s_av = (true_class_score(z, y) for z in (out.audio, out.visual, out.fused))
        r = float(1.0 - ((s_a + s_v) / 2.0) / s_av.clamp_min(1e-12))
        self.last.update(score_audio=float(s_a), score_visual=float(s_v), score_fused=float(s_av))
        if self.lambda_mode == "inside":
            return 1.0 + math.tanh(self.lam * r)
        return self.lam * (1.0 + math.tanh(r))

    def __repr__(self):
        return f"IEMF(lam={self.lam}, mode={self.lambda_mode}, noise={self.noise}, window=[{self.start}, {self.end}))"


class ConstantScale(_FusionScale):
    """Control for IEMF: a fixed coefficient on the fusion gradient, with the same noise. ``coeff=1`` with
    ``noise=True`` is the noise-alone control."""

    name = "constant"

    def __init__(self, coeff: float = 1.0, **kw) -> None:
        super().__init__(**kw)
        self.coeff = float(coeff)

    def coefficient(self, out, y):
        return self.coeff

    def __repr__(self):
        return f"ConstantScale(coeff={self.coeff}, noise={self.noise})"


class OGMGE(GradientPolicy):
    """On-the-fly gradient modulation with generalisation enhancement (Peng et al., CVPR 2022).

    ``score_m = sum_i softmax(out_m)[i, y_i]`` from each modality's part of the fused logits;
    ``ratio_v = score_v / score_a``, ``ratio_a = 1 / ratio_v``; the dominant modality (ratio > 1) gets
    ``coeff = 1 - tanh(alpha * relu(ratio - 1))``, the other 1. Inside ``[start, end)`` every parameter of each
    encoder (not only the 4-D conv weights the original touched) gets ``grad * coeff + N(0, std(grad) + 1e-8)``.
    """

    name = "ogm_ge"

    def __init__(self, alpha: float = 0.8, start: int = 0, end: int | None = None, noise: bool = True,
                 seed: int = 1) -> None:  # fmt: skip
        super().__init__()
        self.alpha, self.start, self.end, self.noise = alpha, start, end, noise
        self.noise_source = NoiseSource(seed)

    def coefficients(self, out, y) -> tuple[float, float]:
        s_a = true_class_score(out.fused_audio, y)
        s_v = true_class_score(out.fused_visual, y)
        ratio_v = float(s_v / s_a.clamp_min(1e-12))
        ratio_a = 1.0 / max(ratio_v, 1e-12)
        coeff_a = 1.0 - math.tanh(self.alpha * max(ratio_a - 1.0, 0.0))
        coeff_v = 1.0 - math.tanh(self.alpha * max(ratio_v - 1.0, 0.0))
        self.last.update(ogm_score_audio=float(s_a), ogm_score_visual=float(s_v))
        return coeff_a, coeff_v

    def before_step(self, model, out, y, epoch):
        coeff_a, coeff_v = self.coefficients(out, y)
        active = _in_window(epoch, self.start, self.end)
        self.last.update(ogm_coeff_audio=coeff_a, ogm_coeff_visual=coeff_v, ogm_active=float(active))
        if active:
            net, noise = _unwrap(model), self.noise_source if self.noise else None
            scale_with_noise(net.encoder_parameters("audio"), coeff_a, noise)
            scale_with_noise(net.encoder_parameters("visual"), coeff_v, noise)

    def __repr__(self):
        return f"OGMGE(alpha={self.alpha}, window=[{self.start}, {self.end}))"


class MSLR(GradientPolicy):
    """Modality-specific learning rates (Yao & Mihalcea, 2022), driven by the *validation* split.

    After each validation, each encoder's learning rate is the base rate times
    ``clamp(mean(acc_a, acc_v) / acc_m, lo, hi)``: the modality that lags on validation learns faster. (The IEMF
    code computed these ratios on the test set; here they never see it.) Needs the optimizer's parameter groups
    named ``"audio"`` and ``"visual"`` (the trainer builds them).
    """

    name = "mslr"

    def __init__(self, lo: float = 0.5, hi: float = 2.0) -> None:
        super().__init__()
        self.lo, self.hi = lo, hi
        self.scales = {"audio": 1.0, "visual": 1.0}

    def on_validation(self, metrics, optimizer, epoch):
        acc = {m: max(metrics[f"val_acc_{m}"], 1e-3) for m in ("audio", "visual")}
        mean = (acc["audio"] + acc["visual"]) / 2
        for group in optimizer.param_groups:
            m = group.get("name")
            if m in acc:
                new = min(max(mean / acc[m], self.lo), self.hi)
                group["lr"] = group["lr"] / self.scales[m] * new
                self.scales[m] = new
        self.last.update(mslr_scale_audio=self.scales["audio"], mslr_scale_visual=self.scales["visual"])

    def state_dict(self):
        return {**super().state_dict(), "scales": dict(self.scales)}

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.scales = dict(state.get("scales", self.scales))


class LFM(GradientPolicy):
    """Adds ``weight * JS(softmax(audio), softmax(visual))``: a Jensen-Shannon term that aligns the unimodal
    predictions (the original used batch 16 with it)."""

    name = "lfm"

    def __init__(self, weight: float = 1.0) -> None:
        super().__init__()
        self.weight = weight

    def loss(self, out, y, losses, epoch):
        p, q = F.softmax(out.audio, 1), F.softmax(out.visual, 1)
        m = (0.5 * (p + q)).clamp_min(1e-12)
        js = 0.5 * (p * (p.clamp_min(1e-12) / m).log()).sum(1) + 0.5 * (q * (q.clamp_min(1e-12) / m).log()).sum(1)
        js = js.mean()
        self.last["js"] = float(js.detach())
        return self.weight * js


def pareto_combine(g_mm: torch.Tensor, g_uni: torch.Tensor) -> tuple[torch.Tensor, float]:
    """MMPareto's direction for one encoder from the multimodal and the unimodal gradient (flattened).

    No conflict (cosine >= 0): the sum. Conflict: the min-norm convex combination ``w g_mm + (1 - w) g_uni``
    (MGDA for two tasks, which has a non-negative inner product with both), rescaled to the norm of the sum.
    Returns the direction and the weight w on ``g_mm``.
    """
    dot = float(g_mm @ g_uni)
    if dot >= 0:
        return g_mm + g_uni, 0.5
    diff = g_mm - g_uni
    w = float(((g_uni - g_mm) @ g_uni) / diff.pow(2).sum().clamp_min(1e-20))
    w = min(max(w, 0.0), 1.0)
    d = w * g_mm + (1 - w) * g_uni
    return d * ((g_mm + g_uni).norm() / d.norm().clamp_min(1e-20)), w


class MMPareto(GradientPolicy):
    """MMPareto (Wei & Hu, ICML 2024), from the paper: on each shared encoder, combine the gradient of the
    multimodal loss with that of the modality's own unimodal loss by :func:`pareto_combine`; heads and fusion
    get their plain gradients."""

    name = "mmpareto"

    def backward(self, model, losses, total):
        net = _unwrap(model)
        rest = [p for n, p in net.named_parameters() if not n.startswith(("audio_net.", "visual_net."))]
        for m in ("audio", "visual"):
            params = [p for p in net.encoder_parameters(m) if p.requires_grad]
            g_mm = torch.autograd.grad(losses["fused"], params, retain_graph=True, allow_unused=True)
            g_uni = torch.autograd.grad(losses[m], params, retain_graph=True, allow_unused=True)
            flat = [torch.cat([(g if g is not None else torch.zeros_like(p)).flatten() for g, p in zip(gs, params,
                               strict=True)]) for gs in (g_mm, g_uni)]  # fmt: skip
            d, w = pareto_combine(*flat)
            self.last[f"pareto_w_{m}"] = w
            offset = 0
            for p in params:
                n = p.numel()
                p.grad = d[offset : offset + n].view_as(p).clone()
                offset += n
        total.backward(inputs=[p for p in rest if p.requires_grad])  # last: this frees the graph
        return True


class Compose(GradientPolicy):
    """Run several policies in order (e.g. ``[OGMGE(), IEMF()]``, as the paper's tables combine them)."""

    def __init__(self, policies: list[GradientPolicy]) -> None:
        super().__init__()
        if sum(type(p).backward is not GradientPolicy.backward for p in policies) > 1:
            raise ValueError("at most one policy may compute the backward itself")
        self.policies = list(policies)
        self.name = "+".join(p.name for p in policies) or "normal"

    def loss(self, out, y, losses, epoch):
        extra = [t for p in self.policies if (t := p.loss(out, y, losses, epoch)) is not None]
        return sum(extra) if extra else None

    def backward(self, model, losses, total):
        return any(p.backward(model, losses, total) for p in self.policies)

    def before_step(self, model, out, y, epoch):
        for p in self.policies:
            p.before_step(model, out, y, epoch)

    def on_validation(self, metrics, optimizer, epoch):
        for p in self.policies:
            p.on_validation(metrics, optimizer, epoch)

    @property
    def last(self):  # merged view of what every policy did
        merged: dict[str, float] = {}
        for p in getattr(self, "policies", []):
            merged.update(p.last)
        return merged

    @last.setter
    def last(self, value):
        pass

    def state_dict(self):
        return {"policies": [p.state_dict() for p in self.policies]}

    def load_state_dict(self, state):
        saved = state.get("policies", [])
        if len(saved) != len(self.policies):
            raise ValueError(f"checkpoint has {len(saved)} policies, this run has {len(self.policies)}")
        for p, s in zip(self.policies, saved, strict=True):
            p.load_state_dict(s)

    def __repr__(self):
        return f"Compose({self.policies})"


def _unwrap(model: nn.Module) -> nn.Module:
    return model.module if hasattr(model, "module") else model


METHODS = ("normal", "ogm_ge", "mslr", "lfm", "mmpareto", "constant", "noise")


def build_policies(method: str = "normal", iemf: bool = False, **cfg) -> Compose:
    """The policies of a run: a base ``method`` and optionally IEMF on top.

    ``cfg`` keys: ``iemf_lambda``, ``iemf_lambda_mode``, ``iemf_noise``, ``iemf_start``, ``iemf_end``,
    ``ogm_alpha``, ``ogm_start``, ``ogm_end``, ``lfm_weight``, ``constant_coeff``, ``seed``.
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; valid: {', '.join(METHODS)}")
    seed = cfg.get("seed", 0)
    window = dict(start=cfg.get("iemf_start", 0), end=cfg.get("iemf_end"), seed=seed)
    policies: list[GradientPolicy] = []
    if method == "ogm_ge":
        policies.append(OGMGE(cfg.get("ogm_alpha", 0.8), cfg.get("ogm_start", 0), cfg.get("ogm_end"), seed=seed + 1))
    elif method == "mslr":
        policies.append(MSLR())
    elif method == "lfm":
        policies.append(LFM(cfg.get("lfm_weight", 1.0)))
    elif method == "mmpareto":
        policies.append(MMPareto())
    elif method == "constant":
        policies.append(ConstantScale(cfg.get("constant_coeff", 1.0), noise=cfg.get("iemf_noise", True), **window))
    elif method == "noise":
        policies.append(ConstantScale(1.0, noise=True, **window))
    if iemf:
        policies.append(IEMF(cfg.get("iemf_lambda", 1.0), cfg.get("iemf_lambda_mode", "inside"),
                             noise=cfg.get("iemf_noise", True), **window))  # fmt: skip
    return Compose(policies)
