"""NIR export and import: a trained spiking network as a Neuromorphic Intermediate Representation graph, and back.

[NIR](https://neuroir.org) describes a network as a graph of continuous-time nodes (`Conv2d`, `Affine`, `LIF`,
`CubaLIF`, ...) that simulators and neuromorphic chips read. `export` writes the spiking parts of a model (each
backbone, the fusion / integration layer, the unimodal heads) as one graph; `NIRNetwork` runs a graph with this
package's modules (`neurons.LIF` / `IF` / `Synaptic`, `nn.Conv2d`, `nn.Linear`, ...); `snn-msi export-nir
CHECKPOINT OUT.nir` does the first for a checkpoint:

    graph = export(model, {"audio": (1, 40, 32), "visual": (1, 16, 16)})   # an AVNet
    nir.write("model.nir", graph)
    net = NIRNetwork(nir.read("model.nir"))        # our modules again; the same spikes
    out = net(**{"input.audio": a_seq, "input.visual": v_seq})   # [T, B, ...] in; {"output.fused": ...} out

**Time.** Our neurons update once per step; NIR's are ODEs. A graph is written at a step `dt` in seconds
(default `DEFAULT_DT` = 1e-4 s, the step snnTorch's NIR import and export assume; stored in the graph's metadata
as `dt`), with the forward-Euler convention that snnTorch and Norse use, `y <- y + dt * dy/dt`. With `tau`,
`tau_syn` our time constants in steps and `v_r` our `v_reset`:

| ours | NIR node (arrays of the layer's shape) |
|---|---|
| `IF` | `IF(r = 1/dt, v_threshold, v_reset = v_r)` |
| `LIF`, `decay_input=True` | `LIF(tau = tau*dt, r = 1, v_leak = v_r, v_threshold, v_reset = v_r)` |
| `LIF`, `decay_input=False` | `LIF(tau = tau*dt, r = tau, v_leak = v_r, v_threshold, v_reset = v_r)` |
| `ParametricLIF` | as `LIF` with its current `tau = 1/sigmoid(w)` (imported as a `LIF`) |
| `Synaptic` | `CubaLIF(tau_syn = tau_syn*dt, tau_mem = tau*dt, w_in = tau_syn, r = tau, v_leak = v_r, ...)` |
| `reset="none"` | the membrane node `I` / `LI` / `CubaLI`, then a `Threshold` node |
| `SeqConv` (conv + batch norm) | `Conv2d`, the batch norm's running statistics folded in |
| `nn.Linear` (+ `BatchNorm1d`) | `Affine` (batch norm folded in) |
| global average pooling | `AvgPool2d` over the whole map, then `Flatten` |
| residual `a + b` | two edges into one node (NIR sums the inputs of a node) |

Euler on `tau_n dv/dt = (v_leak - v) + r I` gives `v + (dt/tau_n) (v_leak - v + r I)`, which with
`tau_n = tau*dt` is `v + (v_r - v + r I) / tau`: `r = 1` is `decay_input=True`, `r = tau` adds `I` unscaled. In
`CubaLIF` the current is updated first (`I <- (1 - 1/tau_syn) I + x`) and the membrane sees the new current, as in
our `Synaptic` and snnTorch's. A tool that integrates exactly instead of by Euler should read
`tau_n = -dt / ln(1 - 1/tau)`.

**What NIR cannot express raises** `ValueError` naming the module: a soft reset (NIR's neurons reset to
`v_reset`), adaptive or Izhikevich neurons, the ReLU control, the peers' neuron wrappers, max pooling, the `film`,
`gated` and `msi` fusions (products of two signals, divisive normalisation), `bn_product` with a non-zero product
term, an `IF` with `reset="none"` and `v_reset != 0` (`I` has no resting value). On import, a node our modules
cannot run exactly raises the same way (recurrent cycles, nested graphs, `Delay`, a `LIF` whose input gain is
neither 1 nor `1/tau`, per-neuron parameters that differ: our neurons take one value per layer).

**Known differences, by design.** Our neurons fire when `v >= v_threshold`, NIR's text says `v > v_threshold`
(they differ only when a membrane lands exactly on the threshold). The outputs are the logits of every step (the
model's prediction is their mean over T). The input of each step is the coded input (`direct` coding: the same
analogue input at every step). Batch norm is folded in float64 and those weights are stored in float64, so a
float64 run of the imported graph gives the original model's spikes exactly, while a float32 run can differ from
the unfolded model where a membrane is within rounding of the threshold. With K > 1 frames per clip the visual
backbone is written once per frame and a `Scale(1/K)` node averages their features, as the model does.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import neurons
from neurons.base import StatefulModule
from neurons.models import AdaptiveLIF, Izhikevich, Synaptic
from neurons.models.lif import IFFamily
from neurons.peers import PeerNeuron

from .files import atomic_path
from .models.avnet import AVNet
from .models.fusion import BNProductFusion, ConcatFusion, SpikingIntegration, SumFusion
from .models.resnet import SeqConv, SpikingBasicBlock, SpikingResNet

__all__ = ["DEFAULT_DT", "export", "export_checkpoint", "neuron_to_nir", "NIRNetwork", "load"]

#: the default simulation step in seconds (snnTorch's NIR import and export assume 1e-4)
DEFAULT_DT = 1e-4

_TOL = 1e-6  # relative tolerance when recognising a parameter pattern on import
_MEMBRANE_ONLY = ("I", "LI", "CubaLI")


def _nir():
    try:
        import nir
    except ModuleNotFoundError:
        raise ModuleNotFoundError("NIR export/import needs the nir package: pip install 'snn-msi[nir]'") from None
    return nir


# -- export ----------------------------------------------------------------------------------------------------
def _owner(name: str, m: nn.Module) -> str:
    return f"{name or 'the model'} ({type(m).__name__})"


def neuron_to_nir(m: nn.Module, shape: Sequence[int], dt: float = DEFAULT_DT, name: str = "") -> list[tuple[str, Any]]:
    """The NIR node(s) of one of our neuron layers of `shape` (no batch axis) at step `dt`.

    Returns `[("", node)]`, or `[("", membrane node), ("threshold", Threshold)]` for `reset="none"`; the
    first element's name suffix is empty. Raises `ValueError` naming the layer for a neuron NIR cannot express.
    """
    nir = _nir()
    owner = _owner(name, m)
    dt = _check_dt(dt)
    if not isinstance(m, StatefulModule):
        raise ValueError(f"{owner}: not a neuron")
    if getattr(m, "kind", "") == "analogue":
        raise ValueError(f"{owner}: the ReLU control is not a spiking neuron and NIR has no ReLU node")
    if isinstance(m, PeerNeuron):
        raise ValueError(f"{owner}: a {m.library} neuron wrapper; build the model with our neuron ('lif', 'if', "
                         "'synaptic') to export it")  # fmt: skip
    if isinstance(m, AdaptiveLIF):
        raise ValueError(f"{owner}: an adaptive threshold (ALIF) has no NIR node")
    if isinstance(m, Izhikevich):
        raise ValueError(f"{owner}: the Izhikevich model (quadratic membrane, recovery variable) has no NIR node")
    meta = {"snn_msi.neuron": type(m).__name__, "surrogate": m.surrogate.name, "alpha": float(m.surrogate.alpha),
            "detach_reset": bool(m.detach_reset)}  # fmt: skip
    if isinstance(m, IFFamily):
        spec = m.spec()
        if spec is None:
            raise ValueError(f"{owner}: it redefines the IF family's dynamics; NIR has no node for them")
        reset, v_th, v_r = spec.reset, spec.v_threshold, spec.v_reset
        if spec.leak == "mul":  # ParametricLIF: its current tau, as the float32 k it runs with
            tau = 1.0 / float(m.k().detach().float())
        else:
            tau = spec.tau
        kind = "if" if spec.leak == "none" else "lif"
        decay_input = spec.decay_input
    elif type(m) is Synaptic:
        reset, v_th, v_r, tau, kind, decay_input = m.reset_mode, m.v_threshold, m.v_reset, m.tau, "synaptic", False
    else:
        raise ValueError(f"{owner}: NIR can express IF, LIF, ParametricLIF and Synaptic neurons, not this one")
    if reset == "soft":
        raise ValueError(f"{owner}: reset='soft' (subtract the threshold) has no NIR equivalent: NIR's neurons reset "
                         "to v_reset; use reset='hard' (or 'none')")  # fmt: skip
    if kind == "if" and reset == "none" and v_r != 0.0:
        raise ValueError(f"{owner}: reset='none' with v_reset={v_r}: NIR's integrator I starts at 0 and has no "
                         "resting value")  # fmt: skip
    shape = tuple(int(s) for s in shape)

    def full(value: float) -> np.ndarray:
        return np.full(shape, value, dtype=np.float64)

    if kind == "if":
        meta.update(tau_steps=1.0)
        if reset == "hard":
            return [("", nir.IF(r=full(1.0 / dt), v_threshold=full(v_th), v_reset=full(v_r), metadata=meta))]
        return [("", nir.I(r=full(1.0 / dt), metadata=meta)), ("threshold", nir.Threshold(threshold=full(v_th)))]
    if kind == "lif":
        meta.update(tau_steps=float(tau), decay_input=bool(decay_input))
        tau_n, r = full(tau * dt), full(1.0 if decay_input else tau)
        if reset == "hard":
            return [("", nir.LIF(tau=tau_n, r=r, v_leak=full(v_r), v_threshold=full(v_th), v_reset=full(v_r),
                                 metadata=meta))]  # fmt: skip
        return [("", nir.LI(tau=tau_n, r=r, v_leak=full(v_r), metadata=meta)),
                ("threshold", nir.Threshold(threshold=full(v_th)))]  # fmt: skip
    meta.update(tau_steps=float(m.tau), tau_syn_steps=float(m.tau_syn))
    common = dict(tau_syn=full(m.tau_syn * dt), tau_mem=full(m.tau * dt), r=full(m.tau), v_leak=full(v_r),
                  w_in=full(m.tau_syn))  # fmt: skip
    if reset == "hard":
        return [("", nir.CubaLIF(v_threshold=full(v_th), v_reset=full(v_r), metadata=meta, **common))]
    return [("", nir.CubaLI(metadata=meta, **common)), ("threshold", nir.Threshold(threshold=full(v_th)))]


def _check_dt(dt) -> float:
    try:
        dt = float(dt)
    except (TypeError, ValueError):
        raise TypeError(f"dt must be a number of seconds, got {dt!r}") from None
    if not (math.isfinite(dt) and dt > 0):
        raise ValueError(f"dt must be a finite number of seconds > 0, got {dt}")
    return dt


def _join(prefix: str, name: str) -> str:
    return f"{prefix}.{name}" if prefix else name


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


class _Builder:
    """Collects nodes and edges; a module's input is a list of node names whose outputs NIR sums."""

    def __init__(self, dt: float) -> None:
        self.nir = _nir()
        self.dt = dt
        self.nodes: dict[str, Any] = {}
        self.edges: list[tuple[str, str]] = []

    def add(self, name: str, node, sources: Sequence[str]) -> list[str]:
        if name in self.nodes:
            raise ValueError(f"two NIR nodes named {name!r}")
        self.nodes[name] = node
        self.edges += [(s, name) for s in sources]
        return [name]

    # the layers ------------------------------------------------------------------------------------------------
    def conv(self, conv: nn.Conv2d, bn, name: str, src, shape):
        if not isinstance(conv, nn.Conv2d) or conv.padding_mode != "zeros":
            raise ValueError(f"{_owner(name, conv)}: only zero-padded Conv2d layers have a NIR node")
        if len(shape) != 3:
            raise ValueError(f"{_owner(name, conv)}: expects a [C, H, W] input, got shape {tuple(shape)}")
        w, b = _fold(conv.weight, conv.bias, bn, name)
        padding = conv.padding if isinstance(conv.padding, str) else tuple(conv.padding)
        node = self.nir.Conv2d(input_shape=tuple(shape[1:]), weight=w, stride=tuple(conv.stride), padding=padding,
                               dilation=tuple(conv.dilation), groups=conv.groups, bias=b)  # fmt: skip
        return self.add(name, node, src), _out_shape(conv, shape)

    def linear(self, lin: nn.Linear, bn, name: str, src, shape):
        if len(shape) != 1:
            raise ValueError(f"{_owner(name, lin)}: NIR's Affine takes a flat input, got shape {tuple(shape)}")
        w, b = _fold(lin.weight, lin.bias, bn, name)
        return self.add(name, self.nir.Affine(weight=w, bias=b), src), (lin.out_features,)

    def neuron(self, m: nn.Module, name: str, src, shape):
        out = src
        for suffix, node in neuron_to_nir(m, shape, self.dt, name):
            out = self.add(_join(name, suffix) if suffix else name, node, out)
        return out, shape

    def global_mean(self, name: str, src, shape):
        """`x.mean(dim=(-2, -1))` of a `[C, H, W]` map: `AvgPool2d` over the whole map, then `Flatten`."""
        hw = np.array(shape[1:], dtype=np.int64)
        pool = self.nir.AvgPool2d(kernel_size=hw, stride=hw, padding=np.zeros(2, np.int64))
        out = self.add(_join(name, "global_pool"), pool, src)
        flat = self.nir.Flatten(input_type={"input": np.array([shape[0], 1, 1])}, start_dim=0, end_dim=-1)
        return self.add(_join(name, "flatten"), flat, out), (shape[0],)

    def module(self, m: nn.Module, name: str, src: list[str], shape: tuple[int, ...]):
        """Emit `m` (its input: the sum of `src`'s outputs, of `shape`); returns its output names and shape."""
        if isinstance(m, StatefulModule):
            return self.neuron(m, name or "neuron", src, shape)
        if isinstance(m, SeqConv):
            return self.conv(m.conv, m.bn, name, src, shape)
        if isinstance(m, nn.Conv2d):
            return self.conv(m, None, name, src, shape)
        if isinstance(m, nn.Linear):
            return self.linear(m, None, name, src, shape)
        if isinstance(m, nn.Identity):
            return src, shape
        if isinstance(m, nn.Sequential):
            children = list(m.named_children())
            i = 0
            while i < len(children):
                child_name, child = children[i]
                nxt = children[i + 1][1] if i + 1 < len(children) else None
                if isinstance(child, (nn.Conv2d, nn.Linear)) and isinstance(nxt, (nn.BatchNorm1d, nn.BatchNorm2d)):
                    emit = self.conv if isinstance(child, nn.Conv2d) else self.linear
                    src, shape = emit(child, nxt, _join(name, child_name), src, shape)
                    i += 2
                    continue
                src, shape = self.module(child, _join(name, child_name), src, shape)
                i += 1
            return src, shape
        if isinstance(m, nn.Flatten):
            if m.start_dim == 0 or (m.start_dim < 0 and m.start_dim <= -len(shape) - 1):
                raise ValueError(f"{_owner(name, m)}: flattens the batch axis")
            start = m.start_dim - 1 if m.start_dim > 0 else m.start_dim
            end = m.end_dim - 1 if m.end_dim > 0 else m.end_dim
            node = self.nir.Flatten(input_type={"input": np.array(shape)}, start_dim=start, end_dim=end)
            return self.add(name, node, src), _out_shape(m, shape)
        if isinstance(m, nn.AvgPool2d):
            if m.ceil_mode or m.divisor_override or (not m.count_include_pad and _pair(m.padding) != (0, 0)):
                raise ValueError(f"{_owner(name, m)}: ceil_mode, divisor_override and count_include_pad=False have "
                                 "no NIR equivalent")  # fmt: skip
            stride = m.kernel_size if m.stride is None else m.stride
            node = self.nir.AvgPool2d(kernel_size=np.array(_pair(m.kernel_size)), stride=np.array(_pair(stride)),
                                      padding=np.array(_pair(m.padding)))  # fmt: skip
            return self.add(name, node, src), _out_shape(m, shape)
        if isinstance(m, (nn.MaxPool1d, nn.MaxPool2d, nn.MaxPool3d, nn.AdaptiveMaxPool2d)):
            raise ValueError(f"{_owner(name, m)}: NIR has no max pooling (only sum and average pooling); build the "
                             "backbone with stem='small' (no max-pool) to export it")  # fmt: skip
        if isinstance(m, SpikingBasicBlock):
            h, s1 = self.module(m.conv1, _join(name, "conv1"), src, shape)
            h, s1 = self.module(m.sn1, _join(name, "sn1"), h, s1)
            h, s2 = self.module(m.conv2, _join(name, "conv2"), h, s1)
            sc, s3 = self.module(m.shortcut, _join(name, "shortcut"), src, shape)
            if tuple(s2) != tuple(s3):
                raise ValueError(f"{_owner(name, m)}: residual shapes differ: {s2} and {s3}")
            return self.module(m.sn2, _join(name, "sn2"), h + sc, s2)  # two edges into sn2: the residual sum
        if isinstance(m, SpikingResNet):
            h, shape = self.module(m.stem_conv, _join(name, "stem_conv"), src, shape)
            h, shape = self.module(m.stem_sn, _join(name, "stem_sn"), h, shape)
            h, shape = self.module(m.pool, _join(name, "pool"), h, shape)
            h, shape = self.module(m.layers, _join(name, "layers"), h, shape)
            return self.global_mean(name, h, shape)
        if isinstance(m, (nn.BatchNorm1d, nn.BatchNorm2d)):
            raise ValueError(f"{_owner(name, m)}: batch norm is folded into the Conv2d / Linear just before it; "
                             "there is none here")  # fmt: skip
        raise ValueError(f"{_owner(name, m)}: no NIR node for this layer")

    def fusion(self, f: nn.Module, a: list[str], v: list[str], dim: int) -> list[str]:
        nir = self.nir
        if isinstance(f, ConcatFusion):  # out_a + out_v, each with half the bias, as ConcatFusion computes them
            w, b = _fold(f.head.weight, f.head.bias, None, "fusion.head")
            out_a = self.add("fusion.head.audio", nir.Affine(weight=w[:, :dim].copy(), bias=b / 2), a)
            out_v = self.add("fusion.head.visual", nir.Affine(weight=w[:, dim:].copy(), bias=b / 2), v)
            return out_a + out_v
        if isinstance(f, SumFusion):
            out_a, _ = self.linear(f.head_a, None, "fusion.head_a", a, (dim,))
            out_v, _ = self.linear(f.head, None, "fusion.head", v, (dim,))
            return out_a + out_v
        if isinstance(f, BNProductFusion):
            g = f.interaction.detach()
            if bool((g != 0).any()):
                raise ValueError(f"fusion ({type(f).__name__}): its product term g * I_a * I_v (max |g| = "
                                 f"{g.abs().max().item():.3g}) has no NIR node (NIR sums inputs, never multiplies "
                                 "them); it is expressible only while g = 0")  # fmt: skip
            ia, _ = self.linear(f.w_a, f.bn_a, "fusion.w_a", a, (dim,))
            iv, hidden = self.linear(f.w_v, f.bn_v, "fusion.w_v", v, (dim,))
            s, hidden = self.neuron(f.neurons, "fusion.neurons", ia + iv, hidden)
            out, _ = self.linear(f.head, None, "fusion.head", s, hidden)
            return out
        if isinstance(f, SpikingIntegration):
            raise ValueError(f"fusion ({type(f).__name__}): its power law and divisive normalisation over the "
                             "population (E^n / (sigma^n + mean E^n)) have no NIR node")  # fmt: skip
        raise ValueError(f"fusion ({type(f).__name__}): its product of two signals (FiLM / gate) has no NIR node; "
                         "NIR can express the 'concat' and 'sum' fusions and 'bn_product' with its product term at "
                         "0")  # fmt: skip


