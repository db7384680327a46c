"""The result of one finished run, as a typed record: what the trainer returns, ``results.json`` holds and every
report reads.

``results.json`` stays the flat JSON object it always was (``best_val_acc``, ``best_epoch``, ``epochs``, the test
split's ``test_<metric>`` and each policy's ``mean <policy>/<field>``), so files written before this record read
back unchanged, and a report can still be read by a person or ``jq``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field

from .metrics import SplitMetrics

__all__ = ["RunResult"]

_MEAN = "mean "  # the results.json prefix of a policy's mean log field: "mean iemf/coeff"
_COMPUTE = "compute_"  # the results.json prefix of the compute counts


@dataclass(frozen=True)
class RunResult:
    """One finished run.

    Attributes:
        best_val_acc: the best validation accuracy (model selection), in [0, 1]; ``best_epoch``: its epoch (1-based).
        epochs: the epochs the run trained.
        test: the test split's numbers with the selected weights (``result.test.acc_audio``).
        policy_means: each method's log fields averaged over every step, by method then field
            (``{"ogm_ge": {"coeff_audio": 0.93, ...}}``); read with :meth:`policy_mean`.
        compute: what the run computed (:class:`~snn_msi.training.compute.Compute`'s row: ``compute_samples``,
            ``compute_eval_samples``, ``compute_steps``, ``compute_gop``; the wall time is in ``metrics.csv``);
            empty in results written before it was counted.
    """

    best_val_acc: float
    best_epoch: int
    epochs: int
    test: SplitMetrics
    policy_means: Mapping[str, Mapping[str, float]] = field(default_factory=dict)
    compute: Mapping[str, float] = field(default_factory=dict)

    def policy_mean(self, policy: str, name: str) -> float:
        """The mean over all steps of ``policy``'s log field ``name`` (``policy_mean("ogm_ge", "coeff_audio")``); NaN
        when the run did not use that policy, a ``KeyError`` naming the fields when the policy logs no ``name``."""
        if policy not in self.policy_means:
            return math.nan
        means = self.policy_means[policy]
        if name not in means:
            raise KeyError(f"method {policy!r} logs no {name!r} (it logs {', '.join(means)})")
        return means[name]

    def to_dict(self) -> dict[str, float]:
        """The flat ``results.json`` object."""
        means = {f"{_MEAN}{p}/{k}": v for p, fields in self.policy_means.items() for k, v in fields.items()}
        return {
            "best_val_acc": self.best_val_acc,
            "best_epoch": self.best_epoch,
            "epochs": self.epochs,
            **self.test.row("test"),
            **means,
            **self.compute,
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, float], where: str = "results") -> RunResult:
        """Read a ``results.json`` object (also one written before this record); a one-line ``ValueError`` naming
        ``where`` when it is not one."""
        try:
            means: dict[str, dict[str, float]] = {}
            for key, value in d.items():
                if key.startswith(_MEAN) and "/" in key:
                    policy, name = key[len(_MEAN) :].split("/", 1)
                    means.setdefault(policy, {})[name] = float(value)
            return cls(
                float(d["best_val_acc"]),
                int(d["best_epoch"]),
                int(d["epochs"]),
                SplitMetrics.from_row(d, "test"),
                means,
                {k: float(v) for k, v in d.items() if k.startswith(_COMPUTE)},
            )
        except (KeyError, TypeError, ValueError, AttributeError) as err:
            raise ValueError(f"{where} is not the results of a run: {err}") from None
