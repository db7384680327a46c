"""The registry of ``snn-msi`` commands: the built-in ones (``snn_msi.cli``: train, evaluate, ...) and the report
commands (``snn_msi.reports``: energy, study, ...) register alike, below both::

    @register_command("probe", description="multisensory responses of a trained checkpoint")
    def _probe(parser):                   # gets its own argparse sub-parser
        parser.add_argument("checkpoint")
        parser.set_defaults(func=run)     # run(args) -> exit code

Studies are sub-commands of ``snn-msi study`` (``@register_study("energy", ...)``, same form).
"""

from __future__ import annotations

from neurons.registry import Registry

from .argtypes import accept_negative_values

__all__ = ["COMMANDS", "STUDIES", "add_parsers", "register_command", "register_study"]

COMMANDS = Registry("command")
STUDIES = Registry("study")


def register_command(name: str, description: str):
    """Register ``setup(parser)`` as the ``snn-msi <name>`` command."""
    return COMMANDS.register(name, description=description)


def register_study(name: str, description: str):
    """Register ``setup(parser)`` as the ``snn-msi study <name>`` command."""
    return STUDIES.register(name, description=description)


def add_parsers(sub, registry: Registry) -> None:
    """One argparse sub-parser per entry of ``registry`` (descriptions are plain text: a ``%`` stays a ``%``); each
    reads an argument like ``-10,0`` as a value (:func:`~snn_msi.argtypes.accept_negative_values`)."""
    for name in registry.names():
        entry = registry.get(name)
        entry.factory(accept_negative_values(sub.add_parser(name, help=entry.description.replace("%", "%%"))))
