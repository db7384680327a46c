"""The BalanceBenchmark methods against their sources' formulas, by value, on hand-built batches; the trainer
hooks they use; the imbalance metrics.

Every expected number is written out from the formula of the paper / official code named in the method's
docstring (worked by hand or with a calculator; see /work/notes/balance_methods.md), not computed by the code
under test. Where a test needs a reference computation on a network (AGM's three passes, MLA's projection), it
redoes the official code's steps independently of the policy.
"""

import dataclasses
import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from snn_msi.models import AVOutput, build
from snn_msi.schema import ConfigError
from snn_msi.training import METHODS, build_policies
from snn_msi.training.metrics import MetricsCollector, macro_f1, mean_average_precision, shapley_two
from snn_msi.training.policies import (
    DROP_AUDIO,
    DROP_NONE,
    DROP_VISUAL,
    Batch,
    Composition,
    EpochView,
    FeatureSet,
    ForwardContext,
    SamplePlan,
    StepContext,
    TrainStep,
    check_fusion,
    composes_with_iemf,
    default_output,
    scale_gradient,
)
from snn_msi.training.policies.agm import agm_coefficients, agm_score, running_mean
from snn_msi.training.policies.cml import confidence_penalty
from snn_msi.training.policies.gblend import blend_weights
from snn_msi.training.policies.greedy import MMTM, conditional_utilisation, mmtm_positions, relative_grad_norm
from snn_msi.training.policies.mla import entropy_gates, projection_alpha, update_projection
from snn_msi.training.policies.mmcosine import cosine_logits
from snn_msi.training.policies.opm import drop_features, opm_drop_probabilities
from snn_msi.training.policies.pmr import pmr_coefficients, prototypes
from snn_msi.training.policies.reconboost import boosting_loss, schedule
from snn_msi.training.policies.relearn import purity, reinit_strength
from snn_msi.training.policies.umt import distillation
from snn_msi.training.policies.valuation import contributions, modality_gap, sample_copies, sample_plan

TINY = dict(num_classes=3, widths=(4,), blocks=(1,), stem="small", T=1, audio_channels=1, visual_channels=3)
NEW = (
    "agm",
    "pmr",
    "mmcosine",
    "greedy",
    "umt",
    "ume",
    "mla",
    "opm",
    "reconboost",
    "gblend",
    "sample_valuation",
    "modality_valuation",
    "relearn",
    "cml",
)


def _batch(b=4, k=2, seed=0, y=None, drop=None):
    g = torch.Generator().manual_seed(seed)
    audio, frames = torch.randn(b, 1, 8, 8, generator=g), torch.randn(b, k, 3, 8, 8, generator=g)
    y = torch.tensor(y if y is not None else [i % 3 for i in range(b)])
    drop = torch.tensor(drop if drop is not None else [DROP_NONE] * b)
    return Batch(audio, frames, y, torch.arange(b), drop, [f"c{i}" for i in range(b)])


def _model(seed=0, **over):
    torch.manual_seed(seed)
    return build(**{**TINY, **over})


def _policy(name, **options):
    return build_policies([{"name": name, **options}]).policies[0]


def _ctx(model, out, batch, epoch=0, losses=None, fwd=None):
    return StepContext(model, model.parameter_groups(), out, batch.y, epoch, losses or {}, batch, fwd)


class FakeView(EpochView):
    """An epoch view over fixed batches / features, for the epoch-level methods."""

    def __init__(self, model, epoch=0, epochs=10, batches=(), features=None, classes=3):
        self.model, self.groups, self.epoch, self.epochs = model, model.parameter_groups(), epoch, epochs
        self.seed, self.num_classes, self.predict = 0, classes, None
        self._batches, self._features = list(batches), features

    def batches(self, split, shuffle=False, limit=None):
        return iter(self._batches[:limit] if limit else self._batches)

    def num_batches(self, split):
        return len(self._batches)

    def features(self, split, shuffle=False, limit=None):
        return self._features[split] if isinstance(self._features, dict) else self._features

    def train_copy(self, model, loss_fn, epochs):
        raise AssertionError("not used here")


def test_every_new_method_is_registered_with_its_sources_and_iemf_answer():
    for name in NEW:
        e = METHODS.get(name)
        assert "arXiv" in e.source and e.modulates and isinstance(e.iemf, Composition) and not e.iemf.itself
    assert not any(composes_with_iemf(n).composes for n in ("mla", "reconboost", "ume"))
    assert all(composes_with_iemf(n).composes for n in NEW if n not in ("mla", "reconboost", "ume"))
    assert str(composes_with_iemf("mla")).startswith("no: MLA trains no fusion layer")


# -- AGM -----------------------------------------------------------------------------------------------------
def test_agm_coefficients_and_running_mean_by_value():
    # official run/CREMAD_main.py: ratio_a = exp(s_v - s_a), optimal_a = exp(t_v - t_a), coeff = exp(alpha (o - r))
    # s = (0.5, 1.0), t = (0.6, 0.8): ratio_a = e^0.5 = 1.648721, optimal_a = e^0.2 = 1.221403 -> e^-0.427318
    assert agm_coefficients(0.5, 1.0, 0.6, 0.8, 1.0) == pytest.approx((0.652256, 1.236395), abs=1e-6)
    # the exponent is capped at alpha * 10: optimal_a = e^3 = 20.09, ratio_a = 1 -> exp(min(19.09, 10))
    assert agm_coefficients(0.0, 0.0, 0.0, 3.0, 1.0)[0] == pytest.approx(math.exp(10.0))
    assert running_mean(0.6, 0.5, 3) == pytest.approx(0.566667, abs=1e-6)  # 0.6 * 2/3 + 0.5 / 3
    # score: mean -log p(y), p below 1e-8 counted as 1e-8 (-log -> 18.420681)
    logits = torch.tensor([[0.0, 0.0], [0.0, -40.0]])
    assert agm_score(logits, torch.tensor([0, 1])) == pytest.approx((math.log(2) + 18.420681) / 2, abs=1e-5)


def test_scale_gradient_scales_only_the_backward():
    x = torch.tensor([1.0, 2.0], requires_grad=True)
    y = scale_gradient(x, 0.5)
    assert torch.equal(y, x.detach())
    (y * torch.tensor([3.0, 4.0])).sum().backward()
    torch.testing.assert_close(x.grad, torch.tensor([1.5, 2.0]))


