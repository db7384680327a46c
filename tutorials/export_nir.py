"""Export a trained network to NIR, read it back, and check that it spikes the same.

`snn-msi export-nir CHECKPOINT OUT.nir` writes the spiking network (both backbones, the fusion, the unimodal
heads) as a NIR graph: convolutions with their batch norm folded in, LIF / IF / Synaptic neurons with their time
constants at a step `dt` (default 1e-4 s), residual additions as two edges into one node. Any NIR tool reads it
(`nir.read`); `snn_msi.nir.NIRNetwork` runs it with this package's modules. Other tools' importers take one input:
`--part` writes one part per file, and the parts chained compute the model (step 4). See the NIR page for the
parameter mapping, the options each tool needs and what cannot be exported (soft reset, max pooling, ...).
"""

from pathlib import Path

import nir  # pip install 'snn-msi[nir]'
import torch

from snn_msi.cli import main
from snn_msi.data import build_datasets
from snn_msi.nir import NIRNetwork
from snn_msi.training import load_model

run = Path("runs/tutorials/nir")
# a tiny training run of the demo network (LIF neurons, hard reset: exportable)
train = ["train", "--demo", "--epochs", "1", "--batch-size", "16", "--set", "data.limit=16", "--quiet"]
assert main([*train, "--overwrite", "--out", str(run)]) == 0

# 1. export: one command
assert main(["export-nir", str(run / "best.pt"), str(run / "model.nir")]) == 0

# 2. any NIR tool reads the file
graph = nir.read(run / "model.nir")
print("inputs:", sorted(graph.inputs), "outputs:", sorted(graph.outputs))
lif = graph.nodes["audio_net.stem_sn"]
print(
    f"audio_net.stem_sn: {type(lif).__name__} of shape {lif.tau.shape}, tau = {lif.tau.flat[0]:g} s, "
    f"r = {lif.r.flat[0]:g}, v_threshold = {lif.v_threshold.flat[0]:g}, dt = {graph.metadata['dt']:g} s"
)

# 3. run the graph with our modules and compare with the trained model on test clips
model, cfg = load_model(run / "best.pt")
test = build_datasets(cfg.data, cfg.seed)[2]
audio = torch.stack([test[i].audio for i in range(16)])  # [B, 1, 40, 32]
frames = torch.stack([test[i].frames for i in range(16)])  # [B, 1 frame, 1, 16, 16]
imported = NIRNetwork(graph)
T = cfg.model.T  # direct coding: the same input at each of the T steps
inputs = {"input.audio": audio.expand(T, *audio.shape), "input.visual": frames[:, 0].expand(T, *frames[:, 0].shape)}
with torch.no_grad():
    out = model(audio, frames)
    logits = imported(**inputs, record=True)
spikes = imported.recorded["audio_net.stem_sn"]  # [T, B, C, H, W], recorded because record=True
print("stem firing rate:", round(spikes.mean().item(), 3))
same = (logits["output.fused"].mean(0).argmax(1) == out.fused.argmax(1)).float().mean().item()
print(f"the imported graph predicts the same class as the model on {same:.0%} of the clips")
print("largest logit difference:", (logits["output.fused"].mean(0) - out.fused).abs().max().item())

# 4. for tools whose importer takes one input (snnTorch, Norse, Sinabs, Rockpool): one part per file; Norse and
#    Sinabs map SumPool2d, so the backbones' average pool is written as a sum with its 1/N in the fusion part
parts = {}
for part in ("audio_net", "visual_net", "fusion"):
    assert main(["export-nir", str(run / "best.pt"), str(run / f"{part}.nir"), "--part", part, "--pool", "sum"]) == 0
    parts[part] = NIRNetwork(nir.read(run / f"{part}.nir"))
with torch.no_grad():
    features = [parts["audio_net"](inputs["input.audio"]), parts["visual_net"](inputs["input.visual"])]
    fused = parts["fusion"](torch.cat(features, -1))  # the backbones' outputs, audio first
print("the three parts chained give the whole graph's fused logits:", torch.allclose(fused, logits["output.fused"]))
