"""NIR export: a model (an `AVNet`, one of its parts, or an `nn.Sequential` of supported layers) as a NIR graph.

Each layer type has a converter in `EXPORTERS` (looked up along the module's class hierarchy, so a subclass
exports like its base until it registers its own); each fusion has one in `FUSION_EXPORTERS`. A converter takes
the `_Builder`, the module, its node name, the names of the nodes whose outputs it sums, and its input shape
(one sample, no batch axis), and returns its output node names and shape. What NIR cannot express raises
`ValueError` naming the module.

The options serve the importers of other tools (see the NIR page of the docs for the measured table):

- `part="audio_net" | "visual_net" | "fusion"`: a sub-graph with one `input` and one `output`. nirtorch's graph
  builders (snnTorch, Norse, Sinabs, Rockpool) take one input node. The fusion part takes the audio features
  followed by the visual features (`[2 * dim]`); chained, the three parts compute the model.
- `outputs="fused"`: only `output.fused` (nirtorch 2.6 loops forever on a graph with several outputs).
- `pool="sum"`: a backbone's global average pool as `SumPool2d` (Norse and Sinabs map no `AvgPool2d`), its
  `1/N` folded into the `Affine` layers that read the features (a backbone part then outputs the sums).
- `integration="exact"` with `dt=1`: time constants in steps under exponential decay, as Sinabs reads them
  (`snn_msi.nir.timing`).
- `Flatten` nodes are always written with negative dimensions (`start_dim=-3, end_dim=-1`): the same axes whether
  an importer reads NIR's dimensions per sample (NIR, Sinabs, us) or hands them to `torch.nn.Flatten` with the
  batch axis in front (snnTorch, Norse).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any, Literal, NamedTuple, get_args

import numpy as np
import torch
from torch import nn

from neurons.base import StatefulModule
from neurons.models import AdaptiveLIF, Izhikevich, Synaptic
from neurons.models.lif import IFFamily
from neurons.peers import PeerNeuron

from ..files import atomic_path
from ..models.avnet import AVNet
from ..models.fusion import BNProductFusion, ConcatFusion, SpikingIntegration, SumFusion
from ..models.resnet import SeqConv, SpikingBasicBlock, SpikingResNet
from .timing import DEFAULT_DT, Integration, check_dt, check_integration, nir_module, tau_to_nir

__all__ = ["EXPORTERS", "FUSION_EXPORTERS", "PARTS", "POOLS", "OUTPUTS", "export", "export_checkpoint", "neuron_to_nir"]

Part = Literal["audio_net", "visual_net", "fusion"]
Pool = Literal["avg", "sum"]
Outputs = Literal["all", "fused"]
PARTS: tuple[str, ...] = get_args(Part)
POOLS: tuple[str, ...] = get_args(Pool)
OUTPUTS: tuple[str, ...] = get_args(Outputs)

#: module type -> converter `(builder, module, name, sources, shape) -> (output names, output shape)`
EXPORTERS: dict[type, Callable[..., tuple[list[str], tuple[int, ...]]]] = {}
#: fusion type -> converter `(builder, fusion, audio _Feed, visual _Feed, dim) -> output names`
FUSION_EXPORTERS: dict[type, Callable[..., list[str]]] = {}


def exports(*types: type, table: dict | None = None):
    """Register the decorated function as the converter of `types` (in `EXPORTERS` unless `table` is given)."""

    def register(fn):
        for t in types:
            (EXPORTERS if table is None else table)[t] = fn
        return fn

    return register


def _converter(table: Mapping[type, Callable], obj) -> Callable | None:
    return next((table[c] for c in type(obj).__mro__ if c in table), None)


def _owner(name: str, m: nn.Module) -> str:
    return f"{name or 'the model'} ({type(m).__name__})"


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


# -- neurons ---------------------------------------------------------------------------------------------------
def _neuron_kind(m: nn.Module, owner: str) -> tuple[str, str, float, float, float, bool]:
    """`(kind, reset, v_threshold, v_reset, tau, decay_input)` of a neuron NIR can express; else `ValueError`."""
    if not isinstance(m, StatefulModule):
        raise ValueError(f"{owner}: not a neuron")
    if getattr(m, "kind", "") == "analogue":
        raise ValueError(f"{owner}: the ReLU control is not a spiking neuron and NIR has no ReLU node")
    if isinstance(m, PeerNeuron):
        raise ValueError(
            f"{owner}: a {m.library} neuron wrapper; build the model with our neuron ('lif', 'if', 'synaptic') to "
            "export it"
        )
    if isinstance(m, AdaptiveLIF):
        raise ValueError(f"{owner}: an adaptive threshold (ALIF) has no NIR node")
    if isinstance(m, Izhikevich):
        raise ValueError(f"{owner}: the Izhikevich model (quadratic membrane, recovery variable) has no NIR node")
    if isinstance(m, IFFamily):
        spec = m.spec()
        if spec is None:
            raise ValueError(f"{owner}: it redefines the IF family's dynamics; NIR has no node for them")
        # ParametricLIF ("mul" leak): its current tau, as the float32 k it runs with
        tau = 1.0 / float(m.k().detach().float()) if spec.leak == "mul" else spec.tau
        kind = "if" if spec.leak == "none" else "lif"
        return kind, spec.reset, spec.v_threshold, spec.v_reset, tau, spec.decay_input
    if type(m) is Synaptic:
        return "synaptic", m.reset_mode, m.v_threshold, m.v_reset, m.tau, False
    raise ValueError(f"{owner}: NIR can express IF, LIF, ParametricLIF and Synaptic neurons, not this one")


def neuron_to_nir(
    m: nn.Module, shape: Sequence[int], dt: float = DEFAULT_DT, name: str = "", integration: str = "euler"
) -> list[tuple[str, Any]]:
    """The NIR node(s) of one of our neuron layers of `shape` (no batch axis) at step `dt` seconds.

    Returns `[("", node)]`, or `[("", membrane node), ("threshold", Threshold)]` for `reset="none"`; the
    first element's name suffix is empty. `integration` is the time convention (`snn_msi.nir.timing`). Raises
    `ValueError` naming the layer for a neuron NIR cannot express.
    """
    nir = nir_module()
    owner = _owner(name, m)
    dt, integration = check_dt(dt), check_integration(integration)
    kind, reset, v_th, v_r, tau, decay_input = _neuron_kind(m, owner)
    if reset == "soft":
        raise ValueError(
            f"{owner}: reset='soft' (subtract the threshold) has no NIR equivalent: NIR's neurons reset to "
            "v_reset; use reset='hard' (or 'none')"
        )
    if kind == "if" and reset == "none" and v_r != 0.0:
        raise ValueError(
            f"{owner}: reset='none' with v_reset={v_r}: NIR's integrator I starts at 0 and has no resting value"
        )
    meta = {
        "snn_msi.neuron": type(m).__name__,
        "surrogate": m.surrogate.name,
        "alpha": float(m.surrogate.alpha),
        "detach_reset": bool(m.detach_reset),
    }
    shape = tuple(int(s) for s in shape)

    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    def time_constant(steps: float) -> np.ndarray:
        try:
            return full(tau_to_nir(steps, dt, integration))
        except ValueError as err:
            raise ValueError(f"{owner}: {err}") from None

    def spiking(node_cls, membrane_cls, **params) -> list[tuple[str, Any]]:
        if reset == "hard":
            return [("", node_cls(v_threshold=full(v_th), v_reset=full(v_r), metadata=meta, **params))]
        return [("", membrane_cls(metadata=meta, **params)), ("threshold", nir.Threshold(threshold=full(v_th)))]

    if kind == "if":
        meta.update(tau_steps=1.0)
        if reset == "hard":
            return [("", nir.IF(r=full(1.0 / dt), v_threshold=full(v_th), v_reset=full(v_r), metadata=meta))]
        return [("", nir.I(r=full(1.0 / dt), metadata=meta)), ("threshold", nir.Threshold(threshold=full(v_th)))]
    if kind == "lif":
        meta.update(tau_steps=float(tau), decay_input=bool(decay_input))
        r = full(1.0 if decay_input else tau)
        return spiking(nir.LIF, nir.LI, tau=time_constant(tau), r=r, v_leak=full(v_r))
    meta.update(tau_steps=float(m.tau), tau_syn_steps=float(m.tau_syn))
    return spiking(
        nir.CubaLIF,
        nir.CubaLI,
        tau_syn=time_constant(m.tau_syn),
        tau_mem=time_constant(m.tau),
        r=full(m.tau),
        v_leak=full(v_r),
        w_in=full(m.tau_syn),
    )


# -- the builder -----------------------------------------------------------------------------------------------
def _fold(weight: torch.Tensor, bias: torch.Tensor | None, bn: nn.Module | None, name: str):
    """`(weight, bias)` as numpy arrays, the batch norm's running statistics folded in (in float64)."""
    if bn is None:
        w = weight.detach().cpu().numpy()
        b = np.zeros(w.shape[0], w.dtype) if bias is None else bias.detach().cpu().numpy()
        return w, b
    if not isinstance(bn, (nn.BatchNorm1d, nn.BatchNorm2d)) or bn.running_mean is None:
        raise ValueError(f"{name} ({type(bn).__name__}): only batch norm with running statistics can be folded")
    w = weight.detach().cpu().double()
    b = torch.zeros(w.shape[0], dtype=torch.float64) if bias is None else bias.detach().cpu().double()
    gamma = torch.ones_like(b) if bn.weight is None else bn.weight.detach().cpu().double()
    beta = torch.zeros_like(b) if bn.bias is None else bn.bias.detach().cpu().double()
    scale = gamma / torch.sqrt(bn.running_var.detach().cpu().double() + bn.eps)
    w = w * scale.view(-1, *([1] * (w.dim() - 1)))
    b = (b - bn.running_mean.detach().cpu().double()) * scale + beta
    return w.numpy(), b.numpy()


