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
    proc = subprocess.run(
        [sys.executable, "-m", "mkdocs", "build", "--strict", "--site-dir", str(out)],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )
    log = proc.stderr + proc.stdout
    assert proc.returncode == 0 and "WARNING" not in log, log[-4000:]
    return out


def test_every_public_module_has_an_api_page(site):
    modules = _hooks().public_modules()
    assert {"neurons", "neurons.models.lif", "snn_msi.nir", "snn_msi.models.avnet", "snn_msi.cli"} <= set(modules)
    for module in modules:
        page = site / "api" / f"{module}.html"
        assert page.is_file(), module
        assert f'id="{module}"' in page.read_text(encoding="utf-8"), f"{module}: no rendered docstring"


def _text(page: Path) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", page.read_text(encoding="utf-8")))


def test_tutorial_pages_show_the_code_they_run(site):
    pages = {p.stem: _text(p) for p in (site / "tutorials").glob("*.html")}
    for script in sorted((ROOT / "tutorials").glob("*.py")):
        lines = [line.strip() for line in script.read_text().splitlines() if line.strip()]
        assert any(all(line in text for line in lines) for text in pages.values()), f"no page shows {script.name}"


def test_every_page_in_docs_is_in_the_nav(site):
    home = (site / "index.html").read_text(encoding="utf-8")
    for md in sorted((ROOT / "docs").rglob("*.md")):
        url = md.relative_to(ROOT / "docs").with_suffix(".html").as_posix()
        assert (site / url).is_file(), md
        assert f'href="{url}"' in home, f"{url} is not in the nav"


def test_nav_drops_missing_pages_and_adds_unlisted_ones(tmp_path):
    hooks = _hooks()
    (tmp_path / "a.md").write_text("# A\n")
    (tmp_path / "extra.md").write_text("# Something extra\n")
    nav = [{"Home": "a.md"}, {"Later": "not_yet.md"}, {"Section": [{"Gone": "gone.md"}]}]
    config = hooks.on_config({"docs_dir": str(tmp_path), "nav": nav})
    titles = [next(iter(item)) for item in config["nav"]]
    assert titles == ["Home", "More", "API reference"]
    assert config["nav"][1]["More"] == [{"Something extra": "extra.md"}]


def _pages(site: Path):
    return sorted(site.rglob("*.html"))


def _prose(page: Path) -> str:
    """A page's text outside code blocks and inline code (where ``::`` is C++ or a real literal)."""
    text = re.sub(r"<(pre|code)[^>]*>.*?</\1>", " ", page.read_text(encoding="utf-8"), flags=re.S)
    return html.unescape(re.sub(r"<[^>]+>", "", text))


def test_no_rest_artefacts(site):
    """Docstrings are reST-flavoured; the site shows them as Markdown: no role, no literal-block ``::``."""
    bad = []
    for page in _pages(site):
        text = _prose(page)
        for m in re.finditer(r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj):|\S::(?:\s|$)", text):
            bad.append(f"{page.relative_to(site)}: ...{text[max(0, m.start() - 40) : m.end() + 20]!r}")
    assert not bad, "\n".join(bad[:20])


def test_every_link_resolves_to_a_file(site):
    """Opened from disk (``site/index.html``), every relative link lands on a file, never a folder listing."""
    broken = []
    for page in _pages(site):
        if page.name == "404.html":  # served by a web server for any missing address: its links are absolute
            continue
        for href in re.findall(r'(?:href|src)="([^"]+)"', page.read_text(encoding="utf-8")):
            if re.match(r"^[a-z][a-z0-9+.-]*:", href) or href.startswith(("#", "//")):
                continue
            target = (page.parent / href.split("#")[0].split("?")[0]).resolve()
            if not target.is_file():
                broken.append(f"{page.relative_to(site)} -> {href}")
    assert not broken, "\n".join(broken[:20])


def test_api_nav_grouped_by_topic_without_internals(site):
    hooks = _hooks()
    home = (site / "index.html").read_text(encoding="utf-8")
    for topic in ("Neurons", "Kernels", "Models", "Data", "Training and methods", "Metrics", "Reports"):
        assert re.search(rf">\s*{topic}", home), topic
    internals = [m for m in hooks.public_modules() if hooks.topic_of(m) is None]
    assert "snn_msi.argtypes" in internals and "neurons.models.lif" not in internals
    for module in internals:
        assert f'href="api/{module}.html"' not in home, f"{module} is an internal but in the nav"
        assert (site / "api" / f"{module}.html").is_file()  # still reachable by its address
    assert hooks.topic_of("snn_msi.training.metrics") == "Metrics"


def test_code_blocks_wrap(site):
    css = (site / "stylesheets" / "extra.css").read_text()
    assert "pre-wrap" in css and 'href="stylesheets/extra.css"' in (site / "index.html").read_text(encoding="utf-8")


def test_rst_to_markdown():
    convert = _hooks().rst_to_markdown
    assert convert("uses :class:`~a.b.Net` and :func:`neurons.create`") == "uses `Net` and `neurons.create`"
    assert convert(":meth:`run <Trainer.fit>` then") == "`run` then"
    text = "The steps::\n\n    h = charge(x)\n    s = H(h)\n\nAfter."
    assert convert(text) == "The steps:\n\n```\nh = charge(x)\ns = H(h)\n```\n\nAfter."
    assert convert("Plain: text, a::b in C++.") == "Plain: text, a::b in C++."
