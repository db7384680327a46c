"""Writing files so that a full disk, a read-only folder or a kill never leaves a partial file: every writer of
the package (checkpoints, configs, logs rewritten on resume, HDF5 caches, prepared clips, reports) writes to a
temporary file beside the target and renames it over the target when it is complete.

A failure to write is one :class:`WriteError` (an ``OSError``: the CLI prints it as one line and exits 2) that
names the file and the reason (``No space left on device``, ``Read-only file system``, ...); the temporary file
is removed. Temporary files are named ``.<name>.tmp<pid><suffix>``, so that a run folder's owner can remove those
a killed process left behind (:func:`remove_orphans`). A leaf: data, the energy report (``snn_msi.metrics``), the
run folder and the reports write through it; tables go through :func:`write_csv`.
"""

from __future__ import annotations

import csv
import errno
import os
import shutil
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

__all__ = [
    "WriteError",
    "atomic_path",
    "write_text",
    "write_csv",
    "write_error",
    "is_write_failure",
    "remove_orphans",
    "tmp_path",
]


class WriteError(OSError):
    """A file could not be written (full disk, read-only folder, no permission); one line naming the file."""

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.errno = code


def tmp_path(path: Path) -> Path:
    """The temporary file that :func:`atomic_path` writes before ``path`` (its suffix kept, for writers that choose
    a format by it)."""
    return path.with_name(f".{path.name}.tmp{os.getpid()}{path.suffix}")


def _reason(err: BaseException, folder: Path) -> str:
    """A one-line reason for a failed write: the OS's words, with the free space when the disk may be full."""
    if isinstance(err, OSError) and err.errno:  # the OS's words (HDF5 puts pages of its own around them)
        reason = os.strerror(err.errno)
    elif isinstance(err, OSError) and err.strerror:
        reason = err.strerror.strip().splitlines()[0]
    else:  # a writer's own error (torch: "unexpected pos ..."): on a full disk, say so
        text = str(err).strip()
        reason = text.splitlines()[0] if text else type(err).__name__
    full = isinstance(err, OSError) and err.errno in (errno.ENOSPC, errno.EDQUOT, errno.EFBIG)
    if full or not isinstance(err, OSError):
        try:
            free = shutil.disk_usage(folder).free
        except OSError:
            return reason
        if not isinstance(err, OSError) and free < 2**20:
            reason = os.strerror(errno.ENOSPC)
        reason += f" ({free / 2**20:.1f} MiB free on that disk)"
    return reason


#: errno values of a failed write: full disk or quota, file too large, read-only, no permission, I/O error
WRITE_ERRNOS = (errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EROFS, errno.EACCES, errno.EPERM, errno.EIO)


def is_write_failure(err: BaseException, folder: Path) -> bool:
    """``err`` says that writing failed: an ``OSError`` with a write errno (or a folder that does not exist), or a
    writer's ``RuntimeError`` (torch's "unexpected pos", libsndfile's) on a disk with less than 1 MiB free."""
    if isinstance(err, OSError):
        return err.errno in WRITE_ERRNOS or err.errno == errno.ENOENT and not folder.is_dir()
    if "unexpected pos" in str(err):  # torch.save: the file ended before all was written
        return True
    try:
        return shutil.disk_usage(folder).free < 2**20
    except OSError:
        return False


def write_error(path: Path, err: BaseException, what: str = "") -> WriteError:
    """``err`` (raised while writing ``path``, a ``what``: "checkpoint", ...) as a one-line :class:`WriteError`."""
    if isinstance(err, WriteError):
        return err
    code = err.errno if isinstance(err, OSError) else None
    reason = _reason(err, path.parent if path.parent.is_dir() else Path("."))
    return WriteError(f"cannot write {what + ' ' if what else ''}{path}: {reason}", code)


@contextmanager
def atomic_path(path: str | Path, what: str = "") -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block ends without an error it replaces ``path``.

    Any error removes the temporary file; an error of writing (:func:`is_write_failure`) becomes a
    :class:`WriteError` naming the file (a ``what``: "checkpoint", ...); any other error passes unchanged.
    """
    path = Path(path)
    tmp = tmp_path(path)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        yield tmp
        os.replace(tmp, path)
    except (OSError, RuntimeError) as err:
        if not is_write_failure(err, path.parent):
            raise
        raise write_error(path, err, what) from None
    finally:
        try:
            tmp.unlink(missing_ok=True)
        except OSError:  # a read-only folder: nothing was written there either
            pass


def write_text(path: str | Path, text: str) -> Path:
    """``text`` -> ``path`` (UTF-8), atomically."""
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")
    return Path(path)


def write_csv(path: str | Path, rows: list[dict], fieldnames: Sequence[str] | None = None) -> Path:
    """``rows`` (dicts with the same keys, in column order; ``fieldnames``: the columns, default the first row's)
    -> ``path``, atomically."""
    with atomic_path(path) as tmp, tmp.open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(fieldnames) if fieldnames is not None else list(rows[0]) if rows else [])
        w.writeheader()
        w.writerows(rows)
    return Path(path)


def remove_orphans(folder: Path, names: tuple[str, ...] | None = None) -> list[Path]:
    """Remove the temporary files of :func:`atomic_path` in ``folder`` (of the files ``names``; default all), as a
    killed writer leaves them; only call this while no other process writes there. Returns what was removed."""
    removed = []
    for p in folder.glob(".*.tmp*") if folder.is_dir() else ():
        target = p.name[1:].rsplit(".tmp", 1)[0]
        if p.is_file() and (names is None or target in names):
            p.unlink()
            removed.append(p)
    return removed
