"""The probe of the integration layer: its measures by value (per neuron, population, median interval, learned
difference, over seeds), the hand-set layer's inverse effectiveness, repeated presentations with fresh noise, the
untrained layer, and the command end to end on small checkpoints."""

import csv
import math

import pytest
import torch

from snn_msi.cli import main
from snn_msi.models import FUSIONS, build
from snn_msi.reports.probe import (
    ProbeConfig,
    ProbeResult,
    best_unisensory,
    incongruent_partner,
    initial_layer,
    layer_rates,
    learned_row,
    level_summary,
    median_interval,
    most_effective,
    neuron_table,
    repeated_presentations,
    seeds_summary,
    seeds_table,
)
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
    assert row["responsive"] == 2 and row["emergent"] == 1 and row["acc_fused"] == 1.0 and row["trials"] == 4
    # over the responsive neurons n0, n1 (each against its own best: 0.2 + 0.2); the emergent n2 counted apart
    assert row["ME_median"] == pytest.approx(1.25) and row["ME_population"] == pytest.approx((0.9 - 0.4) / 0.4)
    assert row["AI_population"] == pytest.approx(0.9 / 0.6) and row["frac_super_additive"] == pytest.approx(2 / 3)
    assert row["CM_emergent_share"] == pytest.approx(0.25 / 1.15) and math.isnan(row["ME_ci_low"])  # 2 neurons: no CI


def _population(a, v, cm):
    rates = {"a": torch.tensor([a] * 3), "v": torch.tensor([v] * 3), "cm": torch.tensor([cm] * 3)}
    t = neuron_table(rates, min_rate=0.01)
    return t, level_summary(t, {**rates, "logits": torch.zeros(3, 2)}, torch.zeros(3, dtype=torch.long))


def test_population_index_against_each_neurons_best_modality():
    # half A-only, half V-only neurons, the pair = each one's best: every ME is 0, and so is the population's
    t, row = _population([0.4, 0.4, 0.0, 0.0], [0.0, 0.0, 0.4, 0.4], [0.4] * 4)
    assert t["ME"].tolist() == [0.0] * 4 and row["ME_population"] == 0.0 and row["ME_median"] == 0.0
    assert (1.6 - max(0.8, 0.8)) / 0.8 == pytest.approx(1.0)  # the earlier max(sum A, sum V) read +100 %
    # enhancement: best 0.2, 0.3, 0.05 (sum 0.55), combined 0.3, 0.45, 0.1 (sum 0.85); per neuron +50, +50, +100 %
    t, row = _population([0.2, 0.1, 0.05], [0.1, 0.3, 0.0], [0.3, 0.45, 0.1])
    assert t["ME"].tolist() == pytest.approx([0.5, 0.5, 1.0]) and row["ME_median"] == pytest.approx(0.5)
    assert row["ME_population"] == pytest.approx(0.3 / 0.55) and row["AI_population"] == pytest.approx(0.85 / 0.75)
    # depression: combined 0.1, 0.15, 0.05 (sum 0.3): per neuron -50, -50, 0 %, population (0.3 - 0.55) / 0.55
    t, row = _population([0.2, 0.1, 0.05], [0.1, 0.3, 0.0], [0.1, 0.15, 0.05])
    assert t["ME"].tolist() == pytest.approx([-0.5, -0.5, 0.0]) and row["ME_median"] == pytest.approx(-0.5)
    assert row["ME_population"] == pytest.approx(-0.25 / 0.55) and row["frac_depressed"] == pytest.approx(2 / 3)