def test_agm_forward_and_gradients_follow_the_official_three_passes():
    model, batch = _model(), _batch()
    policy = _policy("agm", clip_threshold=None)
    model.train()
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    # reference: the official GradMod.forward, done here by hand
    ref = _model()
    ref.train()
    f_av = ref(batch.audio, batch.frames).fused
    ref.eval()
    f_a0 = ref(batch.audio, torch.zeros_like(batch.frames)).fused
    f_0v = ref(torch.zeros_like(batch.audio), batch.frames).fused
    ref.train()
    m_a, m_v = 0.5 * (f_av - f_0v + f_a0), 0.5 * (f_av - f_a0 + f_0v)
    torch.testing.assert_close(out.fused, m_a + m_v)
    s_a, s_v = agm_score(m_a, batch.y), agm_score(m_v, batch.y)
    c_a, c_v = agm_coefficients(s_a, s_v, 0.0, 0.0, 1.0)  # t starts at 0, updated after the coefficients
    assert (policy.log.coeff_audio, policy.log.coeff_visual) == pytest.approx((c_a, c_v), rel=1e-6)
    assert policy.t["audio"] == pytest.approx(s_a) and policy.k == 1
    # gradients: the hooks multiply what reaches m_a by c_a and m_v by c_v
    F.cross_entropy(out.fused, batch.y).backward()
    g = torch.autograd.grad(F.cross_entropy(m_a + m_v, batch.y), [m_a], retain_graph=True)[0]  # dL/dz
    params = [ref.fusion.head.weight, next(ref.audio_net.parameters())]
    want = torch.autograd.grad(c_a * (m_a * g).sum() + c_v * (m_v * g).sum(), params)
    got = [model.fusion.head.weight.grad, next(model.audio_net.parameters()).grad]
    for w, h in zip(want, got, strict=True):
        torch.testing.assert_close(h, w, rtol=1e-4, atol=1e-7)
    # outside the window the coefficients are 1; evaluation uses the plain forward
    policy2 = _policy("agm", start=3)
    policy2.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    assert policy2.log.coeff_audio == 1.0 and policy2.log.active == 0.0
    assert policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, False)) is None


def test_agm_train_mode_zero_passes_use_batch_statistics_and_leave_the_buffers_alone():
    model, batch = _model(), _batch()
    policy = _policy("agm", clip_threshold=None, zero_pass_mode="train", report_eval_path=False)
    model.train()
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    ref = _model()
    ref.train()
    f_av = ref(batch.audio, batch.frames).fused  # the one forward that updates the running statistics
    buffers = {k: v.clone() for k, v in ref.state_dict().items() if "running" in k or "num_batches" in k}
    f_a0 = ref(batch.audio, torch.zeros_like(batch.frames)).fused  # batch statistics, as in training
    f_0v = ref(torch.zeros_like(batch.audio), batch.frames).fused
    torch.testing.assert_close(out.fused, 0.5 * (f_av - f_0v + f_a0) + 0.5 * (f_av - f_a0 + f_0v))
    state = model.state_dict()
    assert buffers and all(torch.equal(state[k], v) for k, v in buffers.items())
    assert math.isnan(policy.log.acc_eval_mode)


def test_agm_reports_the_evaluation_mode_path_beside_the_training_mode_one():
    """The official zero-input passes run in eval mode with autograd, so training moves the evaluation-mode path
    too: the accuracy of both paths on the training batch is logged every step, and measuring it changes nothing
    in the step (no autograd, no buffers, forked random streams)."""
    batch = _batch(b=6)
    runs = {}
    for report in (True, False):
        model = _model()
        model.train()
        policy = _policy("agm", clip_threshold=None, report_eval_path=report)
        out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
        F.cross_entropy(out.fused, batch.y).backward()
        runs[report] = (policy.log, model.fusion.head.weight.grad.clone(), model.state_dict())
    log = runs[True][0]
    ref = _model()
    ref.train()
    train_acc = float((ref(batch.audio, batch.frames).fused.argmax(1) == batch.y).float().mean())
    ref.eval()
    with torch.no_grad():
        eval_acc = float((ref(batch.audio, batch.frames).fused.argmax(1) == batch.y).float().mean())
    assert log.acc_train_mode == pytest.approx(train_acc) and log.acc_eval_mode == pytest.approx(eval_acc)
    assert torch.equal(runs[True][1], runs[False][1])
    assert all(torch.equal(runs[True][2][k], v) for k, v in runs[False][2].items())


def test_agm_clips_when_a_fusion_gradient_leaves_the_threshold():
    model = _model()
    for p in model.parameters():
        p.grad = torch.full_like(p, 0.1)
    policy = _policy("agm")
    policy.log.clipped = 0.0
    model.fusion.head.weight.grad[0, 0] = 2.0  # > 1: clip every gradient to total norm 1
    policy.before_step(_ctx(model, None, _batch()))
    norm = torch.nn.utils.get_total_norm([p.grad for p in model.parameters()])
    assert policy.log.clipped == 1.0 and float(norm) == pytest.approx(1.0, rel=1e-5)


