"""The demo and the studies say when each run finishes (one line per run, a bar over the runs)."""

from types import SimpleNamespace

from snn_msi.reports import runs


def _fake_result(out: str):
    k = int(out[-1])
    test = SimpleNamespace(acc=0.5 + k / 10, acc_audio=0.3, acc_visual=0.4)
    return SimpleNamespace(test=test, best_val_acc=0.6, best_epoch=k + 1)


def test_one_line_per_finished_run(capsys, monkeypatch):
    monkeypatch.setattr(runs, "run_config", lambda cfg, overwrite: runs.RunOutcome(cfg["out"], "trained"))
    monkeypatch.setattr(runs, "results", _fake_result)
    configs = [SimpleNamespace(out=f"runs/x/r{k}", to_dict=lambda k=k: {"out": f"runs/x/r{k}"}) for k in range(3)]
    results = runs.run_many(configs, runs.RunOptions(seeds=[0], jobs=1))
    assert [r.best_epoch for r in results] == [1, 2, 3]  # in the order given
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert [ln.split(":")[0] for ln in lines] == ["[1/3] runs/x/r0", "[2/3] runs/x/r1", "[3/3] runs/x/r2"]
    assert "test 0.600 (audio 0.30, visual 0.40), best val 0.600 at epoch 2" in lines[1]
    assert lines[0].endswith("(trained)")
    assert "runs" in err and "3/3" in err  # the bar over the runs
