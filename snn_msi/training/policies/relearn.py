"""Diagnosing and re-learning: re-initialise each encoder towards its initial weights, in proportion to how
badly its features' clusters generalise from the training to a held-out split.

Wei, Li, Feng & Hu, "Diagnosing and re-learning for balanced multimodal learning", ECCV 2024 (arXiv
2407.09705); code: github.com/GeWu-Lab/Diagnosing_Relearning_ECCV2024@025085e (``code/ours.py: purity_score,
reinit_score, reinit, get_feature, main``).
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import torch

from ...schema import check
from . import register_method
from .base import MODALITIES, Composition, EpochView, Policy, PolicyConfig, log_fields


@dataclass
class RelearnConfig(PolicyConfig):
    """``lam``: ``move_lambda`` (3); ``reinit_epoch``: diagnose after every epoch e with ``e % reinit_epoch == 0``,
    e > 0 (20); ``reinit_num``: at most that many times (3)."""

    lam: float = field(default=3.0, metadata=check(ge=0))
    reinit_epoch: int = field(default=20, metadata=check(ge=1))
    reinit_num: int = field(default=3, metadata=check(ge=0))


def purity(y: np.ndarray, clusters: np.ndarray) -> float:
    """Clustering purity: each cluster labelled with its most frequent class, the accuracy of that labelling.
    y [0, 0, 1, 1], clusters [0, 0, 0, 1]: 0.75."""
    _, yi = np.unique(y, return_inverse=True)
    _, ci = np.unique(clusters, return_inverse=True)
    table = np.zeros((ci.max() + 1, yi.max() + 1), dtype=np.int64)
    np.add.at(table, (ci, yi), 1)
    return float(table.max(1).sum() / len(y))


def cluster_purity(features: np.ndarray, y: np.ndarray, classes: int) -> float:
    """MinMax-scale the features to [-1, 1], k-means with one cluster per class (``random_state=0``, 10 starts:
    scikit-learn's default when the official code was written), and the purity of the clusters."""
    from sklearn.cluster import KMeans
    from sklearn.preprocessing import MinMaxScaler

    x = MinMaxScaler(feature_range=(-1, 1)).fit_transform(features)
    k = min(classes, len(np.unique(x, axis=0)))
    return purity(y, KMeans(n_clusters=k, random_state=0, n_init=10).fit_predict(x))


def reinit_strength(purity_train: float, purity_val: float, lam: float) -> float:
    """``alpha = tanh(lam * |purity_train - purity_val|)``. Gap 0.3, lam 3: tanh(0.9) = 0.716298."""
    return float(np.tanh(lam * abs(purity_train - purity_val)))


@register_method(
    source="Wei et al., ECCV 2024 (arXiv 2407.09705); github.com/GeWu-Lab/Diagnosing_Relearning_ECCV2024@025085e",
    modulates="every reinit_epoch epochs: each encoder's weights <- alpha_m init + (1 - alpha_m) "
    "current, alpha_m from its train/val cluster-purity gap",
    iemf=Composition(True, "acts on the encoders between epochs; IEMF scales the fusion layer each step"),
)
class Relearn(Policy):
    """Diagnosing and re-learning.

    The encoders' initial parameters are kept at setup. After epoch e (at the start of epoch e + 1) with
    ``e % reinit_epoch == 0``, e > 0, at most ``reinit_num`` times: each modality's time-averaged encoder features
    on the training and the validation split (evaluation mode); per split :func:`cluster_purity`;
    ``alpha_m = reinit_strength(...)``; every parameter of encoder m (weights, biases, normalisation affine; not
    the running statistics) becomes ``alpha_m theta_init + (1 - alpha_m) theta``. The optimizer state is kept, as
    in the official code, and the loss is the run's.

    Deviations: the held-out split is the run's validation split (the official code splits CREMA-D's training
    set); k-means is told the 10 starts explicitly (newer scikit-learn defaults to one). BalanceBenchmark
    uses reinit_epoch 15 and reinit_num 2.
    """

    name = "relearn"
    config_class = RelearnConfig
    #: logged each step: the last re-initialisation's strengths and purity gaps, and how many there were.
    log_class = log_fields(
        "RelearnLog", alpha_audio=0.0, alpha_visual=0.0, reinits=0.0, purity_gap_audio=0.0, purity_gap_visual=0.0
    )
    data_parallel = False  # the diagnosis reads one process's features

    def __init__(self, config=None, seed: int = 0) -> None:
        super().__init__(config, seed)
        self.init: dict[str, list[torch.Tensor]] = {}
        self.count = 0

    def setup(self, model):
        groups = model.parameter_groups()
        self.init = {m: [p.detach().clone() for p in groups.encoder(m)] for m in MODALITIES}

    def on_epoch_start(self, view: EpochView):
        done = view.epoch - 1
        if done > 0 and done % self.cfg.reinit_epoch == 0 and self.count < self.cfg.reinit_num:
            self.count += 1
            train, val = view.features("train"), view.features("val")
            alphas = {}
            for m in MODALITIES:
                p_train = cluster_purity(getattr(train, m).numpy(), train.y.numpy(), view.num_classes)
                p_val = cluster_purity(getattr(val, m).numpy(), val.y.numpy(), view.num_classes)
                alphas[m] = reinit_strength(p_train, p_val, self.cfg.lam)
                self.log.update(**{f"purity_gap_{m}": abs(p_train - p_val)})
            self.blend(view.groups, alphas)
            self.log.update(alpha_audio=alphas["audio"], alpha_visual=alphas["visual"])
        self.log.update(reinits=float(self.count))
        return None

    @torch.no_grad()
    def blend(self, groups, alphas: dict[str, float]) -> None:
        """``theta <- alpha_m theta_init + (1 - alpha_m) theta`` for every parameter of each encoder."""
        for m in MODALITIES:
            for p, p0 in zip(groups.encoder(m), self.init[m], strict=True):
                p.copy_(alphas[m] * p0.to(p.device) + (1 - alphas[m]) * p)

    def state_dict(self):
        return {
            **super().state_dict(),
            "count": self.count,
            "init": {m: [t.cpu().clone() for t in ts] for m, ts in self.init.items()},
        }

    def load_state_dict(self, state):
        super().load_state_dict(state)
        self.count = int(state.get("count", 0))
        if "init" in state:
            self.init = {m: [t.clone() for t in ts] for m, ts in state["init"].items()}
