"""The Kinetics-Sounds SNN experiment of the IEMF paper, as a thin script over the library.

    # the paper's setting on a GPU (seed layout or an HDF5 cache made by `snn-msi build-h5`)
    python experiments/ks_snn.py --data-root /data/kinetics_sound --method ogm_ge --iemf --out runs/ks_ogm_iemf

    # the same pipeline on the embedded digits-av data, CPU, a few minutes: vanilla against IEMF over 3 seeds
    python experiments/ks_snn.py --demo

Without --demo the defaults are the paper's (spiking ResNet-18 x 2, LIF tau 2 / v_th 0.5, T = 4, concat
fusion, SGD Nesterov lr 5e-3, 100 epochs, batch 32, lr x0.1 at 70).
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_msi.models.fusion import FUSIONS  # noqa: E402
from snn_msi.study import run_many  # noqa: E402
from snn_msi.training import DataConfig, TrainConfig, Trainer, demo_config  # noqa: E402


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data-root", help="Kinetics-Sounds root (seed layout) or a .h5 cache")
    p.add_argument("--method", default="normal", choices=["normal", "ogm_ge", "mslr", "lfm", "mmpareto"])
    p.add_argument("--iemf", action="store_true", help="add IEMF on top of --method")
    p.add_argument("--neuron", default=None, help="any registry name (default lif)")
    p.add_argument("--T", type=int, default=None)
    p.add_argument("--fusion", choices=sorted(FUSIONS), default=None)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--epochs", type=int, default=None)
    p.add_argument("--out", default=None)
    p.add_argument("--resume", action="store_true")
    p.add_argument("--demo", action="store_true", help="digits-av on CPU: vanilla vs IEMF over --seeds seeds")
    p.add_argument("--seeds", type=int, default=3, help="(--demo) seeds per method")
    p.add_argument("--workers", type=int, default=2, help="(--demo) runs in parallel")
    return p.parse_args(argv)


def _model_overrides(args, model: dict) -> dict:
    if args.neuron:
        model["neuron"] = args.neuron
    if args.T:
        model["T"] = args.T
    if args.fusion:
        model["fusion"] = args.fusion
    return model


def demo(args) -> int:
    out = Path(args.out or "runs/demo")
    base = demo_config()
    model = _model_overrides(args, base.model.to_dict())
    epochs = args.epochs or base.epochs
    methods = {"vanilla": {}, "IEMF": {"iemf": True}}
    configs, keys = [], []
    for name, extra in methods.items():
        for seed in range(args.seeds):
            configs.append(
                demo_config(model=model, epochs=epochs, seed=seed, out=str(out / f"{name}_s{seed}"), **extra)
            )
            keys.append((name, seed))
    print(f"digits-av ({base.data.preset} preset: audio -10 dB, image 0 dB), {len(configs)} runs of {epochs} epochs, "
          f"{args.workers} in parallel; logs and checkpoints in {out}/")  # fmt: skip
    t0 = time.time()
    results = dict(zip(keys, run_many(configs, args.workers), strict=True))
    rows = []
    for name in methods:
        rs = [results[(name, s)] for s in range(args.seeds)]
        row = {"method": name}
        for key, label in (("test_acc", "fused"), ("test_acc_audio", "audio head"), ("test_acc_visual", "visual head")):
            v = 100 * np.array([r[key] for r in rs])
            row[label] = f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}"
        gain = 100 * np.array([r["test_acc"] - max(r["test_acc_audio"], r["test_acc_visual"]) for r in rs])
        row["gain"] = f"{gain.mean():+.1f}"
        rows.append(row)
    diffs = [100 * (results[("IEMF", s)]["test_acc"] - results[("vanilla", s)]["test_acc"]) for s in range(args.seeds)]
    print(f"\nTest accuracy (%), mean ± std over {args.seeds} seeds ({time.time() - t0:.0f} s):\n")
    print("| method | fused | audio head | visual head | multisensory gain (pts) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['fused']} | {r['audio head']} | {r['visual head']} | {r['gain']} |")
    print(f"\nIEMF - vanilla, paired by seed: {np.mean(diffs):+.1f} pts (per seed: "
          f"{', '.join(f'{d:+.1f}' for d in diffs)})")  # fmt: skip
    summary = {"rows": rows, "iemf_minus_vanilla": diffs}
    (out / "demo_results.json").write_text(json.dumps(summary, indent=1))
    print(f"curves: {out}/IEMF_s0/curves.png; energy: snn-msi energy {out}/IEMF_s0/best.pt")
    return 0


def main(argv=None) -> int:
    args = parse(argv)
    if args.demo:
        return demo(args)
    if not args.data_root:
        print("ks_snn.py: error: --data-root is required (or --demo)", file=sys.stderr)
        return 2
    cfg = TrainConfig()  # the paper's configuration
    d = cfg.to_dict()
    dataset = "h5" if args.data_root.endswith((".h5", ".hdf5")) else "kinetics-sounds"
    d["data"] = DataConfig(dataset=dataset, root=args.data_root, num_workers=8).__dict__
    d["model"] = _model_overrides(args, d["model"])
    d.update(method=args.method, iemf=args.iemf, seed=args.seed,
             out=args.out or f"runs/ks_{args.method}{'_iemf' if args.iemf else ''}_s{args.seed}")  # fmt: skip
    if args.epochs:
        d["epochs"] = args.epochs
    result = Trainer(TrainConfig.from_dict(d), resume=args.resume).fit()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
