"""Every method against its source's formula, by value, on hand-built batches.

Sources (see the docstrings of snn_msi/training/policies/*.py): the IEMF code (Brain-Cog-Lab/BIM-ML,
train_snn.py / train_aba.py), OGM-GE (GeWu-Lab/OGM-GE_CVPR2022 main.py, Eq. 10), MSLR as the IEMF code runs
it (AGM's baseline), LFM (njustkmg/NeurIPS24-LFM), MMPareto (GeWu-Lab/MMPareto_ICML2024 MMPareto.py).
The expected numbers are written out from those formulas, not computed by the code under test.
"""

import math

import pytest
import torch

from snn_msi.models import AVOutput, build
from snn_msi.schema import ConfigError
from snn_msi.training import METHODS, build_policies, policies_for
from snn_msi.training.metrics import SplitMetrics
from snn_msi.training.policies import StepContext
from snn_msi.training.policies.iemf import iemf_coefficient
from snn_msi.training.policies.lfm import js_divergence
from snn_msi.training.policies.mmpareto import combine, pareto_weights
from snn_msi.training.policies.mslr import mslr_ratio
from snn_msi.training.policies.ogm_ge import ogm_ge_coefficients

TINY = dict(num_classes=3, widths=(4,), blocks=(1,), stem="small", T=1, audio_channels=1, visual_channels=3)


def _logits_with_true_prob(p_true: list[float], y: list[int], classes: int = 3) -> torch.Tensor:
    """Logits whose softmax gives probability p to the true class and splits the rest evenly."""
    rows = []
    for p, c in zip(p_true, y, strict=True):
        row = [math.log((1 - p) / (classes - 1))] * classes
        row[c] = math.log(p)
        rows.append(row)
    return torch.tensor(rows)


Y = torch.tensor([0, 2])
# the worked example of the IEMF code: p_a(y) = [0.2, 0.4], p_v(y) = [0.5, 0.7], p_av(y) = [0.6, 0.9]
OUT = AVOutput(
    fused=_logits_with_true_prob([0.6, 0.9], [0, 2]),
    audio=_logits_with_true_prob([0.2, 0.4], [0, 2]),
    visual=_logits_with_true_prob([0.5, 0.7], [0, 2]),
    fused_audio=_logits_with_true_prob([0.3, 0.45], [0, 2]),  # s = 0.75
    fused_visual=_logits_with_true_prob([0.4, 0.3875], [0, 2]),  # s = 0.7875: ratio_v = 1.05
)


def _model_with_grads(seed=0):
    torch.manual_seed(seed)
    model = build(**TINY)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    return model, {n: p.grad.clone() for n, p in model.named_parameters()}


def _ctx(model, epoch=0, out=OUT, losses=None):
    return StepContext(model, model.parameter_groups(), out, Y, epoch, losses or {})


def _changed(model, before):
    return {n for n, p in model.named_parameters() if not torch.equal(p.grad, before[n])}


# -- IEMF ----------------------------------------------------------------------------------------------------
def test_iemf_coefficient_by_value():
    # s_a = 0.6, s_v = 1.2, s_av = 1.5 -> r = 0.6 -> 1 + tanh(0.4) = 1.37995 (train_snn.py L831-836)
    assert iemf_coefficient(0.6, 1.2, 1.5) == pytest.approx(1.379949, abs=1e-6)
    # ablation script (train_aba.py L812): lambda outside the tanh
    assert iemf_coefficient(0.6, 1.2, 1.5, lam=2.0, mode="outside") == pytest.approx(2.759898, abs=1e-6)
    assert iemf_coefficient(0.6, 1.2, 1.5, lam=2.0, mode="inside") == pytest.approx(1 + math.tanh(0.8))
    # reference points of the source: r = 0.5 -> 1.46212, r = 1 -> 1, r = 1.5 -> 0.53788
    for r, c in ((0.5, 1.46212), (1.0, 1.0), (1.5, 0.53788)):
        assert iemf_coefficient(r, r, 1.0) == pytest.approx(c, abs=1e-5)


