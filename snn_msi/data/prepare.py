"""Turn a folder of videos ``<label>/<clip>.<ext>`` into the Kinetics-Sounds seed layout with PyAV.

Per clip: a mono wav at 22,050 Hz and ``n_frames`` evenly spaced jpg frames; ``my_train.txt`` /
``my_test.txt`` list ``<clip_id>,<n_frames>,<class_index>``. Parallel over clips, resumable (finished clips are
skipped), with a report of the clips that failed (unreadable, no audio stream, too short).

Every input video gets exactly one clip id, whatever its name (:func:`clip_id`): the file name without its
extension, with the characters a list line or a folder name cannot hold written as ``%XX`` (UTF-8 bytes; the
bytes of a name that is not UTF-8 too), so ``urllib.parse.unquote(id, errors="surrogateescape")`` gives the name
back. Where names would still collide, the id is made longer: the extension is kept when one class has the same
name with several extensions, ``__<label>`` is appended when two classes have the same name (and ``~2``, ``~3``
in the unlikely case that this too is taken). ``clip_ids.json`` maps every id to its video (and every label
folder written to its source folder), and ``prepare_report.json`` lists the ids that differ from the file names.
Every file is written atomically: a full or read-only disk stops with one line naming the file, leaving no
partial file.
"""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import shutil
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from ..files import atomic_path, write_text
from .base import require_dir, stratified_split
from .scan import label_folders

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v"}
#: characters written as %XX wherever they are in a name (list separators, path separators, the escape itself)
_RESERVED = set("%,/\\")
#: longest id in UTF-8 bytes (a folder name and ``<id>.wav`` must fit the usual 255-byte limit)
MAX_ID_BYTES = 200


def clip_id(name: str) -> str:
    """A name (a file name without extension, or a label folder) as an id that a list line and a folder name
    hold: ``%``, ``,``, ``/``, ``\\``, characters that are not printable, leading or trailing white space, a
    leading ``.`` and the bytes of a non-UTF-8 name (lone surrogates of ``os.fsdecode``) are written ``%XX``.
    ``urllib.parse.unquote(clip_id(n), errors="surrogateescape") == n``, except for a name too long for a file
    name, which is cut and given a hash of the full name (``clip_ids.json`` maps it back)."""
    out = []
    for i, c in enumerate(name):
        if 0xDC80 <= ord(c) <= 0xDCFF:  # a byte of a name that is not UTF-8
            out.append(f"%{ord(c) - 0xDC00:02X}")
        elif c in _RESERVED or not c.isprintable() or _at_edge(c, i, len(name)):
            out.append("".join(f"%{b:02X}" for b in c.encode("utf-8")))
        else:
            out.append(c)
    text = "".join(out)
    if len(text.encode("utf-8")) <= MAX_ID_BYTES:
        return text
    digest = hashlib.sha1(name.encode("utf-8", "surrogateescape")).hexdigest()[:12]
    cut = text.encode("utf-8")[: MAX_ID_BYTES - 13].decode("utf-8", "ignore")
    cut = cut[: cut.rfind("%")] if "%" in cut[-2:] else cut  # never half an escape
    return f"{cut}~{digest}"


def _at_edge(c: str, i: int, n: int) -> bool:
    """White space at either end, or a ``.`` at the start (a hidden file, ``.`` or ``..``)."""
    return (c.isspace() and i in (0, n - 1)) or (c == "." and i == 0)


def assign_ids(videos: list[tuple[str, Path]]) -> list[str]:
    """One distinct id per ``(label folder, video)`` (see the module docstring), in the order given."""
    stems: dict[tuple[str, str], int] = {}
    for label, v in videos:
        stems[label, v.stem] = stems.get((label, v.stem), 0) + 1
    ids = [clip_id(v.stem if stems[label, v.stem] == 1 else v.name) for label, v in videos]
    classes_of: dict[str, set[str]] = {}
    for (label, _), i in zip(videos, ids, strict=True):
        classes_of.setdefault(i, set()).add(label)
    ids = [f"{i}__{clip_id(label)}" if len(classes_of[i]) > 1 else i for (label, _), i in zip(videos, ids, strict=True)]
    taken: set[str] = set()
    for k, i in enumerate(ids):
        unique, n = i, 1
        while unique in taken:
            n += 1
            unique = f"{i}~{n}"
        taken.add(unique)
        ids[k] = unique
    return ids


