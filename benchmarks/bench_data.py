"""Samples per second of the jpg + wav path against the HDF5 cache path, in one run.

    python benchmarks/bench_data.py --quick          # 48 clips, a few seconds

Makes a synthetic Kinetics-Sounds tree shaped like the real one (10 s clips: a 10 s wav at 22,050 Hz and 10 jpg
frames of 640 x 360, YouTube's 360p), builds the HDF5 cache from it (frames stored at 256 x 256), then reads
every training sample through a DataLoader from each (paper transforms: 3 frames, random resized crop to 224,
spectrogram of the first 3 s).
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

sys.path.insert(0, os.path.join(os.path.dirname(__file__), ".."))

from torch.utils.data import DataLoader  # noqa: E402

from snn_msi.data import KineticsSounds  # noqa: E402
from snn_msi.data.h5 import H5Dataset, build_h5  # noqa: E402


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


def throughput(ds, workers: int, batch: int) -> float:
    loader = DataLoader(ds, batch_size=batch, num_workers=workers, shuffle=True)
    t0 = time.perf_counter()
    n = sum(len(b.label) for b in loader)
    return n / (time.perf_counter() - t0)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--clips", type=int, default=256)
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--image-size", type=int, default=224)
    args = p.parse_args(argv)
    clips = 48 if args.quick else args.clips
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ks"
        t0 = time.perf_counter()
        make_tree(root, clips)
        made = time.perf_counter() - t0
        print(f"# synthetic KS tree: {clips} clips (10 jpg 640x360 + 10 s wav each), made in {made:.1f} s")
        kw = dict(val_fraction=0.0, image_size=args.image_size)
        files = KineticsSounds(root, "train", **kw)
        t0 = time.perf_counter()
        path = build_h5({"train": KineticsSounds(root, "train", train=False, **kw)}, Path(tmp) / "ks.h5",
                        frame_size=256, progress=False)  # fmt: skip
        print(f"# build-h5: {time.perf_counter() - t0:.1f} s, {path.stat().st_size / 2**20:.0f} MiB")
        h5 = H5Dataset(path, "train", train=True, image_size=args.image_size)
        print(f"{'path':<10} {'workers':>7} {'samples/s':>10}")
        for workers in sorted({0, args.workers}):
            a = throughput(files, workers, 16)
            b = throughput(h5, workers, 16)
            print(f"{'jpg+wav':<10} {workers:>7} {a:>10.1f}")
            print(f"{'hdf5':<10} {workers:>7} {b:>10.1f}   ratio hdf5 / files = {b / a:.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
