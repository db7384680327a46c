"""The firing-rate regulariser and the accuracy-energy study: the penalty and the summary by value, and a tiny real
study end to end (train, resume, measure, tables, plot)."""

import csv
import json
import math
from pathlib import Path

import pytest
import torch
from torch import nn

import neurons
from snn_msi.cli import main as cli
from snn_msi.reports.runs import RunOptions
from snn_msi.reports.study_energy import (
    SNN,
    TWIN,
    TWIN_ZS,
    EnergyStudyConfig,
    pareto_front,
    run_energy_study,
    snn_config,
    summarise,
)
from snn_msi.schema import load_yaml
from snn_msi.training import demo_config
from snn_msi.training.policies import build_policies
from snn_msi.training.policies.rate_reg import RateReg, RateRegConfig
from snn_msi.training.rundir import config_diff
from snn_msi.training.runlog import read_csv


def _net():
    """Linear(4 -> 3) = identity on the first 3 inputs, then IF (v_th 1): input [2, 0, 0.6] over 2 steps gives
    spikes [1, 0, 0] then [1, 0, 1]: 3 spikes of 6 neuron-steps, a rate of 0.5."""
    net = nn.Sequential(nn.Linear(4, 3, bias=False), neurons.create("if", v_threshold=1.0, step_mode="m"))
    with torch.no_grad():
        net[0].weight.copy_(torch.eye(3, 4))
    return net


X = torch.tensor([[[2.0, 0.0, 0.6, 0.0]]]).expand(2, 1, 4)


def test_rate_penalty_by_value_and_its_gradient():
    net = _net()
    policy = RateReg(RateRegConfig(strength=2.0, target=0.25))
    policy.setup(net)
    net(X)
    loss = policy.loss(None)
    assert float(loss.detach()) == pytest.approx(2.0 * (0.5 - 0.25) ** 2)  # 0.125
    assert policy.log.values() == {"penalty": 0.0625, "rate": 0.5, "max_rate": 0.5, "layers": 1.0}
    loss.backward()  # through the IF neuron's surrogate gradient
    assert net[0].weight.grad is not None and net[0].weight.grad.abs().sum() > 0
    assert policy.loss(None) is None  # the rates are used once


@pytest.mark.parametrize(
    ("options", "expected"),
    [
        ({"target": 0.75, "side": "above"}, 0.0),
        ({"target": 0.75}, 0.0625),
        ({"target": 0.75, "targets": {"1": 0.4}}, 0.01),
    ],
)
def test_rate_penalty_sides_and_per_layer_targets(options, expected):
    net = _net()
    policy = RateReg(RateRegConfig(strength=1.0, **options))  # the neuron is layer "1" of the Sequential
    policy.setup(net)
    net(X)
    assert float(policy.loss(None).detach()) == pytest.approx(expected)


def test_rate_reg_records_nothing_without_gradients_and_checks_its_options():
    net = _net()
    (policy,) = build_policies([{"name": "rate_reg", "strength": 3.0}]).policies
    policy.setup(net)
    with torch.no_grad():
        net(X)
    assert policy.loss(None) is None and policy.log.layers == 0.0
    with pytest.raises(ValueError, match="side"):
        build_policies([{"name": "rate_reg", "side": "below"}])
    with pytest.raises(ValueError, match="targets"):
        build_policies([{"name": "rate_reg", "targets": {"visual_net.*": 2.0}}])
    with pytest.raises(ValueError, match="strength"):
        build_policies([{"name": "rate_reg", "strength": -1.0}])


def test_pareto_front_by_value():
    pts = [(1.0, 0.5, "a"), (2.0, 0.9, "b"), (3.0, 0.8, "c"), (2.0, 0.6, "d"), (0.5, 0.4, "e"), (4.0, 0.9, "f")]
    assert pareto_front(pts) == {"e", "a", "b"}  # c and f cost more for no more accuracy, d is beaten by b


def _row(model, strength, seed, acc, compute, total, chip=float("nan")):
    return {
        "model": model,
        "strength": strength,
        "seed": seed,
        "test_acc": acc,
        "firing_rate": 0.1,
        "sops": 1e6,
        "macs": 1e5,
        "compute_pj": compute,
        "total_pj": total,
        "chip_pj": chip,
    }


def test_summary_by_value():
    rows = [
        _row(SNN, 0.0, 0, 0.90, 4e6, 8e6, 60e6),
        _row(SNN, 0.0, 1, 0.92, 4e6, 8e6, 60e6),
        _row(SNN, 5.0, 0, 0.80, 2e6, 5e6, 30e6),
        _row(SNN, 5.0, 1, 0.84, 2e6, 3e6, 30e6),
        _row(TWIN, None, 0, 0.95, 10e6, 12e6),
        _row(TWIN, None, 1, 0.97, 10e6, 12e6),
        _row(TWIN_ZS, None, 0, 0.95, 6e6, 8e6),
        _row(TWIN_ZS, None, 1, 0.97, 6e6, 8e6),
    ]
    s = {(r["model"], r["strength"]): r for r in summarise(rows, [0.0, 5.0], [0, 1])}
    r5 = s[(SNN, 5.0)]
    assert r5["test_acc_mean"] == pytest.approx(0.82) and r5["test_acc_std"] == pytest.approx(0.02 * math.sqrt(2))
    # paired differences -0.10 and -0.08: mean -0.09, sd 0.01 sqrt(2), t(0.975, 1 dof) = 12.7062
    assert r5["acc_diff"] == pytest.approx(-0.09)
    assert r5["acc_diff_high"] - r5["acc_diff"] == pytest.approx(12.7062 * 0.01, rel=1e-4)
    assert r5["energy_ratio"] == pytest.approx((5 / 8 + 3 / 8) / 2)  # total energy against lambda = 0, per seed
    assert s[(TWIN, None)]["acc_diff"] == pytest.approx(0.05)
    # 45 nm compute: 2 (82 %) < 4 (91 %) < 6 (96 %, twin zero-skipping) < 10 (96 %): the last is beaten
    assert [s[k]["front_compute_pj"] for k in ((SNN, 5.0), (SNN, 0.0), (TWIN_ZS, None), (TWIN, None))] == [
        True,
        True,
        True,
        False,
    ]
    # full estimate: SNN 4 (82 %), 8 (91 %), twin-zs 8 (96 %) and twin 12; Loihi 30 and 60: never on the front
    assert s[(SNN, 0.0)]["front_total_pj"] is False and s[(TWIN_ZS, None)]["front_total_pj"] is True
    assert not s[(SNN, 5.0)]["front_chip_pj"]