# -- PMR -----------------------------------------------------------------------------------------------------
def test_pmr_prototypes_momentum_and_loss_by_value():
    feats = torch.tensor([[0.0, 0.0], [2.0, 0.0], [4.0, 0.0]])
    protos = prototypes(feats, torch.tensor([0, 1, 1]), 3, previous=torch.full((3, 2), 7.0))
    torch.testing.assert_close(protos, torch.tensor([[0.0, 0.0], [3.0, 0.0], [7.0, 7.0]]))  # class 2 absent
    assert pmr_coefficients(1.761594, 1.0, 2.0) == (0.0, 2.0) and pmr_coefficients(0.5, 1.0, 2.0) == (2.0, 0.0)
    assert pmr_coefficients(1.0, 1.0, 2.0) == (0.0, 0.0)
    # audio h = [[0,0],[2,0]] on prototypes [[0,0],[2,0]]: sim = [[0,-2],[-2,0]], score = 2 / (1 + e^-2) = 1.761594;
    # visual h = [[1,0],[1,0]]: sim = [[-1,-1],...], score 1.0 -> rho > 1 -> alpha * CE(sim_v) = alpha * ln 2
    policy = _policy("pmr", alpha=1.5)
    two = torch.tensor([[0.0, 0.0], [2.0, 0.0]])
    policy.protos = {"audio": two, "visual": two}
    out = AVOutput(
        *(torch.zeros(2, 2) for _ in range(5)), features={"audio": two, "visual": torch.tensor([[1.0, 0.0]] * 2)}
    )
    batch = dataclasses.replace(_batch(2), y=torch.tensor([0, 1]))
    loss = policy.loss(StepContext(None, None, out, batch.y, 0, {}, batch))
    assert float(loss) == pytest.approx(1.5 * math.log(2), abs=1e-5)
    assert policy.log.score_audio == pytest.approx(1.761594, abs=1e-5) and policy.log.gamma == 1.5
    # momentum: plain at epochs 0 and 1 (the official skips it on the first update), then 0.8 new + 0.2 old
    model = _model(num_classes=2)
    fs = FeatureSet(
        torch.tensor([[3.0, 0.0], [5.0, 0.0]]),
        torch.tensor([[1.0, 1.0], [1.0, 1.0]]),
        torch.tensor([0, 1]),
        torch.arange(2),
    )
    p = _policy("pmr")
    p.protos = {"audio": torch.tensor([[1.0, 0.0], [1.0, 0.0]]), "visual": torch.zeros(2, 2)}
    p.on_epoch_start(FakeView(model, epoch=1, features=fs, classes=2))
    torch.testing.assert_close(p.protos["audio"], torch.tensor([[3.0, 0.0], [5.0, 0.0]]))
    p.protos["audio"] = torch.tensor([[1.0, 0.0], [1.0, 0.0]])
    p.on_epoch_start(FakeView(model, epoch=2, features=fs, classes=2))
    torch.testing.assert_close(p.protos["audio"], torch.tensor([[2.6, 0.0], [4.2, 0.0]]))


# -- MMCosine ------------------------------------------------------------------------------------------------
def test_mmcosine_logits_by_value_for_concat_and_sum():
    # a = [3, 4], W_a rows [1, 0], [0, 2] -> cos [0.6, 0.8]; v = [1, 0], W_v rows [0, 1], [5, 0] -> cos [0, 1];
    # s = 10: fused [6, 18], CE(y = 0) = 12 + log(1 + e^-12) = 12.000006
    a, v = torch.tensor([[[3.0, 4.0]]]), torch.tensor([[[1.0, 0.0]]])
    torch.testing.assert_close(
        cosine_logits(a[0], torch.tensor([[1.0, 0.0], [0.0, 2.0]]), 10.0), torch.tensor([[6.0, 8.0]])
    )
    for fusion in ("concat", "sum"):
        model = _model(num_classes=2, widths=(2,), fusion=fusion)
        with torch.no_grad():
            if fusion == "concat":
                model.fusion.head.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 1.0], [0.0, 2.0, 5.0, 0.0]]))
            else:
                model.fusion.head_a.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 2.0]]))
                model.fusion.head.weight.copy_(torch.tensor([[0.0, 1.0], [5.0, 0.0]]))
        policy = _policy("mmcosine")
        policy.setup(model)
        out = policy.predict(model, a, v)
        torch.testing.assert_close(out.fused, torch.tensor([[6.0, 18.0]]))
        assert float(F.cross_entropy(out.fused.detach(), torch.tensor([0]))) == pytest.approx(12.000006, abs=1e-5)
    with pytest.raises(ConfigError, match="mmcosine needs a fusion with a linear head per modality"):
        _policy("mmcosine").setup(_model(fusion="film"))
    with pytest.raises(ConfigError, match="needs a fusion .*this run's fusion is 'msi'"):
        check_fusion(["mmcosine"], "msi")


# -- CML -----------------------------------------------------------------------------------------------------
def test_cml_confidence_penalty_by_value():
    y = torch.tensor([0])
    # full [2, 0] -> conf 0.880797; reduced [3, 0] -> 0.952574; both right: 0.071777
    assert float(confidence_penalty(torch.tensor([[2.0, 0.0]]), torch.tensor([[3.0, 0.0]]), y)) == pytest.approx(
        0.071777, abs=1e-6
    )
    assert float(confidence_penalty(torch.tensor([[2.0, 0.0]]), torch.tensor([[1.0, 0.0]]), y)) == 0.0
    # trick 1: reduced right and full wrong -> no penalty even though the reduced one is more confident
    assert float(confidence_penalty(torch.tensor([[0.0, 2.0]]), torch.tensor([[3.0, 0.0]]), y)) == 0.0
    # summed over the batch (per-sample hinge, not BalanceBenchmark's hinge of the sum)
    full, red = torch.tensor([[2.0, 0.0], [3.0, 0.0]]), torch.tensor([[3.0, 0.0], [2.0, 0.0]])
    assert float(confidence_penalty(full, red, torch.tensor([0, 0]))) == pytest.approx(0.071777, abs=1e-6)


def test_cml_loss_uses_both_reductions_of_the_same_forward():
    model, batch = _model(), _batch()
    fwd = ForwardContext(model, model.parameter_groups(), batch, 0, True)
    out = fwd.run()
    policy = _policy("cml", lam=0.5)
    loss = policy.loss(_ctx(model, out, batch, fwd=fwd))
    a, v = fwd.used
    only_a = default_output(model, a, torch.zeros_like(v)).fused
    only_v = default_output(model, torch.zeros_like(a), v).fused
    want = 0.5 * (confidence_penalty(out.fused, only_a, batch.y) + confidence_penalty(out.fused, only_v, batch.y))
    assert float(loss.detach()) == pytest.approx(float(want.detach()), rel=1e-5)


# -- UMT / UME -----------------------------------------------------------------------------------------------
def test_umt_distillation_and_ume_prediction_by_value():
    # h = [1, 2], teacher [0, 0]: MSE = (1 + 4) / 2 = 2.5; lambda 10 -> 25
    zero = torch.zeros(1, 2)
    assert 10 * float(
        distillation({"audio": torch.tensor([[1.0, 2.0]]), "visual": zero}, {"audio": zero, "visual": zero})
    ) == pytest.approx(25.0)
    model, batch = _model(), _batch()
    umt = _policy("umt")
    umt.setup(model)
    umt.teacher_state = {k: v.clone() for k, v in model.state_dict().items()}  # a teacher equal to the student
    umt.on_epoch_start(FakeView(model))
    model.eval()
    out = model(batch.audio, batch.frames)
    assert float(umt.loss(_ctx(model, out, batch)).detach()) == pytest.approx(0.0, abs=1e-10)
    ume = _policy("ume")
    assert ume.loss_weights(None) == {"fused": 0.0}
    a, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    pred = ume.predict(model, a, v)
    za, zv = model.heads.audio(a).mean(0), model.heads.visual(v).mean(0)
    torch.testing.assert_close(pred.fused, (za + zv) / 2)