class _Feed(NamedTuple):
    """The features of one modality as the fusion and heads read them."""

    sources: list[str]
    scale: float  # what the Affine reading them multiplies them by (1/N after a SumPool2d, else 1)


class _Builder:
    """Collects nodes and edges; a module's input is a list of node names whose outputs NIR sums.

    `pending` holds, per node that outputs a summed global pool (`pool="sum"`), the `1/N` that the `Affine`
    reading it folds into its weights; no other node may read such an output (an `Output` may: its metadata
    says so).
    """

    def __init__(self, dt: float, integration: str = "euler", pool: str = "avg") -> None:
        self.nir = nir_module()
        self.dt, self.integration, self.pool = dt, integration, pool
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []
        self.pending: dict[str, float] = {}

    def add(self, name: str, node, sources: Sequence[str], folds: bool = False) -> list[str]:
        if name in self.nodes:
            raise ValueError(f"two NIR nodes named {name!r}")
        summed = [s for s in sources if s in self.pending]
        if summed and not (folds or isinstance(node, self.nir.Output)):
            raise ValueError(
                f"{name} ({type(node).__name__}): reads the summed global pool of {summed[0]} (pool='sum'); "
                "only an Affine, which takes its 1/N, may follow it: export with pool='avg'"
            )
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return [name]

    def scale_of(self, sources: Sequence[str], name: str) -> float:
        """The common `1/N` still to apply to the sum of `sources` (1 when none is pending)."""
        scales = {self.pending.get(s, 1.0) for s in sources}
        if len(scales) > 1:
            raise ValueError(f"{name}: its inputs are pooled sums of different sizes; export with pool='avg'")
        return scales.pop() if scales else 1.0

    def module(self, m: nn.Module, name: str, src: list[str], shape: tuple[int, ...]):
        """Emit `m` (its input: the sum of `src`'s outputs, of `shape`); returns its output names and shape."""
        convert = _converter(EXPORTERS, m)
        if convert is None:
            raise ValueError(f"{_owner(name, m)}: no NIR node for this layer")
        return convert(self, m, name, src, tuple(shape))

    def conv(self, conv: nn.Conv2d, bn, name: str, src, shape):
        if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros":
            raise ValueError(f"{_owner(name, conv)}: only zero-padded Conv2d layers have a NIR node")
        if len(shape) != 3:
            raise ValueError(f"{_owner(name, conv)}: expects a [C, H, W] input, got shape {tuple(shape)}")
        w, b = _fold(conv.weight, conv.bias, bn, name)
        padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
        node = self.nir.Conv2d(
            input_shape=tuple(shape[1:]),
            weight=w,
            stride=tuple(conv.stride),
            padding=padding,
            dilation=tuple(conv.dilation),
            groups=conv.groups,
            bias=b,
        )
        return self.add(name, node, src), _out_shape(conv, shape)

    def linear(self, lin: nn.Linear, bn, name: str, src, shape):
        """An `Affine` (batch norm folded in, and the `1/N` of a summed pool that feeds it)."""
        if len(shape) != 1:
            raise ValueError(f"{_owner(name, lin)}: NIR's Affine takes a flat input, got shape {tuple(shape)}")
        w, b = _fold(lin.weight, lin.bias, bn, name)
        w = w * self.scale_of(src, name)
        return self.add(name, self.nir.Affine(weight=w, bias=b), src, folds=True), (lin.out_features,)

    def project(
        self, name: str, terms: Sequence[tuple[np.ndarray, np.ndarray]], feeds: Sequence[_Feed], joint: str | None
    ) -> list[str]:
        """`sum_m W_m x_m + b_m` over the modalities: one `Affine` per modality (`name.audio`, `name.visual`),
        or with a `joint` input (the features concatenated) one `Affine` named `name` on it."""
        if joint is not None:
            w = np.hstack([wm * f.scale for (wm, _), f in zip(terms, feeds, strict=True)])
            bias = np.sum([bm for _, bm in terms], axis=0)
            return self.add(name, self.nir.Affine(weight=w, bias=bias), [joint], folds=True)
        out = []
        for modality, (wm, bm), f in zip(("audio", "visual"), terms, feeds, strict=True):
            out += self.add(f"{name}.{modality}", self.nir.Affine(weight=wm * f.scale, bias=bm), f.sources, folds=True)
        return out

    def neuron(self, m: nn.Module, name: str, src, shape):
        out = src
        for suffix, node in neuron_to_nir(m, shape, self.dt, name, self.integration):
            out = self.add(_join(name, suffix) if suffix else name, node, out)
        return out, shape

    def global_mean(self, name: str, src, shape):
        """`x.mean(dim=(-2, -1))` of a `[C, H, W]` map: `AvgPool2d` (or `SumPool2d`, its `1/N` left pending)
        over the whole map, then a `Flatten` with negative dimensions."""
        hw = np.array(shape[1:], dtype=np.int64)
        pool = self.nir.SumPool2d if self.pool == "sum" else self.nir.AvgPool2d
        out = self.add(_join(name, "global_pool"), pool(kernel_size=hw, stride=hw, padding=np.zeros(2, np.int64)), src)
        flat = self.nir.Flatten(input_type={"input": np.array([shape[0], 1, 1])}, start_dim=-3, end_dim=-1)
        out = self.add(_join(name, "flatten"), flat, out)
        if self.pool == "sum":
            self.pending[out[0]] = 1.0 / float(np.prod(hw))
        return out, (shape[0],)

    def fusion(self, f: nn.Module, a: _Feed, v: _Feed, dim: int, joint: str | None = None) -> list[str]:
        convert = _converter(FUSION_EXPORTERS, f)
        if convert is None:
            raise ValueError(
                f"fusion ({type(f).__name__}): its product of two signals (FiLM / gate) has no NIR node; NIR can "
                "express the 'concat' and 'sum' fusions and 'bn_product' with its product term at 0"
            )
        return convert(self, f, a, v, dim, joint)


