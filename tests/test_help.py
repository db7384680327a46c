"""Every argument and option of every command and sub-command has help text (walks the real parser, so a new
option or a newly registered command is covered without editing this test)."""

import argparse
import contextlib
import io
import re
import shlex
from pathlib import Path

from snn_msi.cli import build_parser


def _walk(parser: argparse.ArgumentParser, path: str):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            helps = {a.dest: a.help for a in action._choices_actions}
            for name, sub in action.choices.items():
                yield f"{path} {name}", "(the command itself)", helps.get(name)
                yield from _walk(sub, f"{path} {name}")
        elif not isinstance(action, argparse._HelpAction):
            yield path, "/".join(action.option_strings) or action.dest, action.help


def test_every_argument_has_help():
    entries = list(_walk(build_parser(), "snn-msi"))
    commands = {p for p, _, _ in entries}
    assert {"snn-msi train", "snn-msi evaluate", "snn-msi prepare", "snn-msi study"} <= commands
    assert any(p.startswith("snn-msi study ") for p in commands)  # the studies are walked too
    missing = [f"{p}: {what}" for p, what, text in entries if not (text or "").strip() or text == argparse.SUPPRESS]
    assert not missing, "arguments without help:\n" + "\n".join(missing)


def test_help_renders_for_every_command(capsys):
    """``--help`` of every command formats (a stray % in a help string would raise)."""

    def parsers(parser, argv):
        yield argv
        for action in parser._actions:
            if isinstance(action, argparse._SubParsersAction):
                for name, sub in action.choices.items():
                    yield from parsers(sub, [*argv, name])

    root = build_parser()
    for argv in parsers(root, []):
        try:
            root.parse_args([*argv, "--help"])
        except SystemExit as exc:
            assert exc.code == 0, argv
        assert "usage:" in capsys.readouterr().out


ROOT = Path(__file__).resolve().parents[1]
DOCS = [ROOT / "README.md", ROOT / "CONTRIBUTING.md", *sorted((ROOT / "docs").rglob("*.md"))]


def _doc_commands():
    """``(file, command)`` for every ``snn-msi ...`` command in the docs' code blocks (continuation lines joined,
    ``&&``/``|``/``;`` split, comments, redirections and leading ``VAR=value`` dropped; shell loops skipped)."""
    for path in DOCS:
        for block in re.findall(r"```[a-z]*\n(.*?)```", path.read_text(), re.S):
            for line in re.sub(r"\\\n\s*", " ", block).splitlines():
                for part in re.split(r"&&|;|\|\|?", line.strip().removeprefix("$ ")):
                    part = re.sub(r"^(\s*[A-Z_]+=\S*)+\s", "", part).strip()
                    part = re.sub(r"\s(#|[12]?>).*$", "", part)
                    if part.startswith("snn-msi ") and "$" not in part:
                        yield path.relative_to(ROOT), part


def test_every_command_in_the_docs_parses():
    """What a reader copies from README.md or docs/ is a command the CLI accepts (a renamed option fails here)."""
    commands = list(_doc_commands())
    assert len(commands) > 20  # the extraction finds the docs' commands
    parser, bad = build_parser(), []
    for path, command in commands:
        try:
            with contextlib.redirect_stdout(io.StringIO()), contextlib.redirect_stderr(io.StringIO()) as err:
                parser.parse_args(shlex.split(command)[1:])
        except SystemExit as exit_:
            if exit_.code:
                bad.append(f"{path}: {command}: {err.getvalue().strip().splitlines()[-1]}")
    assert not bad, "\n".join(bad)


def test_the_docs_lists_of_commands_name_every_command():
    """``snn-msi train | evaluate | ...`` in README.md and docs/: every command the CLI has, no other."""
    (subparsers,) = [a for a in build_parser()._actions if isinstance(a, argparse._SubParsersAction)]
    lists = [
        (p.name, m) for p in DOCS for m in re.findall(r"`snn-msi ((?:[a-z0-9-]+ \|\s*)+[a-z0-9-]+)`", p.read_text())
    ]
    assert lists
    for name, text in lists:
        assert set(re.split(r"\s*\|\s*", text)) == set(subparsers.choices), f"{name}: snn-msi {text}"
