"""Samples per second of the jpg + wav path and the HDF5 cache, for 0, 1, 2, ... DataLoader workers, in one run.

    python benchmarks/bench_data.py --quick          # 48 clips, 3 rounds: about a minute on 2 cores
    python benchmarks/bench_data.py --workers 0 1 2 4 8 --device cuda

Makes a synthetic Kinetics-Sounds tree shaped like the real one (10 s clips: a 10 s wav at 22,050 Hz and 10 jpg
frames of 640 x 360, YouTube's 360p), builds the HDF5 cache from it (frames stored at 256 x 256), then reads every
training sample through the trainer's DataLoader setup (``snn_msi.data.loader``: workers hand over compact samples,
the batch transform finishes them on ``--device``; paper transforms: 3 random frames, random resized crop to 224,
spectrogram of the first 3 s; batch 16). Each rate covers an epoch read after a warm-up epoch, from persistent
workers, so worker start-up (listed apart) is not in it; the rows run interleaved, ``--rounds`` times, and the
median is shown, so load on a shared machine hits every row alike.

Also printed: the bytes per sample that cross from a worker to the main process (and what the float samples of
before took), the cost of the batch transform on the device, the HDF5 layouts measured for the read pattern (K
random frames of a clip, cropped), and how many workers keep up with a GPU step rate (``--gpu-rate``; default the
paper network on one H200, bf16, batch 16: 61.7 ms a step = 259 samples/s, measured 2026-11-27).
"""

from __future__ import annotations

import argparse
import datetime
import math
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

import h5py
import numpy as np
import soundfile as sf
import torch
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from torch.utils.data import DataLoader  # noqa: E402

from snn_msi.data import KineticsSounds  # noqa: E402
from snn_msi.data.h5 import H5Dataset, build_h5  # noqa: E402
from snn_msi.data.loader import Packed, PackedBatch, collate, loader_options, to_device  # noqa: E402

H200_RATE = 16 / 0.0617  # samples/s: the paper network's step on one H200 (bf16, batch 16), 2026-11-27


def make_tree(root: Path, clips: int, classes: int = 4) -> None:
    rng = np.random.default_rng(0)
    lines = []
    for i in range(clips):
        label = i % classes
        name, clip = f"class{label}", f"clip{i:04d}"
        frames = root / "train" / "video" / name / clip
        frames.mkdir(parents=True, exist_ok=True)
        base = rng.integers(0, 255, (360, 640, 3), dtype=np.uint8)
        for k in range(10):
            Image.fromarray(np.roll(base, 8 * k, axis=1)).save(frames / f"frame_{k}.jpg", quality=85)
        wav = root / "train" / "audio" / name / f"{clip}.wav"
        wav.parent.mkdir(parents=True, exist_ok=True)
        sf.write(wav, (0.2 * rng.standard_normal(22050 * 10)).astype(np.float32), 22050)
        lines.append(f"{clip},10,{label}")
    (root / "my_train.txt").write_text("\n".join(lines) + "\n")


