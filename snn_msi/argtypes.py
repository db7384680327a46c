"""Argument types of the command line, shared by ``snn_msi.cli`` and the report commands (``snn_msi.reports``).

Each is an argparse ``type=`` (a bad value is argparse's one-line error, exit 2) or, for ``snr_pairs``, a parser
whose error is a one-line :class:`~snn_msi.schema.ConfigError` naming the option.
"""

from __future__ import annotations

import argparse
import re

from .schema import ConfigError

__all__ = ["int_at_least", "positive_int", "positive_float", "nonnegative_float", "snr_pairs", "accept_negative_values"]

#: an argument that starts with '-' but is a value: a negative number or an 'AUDIO_DB,IMAGE_DB' pair
_NEGATIVE_VALUE = re.compile(r"^-(\d+\.?\d*|\.\d+)(,-?(\d+\.?\d*|\.\d+))?$")


def accept_negative_values(parser: argparse.ArgumentParser) -> argparse.ArgumentParser:
    """Let ``parser`` read ``-10,0`` as a value, so SNR pairs need no quoting (``--levels 0,10 -10,0``,
    ``--snr=-15,-5`` and ``--snr -15,-5`` alike); every command's parser gets it (``snn_msi.commands``). argparse
    takes an argument that starts with '-' for an option unless it matches the parser's negative-number pattern
    (its private ``_negative_number_matcher``, checked on Python 3.11; ``tests/test_cli.py`` fails if argparse
    stops reading it); this widens that pattern to pairs. The parser must have no option that looks like a
    negative number (none of ours does)."""
    parser._negative_number_matcher = _NEGATIVE_VALUE
    return parser


def int_at_least(low: int):
    """An argparse type: an integer >= ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be >= {low}, got {value}")
        return value

    parse.__name__ = f"integer >= {low}"  # what argparse names in its own messages
    return parse


positive_int = int_at_least(1)
positive_int.__doc__ = "An integer >= 1."


def positive_float(text: str) -> float:
    """A finite number > 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number > 0, got {text}")
    return value


def nonnegative_float(text: str) -> float:
    """A finite number >= 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value >= 0 or value == float("inf"):
        raise argparse.ArgumentTypeError(f"must be a finite number >= 0, got {text}")
    return value


def snr_pairs(option: str, items: str | list[str]) -> list[tuple[float, float]]:
    """``'AUDIO_DB,IMAGE_DB'`` pairs separated by spaces, in one argument or several -> ``[(audio dB, image dB)]``;
    a malformed pair is a one-line :class:`ConfigError` naming ``option``."""
    pairs = []
    for text in items.split() if isinstance(items, str) else [t for item in items for t in item.split()]:
        try:
            a, v = (float(x) for x in text.split(","))
        except ValueError:
            raise ConfigError(f"{option}: expected 'AUDIO_DB,IMAGE_DB', got {text!r}") from None
        pairs.append((a, v))
    return pairs
