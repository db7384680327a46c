"""Issue "No lost runs, no silent wrong results": one test per case that failed on the landed main.

Each test names its case (1-11 of the issue) and checks the behaviour that a careful user, or an adversary,
should get: a refused or repaired action and a one-line error, never lost data or a silently wrong number.
"""

import json
import os
import shutil

import numpy as np
import pytest
import soundfile as sf
import torch
import yaml

import neurons
from snn_msi.cli import main
from snn_msi.data import KineticsSounds
from snn_msi.data.h5 import H5Dataset
from snn_msi.training import Trainer, demo_config, load_checkpoint, read_csv
from snn_msi.training.rundir import save_checkpoint

from .trees import make_h5, make_ks_tree

QUICK = [
    "--demo",
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--quiet",
    "--T",
    "2",
    "--set",
    "data.limit=32",
    "--set",
    "model.widths=[4]",
    "--set",
    "model.blocks=[1]",
]
TINY = {"widths": [4], "blocks": [1], "T": 2}


def _cfg(out, **kw):
    model = {**demo_config().model.to_dict(), **TINY}
    base = dict(epochs=2, batch_size=16, model=model, data={"dataset": "digits-av", "preset": "hard", "limit": 48})
    return demo_config(**{**base, **kw, "out": str(out)})


