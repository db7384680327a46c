"""Spike monitors: per-layer spike counts and firing rates recorded by forward hooks.

Zero cost when off: hooks exist only while a monitor is attached (``with SpikeMonitor(model) as m: ...``).
"""

from __future__ import annotations

import torch
from torch import nn

import neurons


class SpikeMonitor:
    """Record the output of every spiking neuron module of ``model`` (or those whose names are in ``layers``).

    For each layer it keeps, per forward call, the spike count per sample ``[B]``, the number of neurons per
    sample, and the count per time step ``[T]`` (multi-step layers).
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None) -> None:
        self.records: dict[str, list[dict[str, torch.Tensor]]] = {}
        self._handles = []
        for name, module in model.named_modules():
            if neurons.is_spiking(module) and (layers is None or name in layers):
                self.records[name] = []
                self._handles.append(module.register_forward_hook(self._hook(name, module)))

    def _hook(self, name: str, module: nn.Module):
        def hook(_mod, _inp, out):
            s = out.detach()
            if module.step_mode == "m":  # [T, B, ...]
                per_step = s.flatten(2).sum(2)  # [T, B]
                rec = {"count": per_step.sum(0), "per_step": per_step.sum(1), "T": s.shape[0]}
                rec["neurons"] = s[0, 0].numel()
            else:
                rec = {"count": s.flatten(1).sum(1), "per_step": s.sum().view(1), "T": 1, "neurons": s[0].numel()}
            self.records[name].append(rec)

        return hook

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles.clear()

    def __enter__(self) -> SpikeMonitor:
        return self

    def __exit__(self, *exc) -> None:
        self.remove()

    def reset(self) -> None:
        for v in self.records.values():
            v.clear()

    def counts_per_sample(self) -> dict[str, torch.Tensor]:
        """``{layer: [B]}`` total spikes of each sample in each layer (summed over the layer's calls)."""
        return {k: torch.stack([r["count"] for r in v]).sum(0) for k, v in self.records.items() if v}

    def firing_rates(self) -> dict[str, float]:
        """``{layer: spikes / (neurons x T x samples)}`` over everything recorded."""
        rates = {}
        for k, v in self.records.items():
            if v:
                spikes = sum(float(r["count"].sum()) for r in v)
                denom = sum(r["neurons"] * r["T"] * r["count"].numel() for r in v)
                rates[k] = spikes / denom
        return rates

    def firing_rates_per_step(self) -> dict[str, torch.Tensor]:
        """``{layer: [T]}`` firing rate at each time step."""
        out = {}
        for k, v in self.records.items():
            if v:
                per = torch.stack([r["per_step"] for r in v]).sum(0)
                n = sum(r["neurons"] * r["count"].numel() for r in v) / len(v)
                out[k] = per / (n * len(v))
        return out
