"""Training-step time of the paper's spiking AV network (two spiking ResNet-18s, T = 4, concat fusion, IEMF)
with different neuron implementations, against the same network with ReLU (the ANN twin: the floor for what
neurons can cost), in one run; and one end-to-end epoch of the trainer on a synthetic Kinetics-Sounds tree.

    python benchmarks/bench_train.py --device cuda            # paper shapes: audio 1x257x188, 3 frames 224 px
    python benchmarks/bench_train.py --quick                  # a small network on CPU
    python benchmarks/bench_train.py --quick --rows relu lif --dtype float32 --no-epoch   # just the ratio

Rows: ``relu`` (``neuron="relu"``: the same architecture without spiking neurons), ``lif`` (our LIF, backend
auto: Triton on CUDA / C++ on CPU), ``lif-torch`` (our per-step PyTorch reference), ``spikingjelly.lif``
(SpikingJelly's LIFNode through the registry adapter); with ``--compile`` also ``relu+compile`` and
``lif+compile`` (``torch.compile(model, fullgraph=True)``; ``--compile-mode reduce-overhead`` on CUDA captures
the step in CUDA graphs). Same architecture, same inputs, SGD + IEMF policy. Each ``--dtype``: ``float32``, or
``bfloat16`` autocast (CUDA or CPU).

Timing: the rows are interleaved, ``--rounds`` rounds of ``--steps`` steps each (after warm-up steps), so load
from other processes hits every row alike; a row's time is the median of its steps, and ``LIF/ReLU`` is the
median over rounds of the per-round ratio of medians.
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
from snn_msi.training.config import policies_for  # noqa: E402
from snn_msi.training.policies import StepContext  # noqa: E402
from snn_msi.training.policies.iemf import IEMF  # noqa: E402

ROWS = ("relu", "lif", "lif-torch", "spikingjelly.lif")


def make_inputs(batch: int, audio_hw, frames: int, image: int, device: str):
    g = torch.Generator().manual_seed(0)
    a = torch.randn(batch, 1, *audio_hw, generator=g).to(device)
    v = torch.randn(batch, frames, 3, image, image, generator=g).to(device)
    y = torch.randint(0, 31, (batch,), generator=g).to(device)
    return a, v, y


class Step:
    """One training step (forward, three CE losses, backward, IEMF, SGD) of one model, as the trainer does it."""

    def __init__(self, model, inputs, device: str, dtype: torch.dtype, compile_mode: str | None = None) -> None:
        self.net, self.inputs, self.device, self.dtype = model, inputs, device, dtype
        self.model = model if compile_mode is None else torch.compile(model, fullgraph=True, mode=compile_mode)
        self.opt = torch.optim.SGD(model.parameters(), lr=5e-3, momentum=0.9, nesterov=True)
        self.policy = IEMF()
        self.groups = model.parameter_groups()
        self.times: list[float] = []

    def one(self) -> None:
        a, v, y = self.inputs
        with torch.autocast(self.device, dtype=torch.bfloat16, enabled=self.dtype == torch.bfloat16):
            out = self.model(a, v)
        losses = {k: F.cross_entropy(getattr(out, k).float(), y) for k in ("fused", "audio", "visual")}
        self.opt.zero_grad(set_to_none=True)
        sum(losses.values()).backward()
        self.policy.before_step(StepContext(self.net, self.groups, out, y, 0, losses))
        self.opt.step()

    def timed(self, steps: int) -> list[float]:
        times = []
        for _ in range(steps):
            if self.device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
            self.one()
            if self.device == "cuda":
                torch.cuda.synchronize()
            times.append(time.perf_counter() - t0)
        self.times += times
        return times


def bench_dtype(args, model_kw, inputs, dtype_name: str) -> dict[str, float]:
    device, dtype = args.device, getattr(torch, dtype_name)
    lif = {"tau": 2.0, "v_threshold": 0.5, "surrogate": "atan", "alpha": 2.0, "check_inputs": False}
    kwargs = {
        "relu": {},
        "lif": lif,
        "lif-torch": {**lif, "backend": "torch"},
        "spikingjelly.lif": {k: v for k, v in lif.items() if k != "check_inputs"},
    }
    names = [r for r in ROWS if r in args.rows]
    plan = [(n, n, None) for n in names]
    if args.compile:
        plan += [(f"{n}+compile", n, args.compile_mode) for n in ("relu", "lif") if n in names]
    steps: dict[str, Step] = {}
    for label, name, mode in plan:
        neuron = "lif" if name.startswith("lif") else name
        torch.manual_seed(0)
        try:
            model = build(**model_kw, neuron=neuron, neuron_args=kwargs[name]).to(device)
            steps[label] = Step(model, inputs, device, dtype, mode)
            t0 = time.perf_counter()
            for _ in range(args.warmup + (2 if mode else 0)):
                steps[label].one()
            if mode:
                print(f"# {label}: compiled + warm-up in {time.perf_counter() - t0:.1f} s")
        except Exception as err:  # a peer that is not installed, or a compile failure, is reported, not fatal
            print(f"{label:<18} unavailable: {type(err).__name__}: {str(err).strip().splitlines()[0][:200]}")
            steps.pop(label, None)
    ratios: dict[str, list[float]] = {}
    for _ in range(args.rounds):
        med = {label: statistics.median(s.timed(args.steps)) for label, s in steps.items()}
        for label in med:
            base = "relu+compile" if label.endswith("+compile") else "relu"
            if base in med and label != base:
                ratios.setdefault(label, []).append(med[label] / med[base])
    batch = inputs[0].shape[0]
    times = {label: statistics.median(s.times) for label, s in steps.items()}
    for label, t in times.items():
        spread = statistics.quantiles(steps[label].times, n=4) if len(steps[label].times) > 3 else (t, t, t)
        print(
            f"{label:<18} {t * 1e3:9.2f} ms/step   {batch / t:8.1f} samples/s   (quartiles {spread[0] * 1e3:.2f}-"
            f"{spread[2] * 1e3:.2f} ms)"
        )
    for label, r in ratios.items():
        base = "relu+compile" if label.endswith("+compile") else "relu"
        name = label.replace("lif", "LIF").replace("relu", "ReLU")
        print(
            f"{name}/{base.replace('relu', 'ReLU')} = {statistics.median(r):.3f}   (per round: "
            + " ".join(f"{x:.2f}" for x in r)
            + ")"
        )
    if "lif" in times and len(times) > 1:
        print(
            "speed-up of lif: " + ", ".join(f"vs {k} {v / times['lif']:.2f}x" for k, v in times.items() if k != "lif")
        )
    if args.profile:
        profile_rows(steps, device)
    return times


# op / kernel name fragments -> category, first match wins (lower case)
CATEGORIES = (
    ("neuron", ("if_family", "iffamily", "clamp_min", "relu", "threshold", "lifnode", "multistep")),
    ("batch_norm", ("batch_norm", "batchnorm", "bn_fw", "bn_bw", "welford")),
    ("conv", ("conv", "cudnn", "gemm", "xmma", "cutlass", "winograd", "mkldnn")),
    ("optimizer", ("sgd", "foreach", "multi_tensor", "optimizer")),
)


def profile_rows(steps: dict, device: str, n: int = 3) -> None:
    """Where a step's time goes, by category (the self time of ops on the CPU, of kernels on CUDA): the
    neuron's share against the ReLU's is what any neuron-side fusion (e.g. batch norm + LIF) could win."""
    from torch.profiler import ProfilerActivity, profile

    acts = [ProfilerActivity.CPU] + ([ProfilerActivity.CUDA] if device == "cuda" else [])
    names = [c for c, _ in CATEGORIES] + ["other"]
    print(f"# profile, ms per step by category ({'CUDA kernel' if device == 'cuda' else 'CPU op self'} time)")
    print(f"{'row':<18} " + " ".join(f"{c:>11}" for c in names) + f" {'total':>9}")
    for label, step in steps.items():
        with profile(activities=acts) as prof:
            for _ in range(n):
                step.one()
            if device == "cuda":
                torch.cuda.synchronize()
        per = dict.fromkeys(names, 0.0)
        for ev in prof.key_averages():
            t = ev.self_device_time_total if device == "cuda" else ev.self_cpu_time_total
            if device == "cuda" and ev.device_type != torch.autograd.DeviceType.CUDA:
                continue
            key = ev.key.lower()
            cat = next((c for c, frags in CATEGORIES if any(f in key for f in frags)), "other")
            per[cat] += t / 1e3 / n
        print(f"{label:<18} " + " ".join(f"{per[c]:>11.2f}" for c in names) + f" {sum(per.values()):>9.2f}")


def end_to_end_epoch(device: str, quick: bool) -> None:
    from bench_data import make_tree

    from snn_msi.data import DataConfig
    from snn_msi.data.kinetics import KineticsSounds
    from snn_msi.training import TrainConfig, Trainer

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ks"
        make_tree(root, 32 if quick else 96)
        kw = dict(image_size=64 if quick else 224)
        sets = tuple(KineticsSounds(root, s, val_fraction=0.25, **kw) for s in ("train", "val", "val"))
        model = {"num_classes": 4} if not quick else {"num_classes": 4, "widths": [8, 16], "blocks": [1, 1]}
        data = DataConfig(num_workers=min(4, os.cpu_count() or 1)).to_dict()
        cfg = TrainConfig.from_dict(
            {
                **TrainConfig().to_dict(),
                "model": model,
                "epochs": 1,
                "batch_size": 16,
                "policies": policies_for("ogm_ge", iemf=True),
                "device": device,
                "out": str(Path(tmp) / "run"),
                "data": data,
            }
        )
        t0 = time.perf_counter()
        result = Trainer(cfg, datasets=sets, progress=False).fit()
        dt = time.perf_counter() - t0
        ok = all((Path(tmp) / "run" / f).is_file() for f in ("last.pt", "best.pt", "metrics.csv"))
        print(
            f"\n# end-to-end: 1 epoch of OGM-GE + IEMF on a synthetic KS tree ({len(sets[0])} train clips), "
            f"{device}, amp={cfg.amp}: {dt:.1f} s, test_acc {result.test.acc:.3f}, "
            f"files written: {ok}"
        )


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda" if torch.cuda.is_available() else "cpu")
    p.add_argument("--quick", action="store_true", help="a small network and inputs (CPU)")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--dtype", nargs="+", default=["float32", "bfloat16"], choices=["float32", "bfloat16"])
    p.add_argument("--rows", nargs="+", default=list(ROWS), choices=list(ROWS))
    p.add_argument("--steps", type=int, default=5, help="timed steps per row per round")
    p.add_argument("--rounds", type=int, default=4)
    p.add_argument("--warmup", type=int, default=2)
    p.add_argument("--compile", action="store_true", help="add torch.compile(fullgraph=True) rows for relu and lif")
    p.add_argument("--compile-mode", default=None, help="torch.compile mode (reduce-overhead: CUDA graphs)")
    p.add_argument(
        "--keep-freed-memory",
        action="store_true",
        help="glibc: keep freed memory in the process (neurons.runtime.keep_freed_memory)",
    )
    p.add_argument("--threads", type=int, default=None, help="torch.set_num_threads (default: PyTorch's choice)")
    p.add_argument("--profile", action="store_true", help="also: each row's step time by category (profiler)")
    p.add_argument("--no-epoch", action="store_true", help="skip the end-to-end epoch")
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    sys.path.insert(0, os.path.dirname(__file__))
    if args.keep_freed_memory:
        from neurons.runtime import keep_freed_memory

        print(f"# keep_freed_memory: {keep_freed_memory()}")
    device = args.device
    channels = dict(audio_channels=1, visual_channels=3)
    if args.quick:
        model_kw = dict(num_classes=31, widths=(8, 16), blocks=(1, 1), stem="small", stem_stride=2, **channels)
        inputs = make_inputs(8, (64, 48), 1, 32, device)
    else:
        model_kw = dict(num_classes=31, **channels)
        inputs = make_inputs(args.batch, (257, 188), 3, 224, device)
    where = torch.cuda.get_device_name() if device == "cuda" else f"{torch.get_num_threads()} threads"
    load = f", load average {os.getloadavg()[0]:.2f}" if hasattr(os, "getloadavg") else ""
    for dtype_name in args.dtype:
        print(
            f"\n# training step (fwd + bwd + IEMF + SGD), spiking AV ResNet, T=4, batch {inputs[0].shape[0]}, "
            f"{device} ({where}), {dtype_name}{' autocast' if dtype_name != 'float32' else ''}, torch "
            f"{torch.__version__}{load}; {args.rounds} rounds x {args.steps} steps per row, interleaved"
        )
        bench_dtype(args, model_kw, inputs, dtype_name)
    if not args.no_epoch:
        end_to_end_epoch(device, args.quick)
    return 0


if __name__ == "__main__":
    sys.exit(main())
