"""Logging backends (``--logger``): TensorBoard and MLflow read back what a run logged; a missing one is one line."""

import logging
import sys

import pytest

from snn_msi.cli import main
from snn_msi.schema import ConfigError
from snn_msi.training import RunLog, Trainer, demo_config
from snn_msi.training.loggers import DEFAULT_LOGGERS, LOGGERS, create_loggers, parse_loggers


def _rows(folder, loggers, config=None):
    """Two epochs' rows through the run log, as the trainer writes them."""
    runlog = RunLog(folder, loggers=loggers, config=config)
    for epoch in (1, 2):
        runlog.step({"epoch": epoch, "step": epoch - 1, "loss": 1.0})
        runlog.epoch({"epoch": epoch, "lr": 0.05, "train_loss": 1.0 / epoch, "val_acc": 0.3 * epoch, "note": "x"})
    runlog.close()


def test_parse_loggers():
    assert parse_loggers("csv, tb,tensorboard") == ("csv", "tb")
    assert {"csv", "tb", "mlflow", "wandb"} <= set(LOGGERS.names()) and set(DEFAULT_LOGGERS) <= set(LOGGERS.names())
    with pytest.raises(ConfigError, match="unknown logger 'tensorbaord'.*Did you mean 'tensorboard'"):
        parse_loggers("tensorbaord")


def test_bad_logger_name_is_one_line(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["train", "--demo", "--logger", "csv,nope"])
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert "--logger" in err and "unknown logger 'nope'" in err and "csv, mlflow, tb, wandb" in err


def test_missing_backend_is_one_warning_line(tmp_path, monkeypatch, caplog):
    monkeypatch.setitem(sys.modules, "wandb", None)  # `import wandb` raises ImportError
    monkeypatch.setattr("snn_msi.training.loggers._warned", set())
    caplog.set_level(logging.WARNING, logger="snn_msi.training.loggers")
    assert [type(b).__name__ for b in create_loggers(["csv", "wandb"], tmp_path)] == ["CsvLogger"]
    create_loggers(["wandb"], tmp_path)  # a second run in the same process: no second line
    lines = [r.getMessage() for r in caplog.records]
    assert len(lines) == 1 and "wandb is not installed" in lines[0] and "pip install wandb" in lines[0]


def test_tensorboard_reads_a_run(tmp_path):
    pytest.importorskip("tensorboard")
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    _rows(tmp_path / "run", ("csv", "tb"))
    acc = EventAccumulator(str(tmp_path / "run" / "tb"))
    acc.Reload()
    assert set(acc.Tags()["scalars"]) == {"val_acc", "train_loss", "lr"}
    assert [(e.step, round(e.value, 4)) for e in acc.Scalars("val_acc")] == [(1, 0.3), (2, 0.6)]


def test_mlflow_reads_a_run(tmp_path, monkeypatch):
    pytest.importorskip("mlflow")
    from mlflow.tracking import MlflowClient

    store = (tmp_path / "mlruns").as_uri()  # MLflow's local file store
    monkeypatch.setenv("MLFLOW_TRACKING_URI", store)
    monkeypatch.setenv("MLFLOW_ALLOW_FILE_STORE", "true")
    _rows(tmp_path / "run", ("mlflow",), demo_config().to_dict())
    # the trainer's wiring: `--logger mlflow` reaches the run log (one epoch of 16 samples)
    cfg = demo_config(
        epochs=1, batch_size=16, out=str(tmp_path / "trained"), data={"dataset": "digits-av", "limit": 16}
    )
    Trainer(cfg, progress=False, plots=False, loggers=("mlflow",)).fit()
    client = MlflowClient(tracking_uri=store)
    experiment = client.get_experiment_by_name("snn-msi")
    runs = {r.info.run_name: r for r in client.search_runs([experiment.experiment_id])}
    assert set(runs) == {"run", "trained"} and all(r.info.status == "FINISHED" for r in runs.values())
    run = runs["run"]
    assert run.data.params["lr"] == "0.05" and run.data.params["data.dataset"] == "digits-av"
    history = client.get_metric_history(run.info.run_id, "val_acc")
    assert [(m.step, round(m.value, 4)) for m in history] == [(1, 0.3), (2, 0.6)]
    assert "test_acc" not in runs["trained"].data.metrics and "val_acc" in runs["trained"].data.metrics
    assert not (tmp_path / "trained" / "tb").exists()  # only the backends asked for
