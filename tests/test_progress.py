"""The demo and the studies say when each run finishes (one line per run, a bar over the runs)."""

from types import SimpleNamespace

from snn_msi.reports.study import _map


def _fake_run(cfg: dict):
    test = SimpleNamespace(acc=0.5 + cfg["k"] / 10, acc_audio=0.3, acc_visual=0.4)
    return SimpleNamespace(test=test, best_val_acc=0.6, best_epoch=cfg["k"] + 1)


def test_one_line_per_finished_run(capsys):
    items = [{"out": f"runs/x/r{k}", "k": k} for k in range(3)]
    results = _map(_fake_run, items, jobs=1)
    assert [r.best_epoch for r in results] == [1, 2, 3]  # in the order given
    err = capsys.readouterr().err
    lines = [ln for ln in err.splitlines() if ln.startswith("[")]
    assert [ln.split(":")[0] for ln in lines] == ["[1/3] runs/x/r0", "[2/3] runs/x/r1", "[3/3] runs/x/r2"]
    assert "test 0.600 (audio 0.30, visual 0.40), best val 0.600 at epoch 2" in lines[1]
    assert "runs" in err and "3/3" in err  # the bar over the runs