# -- the layer converters --------------------------------------------------------------------------------------
@exports(StatefulModule)
def _neuron(b: _Builder, m, name, src, shape):
    return b.neuron(m, name or "neuron", src, shape)


@exports(SeqConv)
def _seq_conv(b: _Builder, m: SeqConv, name, src, shape):
    return b.conv(m.conv, m.bn, name, src, shape)


@exports(nn.Conv2d)
def _conv(b: _Builder, m: nn.Conv2d, name, src, shape):
    return b.conv(m, None, name, src, shape)


@exports(nn.Linear)
def _linear(b: _Builder, m: nn.Linear, name, src, shape):
    return b.linear(m, None, name, src, shape)


@exports(nn.Identity)
def _identity(b: _Builder, m, name, src, shape):
    return src, shape


@exports(nn.Sequential)
def _sequential(b: _Builder, m: nn.Sequential, name, src, shape):
    """The children in order; a `Conv2d` / `Linear` followed by a batch norm is one node, the norm folded in."""
    children = list(m.named_children())
    i = 0
    while i < len(children):
        child_name, child = children[i]
        nxt = children[i + 1][1] if i + 1 < len(children) else None
        if isinstance(child, (nn.Conv2d, nn.Linear)) and isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)):
            emit = b.conv if isinstance(child, nn.Conv2d) else b.linear
            src, shape = emit(child, nxt, _join(name, child_name), src, shape)
            i += 2
            continue
        src, shape = b.module(child, _join(name, child_name), src, shape)
        i += 1
    return src, shape


