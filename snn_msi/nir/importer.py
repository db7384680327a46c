"""NIR import: a NIR graph run by this package's modules (`NIRNetwork`).

Each NIR node type has a converter in `IMPORTERS` (looked up along the node's class hierarchy) that returns our
module for it, or raises `ValueError` naming the node where our modules cannot run it exactly (recurrent
cycles, nested graphs, `Delay`, a `LIF` whose input gain is neither 1 nor `1/tau`, per-neuron parameters that
differ: our neurons take one value per layer). A membrane node (`I`, `LI`, `CubaLI`) followed by a
`Threshold` is one of our neurons with `reset="none"`.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

import neurons
from neurons.base import StatefulModule
from neurons.models import Synaptic

from .timing import check_dt, check_integration, nir_module, step_fraction

__all__ = ["IMPORTERS", "NIRNetwork", "load"]

_TOL = 1e-6  # relative tolerance when recognising a parameter pattern on import
_MEMBRANE_ONLY = ("I", "LI", "CubaLI")


@dataclass(frozen=True)
class _Context:
    """What a converter needs besides the node: its name, the graph's time step and convention, our dtype and
    backend, and for a membrane node the threshold of the `Threshold` node after it."""

    name: str
    dt: float
    integration: str
    dtype: torch.dtype
    backend: str
    threshold: float | None = None


#: NIR node type (its class name, so that this module imports without `nir`) -> converter
#: `(node, _Context) -> nn.Module`; a node type not here is looked up by its base classes' names
IMPORTERS: dict[str, Callable[[Any, _Context], nn.Module]] = {}


def _imports(*type_names: str):
    """Register the decorated function as the converter of the `nir` node types named `type_names`."""

    def register(fn):
        IMPORTERS.update(dict.fromkeys(type_names, fn))
        return fn

    return register


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
        raise ValueError(
            f"NIR node {node_name!r}: {field} differs between neurons ({arr.min():.6g} .. {arr.max():.6g}); our "
            "neurons take one value per layer"
        )
    return first


def _close(a: float, b: float) -> bool:
    return math.isclose(a, b, rel_tol=_TOL, abs_tol=0.0)


def _steps(meta: dict, key: str, derived: float) -> float:
    """A time constant in steps: the exact value the exporter stored when it agrees with the NIR parameters."""
    stored = meta.get(key)
    return float(stored) if isinstance(stored, (int, float)) and _close(float(stored), derived) else derived


def _tensor(a, dtype) -> torch.Tensor:
    return torch.as_tensor(np.asarray(a)).to(dtype)


def _ints(v) -> int | tuple[int, ...]:
    arr = np.atleast_1d(np.asarray(v)).astype(np.int64)
    return int(arr[0]) if arr.size == 1 else tuple(int(x) for x in arr)


# -- neurons ---------------------------------------------------------------------------------------------------
def _neuron_args(node, ctx: _Context) -> dict[str, Any]:
    """The arguments every neuron takes: step mode, surrogate (from our metadata), threshold and reset."""
    meta = _meta(node)
    kw: dict[str, Any] = {"step_mode": "m"}
    kw.update({k: meta[k] for k in ("surrogate", "alpha", "detach_reset") if k in meta})
    if ctx.threshold is None:
        kw.update(v_threshold=_one(ctx.name, "v_threshold", node.v_threshold), reset="hard")
    else:
        kw.update(v_threshold=ctx.threshold, reset="none")
    return kw


def _check_rest(ctx: _Context, node, v_leak: float) -> None:
    """Our neurons rest where they reset: a NIR neuron's `v_reset` must equal its `v_leak`."""
    if hasattr(node, "v_reset"):
        v_reset = _one(ctx.name, "v_reset", node.v_reset)
        if not (v_reset == v_leak or _close(v_reset, v_leak)):
            raise ValueError(
                f"NIR node {ctx.name!r} ({type(node).__name__}): leaks toward v_leak = {v_leak} but resets to "
                f"v_reset = {v_reset}; our neurons rest where they reset"
            )


def _build(name: str, cls, **kw) -> nn.Module:
    try:
        return cls(**kw)
    except (TypeError, ValueError) as err:
        raise ValueError(f"NIR node {name!r}: {err}") from None


@_imports("IF", "I")
def _if(node, ctx: _Context) -> nn.Module:
    kind = type(node).__name__
    gain = _one(ctx.name, "r", node.r) * ctx.dt
    if not _close(gain, 1.0):
        raise ValueError(
            f"NIR node {ctx.name!r} ({kind}): input gain r*dt = {gain:.6g} (dt = {ctx.dt}); our IF adds its input "
            "unscaled (r = 1/dt)"
        )
    v_reset = _one(ctx.name, "v_reset", node.v_reset) if kind == "IF" else 0.0
    return neurons.IF(backend=ctx.backend, v_reset=v_reset, **_neuron_args(node, ctx))


