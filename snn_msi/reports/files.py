"""Files the reports write: tables as CSV and text, replaced atomically (a reader never sees half a file; a full
or read-only disk is one line naming the file, see :mod:`snn_msi.files`)."""

from __future__ import annotations

import csv
from pathlib import Path

from ..files import atomic_path, write_text

__all__ = ["write_csv", "write_text"]


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """``rows`` (dicts with the same keys, in column order) -> ``path`` via a temporary file and a rename."""
    path = Path(path)
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    return path