@exports(nn.Flatten)
def _flatten(b: _Builder, m: nn.Flatten, name, src, shape):
    """Written with negative dimensions: the same axes with and without a batch axis in front."""
    rank = len(shape) + 1  # with the batch axis
    start, end = (d - rank if d >= 0 else d for d in (m.start_dim, m.end_dim))
    if start < -len(shape):
        raise ValueError(f"{_owner(name, m)}: flattens the batch axis")
    node = b.nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
    return b.add(name, node, src), _out_shape(m, shape)


@exports(nn.AvgPool2d)
def _avg_pool(b: _Builder, m: nn.AvgPool2d, name, src, shape):
    if m.ceil_mode or m.divisor_override or (not m.count_include_pad and _pair(m.padding) != (0, 0)):
        raise ValueError(
            f"{_owner(name, m)}: ceil_mode, divisor_override and count_include_pad=False have no NIR equivalent"
        )
    stride = m.kernel_size if m.stride is None else m.stride
    node = b.nir.AvgPool2d(
        kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(stride)), padding=np.array(_pair(m.padding))
    )
    return b.add(name, node, src), _out_shape(m, shape)


@exports(nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)
def _max_pool(b: _Builder, m, name, src, shape):
    raise ValueError(
        f"{_owner(name, m)}: NIR has no max pooling (only sum and average pooling); a network trained with "
        "stem 'small' (no max-pool: `snn-msi train ... --set model.stem=small`, as --demo has) exports"
    )


