"""MkDocs hooks (mkdocs.yml `hooks:`): complete the nav so that the build never depends on an edit of mkdocs.yml,
and render the docstrings' reST as Markdown.

- The API reference: one generated page `api/<module>.md` (`::: module`) per public module of `neurons` and
  `snn_msi`, found on disk (a new module gets its page without an edit here), grouped by topic
  (:data:`TOPICS`); modules of no topic (internals: kernels' sources, the CLI's helpers, ...) get a page that
  the nav does not list.
- Docstrings are written in reST-flavoured Google style (``:class:`X```, ``text::`` before a literal block);
  :class:`RestToMarkdown`, a Griffe extension that mkdocs.yml loads from this file, converts them to the Markdown
  that mkdocstrings renders (roles -> inline code, literal blocks -> fenced code), so no reST leaks into a page.
- Nav entries whose page does not exist (yet) are dropped with an INFO line, so pages that other developers are
  still writing (methods.md, energy.md, study.md) can be listed before they land without failing `--strict`.
- Pages in docs/ that the nav does not list are added under "More", so every page is reachable.
"""

from __future__ import annotations

import logging
import re
import textwrap
from fnmatch import fnmatch
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


#: the API navigation: topic -> module patterns (first match wins); a public module that matches none is an
#: internal (it keeps its page, out of the nav)
TOPICS: dict[str, tuple[str, ...]] = {
    "Neurons": (
        "neurons",
        "neurons.base",
        "neurons.catalog",
        "neurons.models*",
        "neurons.surrogate",
        "neurons.functional",
        "neurons.registry",
        "neurons.peers",
    ),
    "Kernels": (
        "neurons.kernels",
        "neurons.kernels.fused",
        "neurons.kernels.ops",
        "neurons.kernels.reference",
        "neurons.runtime",
    ),
    "Models": ("snn_msi", "snn_msi.models*", "snn_msi.encoders*", "snn_msi.nir*"),
    "Data": ("snn_msi.data*",),
    "Training and methods": (
        "snn_msi.training",
        "snn_msi.training.config",
        "snn_msi.training.trainer",
        "snn_msi.training.losses",
        "snn_msi.training.loggers",
        "snn_msi.training.result",
        "snn_msi.training.rundir",
        "snn_msi.training.runlog",
        "snn_msi.training.policies*",
    ),
    "Metrics": ("snn_msi.training.metrics", "snn_msi.metrics*"),
    "Reports and command line": (
        "snn_msi.reports*",
        "snn_msi.cli",
        "snn_msi.commands",
        "snn_msi.plots",
        "snn_msi.schema",
    ),
}


def topic_of(module: str) -> str | None:
    """The :data:`TOPICS` entry a module is listed under (None: an internal, out of the nav)."""
    return next((t for t, patterns in TOPICS.items() if any(fnmatch(module, p) for p in patterns)), None)


def api_nav(modules: list[str]) -> list[dict]:
    """``[{topic: [{module: page}, ...]}, ...]`` in the order of :data:`TOPICS`."""
    groups: dict[str, list] = {t: [] for t in TOPICS}
    for module in modules:
        topic = topic_of(module)
        if topic is not None:
            groups[topic].append({module: api_page(module)})
    return [{t: entries} for t, entries in groups.items() if entries]


# -- reST in docstrings -> Markdown ----------------------------------------------------------------------------
_ROLE = re.compile(
    r":(?:py:)?(?:class|func|meth|mod|attr|data|exc|obj|const|ref|doc|term):`(~?)([^`<]*?)\s*(?:<([^`>]+)>)?`"
)


def _role(m: re.Match) -> str:
    tilde, text, target = m.group(1), m.group(2).strip(), m.group(3)
    name = text or target or ""
    if tilde:
        name = name.rsplit(".", 1)[-1]
    return f"`{name}`"


def rst_to_markdown(text: str) -> str:
    """reST roles (``:class:`~a.B``` -> `` `B` ``) and literal blocks (``text::`` + an indented block, or a
    line ``::``) -> Markdown inline code and fenced code blocks; everything else is left as it is."""
    lines = _ROLE.sub(_role, text).split("\n")
    out: list[str] = []
    i = 0
    while i < len(lines):
        line = lines[i]
        stripped = line.rstrip()
        if stripped.endswith("::") and not stripped.endswith(":::"):
            indent = len(line) - len(line.lstrip())
            head = stripped[:-2].rstrip()
            j = i + 1
            while j < len(lines) and not lines[j].strip():
                j += 1
            block = []
            while j < len(lines) and (not lines[j].strip() or len(lines[j]) - len(lines[j].lstrip()) > indent):
                block.append(lines[j])
                j += 1
            while block and not block[-1].strip():
                block.pop()
            if block:
                pad = " " * indent
                if head:
                    out += [f"{head}:" if not head.endswith(":") else head, ""]
                code = textwrap.dedent("\n".join(block)).split("\n")
                out += [f"{pad}```", *[f"{pad}{c}" if c else "" for c in code], f"{pad}```", ""]
                i = j
                continue
            line = line.replace("::", ":") if head else ""
        out.append(line)
        i += 1
    return "\n".join(out)


try:  # the Griffe extension (only where mkdocstrings' Griffe is installed: the docs extra)
    import griffe

    class RestToMarkdown(griffe.Extension):
        """Convert every docstring with :func:`rst_to_markdown` as Griffe loads it (mkdocs.yml:
        ``extensions: [docs/hooks.py:RestToMarkdown]``)."""

        def on_instance(self, *, obj, **kwargs) -> None:
            if obj.docstring is not None:
                obj.docstring.value = rst_to_markdown(obj.docstring.value)

except ImportError:  # pragma: no cover
    pass


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
    nav.append({"API reference": api_nav(public_modules())})
    config["nav"] = nav
    return config


def on_files(files: Files, config) -> Files:
    for module in public_modules():
        files.append(File.generated(config, api_page(module), content=f"::: {module}\n"))
    return files
