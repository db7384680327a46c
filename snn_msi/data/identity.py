"""What identifies the data a run trained on: its class names and each split's clip count.

Checkpoints carry this record, so a run resumed with ``--data-root`` (data that moved) is checked to be on the
same data, and a model evaluated on a folder found elsewhere is checked to be asked about the same classes in the
same order (a model's class ``i`` is the ``i``-th name it trained on, whatever another folder's ``i``-th is).
"""

from __future__ import annotations

from collections.abc import Sequence

from .config import SPLITS


def base_dataset(ds):
    """The data set under any ``Subset`` (or other wrapper with a ``dataset`` attribute)."""
    while hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


def class_names(ds) -> list[str] | None:
    """The class names of a data set (None where it has none)."""
    classes = getattr(base_dataset(ds), "classes", None)
    return None if classes is None else [str(c) for c in classes]


def data_record(sets: Sequence) -> dict:
    """``{"classes": [...] or None, "clips": {"train": n, "val": n, "test": n}}`` of ``(train, val, test)``."""
    return {"classes": class_names(sets[0]), "clips": {s: len(d) for s, d in zip(SPLITS, sets, strict=True)}}


def class_mismatch(trained: list[str] | None, found: list[str] | None) -> str | None:
    """Why a model trained on the classes ``trained`` cannot be scored on data with the classes ``found`` (None:
    it can; also where either is unknown)."""
    if trained is None or found is None or trained == found:
        return None
    missing = [c for c in trained if c not in found]
    extra = [c for c in found if c not in trained]
    parts = [f"lacks {', '.join(missing)}" if missing else "", f"adds {', '.join(extra)}" if extra else ""]
    why = "; ".join(p for p in parts if p) or "orders them otherwise"
    return f"the model's classes are {', '.join(trained)}; the data {why}"


def data_mismatch(saved: dict | None, now: dict) -> str | None:
    """Why ``now`` is not the data of the record ``saved`` (None: it is, or nothing was saved)."""
    if not saved:
        return None
    why = class_mismatch(saved.get("classes"), now.get("classes"))
    if why is not None:
        return why
    if saved.get("clips") and saved["clips"] != now["clips"]:
        counts = ", ".join(f"{s} {saved['clips'].get(s)} -> {now['clips'].get(s)}" for s in SPLITS)
        return f"the splits' clip counts differ ({counts})"
    return None