@exports(nn.BatchNorm1d, nn.BatchNorm2d)
def _batch_norm(b: _Builder, m, name, src, shape):
    raise ValueError(
        f"{_owner(name, m)}: batch norm is folded into the Conv2d / Linear just before it; there is none here"
    )


@exports(SpikingBasicBlock)
def _basic_block(b: _Builder, m: SpikingBasicBlock, name, src, shape):
    h, s1 = b.module(m.conv1, _join(name, "conv1"), src, shape)
    h, s1 = b.module(m.sn1, _join(name, "sn1"), h, s1)
    h, s2 = b.module(m.conv2, _join(name, "conv2"), h, s1)
    sc, s3 = b.module(m.shortcut, _join(name, "shortcut"), src, shape)
    if tuple(s2) != tuple(s3):
        raise ValueError(f"{_owner(name, m)}: residual shapes differ: {s2} and {s3}")
    return b.module(m.sn2, _join(name, "sn2"), h + sc, s2)  # two edges into sn2: the residual sum


@exports(SpikingResNet)
def _resnet(b: _Builder, m: SpikingResNet, name, src, shape):
    h, shape = b.module(m.stem_conv, _join(name, "stem_conv"), src, shape)
    h, shape = b.module(m.stem_sn, _join(name, "stem_sn"), h, shape)
    h, shape = b.module(m.pool, _join(name, "pool"), h, shape)
    h, shape = b.module(m.layers, _join(name, "layers"), h, shape)
    return b.global_mean(name, h, shape)


# -- the fusion converters -------------------------------------------------------------------------------------
@exports(ConcatFusion, table=FUSION_EXPORTERS)
def _concat(b: _Builder, f: ConcatFusion, a: _Feed, v: _Feed, dim: int, joint):
    """`out_a + out_v`, each with half the bias, as `ConcatFusion` computes them."""
    w, bias = _fold(f.head.weight, f.head.bias, None, "fusion.head")
    return b.project("fusion.head", [(w[:, :dim], bias / 2), (w[:, dim:], bias / 2)], [a, v], joint)


