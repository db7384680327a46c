"""The house: imports point one way, neurons <- encoders <- data <- models <- metrics <- training <- reports <- CLI.

The test reads every module's imports (the ``ast`` of the source, function-local imports and relative imports
included) and fails on an arrow from a lower layer to a higher one, naming the file and the import.
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
    "snn_msi.argtypes": 0,  # command-line argument types: a leaf the CLI and the reports use
    "snn_msi.commands": 0,  # the command registry the CLI and the reports register in: a leaf
    "snn_msi.encoders": 1,
    "snn_msi.data": 2,
    "snn_msi.models": 3,
    "snn_msi.metrics": 4,
    "snn_msi.training": 5,
    "snn_msi.nir": 6,  # exchange format of trained checkpoints, beside the reports
    "snn_msi.reports": 6,
    "snn_msi.cli": 7,  # the command line sits on the reports
    "snn_msi": 0,  # the package itself holds only its version; a new module gets its layer here
}


def layer_of(module: str) -> int | None:
    matches = [k for k in LAYERS if module == k or module.startswith(k + ".")]
    return LAYERS[max(matches, key=len)] if matches else None


def _module_name(path: Path, root: Path) -> str:
    parts = list(path.relative_to(root).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imports(path: Path, root: Path) -> list[tuple[int, str]]:
    tree = ast.parse(path.read_text())
    mod = _module_name(path, root)
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


def upward_arrows(root: Path) -> list[str]:
    """Every import under ``root``'s ``neurons`` and ``snn_msi`` that runs from a lower layer to a higher one."""
    arrows = []
    for path in sorted([*root.glob("neurons/**/*.py"), *root.glob("snn_msi/**/*.py")]):
        name = _module_name(path, root)
        mine = layer_of(name)
        for line, target in _imports(path, root):
            theirs = layer_of(target)
            if theirs is not None and mine is not None and theirs > mine and not target.startswith(name):
                arrows.append(f"{path.relative_to(root)}:{line} imports {target} (layer {theirs} > {mine})")
    return arrows


def test_no_import_runs_back_up():
    arrows = upward_arrows(ROOT)
    assert not arrows, "imports that run back up:\n" + "\n".join(arrows)


def test_the_layer_check_sees_an_upward_arrow(tmp_path):
    assert layer_of("snn_msi.models.avnet") == 3 and layer_of("snn_msi.metrics.monitor") == 4
    assert layer_of("neurons.kernels.cpu") == 0 and layer_of("torch") is None
    assert layer_of("snn_msi.models.avnet") < layer_of("snn_msi.metrics")  # models may not import metrics
    assert layer_of("snn_msi.reports.study") < layer_of("snn_msi.cli")  # the reports may not import the CLI
    assert layer_of("snn_msi.argtypes") < layer_of("snn_msi.reports") and layer_of("snn_msi.commands") == 0


def test_a_report_that_imports_the_cli_is_an_upward_arrow(tmp_path):
    """The arrow the house once had: a report's function-local ``from ..cli import positive_int``."""
    (tmp_path / "snn_msi" / "reports").mkdir(parents=True)
    (tmp_path / "snn_msi" / "__init__.py").write_text("")
    (tmp_path / "snn_msi" / "cli.py").write_text("from .reports import COMMANDS\n")
    (tmp_path / "snn_msi" / "reports" / "__init__.py").write_text("COMMANDS = {}\n")
    (tmp_path / "snn_msi" / "reports" / "study.py").write_text(
        "def _setup(q):\n    from ..cli import positive_int\n\n    q.add_argument('--seeds', type=positive_int)\n"
    )
    assert upward_arrows(tmp_path) == [
        "snn_msi/reports/study.py:2 imports snn_msi.cli (layer 7 > 6)",
        "snn_msi/reports/study.py:2 imports snn_msi.cli.positive_int (layer 7 > 6)",
    ]
