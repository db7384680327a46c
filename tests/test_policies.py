import math
from types import SimpleNamespace

import pytest
import torch

from snn_msi.models import build
from snn_msi.training.policies import (
    IEMF,
    LFM,
    MSLR,
    OGMGE,
    Compose,
    ConstantScale,
    MMPareto,
    build_policies,
    pareto_combine,
)

TINY = dict(num_classes=3, widths=(4,), blocks=(1,), stem="small", T=1)


def _out(fused, audio, visual, fa=None, fv=None):
    fa, fv = (audio if fa is None else fa), (visual if fv is None else fv)
    t = torch.tensor
    return SimpleNamespace(fused=t(fused), audio=t(audio), visual=t(visual), fused_audio=t(fa), fused_visual=t(fv))


def _p_true(logits, y):
    return sum(math.exp(r[c]) / sum(math.exp(v) for v in r) for r, c in zip(logits, y, strict=True))


def _model_with_grads(seed=0):
    torch.manual_seed(seed)
    model = build(**TINY)
    for p in model.parameters():
        p.grad = torch.randn_like(p)
    return model, {n: p.grad.clone() for n, p in model.named_parameters()}


BATCH = dict(
    fused=[[2.0, 0.0, 0.0], [0.0, 1.0, 0.0]],
    audio=[[0.5, 0.0, 0.0], [0.0, 0.2, 0.3]],
    visual=[[0.1, 0.0, 0.4], [0.0, 0.9, 0.0]],
)
Y = torch.tensor([0, 1])


@pytest.mark.parametrize("lam, mode", [(1.0, "inside"), (0.5, "inside"), (2.0, "outside")])
def test_iemf_coefficient_formula(lam, mode):
    out = _out(**BATCH)
    s_a, s_v, s_av = (_p_true(BATCH[k], [0, 1]) for k in ("audio", "visual", "fused"))
    r = 1 - ((s_a + s_v) / 2) / s_av
    expected = 1 + math.tanh(lam * r) if mode == "inside" else lam * (1 + math.tanh(r))
    pol = IEMF(lam, mode)
    assert pol.coefficient(out, Y) == pytest.approx(expected, rel=1e-6)
    assert pol.last["score_fused"] == pytest.approx(s_av, rel=1e-6)
    assert expected > 1.0  # weak unimodal evidence relative to fused -> stronger fusion learning


def test_iemf_scales_only_fusion_gradients():
    model, before = _model_with_grads()
    pol = IEMF(noise=False)
    pol.before_step(model, _out(**BATCH), Y, epoch=0)
    coeff = pol.last["coeff"]
    fusion = {n for n, _ in model.named_parameters() if n.startswith("fusion.")}
    assert fusion
    for n, p in model.named_parameters():
        expect = before[n] * coeff if n in fusion else before[n]
        torch.testing.assert_close(p.grad, expect)


def test_iemf_noise_has_the_gradient_std():
    model, _ = _model_with_grads()
    before_w = torch.randn(400, 500) * 3.0
    model.fusion.head.weight = torch.nn.Parameter(torch.zeros(400, 500))
    model.fusion.head.weight.grad = before_w.clone()
    pol = ConstantScale(1.7, noise=True)
    pol.before_step(model, _out(**BATCH), Y, epoch=0)
    noise = model.fusion.head.weight.grad - 1.7 * before_w
    assert noise.std().item() == pytest.approx(before_w.std().item(), rel=0.02)
    assert noise.mean().abs().item() < 0.05


@pytest.mark.parametrize("epoch, active", [(2, False), (3, True), (6, True), (7, False)])
def test_window_edges(epoch, active):
    model, before = _model_with_grads()
    pol = IEMF(noise=False, start=3, end=7)
    pol.before_step(model, _out(**BATCH), Y, epoch=epoch)
    changed = not torch.equal(model.fusion.head.weight.grad, before["fusion.head.weight"])
    assert changed == active and pol.last["active"] == float(active)