@exports(SumFusion, table=FUSION_EXPORTERS)
def _sum(b: _Builder, f: SumFusion, a: _Feed, v: _Feed, dim: int, joint):
    terms = [
        _fold(f.head_a.weight, f.head_a.bias, None, "fusion.head_a"),
        _fold(f.head.weight, f.head.bias, None, "fusion.head"),
    ]
    return b.project("fusion.head", terms, [a, v], joint)


@exports(BNProductFusion, table=FUSION_EXPORTERS)
def _bn_product(b: _Builder, f: BNProductFusion, a: _Feed, v: _Feed, dim: int, joint):
    g = f.interaction.detach()
    if bool((g != 0).any()):
        raise ValueError(
            f"fusion ({type(f).__name__}): its product term g * I_a * I_v (max |g| = {g.abs().max().item():.3g}) "
            "has no NIR node (NIR sums inputs, never multiplies them); it is expressible only while g = 0"
        )
    terms = [_fold(f.w_a.weight, None, f.bn_a, "fusion.w_a"), _fold(f.w_v.weight, None, f.bn_v, "fusion.w_v")]
    current = b.project("fusion.w", terms, [a, v], joint)
    s, hidden = b.neuron(f.neurons, "fusion.neurons", current, (f.w_a.out_features,))
    out, _ = b.linear(f.head, None, "fusion.head", s, hidden)
    return out


@exports(SpikingIntegration, table=FUSION_EXPORTERS)
def _integration(b: _Builder, f: SpikingIntegration, a, v, dim, joint):
    raise ValueError(
        f"fusion ({type(f).__name__}): its power law and divisive normalisation over the population "
        "(E^n / (sigma^n + mean E^n)) have no NIR node"
    )


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _out_shape(m: nn.Module, shape) -> tuple[int, ...]:
    p = next(m.parameters(), None)
    x = torch.zeros(1, *shape, dtype=torch.float32 if p is None else p.dtype, device=None if p is None else p.device)
    with torch.no_grad():
        try:
            return tuple(m(x).shape[1:])
        except RuntimeError as err:  # an input shape the layer cannot take
            first = str(err).strip().splitlines()[0]
            raise ValueError(f"an input of shape {tuple(shape)} does not fit {type(m).__name__}: {first}") from None


# -- the graph -------------------------------------------------------------------------------------------------
def _choice(name: str, value, choices: Sequence) -> None:
    if value not in choices:
        raise ValueError(f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}")