@_imports("LIF", "LI")
def _lif(node, ctx: _Context) -> nn.Module:
    kind, meta = type(node).__name__, _meta(node)
    frac = step_fraction(_one(ctx.name, "tau", node.tau), ctx.dt, ctx.integration)  # 1/tau in steps
    tau = _steps(meta, "tau_steps", 1.0 / frac)
    gain = _one(ctx.name, "r", node.r) * frac
    if _close(gain, 1.0 / tau):
        decay_input = True
    elif _close(gain, 1.0):
        decay_input = False
    else:
        raise ValueError(
            f"NIR node {ctx.name!r} ({kind}): input gain r/tau = {gain:.6g} is neither 1/tau (decay_input=True) nor "
            "1 (decay_input=False); our LIF has no input gain"
        )
    v_leak = _one(ctx.name, "v_leak", node.v_leak)
    _check_rest(ctx, node, v_leak)
    return _build(
        ctx.name,
        neurons.LIF,
        tau=tau,
        decay_input=decay_input,
        v_reset=v_leak,
        backend=ctx.backend,
        **_neuron_args(node, ctx),
    )


@_imports("CubaLIF", "CubaLI")
def _cuba(node, ctx: _Context) -> nn.Module:
    kind, meta = type(node).__name__, _meta(node)
    frac_m = step_fraction(_one(ctx.name, "tau_mem", node.tau_mem), ctx.dt, ctx.integration)
    frac_s = step_fraction(_one(ctx.name, "tau_syn", node.tau_syn), ctx.dt, ctx.integration)
    tau, tau_syn = _steps(meta, "tau_steps", 1.0 / frac_m), _steps(meta, "tau_syn_steps", 1.0 / frac_s)
    w_gain, r_gain = _one(ctx.name, "w_in", node.w_in) * frac_s, _one(ctx.name, "r", node.r) * frac_m
    if not (_close(w_gain, 1.0) and _close(r_gain, 1.0)):
        raise ValueError(
            f"NIR node {ctx.name!r} ({kind}): input gains w_in/tau_syn = {w_gain:.6g} and r/tau_mem = {r_gain:.6g} "
            "must both be 1 for our Synaptic neuron"
        )
    v_leak = _one(ctx.name, "v_leak", node.v_leak)
    _check_rest(ctx, node, v_leak)
    return _build(ctx.name, Synaptic, tau=tau, tau_syn=tau_syn, v_reset=v_leak, **_neuron_args(node, ctx))


# -- layers ----------------------------------------------------------------------------------------------------
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


@_imports("Affine", "Linear")
def _affine(node, ctx: _Context) -> nn.Module:
    w = np.asarray(node.weight)
    if w.ndim != 2:
        raise ValueError(f"NIR node {ctx.name!r} ({type(node).__name__}): weight of shape {w.shape}; only 2-D weights")
    has_bias = getattr(node, "bias", None) is not None
    m = nn.Linear(w.shape[1], w.shape[0], bias=has_bias, dtype=ctx.dtype)
    with torch.no_grad():
        m.weight.copy_(_tensor(w, ctx.dtype))
        if has_bias:
            m.bias.copy_(_tensor(node.bias, ctx.dtype))
    return m


@_imports("Conv1d", "Conv2d")
def _conv(node, ctx: _Context) -> nn.Module:
    w = np.asarray(node.weight)
    cls = nn.Conv2d if type(node).__name__ == "Conv2d" else nn.Conv1d
    padding = node.padding if isinstance(node.padding, str) else _ints(node.padding)
    m = cls(
        w.shape[1] * int(node.groups),
        w.shape[0],
        tuple(w.shape[2:]),
        stride=_ints(node.stride),
        padding=padding,
        dilation=_ints(node.dilation),
        groups=int(node.groups),
        bias=True,
        dtype=ctx.dtype,
    )
    with torch.no_grad():
        m.weight.copy_(_tensor(w, ctx.dtype))
        m.bias.copy_(_tensor(node.bias, ctx.dtype))
    return m


@_imports("AvgPool2d", "SumPool2d")
def _pool(node, ctx: _Context) -> nn.Module:
    kw = dict(kernel_size=_ints(node.kernel_size), stride=_ints(node.stride), padding=_ints(node.padding))
    return nn.AvgPool2d(**kw) if type(node).__name__ == "AvgPool2d" else nn.AvgPool2d(**kw, divisor_override=1)


@_imports("Flatten")
def _flatten(node, ctx: _Context) -> nn.Module:
    return _Flatten(int(node.start_dim), int(node.end_dim))


@_imports("Scale")
def _scale(node, ctx: _Context) -> nn.Module:
    return _Scale(_tensor(node.scale, ctx.dtype))


@_imports("Threshold")
def _threshold(node, ctx: _Context) -> nn.Module:
    return _Threshold(_tensor(node.threshold, ctx.dtype))


@_imports("Delay")
def _delay(node, ctx: _Context) -> nn.Module:
    raise ValueError(f"NIR node {ctx.name!r} (Delay): synaptic delays have no module here")


