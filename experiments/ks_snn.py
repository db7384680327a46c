"""The Kinetics-Sounds SNN experiment of the IEMF paper, as a thin script over the library.

    # the paper's setting on a GPU (seed layout or an HDF5 cache made by `snn-msi build-h5`)
    python experiments/ks_snn.py --data-root /data/kinetics_sound --method ogm_ge --iemf --out runs/ks_ogm_iemf

    # the same pipeline on the embedded digits-av data, CPU, a few minutes: vanilla against IEMF over 3 seeds
    python experiments/ks_snn.py --demo

Without --demo the recipe is the paper's, shipped as `--model ks-paper` (snn_msi/models/recipes/ks-paper.yaml: spiking
ResNet-18 x 2, LIF tau 2 / v_th 0.5, T = 4, concat fusion, SGD Nesterov lr 5e-3, 100 epochs, batch 32, lr x0.1 at
70, label smoothing 0.1, unimodal losses with IEMF only); the studies take the same recipe (`snn-msi study methods
--model ks-paper --data-root ...`). Every option of `snn-msi train` works here too (--neuron, --neuron-arg, --set,
--resume, ...); --demo runs its seeds on an executor as the studies do (--seed-list, --executor ray, ...).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_msi.cli import add_train_arguments, main_guard, train_config  # noqa: E402
from snn_msi.reports.runs import (  # noqa: E402
    add_executor_arguments,
    add_seed_arguments,
    run_many,
    run_options,
)
from snn_msi.schema import ConfigError  # noqa: E402
from snn_msi.training import TrainConfig, Trainer, policies_for, recipe_config  # noqa: E402

#: options only the demo reads (the paper run is one run, seeded by --seed, in this process)
DEMO_ONLY = (
    "seeds",
    "seed_start",
    "seed_list",
    "executor",
    "jobs",
    "address",
    "cpus_per_run",
    "gpus_per_run",
    "max_retries",
)


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    add_train_arguments(p, demo_flag=False)
    g = p.add_argument_group("the CPU demo")
    g.add_argument("--demo", action="store_true", help="digits-av on CPU: vanilla vs IEMF over --seeds seeds")
    add_seed_arguments(g, seeds=3)
    add_executor_arguments(p.add_argument_group("(--demo) where the runs run"), jobs=2)
    return p


def parse(argv=None) -> argparse.Namespace:
    return parser().parse_args(argv)


def paper_config(args) -> TrainConfig:
    """The paper's recipe (``ks-paper``) on Kinetics-Sounds (or its HDF5 cache), with the command line on top."""
    root = args.data_root or ""
    base = recipe_config("ks-paper")
    if root.endswith((".h5", ".hdf5")) and not args.dataset:
        base = base.replace(data={**base.data.to_dict(), "dataset": "h5"})
    return train_config(args, base=base)


def demo(args) -> int:
    """Vanilla vs IEMF on digits-av, ``--seeds`` seeds each, paired by seed; prints the table of the README."""
    from snn_msi.training import demo_config

    out = Path(args.out or "runs/demo")
    opts = run_options(argparse.Namespace(**{**vars(args), "out": str(out)}))
    args.out = None  # each run gets its own folder below
    base = train_config(argparse.Namespace(**{**vars(args), "demo": True}), base=demo_config())
    iemf = policies_for(iemf=True)
    methods = {"vanilla": [], "IEMF": iemf}
    configs, keys = [], []
    for name, policies in methods.items():
        for seed in opts.seeds:
            policies = [*[p for p in base.policies if p["name"] != iemf[0]["name"]], *policies]
            configs.append(base.replace(seed=seed, out=str(out / f"{name}_s{seed}"), policies=policies))
            keys.append((name, seed))
    a_db, v_db = base.data.snr()
    print(
        f"digits-av ({base.data.preset} preset: audio {a_db:g} dB, image {v_db:g} dB), {len(configs)} runs of "
        f"{base.epochs} epochs ({opts.executor} executor); logs and checkpoints in {out}/"
    )
    t0 = time.time()
    results = dict(zip(keys, run_many(configs, opts), strict=True))
    rows = []
    for name in methods:
        rs = [results[(name, s)] for s in opts.seeds]
        row = {"method": name}
        for key, label in (("acc", "fused"), ("acc_audio", "audio head"), ("acc_visual", "visual head")):
            v = 100 * np.array([getattr(r.test, key) for r in rs])
            row[label] = f"{v.mean():.1f} ± {v.std(ddof=1) if len(v) > 1 else 0:.1f}"
        gain = 100 * np.array([r.test.acc - max(r.test.acc_audio, r.test.acc_visual) for r in rs])
        row["gain"] = f"{gain.mean():+.1f}"
        rows.append(row)
    diffs = [100 * (results[("IEMF", s)].test.acc - results[("vanilla", s)].test.acc) for s in opts.seeds]
    print(f"\nTest accuracy (%), mean ± std over {len(opts.seeds)} seeds ({time.time() - t0:.0f} s):\n")
    print("| method | fused | audio head | visual head | multisensory gain (pts) |")
    print("|---|---|---|---|---|")
    for r in rows:
        print(f"| {r['method']} | {r['fused']} | {r['audio head']} | {r['visual head']} | {r['gain']} |")
    print(
        f"\nIEMF - vanilla, paired by seed: {np.mean(diffs):+.1f} pts (per seed: "
        f"{', '.join(f'{d:+.1f}' for d in diffs)})"
    )
    first = f"{out}/IEMF_s{opts.seeds[0]}"
    print(f"curves: {first}/curves.png; energy: snn-msi energy {first}/best.pt")
    return 0


def run(args) -> int:
    if args.demo:
        return demo(args)
    defaults = parser()
    given = [d for d in DEMO_ONLY if getattr(args, d) != defaults.get_default(d)]
    if given:
        names = ", ".join("--" + d.replace("_", "-") for d in given)
        raise ConfigError(f"{names}: for --demo (the paper run is one run, seeded by --seed)")
    if not args.data_root and not args.config and not args.model and args.resume is None:
        raise ConfigError("--data-root is required (or --demo, --config, --model, --resume)")
    cfg = paper_config(args)
    mode = "resume" if args.resume is not None else ("overwrite" if args.overwrite else "new")
    print(f"run folder: {cfg.out}", file=sys.stderr)
    result = Trainer(cfg, mode=mode, progress=not args.quiet, loggers=args.logger).fit()
    print({k: round(v, 4) if isinstance(v, float) else v for k, v in result.to_dict().items()})
    return 0


if __name__ == "__main__":
    sys.exit(main_guard("ks_snn.py", run, parse()))
