"""Where a run's numbers go besides its CSV files: TensorBoard, MLflow, Weights & Biases (``--logger csv,tb,...``).

The CSV files (``metrics.csv``, ``steps.csv``) are always written: they are the run's record, which resume cuts
back and the reports read. Every other backend gets each epoch's row (step = epoch) and, once, the run's
configuration:

- ``tb``: ``<run>/tb/`` event files; ``tensorboard --logdir runs`` shows every run below ``runs/``.
- ``mlflow``: one MLflow run per training run, named after its folder, in the experiment ``snn-msi`` (or
  ``MLFLOW_EXPERIMENT_NAME``), tracked where MLflow tracks by default (``MLFLOW_TRACKING_URI``; unset: MLflow
  3's ``sqlite:///mlflow.db`` in the folder you run from), so ``mlflow ui`` started in that folder shows it.
- ``wandb``: one W&B run (project ``snn-msi`` or ``WANDB_PROJECT``; files under ``<run>/wandb``;
  ``WANDB_MODE=offline`` logs without an account).

An optional backend that is not installed is one warning line per process naming the package to install, and
the run goes on with the others.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from neurons.registry import Registry

from ..schema import ConfigError

log = logging.getLogger(__name__)

__all__ = ["LOGGERS", "Logger", "DEFAULT_LOGGERS", "create_loggers", "parse_loggers"]

LOGGERS = Registry("logger")
#: what a run logs to unless told otherwise
DEFAULT_LOGGERS = ("csv", "tb")
_warned: set[str] = set()


class Logger:
    """A logging backend for one run (the run's folder, its name and configuration)."""

    def __init__(self, folder: Path, config: dict | None = None) -> None:
        self.folder, self.config = Path(folder), config or {}

    def log_epoch(self, row: dict[str, float], epoch: int) -> None:
        """One epoch's numbers (the row of ``metrics.csv``)."""

    def close(self) -> None:
        """Flush and release the backend."""


def _numbers(row: dict) -> dict[str, float]:
    numeric = {k: v for k, v in row.items() if isinstance(v, int | float) and not isinstance(v, bool)}
    return {k: float(v) for k, v in numeric.items() if k != "epoch"}


def _flat(d: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in d.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = str(v)
    return out


@LOGGERS.register("csv", description="metrics.csv (per epoch) and steps.csv (per step) in the run folder; always on")
class CsvLogger(Logger):
    """The CSV files are written by :class:`~snn_msi.training.runlog.RunLog` in every run; naming ``csv`` is
    allowed so that ``--logger csv`` alone means no other backend."""


@LOGGERS.register(
    "tb", requires="tensorboard", aliases=("tensorboard",), description="TensorBoard event files in <run>/tb"
)
class TensorBoardLogger(Logger):
    def __init__(self, folder: Path, config: dict | None = None) -> None:
        super().__init__(folder, config)
        from torch.utils.tensorboard import SummaryWriter

        self.writer = SummaryWriter(str(self.folder / "tb"))

    def log_epoch(self, row, epoch):
        for k, v in _numbers(row).items():
            self.writer.add_scalar(k, v, epoch)
        self.writer.flush()

    def close(self):
        self.writer.close()


@LOGGERS.register("mlflow", requires="mlflow", description="an MLflow run (MLFLOW_TRACKING_URI or MLflow's default)")
class MLflowLogger(Logger):
    def __init__(self, folder: Path, config: dict | None = None) -> None:
        super().__init__(folder, config)
        from mlflow.tracking import MlflowClient

        self.client = MlflowClient()  # MLFLOW_TRACKING_URI, or MLflow's default store
        name = os.environ.get("MLFLOW_EXPERIMENT_NAME", "snn-msi")
        found = self.client.get_experiment_by_name(name)
        experiment = found.experiment_id if found is not None else self.client.create_experiment(name)
        run = self.client.create_run(experiment, run_name=self.folder.name, tags={"run_folder": str(self.folder)})
        self.run_id = run.info.run_id
        params = _flat(self.config)
        for key, value in params.items():
            self.client.log_param(self.run_id, key, value[:500])

    def log_epoch(self, row, epoch):
        for k, v in _numbers(row).items():
            self.client.log_metric(self.run_id, k.replace("/", "_"), v, step=epoch)

    def close(self):
        self.client.set_terminated(self.run_id)


@LOGGERS.register("wandb", requires="wandb", description="a Weights & Biases run (WANDB_PROJECT, WANDB_MODE)")
class WandbLogger(Logger):
    def __init__(self, folder: Path, config: dict | None = None) -> None:
        super().__init__(folder, config)
        import wandb

        self.folder.mkdir(parents=True, exist_ok=True)
        project = os.environ.get("WANDB_PROJECT", "snn-msi")
        self.run = wandb.init(project=project, name=self.folder.name, dir=str(self.folder), config=self.config)

    def log_epoch(self, row, epoch):
        self.run.log(_numbers(row), step=epoch)

    def close(self):
        self.run.finish()


def parse_loggers(text: str | list[str] | tuple[str, ...]) -> tuple[str, ...]:
    """``"csv,tb"`` (or a list) -> ``("csv", "tb")``, every name checked (one-line error naming the valid ones)."""
    names = [n.strip() for n in (text.split(",") if isinstance(text, str) else text) if n.strip()]
    for name in names:
        if name not in LOGGERS:
            raise ConfigError(f"--logger: {LOGGERS.unknown(name)}")
    return tuple(dict.fromkeys(LOGGERS.resolve(n) for n in names))


def create_loggers(names: tuple[str, ...] | list[str], folder: str | Path, config: dict | None = None) -> list[Logger]:
    """The backends ``names`` for the run in ``folder``; one not installed is skipped with one warning line."""
    out = []
    for name in parse_loggers(list(names)):
        entry = LOGGERS.get(name)
        try:
            out.append(entry.factory(Path(folder), config))
        except ImportError:
            if name not in _warned:
                _warned.add(name)
                why = f"{entry.requires} is not installed, so runs do not log to it"
                log.warning("logger %s: %s (pip install %s, or make install)", name, why, entry.requires)
    return out
