"""The documentation site builds with `mkdocs build --strict` (a warning fails), with an API page for every public
module, the tutorials' code in their pages, and a nav that survives pages that do not exist yet."""

import html
import importlib.util
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]

pytest.importorskip("mkdocs", reason="pip install 'snn-msi[docs]'")
pytest.importorskip("mkdocstrings_handlers.python", reason="pip install 'snn-msi[docs]'")


def _hooks():
    spec = importlib.util.spec_from_file_location("docs_hooks", ROOT / "docs" / "hooks.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    out = tmp_path_factory.mktemp("site")
    env = {**os.environ, "NO_MKDOCS_2_WARNING": "1"}
    # no --quiet: mkdocs 1.6 stops counting warnings for --strict when it is quiet
    proc = subprocess.run([sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)], cwd=ROOT,
                          env=env, capture_output=True, text=True, timeout=600)  # fmt: skip
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0 and "WARNING" not in log, log[-4000:]
    return out


def test_every_public_module_has_an_api_page(site):
    modules = _hooks().public_modules()
    assert {"neurons", "neurons.models.lif", "snn_msi.nir", "snn_msi.models.avnet", "snn_msi.cli"} <= set(modules)
    for module in modules:
        page = site / "api" / module / "index.html"
        assert page.is_file(), module
        assert f'id="{module}"' in page.read_text(encoding="utf-8"), f"{module}: no rendered docstring"


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_tutorial_pages_show_the_code_they_run(site):
    pages = {p.parent.name: _text(p) for p in (site / "tutorials").glob("*/index.html")}
    for script in sorted((ROOT / "tutorials").glob("*.py")):
        lines = [line.strip() for line in script.read_text().splitlines() if line.strip()]
        assert any(all(line in text for line in lines) for text in pages.values()), f"no page shows {script.name}"


def test_every_page_in_docs_is_in_the_nav(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for md in sorted((ROOT / "docs").rglob("*.md")):
        rel = md.relative_to(ROOT / "docs").with_suffix("").as_posix()
        url = "." if rel == "index" else (rel[: -len("index")] if rel.endswith("/index") else f"{rel}/")
        assert (site / url / "index.html").is_file(), md
        assert f'href="{url}"' in home, f"{rel} is not in the nav"


def test_nav_drops_missing_pages_and_adds_unlisted_ones(tmp_path):
    hooks = _hooks()
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "extra.md").write_text("# Something extra\n")
    nav = [{"Home": "a.md"}, {"Later": "not_yet.md"}, {"Section": [{"Gone": "gone.md"}]}]
    config = hooks.on_config({"docs_dir": str(tmp_path), "nav": nav})
    titles = [next(iter(item)) for item in config["nav"]]
    assert titles == ["Home", "More", "API reference"]
    assert config["nav"][1]["More"] == [{"Something extra": "extra.md"}]
