import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from snn_msi.training import Trainer, demo_config, load_checkpoint, policies_for, read_csv
from snn_msi.training.rundir import save_checkpoint

TINY_MODEL = dict(num_classes=10, widths=[4], blocks=[1], stem="small", audio_channels=1, visual_channels=1, T=2)


def _cfg(out, **kw):
    base = dict(
        epochs=2,
        batch_size=16,
        data={"dataset": "digits-av", "preset": "hard", "limit": 48},
        model={**demo_config().model.to_dict(), **TINY_MODEL},
    )
    return demo_config(**{**base, **kw, "out": str(out)})


def _datasets(cfg):
    from torch.utils.data import Subset

    from snn_msi.data import build_datasets

    train, val, test = build_datasets(cfg.data, cfg.seed)
    return train, Subset(val, range(32)), Subset(test, range(32))


def test_resume_is_bit_identical(tmp_path):
    policies = policies_for("ogm_ge", iemf=True)
    cfg_a = _cfg(tmp_path / "a", policies=policies)
    Trainer(cfg_a, datasets=_datasets(cfg_a), progress=False).fit()
    cfg_b = _cfg(tmp_path / "b", policies=policies)
    Trainer(cfg_b, datasets=_datasets(cfg_b), progress=False, stop_after=1).fit()  # "killed" after epoch 1
    assert load_checkpoint(tmp_path / "b" / "last.pt")["epoch"] == 1
    Trainer(cfg_b, datasets=_datasets(cfg_b), progress=False, mode="resume").fit()
    a = load_checkpoint(tmp_path / "a" / "last.pt")
    b = load_checkpoint(tmp_path / "b" / "last.pt")
    assert a["epoch"] == b["epoch"] == 2
    for k, v in a["model"].items():
        assert torch.equal(v, b["model"][k]), k
    steps_a, steps_b = read_csv(tmp_path / "a" / "steps.csv"), read_csv(tmp_path / "b" / "steps.csv")
    assert [s["iemf/coeff"] for s in steps_a] == [s["iemf/coeff"] for s in steps_b]
    assert [r["epoch"] for r in read_csv(tmp_path / "b" / "metrics.csv")] == [1, 2]
    for f in ("metrics.csv", "steps.csv", "curves.png", "config.yaml", "results.json", "best.pt"):
        assert (tmp_path / "b" / f).is_file(), f
    assert "steps" not in b and "history" not in b  # logs live in their files, not in checkpoints


def test_corrupt_and_mismatched_checkpoints_give_clear_errors(tmp_path):
    cfg = _cfg(tmp_path / "run", epochs=1)
    Trainer(cfg, datasets=_datasets(cfg), progress=False).fit()
    bad = tmp_path / "run" / "last.pt"
    bad.write_bytes(b"not a checkpoint")
    (tmp_path / "run" / "results.json").unlink()
    with pytest.raises(ValueError, match="last.pt.*corrupt"):
        load_checkpoint(bad)
    with pytest.raises(ValueError, match="corrupt"):
        Trainer(cfg, datasets=_datasets(cfg), progress=False, mode="resume").fit()
    other = _cfg(tmp_path, model={**TINY_MODEL, "widths": [6]}).to_dict()
    save_checkpoint({"version": 2, "model": {}, "config": other, "optimizer": {}}, tmp_path / "run" / "last.pt")
    with pytest.raises(ValueError, match="changed config.*model.widths"):
        Trainer(cfg, datasets=_datasets(cfg), progress=False, mode="resume").fit()
    with pytest.raises(FileNotFoundError, match="does not exist"):
        load_checkpoint(tmp_path / "nope.pt")


def test_checkpoint_write_is_atomic(tmp_path, monkeypatch):
    path = tmp_path / "c.pt"
    save_checkpoint({"version": 2, "model": {"w": torch.ones(2)}, "config": {}}, path)

    def boom(obj, f, *a, **k):
        open(f, "wb").write(b"half")
        raise RuntimeError("[enforce fail at inline_container.cc] . unexpected pos 64 vs 32")

    monkeypatch.setattr(torch, "save", boom)
    with pytest.raises(OSError, match="cannot write checkpoint .*c.pt"):
        save_checkpoint({"version": 2, "model": {"w": torch.zeros(2)}, "config": {}}, path)
    assert torch.equal(load_checkpoint(path)["model"]["w"], torch.ones(2))  # the old file is intact
    assert [p.name for p in tmp_path.iterdir()] == ["c.pt"]  # no temporary file left behind


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _ddp_worker(rank, world, port, out):
    os.environ.update(
        MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank), WORLD_SIZE=str(world), LOCAL_RANK=str(rank)
    )
    torch.set_num_threads(1)
    from torch.utils.data import Subset

    from snn_msi.data import build_datasets

    cfg = _cfg(os.path.join(out, "run"), epochs=1, policies=policies_for(iemf=True), device="cpu")
    train, val, test = build_datasets(cfg.data, cfg.seed)
    trainer = Trainer(cfg, datasets=(train, Subset(val, range(31)), Subset(test, range(33))), progress=False)
    result = trainer.fit()
    coeff = trainer.policies.policies[0].log.coeff
    state = {"coeff": coeff, "steps": trainer.step, "weights": trainer.model.state_dict(), "result": result.to_dict()}
    # on_epoch given on rank 0 only (as a sweep would): its answer stops both ranks after the first of 2 epochs
    told = cfg.replace(out=os.path.join(out, "told"), epochs=2)
    stop = (lambda row: row["epoch"] == 1) if rank == 0 else None
    state["stopped"] = Trainer(told, datasets=(train, val, test), progress=False, on_epoch=stop).fit() is None
    torch.save(state, os.path.join(out, f"rank{rank}.pt"))
    torch.distributed.barrier()
    torch.distributed.destroy_process_group()


