"""Fusion of audio and visual features ``[T, B, D]`` into class logits ``[T, B, C]``.

Every fusion returns ``(fused, out_a, out_v)``: the fused logits and each modality's part of them, which the
balancing methods (OGM-GE, IEMF's window) read. ``concat``, ``sum``, ``film`` and ``gated`` follow the balancing
literature (for concat: ``out_a = a W_a^T + b/2``, ``out_v = v W_v^T + b/2``, so ``fused = out_a + out_v``; for
film and gated, ``out_m`` is the output layer applied to modality m's features with half its bias, as the
OGM-GE code does).

``msi`` (:class:`SpikingIntegration`) is a population of multisensory spiking neurons built on the normalisation
model of multisensory integration (Ohshiro, Angelaki & DeAngelis 2011): excitatory synapses from both streams,
an expansive nonlinearity and divisive normalisation over the population, then the neuron's threshold. Its
``out_m`` is the population's response to modality m alone, the other stream absent (zero spikes in).
``bn_product`` (:class:`BNProductFusion`) is the earlier layer (batch-normalised currents plus a learned product
term), kept as an ML baseline; it is not a model of multisensory neurons.

The integration layers run the modality-alone responses outside the module hooks, so spike monitors and
operation counters measure the inference pass (the fused response) only; :meth:`SpikingIntegration.responses`
gives all three to a probe. IEMF scales the gradients of all parameters of the fusion module.
"""

from __future__ import annotations

import math

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils import parametrize

from neurons.registry import Registry

from .resnet import make_neuron

#: every fusion: ``FUSIONS.create(name, dim=D, num_classes=C, neuron=..., neuron_args=..., **its options)`` (the
#: non-spiking ones take the model's neuron and do not use it; their signatures name every argument, so an
#: unknown option is an error)
FUSIONS = Registry("fusion")


def _half_bias(head: nn.Linear, x: torch.Tensor) -> torch.Tensor:
    return x @ head.weight.T + head.bias / 2


@FUSIONS.register("concat", description="linear head on [a; v] (the paper's default)")
class ConcatFusion(nn.Module):
    def __init__(self, dim: int, num_classes: int, neuron: str | None = None, neuron_args: dict | None = None) -> None:
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
    def __init__(self, dim: int, num_classes: int, neuron: str | None = None, neuron_args: dict | None = None) -> None:
        super().__init__()
        self.head_a = nn.Linear(dim, num_classes)
        self.head = nn.Linear(dim, num_classes)  # the visual branch

    def forward(self, a, v):
        out_a, out_v = self.head_a(a), self.head(v)
        return out_a + out_v, out_a, out_v


@FUSIONS.register("film", description="audio conditions vision (FiLM), then a linear head")
class FiLMFusion(nn.Module):
    """``fused = head(gamma(a) * v + beta(a))`` (audio conditions vision, as in the balancing literature)."""

    def __init__(self, dim: int, num_classes: int, neuron: str | None = None, neuron_args: dict | None = None) -> None:
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

    def __init__(self, dim: int, num_classes: int, neuron: str | None = None, neuron_args: dict | None = None) -> None:
        super().__init__()
        self.gate = nn.Linear(dim, dim)
        self.proj = nn.Linear(dim, dim)
        self.head = nn.Linear(dim, num_classes)

    def forward(self, a, v):
        fused = self.head(torch.sigmoid(self.gate(a)) * self.proj(v))
        return fused, _half_bias(self.head, a), _half_bias(self.head, v)


