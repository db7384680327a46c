"""Every combination a user can type, through the real entry point (``snn-msi train``), parametrised over the
registries themselves: a newly registered neuron, method, fusion or data set is covered without editing a test.

Each run is one step of a tiny network on a few samples: these tests check that the combination works end to
end (config, model, loss, methods, logs, checkpoint, test), not what it learns.
"""

import json

import pytest

import neurons
from snn_msi.cli import main
from snn_msi.data import DATASETS
from snn_msi.models import FUSIONS
from snn_msi.training import METHODS, read_csv

QUICK = ["--epochs", "1", "--batch-size", "16", "--quiet", "--T", "2", "--set", "data.limit=16",
         "--set", "model.widths=[4]", "--set", "model.blocks=[1]"]  # fmt: skip


def _train(tmp_path, capsys, *args) -> dict:
    code = main(["train", *QUICK, *args, "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert 0.0 <= result["test_acc"] <= 1.0 and result["test_n"] == 16
    return result


@pytest.mark.parametrize("neuron", list(neurons.available()))
def test_every_neuron_trains_with_its_own_defaults(neuron, tmp_path, capsys):
    """`snn-msi train --demo --neuron NAME`: the paper's shared settings apply where the neuron has them."""
    _train(tmp_path, capsys, "--demo", "--neuron", neuron)
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.parametrize("fusion", FUSIONS.names())
@pytest.mark.parametrize("iemf", [False, True], ids=["plain", "iemf"])
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_with_and_without_iemf_and_every_fusion(method, iemf, fusion, tmp_path, capsys):
    extra = ["--iemf"] if iemf else []
    result = _train(tmp_path, capsys, "--demo", "--method", method, "--fusion", fusion, *extra)
    steps = read_csv(tmp_path / "run" / "steps.csv")
    columns = set(steps[0])
    if method != "normal":  # every method logs what it did, under its own name
        assert any(c.startswith(f"{method}/") for c in columns), columns
    if iemf and method != "iemf":
        assert "iemf/coeff" in columns and "mean iemf/coeff" in result


#: a builder of a tiny tree per file-based data set (tests/conftest.py); digits-av needs none
@pytest.mark.parametrize("dataset", DATASETS.names())
def test_every_data_set_trains_through_the_cli(dataset, tmp_path, capsys, data_trees):
    if dataset not in data_trees:
        pytest.fail(f"no tiny tree for data set {dataset!r}: add one to the data_trees fixture in conftest.py")
    root = data_trees[dataset](tmp_path / "data")
    args = ["--dataset", dataset, "--set", "data.image_size=16", "--set", "model.stem=small"]
    if root is not None:
        args += ["--data-root", str(root)]
    # noise at an SNR works on every data set (the HDF5 cache was built with waveforms)
    code = main(["train", *QUICK, *args, "--audio-snr", "0", "--image-snr", "5", "--set", "data.limit=4",
                 "--out", str(tmp_path / "run")])  # fmt: skip
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["test_n"] >= 1
