"""One run's folder, owned by one process: config, checkpoints, logs and the completion marker.

    runs/x/.lock            the owner's pid and host, while a process runs in the folder
    runs/x/config.yaml      the run's configuration (first line: a comment saying a run wrote it)
    runs/x/last.pt          everything resume needs, the best weights so far included (one atomic file)
    runs/x/best.pt          the best weights and the config, for evaluate / energy (a copy made after last.pt,
                            restored from last.pt on resume if a kill came in between)
    runs/x/metrics.csv      one row per epoch, appended before the checkpoint of that epoch
    runs/x/steps.csv        one row per step, appended per epoch
    runs/x/results.json     the final results: its presence marks a finished run

Rules that make a lost or mixed-up run impossible:

- one process at a time: a second one gets a one-line error naming the owner; the lock of a process that died
  (even by SIGKILL) is taken over with a warning;
- a folder that holds a run (its checkpoints, logs, results or a config.yaml a run wrote) is never reused
  silently: ``mode="new"`` refuses it, ``--resume`` continues it, ``--overwrite`` replaces it once the new run has
  written its first checkpoint (until then the old run stays whole); only the files a run writes
  (:data:`RUN_FILES`) are ever removed, and a folder with such names but no run is refused, not emptied;
- every file is written atomically (:mod:`snn_msi.files`); temporary files of a killed process are removed by
  the next owner;
- ``last.pt`` holds the best weights too, so a kill between writing ``last.pt`` and ``best.pt`` can neither make
  the final test use another epoch's weights nor leave a finished run without ``best.pt``;
- the logs are cut back to the checkpoint's epoch on resume (and emptied when a run starts afresh), so each
  epoch's and step's row appears exactly once;
- a resumed run keeps its configuration: a changed value is an error, except those in :data:`RESUMABLE`;
- :meth:`RunDir.matches` tells whether a finished run was made with a given configuration (cache hits of the
  demo and the study require an identical config).
"""

from __future__ import annotations

import fcntl
import itertools
import json
import logging
import os
import shutil
import signal
import socket
import warnings
from pathlib import Path

import torch

from ..files import atomic_path, remove_orphans, write_error, write_text
from ..schema import ConfigError, yaml_dump
from .result import RunResult

log = logging.getLogger(__name__)

__all__ = [
    "RunDir",
    "RunExistsError",
    "RunLockedError",
    "lifecycle_hook",
    "save_checkpoint",
    "load_checkpoint",
    "config_diff",
    "CHECKPOINT_VERSION",
    "RESUMABLE",
]

CHECKPOINT_VERSION = 2
#: config keys a resumed run may change (more epochs, another device or worker count, a moved folder)
RESUMABLE = ("epochs", "device", "out", "data.num_workers", "data.root")
#: the files and folders a run writes (what --overwrite replaces; nothing else in the folder is touched); names or
#: glob patterns
RUN_FILES = (
    "config.yaml",
    "last.pt",
    "best.pt",
    "metrics.csv",
    "steps.csv",
    "results.json",
    "curves.png",
    "tb",
    "energy",
    "bad_clips_*.json",
)
#: the files whose presence means the folder holds a run (besides a config.yaml that a run wrote)
RUN_DATA = ("last.pt", "best.pt", "metrics.csv", "steps.csv", "results.json")
#: the first line of a run's config.yaml
CONFIG_HEADER = "# snn-msi run configuration (written by the run; `snn-msi train --resume` reads it)\n"
#: where a run started with --overwrite writes until its first checkpoint, and where the old run's files wait
#: for deletion while the new run's files move in
STAGING, REPLACED = ".replacing", ".replaced"


def run_files(folder: Path) -> list[str]:
    """The names in ``folder`` that a run writes (:data:`RUN_FILES`), sorted."""
    return sorted({p.name for pattern in RUN_FILES for p in folder.glob(pattern)})


class RunExistsError(ConfigError):
    """The output folder already holds a run."""


class RunLockedError(ConfigError):
    """Another live process owns the run folder."""


