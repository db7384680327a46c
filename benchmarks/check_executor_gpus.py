"""On a GPU machine: parallel runs of the local executor land on distinct GPUs (worker i on cuda:i mod n).

    python benchmarks/check_executor_gpus.py            # one tiny 1-epoch run per visible GPU (at least 2), at once

Prints each run's device as its ``config.yaml`` saved it; exit 1 when two parallel runs shared a GPU although
there were enough for each (or when there is no GPU).
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from snn_msi.reports.runs import RunOptions, run_many, visible_gpus  # noqa: E402
from snn_msi.training import demo_config  # noqa: E402
from snn_msi.training.rundir import RunDir  # noqa: E402


def main() -> int:
    gpus = visible_gpus()
    if not gpus:
        print("no GPU visible: nothing to check")
        return 1
    jobs = max(2, len(gpus))
    out = Path("runs/check_executor_gpus")
    shutil.rmtree(out, ignore_errors=True)
    base = demo_config(epochs=1, data={**demo_config().data.to_dict(), "limit": 64})
    configs = [base.replace(seed=s, out=str(out / f"s{s}")) for s in range(jobs)]
    run_many(configs, RunOptions(seeds=list(range(jobs)), out=str(out), jobs=jobs, progress=False))
    devices = [RunDir(c.out).saved_config()["device"] for c in configs]
    print(f"{len(gpus)} GPU(s), {jobs} runs at once: {devices}")
    ok = len(set(devices)) == min(jobs, len(gpus))
    print("distinct devices: OK" if ok else "FAILED: parallel runs shared a GPU")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