def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _out_shape(m: nn.Module, shape) -> tuple[int, ...]:
    p = next(m.parameters(), None)
    x = torch.zeros(1, *shape, dtype=torch.float32 if p is None else p.dtype, device=None if p is None else p.device)
    with torch.no_grad():
        return tuple(m(x).shape[1:])


def export(model: nn.Module, input_shape: Sequence[int] | Mapping[str, Sequence[int]], dt: float = DEFAULT_DT,
           frames: int = 1, metadata: Mapping[str, Any] | None = None):  # fmt: skip
    """The NIR graph (`nir.NIRGraph`) of `model` at step `dt` seconds.

    Args:
        model: an `AVNet`, or any of its parts or a `nn.Sequential` of supported layers
            (our neurons, `SeqConv`, `nn.Conv2d` / `nn.Linear` with an optional batch norm after them,
            `nn.AvgPool2d`, `nn.Flatten`, `SpikingResNet`, ...).
        input_shape: one sample's input shape without time and batch axes; for an `AVNet` a mapping
            `{"audio": (C, F, frames), "visual": (C, H, W)}` (one video frame).
        dt: the simulation step in seconds (see the module docstring for the mapping).
        frames: video frames per clip (`AVNet` only): the visual backbone is written once per frame.
        metadata: extra graph metadata (flat: numbers and strings).

    Nodes are named after the modules (`audio_net.layers.0.sn1`); an `AVNet` graph has the inputs
    `input.audio` and `input.visual` and the outputs `output.fused`, `output.audio` and `output.visual`
    (the logits of every step); any other module has `input` and `output`. Raises `ValueError` naming the
    first layer NIR cannot express.
    """
    nir = _nir()
    b = _Builder(_check_dt(dt))
    meta: dict[str, Any] = {"source": "snn-msi", "dt": b.dt, "time_constants": "forward Euler at dt",
                            "threshold": "fires when v >= v_threshold"}  # fmt: skip
    if isinstance(model, AVNet):
        if not isinstance(input_shape, Mapping) or set(input_shape) != {"audio", "visual"}:
            raise ValueError("export(AVNet): input_shape must be {'audio': (C, F, frames), 'visual': (C, H, W)}")
        if int(frames) < 1:
            raise ValueError(f"frames must be >= 1, got {frames}")
        frames = int(frames)
        shape_a, shape_v = (tuple(int(s) for s in input_shape[k]) for k in ("audio", "visual"))
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
            v = b.add("visual_net.frame_mean", nir.Scale(scale=np.full(dim, 1.0 / frames)), per_frame)
        fused = b.fusion(model.fusion, a, v, dim)
        head_a, (c,) = b.linear(model.heads.audio, None, "heads.audio", a, (dim,))
        head_v, _ = b.linear(model.heads.visual, None, "heads.visual", v, (dim,))
        for out, src in (("fused", fused), ("audio", head_a), ("visual", head_v)):
            b.add(f"output.{out}", nir.Output(output_type=np.array([c])), src)
        cfg = model.config
        meta.update(model="AVNet", T=int(cfg.T), coding=cfg.coding, fusion=cfg.fusion, neuron=cfg.neuron,
                    frames=frames, readout="the prediction is the mean over the T steps of output.fused")  # fmt: skip
    else:
        if isinstance(input_shape, Mapping):
            raise ValueError(f"export({type(model).__name__}): input_shape is one shape, e.g. (C, H, W)")
        shape = tuple(int(s) for s in input_shape)
        b.add("input", nir.Input(input_type=np.array(shape)), [])
        out, shape = b.module(model, "", ["input"], shape)
        b.add("output", nir.Output(output_type=np.array(shape)), out)
        meta.update(model=type(model).__name__)
    meta.update(dict(metadata or {}))
    return nir.NIRGraph(nodes=b.nodes, edges=b.edges, metadata=meta)