class Row:
    """One path at one worker count: a persistent loader, read epoch by epoch, each batch finished on ``device``
    (``rates``) or, in the next epoch, only received from the workers (``raw``: what a GPU run asks of the CPU)."""

    def __init__(self, name: str, ds, workers: int, batch: int, device: torch.device) -> None:
        self.name, self.workers, self.device, self.rates, self.raw = name, workers, device, [], []
        self.cpu = []  # (main, workers) CPU seconds per sample of the finished epochs
        opts = loader_options(workers, device, persistent=True)
        self.loader = DataLoader(Packed(ds), batch_size=batch, shuffle=True, collate_fn=collate, **opts)
        t0 = time.perf_counter()
        self.epoch(finish=True)  # warm-up: starts the workers, opens the files
        self.start = time.perf_counter() - t0

    def epoch(self, finish: bool) -> float:
        t0, c0, w0, n = time.perf_counter(), time.process_time(), self.worker_cpu(), 0
        for item in self.loader:
            n += len(to_device(item, self.device).label if finish else item.labels)
        if self.device.type == "cuda":
            torch.cuda.synchronize()
        self.last_cpu = ((time.process_time() - c0) / n, (self.worker_cpu() - w0) / n)
        return n / (time.perf_counter() - t0)

    def worker_cpu(self) -> float:
        """CPU seconds the loader's (persistent) worker processes have used so far (Linux; 0 elsewhere)."""
        total = 0.0
        for w in getattr(getattr(self.loader, "_iterator", None), "_workers", []):
            try:
                fields = Path(f"/proc/{w.pid}/stat").read_text().rsplit(")", 1)[1].split()
                total += (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            except (OSError, ValueError, IndexError):
                pass
        return total

    def measure(self) -> None:
        self.rates.append(self.epoch(finish=True))
        self.cpu.append(self.last_cpu)
        self.raw.append(self.epoch(finish=False))

    @property
    def rate(self) -> float:
        return statistics.median(self.rates)

    @property
    def raw_rate(self) -> float:
        return statistics.median(self.raw)


def finish_rate(ds, batch: int, device: torch.device, n: int = 3) -> float:
    """Samples/s of the batch transform alone on ``device`` (collated batches made beforehand)."""
    loader = DataLoader(Packed(ds), batch_size=batch, collate_fn=collate)
    batches = [b for _, b in zip(range(n), loader, strict=False)]
    to_device(batches[0], device)
    t0 = time.perf_counter()
    count = sum(len(to_device(b, device).label) for b in batches)
    if device.type == "cuda":
        torch.cuda.synchronize()
    return count / (time.perf_counter() - t0)


def layouts(frames: np.ndarray, folder: Path, reads: int = 60) -> list[tuple[str, str, float, float]]:
    """``(content, layout, MiB on disk, ms per training read)`` of frames ``[N, K, C, H, W]`` stored in several
    HDF5 layouts: the read is 3 random frames of a random clip, each cropped at random (as ``H5Dataset``)."""
    n, k, c, h, w = frames.shape
    smooth = np.empty_like(frames)
    yy, xx = np.mgrid[0:h, 0:w]
    for i in range(n):  # smooth pictures (compressible like real frames): gradients and a little noise
        for j in range(k):
            base = (96 + 80 * np.sin(xx / (20 + i) + j / 3.0) * np.cos(yy / (30 + j)))[None]
            smooth[i, j] = np.clip(base + 8 * np.random.default_rng(i * k + j).standard_normal((c, h, w)), 0, 255)
    variants = {
        "chunk per frame": dict(chunks=(1, 1, c, h, w)),
        "chunk per frame, lzf": dict(chunks=(1, 1, c, h, w), compression="lzf"),
        "chunk per frame, gzip 1": dict(chunks=(1, 1, c, h, w), compression="gzip", compression_opts=1),
        "chunk per clip": dict(chunks=(1, k, c, h, w)),
    }
    rng = np.random.default_rng(0)
    plan = [
        (
            int(rng.integers(n)),
            sorted(rng.choice(k, 3, replace=False).tolist()),
            int(rng.integers(0, h // 3)),
            int(rng.integers(0, w // 3)),
        )
        for _ in range(reads)
    ]
    out = []
    for content, data in (("noise", frames), ("smooth", smooth)):
        for name, kw in variants.items():
            path = folder / f"layout_{content}_{len(out)}.h5"
            with h5py.File(path, "w") as f:
                f.create_dataset("frames", data=data, **kw)
            with h5py.File(path, "r") as f:
                ds = f["frames"]
                t0 = time.perf_counter()
                for i, idx, top, left in plan:
                    buf = np.empty((3, c, 2 * h // 3, 2 * w // 3), np.uint8)
                    for m, j in enumerate(idx):
                        ds.read_direct(buf, np.s_[i, j, :, top : top + 2 * h // 3, left : left + 2 * w // 3], np.s_[m])
                ms = (time.perf_counter() - t0) / reads * 1e3
            out.append((content, name, path.stat().st_size / 2**20, ms))
            path.unlink()
    return out


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="48 clips (default --clips 256)")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 1, 2], help="worker counts (default 0 1 2)")
    p.add_argument("--rounds", type=int, default=3, help="interleaved rounds; the median is shown")
    p.add_argument("--batch", type=int, default=16)
    p.add_argument("--image-size", type=int, default=224)
    p.add_argument("--device", default="cpu", help="where the batch transform runs (cpu, cuda)")
    p.add_argument(
        "--gpu-rate",
        type=float,
        default=H200_RATE,
        help="samples/s of a GPU training step to compare with (default: the paper network on one H200, "
        "bf16, batch 16, 2026-11-27: %(default).0f)",
    )
    p.add_argument("--threads", type=int, help="intra-op threads of the main process (default: PyTorch's)")
    p.add_argument("--no-layouts", action="store_true", help="skip the HDF5 layout measurement")
    args = p.parse_args(argv)
    if any(w < 0 for w in args.workers) or args.rounds < 1 or args.batch < 1:
        p.error("--workers must be >= 0, --rounds and --batch >= 1")
    if args.threads is not None:
        if args.threads < 1:
            p.error("--threads must be >= 1")
        torch.set_num_threads(args.threads)
    device = torch.device(args.device)
    clips = 48 if args.quick else args.clips
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
    print(
        f"# {datetime.date.today()}, {platform.processor() or platform.machine()}, {cores} cores, PyTorch "
        f"{torch.__version__}, h5py {h5py.__version__}; load average at start {load[0]:.1f} {load[1]:.1f} "
        f"{load[2]:.1f}; batch transform on {device}, main process {torch.get_num_threads()} thread(s)"
    )
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ks"
        t0 = time.perf_counter()
        make_tree(root, clips)
        print(
            f"# synthetic KS tree: {clips} clips (10 jpg 640x360 + 10 s wav each), made in "
            f"{time.perf_counter() - t0:.1f} s"
        )
        kw = dict(val_fraction=0.0, image_size=args.image_size)
        t0 = time.perf_counter()
        path = build_h5(
            {"train": KineticsSounds(root, "train", train=False, **kw)},
            Path(tmp) / "ks.h5",
            frame_size=256,
            progress=False,
        )
        print(f"# build-h5: {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 2**20:.0f} MiB")
        sets = {
            "jpg+wav": KineticsSounds(root, "train", **kw),
            "hdf5": H5Dataset(path, "train", train=True, image_size=args.image_size, in_memory=False),
            "hdf5-mem": H5Dataset(path, "train", train=True, image_size=args.image_size, in_memory=True),
        }

        print("\n# bytes per sample from a worker to the main process (train transforms)")
        for name, ds in sets.items():
            b = next(iter(DataLoader(Packed(ds), batch_size=args.batch, collate_fn=collate)))
            assert isinstance(b, PackedBatch)
            s = ds[0]
            before = s.audio.numel() * 4 + s.frames.numel() * 4
            print(
                f"{name:<9} {b.data.numel() / len(b.labels) / 1e6:6.2f} MB (uint8 crops, audio {b.audio.dtype}); "
                f"float samples of before: {before / 1e6:.2f} MB"
            )
        rates = ", ".join(f"{name} {finish_rate(ds, args.batch, device):.0f}" for name, ds in sets.items())
        print(f"# batch transform alone on {device} ({torch.get_num_threads()} thread(s)), samples/s: {rates}")

        rows = [Row(name, ds, w, args.batch, device) for name, ds in sets.items() for w in args.workers]
        for _ in range(args.rounds):
            for row in rows:
                row.measure()
        load = os.getloadavg() if hasattr(os, "getloadavg") else (float("nan"),) * 3
        print(
            f"\n# samples/s to a finished batch on {device}: median of {args.rounds} interleaved rounds of one "
            f"epoch ({clips} samples) each; load average at end {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}"
        )
        print(f"{'':<17} {'finished on ' + device.type:>21}   {'workers only':>21}   {'CPU ms/sample':>16}")
        print(
            f"{'path':<9} {'workers':>7} {'samples/s':>10} {'per worker':>10}   {'samples/s':>10} {'per worker':>10}"
            f"   {'main':>7} {'workers':>8}   {'start':>6}   rounds (finished)"
        )
        for r in rows:
            per = f"{r.rate / r.workers:10.1f}" if r.workers else f"{'':>10}"
            raw = f"{r.raw_rate / r.workers:10.1f}" if r.workers else f"{'':>10}"
            main_ms, worker_ms = (1e3 * statistics.median(c[i] for c in r.cpu) for i in (0, 1))
            rounds = " ".join(f"{x:.0f}" for x in r.rates)
            print(
                f"{r.name:<9} {r.workers:>7} {r.rate:>10.1f} {per}   {r.raw_rate:>10.1f} {raw}   {main_ms:7.2f} "
                f"{worker_ms:8.2f}   {r.start:5.2f}s   {rounds}"
            )
        by = {(r.name, r.workers): r.rate for r in rows}
        w = max(args.workers)
        print()
        if 0 in args.workers and w > 0:
            checks = [
                (("hdf5", w), ("hdf5", 0), 1.0),
                (("hdf5", w), ("jpg+wav", w), 5.0),
                (("hdf5-mem", w), ("jpg+wav", w), 5.0),
                (("jpg+wav", w), ("jpg+wav", 0), 1.5),
            ]
            for a, b, target in checks:
                ratio, verdict = by[a] / by[b], "met" if by[a] / by[b] >= target else "not met"
                text = f"{a[0]} {a[1]} workers / {b[0]} {b[1]} workers"
                print(f"{text:<40} {ratio:5.2f}x   (issue 28 target >= {target}x: {verdict})")
        print(f"\n# GPU step rate to feed: {args.gpu_rate:.0f} samples/s (the batch transform runs on the GPU there)")
        for name in sets:
            with_workers = [r for r in rows if r.name == name and r.workers > 0]
            if with_workers:
                r = max(with_workers, key=lambda r: r.workers)
                per, cpu = r.raw_rate / r.workers, statistics.median(c[1] for c in r.cpu)
                print(
                    f"{name:<9} {per:7.1f} samples/s per worker here (workers only, {r.workers} worker(s)) -> "
                    f"{math.ceil(args.gpu_rate / per)} workers; {1e3 * cpu:.2f} CPU ms a sample in the workers -> "
                    f"{args.gpu_rate * cpu:.1f} free cores' worth per GPU"
                )

        if not args.no_layouts:
            with h5py.File(path, "r") as f:
                frames = f["train"]["frames"][: min(16, clips)]
            print("\n# HDF5 layouts for the read pattern (3 random frames of a clip, 2/3 x 2/3 crops; 60 reads)")
            print(f"{'content':<8} {'layout':<24} {'MiB':>6} {'ms/read':>8}")
            for content, name, mib, ms in layouts(frames, Path(tmp)):
                print(f"{content:<8} {name:<24} {mib:6.1f} {ms:8.2f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
