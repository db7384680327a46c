"""Files the reports write: tables as CSV, replaced atomically (a reader never sees half a file)."""

from __future__ import annotations

import csv
import os
from pathlib import Path

__all__ = ["write_csv"]


def write_csv(path: str | Path, rows: list[dict]) -> Path:
    """``rows`` (dicts with the same keys, in column order) -> ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path