def export_checkpoint(checkpoint: str | Path, out: str | Path, dt: float = DEFAULT_DT,
                      audio_shape: Sequence[int] | None = None, visual_shape: Sequence[int] | None = None,
                      frames: int | None = None):  # fmt: skip
    """`snn-msi export-nir`: write the NIR graph of a checkpoint to `out` (HDF5, `nir.read` loads it).

    The input shapes default to those of the first test sample of the checkpoint's data set. Returns the graph.
    """
    from .training import load_model

    nir = _nir()
    model, cfg = load_model(checkpoint)
    if audio_shape is None or visual_shape is None or frames is None:
        from .data import build_datasets

        sample = build_datasets(cfg.data, cfg.seed)[2][0]
        audio_shape = audio_shape or tuple(sample.audio.shape)
        visual_shape = visual_shape or tuple(sample.frames.shape[1:])
        frames = frames or int(sample.frames.shape[0])
    graph = export(model, {"audio": audio_shape, "visual": visual_shape}, dt=dt, frames=frames,
                   metadata={"checkpoint": str(checkpoint), "dataset": cfg.data.dataset})  # fmt: skip
    with atomic_path(out) as tmp:  # a full or read-only disk: one line naming the file, no partial file
        nir.write(tmp, graph)
    return graph


# -- import ----------------------------------------------------------------------------------------------------
def _meta(node) -> dict[str, Any]:
    """A node's metadata as plain Python values (after an HDF5 round trip strings are bytes, numbers numpy)."""
    out = {}
    for k, v in (getattr(node, "metadata", None) or {}).items():
        if isinstance(v, bytes):
            v = v.decode()
        elif isinstance(v, np.generic):
            v = v.item()
        out[k] = v
    return out