def test_iemf_scales_exactly_the_fusion_gradient_with_the_unscaled_std_noise():
    model, before = _model_with_grads()
    policy = build_policies([{"name": "iemf", "noise": False}]).policies[0]
    policy.before_step(_ctx(model))
    assert policy.log.coeff == pytest.approx(1.379949, abs=1e-5)
    assert policy.log.score_audio == pytest.approx(0.6, abs=1e-6)
    assert _changed(model, before) == {"fusion.head.weight", "fusion.head.bias"}
    w = model.fusion.head.weight
    torch.testing.assert_close(w.grad, before["fusion.head.weight"] * policy.log.coeff)
    # with noise: grad * c + N(0, std(unscaled grad) + 1e-8)
    model, before = _model_with_grads()
    policy = build_policies([{"name": "iemf"}]).policies[0]
    policy.before_step(_ctx(model))
    g0 = before["fusion.head.weight"]
    noise = model.fusion.head.weight.grad - g0 * policy.log.coeff
    assert noise.std().item() == pytest.approx(g0.std().item(), rel=0.35)


@pytest.mark.parametrize("epoch, active", [(0, False), (2, True), (4, True), (5, False)])
def test_window_is_start_inclusive_end_exclusive(epoch, active):
    model, before = _model_with_grads()
    policy = build_policies([{"name": "iemf", "start": 2, "end": 5}]).policies[0]
    policy.before_step(_ctx(model, epoch))
    assert bool(_changed(model, before)) == active and policy.log.active == float(active)


def test_constant_and_noise_controls():
    model, before = _model_with_grads()
    policy = build_policies([{"name": "constant", "coeff": 1.3, "noise": False}]).policies[0]
    policy.before_step(_ctx(model))
    torch.testing.assert_close(model.fusion.head.bias.grad, before["fusion.head.bias"] * 1.3)
    model, before = _model_with_grads()
    build_policies([{"name": "noise"}]).policies[0].before_step(_ctx(model))
    assert _changed(model, before) == {"fusion.head.weight", "fusion.head.bias"}


# -- OGM-GE --------------------------------------------------------------------------------------------------
def test_ogm_ge_coefficients_by_value():
    # Eq. 10: the dominant modality gets 1 - tanh(alpha * relu(ratio)); alpha 0.8, ratio 1.05 -> 0.314191
    assert ogm_ge_coefficients(1.0, 1.05, 0.8) == pytest.approx((1.0, 0.314191), abs=1e-6)
    assert ogm_ge_coefficients(2.0, 1.0, 0.8) == pytest.approx((0.078331, 1.0), abs=1e-6)  # ratio_a = 2
    # ratio_v == 1 takes the else branch of both codes: audio gets 1 - tanh(alpha)
    assert ogm_ge_coefficients(1.0, 1.0, 0.8) == pytest.approx((1 - math.tanh(0.8), 1.0))


def test_ogm_ge_modulates_the_dominant_encoders_conv_weights_in_epochs_0_to_50():
    model, before = _model_with_grads()
    policy = build_policies([{"name": "ogm_ge", "noise": False}]).policies[0]
    policy.before_step(_ctx(model))
    assert policy.log.coeff_visual == pytest.approx(0.314191, abs=1e-5) and policy.log.coeff_audio == 1.0
    conv = {n for n, p in model.named_parameters() if p.dim() == 4 and n.startswith("visual_net.")}
    assert _changed(model, before) == conv
    name = sorted(conv)[0]
    torch.testing.assert_close(dict(model.named_parameters())[name].grad, before[name] * policy.log.coeff_visual)
    # the generalisation-enhancement noise reaches both encoders (the weaker one's coefficient is 1)
    model, before = _model_with_grads()
    build_policies([{"name": "ogm_ge"}]).policies[0].before_step(_ctx(model))
    all_conv = {n for n, p in model.named_parameters() if p.dim() == 4 and n.startswith(("audio_net.", "visual_net."))}
    assert _changed(model, before) == all_conv
    # epoch 50 is the last modulated epoch (modulation_ends = 50, inclusive)
    for epoch, active in ((50, True), (51, False)):
        model, before = _model_with_grads()
        build_policies([{"name": "ogm_ge"}]).policies[0].before_step(_ctx(model, epoch))
        assert bool(_changed(model, before)) == active
    model, before = _model_with_grads()
    build_policies([{"name": "ogm_ge", "params": "all", "noise": False}]).policies[0].before_step(_ctx(model))
    assert _changed(model, before) == {n for n, _ in model.named_parameters() if n.startswith("visual_net.")}