class _Excitatory(nn.Module):
    """Weight parametrisation ``w = softplus(beta * theta) / beta >= 0``: excitatory synapses (Dale's principle).

    ``beta`` = fan-in: the weights are ~1/fan-in (the inputs are non-negative rates, so they add up coherently),
    while ``dw/dtheta = sigmoid(beta * theta)`` stays of order 1, so plain SGD moves them as it moves an
    unconstrained linear layer (a ``softplus(theta) / fan-in`` form would learn fan-in^2 times slower)."""

    def __init__(self, beta: float) -> None:
        super().__init__()
        self.beta = float(beta)

    def forward(self, theta: torch.Tensor) -> torch.Tensor:
        return F.softplus(theta, beta=self.beta)

    def right_inverse(self, w: torch.Tensor) -> torch.Tensor:
        if bool((w <= 0).any()):
            raise ValueError("excitatory weights must be > 0")
        return w + torch.log(-torch.expm1(-self.beta * w)) / self.beta  # softplus_beta^-1


def _inverse_softplus(y: float) -> float:
    """``x`` with ``softplus(x) = y`` (``y > 0``)."""
    return y + math.log(-math.expm1(-y))


def _excitatory_linear(dim: int, hidden: int, low: float, high: float) -> nn.Linear:
    """``nn.Linear(dim, hidden)`` without bias whose weights are excitatory, initialised to
    ``softplus(U(low, high)) / dim`` (it stays an ``nn.Linear``, so the operation counters see it)."""
    lin, excitatory = nn.Linear(dim, hidden, bias=False), _Excitatory(dim)
    with torch.no_grad():
        lin.weight.copy_(F.softplus(torch.empty_like(lin.weight).uniform_(low, high)) / dim)
    parametrize.register_parametrization(lin, "weight", excitatory)  # original = right_inverse(weight)
    return lin