def _one(node_name: str, field: str, value) -> float:
    """The single value of a per-neuron parameter array (our neurons take one value per layer)."""
    arr = np.asarray(value, dtype=np.float64)
    if arr.size == 0:
        raise ValueError(f"NIR node {node_name!r}: {field} is empty")
    first = float(arr.flat[0])
    if not np.allclose(arr, first, rtol=0, atol=0):
        raise ValueError(f"NIR node {node_name!r}: {field} differs between neurons ({arr.min():.6g} .. "
                         f"{arr.max():.6g}); our neurons take one value per layer")  # fmt: skip
    return first


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOL, abs_tol=0.0)


def _steps(meta: dict, key: str, derived: float) -> float:
    """A time constant in steps: the exact value the exporter stored when it agrees with the NIR parameters."""
    stored = meta.get(key)
    return float(stored) if isinstance(stored, (int, float)) and _close(float(stored), derived) else derived


def _neuron_from_nir(name: str, node, threshold: float | None, dt: float, backend: str) -> nn.Module:
    """Our neuron for a NIR neuron node (or a membrane node plus the `threshold` of the Threshold after it)."""
    kind = type(node).__name__
    meta = _meta(node)
    kw: dict[str, Any] = {"step_mode": "m"}
    for key in ("surrogate", "alpha", "detach_reset"):
        if key in meta:
            kw[key] = meta[key]
    if threshold is None:
        kw.update(v_threshold=_one(name, "v_threshold", node.v_threshold), reset="hard")
    else:
        kw.update(v_threshold=threshold, reset="none")
    if kind in ("IF", "I"):
        gain = _one(name, "r", node.r) * dt
        if not _close(gain, 1.0):
            raise ValueError(f"NIR node {name!r} ({kind}): input gain r*dt = {gain:.6g} (dt = {dt}); our IF adds its "
                             "input unscaled (r = 1/dt)")  # fmt: skip
        kw["v_reset"] = _one(name, "v_reset", node.v_reset) if kind == "IF" else 0.0
        return neurons.IF(backend=backend, **kw)
    if kind in ("LIF", "LI"):
        tau_n = _one(name, "tau", node.tau)
        tau = _steps(meta, "tau_steps", tau_n / dt)
        gain = _one(name, "r", node.r) * dt / tau_n
        v_leak = _one(name, "v_leak", node.v_leak)
        if _close(gain, 1.0 / tau):
            decay_input = True
        elif _close(gain, 1.0):
            decay_input = False
        else:
            raise ValueError(f"NIR node {name!r} ({kind}): input gain r*dt/tau = {gain:.6g} is neither 1/tau "
                             "(decay_input=True) nor 1 (decay_input=False); our LIF has no input gain")  # fmt: skip
        _check_rest(name, kind, node, v_leak)
        return _build(name, neurons.LIF, tau=tau, decay_input=decay_input, v_reset=v_leak, backend=backend, **kw)
    if kind in ("CubaLIF", "CubaLI"):
        tau_m, tau_s = _one(name, "tau_mem", node.tau_mem), _one(name, "tau_syn", node.tau_syn)
        tau, tau_syn = _steps(meta, "tau_steps", tau_m / dt), _steps(meta, "tau_syn_steps", tau_s / dt)
        w_gain = _one(name, "w_in", node.w_in) * dt / tau_s
        r_gain = _one(name, "r", node.r) * dt / tau_m
        if not (_close(w_gain, 1.0) and _close(r_gain, 1.0)):
            raise ValueError(f"NIR node {name!r} ({kind}): input gains w_in*dt/tau_syn = {w_gain:.6g} and "
                             f"r*dt/tau_mem = {r_gain:.6g} must both be 1 for our Synaptic neuron")  # fmt: skip
        v_leak = _one(name, "v_leak", node.v_leak)
        _check_rest(name, kind, node, v_leak)
        return _build(name, Synaptic, tau=tau, tau_syn=tau_syn, v_reset=v_leak, **kw)
    raise ValueError(f"NIR node {name!r} ({kind}): not a neuron")


