"""The house: imports point one way, neurons <- encoders <- data <- models <- metrics <- training <- reports/CLI.

The test reads every module's imports (the ``ast`` of the source, relative imports resolved) and fails on an
arrow from a lower layer to a higher one, naming the file and the import.
"""

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]

#: the layer of each package or module (the longest matching prefix wins); a module may import its own layer
#: and the ones below
LAYERS = {
    "neurons": 0,
    "snn_msi.schema": 0,  # typed configs: a leaf every layer uses
    "snn_msi.plots": 0,  # draws the numbers it is given: a leaf
    "snn_msi.files": 0,  # atomic writes with one-line errors: a leaf
    "snn_msi.encoders": 1,
    "snn_msi.data": 2,
    "snn_msi.models": 3,
    "snn_msi.metrics": 4,
    "snn_msi.training": 5,
    "snn_msi.reports": 6,
    "snn_msi.cli": 6,
    "snn_msi": 6,
}


def layer_of(module: str) -> int | None:
    matches = [k for k in LAYERS if module == k or module.startswith(k + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    mod = _module_name(path)
    package = mod if path.name == "__init__.py" else mod.rsplit(".", 1)[0]
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            found.append((node.lineno, target))
            found += [(node.lineno, f"{target}.{a.name}") for a in node.names]  # `from . import models`
    return found


def test_no_import_runs_back_up():
    arrows = []
    for path in sorted([*ROOT.glob("neurons/**/*.py"), *ROOT.glob("snn_msi/**/*.py")]):
        mine = layer_of(_module_name(path))
        for line, target in _imports(path):
            theirs = layer_of(target)
            if theirs is not None and mine is not None and theirs > mine and not target.startswith(_module_name(path)):
                arrows.append(f"{path.relative_to(ROOT)}:{line} imports {target} (layer {theirs} > {mine})")
    assert not arrows, "imports that run back up:\n" + "\n".join(arrows)


def test_the_layer_check_sees_an_upward_arrow(tmp_path):
    assert layer_of("snn_msi.models.avnet") == 3 and layer_of("snn_msi.metrics.monitor") == 4
    assert layer_of("neurons.kernels.cpu") == 0 and layer_of("torch") is None
    assert layer_of("snn_msi.models.avnet") < layer_of("snn_msi.metrics")  # models may not import metrics
