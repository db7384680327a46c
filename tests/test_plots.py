"""Figures: the labels people read."""

import matplotlib.figure

from snn_msi.plots import training_curves


def test_training_curves_labels(tmp_path, monkeypatch):
    """The step panel names the column it draws (a loop variable once overwrote it: IEMF's panel read
    "(acc_visual)")."""
    figures = []
    save = matplotlib.figure.Figure.savefig
    monkeypatch.setattr(
        matplotlib.figure.Figure, "savefig", lambda fig, *a, **k: (figures.append(fig), save(fig, *a, **k))
    )
    history = [
        {
            "epoch": e,
            "train_acc": 0.5,
            "val_acc": 0.4,
            "train_acc_audio": 0.3,
            "val_acc_audio": 0.3,
            "train_acc_visual": 0.2,
            "val_acc_visual": 0.2,
            "train_loss": 1.0,
            "val_loss": 1.1,
        }
        for e in (1, 2)
    ]
    steps = [{"epoch": 1, "step": s, "loss": 1.0, "iemf/coeff": 0.5 + s / 10} for s in range(4)]
    path = training_curves(history, steps, tmp_path / "curves.png", "iemf/coeff")
    assert path.is_file() and len(figures) == 1
    axes = figures[0].axes
    labels = [(ax.get_xlabel(), ax.get_ylabel()) for ax in axes]
    assert labels == [("epoch", "accuracy"), ("epoch", "loss"), ("step", "iemf/coeff")]
    legend = [t.get_text() for t in axes[0].get_legend().get_texts()]
    assert legend == ["train_acc", "val_acc", "train_acc_audio", "val_acc_audio", "train_acc_visual", "val_acc_visual"]
    figures.clear()
    training_curves(history, [{"epoch": 1, "step": 0, "loss": 1.0}], tmp_path / "plain.png")
    assert [ax.get_ylabel() for ax in figures[0].axes] == ["accuracy", "loss"]  # no column: no step panel