# -- OPM -----------------------------------------------------------------------------------------------------
def test_opm_probabilities_and_drop_by_value():
    # s = (6, 3): ratio_a = tanh(1) = 0.761594, q_a = 0.5 (1 + 0.5 * 0.761594) = 0.690399; q_v = 0
    assert opm_drop_probabilities(6.0, 3.0, 0.5, 0.5) == pytest.approx((0.690399, 0.0), abs=1e-6)
    assert opm_drop_probabilities(3.0, 3.0, 0.5, 0.5) == (0.0, 0.0)
    assert opm_drop_probabilities(1.0, 100.0, 1.0, 5.0)[1] == 1.0  # clipped to 1
    # theta = (0.690399 + 0) / 2 = 0.345199: kept features x 1 / (1 - theta) = 1.527182 (both modalities)
    a, v = torch.ones(1, 2, 3), torch.ones(1, 2, 3)
    da, dv = drop_features(a, v, torch.tensor([1.0, 0.0]), torch.ones(2), 0.690399, 0.0)
    torch.testing.assert_close(da[0, :, 0], torch.tensor([1.527182, 0.0]), atol=1e-5, rtol=0)
    torch.testing.assert_close(dv[0, :, 0], torch.tensor([1.527182, 1.527182]), atol=1e-5, rtol=0)


def test_opm_forward_drops_inside_the_window_only():
    model, batch = _model(), _batch(8)
    plain = ForwardContext(model, model.parameter_groups(), batch, 0, True).run().fused
    policy = _policy("opm", p_exe=0.0, start=0)
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    torch.testing.assert_close(out.fused, plain)
    assert policy.log.executed == 0.0
    policy = _policy("opm", p_exe=1.0, start=0)
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    q = opm_drop_probabilities(policy.log.score_audio, policy.log.score_visual, 0.5, 0.5)
    assert (policy.log.q_audio, policy.log.q_visual) == pytest.approx(q)
    assert policy.log.executed == 1.0 and min(policy.log.kept_audio, policy.log.kept_visual) <= 1.0
    assert max(policy.log.kept_audio, policy.log.kept_visual) == 1.0  # only the dominant one drops
    late = _policy("opm")  # warm-up: epochs 0-5 never drop
    late.forward(ForwardContext(model, model.parameter_groups(), batch, 5, True))
    assert late.log.active == 0.0 and late.log.executed == 0.0


# -- G-Blending ----------------------------------------------------------------------------------------------
def test_gblend_weights_by_value():
    # (train, val) before -> after; dG = (0.3, 0.2, 0.1), dO = (0.2, 0.3, 0.1) for (fused, audio, visual):
    # dG / dO^2 = (7.5, 2.2222, 10) / 19.7222 = (0.380282, 0.112676, 0.507042)
    before = {"fused": (1.0, 1.0), "audio": (1.0, 1.0), "visual": (1.0, 1.0)}
    after = {"fused": (0.5, 0.7), "audio": (0.5, 0.8), "visual": (0.8, 0.9)}
    w = blend_weights(before, after)
    assert [w["fused"], w["audio"], w["visual"]] == pytest.approx([0.380282, 0.112676, 0.507042], abs=1e-6)
    after["audio"] = (0.5, 1.1)  # the validation loss rose: weight 0 (BalanceBenchmark's |.| would not)
    assert blend_weights(before, after)["audio"] == 0.0
    flat = blend_weights(before, dict.fromkeys(before, (1.0, 1.0)))
    assert flat == pytest.approx(dict.fromkeys(before, 1 / 3))


# -- ReconBoost ----------------------------------------------------------------------------------------------
def test_reconboost_loss_schedule_and_ensemble_by_value():
    # C = 3, p uniform, q_y = 0.6, w = (5, 1): -(5 - 0.6) log(1/3) / 3 = 1.611298
    ens = torch.log(torch.tensor([[0.6, 0.2, 0.2]]))
    assert float(boosting_loss(torch.zeros(1, 3), ens, torch.tensor([0]), 5.0, 1.0)) == pytest.approx(
        1.611298, abs=1e-6
    )
    assert [schedule(e, 4, 4) for e in (0, 3, 4, 7, 8, 16)] == [
        (0, "audio", True),
        (0, "audio", True),
        (0, "audio", False),
        (0, "audio", False),
        (1, "visual", True),
        (2, "audio", True),
    ]
    model = _model()
    policy = _policy("reconboost", boost_rate=0.5)
    policy.setup(model)
    policy.on_epoch_start(FakeView(model, epoch=8))  # stage 1: visual boosts against the audio learner
    assert policy.members == ["audio", "visual"] and policy.boosting == "visual" and policy.others == ["audio"]
    assert policy.loss_weights(None) == {"fused": 0.0, "audio": 0.0, "visual": 0.0}
    a, v = torch.randn(2, 3, 4), torch.randn(2, 3, 4)
    out = policy.predict(model, a, v)
    f_a, f_v = policy.extra.head(a).mean(0), policy.extra.head(v).mean(0)
    torch.testing.assert_close(out.fused, 0.5 * (f_a + f_v))
    y = torch.tensor([0, 1, 2])
    loss = policy.loss(StepContext(model, None, out, y, 8, {}))
    torch.testing.assert_close(loss, boosting_loss(f_v, 0.5 * f_a, y, 5.0, 1.0))
    policy.on_epoch_start(FakeView(model, epoch=4))  # stage 0 rectification: the audio learner alone, fused CE
    assert policy.members == ["audio"] and policy.loss_weights(None)["fused"] == 1.0
    torch.testing.assert_close(policy.predict(model, a, v).fused, 0.5 * f_a)
    # stage 0, boosting, no learner yet: the official one-column constant ensemble has softmax 1, so q_y = 1:
    # -(w1 - w2) log p_y / C; p uniform over C = 3: 4 ln(3) / 3 = 1.464816
    policy.on_epoch_start(FakeView(model, epoch=0))
    assert policy.boosting == "audio" and policy.others == []
    assert float(boosting_loss(torch.zeros(2, 3), None, torch.tensor([0, 2]), 5.0, 1.0)) == pytest.approx(
        1.464816, abs=1e-6
    )
    z = torch.zeros(2, 3)
    out0 = AVOutput(fused=z, audio=z, visual=torch.randn(2, 3), fused_audio=z, fused_visual=z)
    assert float(policy.loss(StepContext(model, None, out0, torch.tensor([0, 2]), 0, {}))) == pytest.approx(
        1.464816, abs=1e-6
    )


