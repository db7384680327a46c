"""Every method's default options against the values its cited source uses (issue #24).

``OFFICIAL`` is the table a reader checks against the sources: per method, each option whose default comes from
the official code (or, where there is none, the named reference), with the file it was read from. A registered
method without a row fails, so a new method must state where its defaults come from. Window epochs are 0-based
``[start, end)`` here; the sources' 1-based or inclusive bounds are converted in the policies' docstrings.
"""

from __future__ import annotations

import dataclasses

import pytest

from snn_msi.training import METHODS

OFFICIAL: dict[str, tuple[str, dict]] = {
    "normal": ("plain training", {}),
    "iemf": (
        "Brain-Cog-Lab/BIM-ML, Audio Visual Classification/ (the ablation script: lambda outside the tanh)",
        {"lam": 1.0, "lambda_mode": "outside", "noise": True, "start": 0, "end": None},
    ),
    "constant": ("this toolkit's control: IEMF's noise with a fixed coefficient", {"coeff": 1.0, "noise": True}),
    "noise": ("this toolkit's control: the noise alone", {"noise": True}),
    "ogm_ge": (
        "GeWu-Lab/OGM-GE_CVPR2022 main.py: alpha 0.8 (CREMA-D, as every IEMF script), modulation_starts 0, "
        "modulation_ends 50 inclusive, conv weights",
        {"alpha": 0.8, "start": 0, "end": 51, "params": "conv", "noise": True},
    ),
    "mslr": (
        "the IEMF code's dynamic learning rates (AGM's CREMA-D factors 0.9 / 1.1), epochs 0-50 inclusive",
        {"base_audio": 0.9, "base_visual": 1.1, "history": 5, "start": 0, "end": 51},
    ),
    "lfm": ("njustkmg/NeurIPS24-LFM: JS term weight 1", {"weight": 1.0}),
    "mmpareto": ("GeWu-Lab/MMPareto_ICML2024: gamma 1.5", {"gamma": 1.5}),
    "agm": (
        "lihong2303/AGM_ICCV2023@5a65542 utils/config.py: alpha 1.0, modulation 0-20 (1-based), GradMod.forward "
        "runs the zero-input passes under self.eval(); every gradient clipped to norm 1 when a fusion-layer gradient "
        "leaves [-1, 1]",
        {"alpha": 1.0, "start": 0, "end": 20, "zero_pass_mode": "eval", "clip_threshold": 1.0, "clip_norm": 1.0},
    ),
    "pmr": (
        "fanyunfeng-bit/Modal-Imbalance-PMR@3615e48 argparse: alpha 1, momentum_coef 0.2, modulation 0-100",
        {"alpha": 1.0, "momentum": 0.2, "start": 0, "end": 101},
    ),
    "mmcosine": ("GeWu-Lab/MMCosine_ICASSP23@00ba0a9: scale 10", {"scale": 10.0}),
    "greedy": (
        "nyukat/greedy_multimodal_learning@cf28c4c: epsilon 0.01, curation_windowsize 5, starting_epoch 2 "
        "(1-based), MMTM ratio 4",
        {"epsilon": 0.01, "window": 5, "start": 1, "ratio": 4.0},
    ),
    "umt": ("BalanceBenchmark UMT_trainer: scaling 10", {"lam": 10.0}),
    "ume": ("Du et al. 2023 (no official code): no options", {}),
    "mla": (
        "Cecile-hi/Multimodal-Learning-with-Alternating-Unimodal-Adaptation@ab6c184: GSPlugin never matches "
        "the head's parameter name (no projection); entropy gating (--dynamic), av_alpha 0.5",
        {"projection": False, "gating": "entropy", "av_alpha": 0.5},
    ),
    "opm": (
        "GeWu-Lab/BML_TPAMI2024@4b3aa4f train_opm.sh: q_base 0.5, lam 0.5, p_exe 0.7, warm-up epoch <= 5, then to "
        "the end",
        {"q_base": 0.5, "lam": 0.5, "p_exe": 0.7, "start": 6, "end": None},
    ),
    "reconboost": (
        "huacong/ReconBoost@14ab57a: w1 5, w2 1, boost_rate 1, 4 boosting + 4 rectification epochs, Head hidden 256",
        {"w1": 5.0, "w2": 1.0, "boost_rate": 1.0, "epochs_per_stage": 4, "correct_epoch": 4, "hidden": 256},
    ),
    "gblend": ("Wang et al. 2020 (no official code); BalanceBenchmark super_epoch 10", {"super_epoch": 10}),
    "sample_valuation": (
        "GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation: valuation from epoch 4, resampled from 5",
        {"warmup": 5},
    ),
    "modality_valuation": (
        "GeWu-Lab/Valuate-and-Enhance-Multimodal-Cooperation: part_ratio 0.2, alpha 1, linear",
        {"warmup": 5, "part_ratio": 0.2, "alpha": 1.0, "mode": "linear"},
    ),
    "relearn": (
        "GeWu-Lab/Diagnosing_Relearning_ECCV2024: move_lambda 3, reinit_epoch 20, reinit_num 3",
        {"lam": 3.0, "reinit_epoch": 20, "reinit_num": 3},
    ),
    "cml": (
        "QingyangZhang/CML@9d2496e miwae/train.py: beta 10 / 100; BalanceBenchmark lam 0.1, on every epoch "
        "(modulation 0-80 of 30)",
        {"lam": 0.1, "start": 0, "end": None},
    ),
    "rate_reg": (
        "the activity regularisers of snnTorch / SpikingJelly: strength 1, target 0",
        {"strength": 1.0, "target": 0.0},
    ),
}


#: options that are this toolkit's, not a source's, and why (every other option is in OFFICIAL)
OURS: dict[str, dict[str, str]] = {
    "agm": {"report_eval_path": "a log switch (the evaluation-mode accuracy of the training batch)"},
    "umt": {
        "teacher": "a checkpoint of the user's (None: the teachers are trained in the run)",
        "teacher_epochs": "the official teachers are trained in separate runs; here as many epochs as the run",
    },
    "constant": {"start": "a control: the whole run, as IEMF", "end": "a control: the whole run, as IEMF"},
    "noise": {"start": "a control: the whole run, as IEMF", "end": "a control: the whole run, as IEMF"},
    "rate_reg": {"targets": "per-layer targets (none by default)", "side": "penalise both sides of the target"},
}


def _defaults(name: str) -> dict:
    config_class = METHODS.get(name).factory.config_class
    return {
        f.name: f.default if f.default is not dataclasses.MISSING else f.default_factory()
        for f in dataclasses.fields(config_class)
        if f.default is not dataclasses.MISSING or f.default_factory is not dataclasses.MISSING
    }


@pytest.mark.parametrize("name", METHODS.names())
def test_defaults_are_the_cited_sources_values(name):
    assert name in OFFICIAL, f"{name}: add its official defaults and their source to OFFICIAL"
    source, values = OFFICIAL[name]
    defaults = _defaults(name)
    unknown = set(values) - set(defaults)
    assert not unknown, f"{name}: {sorted(unknown)} are not options of the method"
    ours = set(OURS.get(name, {}))
    stale = ours - (set(defaults) - set(values))
    assert not stale, f"{name}: OURS names {sorted(stale)}, which are not options or are in OFFICIAL"
    unchecked = set(defaults) - set(values) - ours
    assert not unchecked, f"{name}: {sorted(unchecked)}: add their source's values to OFFICIAL, or to OURS with why"
    assert {k: defaults[k] for k in values} == values, f"{name}: defaults differ from {source}"
