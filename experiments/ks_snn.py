"""The Kinetics-Sounds SNN experiment of the IEMF paper, as a thin script over the library.

    # the paper's setting on a GPU (seed layout or an HDF5 cache made by `snn-msi build-h5`)
    python experiments/ks_snn.py --data-root /data/kinetics_sound --method ogm_ge --iemf --out runs/ks_ogm_iemf

    # the same pipeline on the embedded digits-av data, CPU, a few minutes: vanilla against IEMF over 3 seeds
    python experiments/ks_snn.py --demo

Without --demo the defaults are the paper's (spiking ResNet-18 x 2, LIF tau 2 / v_th 0.5, T = 4, concat
fusion, SGD Nesterov lr 5e-3, 100 epochs, batch 32, lr x0.1 at 70, label smoothing 0.1, unimodal losses with
IEMF only). Every option of `snn-msi train` works here too (--neuron, --neuron-arg, --set, --resume, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_msi.cli import add_train_arguments, main_guard, train_config  # noqa: E402
from snn_msi.data import DataConfig  # noqa: E402
from snn_msi.reports.study import run_many  # noqa: E402
from snn_msi.schema import ConfigError  # noqa: E402
from snn_msi.training import TrainConfig, Trainer, policies_for  # noqa: E402


def parse(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p, demo_flag=False)
    g = p.add_argument_group("the CPU demo")
    g.add_argument("--demo", action="store_true", help="digits-av on CPU: vanilla vs IEMF over --seeds seeds")
    g.add_argument("--seeds", type=int, default=3, help="(--demo) seeds per method")
    g.add_argument("--jobs", "-j", type=int, default=2, help="(--demo) runs in parallel")
    return p.parse_args(argv)


def paper_config(args) -> TrainConfig:
    """The paper's configuration on Kinetics-Sounds (or its HDF5 cache), with the command line on top."""
    root = args.data_root or ""
    dataset = args.dataset or ("h5" if root.endswith((".h5", ".hdf5")) else "kinetics-sounds")
    base = TrainConfig(data=DataConfig(dataset=dataset, root=args.data_root))
    return train_config(args, base=base)


def demo(args) -> int:
    """Vanilla vs IEMF on digits-av, ``--seeds`` seeds each, paired by seed; prints the table of the README."""
    from snn_msi.training import demo_config

    out = Path(args.out or "runs/demo")
    args.out = None  # each run gets its own folder below
    base = train_config(argparse.Namespace(**{**vars(args), "demo": True}), base=demo_config())
    iemf = policies_for(iemf=True)
    methods = {"vanilla": [], "IEMF": iemf}
    configs, keys = [], []
    for name, policies in methods.items():
        for seed in range(args.seeds):
            policies = [*[p for p in base.policies if p["name"] != iemf[0]["name"]], *policies]
            configs.append(base.replace(seed=seed, out=str(out / f"{name}_s{seed}"), policies=policies))
            keys.append((name, seed))
    a_db, v_db = base.data.snr()
    print(f"digits-av ({base.data.preset} preset: audio {a_db:g} dB, image {v_db:g} dB), {len(configs)} runs of "
          f"{base.epochs} epochs, {args.jobs} in parallel; logs and checkpoints in {out}/")  # fmt: skip
    t0 = time.time()
    results = dict(zip(keys, run_many(configs, args.jobs, overwrite=args.overwrite), strict=True))
    rows = []
    for name in methods:
        rs = [results[(name, s)] for s in range(args.seeds)]
        row = {"method": name}
        for key, label in (("acc", "fused"), ("acc_audio", "audio head"), ("acc_visual", "visual head")):
            v = 100 * np.array([getattr(r.test, key) for r in rs])
            row[label] = f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}"
        gain = 100 * np.array([r.test.acc - max(r.test.acc_audio, r.test.acc_visual) for r in rs])
        row["gain"] = f"{gain.mean():+.1f}"
        rows.append(row)
    diffs = [100 * (results[("IEMF", s)].test.acc - results[("vanilla", s)].test.acc) for s in range(args.seeds)]
    print(f"\nTest accuracy (%), mean ± std over {args.seeds} seeds ({time.time() - t0:.0f} s):\n")
    print("| method | fused | audio head | visual head | multisensory gain (pts) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['fused']} | {r['audio head']} | {r['visual head']} | {r['gain']} |")
    print(f"\nIEMF - vanilla, paired by seed: {np.mean(diffs):+.1f} pts (per seed: "
          f"{', '.join(f'{d:+.1f}' for d in diffs)})")  # fmt: skip
    print(f"curves: {out}/IEMF_s0/curves.png; energy: snn-msi energy {out}/IEMF_s0/best.pt")
    return 0


def run(args) -> int:
    if args.demo:
        return demo(args)
    if not args.data_root and not args.config and args.resume is None:
        raise ConfigError("--data-root is required (or --demo, --config, --resume)")
    cfg = paper_config(args)
    mode = "resume" if args.resume is not None else ("overwrite" if args.overwrite else "new")
    print(f"run folder: {cfg.out}", file=sys.stderr)
    result = Trainer(cfg, mode=mode, progress=not args.quiet, loggers=args.logger).fit()
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.to_dict().items()})
    return 0


if __name__ == "__main__":
    sys.exit(main_guard("ks_snn.py", run, parse()))
