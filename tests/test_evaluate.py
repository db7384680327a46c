"""``snn-msi evaluate``: per-class table, confusion matrix and heads on disk, from any folder; metrics from
scikit-learn."""

import csv
import json
import shutil
from types import SimpleNamespace

import numpy as np
import pytest
import torch
from sklearn.metrics import average_precision_score, confusion_matrix, f1_score, precision_recall_fscore_support

from snn_msi.cli import main
from snn_msi.training import TrainConfig
from snn_msi.training.metrics import MetricsCollector, confusion, per_class

from .trees import make_learnable_folder_tree


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    """A 1-epoch run of the small recipe on a 3-class folder, trained with a RELATIVE --data-root."""
    base = tmp_path_factory.mktemp("evaluate")
    make_learnable_folder_tree(base / "tree", per_class=4)
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(base)
        quick = ["--epochs", "1", "--quiet", "--workers", "0", "--set", "data.image_size=32", "--out", "run"]
        rc = main(["train", "--model", "small", "--dataset", "folder", "--data-root", "tree", *quick])
    assert rc == 0
    return base


def _read(path):
    with open(path, newline="") as fh:
        return list(csv.reader(fh))


def test_data_root_is_stored_absolute(trained):
    assert TrainConfig.load(trained / "run" / "config.yaml").data.root == str((trained / "tree").resolve())


def test_evaluate_out_from_another_folder(trained, tmp_path, monkeypatch, capsys):
    capsys.readouterr()
    monkeypatch.chdir(tmp_path)
    assert main(["evaluate", str(trained / "run" / "best.pt"), "--out", "ev", "--device", "cpu"]) == 0
    captured = capsys.readouterr()
    metrics = json.loads(captured.out)
    assert metrics["test_n"] == 3 and "fused prediction per class" in captured.err
    out = tmp_path / "ev"
    rows = _read(out / "per_class.csv")
    assert rows[0][:5] == ["class", "support", "precision", "recall", "f1"] and "visual_f1" in rows[0]
    assert [r[0] for r in rows[1:]] == ["blue", "green", "red"] and sum(int(r[1]) for r in rows[1:]) == 3
    matrix = _read(out / "confusion_matrix.csv")
    assert matrix[0] == ["true \\ predicted", "blue", "green", "red"]
    counts = np.array([[int(x) for x in r[1:]] for r in matrix[1:]])
    assert counts.sum() == 3 and np.trace(counts) / 3 == pytest.approx(metrics["test_acc"])
    heads = {r[0]: r for r in _read(out / "heads.csv")[1:]}
    assert float(heads["audio head"][1]) == pytest.approx(metrics["test_acc_audio"])
    assert float(heads["visual head"][1]) == pytest.approx(metrics["test_acc_visual"])
    assert (out / "confusion_matrix.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert json.loads((out / "metrics.json").read_text())["classes"] == ["blue", "green", "red"]


def test_moved_data_is_one_line_naming_data_root(trained, tmp_path, monkeypatch, capsys):
    moved = tmp_path / "elsewhere"
    shutil.copytree(trained / "tree", moved)
    shutil.move(str(trained / "tree"), str(trained / "tree_away"))
    try:
        monkeypatch.chdir(tmp_path)
        capsys.readouterr()
        assert main(["evaluate", str(trained / "run" / "best.pt"), "--device", "cpu"]) == 2
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and "--data-root" in err[0] and "tree" in err[0]
        assert main(["evaluate", str(trained / "run" / "best.pt"), "--data-root", "elsewhere", "--device", "cpu"]) == 0
    finally:
        shutil.move(str(trained / "tree_away"), str(trained / "tree"))


def test_metrics_are_scikit_learns_on_a_hand_built_batch():
    """The collector's F1 / mAP and the per-class table equal scikit-learn called directly."""
    y = torch.tensor([0, 0, 1, 1, 2, 2, 2, 1])
    rows = [[3.0, 1, 0], [0.2, 2, 0], [0, 3, 1], [1, 0.5, 0], [0, 0, 2], [0, 2.5, 1], [1, 0, 4], [0, 1, 0.2]]
    logits = torch.tensor(rows)
    audio = torch.eye(3)[torch.tensor([0, 1, 1, 1, 2, 0, 2, 2])]
    visual = torch.eye(3)[torch.tensor([2, 2, 2, 2, 2, 2, 2, 2])]
    out = SimpleNamespace(fused=logits, audio=audio, visual=visual, fused_audio=logits, fused_visual=logits)
    col = MetricsCollector()
    col.add(torch.tensor(1.0), out, y)
    m = col.result()
    yn, pred = y.numpy(), logits.argmax(1).numpy()
    assert m.acc == pytest.approx((pred == yn).mean())
    assert m.f1 == pytest.approx(f1_score(yn, pred, average="macro"))
    assert m.f1_visual == pytest.approx(f1_score(yn, np.full(8, 2), average="macro", zero_division=0))
    probs = torch.softmax(logits, 1).numpy()
    assert m.map == pytest.approx(average_precision_score(np.eye(3)[yn], probs, average="macro"))
    table = per_class(yn, pred, 3)
    p, r, f, n = precision_recall_fscore_support(yn, pred, zero_division=0)
    assert np.allclose(table["precision"], p) and np.allclose(table["recall"], r) and np.allclose(table["f1"], f)
    assert table["support"].tolist() == [2, 3, 3] and (confusion(yn, pred, 3) == confusion_matrix(yn, pred)).all()
    assert col.predictions()["fused"].tolist() == pred.tolist()
