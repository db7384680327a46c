"""Spike monitors: per-layer spike counts and firing rates recorded by forward hooks.

Zero cost when off: hooks exist only while a monitor is attached (``with SpikeMonitor(model) as m: ...``).
"""

from __future__ import annotations

import torch
from torch import nn

import neurons


class SpikeMonitor:
    """Record the output of every spiking neuron module of ``model`` (or those whose names are in ``layers``).

    For each layer it keeps, per forward call, the spike count of each sample ``[B]``, the number of neurons per
    sample, the count per time step ``[T]`` and the count of each neuron ``[N]`` (summed over steps and samples).
    A multi-step layer sees ``[T, B, ...]``, a single-step one ``[B, ...]`` (T = 1 per call).

    A forward call of ``model`` is one batch: a single-step layer's calls within it are its T steps, a multi-step
    layer's calls within it are more samples (two modalities through one layer). So a loop over T outside the
    model (snnTorch style, one ``model(x_t)`` per step) records T batches of one step each: attach the monitor
    to a module that loops over T inside, for per-step rates and per-sample counts. ``neurons.checkpoint``'s
    recompute in the backward pass is not recorded.
    """

    def __init__(self, model: nn.Module, layers: list[str] | None = None) -> None:
        self.records: dict[str, list[dict[str, torch.Tensor]]] = {}
        self.modules: dict[str, nn.Module] = {}
        self._handles = []
        self._batch = 0  # forward calls of ``model``: a layer's calls within one are the same samples
        self._handles.append(model.register_forward_pre_hook(self._next_batch))
        for name, module in model.named_modules():
            if neurons.is_spiking(module) and (layers is None or name in layers):
                self.records[name] = []
                self.modules[name] = module
                self._handles.append(module.register_forward_hook(self._hook(name, module)))

    def _next_batch(self, *_args) -> None:
        self._batch += 1

    def _hook(self, name: str, module: nn.Module):
        def hook(_mod, _inp, out):
            if neurons.recomputing():  # neurons.checkpoint's recompute in backward: the batch was counted
                return
            s = out.detach()
            single = module.step_mode != "m"
            if single:  # [B, ...] -> one step
                s = s.unsqueeze(0)
            flat = s.flatten(2)  # [T, B, N]
            per_step = flat.sum(2)  # [T, B]
            self.records[name].append(
                {
                    "count": per_step.sum(0),
                    "per_step": per_step.sum(1),
                    "T": s.shape[0],
                    "neurons": flat.shape[2],
                    "per_neuron": flat.sum((0, 1)),
                    "batch": self._batch,
                    "single_step": single,
                }
            )

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
        """``{layer: [samples]}`` total spikes of each sample in each layer: a layer's calls within one forward
        call of the model summed (a single-step layer is called once per step), the model's calls (batches)
        one after the other."""
        out = {}
        for k, v in self.records.items():
            if v:
                batches: dict[int, list[torch.Tensor]] = {}
                for r in v:
                    batches.setdefault(r["batch"], []).append(r["count"])
                out[k] = torch.cat([torch.stack(c).sum(0) for c in batches.values()])
        return out

    def firing_rates(self) -> dict[str, float]:
        """``{layer: spikes / (neurons x T x samples)}`` over everything recorded."""
        rates = {}
        for k, v in self.records.items():
            if v:
                spikes = sum(float(r["count"].sum()) for r in v)
                rates[k] = spikes / self.neuron_steps(k)
        return rates

    def neuron_steps(self, layer: str) -> int:
        """Neuron updates recorded in ``layer``: neurons x time steps x samples, summed over its calls."""
        return sum(r["neurons"] * r["T"] * r["count"].numel() for r in self.records[layer])

    def spikes_per_step(self, layer: str) -> torch.Tensor:
        """``[T]`` spikes of ``layer`` at each time step, summed over samples and batches: a multi-step layer's
        calls add up, a single-step layer's calls within one forward call of the model are its steps, in order."""
        if not self.records.get(layer):
            raise ValueError(f"SpikeMonitor: nothing recorded in layer {layer!r} (recorded: {sorted(self.records)})")
        batches: dict[int, list[dict]] = {}
        for r in self.records[layer]:
            batches.setdefault(r["batch"], []).append(r)
        steps = [
            torch.cat([r["per_step"] for r in rs])
            if rs[0]["single_step"]
            else torch.stack([r["per_step"] for r in rs]).sum(0)
            for rs in batches.values()
        ]
        if len({len(s) for s in steps}) > 1:
            raise ValueError(
                f"{layer}: the recorded batches ran different numbers of steps {sorted({len(s) for s in steps})}"
            )
        return torch.stack(steps).sum(0)

    def firing_rates_per_step(self) -> dict[str, torch.Tensor]:
        """``{layer: [T]}`` firing rate at each time step (see :meth:`spikes_per_step`)."""
        out = {}
        for k, v in self.records.items():
            if v:
                per = self.spikes_per_step(k)
                out[k] = per / (self.neuron_steps(k) / len(per))
        return out

    def neuron_rates(self) -> dict[str, torch.Tensor]:
        """``{layer: [N]}`` firing rate of each neuron (spikes / (T x samples), over the layer's calls)."""
        out = {}
        for k, v in self.records.items():
            if v:
                counts = torch.stack([r["per_neuron"] for r in v]).sum(0)
                out[k] = counts / sum(r["T"] * r["count"].numel() for r in v)
        return out

    def histograms(self, bins: int = 20) -> dict[str, dict[str, list[float]]]:
        """Per layer, two histograms: of the neurons' firing rates (``bins`` equal bins over [0, 1]) and of the
        spike counts per sample (``bins`` equal bins from the smallest to the largest count; one unit wide when
        they are equal). Each is ``{"edges": [bins + 1], "counts": [bins]}``."""
        if not isinstance(bins, int) or isinstance(bins, bool) or bins < 1:
            raise ValueError(f"bins must be an integer >= 1, got {bins!r}")
        rates, counts = self.neuron_rates(), self.counts_per_sample()
        out = {}
        for k in rates:
            c = counts[k].double()
            low, high = float(c.min()), float(c.max())
            out[k] = {
                "rate": _histogram(rates[k].double(), bins, 0.0, 1.0),
                "count": _histogram(c, bins, low, high if high > low else low + 1.0),
            }
        return out


def _histogram(x: torch.Tensor, bins: int, low: float, high: float) -> dict[str, list[float]]:
    """Counts of ``x`` (all within ``[low, high]``) in ``bins`` equal bins, the last one closed, with the edges."""
    edges = torch.linspace(low, high, bins + 1, dtype=torch.float64)
    idx = torch.bucketize(x, edges[1:-1], right=True)  # values equal to an inner edge go to the upper bin
    return {"edges": edges.tolist(), "counts": torch.bincount(idx, minlength=bins).tolist()}
