import pytest

from snn_msi.cli import build_parser, main, train_config
from snn_msi.reports import COMMANDS as REPORTS
from snn_msi.reports import STUDIES

CORE = ["train", "evaluate", "neurons", "methods", "datasets", "prepare", "build-h5"]
COMMANDS = CORE + REPORTS.names()


@pytest.mark.parametrize("cmd", COMMANDS + [f"study {s}" for s in STUDIES.names()])
def test_every_subcommand_has_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd.split(), "--help"])
    assert e.value.code == 0 and "usage: snn-msi" in capsys.readouterr().out


def test_bad_arguments_are_named(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--method", "ogmge"])
    assert e.value.code == 2 and "--method" in capsys.readouterr().err
    assert main(["train", "--demo", "--neuron", "lfi", "--epochs", "1"]) == 2
    assert "unknown neuron 'lfi'" in capsys.readouterr().err
    assert main(["prepare", "/nonexistent/videos", "/tmp/x"]) == 2
    assert "/nonexistent/videos" in capsys.readouterr().err


def test_prepare_with_no_decodable_video_is_a_one_line_error(tmp_path, capsys):
    pytest.importorskip("av")
    for label in ("a", "b"):
        (tmp_path / "v" / label).mkdir(parents=True)
        (tmp_path / "v" / label / "c.mp4").write_bytes(b"not a video")
    assert main(["prepare", str(tmp_path / "v"), str(tmp_path / "out"), "--workers", "1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert "none of its 2 videos could be decoded" in err[-1] and "unreadable" in err[-1]


def test_neurons_and_datasets_listings(capsys):
    assert main(["neurons"]) == 0
    out = capsys.readouterr().out
    assert "lif" in out and "NOT SPIKING" in out
    assert main(["datasets"]) == 0
    assert "kinetics-sounds" in capsys.readouterr().out
    assert set(build_parser()._subparsers._group_actions[0].choices) == set(COMMANDS)


@pytest.mark.parametrize("cmd", [["study", "inverse-effectiveness", "--levels"], ["probe", "missing.pt", "--snr"]])
def test_bad_snr_pairs_are_one_line_errors_naming_the_option(cmd, capsys, tmp_path):
    assert main([*cmd, "0,10 -10;0", "--out", str(tmp_path / "out")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith(f"{cmd[-1]}: expected 'AUDIO_DB,IMAGE_DB', got '-10;0'") and "\n" not in err
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize(
    "cmd",
    [
        ["study", "inverse-effectiveness", "--fusions", "mis", "--levels", "-10,0"],
        ["study", "inverse-effectiveness", "--fusions", "mis", "--levels", "0,10", "-10,0", "-15.5,-.5"],
        ["probe", "missing.pt", "--snr", "-15,-5"],
        ["probe", "missing.pt", "--noise-snr", "-15,-5"],
    ],
)
def test_snr_pairs_that_start_with_a_minus_are_values_not_options(cmd, capsys):
    # the pairs parse: the one-line error is the next problem (a bad fusion, a missing checkpoint), not argparse's
    assert main(cmd) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "argument" not in err and "unrecognized" not in err
    assert ("unknown fusion 'mis'" if cmd[0] == "study" else "missing.pt") in err


BAD_STUDY_OPTION = {
    "inverse-effectiveness": ["--fusions", "mis"],
    "methods": ["--methods", "cmll"],
    "energy": ["--set", "model.T=0"],
}


BAD_SEEDS = [["--seed-list", "1", "--seeds", "3"], ["--seed-list", "2", "--seed-start", "5"], ["--seed-list=0,0,1"]]


@pytest.mark.parametrize("name", STUDIES.names())
@pytest.mark.parametrize("seeds", [[], *BAD_SEEDS])
def test_a_study_with_a_bad_option_is_one_line_and_writes_nothing(name, seeds, capsys, tmp_path):
    out = tmp_path / "study"
    bad = seeds or BAD_STUDY_OPTION[name]
    try:
        code = main(["study", name, *bad, "--out", str(out)])
    except SystemExit as e:  # argparse refuses a value before the command runs
        code = e.code
    err = capsys.readouterr().err.strip()
    assert code == 2 and "\n" not in err.split("error:")[-1] and "error:" in err, err
    assert not out.exists()


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--method-arg", "params=all"], {"ogm_ge": {"params": "all"}, "iemf": {}}),
        (["--method-arg", "iemf.noise=false"], {"ogm_ge": {}, "iemf": {"noise": False}}),
        (["--method-arg", "ogm_ge.alpha=0.2", "--alpha", "0.3"], {"ogm_ge": {"alpha": 0.3}, "iemf": {}}),
    ],
)
def test_method_args_go_to_the_method_that_has_them_or_to_the_one_named(args, expected):
    """``--method-arg KEY=VALUE`` on the method of the run with the option; ``METHOD.KEY`` on that one."""
    parsed = build_parser().parse_args(["train", "--demo", "--method", "ogm_ge", "--iemf", *args])
    policies = {p["name"]: {k: v for k, v in p.items() if k != "name"} for p in train_config(parsed).policies}
    assert policies == expected


def test_methods_list_every_option_a_method_arg_takes(capsys):
    import dataclasses

    from snn_msi.training import METHODS

    assert main(["methods"]) == 0
    text = capsys.readouterr().out
    for name in METHODS.names():
        block = text.split(f"\n{name} ", 1)[-1] if not text.startswith(f"{name} ") else text
        line = next(x for x in block.splitlines() if "--method-arg:" in x)
        for f in dataclasses.fields(METHODS.get(name).factory.config_class):
            assert f"{f.name}=" in line, (name, f.name)


def _run_commands_with_data_root() -> list[str]:
    """The commands that read a trained run (a positional ``checkpoint``) and take ``--data-root``."""
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(
        name
        for name, p in sub.choices.items()
        if {"checkpoint"} & {a.dest for a in p._actions} and "--data-root" in p._option_string_actions
    )


#: what each such command needs besides the run and --data-root to run briefly here
_BRIEF = {
    "evaluate": lambda t: [],
    "export-nir": lambda t: [t / "audio.nir", "--part", "audio_net"],
    "energy": lambda t: ["--samples", "4", "--out", t / "energy"],
    "probe": lambda t: ["--samples", "4", "--trials", "stimuli", "--sweeps", "contrast", "--out", t / "probe"],
}


@pytest.fixture(scope="module")
def moved_run(tmp_path_factory):
    """A tiny run (msi fusion, which every such command reads) on a folder that then moved."""
    from .trees import make_learnable_folder_tree

    base = tmp_path_factory.mktemp("moved")
    data = make_learnable_folder_tree(base / "data", per_class=6, labels=("red", "green"))
    args = ["train", "--demo", "--dataset", "folder", "--data-root", data, "--fusion", "msi", "--epochs", "1"]
    tiny = ["--T", "2", "--set", "model.widths=[4]", "--set", "model.blocks=[1]", "--quiet", "--out", base / "run"]
    assert main([str(a) for a in args + tiny]) == 0
    data.rename(base / "moved")
    return base / "run", base / "moved"


@pytest.mark.parametrize("command", _run_commands_with_data_root())
def test_every_command_that_reads_a_run_follows_its_data_with_data_root(command, moved_run, tmp_path, capsys):
    run, moved = moved_run
    assert command in _BRIEF, f"{command} reads a run and takes --data-root: add its brief arguments to _BRIEF"
    extra = [str(a) for a in _BRIEF[command](tmp_path)]
    capsys.readouterr()
    assert main([command, str(run), *extra]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "does not exist" in err and "--data-root DIR" in err, err
    assert main([command, str(run), *extra, "--data-root", str(moved)]) == 0, capsys.readouterr().err


def test_inverse_effectiveness_levels_go_strongest_first(capsys, tmp_path):
    """The controls run at every level but the first: levels in another order are one line, not controls at the
    clean level."""
    out = tmp_path / "ie"
    assert main(["study", "inverse-effectiveness", "--levels", "-15,-5", "0,10", "--out", str(out)]) == 2
    assert "levels go strongest first" in capsys.readouterr().err and not out.exists()


@pytest.mark.parametrize(
    ("argv", "option"),
    [
        (["study", "methods", "--tune", "0"], "--tune"),
        (["study", "methods", "--tune", "-1"], "--tune"),
        (["study", "inverse-effectiveness", "--margin", "nan"], "--margin"),
        (["study", "inverse-effectiveness", "--margin", "-1"], "--margin"),
        (["study", "inverse-effectiveness", "--margin", "0"], "--margin"),
        (["probe", "x.pt", "--repeats", "1"], "--repeats"),
        (["probe", "x.pt", "--samples", "1"], "--samples"),
        (["sweep", "--method", "ogm_ge", "--param", "alpha=0.1:1", "--max-retries", "-1"], "--max-retries"),
    ],
)
def test_counts_and_margins_are_checked_before_any_work(argv, option, capsys):
    """``--tune 0`` was taken as no tuning, ``--tune -1`` failed after the study had trained, naming ``--trials``;
    a negative, zero or NaN ``--margin`` filled the equivalence column; the probe's and Ray's counts were refused
    later without naming their option."""
    with pytest.raises(SystemExit) as e:
        main(argv)
    assert e.value.code == 2 and f"argument {option}:" in capsys.readouterr().err


def test_misread_inputs_name_what_is_wrong(tmp_path, capsys):
    """Messages that pointed at the wrong thing (a CLI fuzz): a --resume file beside no run named the folder '.',
    a bad method in a --tuned file was blamed on --methods, build-h5 took any --layout and 4-pixel frames, and a
    study's errors did not say which study."""
    (tmp_path / "text.pt").write_text("not a checkpoint")
    (tmp_path / "tuned.yaml").write_text("nosuch:\n  alpha: 1\n")
    (tmp_path / "d" / "a").mkdir(parents=True)
    cases = [
        (["train", "--resume", str(tmp_path / "text.pt")], f"--resume {tmp_path / 'text.pt'}: not a run's checkpoint"),
        (
            ["study", "methods", "--tuned", str(tmp_path / "tuned.yaml"), "--report", "--out", str(tmp_path / "m")],
            f"snn-msi study methods: error: --tuned {tmp_path / 'tuned.yaml'}: unknown method 'nosuch'",
        ),
        (
            ["build-h5", str(tmp_path / "d"), str(tmp_path / "x.h5"), "--dataset", "folder", "--layout", "nosuch"],
            "layout of folder must be one of",
        ),
        (
            ["build-h5", str(tmp_path / "d"), str(tmp_path / "x.h5"), "--dataset", "folder", "--frame-size", "4"],
            "--frame-size 4: frames smaller than a model takes",
        ),
        (
            ["train", "--model", "small", "--dataset", "h5", "--data-root", str(tmp_path / "d"), "--epochs", "1"],
            f"HDF5 cache {tmp_path / 'd'} is a folder, not an .h5 file",
        ),
    ]
    for argv, needle in cases:
        assert main(argv) == 2, argv
        err = capsys.readouterr().err.strip().splitlines()
        assert len(err) == 1 and needle in err[0], (argv, err)
    assert not (tmp_path / "x.h5").exists() and not (tmp_path / "m").exists()


@pytest.mark.parametrize("option", [["--address", "10.0.0.1:6379"], ["--gpus-per-run", "1"], ["--max-retries", "5"]])
def test_a_ray_option_with_the_local_executor_is_refused(option, tmp_path, capsys):
    """Ray's options did nothing with the local executor, silently (a user believed the runs went to a cluster)."""
    argv = ["sweep", "--method", "ogm_ge", "--param", "alpha=0.1:1", "--out", str(tmp_path / "s"), *option]
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err == [f"snn-msi sweep: error: {option[0]}: for --executor ray (the runs run here, with --executor local)"]
    assert not (tmp_path / "s").exists()


@pytest.mark.parametrize(
    ("argv", "needle"),
    [
        (["energy", "x.pt", "--twin-out", "t"], "--twin-out t: the folder --train-twin trains into"),
        (["study", "methods", "--tune-seed", "7", "--report"], "--tune-seed 7: the seed --tune trains"),
    ],
)
def test_an_option_that_would_do_nothing_here_is_refused(argv, needle, capsys):
    """Options another option gives a meaning to were ignored without it."""
    assert main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and needle in err[0], err