def test_ogm_ge_coefficients_and_targets():
    out = _out(**BATCH, fa=[[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]], fv=[[0.0, 0.0, 0.0], [0.0, 0.0, 0.0]])
    s_a = _p_true([[3.0, 0.0, 0.0], [0.0, 3.0, 0.0]], [0, 1])
    s_v = 2 / 3
    ratio_a = s_a / s_v
    pol = OGMGE(alpha=0.8, noise=False)
    model, before = _model_with_grads()
    pol.before_step(model, out, Y, epoch=0)
    coeff_a = 1 - math.tanh(0.8 * (ratio_a - 1))
    assert pol.last["ogm_coeff_audio"] == pytest.approx(coeff_a, rel=1e-6)
    assert pol.last["ogm_coeff_visual"] == 1.0
    for n, p in model.named_parameters():
        expect = before[n] * coeff_a if n.startswith("audio_net.") else before[n]
        torch.testing.assert_close(p.grad, expect)


def test_mslr_uses_validation_accuracies():
    model = build(**TINY)
    groups = [{"params": model.encoder_parameters("audio"), "name": "audio"},
              {"params": model.encoder_parameters("visual"), "name": "visual"}]  # fmt: skip
    opt = torch.optim.SGD(groups, lr=0.1)
    pol = MSLR()
    pol.on_validation({"val_acc_audio": 0.8, "val_acc_visual": 0.4}, opt, 0)
    assert opt.param_groups[0]["lr"] == pytest.approx(0.1 * 0.6 / 0.8)
    assert opt.param_groups[1]["lr"] == pytest.approx(0.1 * 0.6 / 0.4)
    pol.on_validation({"val_acc_audio": 0.5, "val_acc_visual": 0.5}, opt, 1)  # back to the base rate
    assert [g["lr"] for g in opt.param_groups] == pytest.approx([0.1, 0.1])


def test_lfm_js_term():
    pol = LFM(weight=2.0)
    same = pol.loss(_out(BATCH["fused"], BATCH["audio"], BATCH["audio"]), Y, {}, 0)
    assert same.item() == pytest.approx(0.0, abs=1e-7)
    out = SimpleNamespace(audio=torch.tensor([[100.0, 0.0]]), visual=torch.tensor([[0.0, 100.0]]))
    assert pol.loss(out, Y[:1], {}, 0).item() == pytest.approx(2.0 * math.log(2), rel=1e-5)


def test_pareto_direction_never_increases_either_loss():
    g = torch.Generator().manual_seed(0)
    for _ in range(200):
        g1, g2 = torch.randn(20, generator=g), torch.randn(20, generator=g)
        d, w = pareto_combine(g1, g2)
        assert 0.0 <= w <= 1.0
        assert float(d @ g1) >= -1e-5 and float(d @ g2) >= -1e-5
        if float(g1 @ g2) >= 0:
            torch.testing.assert_close(d, g1 + g2)


def test_mmpareto_backward_sets_encoder_gradients():
    torch.manual_seed(0)
    model = build(**TINY)
    out = model(torch.randn(4, 1, 6, 6), torch.randn(4, 1, 3, 6, 6))
    y = torch.tensor([0, 1, 2, 0])
    ce = torch.nn.functional.cross_entropy
    losses = {"fused": ce(out.fused, y), "audio": ce(out.audio, y), "visual": ce(out.visual, y)}
    assert MMPareto().backward(model, losses, sum(losses.values()))
    assert all(p.grad is not None for p in model.parameters() if p.requires_grad)


def test_compose_and_build():
    c = build_policies("ogm_ge", iemf=True)
    assert c.name == "ogm_ge+iemf"
    with pytest.raises(ValueError, match="at most one"):
        Compose([MMPareto(), MMPareto()])
    with pytest.raises(ValueError, match="unknown method"):
        build_policies("ogmge")
    state = c.state_dict()
    c2 = build_policies("ogm_ge", iemf=True)
    c2.load_state_dict(state)
