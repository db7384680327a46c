"""Turn a folder of videos ``<label>/<clip>.<ext>`` into the Kinetics-Sounds seed layout with PyAV.

Per clip: a mono wav at 22,050 Hz and ``n_frames`` evenly spaced jpg frames; ``my_train.txt`` /
``my_test.txt`` list ``<clip>,<n_frames>,<class_index>``. Parallel over clips, resumable (finished clips are
skipped), with a report of the clips that failed (unreadable, no audio stream, too short).

A clip's id is its file name without extension; a name that occurs in more than one class folder would make the
list files ambiguous, so each of those clips gets the id ``<name>__<label>`` (and the report says so).
"""

from __future__ import annotations

import json
import os
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import numpy as np
import soundfile as sf
from tqdm.auto import tqdm

from .base import require_dir, stratified_split

VIDEO_EXTS = {".mp4", ".avi", ".mkv", ".mov", ".webm", ".flv", ".m4v"}


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
    frames_out.mkdir(parents=True, exist_ok=True)
    for i, j in enumerate(np.linspace(0, len(images) - 1, n_frames).round().astype(int)):
        images[j].convert("RGB").save(frames_out / f"frame_{i}.jpg", quality=90)
    wav_out.parent.mkdir(parents=True, exist_ok=True)
    tmp = wav_out.with_name(f".{wav_out.name}.tmp.wav")
    sf.write(tmp, audio, sample_rate)
    os.replace(tmp, wav_out)  # the wav is written last: its presence marks a finished clip
    return None


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
    """Convert ``video_dir`` into the seed layout under ``out_root``; returns ``{"done", "skipped", "failed"}``."""
    video_dir, out_root = require_dir(Path(video_dir), "video folder"), Path(out_root)
    classes = sorted(p.name for p in video_dir.iterdir() if p.is_dir())
    clips = [(label, v) for label, c in enumerate(classes) for v in sorted((video_dir / c).iterdir())
             if v.suffix.lower() in VIDEO_EXTS]  # fmt: skip
    if not clips:
        raise ValueError(f"{video_dir}: no videos found as <label>/<clip>.<ext> ({', '.join(sorted(VIDEO_EXTS))})")
    _, test_idx = stratified_split([label for label, _ in clips], test_fraction, seed)
    test_set = set(test_idx)
    stems = [v.stem for _, v in clips]
    renamed = {}
    jobs, skipped, split_of = [], 0, {}
    for i, (label, v) in enumerate(clips):
        split = "test" if i in test_set else "train"
        clip = v.stem if stems.count(v.stem) == 1 else f"{v.stem}__{classes[label]}"
        if clip != v.stem:
            renamed[str(v.relative_to(video_dir))] = clip
        split_of[clip] = (split, label)
        wav = out_root / split / "audio" / classes[label] / f"{clip}.wav"
        frames = out_root / split / "video" / classes[label] / clip
        if wav.is_file() and all((frames / f"frame_{k}.jpg").is_file() for k in range(n_frames)):
            skipped += 1
            continue
        jobs.append((clip, v, wav, frames, n_frames, sample_rate))
    failed = {}
    workers = workers or min(len(jobs), os.cpu_count() or 1) or 1
    with ProcessPoolExecutor(workers) as pool:
        for clip, reason in tqdm(pool.map(_job, jobs), total=len(jobs), desc="prepare", disable=not progress):
            if reason:
                failed[clip] = reason
    for split in ("train", "test"):
        lines = [f"{clip},{n_frames},{label}" for clip, (s, label) in sorted(split_of.items())
                 if s == split and clip not in failed]  # fmt: skip
        (out_root / f"my_{split}.txt").write_text("\n".join(lines) + ("\n" if lines else ""))
    report = {"done": len(jobs) - len(failed), "skipped": skipped, "failed": failed, "renamed": renamed}
    (out_root / "prepare_report.json").write_text(json.dumps(report, indent=1))
    return report


__all__ = ["prepare"]
