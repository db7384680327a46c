"""Model recipes by name (``build("small", num_classes=3)``, ``--model``, ``--demo``) and the schedule warnings."""

import json
import logging

import pytest
import torch

from snn_msi.cli import build_parser, main, train_config
from snn_msi.data import DataConfig
from snn_msi.models import DEFAULT_CHANNELS, RECIPES, ModelConfig, build, get_recipe, register_recipe
from snn_msi.schema import ConfigError
from snn_msi.training import TrainConfig, demo_config, recipe_config
from snn_msi.training.config import schedule_warnings

from .trees import make_learnable_folder_tree


def test_shipped_recipes():
    assert {"paper", "small", "demo"} <= set(RECIPES.names())
    assert get_recipe("paper").model_config() == ModelConfig()  # the defaults are the paper's
    assert recipe_config("paper") == TrainConfig()
    assert demo_config().model == get_recipe("demo").model_config()
    assert demo_config().data.dataset == "digits-av" and demo_config().data.preset == "hard"


@pytest.mark.parametrize("name", RECIPES.names())
def test_build_every_recipe_by_name(name):
    """timm's ``create_model(name, num_classes=3)``: channels default to a spectrogram and RGB frames."""
    net = build(name, num_classes=3)
    recipe = get_recipe(name)
    expect = {k: recipe.model.get(k, v) for k, v in DEFAULT_CHANNELS.items()}
    assert net.config.num_classes == 3
    assert net.audio_net.stem_conv.conv.in_channels == expect["audio_channels"]
    assert net.visual_net.stem_conv.conv.in_channels == expect["visual_channels"]
    assert list(net.audio_net.layers[-1].conv2.conv.weight.shape)[0] == recipe.model_config().widths[-1]


def test_build_small_forward_and_keyword_form():
    net = build("small", num_classes=3)
    out = net(torch.rand(2, 1, 64, 48), torch.rand(2, 1, 3, 32, 32))
    assert out.fused.shape == (2, 3)
    assert build(neuron="plif", num_classes=3).config.visual_channels == 3  # no channel counts demanded
    assert build("small", num_classes=3, visual_channels=1).visual_net.stem_conv.conv.in_channels == 1
    with pytest.raises(ValueError, match="unknown model recipe 'smal'.*Did you mean 'small'"):
        build("smal", num_classes=3)


def test_register_recipe_from_yaml(tmp_path):
    path = tmp_path / "tiny_test.yaml"
    path.write_text("description: tiny\nmodel: {widths: [8], blocks: [1], stem: small}\nepochs: 2\n")
    recipe = register_recipe(path)
    try:
        assert "tiny_test" in RECIPES and build("tiny_test", num_classes=2).config.widths == (8,)
        assert recipe_config("tiny_test").epochs == 2
    finally:
        RECIPES._entries.pop("tiny_test")  # the registry is global: leave it as the package ships it
    assert get_recipe(str(path)).model == recipe.model  # a file path works without registering
    # a run's config.yaml is a recipe too
    TrainConfig(epochs=3, model=build("small", num_classes=3).config).save(tmp_path / "config.yaml")
    assert recipe_config(str(tmp_path / "config.yaml")).epochs == 3
    bad = tmp_path / "bad.yaml"
    bad.write_text("model: {widths: [8], blokcs: [1]}\n")
    with pytest.raises(ConfigError, match="recipe bad: model.*blokcs"):
        register_recipe(bad)
    bad.write_text("model: {}\nepohcs: 3\n")
    with pytest.raises(ConfigError, match="recipe bad: unknown key.*epohcs"):
        recipe_config(str(bad))


def _args(*argv):
    return build_parser().parse_args(["train", *argv])


@pytest.mark.parametrize("name", RECIPES.names())
def test_model_option_applies_every_recipe(name, tmp_path):
    cfg = train_config(_args("--model", name, "--dataset", "folder", "--data-root", str(tmp_path), "--lr", "0.3"))
    recipe = get_recipe(name)
    assert cfg.model.widths == recipe.model_config().widths and cfg.model.stem == recipe.model_config().stem
    assert cfg.lr == 0.3  # the command line over the recipe
    assert cfg.data.dataset == "folder" and cfg.data.root == str(tmp_path)
    # another data set than the recipe's: classes and channels from the data, no SNR preset nobody asked for
    assert (cfg.model.num_classes, cfg.model.audio_channels, cfg.model.visual_channels) == (None, None, None)
    assert cfg.data.snr() == (None, None)
    if "epochs" in recipe.train:  # the recipe's schedule comes with its architecture
        assert cfg.epochs == recipe.train["epochs"]


