"""Reading a data tree: label folders, a label folder's clips and a clip's frame images.

What is read where users keep their own files: extensions in any case (``clip.WAV``, ``frame_0.PNG``), frames as
``.jpg``, ``.jpeg`` or ``.png``, and hidden or tool folders (``.ipynb_checkpoints``, ``.git``, ``__MACOSX``) never
taken for a class.
"""

from __future__ import annotations

import itertools
from collections import Counter
from pathlib import Path

from .sample import ClipRecord

IMAGE_EXTS = (".jpg", ".jpeg", ".png")
AUDIO_EXTS = (".wav",)


def files_with_suffix(folder: Path, suffixes: tuple[str, ...]) -> list[Path]:
    """The files of ``folder`` whose suffix, in any case, is one of ``suffixes`` (lower case), sorted by name;
    none when the folder does not exist."""
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.iterdir() if p.suffix.lower() in suffixes and p.is_file())


def frame_paths(folder: Path) -> list[Path]:
    """A clip's frame images in ``folder``, in frame order (``frame_2`` before ``frame_10``)."""
    return sorted(files_with_suffix(folder, IMAGE_EXTS), key=lambda p: (len(p.stem), p.stem))


def label_folders(base: Path) -> list[str]:
    """The sorted names of the label folders of ``base``: its sub-folders but hidden (``.name``) and tool ones
    (``__name``)."""
    return sorted(p.name for p in base.iterdir() if p.is_dir() and not p.name.startswith((".", "__")))


def single_images(label_dir: Path) -> dict[str, Path]:
    """The images ``label_dir/<clip>.<ext>`` by clip name (the first by name where a clip has several)."""
    out: dict[str, Path] = {}
    for p in files_with_suffix(label_dir, IMAGE_EXTS):
        out.setdefault(p.stem, p)
    return out


def clip_frames(label_dir: Path, clip: str, singles: dict[str, Path] | None = None) -> list[Path]:
    """A clip's frames: the images of ``label_dir/clip/``, else the one image ``label_dir/clip.<ext>``
    (``singles``: :func:`single_images` of ``label_dir``, listed once for all its clips)."""
    frames = frame_paths(label_dir / clip)
    if frames:
        return frames
    single = (single_images(label_dir) if singles is None else singles).get(clip)
    return [single] if single is not None else []


def scan_labelled_clips(
    base: Path, classes: list[str], visual_base: Path | None = None, qualified_ids: bool = True
) -> list[ClipRecord]:
    """Every ``<label>/<clip>.wav`` under ``base`` with its frames (under ``visual_base`` when the images live
    in a tree of their own), labelled by ``classes.index(label)``, sorted by name.

    A clip's id is ``<label>/<clip>`` (``qualified_ids``) or ``<clip>`` (for data sets whose clip names are
    unique across classes).
    """
    records = []
    for label, name in enumerate(classes):
        images = (visual_base or base) / name
        singles = single_images(images)
        for w in files_with_suffix(base / name, AUDIO_EXTS):
            clip_id = f"{name}/{w.stem}" if qualified_ids else w.stem
            records.append(ClipRecord(clip_id, label, w, clip_frames(images, w.stem, singles)))
    return records


def what_is_there(folder: Path) -> str:
    """The kinds of file under ``folder`` (for an error that found no clips): ``"12 .mp3, 3 .txt"`` or
    ``"no files"``."""
    files = itertools.islice((p for p in folder.rglob("*") if p.is_file()), 100_000)
    kinds = Counter(p.suffix.lower() or "(no extension)" for p in files)
    return ", ".join(f"{n} {ext}" for ext, n in kinds.most_common(4)) or "no files"