def _check_rest(name: str, kind: str, node, v_leak: float) -> None:
    """Our neurons rest where they reset: a NIR neuron's `v_reset` must equal its `v_leak`."""
    if kind in ("LIF", "CubaLIF"):
        v_reset = _one(name, "v_reset", node.v_reset)
        if not (v_reset == v_leak or _close(v_reset, v_leak)):
            raise ValueError(f"NIR node {name!r} ({kind}): leaks toward v_leak = {v_leak} but resets to v_reset = "
                             f"{v_reset}; our neurons rest where they reset")  # fmt: skip


def _build(name: str, cls, **kw) -> nn.Module:
    try:
        return cls(**kw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"NIR node {name!r}: {err}") from None


class _Scale(nn.Module):
    def __init__(self, scale: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("scale", scale)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.scale


class _Threshold(nn.Module):
    """NIR's stand-alone `Threshold`: `1[x > threshold]` (no state)."""

    def __init__(self, threshold: torch.Tensor) -> None:
        super().__init__()
        self.register_buffer("threshold", threshold)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return (x > self.threshold).to(x.dtype)


class _Flatten(nn.Module):
    """NIR's `Flatten` (dimensions of one sample) on a batch."""

    def __init__(self, start_dim: int, end_dim: int) -> None:
        super().__init__()
        self.start_dim, self.end_dim = start_dim, end_dim

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        start = self.start_dim + 1 if self.start_dim >= 0 else self.start_dim
        end = self.end_dim + 1 if self.end_dim >= 0 else self.end_dim
        return x.flatten(start, end)


def _tensor(a, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a)).to(dtype)


