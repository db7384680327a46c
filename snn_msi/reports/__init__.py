"""Reports above the library, each a command of ``snn-msi``: the energy report of a checkpoint, the studies.

Every module of this package registers its commands in :mod:`snn_msi.commands` when the package is imported (a
new report is one new file here plus its test; a module named ``_*`` is a helper a command imports when it runs,
such as one that needs an optional dependency); studies are sub-commands of ``snn-msi study``
(``@register_study``). (The decorator is not called ``study``: the module ``study.py`` takes that attribute of
the package once it is imported.)
"""

from __future__ import annotations

import importlib
import pkgutil

from ..commands import COMMANDS, STUDIES, add_parsers, register_command, register_study

__all__ = ["COMMANDS", "STUDIES", "add_parsers", "register_command", "register_study"]


@register_command("study", description="the studies: " + "inverse-effectiveness, energy, ... (`snn-msi study --help`)")
def _study_command(parser) -> None:
    add_parsers(parser.add_subparsers(dest="kind", required=True, metavar="STUDY"), STUDIES)


for _info in pkgutil.iter_modules(__path__):
    if not _info.name.startswith("_"):
        importlib.import_module(f"{__name__}.{_info.name}")
