"""Training-step time of the paper's spiking AV network (two spiking ResNet-18s, T = 4, concat fusion, IEMF)
with different neuron implementations, in one run; and one end-to-end epoch of the trainer on a synthetic
Kinetics-Sounds tree (data path, mixed precision, checkpoints).

    python benchmarks/bench_train.py --device cuda            # paper shapes: audio 1x257x188, 3 frames 224 px
    python benchmarks/bench_train.py --quick                  # a small network on CPU

Rows: ``lif`` (our LIF, backend auto: Triton on CUDA / C++ on CPU), ``lif-torch`` (our per-step PyTorch
reference), ``spikingjelly.lif`` (SpikingJelly's LIFNode through the registry adapter). Same architecture,
same inputs, SGD + IEMF policy, bfloat16 autocast on CUDA.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import torch
import torch.nn.functional as F

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from snn_msi.models import build  # noqa: E402
from snn_msi.training import IEMF  # noqa: E402


def make_inputs(batch: int, audio_hw, frames: int, image: int, device: str):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch, 1, *audio_hw, generator=g).to(device)
    v = torch.randn(batch, frames, 3, image, image, generator=g).to(device)
    y = torch.randint(0, 31, (batch,), generator=g).to(device)
    return a, v, y


def time_steps(model, inputs, device: str, steps: int, amp: bool) -> float:
    a, v, y = inputs
    opt = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9, nesterov=True)
    policy = IEMF()

    def one():
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(a, v)
        loss = sum(F.cross_entropy(z.float(), y) for z in (out.fused, out.audio, out.visual))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        policy.before_step(model, out, y, 0)
        opt.step()

    for _ in range(2):
        one()
    times = []
    for _ in range(steps):
        if device == "cuda":
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        one()
        if device == "cuda":
            torch.cuda.synchronize()
        times.append(time.perf_counter() - t0)
    return statistics.median(times)


def end_to_end_epoch(device: str, quick: bool) -> None:
    from bench_data import make_tree

    from snn_msi.data import KineticsSounds
    from snn_msi.training import DataConfig, TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ks"
        make_tree(root, 32 if quick else 96)
        kw = dict(image_size=64 if quick else 224)
        sets = tuple(KineticsSounds(root, s, val_fraction=0.25, **kw) for s in ("train", "val", "val"))
        model = {"num_classes": 4} if not quick else {"num_classes": 4, "widths": [8, 16], "blocks": [1, 1]}
        cfg = TrainConfig.from_dict({**TrainConfig().to_dict(), "model": model, "epochs": 1, "batch_size": 16,
                                     "iemf": True, "method": "ogm_ge", "device": device,
                                     "out": str(Path(tmp) / "run"),
                                     "data": DataConfig(num_workers=min(4, os.cpu_count() or 1)).__dict__})  # fmt: skip
        t0 = time.perf_counter()
        result = Trainer(cfg, datasets=sets, progress=False).fit()
        dt = time.perf_counter() - t0
        ok = all((Path(tmp) / "run" / f).is_file() for f in ("last.pt", "best.pt", "metrics.csv", "curves.png"))
        print(f"\n# end-to-end: 1 epoch of OGM-GE + IEMF on a synthetic KS tree ({len(sets[0])} train clips), "
              f"{device}, amp={cfg.amp}: {dt:.1f} s, test_acc {result['test_acc']:.3f}, "
              f"files written: {ok}")  # fmt: skip


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--steps", type=int, default=10)
    args = p.parse_args(argv)
    sys.path.insert(0, os.path.dirname(__file__))
    device, amp = args.device, args.device == "cuda"
    if args.quick:
        model_kw = dict(num_classes=31, widths=(8, 16), blocks=(1, 1), stem="small", stem_stride=2)
        inputs = make_inputs(8, (64, 48), 1, 32, device)
    else:
        model_kw = dict(num_classes=31)
        inputs = make_inputs(args.batch, (257, 188), 3, 224, device)
    lif = {"tau": 2.0, "v_threshold": 0.5, "surrogate": "atan", "alpha": 2.0, "check_inputs": False}
    rows = [("lif", lif), ("lif-torch", {**lif, "backend": "torch"}),
            ("spikingjelly.lif", {k: v for k, v in lif.items() if k != "check_inputs"})]  # fmt: skip
    print(f"# training step (fwd + bwd + IEMF + SGD), spiking AV ResNet, T=4, batch {inputs[0].shape[0]}, "
          f"{device}{' ' + torch.cuda.get_device_name() if device == 'cuda' else ''}, amp={amp}")  # fmt: skip
    times = {}
    for name, kw in rows:
        neuron = "lif" if name.startswith("lif") else name
        try:
            model = build(**model_kw, neuron=neuron, neuron_kwargs=kw).to(device)
        except Exception as err:  # a peer that is not installed is reported, not fatal
            print(f"{name:<18} unavailable: {err}")
            continue
        times[name] = time_steps(model, inputs, device, args.steps, amp)
        print(f"{name:<18} {times[name] * 1e3:9.1f} ms/step   {inputs[0].shape[0] / times[name]:7.1f} samples/s")
    if "lif" in times:
        print(
            "speed-up of lif: " + ", ".join(f"vs {k} {v / times['lif']:.2f}x" for k, v in times.items() if k != "lif")
        )
    end_to_end_epoch(device, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