def _layer_from_nir(name: str, node, dtype) -> nn.Module:
    """Our (stateless) module for a NIR layer node."""
    nir = _nir()
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = np.asarray(node.weight)
        if w.ndim != 2:
            raise ValueError(f"NIR node {name!r} ({type(node).__name__}): weight of shape {w.shape}; only 2-D weights")
        has_bias = isinstance(node, nir.Affine)
        m = nn.Linear(w.shape[1], w.shape[0], bias=has_bias, dtype=dtype)
        with torch.no_grad():
            m.weight.copy_(_tensor(w, dtype))
            if has_bias:
                m.bias.copy_(_tensor(node.bias, dtype))
        return m
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        w = np.asarray(node.weight)
        cls = nn.Conv2d if isinstance(node, nir.Conv2d) else nn.Conv1d
        padding = node.padding if isinstance(node.padding, str) else _ints(node.padding)
        m = cls(w.shape[1] * int(node.groups), w.shape[0], tuple(w.shape[2:]), stride=_ints(node.stride),
                padding=padding, dilation=_ints(node.dilation), groups=int(node.groups), bias=True,
                dtype=dtype)  # fmt: skip
        with torch.no_grad():
            m.weight.copy_(_tensor(w, dtype))
            m.bias.copy_(_tensor(node.bias, dtype))
        return m
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kw = dict(kernel_size=_ints(node.kernel_size), stride=_ints(node.stride), padding=_ints(node.padding))
        return nn.AvgPool2d(**kw) if isinstance(node, nir.AvgPool2d) else nn.AvgPool2d(**kw, divisor_override=1)
    if isinstance(node, nir.Flatten):
        return _Flatten(int(node.start_dim), int(node.end_dim))
    if isinstance(node, nir.Scale):
        return _Scale(_tensor(node.scale, dtype))
    if isinstance(node, nir.Threshold):
        return _Threshold(_tensor(node.threshold, dtype))
    if isinstance(node, nir.Delay):
        raise ValueError(f"NIR node {name!r} (Delay): synaptic delays have no module here")
    if type(node).__name__ in _MEMBRANE_ONLY:
        raise ValueError(f"NIR node {name!r} ({type(node).__name__}): a membrane without a threshold after it; "
                         "only spiking neurons are imported")  # fmt: skip
    raise ValueError(f"NIR node {name!r} ({type(node).__name__}): no module for this node type")