@pytest.mark.parametrize("rate", [0.05, 0.5])
def test_neurons_that_do_not_integrate_read_no_enhancement(rate):
    """A, V and CM of each neuron drawn from one rate (T = 4 steps, 20 trials, 2000 neurons): ME 0, AI 0.5, no
    more neurons flagged depressed than enhanced. The cue chosen on the measuring trials read -25 % (rate 0.05)
    and flagged 4.5 % depressed against 0.5 % enhanced."""

    def draw():
        return torch.distributions.Binomial(4, torch.full((20, 2000), rate)).sample() / 4

    torch.manual_seed(0)
    rates = {"a": draw(), "v": draw(), "cm": draw(), "logits": torch.zeros(20, 2)}
    t = neuron_table(rates, min_rate=0.01)
    row = level_summary(t, rates, torch.zeros(20, dtype=torch.long))
    assert abs(row["ME_median"]) < 0.02 and abs(row["ME_population"]) < 0.05 and abs(row["AI_median"] - 0.5) < 0.01
    assert abs(row["frac_depressed"] - row["frac_enhanced"]) < 0.02 and row["frac_depressed"] < 0.045


def test_the_best_cue_is_chosen_on_the_other_half_of_the_trials():
    # n0: the odd trials' A (0.2) loses to V (0.3), so the even trials take V; the even trials' A (0.4) wins, so the
    # odd trials take A. n1 the other way round. (The same trials' means would take A for all of n0: 0.3 >= 0.3.)
    a, v = torch.tensor([[0.4, 0.0], [0.2, 0.6], [0.4, 0.0], [0.2, 0.6]]), torch.full((4, 2), 0.3)
    assert torch.equal(best_unisensory(a, v), torch.tensor([[0.3, 0.0], [0.2, 0.3], [0.3, 0.0], [0.2, 0.3]]))
    assert torch.equal(best_unisensory(a[:1], v[:1]), torch.tensor([[0.4, 0.3]]))  # one trial: chosen on itself


def test_median_interval_is_the_order_statistic_one():
    # n = 9: P(Binomial(9, 1/2) <= 1) = 0.0195 <= 0.025 < P(<= 2): the interval [x_(2), x_(8)] (coverage 96.1 %)
    x = torch.tensor([9.0, 1, 5, 3, 7, 2, 8, float("nan"), 4, 6])
    assert median_interval(x) == (5.0, 2.0, 8.0)
    assert median_interval(torch.arange(6.0)) == (2.5, 0.0, 5.0)  # n = 6: 2 / 64 <= 0.05, the extremes
    med, lo, hi = median_interval(torch.arange(5.0))  # n = 5: 2 / 32 > 0.05, no interval at 95 %
    assert med == 2.0 and math.isnan(lo) and math.isnan(hi)


def test_most_effective_stimulus_and_learned_difference():
    rates = {
        "a": torch.tensor([[0.1, 0.0, 0.0], [0.3, 0.0, 0.0]]),
        "v": torch.tensor([[0.2, 0.5, 0.0], [0.0, 0.1, 0.0]]),
        "cm": torch.tensor([[0.0, 0.0, 0.1], [0.0, 0.0, 0.3]]),
    }
    assert most_effective(rates, 0.01).tolist() == [1, 0, 1]  # best A or V; the emergent neuron by its CM
    trained = {
        "sweep": "snr",
        "strength": 0.0,
        "level": "x",
        "layer": "trained",
        "neurons": 4,
        "trials": 8,
        "ME_population": 0.1,
        "AI_median": 1.5,
        "acc_fused": 0.9,
    }
    untrained = {**trained, "layer": "untrained", "ME_population": 0.4, "AI_median": 1.0, "acc_fused": 0.1}
    d = learned_row(trained, untrained)
    assert d["layer"] == "learned" and d["ME_population"] == pytest.approx(-0.3) and d["AI_median"] == 0.5
    assert d["neurons"] == 4 and math.isnan(d["acc_fused"]) and list(d) == list(trained)