def test_demo_with_another_dataset_takes_the_data(tmp_path):
    cfg = train_config(_args("--demo", "--dataset", "folder", "--data-root", str(tmp_path)))
    assert cfg.model.widths == demo_config().model.widths and cfg.epochs == demo_config().epochs
    assert (cfg.model.num_classes, cfg.model.visual_channels) == (None, None)
    assert cfg.data.preset == "clean" and cfg.data.image_size == DataConfig().image_size
    asked = train_config(_args("--demo", "--dataset", "folder", "--data-root", str(tmp_path), "--preset", "hard"))
    assert asked.data.preset == "hard"
    assert train_config(_args("--demo")).data.preset == "hard"  # the demo itself keeps its preset
    with pytest.raises(ValueError, match="unknown model recipe 'nope'"):
        train_config(_args("--model", "nope", "--dataset", "folder", "--data-root", str(tmp_path)))


@pytest.mark.parametrize("how", [["--demo"], ["--model", "small"]])
def test_train_on_a_3_class_rgb_folder(how, tmp_path, capsys, caplog):
    """Both ways to a small network train on RGB frames of 3 classes (the demo's own data is 1-channel, 10 classes);
    the demo's schedule on 9 training clips for 1 epoch says in one line each why it will not move much."""
    caplog.set_level(logging.WARNING)
    tree = make_learnable_folder_tree(tmp_path / "tree", per_class=4)
    quiet = ["--quiet"] if how != ["--demo"] else []
    quick = ["--epochs", "1", *quiet, "--workers", "0", "--set", "data.image_size=32", "--out", str(tmp_path / "run")]
    rc = main(["train", *how, "--dataset", "folder", "--data-root", str(tree), *quick])
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["epochs"] == 1 and result["test_n"] == 3
    saved = TrainConfig.load(tmp_path / "run" / "config.yaml")
    assert (saved.model.num_classes, saved.model.visual_channels, saved.model.audio_channels) == (3, 3, 1)
    warned = [r.getMessage() for r in caplog.records if r.levelno == logging.WARNING]
    if how == ["--demo"]:  # milestone 7 of a 1-epoch run; 9 clips at batch 32: 1 step per epoch
        assert any("lr milestone(s) [7]" in m for m in warned) and any("1 step(s) per epoch" in m for m in warned)
    else:  # --quiet: no progress display, no schedule lines either
        assert not any("milestone" in m for m in warned)


def test_schedule_warnings():
    paper = TrainConfig(epochs=8)
    msgs = schedule_warnings(paper, 48)
    assert len(msgs) == 2 and "[70]" in msgs[0] and "2 step(s) per epoch" in msgs[1]
    assert all("\n" not in m for m in msgs)
    assert schedule_warnings(recipe_config("small"), 42) == []  # the small recipe fits a 60-clip folder
    assert schedule_warnings(demo_config(), 1000) == []


@pytest.mark.slow
def test_small_recipe_learns_a_60_clip_folder(tmp_path, capsys):
    """``snn-msi train --model small`` on 60 clips of 3 classes, its default schedule: above chance (1/3)."""
    tree = make_learnable_folder_tree(tmp_path / "tree", per_class=20)
    rc = main(
        [
            "train",
            "--model",
            "small",
            "--dataset",
            "folder",
            "--data-root",
            str(tree),
            "--quiet",
            "--workers",
            "0",
            "--out",
            str(tmp_path / "run"),
        ]
    )
    assert rc == 0
    result = json.loads(capsys.readouterr().out)
    assert result["test_n"] == 12 and result["test_acc"] > 0.6 and result["best_val_acc"] > 0.5


def test_recipes_command_lists_every_recipe(capsys):
    assert main(["recipes"]) == 0
    listed = [line.split()[0] for line in capsys.readouterr().out.splitlines()]
    assert listed == RECIPES.names()