def export(
    model: nn.Module,
    input_shape: Sequence[int] | Mapping[str, Sequence[int]],
    dt: float = DEFAULT_DT,
    frames: int = 1,
    metadata: Mapping[str, Any] | None = None,
    *,
    outputs: Outputs = "all",
    part: Part | None = None,
    pool: Pool = "avg",
    integration: Integration = "euler",
):
    """The NIR graph (`nir.NIRGraph`) of `model` at step `dt` seconds.

    Args:
        model: an `AVNet`, or any of its parts or a `nn.Sequential` of supported layers
            (our neurons, `SeqConv`, `nn.Conv2d` / `nn.Linear` with an optional batch norm after them,
            `nn.AvgPool2d`, `nn.Flatten`, `SpikingResNet`, ...).
        input_shape: one sample's input shape without time and batch axes; for an `AVNet` a mapping
            `{"audio": (C, F, frames), "visual": (C, H, W)}` (one video frame).
        dt: the simulation step in seconds (see `snn_msi.nir.timing`).
        frames: video frames per clip (`AVNet` only): the visual backbone is written once per frame.
        metadata: extra graph metadata (flat: numbers and strings).
        outputs: `"all"` (`output.fused`, `output.audio`, `output.visual`) or `"fused"` (`AVNet` only).
        part: `None` (the whole `AVNet`), or one part of it with one `input` and one `output`: `"audio_net"`,
            `"visual_net"` (one frame) or `"fusion"` (input: the audio features, then the visual features).
        pool: the backbones' global average pool as `"avg"` (`AvgPool2d`) or `"sum"` (`SumPool2d`, its `1/N`
            folded into the `Affine` layers after it; a backbone part then outputs the sum over the map).
        integration: the time-constant convention, `"euler"` or `"exact"` (`snn_msi.nir.timing`).

    Nodes are named after the modules (`audio_net.layers.0.sn1`); an `AVNet` graph has the inputs
    `input.audio` and `input.visual` and the outputs `output.fused`, `output.audio` and `output.visual`
    (the logits of every step); a part or any other module has `input` and `output`. Raises `ValueError` naming
    the first layer NIR cannot express.
    """
    nir = nir_module()
    _choice("outputs", outputs, OUTPUTS)
    _choice("part", part, (None, *PARTS))
    _choice("pool", pool, POOLS)
    b = _Builder(check_dt(dt), check_integration(integration), pool)
    meta: dict[str, Any] = {
        "source": "snn-msi",
        "dt": b.dt,
        "integration": integration,
        "pool": pool,
        "threshold": "fires when v >= v_threshold",
    }
    if isinstance(model, AVNet):
        meta.update(_avnet(b, model, input_shape, frames, outputs, part))
    else:
        if part is not None or outputs != "all":
            raise ValueError(f"export({type(model).__name__}): part= and outputs= apply to an AVNet")
        if isinstance(input_shape, Mapping):
            raise ValueError(f"export({type(model).__name__}): input_shape is one shape, e.g. (C, H, W)")
        shape = tuple(int(s) for s in input_shape)
        b.add("input", nir.Input(input_type=np.array(shape)), [])
        out, shape = b.module(model, "", ["input"], shape)
        b.add("output", nir.Output(output_type=np.array(shape)), out)
        meta.update(model=type(model).__name__, output_scale=b.scale_of(out, "output"))
    meta.update(dict(metadata or {}))
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta)


def _avnet(b: _Builder, model: AVNet, input_shape, frames: int, outputs: str, part: str | None) -> dict[str, Any]:
    """Write `model` (or its `part`) into `b`; returns the graph metadata it adds."""
    nir = b.nir
    if not isinstance(input_shape, Mapping) or set(input_shape) != {"audio", "visual"}:
        raise ValueError("export(AVNet): input_shape must be {'audio': (C, F, frames), 'visual': (C, H, W)}")
    if int(frames) < 1:
        raise ValueError(f"frames must be >= 1, got {frames}")
    frames = int(frames)
    shape_a, shape_v = (tuple(int(s) for s in input_shape[k]) for k in ("audio", "visual"))
    cfg = model.config
    meta = dict(model="AVNet", T=int(cfg.T), coding=cfg.coding, fusion=cfg.fusion, neuron=cfg.neuron, frames=frames)
    if part in ("audio_net", "visual_net"):
        shape = shape_a if part == "audio_net" else shape_v
        b.add("input", nir.Input(input_type=np.array(shape)), [])
        out, (dim,) = b.module(getattr(model, part), part, ["input"], shape)
        b.add("output", nir.Output(output_type=np.array([dim])), out)
        meta.update(
            part=part,
            output_scale=b.scale_of(out, "output"),
            readout="output times output_scale is the backbone's features (its mean over the last map)",
        )
        return meta
    if part == "fusion":  # the backbones are written to a scratch builder for their feature sizes and pooling
        scratch = _Builder(b.dt, b.integration, b.pool)
        feeds = []
        for net, shape in ((model.audio_net, shape_a), (model.visual_net, shape_v)):
            scratch.add(f"in.{len(feeds)}", nir.Input(input_type=np.array(shape)), [])
            out, (dim,) = scratch.module(net, f"net{len(feeds)}", [f"in.{len(feeds)}"], shape)
            feeds.append(_Feed(["input"], scratch.scale_of(out, "features")))
        b.add("input", nir.Input(input_type=np.array([2 * dim])), [])
        out = b.fusion(model.fusion, feeds[0], feeds[1], dim, joint="input")
        b.add("output", nir.Output(output_type=np.array([int(cfg.num_classes)])), out)
        meta.update(
            part=part,
            input="the audio features, then the visual features (the backbone parts' outputs)",
            readout="the prediction is the mean over the T steps of the output",
        )
        return meta
    b.add("input.audio", nir.Input(input_type=np.array(shape_a)), [])
    a, (dim,) = b.module(model.audio_net, "audio_net", ["input.audio"], shape_a)
    if frames == 1:
        b.add("input.visual", nir.Input(input_type=np.array(shape_v)), [])
        v, _ = b.module(model.visual_net, "visual_net", ["input.visual"], shape_v)
    else:  # the model averages the features of K frames: K copies of the backbone, their sum times 1/K
        per_frame = []
        for k in range(frames):
            b.add(f"input.visual.{k}", nir.Input(input_type=np.array(shape_v)), [])
            out, _ = b.module(model.visual_net, f"visual_net.frame{k}", [f"input.visual.{k}"], shape_v)
            per_frame += out
        scale = b.scale_of(per_frame, "visual_net.frame_mean") / frames
        v = b.add("visual_net.frame_mean", nir.Scale(scale=np.full(dim, scale)), per_frame, folds=True)
    fused = b.fusion(model.fusion, _Feed(a, b.scale_of(a, "fusion")), _Feed(v, b.scale_of(v, "fusion")), dim)
    c = int(cfg.num_classes)
    b.add("output.fused", nir.Output(output_type=np.array([c])), fused)
    if outputs == "all":
        head_a, _ = b.linear(model.heads.audio, None, "heads.audio", a, (dim,))
        head_v, _ = b.linear(model.heads.visual, None, "heads.visual", v, (dim,))
        b.add("output.audio", nir.Output(output_type=np.array([c])), head_a)
        b.add("output.visual", nir.Output(output_type=np.array([c])), head_v)
    meta.update(outputs=outputs, readout="the prediction is the mean over the T steps of output.fused")
    return meta


