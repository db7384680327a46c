"""``val_every``: validation accuracy every k optimizer steps (issue #25: compute to accuracy at step resolution),
without changing what the run trains."""

from __future__ import annotations

import json

import pytest
from torch.utils.data import Subset

from snn_msi.training import METHODS, Trainer, demo_config, read_csv


def _fit(tmp_path, name, policies, val_every):
    from snn_msi.data import build_datasets

    config = demo_config(
        epochs=2,
        milestones=[],
        batch_size=8,
        model={**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1},
        out=str(tmp_path / name),
        policies=policies,
        data={"dataset": "digits-av", "preset": "hard", "limit": 24},
        val_every=val_every,
    )
    train, val, test = build_datasets(config.data, 0)
    Trainer(config, datasets=(train, Subset(val, range(8)), Subset(test, range(8))), progress=False, plots=False).fit()
    return json.loads((tmp_path / name / "results.json").read_text()), read_csv(tmp_path / name / "steps.csv")


@pytest.mark.parametrize("method", METHODS.names())
def test_validating_every_k_steps_changes_nothing_the_run_trains(method, tmp_path):
    plain, _ = _fit(tmp_path, "plain", [{"name": method}], 0)
    stepped, steps = _fit(tmp_path, "stepped", [{"name": method}], 2)
    extra = ("compute_eval_samples", "compute_gop")  # the validation passes are compute the run did
    assert stepped["compute_eval_samples"] > plain["compute_eval_samples"]
    assert {k: v for k, v in stepped.items() if k not in extra} == {k: v for k, v in plain.items() if k not in extra}
    measured = [s for s in steps if s["val_acc"] == s["val_acc"]]  # not NaN
    assert [int(s["step"]) + 1 for s in measured] == [k for k in range(1, len(steps) + 1) if k % 2 == 0]
    assert all(0 <= s["val_acc"] <= 1 for s in measured)
    samples = [s["compute_samples"] for s in measured]
    assert samples == sorted(samples) and samples[0] > 0