class _Population(nn.Module):
    """A population of spiking neurons driven by both streams, read out by a linear head.

    Subclasses define the drives of each stream (``drives``, through the modules, so hooks see them once) and
    the input current from them (``current``; a drive of None is an absent stream).
    """

    head: nn.Linear
    neurons: nn.Module

    def drives(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        raise NotImplementedError

    def current(self, da: torch.Tensor | None, dv: torch.Tensor | None) -> torch.Tensor:
        raise NotImplementedError

    def _spikes(self, current: torch.Tensor, hooked: bool) -> torch.Tensor:
        self.neurons.reset()
        s = self.neurons(current) if hooked else self.neurons.forward(current)  # .forward: no hooks
        self.neurons.reset()
        return s

    def responses(self, a: torch.Tensor, v: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """Spikes ``[T, B, H]`` of the population to both streams, to audio alone and to visual alone.

        "Alone" means the other stream is absent: zero spikes in. Only the first response runs through the
        module hooks (it is the inference pass).
        """
        if a.shape != v.shape or a.dim() != 3:
            raise ValueError(f"a and v must both be [T, B, D], got {tuple(a.shape)} and {tuple(v.shape)}")
        da, dv = self.drives(a, v)
        return (
            self._spikes(self.current(da, dv), True),
            self._spikes(self.current(da, None), False),
            self._spikes(self.current(None, dv), False),
        )

    def forward(self, a, v):
        s, s_a, s_v = self.responses(a, v)
        w, b = self.head.weight, self.head.bias
        return self.head(s), F.linear(s_a, w, b), F.linear(s_v, w, b)


@FUSIONS.register(
    "msi",
    description="multisensory spiking neurons: excitatory synapses, divisive normalisation "
    "(Ohshiro et al. 2011), threshold",
)
class SpikingIntegration(_Population):
    """A population of multisensory spiking neurons on the normalisation model of multisensory integration.

    Per time step t, sample and neuron j of the population (H neurons)::

        E_t,j = sum_d W_a[j, d] a_t,d + sum_d W_v[j, d] v_t,d     W = softplus(D theta) / D >= 0, no bias
        R_t,j = E_t,j^n / (sigma^n + mean_k E_t,k^n)                divisive normalisation over the population
        s_t   = neuron(g * R_t)                                     g = softplus(gamma) >= 0, per neuron
        fused_t = head(s_t)

    - The synapses from the unisensory streams are excitatory (non-negative, Dale's principle) and there is no
      bias: no input, no drive. The streams are the encoders' spike rates, with no normalisation on the way in,
      so stimulus intensity reaches the neurons.
    - ``E^n / (sigma^n + mean_k E_k^n)`` is the normalisation model of Ohshiro, Angelaki & DeAngelis (Nat.
      Neurosci. 14:775, 2011): the weighted sum of the unisensory inputs through an expansive power law
      (``n = 2``), divided by the pooled activity of the population plus a semi-saturation constant ``sigma``
      (one per layer, learnable). Weak inputs fall in the expansive range (the denominator is ~``sigma^n``),
      so a pair drives more than the sum of its parts; strong inputs are divided by the pool they raise, so
      they combine additively or sub-additively: inverse effectiveness, with no free product term.
    - The spiking neuron adds the threshold mechanism: unisensory currents that are each sub-threshold can sum
      above threshold (super-additive), and the firing rate saturates at one spike per step (sub-additive).
    - ``out_a`` / ``out_v``: the population's response to one stream with the other absent (zero spikes in),
      read by the same head: what the layer does with that modality alone.

    Args:
        dim: features per stream (D); num_classes: C.
        hidden: neurons in the population (H; default D).
        exponent: ``n`` of the power law (>= 1; 1 leaves the threshold as the only expansive step).
        sigma: initial semi-saturation constant (> 0), in the units of ``E`` (a mean input rate).
        learn_exponent: ``n = 1 + softplus(.)`` learned, one per layer, from ``exponent``.
        bias: a learned bias current per neuron added to ``E`` (from 0; a negative one makes weak inputs
            sub-threshold for the power law, a positive one drives the neuron without input).
        dominance: learned per-neuron modality weights ``d_a, d_v >= 0`` (from 1) on the two drives, the
            "modality dominance" weights of Ohshiro et al.'s model.
        pool: neurons per normalisation pool (the population in consecutive groups of ``pool``; must divide H;
            None: the whole population).
        neuron, neuron_args: any registered neuron and its arguments (the network's shared ones apply).

    With every option at its default the layer is the one described above.

    Shape: ``a, v [T, B, D]`` (non-negative rates) -> ``[T, B, C]`` each.
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        hidden: int | None = None,
        exponent: float = 2.0,
        sigma: float = 0.1,
        learn_exponent: bool = False,
        bias: bool = False,
        dominance: bool = False,
        pool: int | None = None,
        neuron: str = "lif",
        neuron_args: dict | None = None,
    ) -> None:
        super().__init__()
        hidden = dim if hidden is None else hidden
        if hidden < 1 or dim < 1:
            raise ValueError(f"SpikingIntegration: dim and hidden must be >= 1, got dim={dim}, hidden={hidden}")
        if not exponent >= 1.0:
            raise ValueError(f"SpikingIntegration: exponent must be >= 1, got {exponent}")
        if not sigma > 0.0:
            raise ValueError(f"SpikingIntegration: sigma must be > 0, got {sigma}")
        if pool is not None and (pool < 1 or hidden % pool):
            raise ValueError(f"SpikingIntegration: pool must divide hidden={hidden}, got {pool}")
        self.pool = pool
        self._exponent = float(exponent)
        self.exponent_raw = (
            nn.Parameter(torch.tensor(_inverse_softplus(max(exponent - 1.0, 1e-3)))) if learn_exponent else None
        )
        self.bias = nn.Parameter(torch.zeros(hidden)) if bias else None
        self.dominance_raw = nn.Parameter(torch.full((2, hidden), _inverse_softplus(1.0))) if dominance else None
        self.w_a = _excitatory_linear(dim, hidden, -2.0, 1.0)
        self.w_v = _excitatory_linear(dim, hidden, -2.0, 1.0)
        self.log_sigma = nn.Parameter(torch.tensor(float(sigma)).log())
        self.neurons = make_neuron(neuron, neuron_args)
        # gain: a current of 2 thresholds at R = 1 (the neuron's own threshold where it has one)
        g0 = 2.0 * float(getattr(self.neurons, "v_threshold", 0.5))
        self.gain_raw = nn.Parameter(torch.full((hidden,), _inverse_softplus(g0)))
        self.head = nn.Linear(hidden, num_classes)

    @property
    def sigma(self) -> torch.Tensor:
        return self.log_sigma.exp()

    @property
    def exponent(self) -> float | torch.Tensor:
        """``n``: the fixed float, or ``1 + softplus(.)`` when learned."""
        return self._exponent if self.exponent_raw is None else 1.0 + F.softplus(self.exponent_raw)

    @property
    def gain(self) -> torch.Tensor:
        return F.softplus(self.gain_raw)

    def drives(self, a, v):
        return self.w_a(a), self.w_v(v)

    def current(self, da, dv):
        if self.dominance_raw is not None:
            d = F.softplus(self.dominance_raw)
            da, dv = (None if da is None else d[0] * da), (None if dv is None else d[1] * dv)
        e = da if dv is None else (dv if da is None else da + dv)
        if self.bias is not None:
            e = e + self.bias
        n = self.exponent
        power = e.clamp_min(0.0).pow(n)
        if self.pool is None:
            pooled = power.mean(-1, keepdim=True)
        else:  # each neuron's pool: its group of `pool` consecutive neurons
            groups = power.unflatten(-1, (-1, self.pool))
            pooled = groups.mean(-1, keepdim=True).expand_as(groups).flatten(-2)
        norm = (n * self.log_sigma).exp() + pooled
        return self.gain * power / norm


@FUSIONS.register(
    "bn_product",
    description="batch-normalised currents + learned product term, spiking head "
    "(an ML baseline, not a model of multisensory neurons)",
)
class BNProductFusion(_Population):
    """The earlier ``msi`` layer under an honest name: batch-normalised currents with a learned product term.

    ::

        I_t = BN(W_a a_t) + BN(W_v v_t) + g * BN(W_a a_t) * BN(W_v v_t)      (g learnable, per neuron, init 0)
        s_t = neuron(I_1..t);  fused_t = head(s_t)

    Not a model of multisensory neurons: the weights have no sign, g starts at 0 and has no sign either, the
    product of two normalised currents is positive when both are merely below average, and batch norm removes
    stimulus intensity in training. ``out_m`` is the response with the other stream absent (zero input, which
    batch norm turns into the current ``BN(0)``, not zero: in training mode its bias, in evaluation mode
    ``beta - gamma * mean / std``).
    """

    def __init__(
        self,
        dim: int,
        num_classes: int,
        hidden: int | None = None,
        neuron: str = "lif",
        neuron_args: dict | None = None,
    ) -> None:
        super().__init__()
        hidden = dim if hidden is None else hidden
        if hidden < 1:
            raise ValueError(f"BNProductFusion: hidden must be >= 1, got {hidden}")
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

    @staticmethod
    def _bn_of_zero(bn: nn.BatchNorm1d, like: torch.Tensor) -> torch.Tensor:
        """``BN(0)`` without touching the running statistics (a constant batch normalises to ``beta``)."""
        if bn.training or bn.running_mean is None:
            return bn.bias.expand_as(like)
        zero = bn.running_mean.new_zeros(1, bn.num_features)
        return F.batch_norm(zero, bn.running_mean, bn.running_var, bn.weight, bn.bias, False, 0.0, bn.eps).expand_as(
            like
        )

    def drives(self, a, v):
        return self._bn(self.bn_a, self.w_a(a)), self._bn(self.bn_v, self.w_v(v))

    def current(self, da, dv):
        ia = self._bn_of_zero(self.bn_a, dv) if da is None else da
        iv = self._bn_of_zero(self.bn_v, da) if dv is None else dv
        return ia + iv + self.interaction * ia * iv