# -- MLA -----------------------------------------------------------------------------------------------------
def test_mla_projection_and_gating_by_value():
    # P = I, r = [1, 0], alpha 0.1: P - k k^T / 1.1 = diag(1 - 1/1.1, 1) = diag(0.090909, 1); / ||.||_F
    p = update_projection(torch.eye(2), torch.tensor([[1.0, 0.0]]), 0.1)
    torch.testing.assert_close(p, torch.diag(torch.tensor([0.0905357, 0.9958932])), atol=1e-6, rtol=0)
    assert projection_alpha(0, 10) == pytest.approx(0.1) and projection_alpha(5, 10) == pytest.approx(0.0316228)
    # z_a = [2, 0]: e_a = 0.365334; z_v = [0, 0]: e_v = ln 2; gates softmax(-e) = (0.581227, 0.418773)
    g_a, g_v = entropy_gates(torch.tensor([[2.0, 0.0]]), torch.tensor([[0.0, 0.0]]))
    assert (float(g_a), float(g_v)) == pytest.approx((0.581227, 0.418773), abs=1e-6)


def test_mla_step_takes_one_optimizer_step_per_modality_with_the_projection():
    model, batch = _model(), _batch()
    policy = _policy("mla", projection=True)
    policy.setup(model)
    head = policy.extra.head
    opt = torch.optim.SGD(list(model.parameters()) + list(policy.extra.parameters()), lr=0.1)
    seen = []  # (weight, bias, weight grad) at each optimizer step

    def step_fn():
        seen.append((head.weight.detach().clone(), head.bias.detach().clone(), head.weight.grad.clone()))
        opt.step()

    fwd = ForwardContext(model, model.parameter_groups(), batch, 0, True)
    out, loss = policy.train_step(
        TrainStep(
            model, model.parameter_groups(), batch, 0, 5, 10, fwd, lambda: opt.zero_grad(set_to_none=True), step_fn
        )
    )
    assert len(seen) == 2 and int(policy.extra.count) == 2
    # reference, redone by hand: the same network's features (one forward, training mode)
    ref = _model()
    ref.train()
    feat_a, feat_v = ref.features(batch.audio, batch.frames)
    # audio step (the run's first): the plain gradient of CE(head(a)), no projection
    w0 = seen[0][0].clone().requires_grad_()
    raw_a = torch.autograd.grad(F.cross_entropy((feat_a @ w0.T + seen[0][1]).mean(0), batch.y), w0)[0]
    torch.testing.assert_close(seen[0][2], raw_a, rtol=1e-4, atol=1e-7)
    # visual step: P updated with r = batch mean of the visual features and alpha = 0.1^(1 + 5/10), then
    # grad <- grad P^T, on the head as the audio step left it
    want_p = update_projection(torch.eye(4), feat_v.mean(0).mean(0, keepdim=True), projection_alpha(5, 10))
    torch.testing.assert_close(policy.extra.P, want_p, rtol=1e-4, atol=1e-6)
    w1 = seen[1][0].clone().requires_grad_()
    raw_v = torch.autograd.grad(F.cross_entropy((feat_v @ w1.T + seen[1][1]).mean(0), batch.y), w1)[0]
    torch.testing.assert_close(seen[1][2], raw_v @ want_p.T, rtol=1e-4, atol=1e-7)
    assert out.fused.shape == (4, 3) and math.isfinite(float(loss))
    # no projection by default: the official runs (their GSPlugin never matches the parameter name)
    off = _policy("mla")
    off.setup(_model())
    assert torch.equal(off.extra.P, torch.eye(4))


# -- Greedy --------------------------------------------------------------------------------------------------
def test_greedy_rates_and_curation_state_machine_by_value():
    # bypass_0 = 0.2, main_0 = 0.1, bypass_1 = main_1 = 0.1: BDR_0 = log10 2 = 0.301030, BDR_1 = 0
    assert conditional_utilisation(0.2, 0.1) == pytest.approx(0.301030, abs=1e-6)
    assert conditional_utilisation(0.1, 0.1) == 0.0
    p = torch.nn.Parameter(torch.tensor([3.0, 4.0]))
    p.grad = torch.tensor([0.3, 0.4])
    assert relative_grad_norm([p]) == pytest.approx(0.25 / 25)
    assert mmtm_positions(4) == [1, 2, 3] and mmtm_positions(2) == [1] and mmtm_positions(1) == [0]
    policy = _policy("greedy")
    model = _model()
    policy.setup(model)
    ds = iter([0.30103, -0.3])  # consumed only when not curating

    def fake_rates(ctx):
        policy.d = next(ds)

    policy._rates = fake_rates
    ctx = StepContext(model, model.parameter_groups(), None, None, 2)
    seen = []
    for _ in range(8):
        policy.before_step(ctx)
        seen.append((policy.curating, policy.caring))
    # d = 0.301 > 0.01: curate audio (caring 0) for 5 steps (the rates pause), then d = -0.3: curate visual
    assert seen[:6] == [(True, 0)] * 5 + [(False, 0)]
    assert seen[6] == (True, 1)
    early = _policy("greedy")
    early.setup(model)
    early._rates = lambda ctx: setattr(early, "d", 1.0)
    early.before_step(StepContext(model, model.parameter_groups(), None, None, 0))  # the first epoch never curates
    assert not early.curating
    early.before_step(
        StepContext(model, model.parameter_groups(), None, None, 1)
    )  # official starting_epoch 2 (1-based)
    assert early.curating


