"""The numbers one pass over a split produces, as a typed record (what the trainer logs and policies read).

Beside the accuracies (fused prediction, each unimodal head, each modality's part of the fused logits), every
pass gives the imbalance numbers BalanceBenchmark reports (GeWu-Lab/BalanceBenchmark@4c1482f,
``balancemm/evaluation/precisions.py`` and ``modalitys.py: Calculate_Shapley``):

- macro F1 of the fused prediction and of each unimodal head, and the fused prediction's mAP (scikit-learn's
  ``f1_score(average="macro")`` and ``average_precision_score``, the mAP of the official OPM/OGM code,
  GeWu-Lab/BML_TPAMI2024 ``code/main.py: val``);
- each modality's Shapley contribution to the fused accuracy (evaluation passes only): with the value of a
  coalition S the fused accuracy when the modalities outside S are masked (their features set to zero, so the
  encoders run once per batch), ``phi_a = (v(a) - v(0)) / 2 + (v(av) - v(v)) / 2`` and ``phi_v`` likewise
  (two players: the weights 1/2, 1/2 of the Shapley formula); ``phi_a + phi_v = v(av) - v(0)``. BalanceBenchmark
  masks the raw input and runs the encoders again for every coalition; masking the feature is the
  valuation paper's ``exec_drop`` and costs three extra passes of the fusion layer only.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping
from dataclasses import MISSING, asdict, dataclass, fields

import numpy as np
import torch
import torch.distributed as dist

__all__ = [
    "SplitMetrics",
    "batch_sums",
    "SUM_FIELDS",
    "MetricsCollector",
    "shapley_two",
    "macro_f1",
    "mean_average_precision",
    "per_class",
    "confusion",
]

#: per-batch sums the trainer accumulates (then all-reduces) to make a :class:`SplitMetrics`
SUM_FIELDS = ("loss", "acc", "acc_audio", "acc_visual", "acc_fused_audio", "acc_fused_visual", "n")
#: the coalition accuracies behind the Shapley values (sums of correct predictions; evaluation passes only)
COALITIONS = ("only_audio", "only_visual", "none")

_NAN = float("nan")


@dataclass(frozen=True)
class SplitMetrics:
    """Loss and accuracies of one split, each in [0, 1], and its imbalance numbers.

    ``acc``: fused prediction; ``acc_audio`` / ``acc_visual``: the unimodal heads; ``acc_fused_audio`` /
    ``acc_fused_visual``: each modality's part of the fused logits (what OGM-GE balances); ``n``: samples.
    ``f1`` / ``f1_audio`` / ``f1_visual``: macro F1 of the fused prediction and the heads; ``map``: the fused
    prediction's mean average precision (over the classes present); ``shapley_audio`` / ``shapley_visual``:
    each modality's Shapley contribution to the fused accuracy (NaN where not computed: the training pass).
    """

    loss: float
    acc: float
    acc_audio: float
    acc_visual: float
    acc_fused_audio: float
    acc_fused_visual: float
    n: int
    f1: float = _NAN
    f1_audio: float = _NAN
    f1_visual: float = _NAN
    map: float = _NAN
    shapley_audio: float = _NAN
    shapley_visual: float = _NAN

    @classmethod
    def from_sums(cls, sums: torch.Tensor, **extra: float) -> SplitMetrics:
        s = dict(zip(SUM_FIELDS, sums.tolist(), strict=True))
        n = max(s.pop("n"), 1.0)
        return cls(**{k: v / n for k, v in s.items()}, n=int(n), **extra)

    def row(self, prefix: str) -> dict[str, float]:
        """``{"<prefix>_loss": ..., "<prefix>_acc": ..., "<prefix>_n": ...}`` for the logs."""
        return {f"{prefix}_{k}": v for k, v in asdict(self).items()}

    @classmethod
    def from_row(cls, row: Mapping[str, float], prefix: str) -> SplitMetrics:
        """The inverse of :meth:`row` (other keys ignored; a number a row predates, e.g. ``f1``, is NaN)."""
        values = {f.name: row[f"{prefix}_{f.name}"] for f in fields(cls) if f"{prefix}_{f.name}" in row}
        missing = [f.name for f in fields(cls) if f.default is MISSING and f.name not in values]
        if missing:
            raise KeyError(f"no {', '.join(f'{prefix}_{k}' for k in missing)}")
        return cls(**{**values, "n": int(values["n"])})


def batch_sums(loss: torch.Tensor, out, y: torch.Tensor) -> torch.Tensor:
    """The :data:`SUM_FIELDS` of one batch (``loss`` is the batch mean)."""
    n = y.numel()
    correct = [z.argmax(1).eq(y).sum() for z in (out.fused, out.audio, out.visual, out.fused_audio, out.fused_visual)]
    return torch.stack([loss.detach().float() * n, *correct, torch.tensor(n, device=y.device)]).float()


def shapley_two(v_av: float, v_a: float, v_v: float, v_none: float) -> tuple[float, float]:
    """``(phi_audio, phi_visual)``: the Shapley values of two players from the values of the four coalitions."""
    return 0.5 * (v_a - v_none) + 0.5 * (v_av - v_v), 0.5 * (v_v - v_none) + 0.5 * (v_av - v_a)


def macro_f1(y: np.ndarray, pred: np.ndarray, classes: int) -> float:
    """scikit-learn's macro F1 over the classes ``0 .. classes-1`` (0 where precision and recall are undefined)."""
    from sklearn.metrics import f1_score

    return float(f1_score(y, pred, labels=list(range(classes)), average="macro", zero_division=0))