def _extract(video: Path, wav_out: Path, frames_out: Path, n_frames: int, sample_rate: int) -> str | None:
    """Write one clip; returns a failure reason or None."""
    import av

    try:
        container = av.open(str(video))
    except Exception as err:  # an undecodable container is a reported failure, not a crash
        return f"unreadable: {type(err).__name__}"
    with container:
        if not container.streams.audio:
            return "no audio stream"
        if not container.streams.video:
            return "no video stream"
        try:
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks = []
            for frame in container.decode(audio=0):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
            for out in resampler.resample(None):
                chunks.append(out.to_ndarray().reshape(-1))
            container.seek(0)
            images = [f.to_image() for f in container.decode(video=0)]
        except Exception as err:  # corrupt streams are reported per clip
            return f"unreadable: {type(err).__name__}"
    audio = np.concatenate(chunks) if chunks else np.zeros(0, np.float32)
    if audio.size < sample_rate // 10:
        return "too short (audio)"
    if len(images) < n_frames:
        return f"too short ({len(images)} frames < {n_frames})"
    try:
        for i, j in enumerate(np.linspace(0, len(images) - 1, n_frames).round().astype(int)):
            with atomic_path(frames_out / f"frame_{i}.jpg") as tmp:
                images[j].convert("RGB").save(tmp, format="JPEG", quality=90)
        with atomic_path(wav_out) as tmp:  # the wav is written last: its presence marks a finished clip
            sf.write(tmp, audio, sample_rate, format="WAV")
    except OSError:  # a full or read-only disk: no half-written clip stays behind
        shutil.rmtree(frames_out, ignore_errors=True)
        raise
    return None


def _frame_count(folder: Path) -> int:
    """How many frames ``frame_0.jpg``, ``frame_1.jpg``, ... a prepared clip folder holds in a row (-1: others
    besides them)."""
    names = {p.name for p in folder.glob("frame_*.jpg")} if folder.is_dir() else set()
    n = next(k for k in itertools.count() if f"frame_{k}.jpg" not in names)
    return n if len(names) == n else -1


def _job(args):
    return args[0], _extract(*args[1:])


def prepare(
    video_dir: str | Path,
    out_root: str | Path,
    n_frames: int = 10,
    sample_rate: int = 22050,
    test_fraction: float = 0.2,
    seed: int = 0,
    workers: int | None = None,
    progress: bool = True,
) -> dict:
    """Convert ``video_dir`` into the seed layout under ``out_root``; returns ``{"done", "skipped", "failed",
    "renamed"}`` (``renamed``: video -> id, for the ids that are not the file name without extension)."""
    video_dir, out_root = require_dir(Path(video_dir), "video folder"), Path(out_root)
    classes = label_folders(video_dir)
    clips = [
        (label, v)
        for label, c in enumerate(classes)
        for v in sorted((video_dir / c).iterdir())
        if v.suffix.lower() in VIDEO_EXTS
    ]
    if not clips:
        raise ValueError(f"{video_dir}: no videos found as <label>/<clip>.<ext> ({', '.join(sorted(VIDEO_EXTS))})")
    _, test_idx = stratified_split([label for label, _ in clips], test_fraction, seed)
    test_set = set(test_idx)
    ids = assign_ids([(classes[label], v) for label, v in clips])
    folders = [clip_id(c) for c in classes]
    renamed = {os.fsdecode(v.relative_to(video_dir)): i for (_, v), i in zip(clips, ids, strict=True) if i != v.stem}
    jobs, skipped, split_of = [], 0, {}
    for i, ((label, v), clip) in enumerate(zip(clips, ids, strict=True)):
        split = "test" if i in test_set else "train"
        split_of[clip] = (split, label)
        wav = out_root / split / "audio" / folders[label] / f"{clip}.wav"
        frames = out_root / split / "video" / folders[label] / clip
        if wav.is_file() and _frame_count(frames) == n_frames:
            skipped += 1
            continue
        wav.unlink(missing_ok=True)  # a clip made with another --frames is made again from nothing: its wav
        shutil.rmtree(frames, ignore_errors=True)  # first, so a kill midway leaves it unfinished, not mixed
        jobs.append((clip, v, wav, frames, n_frames, sample_rate))
    failed = {}
    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    with ProcessPoolExecutor(workers) as pool:
        for clip, reason in tqdm(pool.map(_job, jobs), total=len(jobs), desc="prepare", disable=not progress):
            if reason:
                failed[clip] = reason
    for split in ("train", "test"):
        lines = [
            f"{clip},{n_frames},{label}"
            for clip, (s, label) in sorted(split_of.items())
            if s == split and clip not in failed
        ]
        write_text(out_root / f"my_{split}.txt", "\n".join(lines) + ("\n" if lines else ""))
    sources = {i: os.path.join(classes[label], v.name) for (label, v), i in zip(clips, ids, strict=True)}
    mapping = {"classes": dict(zip(folders, classes, strict=True)), "clips": sources}
    write_text(out_root / "clip_ids.json", json.dumps(mapping, indent=1))
    report = {"done": len(jobs) - len(failed), "skipped": skipped, "failed": failed, "renamed": renamed}
    write_text(out_root / "prepare_report.json", json.dumps(report, indent=1))
    return report


__all__ = ["prepare"]
