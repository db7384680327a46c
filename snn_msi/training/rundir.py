"""One run's folder, owned by one object: config, checkpoints, logs and the completion marker.

    runs/x/config.yaml      the run's configuration (written once the run has really started)
    runs/x/last.pt          everything resume needs, the best weights so far included (one atomic file)
    runs/x/best.pt          the best weights and the config, for evaluate / energy (a copy made after last.pt)
    runs/x/metrics.csv      one row per epoch, appended before the checkpoint of that epoch
    runs/x/steps.csv        one row per step, appended per epoch
    runs/x/results.json     the final results: its presence marks a finished run

Rules that make a lost or mixed-up run impossible:

- a folder that holds a run is never reused silently: ``mode="new"`` refuses it (``--resume`` continues it,
  ``--overwrite`` removes that run's files first);
- ``last.pt`` holds the best weights too, so a kill between writing ``last.pt`` and ``best.pt`` cannot make the
  final test use another epoch's weights;
- the logs are cut back to the checkpoint's epoch on resume, so each epoch's row appears exactly once;
- a resumed run keeps its configuration: a changed value is an error, except those in :data:`RESUMABLE`;
- :meth:`RunDir.matches` tells whether a finished run was made with a given configuration (cache hits of the
  demo and the study require an identical config).
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path

import torch

from ..schema import ConfigError
from .result import RunResult

__all__ = ["RunDir", "RunExistsError", "save_checkpoint", "load_checkpoint", "config_diff", "CHECKPOINT_VERSION",
           "RESUMABLE"]  # fmt: skip

CHECKPOINT_VERSION = 2
#: config keys a resumed run may change (more epochs, another device or worker count, a moved folder)
RESUMABLE = ("epochs", "device", "out", "data.num_workers", "data.root")
#: the files and folders a run writes (what --overwrite removes)
RUN_FILES = ("config.yaml", "last.pt", "best.pt", "metrics.csv", "steps.csv", "results.json", "curves.png", "tb",
             "energy")  # fmt: skip


class RunExistsError(ConfigError):
    """The output folder already holds a run."""


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename; the temporary file never stays
    behind, and a full disk or a read-only folder is a one-line ``OSError`` naming the file."""
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        torch.save(state, tmp)
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:  # torch reports a full disk as a RuntimeError ("unexpected pos ...")
        reason = err.strerror if isinstance(err, OSError) and err.strerror else str(err).splitlines()[0]
        if isinstance(err, RuntimeError):
            free = shutil.disk_usage(path.parent).free if path.parent.is_dir() else 0
            reason = f"{reason} ({free / 2**20:.0f} MiB free on that disk)"
        raise OSError(f"cannot write checkpoint {path}: {reason}") from None
    finally:
        tmp.unlink(missing_ok=True)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load with ``weights_only=True`` (never executes code); one-line errors for missing / corrupt / foreign."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means a corrupt or foreign file
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        raise ValueError(f"checkpoint {path} is corrupt or not an snn-msi checkpoint: {type(err).__name__}: "
                         f"{first[:200]}") from None  # fmt: skip
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {path} is not an snn-msi checkpoint (no model weights and config)")
    if state.get("version") not in (1, CHECKPOINT_VERSION):
        raise ValueError(f"checkpoint {path} has version {state.get('version')}; this snn-msi reads "
                         f"{CHECKPOINT_VERSION}")  # fmt: skip
    return state


def _flatten(d: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in d.items():
        key = f"{prefix}{k}"
        if isinstance(v, dict) and k not in ("neuron_args",):
            out.update(_flatten(v, key + "."))
        else:
            out[key] = v
    return out


def config_diff(a: dict, b: dict, ignore: tuple[str, ...] = ()) -> list[str]:
    """``["epochs: 10 -> 2", ...]``: the dotted keys where two plain configs differ (``ignore``: keys to skip)."""
    fa, fb = _flatten(a), _flatten(b)
    return [f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}" for k in sorted(set(fa) | set(fb))
            if k not in ignore and fa.get(k) != fb.get(k)]  # fmt: skip


class RunDir:
    """The folder of one run.

    Args:
        path: the folder.
        mode: ``"new"`` (the folder must not hold a run), ``"resume"`` (continue from ``last.pt``; start afresh
            when there is none) or ``"overwrite"`` (remove this run's files first; other files stay).
    """

    def __init__(self, path: str | Path, mode: str = "new") -> None:
        if mode not in ("new", "resume", "overwrite"):
            raise ValueError(f"mode must be 'new', 'resume' or 'overwrite', got {mode!r}")
        self.path, self.mode = Path(path), mode
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output folder {self.path} is a file")

    # -- paths ----------------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.path / "config.yaml"

    @property
    def last(self) -> Path:
        return self.path / "last.pt"

    @property
    def best(self) -> Path:
        return self.path / "best.pt"

    @property
    def results_file(self) -> Path:
        return self.path / "results.json"

    def holds_run(self) -> bool:
        return any((self.path / name).exists() for name in RUN_FILES)

    def is_complete(self) -> bool:
        return self.results_file.is_file()

    def results(self) -> RunResult:
        """The finished run's :class:`RunResult` (a one-line ``ValueError`` for a file that is not one)."""
        try:
            data = json.loads(self.results_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.results_file} is not JSON: {err}") from None
        return RunResult.from_dict(data, str(self.results_file))

    def saved_config(self) -> dict | None:
        from ..schema import load_yaml

        return load_yaml(self.config_file) if self.config_file.is_file() else None

    def matches(self, config: dict) -> bool:
        """The folder holds a finished run made with ``config`` (``out`` and worker counts aside)."""
        saved = self.saved_config()
        return self.is_complete() and saved is not None and not config_diff(saved, config, ("out", "data.num_workers"))

    # -- life cycle -----------------------------------------------------------------------------------------
    def prepare(self) -> bool:
        """Check the folder for this mode (``overwrite``: remove the old run's files); True when there is a
        checkpoint to resume. Creates nothing: the folder appears with the run's first file, so a command that
        fails before training leaves no empty folder behind."""
        if self.mode == "new" and self.holds_run():
            what = "a finished run" if self.is_complete() else "a run"
            raise RunExistsError(f"output folder {self.path} already holds {what}; use --resume to continue it, "
                                 "--overwrite to replace it, or another --out")  # fmt: skip
        if self.mode == "overwrite":
            for name in RUN_FILES:
                p = self.path / name
                if p.is_dir():
                    shutil.rmtree(p)
                elif p.exists():
                    p.unlink()
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(f"output folder {self.path} is not writable ({existing} is read-only or not a folder)")
        return self.mode == "resume" and self.last.is_file()

    def check_resume_config(self, saved: dict, requested: dict) -> None:
        """A resumed run keeps its config: raise naming every changed key not in :data:`RESUMABLE`."""
        diff = config_diff(saved, requested, RESUMABLE)
        if diff:
            raise ConfigError(f"cannot resume {self.path} with a changed config ({'; '.join(diff)}); a resumed run "
                              "keeps its configuration (start a new run with --out, or --overwrite)")  # fmt: skip

    def write_config(self, config) -> None:
        config.save(self.config_file)

    def mark_complete(self, result: RunResult) -> None:
        """Write ``results.json`` atomically: the run is finished."""
        tmp = self.results_file.with_name(f".results.json.tmp{os.getpid()}")
        try:
            tmp.write_text(json.dumps(result.to_dict(), indent=1))
            os.replace(tmp, self.results_file)
        finally:
            tmp.unlink(missing_ok=True)
