"""The worked examples of CONTRIBUTING.md run as written: a new neuron, surrogate and method, registered in a
fresh process and trained together through the command line."""

import re
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

# the examples live in package files; here they run from a script, so relative imports become absolute
IMPORTS = {
    "from ..base import": "from neurons.base import",
    "from ..catalog import": "from neurons.catalog import",
    "from ...schema import": "from snn_msi.schema import",
    "from . import register_method": "from snn_msi.training.policies import register_method",
    "from .base import": "from snn_msi.training.policies.base import",
}


def _blocks() -> list[str]:
    text = (ROOT / "CONTRIBUTING.md").read_text()
    blocks = re.findall(r"```python\n(.*?)```", text, re.S)
    out = []
    for b in blocks:
        for old, new in IMPORTS.items():
            b = b.replace(old, new)
        out.append(b)
    return out


def test_the_three_examples_register_and_train_together(tmp_path):
    neuron, surrogate, method = _blocks()
    script = "\n".join(
        [
            neuron,
            "import neurons.surrogate as _sg",
            f"exec(compile({surrogate!r}, 'surrogate', 'exec'), _sg.__dict__)",
            method,
            textwrap.dedent(f"""
            import torch, neurons
            from snn_msi.cli import main
            n = neurons.create("qif", surrogate="softsign", step_mode="m")
            s = n(torch.full((3, 1), 2.0))
            assert s.tolist() == [[0.0], [1.0], [0.0]], s  # h = 0.5, then 0.5 + (0.25 + 2) / 4 = 1.06 >= 1
            code = main(["train", "--demo", "--neuron", "qif", "--neuron-arg", "surrogate=softsign",
                         "--method", "grad_scale", "--iemf", "--epochs", "1", "--quiet", "--T", "2",
                         "--set", "data.limit=16", "--set", "model.widths=[4]", "--set", "model.blocks=[1]",
                         "--out", {str(tmp_path / "run")!r}])
            assert code == 0
        """),
        ]
    )
    proc = subprocess.run([sys.executable, "-c", script], cwd=ROOT, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-3000:]
    steps = (tmp_path / "run" / "steps.csv").read_text().splitlines()[0]
    assert "grad_scale/factor" in steps and "iemf/coeff" in steps
