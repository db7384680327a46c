"""Synaptic operations, energy and memory traffic of a model, per layer, from one measured forward pass.

Conventions (those of SNN papers, with the counting made exact):

- A layer fed spikes (its input is 0/1) does accumulates only, one per (input spike, synapse) pair:
  ``SOP = sum over input spikes of their fan-out`` (for a dense layer this is ``fr_in x T x FLOPs``; for a
  padded convolution the border is counted exactly, as SpikingJelly's ``SynOpCounter`` does).
- A layer fed analogue values (the first layer under direct coding, the fusion head on averaged features)
  does multiply-accumulates: ``MAC = dense MACs x calls`` (under direct coding the first layer repeats the same
  MACs at each of the T steps; a hardware that caches it would do them once).
- Energy ``E = E_MAC x MACs + E_AC x SOPs`` with 45 nm CMOS figures (Horowitz, ISSCC 2014): fp32 4.6 / 0.9 pJ,
  fp16 1.5 / 0.4 pJ, int8 0.23 / 0.03 pJ (MAC / AC). The ANN counterpart (the same architecture, ReLU, one
  pass) costs ``E_MAC x dense MACs``.
- Compute-only estimates flatter SNNs (arXiv 2409.08290), so a memory-traffic estimate comes with them: per layer
  and time step the weights are read (batch-1 inference: SNN T times, ANN once), inputs read (spikes at
  1 bit, analogue values at the word size), outputs written, and every spiking neuron's membrane read and
  written once per step; bytes x ``E_byte`` (default 1.25 pJ/byte, a 64-bit read of an 8 KB SRAM at 45 nm, ~10 pJ).

BatchNorm is assumed folded into the preceding layer (inference), neuron updates are not counted as compute.
"""

from __future__ import annotations

import csv
import json
from dataclasses import asdict, dataclass, field
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn

ENERGY_TABLE = {"fp32": (4.6, 0.9), "fp16": (1.5, 0.4), "int8": (0.23, 0.03)}  # pJ per (MAC, AC)
WORD_BYTES = {"fp32": 4, "fp16": 2, "int8": 1}
E_BYTE_SRAM = 1.25  # pJ per byte


@dataclass
class LayerOps:
    name: str
    kind: str  # "conv" | "linear"
    params: int
    calls: int = 0
    dense_macs: float = 0.0  # as if every input were analogue, summed over calls
    macs: float = 0.0  # analogue-fed work
    sops: float = 0.0  # spike-driven accumulates
    input_spiking: bool = True
    input_elems: float = 0.0
    input_ones: float = 0.0
    output_elems: float = 0.0

    @property
    def fr_in(self) -> float:
        return self.input_ones / self.input_elems if self.input_spiking and self.input_elems else float("nan")


def _is_binary(x: torch.Tensor) -> bool:
    return bool(((x == 0) | (x == 1)).all())


class OpCounter:
    """Forward hooks on every ``nn.Conv2d`` / ``nn.Linear`` that count MACs, SOPs and elements."""

    def __init__(self, model: nn.Module) -> None:
        self.layers: dict[str, LayerOps] = {}
        self._handles = []
        for name, m in model.named_modules():
            if isinstance(m, nn.Conv2d | nn.Linear):
                kind = "conv" if isinstance(m, nn.Conv2d) else "linear"
                self.layers[name] = LayerOps(name, kind, sum(p.numel() for p in m.parameters()))
                self._handles.append(m.register_forward_hook(self._hook(name)))

    def _hook(self, name: str):
        def hook(m, inputs, out):
            x = inputs[0].detach()
            rec = self.layers[name]
            spiking = _is_binary(x)
            if isinstance(m, nn.Conv2d):
                dense = out.numel() * (m.in_channels // m.groups) * m.kernel_size[0] * m.kernel_size[1]
                if spiking:
                    ones = torch.ones_like(m.weight)
                    sops = F.conv2d(x.double(), ones.double(), None, m.stride, m.padding, m.dilation, m.groups).sum()
            else:
                dense = out.numel() * m.in_features
                if spiking:
                    sops = x.double().sum() * m.out_features
            rec.calls += 1
            rec.dense_macs += dense
            rec.input_elems += x.numel()
            rec.output_elems += out.numel()
            if spiking:
                rec.sops += float(sops)
                rec.input_ones += float(x.sum())
            else:
                rec.input_spiking = False
                rec.macs += dense

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.remove()


def layer_energy(r: LayerOps, e_mac: float, e_ac: float) -> float:
    """``E_MAC x MACs + E_AC x SOPs`` of one layer, in pJ (summed over what was measured)."""
    return e_mac * r.macs + e_ac * r.sops


@dataclass
class EnergyReport:
    precision: str
    e_mac: float
    e_ac: float
    e_byte: float
    samples: int
    T: int
    layers: list[dict] = field(default_factory=list)
    firing_rates: dict[str, float] = field(default_factory=dict)
    firing_rates_per_step: dict[str, list[float]] = field(default_factory=dict)
    totals: dict[str, float] = field(default_factory=dict)

    def assumptions(self) -> str:
        return (
            f"{self.precision}: E_MAC={self.e_mac} pJ, E_AC={self.e_ac} pJ (45 nm, Horowitz 2014); memory "
            f"{self.e_byte} pJ/byte (SRAM); BN folded; per sample, T={self.T}, {self.samples} samples"
        )

    def table(self) -> str:
        lines = [f"{'layer':<34} {'input':>6} {'fr_in':>6} {'MACs':>11} {'SOPs':>11} {'energy pJ':>11}"]
        for r in self.layers:
            fr = f"{r['fr_in']:.3f}" if r["input_spiking"] else "  -  "
            lines.append(f"{r['name']:<34} {'spikes' if r['input_spiking'] else 'analog':>6} {fr:>6} "
                         f"{r['macs']:>11.3e} {r['sops']:>11.3e} {r['energy_pj']:>11.3e}")  # fmt: skip
        t = self.totals
        lines += [
            f"{'total SNN compute':<34} {'':>6} {'':>6} {t['macs']:>11.3e} {t['sops']:>11.3e} {t['snn_pj']:>11.3e}",
            f"{'ANN (same architecture, ReLU)':<34} {'':>13} {t['ann_macs']:>11.3e} {'':>11} {t['ann_pj']:>11.3e}",
            f"compute energy SNN / ANN = {t['snn_pj'] / t['ann_pj']:.3f}",
            f"memory traffic: SNN {t['snn_bytes']:.3e} B ({t['snn_mem_pj']:.3e} pJ), ANN {t['ann_bytes']:.3e} B "
            f"({t['ann_mem_pj']:.3e} pJ); compute + memory SNN / ANN = "
            f"{(t['snn_pj'] + t['snn_mem_pj']) / (t['ann_pj'] + t['ann_mem_pj']):.3f}",
            f"assumptions: {self.assumptions()}",
        ]
        return "\n".join(lines)

    def write(self, out: str | Path) -> tuple[Path, Path]:
        out = Path(out)
        out.mkdir(parents=True, exist_ok=True)
        with (out / "energy.csv").open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=list(self.layers[0]))
            w.writeheader()
            w.writerows(self.layers)
        (out / "energy.json").write_text(json.dumps(asdict(self), indent=1))
        return out / "energy.csv", out / "energy.json"


