"""Operation counts, memory traffic and energy per inference of a model, per layer and per time step, from one
measured forward pass, priced on two hardware profiles.

What is counted (exactly, from the tensors of the forward pass; ``T`` leading, as the models fold it):

- **Synaptic accumulates (SOPs)**: a layer fed spikes (0/1 input) adds one weight per (input spike, synapse)
  pair, ``SOP = sum over input spikes of their fan-out`` (border of a padded convolution exact, as SpikingJelly's
  ``SynOpCounter``).
- **MACs on analogue inputs**: a layer fed real values (the first layer under direct coding, the head on
  averaged features, every layer of the ReLU twin) does ``dense MACs = outputs x fan-in`` per step. With
  **zero-skipping** (a named option, ``CostModel(zero_skip=True)``) a MAC whose input is exactly zero is skipped,
  as sparse accelerators do with ReLU zeros: ``MAC = sum over non-zero inputs of their fan-out``.
- **Neuron state updates**, per neuron and step (each neuron class's ``step_cost``): the leak as multiply-adds (LIF:
  ``v <- beta v + x``, one; IF: ``v <- v + x``, one add; adaptive LIF three, Synaptic two, Izhikevich five plus
  two adds), one threshold compare, and one reset (an add) per spike. The ReLU twin does one compare per output.
- **Memory traffic**, per layer and step for batch-1 inference: weights read once per step (``weight_bits``),
  inputs read (spikes at ``spike_bits``, analogue values at ``act_bits``), outputs written (``act_bits``); per
  spiking neuron and step its state read and written (``state_bits`` per state variable) and its spike written
  (``spike_bits``). The ReLU twin reads its weights once.

Profile 1, 45 nm CMOS (Horowitz, "Computing's energy problem", ISSCC 2014, 0.9 V): an add costs fp32 0.9,
fp16 0.4, int8 0.03 pJ; a multiply fp32 3.7, fp16 1.1, int8 0.2 pJ; so ``E_MAC`` = 4.6 / 1.5 / 0.23 pJ and
``E_AC`` = 0.9 / 0.4 / 0.03 pJ. A compare costs an add (``E_CMP = E_AC``). A 64-bit read costs 10 pJ from an 8 KB
SRAM, 20 pJ from 32 KB, 100 pJ from 1 MB, 1.3-2.6 nJ from DRAM (:data:`MEMORY_LEVELS`, per byte).

Profile 2, a neuromorphic chip where spikes are events: Intel Loihi (Davies et al., "Loihi: a neuromorphic
manycore processor with on-chip learning", IEEE Micro 38(1), 2018, Table 2; pre-silicon SDF/SPICE figures the
paper calls consistent with early silicon): 23.6 pJ per synaptic spike op (its minimum), 81 pJ per active neuron
update (52 pJ inactive), 1.7 pJ per spike sent within a tile. Every neuron-step is priced as active (these layers
get input at every step); weights and state live in the cores, so no separate memory term. Loihi does no MACs:
layers fed analogue values run on a host at the CMOS profile's ``E_MAC``.

Not counted (the same work in both models): biases and folded BatchNorm shifts (BN is assumed folded into the
layer before it), residual additions, pooling and the mean over time steps. Not counted either, though per neuron
and step rather than per synapse: the ``msi`` layer's normalisation (the power, the pool mean and the division).

Conventions that decide the SNN / twin ratio: a direct-coded first layer (the same analogue input at every step)
is charged as computed, T times its MACs, where a cache of its output would cost it once (on the untrained demo
network the two stems were half of the SNN's compute); the twin runs T = 1. The unimodal heads are counted as
inference work (under 1 % of the demo's compute), though only the fused head is needed to predict.
"""

from __future__ import annotations

import json
import math
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
from torch import nn

import neurons

from ..files import write_csv, write_text
from .monitor import SpikeMonitor

#: pJ per (MAC, accumulate) and bits per word at 45 nm (Horowitz, ISSCC 2014)
PRECISIONS = {"fp32": (4.6, 0.9, 32), "fp16": (1.5, 0.4, 16), "int8": (0.23, 0.03, 8)}
ENERGY_TABLE = {k: v[:2] for k, v in PRECISIONS.items()}
#: pJ per byte of a 64-bit access at 45 nm (Horowitz, ISSCC 2014): 8 KB / 32 KB / 1 MB SRAM, DRAM (low end)
MEMORY_LEVELS = {"sram-8kb": 10 / 8, "sram-32kb": 20 / 8, "sram-1mb": 100 / 8, "dram": 1300 / 8}
E_BYTE_SRAM = MEMORY_LEVELS["sram-8kb"]
HOROWITZ = "Horowitz, ISSCC 2014 (45 nm, 0.9 V)"
LOIHI = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (Loihi, 14 nm; pre-silicon, consistent with early silicon)"