def _ints(v) -> int | tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(v)).astype(np.int64)
    return int(arr[0]) if arr.size == 1 else tuple(int(x) for x in arr)


class NIRNetwork(nn.Module):
    """A NIR graph run by this package's modules: our neurons (multi-step), `nn.Conv2d`, `nn.Linear`, ...

    Args:
        graph: a `nir.NIRGraph` (`nir.read(path)`) or the path of a `.nir` file.
        dt: the step in seconds the graph's time constants are read at; default: the graph's `dt` metadata
            (graphs written by `export` carry it; pass it for others: snnTorch exports at 1e-4 s).
        dtype: parameter dtype (`torch.float64` reproduces a float64 run of the exported model exactly).
        backend: the IF-family neurons' backend (`"auto"`, `"torch"`, `"cpu"`, `"triton"`).

    `net(x)` (one input) or `net(**{input name: x})` takes `[T, B, *shape]` per input and returns
    `[T, B, ...]` (one output) or `{output name: [T, B, ...]}`; every call starts from fresh neuron state.
    `net(..., record=True)` also keeps every node's output in `net.recorded` (`{node name: tensor}`).
    `net.layer(name)` is the module of a node. Nodes are summed where several edges meet.
    """

    def __init__(self, graph, dt: float | None = None, dtype: torch.dtype = torch.float32,
                 backend: str = "auto") -> None:  # fmt: skip
        super().__init__()
        nir = _nir()
        if isinstance(graph, (str, Path)):
            graph = nir.read(graph)
        if not isinstance(graph, nir.NIRGraph):
            raise TypeError(f"NIRNetwork: expected a nir.NIRGraph or a path, got {type(graph).__name__}")
        meta = _meta(graph)
        if dt is None:
            if "dt" not in meta:
                raise ValueError("NIRNetwork: the graph has no 'dt' in its metadata; pass dt=... in seconds (snnTorch "
                                 "exports at 1e-4, Norse at 1e-3)")  # fmt: skip
            dt = meta["dt"]
        self.dt = _check_dt(dt)
        self.metadata = meta
        nodes = dict(graph.nodes)
        for name, node in nodes.items():
            if isinstance(node, nir.NIRGraph):
                raise ValueError(f"NIR node {name!r}: a nested graph (recurrent layers are exported so); only flat "
                                 "feed-forward graphs are imported")  # fmt: skip
        preds: dict[str, list[str]] = {n: [] for n in nodes}
        succs: dict[str, list[str]] = {n: [] for n in nodes}
        for a, b in graph.edges:
            if a not in nodes or b not in nodes:
                raise ValueError(f"NIR edge ({a!r}, {b!r}) names a node the graph does not have")
            preds[b].append(a)
            succs[a].append(b)
        order = _topological(nodes, preds, succs)
        # a membrane node whose one successor is a Threshold (with no other input) is one neuron with reset="none"
        alias: dict[str, str] = {}
        threshold_of: dict[str, float] = {}
        for name in order:
            node = nodes[name]
            if type(node).__name__ in _MEMBRANE_ONLY and len(succs[name]) == 1:
                t = succs[name][0]
                if isinstance(nodes[t], nir.Threshold) and preds[t] == [name]:
                    alias[t] = name
                    threshold_of[name] = _one(t, "threshold", nodes[t].threshold)
        self.input_names = sorted(n for n, node in nodes.items() if isinstance(node, nir.Input))
        self.output_names = sorted(n for n, node in nodes.items() if isinstance(node, nir.Output))
        if not self.input_names or not self.output_names:
            raise ValueError("NIRNetwork: the graph needs Input and Output nodes")
        self.input_shapes = {n: tuple(int(d) for d in np.asarray(nodes[n].input_type["input"]))
                             for n in self.input_names}  # fmt: skip
        self.layers = nn.ModuleDict()
        self._key: dict[str, str] = {}
        self._order = [n for n in order if n not in alias]
        self._sources = {n: [alias.get(p, p) for p in preds[n]] for n in self._order}
        self._stateful: set[str] = set()
        for name in self._order:
            node = nodes[name]
            if isinstance(node, (nir.Input, nir.Output)):
                continue
            if isinstance(node, (nir.IF, nir.LIF, nir.CubaLIF)) or name in threshold_of:
                module = _neuron_from_nir(name, node, threshold_of.get(name), self.dt, backend)
                self._stateful.add(name)
            else:
                module = _layer_from_nir(name, node, dtype)
            key = name.replace(".", "/")
            if key in self.layers:
                raise ValueError(f"NIRNetwork: two node names map to the module key {key!r}")
            self.layers[key] = module
            self._key[name] = key
        for name in self.output_names:
            if not self._sources[name]:
                raise ValueError(f"NIRNetwork: output {name!r} has no incoming edge")
        self.recorded: dict[str, torch.Tensor] = {}

    def layer(self, name: str) -> nn.Module:
        """The module that runs the NIR node `name`."""
        if name not in self._key:
            raise KeyError(f"no module for NIR node {name!r}; nodes: {', '.join(self._key)}")
        return self.layers[self._key[name]]

    def forward(self, *args: torch.Tensor, record: bool = False, **inputs: torch.Tensor):
        if args:
            if inputs or len(args) != len(self.input_names):
                raise TypeError(f"NIRNetwork takes its inputs {self.input_names} by position (all of them) or by name")
            inputs = dict(zip(self.input_names, args, strict=True))
        if set(inputs) != set(self.input_names):
            raise TypeError(f"NIRNetwork expects the inputs {self.input_names}, got {sorted(inputs)}")
        t_b = None
        for name, x in inputs.items():
            if x.dim() < 2 or tuple(x.shape[2:]) != self.input_shapes[name]:
                dims = ", ".join(map(str, self.input_shapes[name]))
                raise ValueError(f"NIRNetwork: input {name!r} must be [T, B, {dims}], got {tuple(x.shape)}")
            if t_b is not None and tuple(x.shape[:2]) != t_b:
                raise ValueError(f"NIRNetwork: inputs disagree on [T, B]: {t_b} and {tuple(x.shape[:2])}")
            t_b = tuple(x.shape[:2])
        neurons.reset(self)
        outs: dict[str, torch.Tensor] = {}
        for name in self._order:
            if name in inputs:
                outs[name] = inputs[name]
                continue
            srcs = self._sources[name]
            x = outs[srcs[0]]
            for s in srcs[1:]:
                x = x + outs[s]
            if name in self._key:
                m = self.layers[self._key[name]]
                if name in self._stateful:
                    x = m(x)
                else:
                    y = m(x.flatten(0, 1))
                    x = y.view(*x.shape[:2], *y.shape[1:])
            outs[name] = x
        neurons.reset(self)
        self.recorded = dict(outs) if record else {}
        if len(self.output_names) == 1:
            return outs[self.output_names[0]]
        return {n: outs[n] for n in self.output_names}

    def extra_repr(self) -> str:
        return f"dt={self.dt}, inputs={self.input_names}, outputs={self.output_names}"


def _topological(nodes: Mapping[str, Any], preds, succs) -> list[str]:
    """Kahn's order (ties in graph order); a cycle raises naming its nodes."""
    pending = {n: len(set(preds[n])) for n in nodes}
    ready = [n for n in nodes if pending[n] == 0]
    order = []
    while ready:
        n = ready.pop(0)
        order.append(n)
        for s in dict.fromkeys(succs[n]):
            pending[s] -= 1
            if pending[s] == 0:
                ready.append(s)
    if len(order) != len(nodes):
        cyclic = [n for n in nodes if pending[n] > 0]
        raise ValueError(f"NIR graph has a recurrent cycle through {', '.join(cyclic[:6])}; only feed-forward graphs "
                         "are imported")  # fmt: skip
    return order


def load(path: str | Path, dt: float | None = None, dtype: torch.dtype = torch.float32) -> NIRNetwork:
    """`NIRNetwork(nir.read(path), dt, dtype)`: a `.nir` file as a runnable module."""
    return NIRNetwork(_nir().read(path), dt=dt, dtype=dtype)