MODEL = {
    "num_classes": 10,
    "widths": [4],
    "blocks": [1],
    "stem": "small",
    "stem_stride": 2,
    "audio_channels": 1,
    "visual_channels": 1,
    "T": 2,
}


def tiny_recipe(**over):
    """The demo recipe shrunk: a 4-channel network on 32 samples per split, one epoch."""
    data = {**demo_config().data.to_dict(), "limit": 32}
    return demo_config(**{"model": MODEL, "batch_size": 16, "data": data, "epochs": 1, **over})


@pytest.fixture(scope="module")
def tiny_study(tmp_path_factory):
    """One tiny study (lambda 0 and 5, one seed: two SNNs and their twin), shared by the tests below."""
    out = tmp_path_factory.mktemp("study")
    runs = RunOptions(seeds=[0], jobs=1, out=str(out), progress=False)
    cfg = EnergyStudyConfig(strengths=(0.0, 5.0), samples=8, recipe=tiny_recipe(), runs=runs)
    return cfg, run_energy_study(cfg)


def test_tiny_energy_study_reports(tiny_study):
    cfg, summary = tiny_study
    out = Path(cfg.runs.out)
    assert [(r["model"], r["strength"]) for r in summary] == [(SNN, 0.0), (SNN, 5.0), (TWIN, None), (TWIN_ZS, None)]
    assert all(r["compute_pj_mean"] > 0 and 0 <= r["test_acc_mean"] <= 1 for r in summary)
    assert summary[2]["compute_pj_mean"] > summary[3]["compute_pj_mean"]  # zero-skipping saves MACs
    with (out / "runs.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 4
    assert "rate_reg/penalty" in read_csv(out / "snn_rr5_s0" / "steps.csv")[0]
    # the twin is the lambda = 0 recipe with ReLU neurons, nothing else
    saved = [load_yaml(out / run / "config.yaml") for run in ("snn_rr0_s0", "relu_s0")]
    assert config_diff(*saved, ("out",)) == ["model.neuron: 'lif' -> 'relu'"]
    assert snn_config(cfg, 5.0, 0).policies == [{"name": "rate_reg", "strength": 5.0, "target": 0.0}]
    md = (out / "summary.md").read_text()
    assert "| ReLU twin, zero-skipping |" in md and "wall time" in md and "Davies et al." in md
    assert (out / "pareto.png").stat().st_size > 1000
    with pytest.raises(ValueError, match="strengths"):
        EnergyStudyConfig(strengths=(0.0, -1.0))


def test_energy_command_with_the_trained_twin(tiny_study, tmp_path, capsys):
    cfg, _ = tiny_study
    run, twin = Path(cfg.runs.out) / "snn_rr0_s0", Path(cfg.runs.out) / "relu_s0"
    mtime = (twin / "results.json").stat().st_mtime
    args = ["energy", str(run / "best.pt"), "--samples", "8", "--bins", "5", "--out", str(tmp_path / "e")]
    assert cli([*args, "--train-twin", "--twin-out", str(twin)]) == 0  # the finished twin is reused, not retrained
    printed = capsys.readouterr().out
    assert (twin / "results.json").stat().st_mtime == mtime and "UNTRAINED" not in printed
    for text in (
        "SNN            test accuracy",
        "ReLU twin      test accuracy",
        "synaptic accumulates (SOPs)",
        "neuron leak multiply-adds",
        "threshold compares",
        "membrane state",
        "Loihi: total",
        "E_MAC=4.6",
        "Davies et al.",
        "per time step",
    ):
        assert text in printed, text
    data = json.loads((tmp_path / "e" / "energy.json").read_text())
    assert data["samples"] == 8 and data["ann_trained"] and 0 <= data["accuracy"]["ann"] <= 1
    with (tmp_path / "e" / "histograms.csv").open() as fh:
        hist = list(csv.DictReader(fh))
    assert {r["layer"] for r in hist} == set(data["histograms"]) and len(hist) == 2 * 5 * len(data["histograms"])
    for png in ("firing_rates.png", "energy.png", "energy_breakdown.png", "spike_histograms.png", "raster.png"):
        assert (tmp_path / "e" / png).stat().st_size > 1000
    assert cli([*args, "--twin", str(twin / "best.pt"), "--zero-skip", "--precision", "int8"]) == 0
    assert "zero-skipping on" in capsys.readouterr().out
    assert cli(["energy", str(run / "best.pt"), "--twin", str(run / "best.pt")]) == 2  # an SNN is no ReLU twin
    assert "not a ReLU twin" in capsys.readouterr().err
    assert cli(["energy", str(tmp_path / "missing.pt")]) == 2