def neuron_cost(module: nn.Module) -> tuple[int, int, int, str]:
    """``(multiply-adds, adds, state variables, name)`` per neuron and step of a neuron module: the
    :class:`~neurons.base.StepCost` its class declares (a peer wrapper: the one of its node), else one
    multiply-add per state variable (the name says so). ``name``: the neuron's class (a peer's own)."""
    inner = next((m for key in ("node", "cell") if isinstance(m := getattr(module, key, None), nn.Module)), module)
    name = type(inner).__name__
    cost = module.__dict__.get("step_cost", type(module).__dict__.get("step_cost"))
    if cost is not None:
        return cost.muladds, cost.adds, cost.state, name
    n = len(getattr(module, "state_names", ())) or 1
    return n, 0, n, f"{name} (assumed: 1 multiply-add per state variable)"


def _check_energy(name: str, value) -> float:
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value) or value < 0:
        raise ValueError(f"{name} must be a finite number >= 0 (pJ), got {value!r}")
    return float(value)


def _check_bits(name: str, value) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"{name} must be an integer >= 1 (bits), got {value!r}")
    return value


@dataclass(frozen=True)
class CostModel:
    """The 45 nm CMOS profile: every constant of the count-to-energy step (None: the ``precision``'s default).

    Args:
        precision: ``fp32``, ``fp16`` or ``int8``: the defaults of ``e_mac``, ``e_ac`` and the bit widths.
        e_mac, e_ac, e_cmp: pJ per multiply-accumulate, accumulate, compare (default: ``e_ac``).
        weight_bits, act_bits, state_bits: bits per weight, analogue activation and membrane state variable.
        spike_bits: bits per spike (1).
        memory: the memory level weights, state and activations come from (:data:`MEMORY_LEVELS`).
        e_byte: pJ per byte moved (default: the level's).
        zero_skip: analogue-fed layers skip MACs on zero inputs (sparse hardware; ReLU zeros).
    """

    precision: str = "fp32"
    e_mac: float | None = None
    e_ac: float | None = None
    e_cmp: float | None = None
    weight_bits: int | None = None
    act_bits: int | None = None
    state_bits: int | None = None
    spike_bits: int = 1
    memory: str = "sram-8kb"
    e_byte: float | None = None
    zero_skip: bool = False

    def __post_init__(self) -> None:
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {sorted(PRECISIONS)}, got {self.precision!r}")
        if self.memory not in MEMORY_LEVELS:
            raise ValueError(f"memory must be one of {sorted(MEMORY_LEVELS)}, got {self.memory!r}")
        if not isinstance(self.zero_skip, bool):
            raise ValueError(f"zero_skip must be true or false, got {self.zero_skip!r}")
        mac, ac, bits = PRECISIONS[self.precision]
        e_ac = _check_energy("e_ac", ac if self.e_ac is None else self.e_ac)
        values = {
            "e_mac": _check_energy("e_mac", mac if self.e_mac is None else self.e_mac),
            "e_ac": e_ac,
            "e_cmp": _check_energy("e_cmp", e_ac if self.e_cmp is None else self.e_cmp),
            "e_byte": _check_energy("e_byte", MEMORY_LEVELS[self.memory] if self.e_byte is None else self.e_byte),
        }
        for key in ("weight_bits", "act_bits", "state_bits", "spike_bits"):
            values[key] = _check_bits(key, bits if getattr(self, key) is None else getattr(self, key))
        for key, value in values.items():
            object.__setattr__(self, key, value)

    def describe(self) -> str:
        return (
            f"45 nm CMOS ({HOROWITZ}), {self.precision}: E_MAC={self.e_mac:g} pJ, E_AC={self.e_ac:g} pJ, "
            f"E_CMP={self.e_cmp:g} pJ; weights {self.weight_bits} b, activations {self.act_bits} b, state "
            f"{self.state_bits} b, spikes {self.spike_bits} b; memory {self.memory} at {self.e_byte:g} pJ/byte; "
            f"zero-skipping {'on' if self.zero_skip else 'off'}"
        )