def test_mmtm_curation_replaces_the_caring_modalitys_excitation_by_its_running_mean():
    torch.manual_seed(0)
    block = MMTM(2, 2, 4.0)
    sa, sv = torch.rand(1, 2, 2, 3, 3), torch.rand(1, 4, 2, 3, 3)  # B = 2, K = 2 frames
    block(sa, sv, 2, None, update=True)
    running = block.running_audio.clone()
    out_a, out_v = block(sa, sv, 2, caring=0, update=False)
    torch.testing.assert_close(out_a, sa * running.view(1, 1, 2, 1, 1))
    # the visual side still gets the cross-modal excitation, the same for each of a sample's frames
    assert not torch.allclose(out_v, sv * block.running_visual.view(1, 1, 2, 1, 1))
    z = F.relu(block.squeeze(torch.cat([sa.mean((-2, -1)), sv.mean((-2, -1)).view(1, 2, 2, 2).mean(2)], -1)))
    ev = torch.sigmoid(block.excite_visual(z)).repeat_interleave(2, dim=1)
    torch.testing.assert_close(out_v, sv * ev[..., None, None])


def test_greedy_forward_runs_both_encoders_through_the_mmtm_blocks():
    model, batch = _model(widths=(4, 4), blocks=(1, 1)), _batch()
    policy = _policy("greedy")
    policy.setup(model)
    assert list(policy.extra.keys()) == ["1"]
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    assert out.fused.shape == (4, 3) and int(policy.extra["1"].steps) == 1
    with torch.no_grad():  # an MMTM block that passes everything through (excitation 1) gives the plain model
        policy.extra["1"].excite_audio.bias.fill_(50.0)
        policy.extra["1"].excite_visual.bias.fill_(50.0)
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, False))
    torch.testing.assert_close(out.fused, ForwardContext(model, model.parameter_groups(), batch, 0, False).run().fused)


# -- sample- and modality-level valuation --------------------------------------------------------------------
def test_valuation_contributions_copies_and_plans_by_value():
    c = torch.tensor
    # (correct_a, correct_v, correct_av) -> (phi_a, phi_v) with v(S) = |S| * 1[correct]
    phi_a, phi_v = contributions(c([1, 1, 0, 1]), c([0, 1, 0, 0]), c([1, 1, 0, 0]))
    torch.testing.assert_close(phi_a, c([1.5, 1.0, 0.0, 0.5]))
    torch.testing.assert_close(phi_v, c([0.5, 1.0, 0.0, -0.5]))
    torch.testing.assert_close(sample_copies(c([1.5, 0.5, 0.0, -0.5, 1.0, 0.4, -0.1])), c([0, 1, 2, 3, 0, 0, 0]))
    plan = sample_plan(phi_a, phi_v, c([10, 11, 12, 13]))
    # audio-only copies (visual dropped): phi_a = 0 -> 2 of sample 12, 0.5 -> 1 of 13; visual-only: 1 of 10,
    # 2 of 12, 3 of 13
    assert plan.indices.tolist() == [10, 11, 12, 13, 12, 12, 13, 10, 12, 12, 13, 13, 13]
    assert plan.drop.tolist() == [DROP_NONE] * 4 + [DROP_VISUAL] * 3 + [DROP_AUDIO] * 6
    assert modality_gap(0.8, 1.1, 1.0, "linear") == pytest.approx(0.2)
    assert modality_gap(0.8, 1.1, 1.0, "tanh") == pytest.approx(math.tanh(0.2))
    assert modality_gap(0.8, 1.1, 1.0, "square") == pytest.approx(0.2**1.5)


def test_valuation_forward_zeroes_the_planned_modality_before_the_fusion_only():
    model = _model()
    batch = _batch(drop=[DROP_NONE, DROP_AUDIO, DROP_VISUAL, DROP_NONE])
    policy = _policy("sample_valuation")
    out = policy.forward(ForwardContext(model, model.parameter_groups(), batch, 0, True))
    ref = ForwardContext(model, model.parameter_groups(), batch, 0, True)
    a, v = ref.features()
    keep_a, keep_v = torch.tensor([1.0, 0, 1, 1]).view(1, -1, 1), torch.tensor([1.0, 1, 0, 1]).view(1, -1, 1)
    want = default_output(model, a * keep_a, v * keep_v)
    torch.testing.assert_close(out.fused, want.fused)
    torch.testing.assert_close(out.audio, default_output(model, a, v).audio)  # the heads see both modalities
    assert policy.log.dropped_in_batch == 0.5
    assert policy.forward(ForwardContext(model, model.parameter_groups(), _batch(), 0, True)) is None


def test_valuation_epoch_start_builds_the_plan_from_the_modalities_alone():
    model = _model()
    batches = [_batch(4, seed=1), dataclasses.replace(_batch(4, seed=2), index=torch.arange(4, 8))]
    view = FakeView(model, epoch=5, batches=batches)
    plan = _policy("sample_valuation").on_epoch_start(view)
    model.eval()
    correct = []
    with torch.no_grad():
        for b in batches:  # reference: the fused prediction with audio alone, visual alone, both
            a, v = model.features(b.audio, b.frames)
            za, zv = torch.zeros_like(a), torch.zeros_like(v)
            correct.append([default_output(model, x, y).fused.argmax(1) == b.y for x, y in ((a, zv), (za, v), (a, v))])
    c_a, c_v, c_av = (torch.cat([c[i] for c in correct]) for i in range(3))
    want = sample_plan(*contributions(c_a, c_v, c_av), torch.arange(8))
    assert plan.indices.tolist() == want.indices.tolist() and plan.drop.tolist() == want.drop.tolist()
    assert _policy("sample_valuation").on_epoch_start(FakeView(model, epoch=4, batches=batches)) is None  # warm-up
    mod = _policy("modality_valuation", warmup=0).on_epoch_start(FakeView(model, epoch=0, batches=batches))
    assert mod.indices[:8].tolist() == list(range(8)) and set(mod.drop[8:].tolist()) <= {DROP_AUDIO, DROP_VISUAL}


# -- Diagnosing and re-learning ------------------------------------------------------------------------------
def test_relearn_purity_strength_and_blend_by_value():
    assert purity(np.array([0, 0, 1, 1]), np.array([0, 0, 0, 1])) == 0.75
    assert reinit_strength(0.9, 0.6, 3.0) == pytest.approx(0.716298, abs=1e-6)  # tanh(0.9)
    model = _model()
    policy = _policy("relearn")
    policy.setup(model)
    groups = model.parameter_groups()
    with torch.no_grad():
        for p, p0 in zip(groups.encoder("audio"), policy.init["audio"], strict=True):
            p0.zero_()
            p.fill_(1.0)
    before_v = [p.detach().clone() for p in groups.encoder("visual")]
    policy.blend(groups, {"audio": 0.716298, "visual": 0.0})
    assert all(torch.allclose(p, torch.full_like(p, 0.283702)) for p in groups.encoder("audio"))
    assert all(torch.equal(p, q) for p, q in zip(groups.encoder("visual"), before_v, strict=True))


