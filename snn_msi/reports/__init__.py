"""Reports above the library, each a command of ``snn-msi``: the energy report of a checkpoint, the studies.

Every module of this package registers its commands when the package is imported (a new report is one new file
here plus its test)::

    @register_command("probe", description="multisensory responses of a trained checkpoint")
    def _probe(parser):                   # gets its own argparse sub-parser
        parser.add_argument("checkpoint")
        parser.set_defaults(func=run)     # run(args) -> exit code

Studies are sub-commands of ``snn-msi study`` (``@register_study("energy", ...)``, same form). (The decorator
is not called ``study``: the module ``study.py`` takes that attribute of the package once it is imported.)
"""

from __future__ import annotations

import importlib
import pkgutil

from neurons.registry import Registry

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
    """One argparse sub-parser per entry of ``registry`` (descriptions are plain text: a ``%`` stays a ``%``)."""
    for name in registry.names():
        entry = registry.get(name)
        entry.factory(sub.add_parser(name, help=entry.description.replace("%", "%%")))


@register_command("study", description="the studies: " + "inverse-effectiveness, energy, ... (`snn-msi study --help`)")
def _study_command(parser) -> None:
    add_parsers(parser.add_subparsers(dest="kind", required=True, metavar="STUDY"), STUDIES)


for _info in pkgutil.iter_modules(__path__):
    importlib.import_module(f"{__name__}.{_info.name}")
