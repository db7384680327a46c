"""MkDocs hooks (mkdocs.yml `hooks:`): complete the nav so that the build never depends on an edit of mkdocs.yml.

- The API reference: one generated page `api/<module>.md` (`::: module`) per public module of `neurons` and
  `snn_msi`, found on disk (a new module gets its page without an edit here).
- Nav entries whose page does not exist (yet) are dropped with an INFO line, so pages that other developers are
  still writing (methods.md, energy.md, study.md) can be listed before they land without failing `--strict`.
- Pages in docs/ that the nav does not list are added under "More", so every page is reachable.
"""

from __future__ import annotations

import logging
from pathlib import Path

from mkdocs.structure.files import File, Files

log = logging.getLogger("mkdocs.hooks.snn_msi")

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("neurons", "snn_msi")
API_DIR = "api"


def public_modules(root: Path = ROOT, packages: tuple[str, ...] = PACKAGES) -> list[str]:
    """Dotted names of the public modules and packages under ``packages`` (no part starting with ``_``)."""
    names = []
    for package in packages:
        for path in sorted((root / package).rglob("*.py")):
            parts = list(path.relative_to(root).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts = parts[:-1]
            if any(p.startswith("_") for p in parts):
                continue
            if not all((root.joinpath(*parts[:i]) / "__init__.py").is_file() for i in range(1, len(parts))):
                continue  # a script inside a data folder, not a module
            names.append(".".join(parts))
    return sorted(set(names))


def api_page(module: str) -> str:
    return f"{API_DIR}/{module}.md"


def _nav_pages(nav) -> list[str]:
    out = []
    for item in nav or []:
        value = next(iter(item.values())) if isinstance(item, dict) else item
        if isinstance(value, list):
            out += _nav_pages(value)
        elif isinstance(value, str):
            out.append(value)
    return out


def _existing(nav, docs_dir: Path):
    """The nav without entries whose Markdown page is missing (and without sections left empty)."""
    kept = []
    for item in nav:
        title, value = next(iter(item.items())) if isinstance(item, dict) else (None, item)
        if isinstance(value, list):
            value = _existing(value, docs_dir)
            if not value:
                continue
        elif isinstance(value, str) and value.endswith(".md") and "://" not in value:
            if not (docs_dir / value).is_file():
                log.info("nav: %s is not in %s (yet); left out", value, docs_dir)
                continue
        kept.append({title: value} if title is not None else value)
    return kept


def _title(page: Path) -> str:
    for line in page.read_text(encoding="utf-8").splitlines():
        if line.startswith("# "):
            return line[2:].strip()
    return page.stem.replace("_", " ").capitalize()


def on_config(config):
    docs_dir = Path(config["docs_dir"])
    nav = _existing(config["nav"] or [], docs_dir)
    listed = set(_nav_pages(nav))
    extra = [p for p in sorted(docs_dir.rglob("*.md")) if p.relative_to(docs_dir).as_posix() not in listed]
    extra = [p for p in extra if not p.relative_to(docs_dir).as_posix().startswith(f"{API_DIR}/")]
    if extra:
        nav.append({"More": [{_title(p): p.relative_to(docs_dir).as_posix()} for p in extra]})
    nav.append({"API reference": [{m: api_page(m)} for m in public_modules()]})
    config["nav"] = nav
    return config


def on_files(files: Files, config) -> Files:
    for module in public_modules():
        files.append(File.generated(config, api_page(module), content=f"::: {module}\n"))
    return files