def test_two_process_gloo_ranks_agree(tmp_path):
    ctx = mp.get_context("spawn")
    out = tmp_path / "ddp"
    out.mkdir()
    port = _free_port()
    procs = [ctx.Process(target=_ddp_worker, args=(r, 2, port, str(out))) for r in range(2)]
    for p in procs:
        p.start()
    for p in procs:
        p.join(timeout=600)
        assert p.exitcode == 0
    r0, r1 = (torch.load(out / f"rank{r}.pt", weights_only=True) for r in range(2))
    assert r0["steps"] == r1["steps"] == 2  # 48 samples / 2 ranks / batch 16 -> 2 steps each
    assert r0["coeff"] == r1["coeff"]  # the same coefficient on both ranks (scores all-reduced)
    for k in r0["weights"]:
        assert torch.equal(r0["weights"][k], r1["weights"][k]), k
    # evaluation shards without padding: every one of the 33 test samples counts once
    assert r0["result"]["test_n"] == r1["result"]["test_n"] == 33
    assert r0["result"]["test_acc"] == r1["result"]["test_acc"]
    assert r0["stopped"] and r1["stopped"]  # rank 0's on_epoch stopped both
    assert load_checkpoint(out / "told" / "last.pt")["epoch"] == 1


@pytest.mark.slow
def test_demo_config_learns_digits_av(tmp_path):
    """The demo network on the hard preset beats chance (10 %) by far within 5 epochs."""
    cfg = demo_config(epochs=5, out=str(tmp_path / "demo"))
    result = Trainer(cfg, progress=False).fit()
    assert result.test.acc > 0.5 and result.test.acc_visual > 0.4


def test_run_result_reads_and_writes_results_json(tmp_path):
    """results.json stays the flat object it was: a RunResult writes it and reads it back, and a file written
    before the record (no F1, mAP or Shapley numbers) still reads."""
    import json
    import math

    from snn_msi.training import RunDir, RunResult, SplitMetrics

    test = SplitMetrics(0.9, 0.8, 0.5, 0.6, 0.4, 0.45, 100, 0.7, 0.6, 0.5, 0.75, 0.1, 0.2)
    result = RunResult(0.85, 3, 4, test, {"iemf": {"coeff": 1.25, "active": 1.0}})
    (tmp_path / "run").mkdir()
    rd = RunDir(tmp_path / "run")
    rd.mark_complete(result)
    saved = json.loads(rd.results_file.read_text())
    assert saved["test_acc_audio"] == 0.5 and saved["mean iemf/coeff"] == 1.25 and saved["best_epoch"] == 3
    back = rd.results()
    assert back == result and back.test.acc_audio == 0.5 and back.policy_mean("iemf", "coeff") == 1.25
    assert math.isnan(back.policy_mean("ogm_ge", "coeff_audio"))  # a method the run did not use
    with pytest.raises(KeyError, match="logs no 'coef'"):
        back.policy_mean("iemf", "coef")
    old = {
        "best_val_acc": 0.5,
        "best_epoch": 2,
        "epochs": 2,
        "test_loss": 1.0,
        "test_acc": 0.5,
        "test_acc_audio": 0.4,
        "test_acc_visual": 0.3,
        "test_acc_fused_audio": 0.2,
        "test_acc_fused_visual": 0.1,
        "test_n": 16,
        "mean iemf/coeff": 1.1,
    }
    rd.results_file.write_text(json.dumps(old))
    r = rd.results()
    assert r.test.n == 16 and math.isnan(r.test.f1) and r.policy_mean("iemf", "coeff") == 1.1
    assert r.to_dict()["test_acc"] == 0.5
    rd.results_file.write_text(json.dumps({"best_val_acc": 0.5}))
    with pytest.raises(ValueError, match="is not the results of a run") as err:
        rd.results()
    assert "\n" not in str(err.value)