def lifecycle_hook(point: str, epoch: int | None = None) -> None:
    """Test-only instrumentation (``tests/test_lifecycle.py``): ``SNN_MSI_TEST_KILL_AT`` / ``SNN_MSI_TEST_STOP_AT``
    set to ``"<point>"`` or ``"<point>:<epoch>"`` send this process SIGKILL / SIGSTOP when it reaches that point
    of the run's life cycle (``after_log``, ``writing_last.pt``, ``after_last_pt``, ``after_best_pt``, ``locked``).
    Unset (always, outside the tests), it does nothing."""
    for var, sig in (("SNN_MSI_TEST_KILL_AT", signal.SIGKILL), ("SNN_MSI_TEST_STOP_AT", signal.SIGSTOP)):
        spec = os.environ.get(var)
        if spec and spec in (point, f"{point}:{epoch}"):
            os.kill(os.getpid(), sig)


def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write atomically (:func:`snn_msi.files.atomic_path`): a kill or a full disk never leaves a partial
    checkpoint, and a full disk or a read-only folder is a one-line ``OSError`` naming the file."""
    path = Path(path)
    with atomic_path(path, "checkpoint") as tmp:
        torch.save(state, tmp)
        lifecycle_hook(f"writing_{path.name}", state.get("epoch"))
    return path


def check_output_file(out: str | Path, overwrite: bool = False, source: str | Path | None = None) -> None:
    """A file a command is about to write (a NIR graph, an HDF5 cache) may be: not a folder, not ``source`` (the
    file it reads), not a file of a run's folder, and not an existing file unless ``overwrite``."""
    out = Path(out)
    if out.is_dir():
        raise IsADirectoryError(f"{out} is a folder; give the file to write, e.g. {out / ('out' + out.suffix)}")
    if not out.exists():
        return
    if source is not None and Path(source).exists() and out.resolve() == Path(source).resolve():
        raise FileExistsError(f"{out} is the file this command reads; give another file to write")
    if (out.parent / "config.yaml").is_file() and any(out.match(p) for p in RUN_FILES):
        raise FileExistsError(f"{out} is a file of the run in {out.parent}; give another file to write")
    if not overwrite:
        raise FileExistsError(f"{out} exists; pass --overwrite to replace it, or give another file")