def test_seeds_summary_interval_over_checkpoints():
    results = []
    # learned 0.1, 0.2, 0.3; a 4th checkpoint whose untrained layer has no responsive neuron (no index)
    for me_t, me_u in ((0.1, 0.0), (0.3, 0.1), (0.5, 0.2), (0.3, math.nan)):
        rows = [
            {
                "sweep": "afferent",
                "strength": 1.0,
                "level": "x1",
                "layer": layer,
                **dict.fromkeys(("ME_median", "AI_population", "AI_median", "frac_super_additive"), 0.0),
                "ME_population": me,
            }
            for layer, me in (("trained", me_t), ("untrained", me_u), ("learned", me_t - me_u))
        ]
        results.append(ProbeResult(levels=rows))
    (row,) = seeds_summary(results)
    half = 4.302652729911275 * 0.1 / math.sqrt(3)  # t(0.975, 2) * sd / sqrt(n)
    assert row["checkpoints"] == 4 and row["ME_population_trained"] == pytest.approx(0.3)
    assert row["ME_population_untrained"] == pytest.approx(0.1) and row["ME_population_learned"] == pytest.approx(0.2)
    assert (row["ME_population_learned_low"], row["ME_population_learned_high"]) == pytest.approx(
        (0.2 - half, 0.2 + half)
    )
    assert row["ME_population_learned_n"] == 3 and row["AI_median_learned_n"] == 4
    assert "+20 [-5, +45] (n = 3) |" in seeds_table([row])  # the table says over how many checkpoints


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
    layer = FUSIONS.create(
        "msi", dim=2, num_classes=2, hidden=1, sigma=1.0, neuron="lif", neuron_args={"v_threshold": 0.5}
    )
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


def _checkpoint(tmp_path, fusion: str, calibrate: int = 10, name: str | None = None, **data):
    """A tiny network with real batch-norm statistics (``calibrate`` training-mode passes), saved as a checkpoint
    (never trained: its integration layer is the initial one)."""
    from snn_msi.data import build_datasets

    model = {
        "num_classes": 10,
        "widths": [8],
        "blocks": [1],
        "stem": "small",
        "stem_stride": 2,
        "audio_channels": 1,
        "visual_channels": 1,
        "T": 4,
        "fusion": fusion,
    }
    cfg = demo_config(model=model, data={"dataset": "digits-av", "preset": "hard", "limit": 24, **data})
    torch.manual_seed(0)
    net = build(cfg.model).train()
    if calibrate:
        batch = next(iter(torch.utils.data.DataLoader(build_datasets(cfg.data)[0], batch_size=24)))
        with torch.no_grad():
            for _ in range(calibrate):
                net(batch.audio, batch.frames)
    path = tmp_path / (name or fusion) / "best.pt"
    save_checkpoint({"version": CHECKPOINT_VERSION, "config": cfg.to_dict(), "model": net.state_dict()}, path)
    return path


def _rows(path):
    with path.open() as fh:
        return list(csv.DictReader(fh))


