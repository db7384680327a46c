"""Files the library writes: tables as CSV, replaced atomically (a reader never sees half a file). A leaf: the
energy report (``snn_msi.metrics``) and the studies (``snn_msi.reports``) write through it."""

from __future__ import annotations

import csv
import os
from collections.abc import Sequence
from pathlib import Path

__all__ = ["write_csv"]


def write_csv(path: str | Path, rows: list[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """``rows`` (dicts with the same keys, in column order; ``fieldnames``: the columns, default the first row's)
    -> ``path`` via a temporary file and a rename."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    with tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fieldnames) if fieldnames is not None else list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, path)
    return path