def _count(model: nn.Module, audio: torch.Tensor, frames: torch.Tensor):
    from .monitor import SpikeMonitor

    model.eval()
    with torch.no_grad(), OpCounter(model) as ops, SpikeMonitor(model) as mon:
        model(audio, frames)
        neuron_elems = {k: sum(r["neurons"] * r["T"] * r["count"].numel() for r in v) for k, v in mon.records.items()}
        return ops.layers, mon.firing_rates(), mon.firing_rates_per_step(), neuron_elems


def energy_report(model: nn.Module, audio: torch.Tensor, frames: torch.Tensor, precision: str = "fp32",
                  e_mac: float | None = None, e_ac: float | None = None, e_byte: float = E_BYTE_SRAM,
                  ann_model: nn.Module | None = None) -> EnergyReport:  # fmt: skip
    """Measure ``model`` on one batch and compare with its ANN counterpart (built from its config if not given)."""
    if precision not in ENERGY_TABLE:
        raise ValueError(f"precision must be one of {sorted(ENERGY_TABLE)}, got {precision!r}")
    mac_pj, ac_pj = ENERGY_TABLE[precision]
    e_mac, e_ac = (mac_pj if e_mac is None else e_mac), (ac_pj if e_ac is None else e_ac)
    word = WORD_BYTES[precision]
    b = audio.shape[0]
    T = getattr(getattr(model, "config", None), "T", 1)
    layers, rates, per_step, neuron_elems = _count(model, audio, frames)
    if ann_model is None:
        from ..models import build

        ann_model = build(model.config.replace(neuron="relu", T=1))
    ann_layers, *_ = _count(ann_model, audio, frames)
    rows, snn_bytes = [], 0.0
    for name, r in layers.items():
        energy = layer_energy(r, e_mac, e_ac) / b
        # batch-1 inference: the weights are read once per time step; spikes travel as bits
        in_bytes = r.input_elems * (1 / 8 if r.input_spiking else word)
        bytes_ = (r.params * word * T + (in_bytes + r.output_elems * word) / b) if r.calls else 0.0
        snn_bytes += bytes_
        rows.append({"name": name, "kind": r.kind, "params": r.params, "input_spiking": r.input_spiking,
                     "fr_in": r.fr_in, "dense_macs": r.dense_macs / b, "macs": r.macs / b, "sops": r.sops / b,
                     "energy_pj": energy, "bytes": bytes_})  # fmt: skip
    snn_bytes += sum(2 * n * word for n in neuron_elems.values()) / b  # membrane read + write per neuron and step
    ann_macs = sum(r.dense_macs for r in ann_layers.values()) / b
    ann_bytes = sum(
        r.params * word + (r.input_elems + r.output_elems) * word / b for r in ann_layers.values() if r.calls
    )
    totals = {
        "macs": sum(r["macs"] for r in rows),
        "sops": sum(r["sops"] for r in rows),
        "snn_pj": sum(r["energy_pj"] for r in rows),
        "ann_macs": ann_macs,
        "ann_pj": e_mac * ann_macs,
        "snn_bytes": snn_bytes,
        "ann_bytes": ann_bytes,
        "snn_mem_pj": snn_bytes * e_byte,
        "ann_mem_pj": ann_bytes * e_byte,
        "mean_firing_rate": sum(rates.values()) / max(len(rates), 1),
    }
    return EnergyReport(precision, e_mac, e_ac, e_byte, b, T, rows, rates,
                        {k: v.tolist() for k, v in per_step.items()}, totals)  # fmt: skip