def test_probe_command_repeats_trained_and_untrained(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "msi")
    args = [
        "probe",
        str(ckpt),
        "--samples",
        "12",
        "--repeats",
        "3",
        "--contrast",
        "0.3",
        "1",
        "--snr=-15,-5",
        "--afferent",
        "0.2",
        "1",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert "trials: repeats, each neuron at its most effective of the first 12 test samples" in out
    for layer in ("trained", "untrained", "learned"):
        assert (
            f"| contrast | contrast x0.3 | {layer} |" in out and f"| snr | audio -15 dB, image -5 dB | {layer} |" in out
        )
    folder = ckpt.parent / "probe"
    for f in ("probe.md", "probe.csv", "probe_neurons.csv", "probe.png"):
        assert (folder / f).is_file()
    rows = _rows(folder / "probe.csv")
    assert [r["sweep"] for r in rows] == ["contrast"] * 6 + ["snr"] * 3 + ["afferent"] * 6
    assert [r["layer"] for r in rows[:3]] == ["trained", "untrained", "learned"] and rows[0]["trials"] == "3"
    assert float(rows[-3]["rate_CM"]) > 0  # the population responds to the full-strength pair
    # this checkpoint was never trained: its untrained twin is the same layer, so nothing is learned
    learned = [float(r["ME_population"]) for r in rows if r["layer"] == "learned"]
    assert all(x == 0 or math.isnan(x) for x in learned) and any(x == 0 for x in learned)
    neurons_rows = _rows(folder / "probe_neurons.csv")
    assert len(neurons_rows) == 5 * 2 * 8  # levels x layers x 8 integration neurons (hidden = feature width)
    assert all(0 <= int(n["stimulus"]) < 12 for n in neurons_rows)


def test_repeated_presentations_redraw_only_the_noise():
    cfg = demo_config(data={"dataset": "digits-av", "preset": "hard", "image_snr_db": 60.0})
    audio, frames, labels = repeated_presentations(cfg.data, 0, [0, 3], 3)
    first = repeated_presentations(cfg.data, 0, [0, 3], 1)
    assert labels.tolist() == labels[:2].tolist() * 3 and torch.equal(first[0], audio[:2])  # draw 1 is draw 1
    assert not torch.allclose(audio[0], audio[2]) and not torch.allclose(audio[0], audio[4])  # fresh audio noise
    assert torch.allclose(frames[0], frames[2], atol=0.01) and not torch.allclose(frames[0], frames[1], atol=0.01)
    with pytest.raises(ValueError, match="needs noise"):
        repeated_presentations(cfg.data.replace(preset="clean", image_snr_db=None), 0, [0], 2)


def test_probe_over_a_folder_of_runs_summarises_the_seeds(tmp_path, capsys):
    for name in ("run_a", "run_b"):
        _checkpoint(tmp_path / "runs", "msi", calibrate=2, name=name)
    args = [
        "probe",
        str(tmp_path / "runs"),
        "--trials",
        "stimuli",
        "--samples",
        "8",
        "--sweeps",
        "afferent",
        "--afferent",
        "0.5",
        "1",
    ]
    assert main(args) == 0
    out = capsys.readouterr().out
    assert out.count("trials: stimuli, 8 test samples presented once each") == 2
    folder = tmp_path / "runs" / "probe"
    assert "trials: stimuli, 8 test samples" in (folder / "run_a" / "probe.md").read_text()
    assert (folder / "run_b" / "probe.csv").is_file() and "| afferent | afferent rates x1 | 2 |" in out
    assert [r["checkpoints"] for r in _rows(folder / "probe_seeds.csv")] == ["2", "2"]


def test_initial_layer_is_the_trainers(tmp_path):
    from snn_msi.training import Trainer

    model = {"widths": [8], "blocks": [1], "stem": "small", "T": 2, "fusion": "msi"}
    cfg = demo_config(model=model, data={"dataset": "digits-av", "limit": 24}, out=str(tmp_path / "run"))
    trainer = Trainer(cfg, progress=False, plots=False)
    state, fresh = trainer.model.fusion.state_dict(), initial_layer(trainer.cfg).state_dict()
    assert state.keys() == fresh.keys() and all(torch.equal(state[k], fresh[k]) for k in state)


def test_probe_refuses_bad_input(tmp_path, capsys):
    ckpt = _checkpoint(tmp_path, "concat", calibrate=0)
    assert main(["probe", str(ckpt), "--samples", "4"]) == 2
    assert "fusion 'concat' has no integration neurons" in capsys.readouterr().err
    clean = _checkpoint(tmp_path, "msi", calibrate=0, name="clean", preset="clean")
    assert main(["probe", str(clean), "--samples", "4", "--sweeps", "afferent"]) == 2
    assert "--trials repeats needs noise to repeat" in capsys.readouterr().err
    (tmp_path / "empty").mkdir()
    assert main(["probe", str(tmp_path / "empty")]) == 2
    assert "no best.pt in this folder or below it" in capsys.readouterr().err
    assert main(["probe", str(clean), "--noise-snr", "-5"]) == 2
    assert "--noise-snr: expected 'AUDIO_DB,IMAGE_DB'" in capsys.readouterr().err
    with pytest.raises(ValueError, match="sweeps must be some of"):
        ProbeConfig(sweeps=("loudness",)).check()
    with pytest.raises(ValueError, match="snr levels must be"):
        ProbeConfig(snr=((0.0,),)).check()
    with pytest.raises(ValueError, match="trials must be one of"):
        ProbeConfig(trials="epochs").check()