@dataclass(frozen=True)
class NeuromorphicProfile:
    """A chip where spikes are events: pJ per synaptic event, per neuron update, per spike routed (Loihi's)."""

    name: str = "Loihi"
    e_synop: float = 23.6
    e_neuron: float = 81.0
    e_spike: float = 1.7
    source: str = LOIHI

    def __post_init__(self) -> None:
        for key in ("e_synop", "e_neuron", "e_spike"):
            object.__setattr__(self, key, _check_energy(key, getattr(self, key)))

    def describe(self) -> str:
        return (
            f"{self.name} ({self.source}): {self.e_synop:g} pJ per synaptic event, {self.e_neuron:g} pJ per "
            f"neuron update (every update priced active), {self.e_spike:g} pJ per spike routed; analogue-fed "
            "layers on a host at the CMOS E_MAC"
        )


# -- counting --------------------------------------------------------------------------------------------------
def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


def _steps(x: torch.Tensor, T: int, name: str) -> torch.Tensor:
    """``[T]`` sums of a tensor whose leading dimension is T-major (``[T, B, ...]`` or ``[T * B, ...]``)."""
    if x.dim() == 0 or x.shape[0] % T:
        raise ValueError(
            f"layer {name}: leading dimension {tuple(x.shape)[:1]} is not a multiple of T={T} "
            "(pass the T the model runs, T-major)"
        )
    return x.reshape(T, -1).sum(1, dtype=torch.float64)


@dataclass
class LayerOps:
    """What one conv / linear layer did over the measured forward pass, per time step (``[T]`` tensors)."""

    name: str
    kind: str  # "conv" | "linear"
    params: int
    T: int
    calls: int = 0
    input_spiking: bool = True  # every call was fed 0/1 values
    dense_steps: torch.Tensor = None  # MACs as if every input were analogue
    mac_steps: torch.Tensor = None  # analogue-fed calls: dense MACs
    zero_skip_steps: torch.Tensor = None  # analogue-fed calls: MACs on non-zero inputs only
    sop_steps: torch.Tensor = None  # spike-fed calls: input spikes x fan-out
    spike_in_elems: float = 0.0
    spike_in_ones: float = 0.0
    analog_in_elems: float = 0.0
    output_elems: float = 0.0

    def __post_init__(self) -> None:
        for key in ("dense_steps", "mac_steps", "zero_skip_steps", "sop_steps"):
            setattr(self, key, torch.zeros(self.T, dtype=torch.float64))

    dense_macs = property(lambda self: float(self.dense_steps.sum()))
    macs = property(lambda self: float(self.mac_steps.sum()))
    zero_skip_macs = property(lambda self: float(self.zero_skip_steps.sum()))
    sops = property(lambda self: float(self.sop_steps.sum()))

    @property
    def fr_in(self) -> float:
        """Fraction of ones in the spike inputs (NaN when never fed spikes)."""
        return self.spike_in_ones / self.spike_in_elems if self.spike_in_elems else float("nan")


def _events(m: nn.Module, nonzero: torch.Tensor) -> torch.Tensor:
    """Per output element of ``m``, how many of its inputs are non-zero (``nonzero``: the 0/1 mask, float64)."""
    if isinstance(m, nn.Conv2d):
        return m._conv_forward(nonzero, torch.ones(m.weight.shape, dtype=torch.float64), None)
    return nonzero.sum(-1, keepdim=True).expand(*nonzero.shape[:-1], m.out_features)