def test_relearn_diagnoses_after_every_reinit_epoch_at_most_reinit_num_times():
    model = _model()
    clustered, mixed = (
        torch.tensor([[0.0, 0], [0, 1], [5, 5], [5, 6]]),
        torch.tensor([[0.0, 0], [5, 5], [0, 1], [5, 6]]),
    )
    feats = FeatureSet(clustered, mixed, torch.tensor([0, 0, 1, 1]), torch.arange(4))
    val = FeatureSet(feats.audio, feats.audio, feats.y, feats.index)
    policy = _policy("relearn", reinit_epoch=2, reinit_num=1)
    policy.setup(model)
    for epoch in range(6):
        policy.on_epoch_start(FakeView(model, epoch=epoch, features={"train": feats, "val": val}, classes=2))
        # diagnosed after epoch 2 (at the start of epoch 3) only: audio clusters generalise (gap 0), visual do not
        assert policy.count == (1 if epoch >= 3 else 0)
    assert policy.log.alpha_audio == 0.0
    assert policy.log.alpha_visual == pytest.approx(math.tanh(3 * 0.5))


# -- metrics -------------------------------------------------------------------------------------------------
def test_shapley_f1_and_map_by_value():
    # v(0) = 0.1, v(a) = 0.6, v(v) = 0.4, v(av) = 0.7: phi_a = (0.5 + 0.3) / 2 = 0.4, phi_v = (0.3 + 0.1) / 2 = 0.2
    assert shapley_two(0.7, 0.6, 0.4, 0.1) == pytest.approx((0.4, 0.2))
    # F1 per class (1, 2/3, 2/3, 0: class 3 absent) -> 0.583333
    assert macro_f1(np.array([0, 1, 1, 2]), np.array([0, 1, 2, 2]), 4) == pytest.approx(0.583333, abs=1e-6)
    # class 1 scores [0.1, 0.4, 0.35, 0.8] for y [0, 0, 1, 1]: AP = 0.833333; class 0 (1 - p): 0.833333
    p1 = np.array([0.1, 0.4, 0.35, 0.8])
    probs = np.stack([1 - p1, p1], 1)
    assert mean_average_precision(np.array([0, 0, 1, 1]), probs) == pytest.approx(0.833333, abs=1e-6)


def test_metrics_collector_gives_shapley_from_masked_predictions():
    y = torch.tensor([0, 1, 2, 0])
    right = F.one_hot(y, 3).float() * 5
    wrong = F.one_hot((y + 1) % 3, 3).float() * 5
    out = AVOutput(right, right, wrong, right, wrong)
    col = MetricsCollector()
    # v(a) = 1 (all right), v(v) = 0.5, v(0) = 0.25, v(av) = 1 -> phi_a = 0.75 / 2 + 0.5 / 2 = 0.625, phi_v = 0.125
    masked = {
        "only_audio": right,
        "only_visual": torch.cat([right[:2], wrong[2:]]),
        "none": torch.cat([right[:1], wrong[1:]]),
    }
    col.add(torch.tensor(0.5), out, y, masked)
    m = col.result()
    assert (m.shapley_audio, m.shapley_visual) == pytest.approx((0.625, 0.125))
    assert m.acc == 1.0 and m.acc_visual == 0.0 and m.f1 == 1.0 and m.f1_visual == 0.0 and m.map == 1.0


# -- composition and the trainer's hooks ---------------------------------------------------------------------
@pytest.mark.parametrize("name", ["mla", "reconboost", "ume", "constant", "noise"])
def test_methods_that_do_not_compose_with_iemf_refuse_it_in_one_line(name):
    with pytest.raises(ConfigError, match=f"method '{name}' does not compose with IEMF: ") as err:
        build_policies([{"name": name}, {"name": "iemf"}])
    assert "\n" not in str(err.value)


def test_compose_refuses_two_owners_of_a_hook_and_a_step_owner_with_company():
    with pytest.raises(ConfigError, match="at most one method may compute the forward itself: agm, opm"):
        build_policies([{"name": "agm"}, {"name": "opm"}])
    with pytest.raises(ConfigError, match="at most one method may compute the prediction itself"):
        build_policies([{"name": "mmcosine"}, {"name": "ume"}])
    with pytest.raises(ConfigError, match="'mla' takes over the whole training step and runs alone"):
        build_policies([{"name": "mla"}, {"name": "ogm_ge"}])
    pol = build_policies([{"name": "gblend"}, {"name": "ume"}])
    pol.policies[0].weights = {"fused": 0.5, "audio": 0.25, "visual": 0.25}
    assert pol.loss_weights(None) == {"fused": 0.0, "audio": 0.25, "visual": 0.25}  # products of the weights
    assert not build_policies([{"name": "agm"}]).data_parallel and build_policies([{"name": "ogm_ge"}]).data_parallel


def _tiny_trainer(tmp_path, policies, epochs=1, **cfg):
    from torch.utils.data import Subset

    from snn_msi.data import build_datasets
    from snn_msi.training import Trainer, demo_config

    model = {**demo_config().model.to_dict(), **dict(TINY, num_classes=10, visual_channels=1, T=1)}
    config = demo_config(
        epochs=epochs,
        batch_size=8,
        model=model,
        out=str(tmp_path / "run"),
        policies=policies,
        data={"dataset": "digits-av", "preset": "hard", "limit": 16},
        **cfg,
    )
    train, val, test = build_datasets(config.data, 0)
    return Trainer(config, datasets=(train, Subset(val, range(8)), Subset(test, range(8))), progress=False, plots=False)