def mean_average_precision(y: np.ndarray, probs: np.ndarray) -> float:
    """Mean over the classes present in ``y`` of scikit-learn's average precision of ``probs[:, c]``.

    The official OPM code averages over every class (``average_precision_score(onehot, probs)``); a class with
    no sample in the split has no defined AP (scikit-learn warns and scores it 0), so it is left out here.
    """
    from sklearn.metrics import average_precision_score

    present = np.unique(y)
    if len(present) == 0:
        return _NAN
    onehot = (y[:, None] == present[None, :]).astype(np.float64)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return float(average_precision_score(onehot, probs[:, present], average="macro"))


def per_class(y: np.ndarray, pred: np.ndarray, classes: int) -> dict[str, np.ndarray]:
    """scikit-learn's precision, recall, F1 and support of every class ``0 .. classes-1`` (0 where undefined)."""
    from sklearn.metrics import precision_recall_fscore_support

    p, r, f, n = precision_recall_fscore_support(y, pred, labels=list(range(classes)), zero_division=0)
    return {"precision": p, "recall": r, "f1": f, "support": n}


def confusion(y: np.ndarray, pred: np.ndarray, classes: int) -> np.ndarray:
    """scikit-learn's confusion matrix ``[true class, predicted class]`` (counts) over ``0 .. classes-1``."""
    from sklearn.metrics import confusion_matrix

    return confusion_matrix(y, pred, labels=list(range(classes)))


class MetricsCollector:
    """Accumulates one pass over a split: the :data:`SUM_FIELDS`, the coalition accuracies, and the
    predictions that F1 and mAP need (kept on the CPU: ``[N, C]`` probabilities of the fused output)."""

    def __init__(self, device: torch.device | str = "cpu") -> None:
        self.sums = torch.zeros(len(SUM_FIELDS), device=device)
        self.coalitions = torch.zeros(len(COALITIONS), device=device)
        self.has_coalitions = False
        self.parts: dict[str, list[np.ndarray]] = {"y": [], "probs": [], "pred_audio": [], "pred_visual": []}

    @torch.no_grad()
    def add(self, loss: torch.Tensor, out, y: torch.Tensor, masked: dict | None = None) -> None:
        """One batch; ``masked``: ``{"only_audio": logits, "only_visual": logits, "none": logits}`` (the fused
        output with the other modality masked, with both masked)."""
        self.sums += batch_sums(loss, out, y)
        if masked is not None:
            self.has_coalitions = True
            self.coalitions += torch.stack([masked[k].argmax(1).eq(y).sum() for k in COALITIONS]).float()
        self.parts["y"].append(y.cpu().numpy())
        self.parts["probs"].append(torch.softmax(out.fused.detach().float(), 1).cpu().numpy())
        self.parts["pred_audio"].append(out.audio.argmax(1).cpu().numpy())
        self.parts["pred_visual"].append(out.visual.argmax(1).cpu().numpy())

    def predictions(self) -> dict[str, np.ndarray]:
        """This process's samples: ``y`` (labels), ``fused`` / ``audio`` / ``visual`` (predicted classes) and
        ``probs`` ``[N, C]`` (the fused output's softmax)."""
        cat = {k: np.concatenate(v) if v else np.zeros(0) for k, v in self.parts.items()}
        fused = cat["probs"].argmax(1) if len(cat["y"]) else np.zeros(0, dtype=np.int64)
        heads = {"audio": cat["pred_audio"], "visual": cat["pred_visual"]}
        return {"y": cat["y"], "fused": fused, **heads, "probs": cat["probs"]}

    def result(self) -> SplitMetrics:
        """The split's numbers (sums all-reduced and predictions gathered across ranks when distributed)."""
        sums, coalitions, parts = self.sums, self.coalitions, self.parts
        if dist.is_available() and dist.is_initialized():
            dist.all_reduce(sums)
            dist.all_reduce(coalitions)
            gathered: list = [None] * dist.get_world_size()
            dist.all_gather_object(gathered, parts)
            parts = {k: [a for g in gathered for a in g[k]] for k in parts}
        extra: dict[str, float] = {}
        if parts["y"]:
            y = np.concatenate(parts["y"])
            probs = np.concatenate(parts["probs"])
            classes = probs.shape[1]
            extra.update(
                f1=macro_f1(y, probs.argmax(1), classes),
                f1_audio=macro_f1(y, np.concatenate(parts["pred_audio"]), classes),
                f1_visual=macro_f1(y, np.concatenate(parts["pred_visual"]), classes),
                map=mean_average_precision(y, probs),
            )
        n = float(sums[-1])
        if self.has_coalitions and n > 0:
            v_a, v_v, v_none = (float(c) / n for c in coalitions)
            v_av = float(sums[SUM_FIELDS.index("acc")]) / n
            extra["shapley_audio"], extra["shapley_visual"] = shapley_two(v_av, v_a, v_v, v_none)
        return SplitMetrics.from_sums(sums.cpu(), **{k: (v if math.isfinite(v) else _NAN) for k, v in extra.items()})