class OpCounter:
    """Forward hooks on every ``nn.Conv2d`` / ``nn.Linear`` that count MACs, zero-skipping MACs and SOPs per time
    step, and on every analogue activation (the ReLU twin's) that count its outputs (one compare each).

    Args:
        model: the network.
        T: time steps of one forward pass; every input is T-major (``[T, B, ...]`` or ``[T * B, ...]``).
        detect_spikes: classify a layer input as spikes when it holds only 0 and 1 (False: always analogue).
    """

    def __init__(self, model: nn.Module, T: int = 1, detect_spikes: bool = True) -> None:
        if isinstance(T, bool) or not isinstance(T, int) or T < 1:
            raise ValueError(f"T must be an integer >= 1, got {T!r}")
        self.T, self.detect_spikes = T, detect_spikes
        self.layers: dict[str, LayerOps] = {}
        self.activations: dict[str, torch.Tensor] = {}  # name -> [T] outputs of an analogue activation
        self._handles = []
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                kind = "conv" if isinstance(m, nn.Conv2d) else "linear"
                self.layers[name] = LayerOps(name, kind, sum(p.numel() for p in m.parameters()), T)
                self._handles.append(m.register_forward_hook(self._hook(name)))
            elif isinstance(m, neurons.StatefulModule) and not neurons.is_spiking(m):
                self.activations[name] = torch.zeros(T, dtype=torch.float64)
                self._handles.append(m.register_forward_hook(self._activation_hook(name)))

    def _hook(self, name: str):
        def hook(m, inputs, out):
            x, rec = inputs[0].detach(), self.layers[name]
            spiking = self.detect_spikes and _is_binary(x)
            events = _steps(_events(m, (x != 0).double()), self.T, name)
            fan_in = (
                (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                if rec.kind == "conv"
                else (m.in_features)
            )
            dense = torch.full((self.T,), out.numel() / self.T * fan_in, dtype=torch.float64)
            rec.calls += 1
            rec.dense_steps += dense
            rec.output_elems += out.numel()
            if spiking:
                rec.sop_steps += events
                rec.spike_in_elems += x.numel()
                rec.spike_in_ones += float(x.sum())
            else:
                rec.input_spiking = False
                rec.mac_steps += dense
                rec.zero_skip_steps += events
                rec.analog_in_elems += x.numel()

        return hook

    def _activation_hook(self, name: str):
        def hook(_m, _inputs, out):
            self.activations[name] += out.numel() / self.T

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


@dataclass
class Counts:
    """Everything one measured forward pass of ``samples`` samples did (sums over the batch)."""

    T: int
    samples: int
    layers: dict[str, LayerOps]
    activations: dict[str, torch.Tensor]
    monitor: SpikeMonitor


def count_ops(model: nn.Module, run, T: int, samples: int, detect_spikes: bool = True) -> Counts:
    """Count what ``run()`` (one forward pass of ``model`` over ``samples`` samples, T-major) does, without
    gradients; the model is put in eval mode."""
    if isinstance(samples, bool) or not isinstance(samples, int) or samples < 1:
        raise ValueError(f"samples must be an integer >= 1, got {samples!r}")
    model.eval()
    with torch.no_grad(), OpCounter(model, T, detect_spikes) as ops, SpikeMonitor(model) as mon:
        run()
    return Counts(T, samples, ops.layers, ops.activations, mon)


# -- pricing ---------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class PriceTotals:
    """Per inference, summed over the layers: operation counts, bytes moved and energies (pJ).

    Operations: ``dense_macs`` (every MAC of the layers), ``macs`` (those on analogue inputs), ``zero_skip_macs``
    (of them, on non-zero inputs), ``sops`` (synaptic accumulates), the neurons' ``spikes``, ``updates``,
    ``state_muladds``, ``state_adds``, ``resets`` and ``compares`` (threshold compares plus the ReLU twin's
    ``relu_outputs``). Bytes: ``weight_bytes``, ``act_bytes``, ``state_bytes``, ``spike_bytes`` and their sum
    ``bytes``. Energies at 45 nm: ``synaptic_pj`` + ``neuron_pj`` = ``compute_pj``; ``memory_pj``; ``total_pj``
    (compute + memory). ``mean_firing_rate``: spikes per neuron update. On a neuromorphic chip (None when not
    priced on one): ``chip_synop_pj``, ``chip_neuron_pj``, ``chip_spike_pj``, ``chip_host_mac_pj`` (analogue
    layers on a host) and their sum ``chip_pj``.
    """

    dense_macs: float
    macs: float
    zero_skip_macs: float
    sops: float
    weight_bytes: float
    act_bytes: float
    spikes: float
    updates: float
    state_muladds: float
    state_adds: float
    resets: float
    state_bytes: float
    spike_bytes: float
    compares: float
    relu_outputs: float
    bytes: float
    synaptic_pj: float
    neuron_pj: float
    compute_pj: float
    memory_pj: float
    total_pj: float
    mean_firing_rate: float
    chip_synop_pj: float | None = None
    chip_neuron_pj: float | None = None
    chip_spike_pj: float | None = None
    chip_host_mac_pj: float | None = None
    chip_pj: float | None = None


@dataclass(frozen=True)
class Price:
    """What :func:`price` returns, per inference: ``layers`` (one row per synaptic layer), ``neurons`` (one row
    per neuron layer), the ReLU ``activations`` (outputs per layer), the :class:`PriceTotals` and ``per_step``
    (``macs``, ``zero_skip_macs``, ``sops``, ``spikes`` and ``compute_pj``, one number per time step)."""

    layers: list[dict]
    neurons: list[dict]
    activations: dict[str, float]
    totals: PriceTotals
    per_step: dict[str, list[float]]


def layer_energy(r: LayerOps, e_mac: float, e_ac: float, zero_skip: bool = False) -> float:
    """``E_MAC x MACs + E_AC x SOPs`` of one layer, in pJ (summed over what was measured)."""
    return e_mac * (r.zero_skip_macs if zero_skip else r.macs) + e_ac * r.sops


def price(counts: Counts, cost: CostModel, hw: NeuromorphicProfile | None = None) -> Price:
    """Per inference (divided by ``counts.samples``): rows per layer and per neuron layer, totals of every
    operation kind, bytes and energy on the CMOS profile (and on ``hw`` when given), and per-step totals."""
    b, T = counts.samples, counts.T
    wb, ab, sb, kb = cost.weight_bits / 8, cost.act_bits / 8, cost.state_bits / 8, cost.spike_bits / 8
    layers, step = [], {k: torch.zeros(T, dtype=torch.float64) for k in ("macs", "zero_skip_macs", "sops", "spikes")}
    for r in counts.layers.values():
        if not r.calls:
            continue
        in_bytes = r.spike_in_elems * kb + r.analog_in_elems * ab
        row = {
            "name": r.name,
            "kind": r.kind,
            "params": r.params,
            "calls": r.calls,
            "input": "spikes" if r.input_spiking else "analogue",
            "fr_in": r.fr_in if r.spike_in_elems else None,
            "dense_macs": r.dense_macs / b,
            "macs": r.macs / b,
            "zero_skip_macs": r.zero_skip_macs / b,
            "sops": r.sops / b,
            "weight_bytes": r.params * wb * T * r.calls,
            "act_bytes": (in_bytes + r.output_elems * ab) / b,
        }
        row["compute_pj"] = layer_energy(r, cost.e_mac, cost.e_ac, cost.zero_skip) / b
        row["memory_pj"] = (row["weight_bytes"] + row["act_bytes"]) * cost.e_byte
        row.update(
            macs_steps=(r.mac_steps / b).tolist(),
            zero_skip_macs_steps=(r.zero_skip_steps / b).tolist(),
            sops_steps=(r.sop_steps / b).tolist(),
        )
        step["macs"] += r.mac_steps / b
        step["zero_skip_macs"] += r.zero_skip_steps / b
        step["sops"] += r.sop_steps / b
        layers.append(row)
    mon, neuron_rows = counts.monitor, []
    for name, recs in mon.records.items():
        if not recs:
            continue
        muladds, adds, state_vars, kind = neuron_cost(mon.modules[name])
        updates = mon.neuron_steps(name) / b
        spikes_steps = mon.spikes_per_step(name).double() / b
        if spikes_steps.numel() != T:
            raise ValueError(f"neuron layer {name} ran {spikes_steps.numel()} steps per call, not T={T}")
        spikes = float(spikes_steps.sum())
        row = {
            "name": name,
            "neuron": kind,
            "neurons": updates / T,
            "rate": spikes / updates if updates else 0.0,
            "spikes": spikes,
            "updates": updates,
            "state_muladds": muladds * updates,
            "state_adds": adds * updates,
            "compares": updates,
            "resets": spikes,
            "state_bytes": 2 * state_vars * sb * updates,
            "spike_bytes": kb * updates,
            "spikes_steps": spikes_steps.tolist(),
        }
        row["compute_pj"] = (
            cost.e_mac * row["state_muladds"] + cost.e_ac * (row["state_adds"] + spikes) + cost.e_cmp * updates
        )
        row["memory_pj"] = (row["state_bytes"] + row["spike_bytes"]) * cost.e_byte
        step["spikes"] += spikes_steps
        neuron_rows.append(row)
    relu = {k: float(v.sum()) / b for k, v in counts.activations.items() if float(v.sum())}
    relu_compares = sum(relu.values())
    t = {
        key: sum(r[key] for r in layers)
        for key in ("dense_macs", "macs", "zero_skip_macs", "sops", "weight_bytes", "act_bytes")
    }
    t.update(
        {
            key: sum(r[key] for r in neuron_rows)
            for key in ("spikes", "updates", "state_muladds", "state_adds", "resets", "state_bytes", "spike_bytes")
        }
    )
    t["compares"] = sum(r["compares"] for r in neuron_rows) + relu_compares
    t["relu_outputs"] = relu_compares
    t["bytes"] = t["weight_bytes"] + t["act_bytes"] + t["state_bytes"] + t["spike_bytes"]
    mac_used = t["zero_skip_macs"] if cost.zero_skip else t["macs"]
    t["synaptic_pj"] = cost.e_mac * mac_used + cost.e_ac * t["sops"]
    t["neuron_pj"] = (
        cost.e_mac * t["state_muladds"] + cost.e_ac * (t["state_adds"] + t["resets"]) + (cost.e_cmp * t["compares"])
    )
    t["compute_pj"] = t["synaptic_pj"] + t["neuron_pj"]
    t["memory_pj"] = t["bytes"] * cost.e_byte
    t["total_pj"] = t["compute_pj"] + t["memory_pj"]
    t["mean_firing_rate"] = t["spikes"] / t["updates"] if t["updates"] else 0.0
    if hw is not None:
        t["chip_synop_pj"] = hw.e_synop * t["sops"]
        t["chip_neuron_pj"] = hw.e_neuron * t["updates"]
        t["chip_spike_pj"] = hw.e_spike * t["spikes"]
        t["chip_host_mac_pj"] = cost.e_mac * mac_used
        t["chip_pj"] = t["chip_synop_pj"] + t["chip_neuron_pj"] + t["chip_spike_pj"] + t["chip_host_mac_pj"]
    per_step = {k: v.tolist() for k, v in step.items()}
    mac_steps = step["zero_skip_macs"] if cost.zero_skip else step["macs"]
    neuron_step_pj = (t["neuron_pj"] - cost.e_ac * t["resets"]) / T  # the same every step, resets follow spikes
    per_step["compute_pj"] = (
        cost.e_mac * mac_steps + cost.e_ac * (step["sops"] + step["spikes"]) + neuron_step_pj
    ).tolist()
    return Price(layers, neuron_rows, relu, PriceTotals(**t), per_step)


def relu_config(config):
    """A model config's ReLU twin: ``neuron="relu"``, the shared neuron arguments kept (the ReLU ignores them),
    a spiking neuron's own ones (``tau``, ...) dropped."""
    args = {k: v for k, v in config.neuron_args.items() if k in neurons.SHARED_ARGS}
    return config.replace(neuron="relu", neuron_args=args)


def relu_twin(config, state_dict: dict | None = None) -> nn.Module:
    """The ANN twin of a model config: the same architecture with ReLU, one time step under direct coding (its
    T steps would repeat the same pass), with ``state_dict`` loaded when given (a trained twin)."""
    from ..models import build

    twin = build(relu_config(config).replace(T=1 if config.coding == "direct" else config.T))
    if state_dict is not None:
        twin.load_state_dict(state_dict)
    return twin.eval()


# -- the report ------------------------------------------------------------------------------------------------
@dataclass
class EnergyReport:
    """An SNN and its ReLU twin, counted on the same inputs and priced on both profiles (per inference)."""

    cost: dict
    neuromorphic: dict
    samples: int
    T: int
    snn: Price
    ann: Price
    firing_rates: dict[str, float] = field(default_factory=dict)
    firing_rates_per_step: dict[str, list[float]] = field(default_factory=dict)
    histograms: dict[str, dict] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)
    ann_trained: bool = False
    ann_source: str = "untrained twin built from the checkpoint's config"
    accuracy: dict[str, float | None] = field(default_factory=lambda: {"snn": None, "ann": None})
    accuracy_split: str = "test"
    notes: list[str] = field(default_factory=list)

    def assumptions(self) -> list[str]:
        c, hw = CostModel(**self.cost), NeuromorphicProfile(**self.neuromorphic)
        return [
            c.describe(),
            hw.describe(),
            f"per inference: {self.samples} test samples measured, T={self.T}; batch-1 inference (weights read "
            "once per time step); BN folded; biases, residual adds, pooling, the mean over T and the msi layer's "
            "normalisation not counted; a direct-coded first layer charged T times (as computed; cached, once); "
            "the unimodal heads counted",
            f"neuron updates per neuron and step: {self._neuron_kinds()}; plus one threshold compare, and one reset "
            "add per spike (state read and written each step); the ReLU twin: one compare per output",
            *self.notes,
        ]

    def _neuron_kinds(self) -> str:
        kinds = {
            (r["neuron"], r["state_muladds"] / r["updates"], r["state_adds"] / r["updates"])
            for r in self.snn.neurons
            if r["updates"]
        }
        return "; ".join(f"{n}: {m:g} multiply-adds, {a:g} adds" for n, m, a in sorted(kinds)) or "none"

    def _per_step(self) -> str:
        p = self.snn.per_step
        return "; ".join(
            f"t{i}: {sop:.3g} SOPs, {sp:.3g} spikes, {pj:.3g} pJ"
            for i, (sop, sp, pj) in enumerate(zip(p["sops"], p["spikes"], p["compute_pj"], strict=True))
        )

    def table(self) -> str:
        s, a = self.snn.totals, self.ann.totals
        acc = self.accuracy
        status = "TRAINED" if self.ann_trained else "UNTRAINED: architecture-only comparison, not at matched accuracy"

        def pct(v):
            return "not measured" if v is None else f"{100 * v:.1f} %"

        lines = [
            f"SNN            {self.accuracy_split} accuracy {pct(acc['snn'])}",
            f"ReLU twin      {self.accuracy_split} accuracy {pct(acc['ann'])}   [{status}; {self.ann_source}]",
            "",
            f"{'SNN layer':<34} {'input':>8} {'fr_in':>6} {'MACs':>10} {'SOPs':>10} {'pJ 45nm':>10} {'bytes':>10}",
        ]
        for r in self.snn.layers:
            fr = f"{r['fr_in']:.3f}" if r["input"] == "spikes" else "-"
            lines.append(
                f"{r['name']:<34} {r['input']:>8} {fr:>6} {r['macs']:>10.3e} {r['sops']:>10.3e} "
                f"{r['compute_pj']:>10.3e} {r['weight_bytes'] + r['act_bytes']:>10.3e}"
            )
        lines += [
            "",
            f"{'SNN neuron layer':<34} {'neurons':>8} {'rate':>6} {'spikes':>10} {'mul-adds':>10} "
            f"{'pJ 45nm':>10} {'bytes':>10}",
        ]
        for r in self.snn.neurons:
            lines.append(
                f"{r['name']:<34} {r['neurons']:>8.0f} {r['rate']:>6.3f} {r['spikes']:>10.3e} "
                f"{r['state_muladds']:>10.3e} {r['compute_pj']:>10.3e} "
                f"{r['state_bytes'] + r['spike_bytes']:>10.3e}"
            )
        rows = [
            ("operations per inference", None, None),
            ("MACs on analogue inputs", s.macs, a.macs),
            ("  of them on non-zero inputs (zero-skip)", s.zero_skip_macs, a.zero_skip_macs),
            ("synaptic accumulates (SOPs)", s.sops, a.sops),
            ("neuron leak multiply-adds", s.state_muladds, a.state_muladds),
            ("neuron adds (integrate)", s.state_adds, a.state_adds),
            ("threshold compares (ReLU: compares)", s.compares, a.compares),
            ("resets (= spikes)", s.resets, a.resets),
            ("memory traffic (bytes)", None, None),
            ("weights", s.weight_bytes, a.weight_bytes),
            ("layer inputs + outputs", s.act_bytes, a.act_bytes),
            ("membrane state (read + write)", s.state_bytes, a.state_bytes),
            ("spikes written", s.spike_bytes, a.spike_bytes),
            ("energy per inference (pJ)", None, None),
            ("45 nm: MACs + accumulates", s.synaptic_pj, a.synaptic_pj),
            ("45 nm: neuron updates / ReLU", s.neuron_pj, a.neuron_pj),
            ("45 nm: compute", s.compute_pj, a.compute_pj),
            ("45 nm: memory traffic", s.memory_pj, a.memory_pj),
            ("45 nm: compute + memory", s.total_pj, a.total_pj),
            (f"{self.neuromorphic['name']}: synaptic events", s.chip_synop_pj, None),
            (f"{self.neuromorphic['name']}: neuron updates", s.chip_neuron_pj, None),
            (f"{self.neuromorphic['name']}: spikes routed", s.chip_spike_pj, None),
            (f"{self.neuromorphic['name']}: analogue layers on a host", s.chip_host_mac_pj, None),
            (f"{self.neuromorphic['name']}: total", s.chip_pj, None),
        ]
        lines += ["", f"{'':<44} {'SNN':>11} {'ReLU twin':>11}"]
        for label, x, y in rows:
            if x is None and y is None:
                lines.append(label)
                continue
            fy = "-" if y is None else f"{y:>11.4g}"
            lines.append(f"  {label:<42} {x:>11.4g} {fy:>11}")
        ann_zs = self.cost["e_mac"] * a.zero_skip_macs + a.neuron_pj
        lines += [
            "",
            f"SNN / ReLU twin, 45 nm compute: {s.compute_pj / a.compute_pj:.3f}; compute + memory: "
            f"{s.total_pj / a.total_pj:.3f}; against the twin with zero-skipping: "
            f"{s.compute_pj / ann_zs:.3f} (compute)",
            f"SNN on {self.neuromorphic['name']} / ReLU twin at 45 nm (compute + memory): {s.chip_pj / a.total_pj:.3f}",
            f"per time step (SNN): {self._per_step()}",
            "assumptions:",
            *[f"  - {x}" for x in self.assumptions()],
        ]
        if not self.ann_trained:
            lines.append(
                "  - the ReLU twin is UNTRAINED (random weights): pass --twin CHECKPOINT (or --train-twin) "
                "to compare at a known accuracy"
            )
        return "\n".join(lines)

    def write(self, out: str | Path) -> list[Path]:
        """``energy.json`` (everything), ``energy.csv`` (per layer, both models), ``neurons.csv`` (per spiking
        layer), ``histograms.csv`` (per-layer firing-rate and spike-count histograms)."""
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        paths = [out / n for n in ("energy.json", "energy.csv", "neurons.csv", "histograms.csv")]
        write_text(paths[0], json.dumps(asdict(self), indent=1))
        rows = [
            {"model": m, **{k: v for k, v in r.items() if not k.endswith("_steps")}}
            for m, part in (("snn", self.snn), ("ann", self.ann))
            for r in part.layers
        ]
        write_csv(paths[1], rows)
        write_csv(paths[2], [{k: v for k, v in r.items() if k != "spikes_steps"} for r in self.snn.neurons])
        hist = [
            {"layer": layer, "histogram": kind, "bin_low": lo, "bin_high": hi, "n": n}
            for layer, h in self.histograms.items()
            for kind in ("rate", "count")
            for lo, hi, n in zip(h[kind]["edges"][:-1], h[kind]["edges"][1:], h[kind]["counts"], strict=True)
        ]
        write_csv(paths[3], hist, ["layer", "histogram", "bin_low", "bin_high", "n"])
        return paths


