"""NIR export and import: a trained spiking network as a Neuromorphic Intermediate Representation graph, and back.

[NIR](https://neuroir.org) describes a network as a graph of continuous-time nodes (`Conv2d`, `Affine`, `LIF`,
`CubaLIF`, ...) that simulators and neuromorphic chips read. `export` (`snn_msi.nir.exporter`) writes the spiking
parts of a model (each backbone, the fusion / integration layer, the unimodal heads) as one graph, or one part of
it for tools that take one input; `NIRNetwork` (`snn_msi.nir.importer`) runs a graph with this package's modules
(`neurons.LIF` / `IF` / `Synaptic`, `nn.Conv2d`, `nn.Linear`, ...); `snn-msi export-nir CHECKPOINT OUT.nir`
does the first for a checkpoint; `snn_msi.nir.timing` holds the time-constant conventions:

    graph = export(model, {"audio": (1, 40, 32), "visual": (1, 16, 16)})   # an AVNet
    nir.write("model.nir", graph)
    net = NIRNetwork(nir.read("model.nir"))        # our modules again; the same spikes
    out = net(**{"input.audio": a_seq, "input.visual": v_seq})   # [T, B, ...] in; {"output.fused": ...} out

**Time.** A graph is written at a step `dt` in seconds (default `DEFAULT_DT` = 1e-4 s, the step snnTorch's NIR
import assumes; stored in the graph's metadata as `dt`) with the forward-Euler convention of snnTorch and Norse,
`y <- y + dt * dy/dt`, or the exponential one of Sinabs and Rockpool (`integration="exact"`). With `tau`,
`tau_syn` our time constants in steps, `v_r` our `v_reset` and `tau_n = tau * dt` (Euler):

| ours | NIR node (arrays of the layer's shape) |
|---|---|
| `IF` | `IF(r = 1/dt, v_threshold, v_reset = v_r)` |
| `LIF`, `decay_input=True` | `LIF(tau = tau_n, r = 1, v_leak = v_r, v_threshold, v_reset = v_r)` |
| `LIF`, `decay_input=False` | `LIF(tau = tau_n, r = tau, v_leak = v_r, v_threshold, v_reset = v_r)` |
| `ParametricLIF` | as `LIF` with its current `tau = 1/sigmoid(w)` (imported as a `LIF`) |
| `Synaptic` | `CubaLIF(tau_syn = tau_syn*dt, tau_mem = tau_n, w_in = tau_syn, r = tau, v_leak = v_r, ...)` |
| `reset="none"` | the membrane node `I` / `LI` / `CubaLI`, then a `Threshold` node |
| `SeqConv` (conv + batch norm) | `Conv2d`, the batch norm's running statistics folded in |
| `nn.Linear` (+ `BatchNorm1d`) | `Affine` (batch norm folded in) |
| global average pooling | `AvgPool2d` (or `SumPool2d`, `1/N` folded into the next `Affine`) over the map, `Flatten` |
| residual `a + b` | two edges into one node (NIR sums the inputs of a node) |

**What NIR cannot express raises** `ValueError` naming the module: a soft reset (NIR's neurons reset to
`v_reset`), adaptive or Izhikevich neurons, the ReLU control, the peers' neuron wrappers, max pooling, the `film`,
`gated` and `msi` fusions (products of two signals, divisive normalisation), `bn_product` with a non-zero product
term, an `IF` with `reset="none"` and `v_reset != 0` (`I` has no resting value).

**Known differences, by design.** Our neurons fire when `v >= v_threshold`, NIR's text says `v > v_threshold`
(they differ only when a membrane lands exactly on the threshold). The outputs are the logits of every step (the
model's prediction is their mean over T). Batch norm is folded in float64 and those weights are stored in
float64, so a float64 run of the imported graph gives the original model's spikes exactly. With K > 1 frames
per clip the visual backbone is written once per frame and a `Scale(1/K)` node averages their features.
"""

from .exporter import EXPORTERS, FUSION_EXPORTERS, OUTPUTS, PARTS, POOLS, export, export_checkpoint, neuron_to_nir
from .importer import IMPORTERS, NIRNetwork, load
from .timing import DEFAULT_DT, INTEGRATIONS

__all__ = [
    "DEFAULT_DT",
    "EXPORTERS",
    "FUSION_EXPORTERS",
    "IMPORTERS",
    "INTEGRATIONS",
    "OUTPUTS",
    "PARTS",
    "POOLS",
    "NIRNetwork",
    "export",
    "export_checkpoint",
    "load",
    "neuron_to_nir",
]
