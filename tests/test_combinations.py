"""Every combination a user can type, parametrised over the registries themselves: a newly registered neuron,
method, fusion or data set is covered without editing a test.

Each run is one step of a tiny network on a few samples: these tests check that the combination works end to
end (config, model, loss, methods, logs, checkpoint, test), not what it learns.

- Every neuron, every data set and every method go through the real entry point (``snn-msi train``: argument
  parsing, data, trainer, plots, results).
- The full product method x {plain, --iemf} x fusion parses its command line the CLI's way
  (``snn_msi.cli.train_config``) and trains with ``Trainer`` in this process on data built once (the tiny
  digits-av splits, cached in memory) without the per-epoch plot: the same run, without repeating what the
  product does not vary.
- A combination a method refuses is expected to be refused, read from the registry, not from a list of names:
  a method whose ``iemf`` entry is ``"no: <why>"`` refuses ``--iemf`` with a one-line ConfigError naming why,
  and a method with a ``fusions`` entry refuses the other fusions (before any run folder is made).
"""

import json
import math
import re

import pytest
import yaml
from torch.utils.data import Dataset

import neurons
from snn_msi.cli import build_parser, main, train_config
from snn_msi.data import DATASETS, build_datasets
from snn_msi.models import FUSIONS
from snn_msi.schema import ConfigError
from snn_msi.training import METHODS, Trainer, read_csv
from snn_msi.training.policies import composes_with_iemf

QUICK = [
    "--epochs",
    "1",
    "--batch-size",
    "16",
    "--quiet",
    "--T",
    "2",
    "--set",
    "data.limit=16",
    "--set",
    "model.widths=[4]",
    "--set",
    "model.blocks=[1]",
]


def _train(tmp_path, capsys, *args) -> dict:
    code = main(["train", *QUICK, *args, "--out", str(tmp_path / "run")])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    result = json.loads(captured.out)
    assert 0.0 <= result["test_acc"] <= 1.0 and result["test_n"] == 16
    return result


def _refusal(method: str, iemf: bool, fusion: str) -> str | None:
    """The start of the one-line error a combination must give, from the method's registry entry (None: runs)."""
    entry = METHODS.get(method)
    if iemf and not composes_with_iemf(method).composes:
        return f"method '{method}' does not compose with IEMF: {entry.iemf.reason}"
    if entry.fusions is not None and fusion not in entry.fusions:
        return f"method '{method}' needs a fusion with a linear head per modality"
    return None


def _default_fusion(method: str) -> str:
    fusions = METHODS.get(method).fusions
    return fusions[0] if fusions else "concat"


@pytest.mark.parametrize("neuron", list(neurons.available()))
def test_every_neuron_trains_with_its_own_defaults(neuron, tmp_path, capsys):
    """`snn-msi train --demo --neuron NAME`: the paper's shared settings apply where the neuron has them."""
    _train(tmp_path, capsys, "--demo", "--neuron", neuron)
    assert (tmp_path / "run" / "best.pt").is_file()


@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_trains_through_the_cli_and_refuses_iemf_in_one_line_where_it_must(method, tmp_path, capsys):
    iemf = ["--iemf"] if composes_with_iemf(method).composes and method != "iemf" else []
    result = _train(tmp_path, capsys, "--demo", "--method", method, "--fusion", _default_fusion(method), *iemf)
    metrics = read_csv(tmp_path / "run" / "metrics.csv")[0]
    for column in ("val_f1", "val_map", "val_shapley_audio", "val_shapley_visual", "train_f1"):
        assert column in metrics, column  # the imbalance numbers beside accuracy, every epoch
    assert "test_shapley_audio" in result
    if not composes_with_iemf(method).composes:
        out = tmp_path / "refused"
        code = main(["train", *QUICK, "--demo", "--method", method, "--iemf", "--out", str(out)])
        last = capsys.readouterr().err.strip().splitlines()[-1]  # after the "run folder: ..." note
        assert code == 2 and last == f"snn-msi train: error: {_refusal(method, True, 'concat')}", last
        assert not out.exists()