def energy_report(
    model: nn.Module,
    audio: torch.Tensor,
    frames: torch.Tensor,
    cost: CostModel | None = None,
    neuromorphic: NeuromorphicProfile | None = None,
    ann_model: nn.Module | None = None,
    bins: int = 20,
) -> EnergyReport:
    """Count an :class:`~snn_msi.models.AVNet` and its ReLU twin on one batch and price both.

    ``ann_model``: the trained twin (:func:`relu_twin` with its weights); default an untrained twin built from
    ``model.config`` (an architecture-only comparison, marked so in the report).
    """
    cost = cost if cost is not None else CostModel()
    hw = neuromorphic if neuromorphic is not None else NeuromorphicProfile()
    b, T = audio.shape[0], model.config.T
    counts = count_ops(model, lambda: model(audio, frames), T, b)
    trained = ann_model is not None
    ann = ann_model if trained else relu_twin(model.config)
    ann_counts = count_ops(ann, lambda: ann(audio, frames), ann.config.T, b, detect_spikes=False)
    snn_priced, ann_priced = price(counts, cost, hw), price(ann_counts, cost)
    s, a = snn_priced.totals, ann_priced.totals
    totals = {
        "snn_pj": s.compute_pj,
        "ann_pj": a.compute_pj,
        "snn_mem_pj": s.memory_pj,
        "ann_mem_pj": a.memory_pj,
        "snn_chip_pj": s.chip_pj,
        "mean_firing_rate": s.mean_firing_rate,
        "sops": s.sops,
        "macs": s.macs,
        "ann_macs": a.macs,
    }
    mon = counts.monitor
    return EnergyReport(
        asdict(cost),
        asdict(hw),
        b,
        T,
        snn_priced,
        ann_priced,
        mon.firing_rates(),
        {k: v.tolist() for k, v in mon.firing_rates_per_step().items()},
        mon.histograms(bins),
        totals,
        ann_trained=trained,
    )


__all__ = [
    "CostModel",
    "NeuromorphicProfile",
    "OpCounter",
    "LayerOps",
    "Counts",
    "count_ops",
    "price",
    "Price",
    "PriceTotals",
    "layer_energy",
    "relu_config",
    "relu_twin",
    "EnergyReport",
    "energy_report",
    "neuron_cost",
    "PRECISIONS",
    "ENERGY_TABLE",
    "MEMORY_LEVELS",
    "E_BYTE_SRAM",
    "HOROWITZ",
    "LOIHI",
]
