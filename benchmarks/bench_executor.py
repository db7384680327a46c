"""The same 8 small runs through the local executor and through Ray; wall times and their ratio.

    python benchmarks/bench_executor.py                 # 8 runs of the demo network, 2 epochs, 2 at a time
    python benchmarks/bench_executor.py --runs 8 --epochs 3 --limit 512 --jobs 2

Each executor trains the runs from scratch in its own folder (under --out, removed first); Ray's time includes
starting a local Ray (``ray.init``) and its workers importing torch, as a user's first ``--executor ray`` command
pays it. The per-run metrics of the two are compared too (they should be equal bit for bit: one thread per run
both ways).
"""

from __future__ import annotations

import argparse
import json
import shutil
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_msi.reports.runs import RunOptions, run_many  # noqa: E402
from snn_msi.training import demo_config  # noqa: E402


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--runs", type=int, default=8)
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--limit", type=int, default=512, help="samples per split of digits-av")
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--out", default="runs/bench_executor")
    args = p.parse_args()
    out = Path(args.out)
    shutil.rmtree(out, ignore_errors=True)
    base = demo_config(epochs=args.epochs, data={**demo_config().data.to_dict(), "limit": args.limit})
    walls, results = {}, {}
    for executor in ("local", "ray"):
        configs = [base.replace(seed=s, out=str(out / executor / f"s{s}")) for s in range(args.runs)]
        opts = RunOptions(
            seeds=list(range(args.runs)), out=str(out / executor), jobs=args.jobs, executor=executor, progress=False
        )
        t0 = time.perf_counter()
        results[executor] = run_many(configs, opts)
        walls[executor] = time.perf_counter() - t0
    same = results["local"] == results["ray"]
    print(
        json.dumps(
            {
                "runs": args.runs,
                "epochs": args.epochs,
                "limit": args.limit,
                "jobs": args.jobs,
                "local_s": round(walls["local"], 1),
                "ray_s": round(walls["ray"], 1),
                "ray_over_local": round(walls["ray"] / walls["local"], 3),
                "identical_metrics": same,
            }
        )
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