# -- MSLR ----------------------------------------------------------------------------------------------------
def test_mslr_ratio_and_scaling_by_value():
    # history [50, 52, 54, 56, 58], current 60 -> ratio 60 / 54; audio coefficient 0.9 * 1.1111 = 1.0
    assert mslr_ratio([50, 52, 54, 56, 58], 60, 5) == pytest.approx(60 / 54)
    assert mslr_ratio([50, 52, 54, 56], 60, 5) == 1.0  # 1 until five epochs exist
    policy = build_policies([{"name": "mslr"}]).policies[0]
    for acc_a, acc_v in zip([0.50, 0.52, 0.54, 0.56, 0.58, 0.60], [0.4] * 6, strict=True):
        policy.on_validation(SplitMetrics(0.0, 0.5, acc_a, acc_v, 0.0, 0.0, 10), epoch=0)
    model, before = _model_with_grads()
    policy.before_step(_ctx(model, epoch=6))
    assert policy.log.scale_audio == pytest.approx(1.0) and policy.log.scale_visual == pytest.approx(1.1)
    groups = model.parameter_groups()
    visual = {n for n, p in model.named_parameters() if any(p is q for q in groups.branch("visual"))}
    assert _changed(model, before) == visual  # audio's coefficient is exactly 1 here
    torch.testing.assert_close(model.heads.visual.weight.grad, before["heads.visual.weight"] * 1.1)
    model, before = _model_with_grads()
    policy.before_step(_ctx(model, epoch=51))  # outside epochs 0-50
    assert not _changed(model, before)


# -- LFM -----------------------------------------------------------------------------------------------------
def test_lfm_is_the_jensen_shannon_divergence():
    # P = softmax([1, 0, 0]), Q = softmax([0, 1, 0]); JS = (KL(P||M) + KL(Q||M)) / 2 written out
    p = torch.softmax(torch.tensor([1.0, 0.0, 0.0]), 0)
    q = torch.softmax(torch.tensor([0.0, 1.0, 0.0]), 0)
    m = (p + q) / 2
    expected = 0.5 * float((p * (p / m).log()).sum() + (q * (q / m).log()).sum())
    got = js_divergence(torch.tensor([[1.0, 0.0, 0.0]]), torch.tensor([[0.0, 1.0, 0.0]]))
    assert float(got) == pytest.approx(expected, rel=1e-5)
    # the originals' F.kl_div(p.log(), m) order gives (KL(M||P) + KL(M||Q)) / 2 = 0.094657 on one-hot inputs;
    # the true JS there is 0.087430
    onehot = js_divergence(torch.tensor([[30.0, 0.0, 0.0]]), torch.tensor([[0.0, 30.0, 0.0]]))
    assert float(onehot) == pytest.approx(math.log(2), abs=1e-6)
    policy = build_policies([{"name": "lfm", "weight": 2.0}]).policies[0]
    term = policy.loss(_ctx(build(**TINY)))
    assert float(term) == pytest.approx(2.0 * float(js_divergence(OUT.audio, OUT.visual)))


# -- MMPareto ------------------------------------------------------------------------------------------------
def test_mmpareto_combination_by_value():
    # conflict: g_mm = [1, 0], g_a = [-1, 1] -> MinNorm weight 0.6 on g_mm; new = [0.4, 0.8]; rescaled to
    # ||g_mm + g_a|| = 1 and times gamma 1.5 -> [0.670820, 1.341641] (the official MMPareto.py)
    k = pareto_weights([torch.tensor([1.0, 0.0])], [torch.tensor([-1.0, 1.0])])
    assert k == pytest.approx((0.6, 0.4))
    torch.testing.assert_close(
        combine(torch.tensor([1.0, 0.0]), torch.tensor([-1.0, 1.0]), k, 1.5), torch.tensor([0.670820, 1.341641])
    )
    # no conflict: k = (0.5, 0.5), new = the sum, times gamma
    k = pareto_weights([torch.tensor([1.0, 0.0])], [torch.tensor([1.0, 1.0])])
    torch.testing.assert_close(
        combine(torch.tensor([1.0, 0.0]), torch.tensor([1.0, 1.0]), k, 1.5), torch.tensor([3.0, 1.5])
    )