def _run(capsys, *argv) -> tuple[int, str, str]:
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def _one_line_error(err: str, *needles: str) -> None:
    lines = [line for line in err.strip().splitlines() if not line.startswith(("run folder:", "WARNING"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])


# 1 -------------------------------------------------------------------------------------------------------------
def test_1_prepare_keeps_clips_of_the_same_name_in_two_classes(tmp_path):
    av = pytest.importorskip("av", reason="PyAV not installed")
    from snn_msi.data.prepare import prepare

    from .test_prepare import _encode

    src = tmp_path / "videos"
    for label in ("cat", "dog"):
        for k in range(3):
            _encode(src / label / f"clip{k}.mp4")  # the same three names in both classes
    report = prepare(src, tmp_path / "ks", n_frames=4, workers=1, progress=False, test_fraction=0.34)
    assert report["done"] == 6 and len(report["renamed"]) == 6
    lines = [ln for s in ("train", "test") for ln in (tmp_path / "ks" / f"my_{s}.txt").read_text().split()]
    assert len(lines) == 6 and {ln.split(",")[2] for ln in lines} == {"0", "1"}
    assert (tmp_path / "ks" / "my_test.txt").read_text().strip()
    ks = KineticsSounds(tmp_path / "ks", "train", val_fraction=0.0, image_size=16, audio_seconds=0.5, frames_per_clip=4)
    assert sorted(set(ks.targets)) == [0, 1] and not ks.bad.count
    _ = av


# 2 -------------------------------------------------------------------------------------------------------------
def test_2_an_existing_run_is_never_replaced_silently(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert _run(capsys, "train", *QUICK, "--out", out)[0] == 0
    before = (tmp_path / "run" / "best.pt").read_bytes()
    code, _, err = _run(capsys, "train", *QUICK, "--out", out)
    assert code == 2
    _one_line_error(err, "already holds a finished run", "--resume", "--overwrite")
    assert (tmp_path / "run" / "best.pt").read_bytes() == before
    assert _run(capsys, "train", *QUICK, "--out", out, "--overwrite")[0] == 0
    # without --out every run gets its own folder
    code, _, err = _run(capsys, "train", *QUICK)
    assert code == 0 and "run folder: runs/digits-av/" in err
    shutil.rmtree(err.split("run folder: ")[1].split()[0])


# 3 -------------------------------------------------------------------------------------------------------------
def test_3_a_kill_between_last_and_best_checkpoints_cannot_mix_epochs(tmp_path, monkeypatch):
    ref = Trainer(_cfg(tmp_path / "ref"), progress=False).fit()
    cfg = _cfg(tmp_path / "run")
    import snn_msi.training.trainer as trainer_mod

    real = trainer_mod.save_checkpoint

    def killed_at_final_best(state, path):
        if path.name == "best.pt" and state["epoch"] == 2:
            raise KeyboardInterrupt  # the process dies after last.pt of the final epoch was written
        return real(state, path)

    monkeypatch.setattr(trainer_mod, "save_checkpoint", killed_at_final_best)
    with pytest.raises(KeyboardInterrupt):
        Trainer(cfg, progress=False).fit()
    monkeypatch.setattr(trainer_mod, "save_checkpoint", real)
    assert not (tmp_path / "run" / "results.json").exists()
    result = Trainer(cfg, progress=False, mode="resume").fit()
    assert result.test.acc == ref.test.acc and result.best_epoch == ref.best_epoch
    assert [r["epoch"] for r in read_csv(tmp_path / "run" / "metrics.csv")] == [1, 2]  # every row, once


# 4 -------------------------------------------------------------------------------------------------------------
def test_4_cached_results_require_the_same_config(tmp_path):
    from snn_msi.reports.runs import results, run_config

    cfg = _cfg(tmp_path / "run", epochs=1)
    assert run_config(cfg.to_dict()).status == "trained"
    first = results(cfg.out)
    assert run_config(cfg.to_dict()).status == "reused"  # the same config: read back
    assert results(cfg.out).best_val_acc == first.best_val_acc
    with pytest.raises(ValueError, match="another config.*epochs: 1 -> 2"):
        run_config(cfg.replace(epochs=2).to_dict())
    assert run_config(cfg.replace(epochs=2).to_dict(), overwrite=True).status == "trained"
    assert results(cfg.out).epochs == 2


# 5 -------------------------------------------------------------------------------------------------------------
def test_5_nan_audio_is_a_bad_clip(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    wav = root / "train" / "audio" / "drumming" / "dru_train_0.wav"
    data = np.full(11025, 0.1, np.float32)
    data[100] = np.nan
    sf.write(wav, data, 22050, subtype="FLOAT")
    ds = KineticsSounds(root, "train", val_fraction=0.0, image_size=16, audio_seconds=0.5)
    assert ds.bad.problems["non-finite samples in wav"] == ["dru_train_0"]


@pytest.mark.parametrize("neuron", ["relu", "lif", "spikingjelly.lif"])
def test_5_a_diverged_run_stops_naming_its_clips_and_never_saves_nan_weights(neuron, tmp_path, capsys):
    if neuron.startswith("spikingjelly"):
        pytest.importorskip("spikingjelly")
    out = tmp_path / "run"
    code, _, err = _run(
        capsys, "train", *QUICK, "--neuron", neuron, "--lr", "1e30", "--set", "data.limit=64", "--out", str(out)
    )
    assert code == 1 and "stopped:" in err and "the batch's clips: train-" in err
    for f in ("best.pt", "last.pt"):
        if (out / f).is_file():
            weights = load_checkpoint(out / f)["model"].values()
            assert all(torch.isfinite(v).all() for v in weights if v.is_floating_point())


def test_5_skip_mode_counts_non_finite_batches_and_goes_on(tmp_path, capsys, monkeypatch):
    import snn_msi.training.trainer as trainer_mod

    real, calls = trainer_mod.av_losses, []

    def nan_first(out, y, cfg, unimodal):
        losses = real(out, y, cfg, unimodal)
        calls.append(1)
        return {k: v * float("nan") for k, v in losses.items()} if len(calls) == 1 else losses

    monkeypatch.setattr(trainer_mod, "av_losses", nan_first)
    code, _, err = _run(capsys, "train", *QUICK, "--out", str(tmp_path / "s"), "--set", "on_nonfinite=skip")
    assert code == 0, err
    assert read_csv(tmp_path / "s" / "metrics.csv")[0]["nonfinite_skipped"] == 1
    calls.clear()
    code, _, err = _run(capsys, "train", *QUICK, "--out", str(tmp_path / "t"))
    assert code == 1 and "non-finite loss (nan) at epoch 1, step 0" in err


# 6 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "args, needle",
    [
        (["--T", "0"], "model.T must be >= 1, got 0"),
        (["--epochs", "0"], "epochs must be >= 1, got 0"),
        (["--set", "lr=-1"], "lr must be > 0"),
        (["--set", "model.T=four"], "model.T must be an integer, got 'four'"),
        (["--set", "modle.T=4"], "no key 'modle'"),
        (["--neuron", "if", "--neuron-arg", "tau=3"], "neuron 'if' does not take argument(s) tau"),
        (["--fusion", "concat", "--fusion-arg", "exponent=3"], "fusion 'concat' does not take argument(s) exponent"),
        (["--fusion", "msi", "--fusion-arg", "pool=5"], "pool must divide hidden=4, got 5"),
        (["--fusion", "bn_product", "--fusion-arg", "hidden=0"], "hidden must be >= 1, got 0"),
        (["--seed", "99999999999999999999"], "seed must be <= 4294967295, got 99999999999999999999"),
        (["--fusion-arg", "dim=3"], "model.fusion_args: dim come from the model"),
        (["--method", "normal", "--alpha", "0.5"], "--alpha: the method (normal) has no option 'alpha'"),
        (["--method", "ogm_ge", "--method-arg", "zero=1"], "--method-arg zero: the method (ogm_ge) has no option"),
        (["--method", "agm", "--method-arg", "zero_pass_mode=foo"], "zero_pass_mode must be one of 'eval', 'train'"),
        (["--method", "ogm_ge", "--method-arg", "agm.alpha=1"], "--method-arg agm.alpha: 'agm' is not a method of"),
        (["--method", "ogm_ge", "--iemf", "--method-arg", "noise=false"], "say which: ogm_ge.noise or iemf.noise"),
    ],
)
def test_6_arguments_are_never_ignored_or_misread(args, needle, tmp_path, capsys):
    code, _, err = _run(capsys, "train", *QUICK, *args, "--out", str(tmp_path / "r"))
    assert code == 2
    _one_line_error(err, needle)


def _wrong_kinds():
    """(option, registered name, argument, a value of another kind) for every plain-typed argument of every
    registered neuron and fusion (``neurons.registry.plain_types``), but a fusion's arguments the model gives."""
    from neurons.registry import plain_types
    from snn_msi.models.avnet import FUSION_FROM_MODEL
    from snn_msi.models.fusion import FUSIONS

    for option, registry in (("neuron", neurons.NEURONS), ("fusion", FUSIONS)):
        for name in registry.names():
            for key, (allowed, _) in plain_types(registry.get(name).factory).items():
                if key in registry.arguments(name) and not (option == "fusion" and key in FUSION_FROM_MODEL):
                    yield option, name, key, "abc" if str not in allowed else "1.5"


def test_6_the_type_check_covers_the_registries_and_keeps_the_python_api():
    """The cases above are read from the annotations: they must cover the arguments users set (a check that found
    no annotation would test nothing); and what the Python API took before still builds: numpy and tensor numbers,
    an int for a float, a surrogate object, None where the default is None, a subclass's own unannotated argument."""
    cases = {(o, n, k) for o, n, k, _ in _wrong_kinds()}
    for case in [("neuron", "lif", "tau"), ("neuron", "lif", "surrogate"), ("neuron", "if", "detach_reset")]:
        assert case in cases
    assert {("fusion", "msi", k) for k in ("exponent", "hidden", "learn_exponent")} <= cases
    surrogate = neurons.surrogate.SURROGATES.create("sigmoid")
    for ok in ({"tau": np.float32(3.0)}, {"tau": torch.tensor(3.0)}, {"tau": 3}, {"surrogate": surrogate}):
        neurons.create("lif", **ok)

    class OwnDefault(neurons.LIF):  # redeclares v_threshold without an annotation, None meaning its own default
        def __init__(self, v_threshold=None, **kw):
            super().__init__(v_threshold=0.7 if v_threshold is None else v_threshold, **kw)

    registry = neurons.registry.Registry("neuron")
    registry.register("own", OwnDefault)
    assert registry.create("own", v_threshold=None).v_threshold == 0.7


@pytest.mark.parametrize(("option", "name", "key", "value"), list(_wrong_kinds()))
def test_6_every_registered_argument_refuses_a_value_of_another_kind(option, name, key, value, tmp_path, capsys):
    """``--neuron-arg tau=abc``, ``--fusion-arg learn_exponent=abc``: one line naming the argument (they were a
    traceback, or accepted and saved), for every argument of every registered neuron and fusion."""
    args = [f"--{option}", name, f"--{option}-arg", f"{key}={value}"]
    code, _, err = _run(capsys, "train", *QUICK, *args, "--out", str(tmp_path / "r"))
    assert code == 2, err
    _one_line_error(err, f"{option} '{name}': {key} must be")


def test_6_yaml_booleans_are_strict_and_old_configs_convert(tmp_path, capsys):
    cfg = _cfg(tmp_path / "r", epochs=1).to_dict()
    del cfg["policies"]
    path = tmp_path / "c.yaml"
    path.write_text(yaml.safe_dump({**cfg, "iemf": "no"}))
    code, _, err = _run(capsys, "train", "--config", str(path))
    assert code == 2
    _one_line_error(err, "iemf must be true or false, got 'no'")
    path.write_text(yaml.safe_dump({**cfg, "iemf": True, "method": "ogm_ge", "ogm_alpha": 0.5}))
    from snn_msi.training import TrainConfig

    assert TrainConfig.load(path).policies[0] == {"name": "ogm_ge", "alpha": 0.5, "start": 0, "end": None}


def test_6_resume_without_last_pt_refuses_to_overwrite_a_finished_run(tmp_path, capsys):
    """A finished run whose last.pt is gone: ``--resume`` used to train afresh over its best.pt and results.json;
    it is refused in one line and the files stay as they were (``--overwrite`` trains again)."""
    out = tmp_path / "run"
    assert _run(capsys, "train", *QUICK, "--out", str(out), "--set", "data.limit=16")[0] == 0
    (out / "last.pt").unlink()
    kept = {n: (out / n).read_bytes() for n in ("best.pt", "results.json")}
    code, _, err = _run(capsys, "train", "--resume", str(out), "--quiet")
    assert code == 2
    _one_line_error(err, "holds best.pt and results.json but no last.pt")
    assert {n: (out / n).read_bytes() for n in kept} == kept and not (out / "last.pt").exists()
    first = tmp_path / "first" / "last.pt"  # a job script's first attempt names the last.pt it will write
    assert _run(capsys, "train", *QUICK, "--resume", str(first))[0] == 0 and first.is_file()
    (tmp_path / "text.pt").write_text("not a checkpoint")  # a file beside no run: named, nothing trained
    code, _, err = _run(capsys, "train", *QUICK, "--resume", str(tmp_path / "text.pt"))
    assert code == 2
    _one_line_error(err, f"--resume {tmp_path / 'text.pt'}: not a run's checkpoint")


def test_6_a_resumed_run_keeps_its_config_and_a_failed_resume_leaves_it(tmp_path, capsys):
    out = str(tmp_path / "run")
    assert _run(capsys, "train", *QUICK, "--epochs", "2", "--out", out, "--set", "data.limit=16")[0] == 0
    saved = (tmp_path / "run" / "config.yaml").read_text()
    code, _, err = _run(capsys, "train", "--resume", out, "--lr", "0.5")
    assert code == 2
    _one_line_error(err, "cannot resume", "lr: 0.05 -> 0.5")
    assert (tmp_path / "run" / "config.yaml").read_text() == saved
    code, out_text, _ = _run(capsys, "train", "--resume", out, "--quiet")  # a finished run: its results
    assert code == 0 and json.loads(out_text)["epochs"] == 2


def test_6_energy_rejects_negative_costs(capsys):
    with pytest.raises(SystemExit) as e:
        main(["energy", "x.pt", "--e-mac", "-1"])
    assert e.value.code == 2 and "--e-mac" in capsys.readouterr().err


# 7 -------------------------------------------------------------------------------------------------------------
def test_7_list_files_with_bom_crlf_duplicates_and_overlap(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    train = (root / "my_train.txt").read_text().splitlines()
    test = (root / "my_test.txt").read_text().splitlines()
    # a UTF-8 BOM, CRLF line ends, one clip listed twice and one train clip also listed in the test list
    (root / "my_train.txt").write_bytes(("\ufeff" + "\r\n".join(train + [train[0]]) + "\r\n").encode("utf-8"))
    (root / "my_test.txt").write_text("\n".join(test + [train[1]]) + "\n")
    reports = tmp_path / "rep"
    tr = KineticsSounds(root, "train", val_fraction=0.25, image_size=16, audio_seconds=0.5, report_dir=reports)
    va = KineticsSounds(root, "val", val_fraction=0.25, image_size=16, audio_seconds=0.5, report_dir=reports)
    first = train[0].split(",")[0]
    assert "missing wav" not in tr.bad.problems or first not in tr.bad.problems["missing wav"]
    assert tr.bad.problems["listed twice (first entry kept)"] == [first]
    assert tr.bad.problems["also in the test list"] == [train[1].split(",")[0]]
    assert not {r.clip_id for r in tr.records} & {r.clip_id for r in va.records}
    assert first in {r.clip_id for r in tr.records} | {r.clip_id for r in va.records}
    assert {p.name for p in reports.iterdir()} == {
        "bad_clips_kinetics_sounds_train.json",
        "bad_clips_kinetics_sounds_val.json",
    }


def test_7_h5_frame_size_and_truncated_files(tmp_path):
    path = make_h5(tmp_path)
    ds = H5Dataset(path, "test", train=False, image_size=16)
    import h5py

    with h5py.File(path) as f:
        assert f["test"]["frames"].shape[-2:] == (24, 24)  # both sides resized, not only the width
    assert len(ds) > 0
    cut = tmp_path / "cut.h5"
    cut.write_bytes(path.read_bytes()[: path.stat().st_size // 3])
    with pytest.raises(ValueError, match="cut.h5 is unreadable or not an snn-msi cache"):
        H5Dataset(cut, "train")


# 8 -------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    "content, needle",
    [
        ("epochs: ten\n", "epochs must be an integer, got 'ten'"),
        ("- 1\n- 2\n", "must hold a mapping of keys to values, not a list"),
        ("", "is empty"),
        ("model: {T: [1}\n", "is not valid YAML"),
    ],
)
def test_8_bad_yaml_is_one_line(content, needle, tmp_path, capsys):
    path = tmp_path / "c.yaml"
    path.write_text(content)
    code, _, err = _run(capsys, "train", "--config", str(path))
    assert code == 2
    _one_line_error(err, needle)


def test_8_devices_folders_and_checkpoints_are_one_line(tmp_path, capsys):
    if not torch.cuda.is_available():
        code, _, err = _run(capsys, "train", *QUICK, "--device", "cuda", "--out", str(tmp_path / "a"))
        assert code == 2
        _one_line_error(err, "CUDA is not available")
    (tmp_path / "file").write_text("x")
    code, _, err = _run(capsys, "train", *QUICK, "--out", str(tmp_path / "file"))
    assert code == 2
    _one_line_error(err, "is a file")
    if os.geteuid() != 0:  # root writes anywhere
        ro = tmp_path / "ro"
        ro.mkdir(mode=0o500)
        code, _, err = _run(capsys, "train", *QUICK, "--out", str(ro / "run"))
        assert code == 2
        _one_line_error(err, "not writable")
    save_checkpoint({"version": 2, "model": {}}, tmp_path / "noconfig.pt")
    code, _, err = _run(capsys, "evaluate", str(tmp_path / "noconfig.pt"))
    assert code == 2
    _one_line_error(err, "no model weights and config")
    bad_parts = (({"model": "hello"}, "model is str"), ({"model": {}, "data": 5}, "data is int"))
    for bad, needle in (*bad_parts, ({"model": {}, "config": None}, "config is NoneType")):
        save_checkpoint({"version": 2, "config": {}, **bad}, tmp_path / "bad.pt")
        for command in ("evaluate", "energy", "export-nir"):
            extra = [str(tmp_path / "o.nir")] if command == "export-nir" else []
            code, _, err = _run(capsys, command, str(tmp_path / "bad.pt"), *extra)
            assert code == 2, (command, err)
            _one_line_error(err, "not an snn-msi checkpoint", needle)
    for device in ("nosuch", "cuda:-1"):
        code, _, err = _run(capsys, "evaluate", str(tmp_path / "noconfig.pt"), "--device", device)
        assert code == 2
        _one_line_error(err, f"device must be auto, cpu, cuda or cuda:N, got '{device}'")
    code, _, err = _run(capsys, "train")
    assert code == 2
    _one_line_error(err, "say what to train on")


def test_8_a_foreign_pickle_is_one_line_without_pytorchs_warning(tmp_path):
    """A plain pickle (protocol 4) given as a checkpoint: PyTorch's two-line UserWarning came before our error."""
    import pickle
    import subprocess
    import sys

    (tmp_path / "p.pt").write_bytes(pickle.dumps({"a": 1}, protocol=4))
    argv = [sys.executable, "-m", "snn_msi.cli", "evaluate", str(tmp_path / "p.pt")]
    done = subprocess.run(argv, capture_output=True, text=True, timeout=120)
    assert done.returncode == 2
    _one_line_error(done.stderr, "is corrupt or not an snn-msi checkpoint")


def test_8_evaluating_a_checkpoint_made_on_cuda_works_here(tmp_path, capsys):
    out = tmp_path / "run"
    assert _run(capsys, "train", *QUICK, "--out", str(out))[0] == 0
    state = load_checkpoint(out / "best.pt")
    state["config"]["device"] = "cuda"
    save_checkpoint(state, out / "best.pt")
    code, text, _ = _run(capsys, "evaluate", str(out / "best.pt"), "--device", "cpu")
    assert code == 0 and json.loads(text)["test_n"] == 32


# 9 -------------------------------------------------------------------------------------------------------------
def test_9_results_do_not_depend_on_the_worker_count(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    weights = []
    for workers in (0, 2):
        data = {
            "dataset": "kinetics-sounds",
            "root": str(root),
            "image_size": 16,
            "num_workers": workers,
            "preset": "hard",
        }
        cfg = demo_config(
            epochs=1,
            batch_size=4,
            out=str(tmp_path / f"w{workers}"),
            policies=[{"name": "iemf"}],
            data=data,
            model={**TINY, "stem": "small", "num_classes": None, "audio_channels": None, "visual_channels": None},
        )
        result = Trainer(cfg, progress=False).fit()
        weights.append((load_checkpoint(tmp_path / f"w{workers}" / "last.pt")["model"], result))
    (w0, r0), (w2, r2) = weights
    assert r0.test.acc == r2.test.acc and r0.policy_mean("iemf", "coeff") == r2.policy_mean("iemf", "coeff")
    for k in w0:
        assert torch.equal(w0[k], w2[k]), k


# 10: test_trainer.test_two_process_gloo_ranks_agree (33 test samples on 2 ranks count 33 times, not 34)


# 11 ------------------------------------------------------------------------------------------------------------
@pytest.mark.parametrize("name", list(neurons.available()))
def test_11_every_neuron_rejects_nan_inf_and_empty_sequences(name):
    n = neurons.create(name, step_mode="m")
    if neurons.info(name).kind == "analogue":
        pytest.skip("the ReLU control passes values through")
    for bad, what in ((float("nan"), "NaN"), (float("-inf"), "infinite"), (float("inf"), "infinite")):
        x = torch.zeros(3, 2, 4)
        x[1, 0, 2] = bad
        with pytest.raises(neurons.NonFiniteInputError, match=what):
            n(x)
        n.reset()
    with pytest.raises(ValueError, match="T >= 1"):
        n(torch.zeros(0, 2, 4))


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("name", ["if", "lif", "plif"])
def test_11_half_precision_spikes_agree_between_the_module_loop_and_the_fused_path(name, dtype):
    torch.manual_seed(0)
    x = (torch.randn(8, 4, 500) * 0.7 + 0.4).to(dtype)
    spikes = [neurons.create(name, v_threshold=0.5, step_mode="m", backend=b)(x) for b in ("torch", "cpu")]
    assert torch.equal(spikes[0], spikes[1])


def test_6_fusion_options_reach_the_layer_and_another_fusion_drops_the_recipes(tmp_path, capsys):
    code, _, err = _run(
        capsys,
        "train",
        *QUICK,
        "--fusion",
        "msi",
        "--fusion-arg",
        "exponent=1.5",
        "--fusion-arg",
        "bias=true",
        "--out",
        str(tmp_path / "r"),
    )
    assert code == 0, err
    saved = yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["model"]
    assert saved["fusion"] == "msi" and saved["fusion_args"] == {"exponent": 1.5, "bias": True}
    from snn_msi.training import load_model

    model, _ = load_model(tmp_path / "r" / "best.pt")
    assert model.fusion.exponent == 1.5 and model.fusion.bias is not None
    code, _, err = _run(
        capsys,
        "train",
        *QUICK,
        "--config",
        str(tmp_path / "r" / "config.yaml"),
        "--fusion",
        "concat",
        "--out",
        str(tmp_path / "c"),
    )
    assert code == 0, err
    assert yaml.safe_load((tmp_path / "c" / "config.yaml").read_text())["model"]["fusion_args"] == {}
