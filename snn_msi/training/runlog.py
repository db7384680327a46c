"""The append-only run log: ``metrics.csv`` (one row per epoch) and ``steps.csv`` (one row per step), plus the
logging backends asked for (TensorBoard by default; MLflow, W&B: :mod:`.loggers`).

Rows are appended, never rewritten; memory holds at most one epoch's step rows. A CSV's columns are fixed when
it is created: the columns declared up front (``steps.csv``: the trainer's and every policy's declared log fields),
then those of its first row; a resumed run keeps its file's header. On resume, :meth:`RunLog.truncate` cuts both
files back to the checkpoint's epoch (to nothing when a run starts afresh), so an epoch redone after a kill
appears once; the rows it keeps are copied as text, so a value reads back as it was written (``1`` stays ``1``,
an empty cell stays empty), and a row a kill cut short is dropped.
"""

from __future__ import annotations

import csv
import itertools
import logging
import math
import os
from collections.abc import Sequence
from pathlib import Path

from ..files import atomic_path, write_error
from .loggers import DEFAULT_LOGGERS, create_loggers, parse_loggers

log = logging.getLogger(__name__)

__all__ = ["RunLog", "accuracy_curve", "read_csv"]


def read_csv(path: str | Path) -> list[dict[str, float | str]]:
    """Rows of a log file, numbers as floats (empty cells as NaN)."""

    def num(v: str):
        try:
            return float(v) if v != "" else math.nan
        except ValueError:
            return v

    path = Path(path)
    if not path.is_file():
        return []
    with path.open(newline="") as fh:
        return [{k: num(v) for k, v in row.items()} for row in csv.DictReader(fh)]


def accuracy_curve(run_dir: str | Path) -> list[tuple[float, float]]:
    """``[(training samples so far, validation accuracy), ...]`` in training order: every ``val_every`` step
    (``steps.csv``) and every epoch's end (``metrics.csv``; runs from before compute was counted: the cumulative
    training samples of the epochs)."""
    run_dir = Path(run_dir)
    epochs = read_csv(run_dir / "metrics.csv")
    samples = list(itertools.accumulate(float(r["train_n"]) for r in epochs))
    points = [
        (float(r["compute_samples"]) if math.isfinite(float(r.get("compute_samples", math.nan))) else n, r["val_acc"])
        for r, n in zip(epochs, samples, strict=True)
    ]
    steps = read_csv(run_dir / "steps.csv")
    points += [(s["compute_samples"], s["val_acc"]) for s in steps if math.isfinite(s.get("val_acc", math.nan))]
    return sorted((float(n), float(a)) for n, a in points)


class _CsvAppender:
    def __init__(self, path: Path, columns: Sequence[str] = ()) -> None:
        self.path, self.columns = path, list(columns)
        self.fields: list[str] | None = None
        if path.is_file() and path.stat().st_size > 0:
            with path.open(newline="") as fh:
                self.fields = next(csv.reader(fh), None)

    def append(self, rows: list[dict]) -> None:
        if not rows:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        new = not self.path.is_file() or self.fields is None
        if new:
            self.fields = list(dict.fromkeys([*self.columns, *(k for r in rows for k in r)]))
        extra = sorted({k for r in rows for k in r} - set(self.fields))
        if extra:
            log.warning("%s: columns %s were not in its first row; they are not logged", self.path.name, extra)
        try:
            with self.path.open("a", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=self.fields, extrasaction="ignore")
                if new:
                    w.writeheader()
                w.writerows(rows)
                fh.flush()
                os.fsync(fh.fileno())
        except OSError as err:  # a row cut short by a full disk is dropped on resume (truncate)
            raise write_error(self.path, err) from None

    def truncate(self, epochs_done: int) -> None:
        """Keep the header and the complete rows of epochs ``<= epochs_done``, byte for byte (atomically)."""
        if not self.path.is_file():
            return
        with self.path.open(newline="") as fh:
            rows = list(csv.reader(fh))
        if not rows:
            return
        header, col = rows[0], rows[0].index("epoch") if "epoch" in rows[0] else None
        kept = [r for r in rows[1:] if col is not None and len(r) == len(header) and _epoch(r[col]) <= epochs_done]
        with atomic_path(self.path) as tmp, tmp.open("w", newline="") as fh:
            csv.writer(fh).writerows([header, *kept])
        self.fields = header


def _epoch(text: str) -> float:
    try:
        return float(text)
    except ValueError:
        return math.inf


class RunLog:
    """Append epoch and step rows of one run (``enabled=False`` on non-zero ranks: nothing is written).

    Every row has an ``epoch`` (1-based); step rows also a global ``step``. ``step_columns``: the columns of
    ``steps.csv`` known before the first step (a value a step does not log is an empty cell, never a lost column).
    ``loggers``: backend names of :data:`~snn_msi.training.loggers.LOGGERS` that get each epoch's row too;
    ``config``: the run's (plain) configuration, which they record.
    """

    def __init__(
        self,
        folder: str | Path,
        enabled: bool = True,
        step_columns: Sequence[str] = (),
        loggers: Sequence[str] = DEFAULT_LOGGERS,
        config: dict | None = None,
    ) -> None:
        self.folder, self.enabled = Path(folder), enabled
        self._step_columns = tuple(step_columns)
        self.metrics = _CsvAppender(self.folder / "metrics.csv")
        self.steps = _CsvAppender(self.folder / "steps.csv", step_columns)
        self._pending: list[dict] = []
        self.logger_names, self.config = parse_loggers(loggers), config
        self._loggers: list | None = None  # made with the first epoch's row: a run that fails before writes none

    def step(self, row: dict) -> None:
        """Queue one step row (written with the epoch's row)."""
        if self.enabled:
            self._pending.append(row)

    def epoch(self, row: dict) -> None:
        """Append the epoch's step rows, then its row (both flushed to disk)."""
        if not self.enabled:
            return
        self.steps.append(self._pending)
        self._pending = []
        self.metrics.append([row])
        if self._loggers is None:
            self._loggers = create_loggers(self.logger_names, self.folder, self.config)
        for logger in self._loggers:
            logger.log_epoch(row, int(row["epoch"]))

    def truncate(self, epochs_done: int) -> None:
        """Drop rows of epochs after ``epochs_done`` (they are redone after a resume)."""
        if self.enabled:
            self._pending = []
            for f in (self.metrics, self.steps):
                f.truncate(epochs_done)

    def relocate(self, folder: str | Path) -> None:
        """The run's files moved to ``folder`` (a run that replaced another, after its first checkpoint)."""
        self.close()
        self.__init__(folder, self.enabled, self._step_columns, self.logger_names, self.config)

    def close(self) -> None:
        for logger in self._loggers or []:
            logger.close()
        self._loggers = None