def _choices() -> list[tuple[str, str, object]]:
    """Every other value of every method's on/off and named-choice options (``Literal``), from the registry."""
    import dataclasses
    import typing

    out = []
    for name in METHODS.names():
        cls = METHODS.get(name).factory.config_class
        hints = typing.get_type_hints(cls)
        for f in dataclasses.fields(cls):
            if hints[f.name] is bool:
                out.append((name, f.name, not f.default))
            elif typing.get_origin(hints[f.name]) is typing.Literal:
                out += [(name, f.name, v) for v in typing.get_args(hints[f.name]) if v != f.default]
    return out


@pytest.mark.parametrize(("method", "key", "value"), _choices())
def test_every_choice_of_every_method_trains_through_the_cli(method, key, value, tmp_path, capsys):
    """``--method-arg KEY=VALUE`` with each value a method's option can take besides its default (AGM's
    ``zero_pass_mode: train`` failed its first backward until this ran)."""
    text = str(value).lower() if isinstance(value, bool) else str(value)
    _train(
        tmp_path,
        capsys,
        "--demo",
        "--method",
        method,
        "--fusion",
        _default_fusion(method),
        "--method-arg",
        f"{key}={text}",
    )
    saved = yaml.safe_load((tmp_path / "run" / "config.yaml").read_text())["policies"]
    assert next(p for p in saved if p["name"] == method)[key] == value


class _InMemory(Dataset):
    """A split's samples computed once (the product reuses them; the digits-av split itself is in memory)."""

    in_memory = True

    def __init__(self, ds: Dataset) -> None:
        self.items = [ds[i] for i in range(len(ds))]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, i: int):
        return self.items[i]


@pytest.fixture(scope="module")
def tiny_splits():
    args = build_parser().parse_args(["train", *QUICK, "--demo", "--out", "unused"])
    cfg = train_config(args)
    return tuple(_InMemory(s) for s in build_datasets(cfg.data, cfg.seed))


@pytest.mark.parametrize("fusion", FUSIONS.names())
@pytest.mark.parametrize("iemf", [False, True], ids=["plain", "iemf"])
@pytest.mark.parametrize("method", METHODS.names())
def test_every_method_with_and_without_iemf_and_every_fusion(method, iemf, fusion, tmp_path, tiny_splits):
    extra = ["--iemf"] if iemf else []
    argv = ["train", *QUICK, "--demo", "--method", method, "--fusion", fusion, *extra, "--out", str(tmp_path / "run")]
    cfg = train_config(build_parser().parse_args(argv))
    refusal = _refusal(method, iemf and method != "iemf", fusion)
    if refusal is not None:
        with pytest.raises(ConfigError, match="^" + re.escape(refusal)) as err:
            Trainer(cfg, datasets=tiny_splits, progress=False, plots=False)
        assert "\n" not in str(err.value) and not (tmp_path / "run").exists()
        return
    result = Trainer(cfg, datasets=tiny_splits, progress=False, plots=False).fit()
    assert 0.0 <= result.test.acc <= 1.0 and result.test.n == 16
    steps = read_csv(tmp_path / "run" / "steps.csv")
    columns = set(steps[0])
    if method != "normal":  # every method logs what it did, under its own name
        assert any(c.startswith(f"{method}/") for c in columns), columns
    if iemf and method != "iemf":
        assert "iemf/coeff" in columns and math.isfinite(result.policy_mean("iemf", "coeff"))


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
    code = main(
        [
            "train",
            *QUICK,
            *args,
            "--audio-snr",
            "0",
            "--image-snr",
            "5",
            "--set",
            "data.limit=4",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    captured = capsys.readouterr()
    assert code == 0, captured.err
    assert json.loads(captured.out)["test_n"] >= 1