def checkpoint_file(path: str | Path) -> Path:
    """The checkpoint ``path`` names: the file itself, or a run folder's ``best.pt``."""
    path = Path(path)
    if path.is_dir():
        if not (path / "best.pt").is_file():
            raise FileNotFoundError(f"{path} is a folder without best.pt (a run folder has best.pt and last.pt)")
        return path / "best.pt"
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load with ``weights_only=True`` (never executes code); one-line errors for missing / corrupt / foreign.
    A run folder stands for its ``best.pt``."""
    path = checkpoint_file(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        with warnings.catch_warnings():  # PyTorch's note on a foreign pickle: the error below says it in one line
            warnings.filterwarnings("ignore", message="Detected pickle protocol", category=UserWarning)
            state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means a corrupt or foreign file
        first = str(err).strip().splitlines()[0] if str(err).strip() else ""
        if "weights_only" in first:  # PyTorch's advice to load it unsafely: not for a file that is no checkpoint
            first = "it holds something other than tensors and plain values"
        raise ValueError(
            f"checkpoint {path} is corrupt or not an snn-msi checkpoint: {type(err).__name__}: {first[:200]}"
        ) from None
    if not isinstance(state, dict) or "model" not in state or "config" not in state:
        raise ValueError(f"checkpoint {path} is not an snn-msi checkpoint (no model weights and config)")
    wrong = [
        k
        for k, may_be_none in (("model", False), ("config", False), ("data", True))
        if k in state and not (isinstance(state[k], dict) or (may_be_none and state[k] is None))
    ]
    if wrong:
        what = ", ".join(f"{k} is {type(state[k]).__name__}" for k in wrong)
        raise ValueError(f"checkpoint {path} is not an snn-msi checkpoint ({what}, not a dict)")
    if state.get("version") not in (1, CHECKPOINT_VERSION):
        raise ValueError(
            f"checkpoint {path} has version {state.get('version')}; this snn-msi reads {CHECKPOINT_VERSION}"
        )
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
    return [
        f"{k}: {fa.get(k)!r} -> {fb.get(k)!r}"
        for k in sorted(set(fa) | set(fb))
        if k not in ignore and fa.get(k) != fb.get(k)
    ]


def canonical_config(d: dict) -> dict:
    """A config as this version reads it: options added since the run was made at their defaults, older layouts
    upgraded, every method's options written out (:func:`~snn_msi.training.policies.resolve_policies`); so a new
    option is not a change of the run's config, and a method default changed since a run saved its own is (a
    config that no longer loads is compared as it was saved). Runs save their config in this form."""
    from .config import TrainConfig
    from .policies import resolve_policies

    try:
        c = TrainConfig.from_dict(d).to_dict()
        c["policies"] = resolve_policies(c["policies"])
        return c
    except (ConfigError, TypeError, ValueError):
        return d


class _Lock:
    """An exclusive lock on a run folder: ``<folder>/.lock`` holds the owner's pid and host, and the owner holds
    an ``flock`` on it for as long as it lives (the kernel drops it when the process dies, even by SIGKILL, so a
    lock left by a dead process is recognised and taken over). Re-entrant within one process."""

    _held: dict[str, list] = {}  # folder -> [file descriptor, holders] of this process

    def __init__(self, folder: Path) -> None:
        self.file = folder / ".lock"
        self.key = str(folder.resolve())
        self.acquired = False

    def acquire(self) -> None:
        if self.key in self._held:
            self._held[self.key][1] += 1
            self.acquired = True
            return
        while True:
            fd = os.open(self.file, os.O_RDWR | os.O_CREAT, 0o644)
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                owner = self._owner(fd)
                os.close(fd)
                raise RunLockedError(
                    f"run folder {self.file.parent} is in use by {owner} (lock file {self.file}); "
                    "wait for it to finish, or use another --out"
                ) from None
            if os.path.exists(self.file) and os.fstat(fd).st_ino == os.stat(self.file).st_ino:
                break
            os.close(fd)  # the file was removed by its previous owner while we waited: lock the new one
        previous = self._owner(fd)
        if previous:
            log.warning("%s: took over the lock of %s, which is no longer running", self.file.parent, previous)
        try:
            os.ftruncate(fd, 0)
            os.lseek(fd, 0, os.SEEK_SET)
            os.write(fd, f"{os.getpid()} {socket.gethostname()}\n".encode())
            os.fsync(fd)
        except OSError as err:  # a full disk
            self.file.unlink(missing_ok=True)
            os.close(fd)
            raise write_error(self.file, err) from None
        self._held[self.key] = [fd, 1]
        self.acquired = True

    @staticmethod
    def _owner(fd: int) -> str:
        os.lseek(fd, 0, os.SEEK_SET)
        text = os.read(fd, 4096).decode(errors="replace").split()
        return f"process {text[0]} on {text[1]}" if len(text) >= 2 else ""

    def release(self) -> None:
        if not self.acquired:
            return
        self.acquired = False
        held = self._held[self.key]
        held[1] -= 1
        if held[1] == 0:
            del self._held[self.key]
            self.file.unlink(missing_ok=True)  # while still locked: a waiting process then locks a new file
            os.close(held[0])


class RunDir:
    """The folder of one run, owned by one process while it runs (``<folder>/.lock``).

    Args:
        path: the folder.
        mode: ``"new"`` (the folder must not hold a run), ``"resume"`` (continue from ``last.pt``; start afresh
            when there is none, unless the folder holds ``best.pt`` or ``results.json``, which come after it: then
            refused, as those would be overwritten) or ``"overwrite"`` (the new run is written to
            ``<folder>/.replacing/`` and replaces the old run's files, and only those, once it has written its
            first checkpoint: a new run that fails or is killed before that leaves the old one whole).
        unique: ``path`` is a name made up for the run (the CLI's default, from the time): :meth:`prepare` takes
            the first of ``path``, ``path-1``, ``path-2``, ... that does not exist, so runs started in the same
            second get folders of their own (as timm's ``get_outdir``, but atomic); mode "new" only.
    """

    def __init__(self, path: str | Path, mode: str = "new", unique: bool = False) -> None:
        if mode not in ("new", "resume", "overwrite"):
            raise ValueError(f"mode must be 'new', 'resume' or 'overwrite', got {mode!r}")
        if unique and mode != "new":
            raise ValueError("a unique run folder name is for a new run")
        self.path, self.mode, self.unique = Path(path), mode, unique
        if self.path.exists() and not self.path.is_dir():
            raise ConfigError(f"output folder {self.path} is a file")
        self.work = self.path  # where the run writes now (the staging folder while it replaces another run)
        self._lock = _Lock(self.path)
        self._created: Path | None = None

    # -- paths ----------------------------------------------------------------------------------------------
    @property
    def config_file(self) -> Path:
        return self.work / "config.yaml"

    @property
    def last(self) -> Path:
        return self.work / "last.pt"

    @property
    def best(self) -> Path:
        return self.work / "best.pt"

    @property
    def results_file(self) -> Path:
        return self.work / "results.json"

    @property
    def staging(self) -> Path:
        return self.path / STAGING

    def holds_run(self) -> bool:
        """The folder holds a run's files (a checkpoint, a log, results, or a config.yaml a run wrote); a user's
        own ``config.yaml`` or ``tb/`` is not a run."""
        return any((self.path / name).exists() for name in RUN_DATA) or _written_by_run(self.path / "config.yaml")

    def foreign_files(self) -> list[str]:
        """Files a run would write that are there without a run (a user's own ``config.yaml``, ``tb/``, ...);
        the bad-clip lists of a run that stopped at its data check are not (the next run writes its own)."""
        if self.holds_run():
            return []
        return [name for name in run_files(self.path) if not name.startswith("bad_clips_")]

    def is_complete(self) -> bool:
        return self.results_file.is_file()

    def results(self) -> RunResult:
        """The finished run's :class:`RunResult` (a one-line ``ValueError`` for a file that is not one)."""
        try:
            data = json.loads(self.results_file.read_text())
        except json.JSONDecodeError as err:
            raise ValueError(f"{self.results_file} is not JSON: {err}") from None
        return RunResult.from_dict(data, str(self.results_file))

    @property
    def resume_config_file(self) -> Path:
        """The config.yaml of the run that ``--resume`` continues: the new run's, when an ``--overwrite`` was
        killed after the new run's first checkpoint (:meth:`prepare` then finishes replacing the old one)."""
        pending = self.staging / "config.yaml"
        return pending if (self.staging / "last.pt").is_file() and pending.is_file() else self.path / "config.yaml"

    def saved_config(self) -> dict | None:
        """The run's ``config.yaml`` as this version reads it (:func:`canonical_config`); None without one."""
        from ..schema import load_yaml

        return canonical_config(load_yaml(self.config_file)) if self.config_file.is_file() else None

    # -- life cycle -----------------------------------------------------------------------------------------
    def prepare(self) -> bool:
        """Lock the folder and check it for this mode; True when there is a checkpoint to resume.

        Under the lock, what a killed process left is tidied first: its temporary files, and an interrupted
        ``--overwrite`` (finished when the new run had written its checkpoint, else undone). A command that fails
        before the run writes its first file leaves no folder behind (:meth:`release`).
        """
        existing = self.path
        while not existing.exists():
            existing = existing.parent
        if not existing.is_dir() or not os.access(existing, os.W_OK | os.X_OK):
            raise OSError(f"output folder {self.path} is not writable ({existing} is read-only or not a folder)")
        if self.unique:
            self._claim_name(existing)
        elif not self.path.exists():
            try:
                self.path.mkdir(parents=True)
            except OSError as err:
                raise OSError(f"cannot create output folder {self.path}: {err.strerror or err}") from None
            self._created = existing
        self._lock.acquire()
        lifecycle_hook("locked")
        try:
            self._recover()
            foreign = self.foreign_files()
            if foreign and self.mode != "resume":
                raise RunExistsError(
                    f"output folder {self.path} holds {', '.join(foreign)} but no run; a run writes "
                    "those names: move them, or use another --out"
                )
            if self.mode == "new" and self.holds_run():
                what = "a finished run" if self.is_complete() else "a run"
                raise RunExistsError(
                    f"output folder {self.path} already holds {what}; use --resume to continue it, "
                    "--overwrite to replace it, or another --out"
                )
            lost = [n for n in ("best.pt", "results.json") if (self.path / n).is_file()]
            if self.mode == "resume" and lost and not self.last.is_file():
                raise RunExistsError(
                    f"--resume {self.path}: it holds {' and '.join(lost)} but no last.pt, which a resume starts "
                    "from (a run writes last.pt first); nothing was changed. Put last.pt back, or use --overwrite "
                    "to train the run again (replacing them), or another --out"
                )
            if self.mode == "overwrite" and self.holds_run():
                self.staging.mkdir()
                self.work = self.staging
        except BaseException:
            self.release()
            raise
        return self.mode == "resume" and self.last.is_file()

    def _recover(self) -> None:
        """Tidy what a killed process left (we hold the lock: nobody else writes here)."""
        for folder in (self.path, self.staging):
            remove_orphans(folder)
        if self.staging.is_dir():
            if (self.staging / "last.pt").is_file():
                log.warning(
                    "%s: finishing the --overwrite that a killed process left (its new run had written a checkpoint)",
                    self.path,
                )
                self._replace_old_run()
            else:
                log.warning(
                    "%s: removed the new run of a killed --overwrite (it had written no checkpoint; the "
                    "old run is as it was)",
                    self.path,
                )
                shutil.rmtree(self.staging)
        if (self.path / REPLACED).is_dir():
            shutil.rmtree(self.path / REPLACED)

    def _replace_old_run(self) -> None:
        """Move the old run's files aside, the new run's into the folder, then delete the old ones."""
        trash = self.path / REPLACED
        trash.mkdir(exist_ok=True)
        for name in run_files(self.path):
            if not (trash / name).exists():
                os.replace(self.path / name, trash / name)
        for p in self.staging.iterdir():
            os.replace(p, self.path / p.name)
        self.staging.rmdir()
        shutil.rmtree(trash)

    def commit(self) -> bool:
        """After the first checkpoint of a run that replaces another: the old run's files go, the new run's take
        their place. True when files moved (the caller then writes to :attr:`work`, now the folder itself)."""
        if self.work == self.path:
            return False
        self._replace_old_run()
        self.work = self.path
        return True

    def _claim_name(self, existing: Path) -> None:
        """Create the first of ``path``, ``path-1``, ... that does not exist (``mkdir`` fails for all but one of
        the processes that try a name at once) and make it this run's folder."""
        base = self.path
        try:
            base.parent.mkdir(parents=True, exist_ok=True)
            for k in itertools.count():
                folder = base if k == 0 else base.with_name(f"{base.name}-{k}")
                try:
                    folder.mkdir()
                    break
                except FileExistsError:
                    continue
        except OSError as err:
            raise OSError(f"cannot create output folder {base}: {err.strerror or err}") from None
        self.path = self.work = folder
        self._lock = _Lock(folder)
        self._created = existing

    def release(self) -> None:
        """Unlock; a replacing run that wrote no checkpoint is removed (the old run stays), and a folder this
        object created is removed again when nothing was written to it."""
        if self.work != self.path and self.staging.is_dir():
            shutil.rmtree(self.staging)
            self.work = self.path
        self._lock.release()
        if self._created is not None:
            folder = self.path
            while folder != self._created and folder.is_dir() and not any(folder.iterdir()):
                folder.rmdir()
                folder = folder.parent
            self._created = None

    def check_resume_config(self, saved: dict, requested: dict) -> None:
        """A resumed run keeps its config: raise naming every changed key not in :data:`RESUMABLE`."""
        diff = config_diff(canonical_config(saved), canonical_config(requested), RESUMABLE)
        if diff:
            raise ConfigError(
                f"cannot resume {self.path} with a changed config ({'; '.join(diff)}); a resumed run "
                "keeps its configuration (start a new run with --out, or --overwrite)"
            )

    def write_config(self, config) -> None:
        """``config.yaml``, marked as written by a run (a user's own config.yaml in the folder is not a run)."""
        write_text(self.config_file, CONFIG_HEADER + yaml_dump(canonical_config(config.to_dict())))

    def mark_complete(self, result: RunResult) -> None:
        """Write ``results.json`` atomically: the run is finished."""
        write_text(self.results_file, json.dumps(result.to_dict(), indent=1))


def _written_by_run(config_file: Path) -> bool:
    try:
        with config_file.open(encoding="utf-8", errors="replace") as fh:
            return fh.readline() == CONFIG_HEADER
    except OSError:
        return False