def export_checkpoint(
    checkpoint: str | Path,
    out: str | Path,
    dt: float = DEFAULT_DT,
    audio_shape: Sequence[int] | None = None,
    visual_shape: Sequence[int] | None = None,
    frames: int | None = None,
    overwrite: bool = False,
    data_root: str | Path | None = None,
    **options,
):
    """`snn-msi export-nir`: write the NIR graph of a checkpoint to `out` (HDF5, `nir.read` loads it).

    The input shapes default to those of the first test sample of the checkpoint's data set (`data_root`: its
    folder, where the data moved); `options` are `export`'s (`outputs`, `part`, `pool`, `integration`). An
    existing `out` is replaced only with `overwrite`, and never when it is the checkpoint or a file of a run's
    folder. Returns the graph.
    """
    from ..training import load_model
    from ..training.rundir import check_output_file, checkpoint_file

    nir = nir_module()
    check_output_file(out, overwrite, source=checkpoint_file(checkpoint))
    model, cfg = load_model(checkpoint, data_root=data_root)
    if audio_shape is None or visual_shape is None or frames is None:
        from ..data import build_datasets

        sample = build_datasets(cfg.data, cfg.seed)[2][0]
        audio_shape = audio_shape or tuple(sample.audio.shape)
        visual_shape = visual_shape or tuple(sample.frames.shape[1:])
        frames = frames or int(sample.frames.shape[0])
    for name, shape, channels in (
        ("audio", audio_shape, cfg.model.audio_channels),
        ("visual", visual_shape, cfg.model.visual_channels),
    ):
        if channels is not None and (len(shape) != 3 or shape[0] != channels):
            got = f"{len(shape)} number{'s' * (len(shape) != 1)}" if len(shape) != 3 else f"C = {shape[0]}"
            raise ValueError(
                f"--{name}-shape {','.join(map(str, shape))}: the model's {name} input is C,H,W with C = {channels} "
                f"(got {got})"
            )
    graph = export(
        model,
        {"audio": audio_shape, "visual": visual_shape},
        dt=dt,
        frames=frames,
        metadata={"checkpoint": str(checkpoint), "dataset": cfg.data.dataset},
        **options,
    )
    with atomic_path(out) as tmp:  # a full or read-only disk: one line naming the file, no partial file
        nir.write(tmp, graph)
    return graph
