"""The probe of the integration layer: its measures by value, the hand-set layer's inverse effectiveness, and the
command end to end on a small checkpoint."""

import csv
import math

import pytest
import torch

from snn_msi.cli import main
from snn_msi.models import FUSIONS, build
from snn_msi.reports.probe import ProbeConfig, incongruent_partner, layer_rates, level_summary, neuron_table
from snn_msi.training import demo_config
from snn_msi.training.rundir import CHECKPOINT_VERSION, save_checkpoint


def test_measures_by_value():
    # 4 trials x 3 neurons: n0 enhanced and super-additive, n1 additive, n2 silent alone but driven together
    a = torch.tensor([[0.1, 0.2, 0.0]] * 4)
    v = torch.tensor([[0.2, 0.1, 0.0]] * 4)
    cm = torch.tensor([[0.6, 0.3, 0.25]] * 4)
    rates = {"a": a, "v": v, "cm": cm, "cm_incongruent": cm * 0.5, "logits": torch.eye(4)}
    t = neuron_table(rates, min_rate=0.01)
    assert t["ME"][0].item() == pytest.approx((0.6 - 0.2) / 0.2) and t["AI"][0].item() == pytest.approx(2.0)
    assert t["ME"][1].item() == pytest.approx(0.5) and t["AI"][1].item() == pytest.approx(1.0)
    assert math.isnan(t["ME"][2].item()) and math.isnan(t["AI"][2].item()) and bool(t["emergent"][2])
    assert t["super_additive"].tolist() == [True, False, True] and t["enhanced"].tolist() == [True, True, False]
    assert t["ME_incongruent"][0].item() == pytest.approx(0.5)
    row = level_summary(t, rates, torch.arange(4))
    assert row["responsive"] == 2 and row["emergent"] == 1 and row["acc_fused"] == 1.0
    assert row["ME_median"] == pytest.approx(1.25) and row["ME_population"] == pytest.approx((1.15 - 0.3) / 0.3)
    assert row["AI_population"] == pytest.approx(1.15 / 0.6) and row["frac_super_additive"] == pytest.approx(2 / 3)


def test_significance_follows_trial_variability():
    g = torch.Generator().manual_seed(0)
    a = torch.rand(50, 2, generator=g) * 0.2
    v = torch.rand(50, 2, generator=g) * 0.2
    cm = torch.stack([a[:, 0] + v[:, 0] + 0.3, a[:, 1] + v[:, 1] + 0.02 * torch.randn(50, generator=g)], 1)
    t = neuron_table({"a": a, "v": v, "cm": cm, "logits": torch.zeros(50, 2)}, min_rate=0.01)
    assert t["super_additive"].tolist() == [True, False] and not bool(t["sub_additive"].any())


def test_incongruent_partner_always_pairs_another_class():
    labels = torch.tensor([0, 1, 1, 2, 2, 2, 3, 3, 0, 1])
    perm = incongruent_partner(labels)
    assert sorted(perm.tolist()) == list(range(10)) and bool((labels[perm] != labels).all())
    assert incongruent_partner(torch.tensor([0, 0, 0, 1])) is None


def test_hand_set_layer_inverse_effectiveness_through_the_probe():
    """One LIF neuron per modality pair (audio input 0, visual input 1): weak pairs are super-additive, strong pairs
    sub-additive, and ME falls as the afferent strength rises."""
    layer = FUSIONS.create("msi", dim=2, num_classes=2, hidden=1, sigma=1.0, neuron="lif",
                           neuron_args={"v_threshold": 0.5})  # fmt: skip
    with torch.no_grad():
        layer.w_a.weight = torch.tensor([[1.0, 1e-6]])
        layer.w_v.weight = torch.tensor([[1e-6, 1.0]])
        layer.gain_raw.fill_(1.2 + math.log(-math.expm1(-1.2)))
    rows = {}
    for x in (0.5, 0.85, 1.2, 3.0):
        a = torch.tensor([x, 0.0]).expand(32, 6, 2)
        v = torch.tensor([0.0, x]).expand(32, 6, 2)
        t = neuron_table(layer_rates(layer, a, v), min_rate=0.01)
        rows[x] = {k: (t[k][0].item()) for k in ("A", "V", "CM", "ME", "AI", "super_additive", "sub_additive")}
    assert rows[0.5]["A"] == 0 and rows[0.5]["CM"] > 0 and rows[0.5]["super_additive"]  # sub-threshold inputs sum
    assert rows[0.85]["AI"] > 1 and rows[0.85]["super_additive"]
    assert rows[3.0]["AI"] <= 0.5 and rows[3.0]["sub_additive"] and rows[3.0]["ME"] == 0
    me = [rows[x]["ME"] for x in (0.85, 1.2, 3.0)]
    assert me[0] > me[1] > me[2]


def _checkpoint(tmp_path, fusion: str, calibrate: int = 10):
    """A tiny network with real batch-norm statistics (``calibrate`` training-mode passes), saved as a checkpoint."""
    from snn_msi.data import build_datasets

    model = {"num_classes": 10, "widths": [8], "blocks": [1], "stem": "small", "stem_stride": 2, "audio_channels": 1,
             "visual_channels": 1, "T": 4, "fusion": fusion}  # fmt: skip
    cfg = demo_config(model=model, data={"dataset": "digits-av", "preset": "hard", "limit": 24})
    torch.manual_seed(0)
    net = build(cfg.model).train()
    if calibrate:
        batch = next(iter(torch.utils.data.DataLoader(build_datasets(cfg.data)[0], batch_size=24)))
        with torch.no_grad():
            for _ in range(calibrate):
                net(batch.audio, batch.frames)
    path = tmp_path / fusion / "best.pt"
    save_checkpoint({"version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "model": net.state_dict()}, path)
    return path


def test_probe_command_writes_tables_and_plot(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "msi")
    args = ["probe", str(ckpt), "--samples", "12", "--contrast", "0.3", "1", "--snr", "-15,-5 0,10",
            "--afferent", "0.2", "1"]  # fmt: skip
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "| contrast | contrast x0.3 |" in out and "| snr | audio -15 dB, image -5 dB |" in out
    folder = ckpt.parent / "probe"
    for f in ("probe.md", "probe.csv", "probe_neurons.csv", "probe.png"):
        assert (folder / f).is_file()
    with (folder / "probe.csv").open() as fh:
        rows = list(csv.DictReader(fh))
    assert [r["sweep"] for r in rows] == ["contrast"] * 2 + ["snr"] * 2 + ["afferent"] * 2
    with (folder / "probe_neurons.csv").open() as fh:
        assert len(list(csv.DictReader(fh))) == 6 * 8  # 8 integration neurons (hidden = feature width)
    assert float(rows[-1]["rate_CM"]) > 0  # the population responds to the full-strength pair


def test_probe_refuses_a_fusion_without_integration_neurons_and_bad_levels(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "concat", calibrate=0)
    assert main(["probe", str(ckpt), "--samples", "4"]) == 2
    assert "fusion 'concat' has no integration neurons" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sweeps must be some of"):
        ProbeConfig(sweeps=("loudness",)).check()
    with pytest.raises(ValueError, match="snr levels must be"):
        ProbeConfig(snr=((0.0,),)).check()
