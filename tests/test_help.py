"""Every argument and option of every command and sub-command has help text (walks the real parser, so a new
option or a newly registered command is covered without editing this test)."""

import argparse

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