def test_mmpareto_direction_does_not_increase_either_loss_to_first_order():
    torch.manual_seed(1)
    for _ in range(20):
        g_mm, g_uni = torch.randn(7), torch.randn(7)
        k = pareto_weights([g_mm], [g_uni])
        d = combine(g_mm, g_uni, k, 1.0)
        assert float(d @ g_mm) >= -1e-6 and float(d @ g_uni) >= -1e-6


def test_mmpareto_backward_sets_each_encoder_tensor_as_the_official_code():
    torch.manual_seed(0)
    model = build(**TINY)
    inputs, y = (torch.randn(4, 1, 8, 8), torch.randn(4, 1, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    ce = torch.nn.functional.cross_entropy

    def losses_of(out):
        return {"fused": ce(out.fused, y), "audio": ce(out.audio, y), "visual": ce(out.visual, y)}

    # expected, from separate gradients of each loss (the official code backwards each loss on its own)
    enc = [p for p in model.audio_net.parameters()]
    g_mm = torch.autograd.grad(losses_of(model(*inputs))["fused"], enc, allow_unused=True)
    g_a = torch.autograd.grad(losses_of(model(*inputs))["audio"], enc, allow_unused=True)
    g_mm = [torch.zeros_like(p) if g is None else g for p, g in zip(enc, g_mm, strict=True)]
    g_a = [torch.zeros_like(p) if g is None else g for p, g in zip(enc, g_a, strict=True)]
    k = pareto_weights(g_mm, g_a)
    head_grad = torch.autograd.grad(sum(losses_of(model(*inputs)).values()), model.heads.audio.weight)[0]
    out = model(*inputs)
    losses = losses_of(out)
    policy = build_policies([{"name": "mmpareto"}]).policies[0]
    assert policy.backward(StepContext(model, model.parameter_groups(), out, y, 0, losses), sum(losses.values()))
    assert policy.log.k_fused_audio == pytest.approx(k[0])
    for p, a, b in zip(enc, g_mm, g_a, strict=True):
        torch.testing.assert_close(p.grad, combine(a, b, k, 1.5))
    torch.testing.assert_close(model.heads.audio.weight.grad, head_grad)  # heads: the plain summed gradient


def test_mmpareto_keeps_another_methods_loss_term_on_the_encoders():
    """A rate regulariser (or LFM's term) next to MMPareto adds its plain gradient to the combined one."""
    torch.manual_seed(0)
    model = build(**TINY)
    inputs, y = (torch.randn(4, 1, 8, 8), torch.randn(4, 1, 3, 8, 8)), torch.tensor([0, 1, 2, 0])
    ce = torch.nn.functional.cross_entropy
    enc = [p for p in model.audio_net.parameters()]

    def step(with_extra: bool) -> list[torch.Tensor]:
        model.zero_grad(set_to_none=True)
        out = model(*inputs)
        losses = {"fused": ce(out.fused, y), "audio": ce(out.audio, y), "visual": ce(out.visual, y)}
        extra = (out.features["audio"] ** 2).mean() if with_extra else None
        ctx = StepContext(model, model.parameter_groups(), out, y, 0, losses, extra=extra)
        total = sum(losses.values()) + (extra if with_extra else 0)
        assert build_policies([{"name": "mmpareto"}]).policies[0].backward(ctx, total)
        return [torch.zeros_like(p) if p.grad is None else p.grad.clone() for p in enc]

    plain = step(False)
    out = model(*inputs)
    g_extra = torch.autograd.grad((out.features["audio"] ** 2).mean(), enc, allow_unused=True)
    g_extra = [torch.zeros_like(p) if g is None else g for p, g in zip(enc, g_extra, strict=True)]
    assert any(float(g.abs().sum()) > 0 for g in g_extra)
    for got, base, e in zip(step(True), plain, g_extra, strict=True):
        torch.testing.assert_close(got, base + e)


# -- the registry and composition ----------------------------------------------------------------------------
@pytest.mark.parametrize("name", METHODS.names())
def test_every_method_builds_from_its_name_and_resumes_its_state(name):
    pol = build_policies([{"name": name}], seed=3)
    again = build_policies([{"name": name}], seed=3)
    again.load_state_dict(pol.state_dict())
    assert pol.names() == [name] and METHODS.get(name).source and METHODS.get(name).iemf


def test_compose_namespaces_logs_and_rejects_bad_specs():
    pol = build_policies(policies_for("ogm_ge", iemf=True))
    model, _ = _model_with_grads()
    pol.before_step(_ctx(model))
    log = pol.step_log()
    assert {"ogm_ge/coeff_visual", "iemf/coeff"} <= set(log)
    with pytest.raises(ConfigError, match=r"policies\[0\]\(ogm_ge\)\.alfa"):
        build_policies([{"name": "ogm_ge", "alfa": 0.8}])
    with pytest.raises(ConfigError, match="unknown method 'ogmge'.*Did you mean 'ogm_ge'"):
        build_policies([{"name": "ogmge"}])
    with pytest.raises(ConfigError, match="lambda_mode"):
        build_policies([{"name": "iemf", "lambda_mode": "middle"}])
    with pytest.raises(ConfigError, match="end .* must be after start"):
        build_policies([{"name": "iemf", "start": 5, "end": 5}])
    with pytest.raises(ConfigError, match="at most one method may compute the backward"):
        from snn_msi.training.policies import Compose
        from snn_msi.training.policies.mmpareto import MMPareto

        Compose([MMPareto(), MMPareto()])


def _literal_fields(cls) -> list[tuple[str, tuple]]:
    import typing

    return [(n, typing.get_args(t)) for n, t in cls.field_types().items() if typing.get_origin(t) is typing.Literal]


@pytest.mark.parametrize("name", METHODS.names())
def test_every_closed_choice_of_a_method_is_a_literal_with_a_one_line_error(name):
    cls = METHODS.get(name).factory.config_class
    for field_name, choices in _literal_fields(cls):
        for value in choices:  # every declared choice builds
            build_policies([{"name": name, field_name: value}])
        with pytest.raises(ConfigError) as err:
            build_policies([{"name": name, field_name: "bogus"}])
        assert str(err.value).startswith(f"policies[0]({name}).{field_name} must be one of") and "\n" not in str(
            err.value
        )


def test_every_closed_choice_of_a_run_config_is_a_literal_with_a_one_line_error():
    from snn_msi.training import TrainConfig

    where = {"": TrainConfig(), "loss.": TrainConfig().loss, "model.": TrainConfig().model, "data.": TrainConfig().data}
    seen = []
    for prefix, cfg in where.items():
        for field_name, _ in _literal_fields(type(cfg)):
            d = TrainConfig().to_dict()
            (d[prefix[:-1]] if prefix else d)[field_name] = "bogus"
            with pytest.raises(ConfigError, match=rf"^{prefix}{field_name} must be one of [^\n]*, got 'bogus'$"):
                TrainConfig.from_dict(d)
            seen.append(prefix + field_name)
    assert {"optimizer", "on_nonfinite", "loss.unimodal", "model.stem", "data.on_bad_clip"} <= set(seen)


def test_a_log_field_a_step_does_not_set_keeps_its_column(tmp_path):
    """The run log's columns are every declared field, known before the first row (a column missing from the
    first row was once dropped for the whole run)."""
    from dataclasses import dataclass

    from snn_msi.training import RunLog, read_csv
    from snn_msi.training.policies import Compose, Policy, PolicyLog

    @dataclass
    class LateLog(PolicyLog):
        early: float = math.nan
        late: float = math.nan

    class Late(Policy):
        name = "late"
        log_class = LateLog

    pol = Compose([Late()])
    log = RunLog(tmp_path, loggers=("csv",), step_columns=("epoch", "step", *pol.log_columns()))
    p = pol.policies[0]
    p.log.update(early=1.0)
    log.step({"epoch": 1, "step": 0, **pol.step_log()})
    p.log.update(late=2.0)
    log.step({"epoch": 1, "step": 1, **pol.step_log()})
    log.epoch({"epoch": 1})
    rows = read_csv(tmp_path / "steps.csv")
    assert [r["late/early"] for r in rows] == [1.0, 1.0] and math.isnan(rows[0]["late/late"])
    assert rows[1]["late/late"] == 2.0
    with pytest.raises(AttributeError, match="declares no field 'later'"):
        p.log.update(later=1.0)