def _module_of(node, ctx: _Context) -> nn.Module:
    kind = type(node).__name__
    if kind in _MEMBRANE_ONLY and ctx.threshold is None:
        raise ValueError(
            f"NIR node {ctx.name!r} ({kind}): a membrane without a threshold after it; only spiking neurons are "
            "imported"
        )
    convert = next((IMPORTERS[c.__name__] for c in type(node).__mro__ if c.__name__ in IMPORTERS), None)
    if convert is None:
        raise ValueError(f"NIR node {ctx.name!r} ({kind}): no module for this node type")
    return convert(node, ctx)


# -- the network -----------------------------------------------------------------------------------------------
class NIRNetwork(nn.Module):
    """A NIR graph run by this package's modules: our neurons (multi-step), `nn.Conv2d`, `nn.Linear`, ...

    Args:
        graph: a `nir.NIRGraph` (`nir.read(path)`) or the path of a `.nir` file.
        dt: the step in seconds the graph's time constants are read at; default: the graph's `dt` metadata
            (graphs written by `export` carry it; pass it for others: snnTorch exports at 1e-4 s).
        dtype: parameter dtype (`torch.float64` reproduces a float64 run of the exported model exactly).
        backend: the IF-family neurons' backend (`"auto"`, `"torch"`, `"cpu"`, `"triton"`).
        integration: the time-constant convention (`"euler"` or `"exact"`, `snn_msi.nir.timing`); default: the
            graph's `integration` metadata, else `"euler"`.

    `net(x)` (one input) or `net(**{input name: x})` takes `[T, B, *shape]` per input and returns
    `[T, B, ...]` (one output) or `{output name: [T, B, ...]}`; every call starts from fresh neuron state.
    `net(..., record=True)` also keeps every node's output in `net.recorded` (`{node name: tensor}`).
    `net.layer(name)` is the module of a node. Nodes are summed where several edges meet.
    """

    def __init__(
        self,
        graph,
        dt: float | None = None,
        dtype: torch.dtype = torch.float32,
        backend: str = "auto",
        integration: str | None = None,
    ) -> None:
        super().__init__()
        nir = nir_module()
        if isinstance(graph, (str, Path)):
            graph = nir.read(graph)
        if not isinstance(graph, nir.NIRGraph):
            raise TypeError(f"NIRNetwork: expected a nir.NIRGraph or a path, got {type(graph).__name__}")
        meta = _meta(graph)
        if dt is None:
            if "dt" not in meta:
                raise ValueError(
                    "NIRNetwork: the graph has no 'dt' in its metadata; pass dt=... in seconds (snnTorch exports at "
                    "1e-4, Norse at 1e-3)"
                )
            dt = meta["dt"]
        self.dt = check_dt(dt)
        self.integration = check_integration(integration or meta.get("integration", "euler"))
        self.metadata = meta
        nodes = dict(graph.nodes)
        for name, node in nodes.items():
            if isinstance(node, nir.NIRGraph):
                raise ValueError(
                    f"NIR node {name!r}: a nested graph (recurrent layers are exported so); only flat feed-forward "
                    "graphs are imported"
                )
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
            if type(nodes[name]).__name__ in _MEMBRANE_ONLY and len(succs[name]) == 1:
                t = succs[name][0]
                if isinstance(nodes[t], nir.Threshold) and preds[t] == [name]:
                    alias[t] = name
                    threshold_of[name] = _one(t, "threshold", nodes[t].threshold)
        self.input_names = sorted(n for n, node in nodes.items() if isinstance(node, nir.Input))
        self.output_names = sorted(n for n, node in nodes.items() if isinstance(node, nir.Output))
        if not self.input_names or not self.output_names:
            raise ValueError("NIRNetwork: the graph needs Input and Output nodes")
        self.input_shapes = {
            n: tuple(int(d) for d in np.asarray(nodes[n].input_type["input"])) for n in self.input_names
        }
        self.layers = nn.ModuleDict()
        self._key: dict[str, str] = {}
        self._order = [n for n in order if n not in alias]
        self._sources = {n: [alias.get(p, p) for p in preds[n]] for n in self._order}
        self._stateful: set[str] = set()
        for name in self._order:
            node = nodes[name]
            if isinstance(node, (nir.Input, nir.Output)):
                continue
            ctx = _Context(name, self.dt, self.integration, dtype, backend, threshold_of.get(name))
            module = _module_of(node, ctx)
            if isinstance(module, StatefulModule):
                self._stateful.add(name)
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
        return f"dt={self.dt}, integration={self.integration}, inputs={self.input_names}, outputs={self.output_names}"


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
        raise ValueError(
            f"NIR graph has a recurrent cycle through {', '.join(cyclic[:6])}; only feed-forward graphs are imported"
        )
    return order


def load(path: str | Path, dt: float | None = None, dtype: torch.dtype = torch.float32) -> NIRNetwork:
    """`NIRNetwork(nir.read(path), dt, dtype)`: a `.nir` file as a runnable module."""
    return NIRNetwork(nir_module().read(path), dt=dt, dtype=dtype)