def test_a_sample_plan_sets_the_epochs_samples_and_drop_codes(tmp_path):
    from snn_msi.training.policies import Policy

    seen = []

    class Twice(Policy):
        name = "twice"

        def on_epoch_start(self, view):
            n = len(view.trainer.train_set)
            return SamplePlan(torch.arange(n).repeat(2), torch.tensor([DROP_NONE] * n + [DROP_VISUAL] * n))

        def loss(self, ctx):
            seen.append((ctx.batch.index.tolist(), ctx.batch.drop.tolist()))
            return None

    from snn_msi.training.policies import Compose

    trainer = _tiny_trainer(tmp_path, [])
    trainer.policies = Compose([Twice()])
    trainer.fit()
    indices = sorted(i for idx, _ in seen for i in idx)
    assert indices == sorted(list(range(16)) * 2)
    assert sum(d == DROP_VISUAL for _, drop in seen for d in drop) == 16
    from snn_msi.training import read_csv

    row = read_csv(tmp_path / "run" / "metrics.csv")[0]
    assert row["train_n"] == 32 and row["train_samples"] == 32
    for col in ("val_f1", "val_f1_audio", "val_map", "val_shapley_audio", "val_shapley_visual"):
        assert col in row and math.isfinite(row[col]), col
    assert -1.0 <= row["val_shapley_audio"] <= 1.0 and -1.0 <= row["val_shapley_visual"] <= 1.0


def test_a_zero_loss_weight_leaves_its_terms_parameters_without_gradient(tmp_path):
    trainer = _tiny_trainer(tmp_path, [{"name": "ume"}])
    grads = {}
    orig = trainer._optimizer_step

    def spy(epoch):
        grads["fusion"] = [p.grad for p in trainer.groups.fusion]
        grads["heads"] = [p.grad for p in trainer.groups.audio_head]
        orig(epoch)

    trainer._optimizer_step = spy
    trainer.fit()
    assert all(g is None for g in grads["fusion"]) and all(g is not None for g in grads["heads"])


def test_new_methods_resume_bit_identically(tmp_path):
    """A run killed after epoch 1 and resumed ends where the uninterrupted run does (the epoch-level state,
    the methods' own parameters and their seeded draws included)."""
    from snn_msi.training import Trainer, load_checkpoint

    policies = [{"name": "sample_valuation", "warmup": 1}]
    a = _tiny_trainer(tmp_path / "a", policies, epochs=2)
    a.fit()
    b = _tiny_trainer(tmp_path / "b", policies, epochs=2)
    b.stop_after = 1
    b.fit()
    b2 = Trainer(b.cfg, datasets=(b.train_set, b.val_set, b.test_set), mode="resume", progress=False, plots=False)
    b2.fit()
    wa, wb = load_checkpoint(tmp_path / "a" / "run" / "last.pt"), load_checkpoint(tmp_path / "b" / "run" / "last.pt")
    for k, v in wa["model"].items():
        assert torch.equal(v, wb["model"][k]), k


@pytest.mark.parametrize(
    "method, options",
    [
        ("sample_valuation", {"warmup": 0}),
        ("modality_valuation", {"warmup": 0}),
        ("relearn", {"reinit_epoch": 1}),
        ("opm", {"start": 0, "p_exe": 1.0}),
        ("reconboost", {"epochs_per_stage": 1, "correct_epoch": 1}),
        ("greedy", {"start": 0, "epsilon": 0.0}),
    ],
)
def test_epoch_level_methods_act_within_a_short_run(method, options, tmp_path):
    """The periodic parts (valuation, re-initialisation, drops, stages, curation) do act in a short run."""
    from snn_msi.training import read_csv

    # re-learning diagnoses after epoch 1 at the earliest (e > 0), at the start of the third epoch
    trainer = _tiny_trainer(tmp_path, [{"name": method, **options}], epochs=3 if method == "relearn" else 2)
    trainer.fit()
    steps = read_csv(tmp_path / "run" / "steps.csv")
    rows = read_csv(tmp_path / "run" / "metrics.csv")
    acted = {
        "sample_valuation": lambda: rows[0]["train_samples"] > 16 or rows[1]["train_samples"] > 16,
        "modality_valuation": lambda: all(math.isfinite(s["modality_valuation/phi_audio"]) for s in steps),
        "relearn": lambda: steps[-1]["relearn/reinits"] == 1.0,
        "opm": lambda: any(s["opm/executed"] == 1.0 for s in steps),
        "reconboost": lambda: (
            [s["reconboost/boosting"] for s in steps][:2] == [1.0, 1.0] and steps[-1]["reconboost/boosting"] == 0.0
        ),
        "greedy": lambda: any(s["greedy/curating"] == 1.0 for s in steps),
    }[method]
    assert acted(), steps


def test_the_methods_study_runs_every_row_and_reports_mean_and_interval(tmp_path, monkeypatch):
    import snn_msi.reports.study_methods as sm
    from snn_msi.reports.runs import RunOptions

    base = sm.default_recipe(epochs=1)
    recipe = base.replace(
        model={**TINY, "num_classes": 10, "visual_channels": 1, "stem_stride": 2},
        batch_size=16,
        data={**base.data.to_dict(), "limit": 16},
    )
    runs = RunOptions(seeds=[0, 1], jobs=1, out=str(tmp_path), progress=False)
    cfg = sm.MethodsStudyConfig(methods=("ume",), recipe=recipe, runs=runs)
    assert sm.cells(cfg) == [sm.Cell("normal"), sm.Cell("normal", iemf=True), sm.Cell("ume")]  # UME: no IEMF row
    summary = sm.run_methods_study(cfg)
    assert [(r["method"], r["with_iemf"], r["n"]) for r in summary] == [(c.method, c.iemf, 2) for c in sm.cells(cfg)]
    runs = list(__import__("csv").DictReader((tmp_path / "runs.csv").open()))
    accs = [float(r["test_acc"]) for r in runs if r["method"] == "normal" and r["with_iemf"] == "True"]
    mean, lo, hi = summary[1]["acc_mean"], summary[1]["acc_ci_low"], summary[1]["acc_ci_high"]
    # Student t, 1 degree of freedom: 12.706205 * sd / sqrt(2)
    half = 12.706205 * float(np.std(accs, ddof=1)) / math.sqrt(2)
    assert mean == pytest.approx(np.mean(accs)) and (lo, hi) == pytest.approx((mean - half, mean + half))
    assert "| normal | official | yes | 2 |" in (tmp_path / "summary.md").read_text()
    with pytest.raises(ConfigError, match="unknown method 'cmll'"):
        sm.MethodsStudyConfig(methods=("cmll",)).method_names()
