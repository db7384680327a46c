"""Run a balancing method with IEMF on top, from the command line and from Python.

A balancing method is a policy that acts between `backward()` and `step()` (`snn-msi methods` lists them); IEMF
scales the fusion layer's gradient by `1 + tanh(1 - ((s_a + s_v) / 2) / s_av)` per batch, so it composes with any
of them: `--method ogm_ge --iemf` is OGM-GE on the encoders plus IEMF on the fusion layer. Each policy logs what
it did to `steps.csv` under its own name (`iemf/coeff`, `ogm_ge/...`). Tiny settings; for real numbers drop
`data.limit` and train 10 epochs (or run `make demo`: 3 seeds of vanilla against IEMF).
"""

import csv
from pathlib import Path

from snn_msi.cli import main
from snn_msi.training import Trainer, demo_config, policies_for

out = Path("runs/tutorials/iemf")
TINY = ["--epochs", "1", "--batch-size", "8", "--set", "data.limit=16", "--quiet", "--overwrite"]

# 1. the command line: OGM-GE + IEMF on the demo (digits-av, audio -10 dB / image 0 dB)
assert main(["train", "--demo", "--method", "ogm_ge", "--iemf", *TINY, "--out", str(out / "cli")]) == 0
with open(out / "cli" / "steps.csv", newline="") as f:
    steps = list(csv.DictReader(f))
coeffs = [float(row["iemf/coeff"]) for row in steps if row.get("iemf/coeff")]
print(f"IEMF coefficient over {len(coeffs)} steps: first {coeffs[0]:.3f}, mean {sum(coeffs) / len(coeffs):.3f}")
print("what the policies logged:", sorted(k for k in steps[0] if "/" in k))

# 2. the same from Python: the config names the methods (`policies_for` builds the list), the trainer runs it
cfg = demo_config(policies=policies_for("ogm_ge", iemf=True), epochs=1, batch_size=8, out=str(out / "python"))
cfg = cfg.replace(data=cfg.data.replace(limit=16))
result = Trainer(cfg, progress=False, mode="overwrite").fit()
t = result.test  # a RunResult: typed fields, no string keys
print(f"test accuracy: fused {t.acc:.3f}, audio head {t.acc_audio:.3f}, visual head {t.acc_visual:.3f}")
