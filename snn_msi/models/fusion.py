"""Fusion of audio and visual features ``[T, B, D]`` into class logits ``[T, B, C]``.

Every fusion returns ``(fused, out_a, out_v)``: the fused logits and each modality's part of them, which the
balancing methods (OGM-GE, IEMF's window) read. ``concat``, ``sum``, ``film`` and ``gated`` follow the balancing
literature (for concat: ``out_a = a W_a^T + b/2``, ``out_v = v W_v^T + b/2``, so ``fused = out_a + out_v``; for
film and gated, ``out_m`` is the output layer applied to modality m's features with half its bias, as the
OGM-GE code does). ``msi`` is the cross-modal spiking integration layer (:class:`SpikingIntegration`).
IEMF scales the gradients of all parameters of the fusion module.
"""

from __future__ import annotations

import torch
from torch import nn

from neurons.registry import Registry

from .resnet import make_neuron

#: every fusion: ``FUSIONS.create(name, dim=D, num_classes=C, neuron=..., neuron_args=...)``
FUSIONS = Registry("fusion")


def _half_bias(head: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ head.weight.T + head.bias / 2


@FUSIONS.register("concat", description="linear head on [a; v] (the paper's default)")
class ConcatFusion(nn.Module):
    def __init__(self, dim: int, num_classes: int, **_neuron) -> None:
        super().__init__()
        self.dim = dim
        self.head = nn.Linear(2 * dim, num_classes)

    def forward(self, a, v):
        w, b = self.head.weight, self.head.bias
        out_a = a @ w[:, : self.dim].T + b / 2
        out_v = v @ w[:, self.dim :].T + b / 2
        return self.head(torch.cat([a, v], dim=-1)), out_a, out_v  # fused == out_a + out_v


@FUSIONS.register("sum", description="a linear head per modality, logits added")
class SumFusion(nn.Module):
    def __init__(self, dim: int, num_classes: int, **_neuron) -> None:
        super().__init__()
        self.head_a = nn.Linear(dim, num_classes)
        self.head = nn.Linear(dim, num_classes)  # the visual branch

    def forward(self, a, v):
        out_a, out_v = self.head_a(a), self.head(v)
        return out_a + out_v, out_a, out_v


@FUSIONS.register("film", description="audio conditions vision (FiLM), then a linear head")
class FiLMFusion(nn.Module):
    """``fused = head(gamma(a) * v + beta(a))`` (audio conditions vision, as in the balancing literature)."""

    def __init__(self, dim: int, num_classes: int, **_neuron) -> None:
        super().__init__()
        self.film = nn.Linear(dim, 2 * dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, a, v):
        gamma, beta = self.film(a).chunk(2, dim=-1)
        fused = self.head(gamma * v + beta)
        return fused, _half_bias(self.head, a), _half_bias(self.head, v)


@FUSIONS.register("gated", description="a sigmoid gate from audio on projected vision, then a linear head")
class GatedFusion(nn.Module):
    """``fused = head(sigmoid(W_g a) * W_v v)``."""

    def __init__(self, dim: int, num_classes: int, **_neuron) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, a, v):
        fused = self.head(torch.sigmoid(self.gate(a)) * self.proj(v))
        return fused, _half_bias(self.head, a), _half_bias(self.head, v)


@FUSIONS.register("msi", description="cross-modal spiking integration: multisensory LIF population, product term")
class SpikingIntegration(nn.Module):
    """Cross-modal spiking integration layer: a population of multisensory spiking neurons.

    Each neuron integrates both streams over time with learnable cross-modal weights and a multiplicative
    (super-additive) interaction, as multisensory neurons of the superior colliculus do::

        I_t = BN(W_a a_t) + BN(W_v v_t) + g * BN(W_a a_t) * BN(W_v v_t)      (g learnable, per neuron, init 0)
        s_t = neuron(I_1..t)                                                 (membrane state over T)
        fused_t = head(s_t)

    ``out_a`` / ``out_v`` are the layer's response to one stream alone (the other's current set to zero,
    fresh membrane state): the unimodal drive of the same population.

    Shape: ``a, v [T, B, D]`` -> ``[T, B, C]`` each.
    """

    def __init__(self, dim: int, num_classes: int, hidden: int | None = None, neuron: str = "lif",
                 neuron_args: dict | None = None) -> None:  # fmt: skip
        super().__init__()
        hidden = hidden or dim
        self.w_a = nn.Linear(dim, hidden, bias=False)
        self.w_v = nn.Linear(dim, hidden, bias=False)
        self.bn_a = nn.BatchNorm1d(hidden)
        self.bn_v = nn.BatchNorm1d(hidden)
        self.interaction = nn.Parameter(torch.zeros(hidden))
        self.neurons = make_neuron(neuron, neuron_args)
        self.head = nn.Linear(hidden, num_classes)

    @staticmethod
    def _bn(bn: nn.BatchNorm1d, x: torch.Tensor) -> torch.Tensor:
        return bn(x.flatten(0, 1)).view_as(x)

    def _respond(self, current: torch.Tensor) -> torch.Tensor:
        self.neurons.reset()
        out = self.head(self.neurons(current))
        self.neurons.reset()
        return out

    def forward(self, a, v):
        ia, iv = self._bn(self.bn_a, self.w_a(a)), self._bn(self.bn_v, self.w_v(v))
        fused = self._respond(ia + iv + self.interaction * ia * iv)
        return fused, self._respond(ia), self._respond(iv)
