"""Issue "The run folder's life cycle and the files users really have": one test per case (1-13 of the issue).

Through the CLI, with real SIGKILLs at instrumented points of a training subprocess (``SNN_MSI_TEST_KILL_AT`` /
``SNN_MSI_TEST_STOP_AT``, see :func:`snn_msi.training.rundir.lifecycle_hook`), two processes on one run folder,
and a full or read-only disk (a tmpfs when the tests run as root; elsewhere a file-size limit, which fails writes
the same way, and a folder without write permission). The mechanisms are tested over many inputs (lock, id
mapping, YAML parsing), not only the issue's examples. One tiny run, trained once, is shared by the cases.
"""

import contextlib
import csv
import json
import logging
import os
import resource
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import unquote

import pytest
import torch

from snn_msi.cli import build_parser, main, train_config
from snn_msi.data import KineticsSounds
from snn_msi.data.folder import AudioVisualFolder
from snn_msi.data.prepare import assign_ids, clip_id
from snn_msi.schema import ConfigError, parse_value, yaml_dump, yaml_load
from snn_msi.training import load_checkpoint
from snn_msi.training.rundir import CONFIG_HEADER

from .trees import _jpgs, _wav, make_ks_tree

ROOT = Path(__file__).resolve().parents[1]
# the smallest run of tests/test_adversarial.py, 2 epochs; a learning rate so small that epoch 1 stays the best
# (case 3 needs a best epoch that is not the last)
RUN = [
    "--demo",
    "--epochs",
    "2",
    "--batch-size",
    "16",
    "--quiet",
    "--T",
    "2",
    "--lr",
    "1e-12",
    "--set",
    "data.limit=32",
    "--set",
    "model.widths=[4]",
    "--set",
    "model.blocks=[1]",
]


def _cli(capsys, *argv) -> tuple[int, str, str]:
    """``snn-msi ARGV`` in this process: exit code, stdout, stderr (warnings included, as a terminal shows them)."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(logging.Formatter("%(levelname)s %(name)s: %(message)s"))
    logging.getLogger().addHandler(handler)
    try:
        code = main([str(a) for a in argv])
    finally:
        logging.getLogger().removeHandler(handler)
    out, err = capsys.readouterr()
    return code, out, err


def _one_line(err: str, *needles: str) -> str:
    lines = [ln for ln in err.strip().splitlines() if not ln.startswith(("run folder:", "WARNING", "prepare:"))]
    assert len(lines) == 1 and "Traceback" not in err, err
    for n in needles:
        assert n in lines[0], (n, lines[0])
    return lines[0]


def _spawn(*argv, kill_at: str | None = None, stop_at: str | None = None) -> subprocess.Popen:
    """``snn-msi train ...`` in a subprocess that imports this checkout; SIGKILL / SIGSTOP itself at a point."""
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.pop("SNN_MSI_TEST_KILL_AT", None), env.pop("SNN_MSI_TEST_STOP_AT", None)
    if kill_at:
        env["SNN_MSI_TEST_KILL_AT"] = kill_at
    if stop_at:
        env["SNN_MSI_TEST_STOP_AT"] = stop_at
    return subprocess.Popen(
        [sys.executable, "-m", "snn_msi.cli", "train", *map(str, argv)],
        env=env,
        cwd=ROOT,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def _killed(proc: subprocess.Popen) -> None:
    _, err = proc.communicate(timeout=300)
    assert proc.returncode == -signal.SIGKILL, err


def _wait_stopped(proc: subprocess.Popen) -> None:
    for _ in range(3000):
        with open(f"/proc/{proc.pid}/stat") as fh:
            if fh.read().rsplit(")", 1)[1].split()[0] == "T":
                return
        assert proc.poll() is None, proc.communicate()
        time.sleep(0.1)
    raise AssertionError("the training subprocess never reached its stop point")


def _rows(path: Path) -> list[list[str]]:
    """A log's cells as written (text), without the clock columns (wall and CPU)."""
    with path.open(newline="") as fh:
        rows = list(csv.reader(fh))
    keep = [i for i, name in enumerate(rows[0]) if name not in ("seconds", "compute_seconds", "compute_cpu_seconds")]
    return [[r[i] for i in keep] for r in rows]


def _same_weights(a: Path, b: Path) -> bool:
    wa, wb = load_checkpoint(a)["model"], load_checkpoint(b)["model"]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa)


def _files(folder: Path) -> dict[str, bytes]:
    return {str(p.relative_to(folder)): p.read_bytes() for p in sorted(folder.rglob("*")) if p.is_file()}


@pytest.fixture(scope="module")
def ref(tmp_path_factory) -> Path:
    """The uninterrupted run every interrupted one must equal."""
    out = tmp_path_factory.mktemp("ref") / "run"
    assert main(["train", *RUN, "--out", str(out)]) == 0
    assert json.loads((out / "results.json").read_text())["best_epoch"] == 1  # what case 3 needs
    return out


@pytest.fixture(scope="module")
def killed_runs(tmp_path_factory):
    """Started at once (two cores): a run stopped in epoch 1 before its first checkpoint (case 1 and 5), and a run
    killed while it writes the best.pt of its best epoch 1, after that epoch's last.pt (case 3 and 13)."""
    base = tmp_path_factory.mktemp("killed")
    stopped = _spawn(*RUN, "--epochs", "1", "--out", base / "stopped", stop_at="after_log:1")
    killed = _spawn(*RUN, "--out", base / "killed", kill_at="writing_best.pt:1")
    yield {"stopped": (stopped, base / "stopped"), "killed": (killed, base / "killed")}
    for p in (stopped, killed):
        if p.poll() is None:
            p.kill()
            p.wait()


def _resume_stopped(killed_runs, capsys) -> tuple[Path, str]:
    """Kill the stopped run (it dies holding the lock, after epoch 1's log rows, before any checkpoint) and resume
    it here; returns its folder and the resume's stderr and warnings (once)."""
    owner, out = killed_runs["stopped"]
    if "resumed" not in killed_runs:
        _wait_stopped(owner)
        owner.kill()
        owner.wait()
        code, _, err = _cli(capsys, "train", "--resume", out, "--quiet")
        assert code == 0, err
        killed_runs["resumed"] = err
    return out, killed_runs["resumed"]


# 1 -------------------------------------------------------------------------------------------------------------
def test_1_a_run_folder_has_one_owner_and_a_dead_owners_lock_is_taken_over(killed_runs, ref, capsys):
    owner, out = killed_runs["stopped"]
    _wait_stopped(owner)  # it holds the folder, in the middle of epoch 1's writes
    assert (out / ".lock").read_text().split()[0] == str(owner.pid)
    for argv in ([*RUN, "--out", out], ["--resume", out, "--quiet"], [*RUN, "--out", out, "--overwrite"]):
        code, _, err = _cli(capsys, "train", *argv)  # a second process, while the first lives
        assert code == 2
        _one_line(err, f"run folder {out} is in use by process {owner.pid} on", "another --out")
    assert (out / "metrics.csv").is_file() and not (out / "last.pt").exists()  # nothing of the owner's touched
    out, err = _resume_stopped(killed_runs, capsys)
    assert f"took over the lock of process {owner.pid}" in err and not (out / ".lock").exists()
    assert _rows(out / "metrics.csv") == _rows(ref / "metrics.csv")[:2]  # one header, the epoch once


def test_1_the_lock_is_exclusive_reentrant_and_released(tmp_path, caplog):
    from snn_msi.training.rundir import RunDir

    run = RunDir(tmp_path / "r", "new")
    assert not run.prepare()
    again = RunDir(tmp_path / "r", "resume")  # the same process (a study, a test): re-entrant
    again.prepare()
    again.release()
    assert (tmp_path / "r" / ".lock").is_file()
    holder = subprocess.run(
        [
            sys.executable,
            "-c",
            "import fcntl, os, sys; fd = os.open(sys.argv[1], os.O_RDWR); "
            "print(fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB))",
            str(tmp_path / "r" / ".lock"),
        ],
        capture_output=True,
        text=True,
    )
    assert holder.returncode != 0 and "BlockingIOError" in holder.stderr  # another process cannot lock it
    run.release()
    assert not (tmp_path / "r").exists()  # nothing was written: the folder goes with the lock
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / ".lock").write_text("999999999 elsewhere\n")  # a lock file that no live process holds
    stale = RunDir(tmp_path / "r", "new")
    with caplog.at_level("WARNING"):
        stale.prepare()
    assert "took over the lock of process 999999999 on elsewhere" in caplog.text
    assert (tmp_path / "r" / ".lock").read_text().split()[0] == str(os.getpid())
    stale.release()


# 2 -------------------------------------------------------------------------------------------------------------
def test_2_overwrite_checks_first_and_keeps_the_old_run_until_the_new_one_has_a_checkpoint(ref, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    (out / "notes.txt").write_text("mine")
    before = _files(out)
    # a typo in the data: refused before anything is touched
    code, _, err = _cli(
        capsys,
        "train",
        *RUN,
        "--out",
        out,
        "--overwrite",
        "--dataset",
        "kinetics-sounds",
        "--data-root",
        tmp_path / "typo",
    )
    assert code == 2
    _one_line(err, "typo")
    assert _files(out) == before
    # killed before its first checkpoint: the old run is whole
    _killed(_spawn(*RUN, "--epochs", "1", "--out", out, "--overwrite", "--seed", "1", kill_at="after_log:1"))
    assert {k: v for k, v in _files(out).items() if not k.startswith(".")} == before
    # the next owner removes what the killed one left; a new run replaces the old one, the user's file stays
    code, _, err = _cli(capsys, "train", *RUN, "--epochs", "1", "--out", out, "--overwrite", "--seed", "1")
    assert code == 0 and "removed the new run of a killed --overwrite" in err
    assert yaml_load((out / "config.yaml").read_text())["seed"] == 1 and (out / "notes.txt").read_text() == "mine"
    assert [r[0] for r in _rows(out / "metrics.csv")] == ["epoch", "1"] and not list(out.glob(".*"))


def test_2_an_overwrite_killed_after_its_first_checkpoint_is_finished_by_the_next_owner(ref, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    (out / "notes.txt").write_text("mine")
    staging = out / ".replacing"  # what a kill between the new run's last checkpoint and the swap leaves
    shutil.copytree(ref, staging)
    (staging / "results.json").unlink()
    config = yaml_load((ref / "config.yaml").read_text())
    (out / "config.yaml").write_text(CONFIG_HEADER + yaml_dump({**config, "seed": 7}))  # the old run's
    (out / "metrics.csv").write_text("old run\n")
    code, _, err = _cli(capsys, "train", "--resume", out, "--quiet")  # reads the new run's config
    assert code == 0 and "finishing the --overwrite" in err, err
    assert (out / "results.json").read_text() == (ref / "results.json").read_text()  # the new run, finished
    assert _rows(out / "metrics.csv") == _rows(ref / "metrics.csv")
    assert (out / "notes.txt").read_text() == "mine" and not staging.exists()


def test_2_a_folder_with_a_users_config_or_tb_holds_no_run_and_is_never_emptied(tmp_path, capsys):
    out = tmp_path / "mine"
    (out / "tb").mkdir(parents=True)
    (out / "tb" / "events").write_text("my events")
    (out / "config.yaml").write_text("epochs: 3\n")
    before = _files(out)
    for extra in ([], ["--overwrite"]):
        code, _, err = _cli(capsys, "train", *RUN, "--out", out, *extra)
        assert code == 2
        _one_line(err, "holds config.yaml, tb but no run", "another --out")
        assert "already holds" not in err and _files(out) == before


# 3 -------------------------------------------------------------------------------------------------------------
def test_3_a_finished_run_always_has_best_pt_and_resume_is_exact(killed_runs, ref, capsys):
    proc, out = killed_runs["killed"]
    _killed(proc)
    assert (out / "last.pt").is_file() and not (out / "best.pt").exists()  # killed between the two
    assert list(out.glob(".best.pt.tmp*"))  # inside the write of best.pt: its temporary file stays (case 13)
    code, _, err = _cli(capsys, "train", "--resume", out, "--quiet")
    assert code == 0, err
    assert "best.pt restored from last.pt (epoch 1)" in err and not list(out.glob(".*.tmp*"))
    assert _same_weights(out / "best.pt", ref / "best.pt") and _same_weights(out / "last.pt", ref / "last.pt")
    ref_results, results = (json.loads((d / "results.json").read_text()) for d in (ref, out))
    assert results == ref_results
    code, text, err = _cli(capsys, "evaluate", out / "best.pt")
    assert code == 0 and json.loads(text)["test_acc"] == ref_results["test_acc"]


# 4 -------------------------------------------------------------------------------------------------------------
NAMES = [
    "plain",
    "with space",
    " lead",
    "trail ",
    "a,b",
    'say "hi"',
    "it's",
    "x%41",
    "back\\slash",
    ".hidden",
    "tab\there",
    "ünïcödé",
    "中文",
    "emoji 🎵",
    "-",
    "..",
    os.fsdecode(b"latin1 \xe9"),
    "a" * 300,
    "é" * 200,
]


@pytest.mark.parametrize("name", NAMES)
def test_4_every_name_gets_a_reversible_id_that_a_list_line_and_a_folder_hold(name, tmp_path):
    i = clip_id(name)
    assert i and i == i.strip() and not {",", "/", "\\"} & set(i) and not i.startswith(".")
    assert len(os.fsencode(i + ".wav")) <= 255 and i.isprintable()
    if len(name) < 100:
        assert unquote(i, errors="surrogateescape") == name
    (tmp_path / i).mkdir()  # a folder holds it, and a list line gives it back
    assert [f.strip() for f in f"{i},10,0".split(",")][0] == i


def test_4_ids_are_distinct_for_same_stems_extensions_and_classes():
    videos = [
        (label, Path(f"{stem}{ext}"))
        for label in ("cat", "dog")
        for stem in ("a", "a.mp4", "a__cat", "b")
        for ext in (".mp4", ".avi")
    ] + [("cat", Path("c.mp4")), ("dog", Path("d.mkv"))]
    ids = assign_ids(videos)
    assert len(set(ids)) == len(videos)
    assert ids[-2:] == ["c", "d"]  # a unique stem keeps its name


@pytest.fixture(scope="module")
def prepared(tmp_path_factory):
    pytest.importorskip("av", reason="PyAV not installed")
    from .test_prepare import _encode

    base = tmp_path_factory.mktemp("prep")
    src = base / "videos"
    names = {
        "cat": ["clip.mp4", "clip.avi", " spaced .mp4", "a,b.mp4"],
        "dog": ['say "hi".mp4', "clip.mp4", "ünï.mp4", "x.mkv"],
    }
    for label, files in names.items():
        for f in files:
            _encode(src / label / f, seconds=0.5)
    return src, base / "ks", sum(map(len, names.values()))


def test_4_prepare_gives_every_video_one_clip_and_maps_it_back(prepared, capsys):
    src, out, n = prepared
    code, text, err = _cli(capsys, "prepare", src, out, "--frames", "4", "--workers", "1")
    assert code == 0, err
    assert f"done {n}, skipped (already there) 0, failed 0" in text and "clip_ids.json" in text
    mapping = json.loads((out / "clip_ids.json").read_text())["clips"]
    assert sorted(mapping.values()) == sorted(str(p.relative_to(src)) for p in src.rglob("*.*"))
    listed = [ln.split(",")[0] for s in ("train", "test") for ln in (out / f"my_{s}.txt").read_text().splitlines()]
    assert sorted(listed) == sorted(mapping)
    # again with fewer frames: every clip is made again (a clip keeps no frame of the other count), then kept
    fewer = out.with_name("ks_fewer")
    shutil.copytree(out, fewer)
    for again, expected in ((0, f"done {n}, skipped (already there) 0"), (1, f"done 0, skipped (already there) {n}")):
        code, text, err = _cli(capsys, "prepare", src, fewer, "--frames", "2", "--workers", "1")
        assert code == 0 and expected in text, (again, text, err)
    counts = {len(list(d.glob("frame_*.jpg"))) for d in fewer.glob("*/video/*/*")}
    assert counts == {2}


# 5 -------------------------------------------------------------------------------------------------------------
def test_5_a_kill_before_the_first_checkpoint_logs_each_epoch_and_step_once(killed_runs, ref, capsys):
    out, _ = _resume_stopped(killed_runs, capsys)
    assert _rows(out / "metrics.csv") == _rows(ref / "metrics.csv")[:2]
    assert _rows(out / "steps.csv") == [r for r in _rows(ref / "steps.csv") if r[0] in ("epoch", "1")]  # once each


# 6 -------------------------------------------------------------------------------------------------------------
def test_6_resume_with_more_epochs_continues_and_fewer_is_an_error(ref, tmp_path, capsys):
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    code, _, err = _cli(capsys, "train", "--resume", out, "--epochs", "1", "--quiet")
    assert code == 2
    _one_line(err, "--epochs 1", "trained 2 epochs already")
    code, text, err = _cli(capsys, "train", "--resume", out, "--epochs", "3", "--quiet")
    assert code == 0, err
    assert "from epoch 2 to 3" in err and "learning-rate schedule" in err
    assert json.loads(text)["epochs"] == 3 and load_checkpoint(out / "last.pt")["epoch"] == 3
    assert [r[0] for r in _rows(out / "metrics.csv")] == ["epoch", "1", "2", "3"]
    assert _rows(out / "metrics.csv")[:3] == _rows(ref / "metrics.csv")  # the first two epochs as they were
    assert yaml_load((out / "config.yaml").read_text())["epochs"] == 3
    code, text, _ = _cli(capsys, "train", "--resume", out, "--quiet")  # finished at 3: its results
    assert code == 0 and json.loads(text)["epochs"] == 3


# 7 -------------------------------------------------------------------------------------------------------------
JSON_NUMBERS = ["0", "7", "-3", "010", "1e-3", "1E3", "-2.5e+2", "0.5", ".5", "5.", "1.0"]


@pytest.mark.parametrize("text", JSON_NUMBERS + ["1:30", "2:30", "0x10", "0o17", "yes", "on", "1_000", "2001-01-01"])
def test_7_values_parse_as_yaml_1_2(text):
    value = parse_value(text)
    if text in JSON_NUMBERS:  # what JSON (and YAML 1.2) read, also where JSON itself refuses a leading 0 or dot
        assert value == float(text) and type(value) is (float if any(c in text for c in ".eE") else int)
    elif text.startswith("0x") or text.startswith("0o"):
        assert value == int(text, 0)
    else:
        assert value == text  # no base 60, no YAML 1.1 booleans, no underscores, no dates
    assert yaml_load(yaml_dump({"k": value})) == {"k": value}  # written configs read back as they were


def test_7_command_line_values_and_duplicate_keys(tmp_path):
    def cfg(*argv):
        return train_config(build_parser().parse_args(["train", *RUN, *argv]))

    c = cfg("--set", "seed=010", "--set", "lr=1e-3", "--neuron", "lif", "--neuron-arg", "tau=2.5e0")
    assert c.seed == 10 and c.lr == 0.001 and c.model.neuron_args["tau"] == 2.5
    with pytest.raises(ConfigError, match="tau must be float, got '2:30'"):  # read as text, not 150 (base 60)
        cfg("--neuron", "lif", "--neuron-arg", "tau=2:30")
    with pytest.raises(ConfigError, match="lr must be a number, got '1:30'"):
        cfg("--set", "lr=1:30")
    with pytest.raises(ConfigError, match="duplicate key 'T'"):
        cfg("--set", "model={T: 2, T: 3}")
    path = tmp_path / "c.yaml"
    path.write_text("epochs: 2\nlr: 0.1\nseed: 0\nlr: 0.2\n")
    with pytest.raises(ConfigError, match=r"YAML \(line 4\): duplicate key 'lr' \(also on line 2\)"):
        train_config(build_parser().parse_args(["train", "--config", str(path)]))


# 8 -------------------------------------------------------------------------------------------------------------
def test_8_the_lists_prepare_writes_load(prepared, capsys):
    src, out, n = prepared
    if not (out / "my_train.txt").is_file():
        assert _cli(capsys, "prepare", src, out, "--frames", "4", "--workers", "1")[0] == 0
    sets = [
        KineticsSounds(out, s, val_fraction=0.0, image_size=16, audio_seconds=0.3, frames_per_clip=4)
        for s in ("train", "test")
    ]
    assert sum(len(s) for s in sets) == n and not any(s.bad.count for s in sets)
    ids = json.loads((out / "clip_ids.json").read_text())["clips"]
    assert {r.clip_id for s in sets for r in s.records} == set(ids)


# 9 -------------------------------------------------------------------------------------------------------------
@contextlib.contextmanager
def _disk(tmp_path: Path, kind: str):
    """A folder where every write fails: a full tmpfs or a read-only mount (root), else a file-size limit of 0
    (EFBIG, as a full disk fails) or a folder without write permission."""
    folder = tmp_path / "disk"
    folder.mkdir()
    mounted, limit = False, None
    if os.geteuid() == 0:
        opts = "size=64k" if kind == "full" else "ro,size=64k"
        mounted = subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", str(folder)]).returncode == 0
    if mounted and kind == "full":
        with open(folder / "filler", "wb") as fh, contextlib.suppress(OSError):
            fh.write(b"x" * 2**20)
    elif not mounted and kind == "full":
        limit = resource.getrlimit(resource.RLIMIT_FSIZE)
    elif not mounted:
        if os.geteuid() == 0:
            pytest.skip("a read-only folder needs a mount (root writes anywhere)")
        folder.chmod(0o500)
    old = signal.signal(signal.SIGXFSZ, signal.SIG_IGN) if limit else None
    try:
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, (0, limit[1]))
        yield folder
    finally:
        if limit:
            resource.setrlimit(resource.RLIMIT_FSIZE, limit)
            signal.signal(signal.SIGXFSZ, old)
        if mounted:
            subprocess.run(["umount", str(folder)])
        folder.chmod(0o700)


WRITERS = ["train", "build-h5", "prepare", "energy", "export-nir", "study-table"]


@pytest.mark.parametrize("kind", ["full", "read-only"])
@pytest.mark.parametrize("writer", WRITERS)
def test_9_every_writer_on_a_full_or_read_only_disk_says_so_in_one_line(writer, kind, ref, tmp_path, capsys):
    if writer == "prepare":
        pytest.importorskip("av", reason="PyAV not installed")
        from .test_prepare import _encode

        for k in range(2):
            _encode(tmp_path / "videos" / "cat" / f"c{k}.mp4", seconds=0.5)
    if writer == "build-h5":
        make_ks_tree(tmp_path / "ks")
    if writer == "export-nir":
        pytest.importorskip("nir")
    with _disk(tmp_path, kind) as disk:
        before = sorted(p.name for p in disk.rglob("*"))
        argv = {
            "train": ["train", *RUN, "--out", disk / "run"],
            "build-h5": ["build-h5", tmp_path / "ks", disk / "c.h5"],
            "prepare": ["prepare", tmp_path / "videos", disk / "ks", "--frames", "2", "--workers", "1"],
            "energy": ["energy", ref / "best.pt", "--out", disk / "energy", "--samples", "4"],
            "export-nir": ["export-nir", ref / "best.pt", disk / "net.nir"],
        }.get(writer)
        if argv is None:  # the studies' tables (runs.csv, summary.csv, ...) go through write_csv
            from snn_msi.files import write_csv

            with pytest.raises(OSError) as err:
                write_csv(disk / "summary.csv", [{"a": 1}])
            code, msg = 2, f"snn-msi study: error: {err.value}"
        else:
            code, _, msg = _cli(capsys, *argv)
        after = [p for p in disk.rglob("*") if p.name not in before]
    assert code == 2, msg
    reason = "No space left on device" if kind == "full" else ("Read-only" if os.geteuid() == 0 else "ermission")
    line = _one_line(msg, "error:")
    assert reason in line or "File too large" in line or "not writable" in line, line
    assert not [p for p in after if p.is_file()]  # no partial file (nor a temporary one)


# 10 ------------------------------------------------------------------------------------------------------------
def test_10_a_truncated_jpeg_is_a_bad_clip_and_a_loader_error_names_the_clip_and_file(tmp_path, capsys):
    root = make_ks_tree(tmp_path / "ks")
    jpg = root / "train" / "video" / "drumming" / "dru_train_1" / "frame_3.jpg"
    jpg.write_bytes(jpg.read_bytes()[:-200])  # verify() passes this; decoding does not
    ds = KineticsSounds(root, "train", val_fraction=0.0, image_size=16, audio_seconds=0.5)
    assert "dru_train_1" in ds.bad.problems["unreadable jpg"]
    good = next(i for i, r in enumerate(ds.records) if r.clip_id == "dru_train_2")
    frame = ds.records[good].frames[0]
    frame.write_bytes(frame.read_bytes()[:100])  # a file that goes bad after the check
    with pytest.raises(OSError, match=f"clip dru_train_2 of the train split: cannot read {frame}"):
        ds.frames_per_clip = len(ds.records[good].frames)  # read every frame
        ds[good]
    # from a DataLoader worker, through the CLI's error line
    from torch.utils.data import DataLoader

    from snn_msi.cli import main_guard

    loader = DataLoader(torch.utils.data.Subset(ds, [good]), num_workers=1)
    code = main_guard("snn-msi train", lambda _: next(iter(loader)), None)
    _one_line(capsys.readouterr().err, "clip dru_train_2", str(frame))
    assert code == 2


# 11 ------------------------------------------------------------------------------------------------------------
def test_11_a_label_folder_that_is_not_utf8_is_reported_as_such(tmp_path):
    root = tmp_path / "folder"
    for label in ("cat", "dog"):
        for k in range(3):
            _wav(root / label / f"c{k}.wav", seed=k)
            _jpgs(root / label, 1, seed=k, name=f"c{k}")
    os.rename(root / "dog", os.fsdecode(os.fsencode(root) + b"/d\xf6g"))
    ds = AudioVisualFolder(root, "train", val_fraction=0.0, test_fraction=0.34, image_size=16, audio_seconds=0.5)
    [(problem, ids)] = ds.bad.problems.items()
    assert problem.startswith("file name not UTF-8") and len(ids) == 2 and "unreadable wav" not in ds.bad.problems
    assert "d\\xf6g/c" in ds.bad.summary()  # printable: a log line never fails on it


# 12 ------------------------------------------------------------------------------------------------------------
def test_12_a_diverged_evaluation_under_skip_stops_naming_epoch_and_step(tmp_path, capsys):
    out = tmp_path / "run"
    code, _, err = _cli(
        capsys,
        "train",
        *RUN,
        "--lr",
        "1e30",
        "--neuron",
        "relu",
        "--set",
        "on_nonfinite=skip",
        "--set",
        "data.limit=64",
        "--out",
        out,
    )
    assert code == 1
    line = _one_line(err.replace("snn-msi train: stopped:", "error:"), "diverged at epoch 1, step")
    assert "NaN" not in line.split("(")[0]
    assert not (out / "results.json").exists()
    for f in ("last.pt", "best.pt"):  # nothing of the diverged epoch was saved
        if (out / f).is_file():
            assert all(
                torch.isfinite(v).all() for v in load_checkpoint(out / f)["model"].values() if v.is_floating_point()
            )


# 13 ------------------------------------------------------------------------------------------------------------
def test_13_no_temporary_file_stays_and_logs_keep_the_types_they_were_written_with(tmp_path, ref, capsys):
    out = tmp_path / "run"
    shutil.copytree(ref, out)
    orphan = out / ".last.pt.tmp999999.pt"  # what a kill inside a write leaves (case 3 makes one for real)
    orphan.write_bytes(b"partial")
    code, _, err = _cli(capsys, "train", "--resume", out, "--quiet")  # the next owner of the folder
    assert code == 0, err
    assert not orphan.exists()
    from snn_msi.training.runlog import RunLog

    (out / "metrics.csv").write_text((out / "metrics.csv").read_text() + "3,0.05,1.5")  # a row a kill cut short
    RunLog(out, loggers=("csv",)).truncate(1)  # what a resume from epoch 1 does
    kept = (out / "metrics.csv").read_text().splitlines()
    assert kept == (ref / "metrics.csv").read_text().splitlines()[:2]  # byte for byte: 1 stays 1, empty stays empty
    assert kept[1].split(",")[0] == "1"


def _children(pid: int) -> list[int]:
    out = subprocess.run(["ps", "-o", "pid=", "--ppid", str(pid)], capture_output=True, text=True).stdout
    return [int(p) for p in out.split()]


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return not (stat.is_file() and stat.read_text().split()[2] == "Z")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="the parent-death signal is Linux's")
def test_a_study_killed_with_kill_leaves_no_worker_training(tmp_path):
    """``kill STUDY`` (SIGTERM to the parent only; Ctrl-C reaches the whole group anyway): its local workers end
    too, so none trains on holding a run folder's lock; the study rerun resumes."""
    cmd = [sys.executable, "-m", "snn_msi.cli", "study", "methods", "--methods", "normal", "--no-iemf", "--seeds", "2"]
    cmd += ["--epochs", "40", "--set", "data.limit=32", "--jobs", "2", "--quiet", "--out", str(tmp_path / "s")]
    study = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.time() + 120
        while time.time() < deadline and not list((tmp_path / "s").glob("normal/s*/last.pt")):
            time.sleep(0.5)
        workers = [p for p in _children(study.pid) if "spawn_main" in Path(f"/proc/{p}/cmdline").read_text()]
        assert len(workers) == 2
        study.send_signal(signal.SIGTERM)
        study.wait(30)
        deadline = time.time() + 30
        while time.time() < deadline and any(_alive(p) for p in workers):
            time.sleep(0.2)
        assert not any(_alive(p) for p in workers)
    finally:
        study.kill()


def test_a_run_made_under_another_method_default_is_not_reused_silently(tmp_path):
    """A run saves every option of its methods: a default changed since (MLA's projection was on before
    2026-12-04) is a change of config, refused in one line; a config saved before runs wrote them out (options
    left to the defaults) still matches."""
    from snn_msi.reports.runs import finished, run_config
    from snn_msi.training import demo_config

    model = {**demo_config().model.to_dict(), "widths": (4,), "blocks": (1,), "T": 1}
    data = {"dataset": "digits-av", "preset": "hard", "limit": 16}
    cfg = demo_config(epochs=1, batch_size=8, model=model, data=data, policies=[{"name": "mla"}], out=str(tmp_path))
    assert run_config(cfg.to_dict()).status == "trained"
    saved = yaml_load((tmp_path / "config.yaml").read_text())
    assert saved["policies"] == [{"name": "mla", "projection": False, "gating": "entropy", "av_alpha": 0.5}]
    header = (tmp_path / "config.yaml").read_text().splitlines(keepends=True)[0]
    (tmp_path / "config.yaml").write_text(header + yaml_dump({**saved, "policies": [{"name": "mla"}]}))
    assert finished(cfg) and run_config(cfg.to_dict()).status == "reused"  # an older run's config
    old_default = {**saved, "policies": [{**saved["policies"][0], "projection": True}]}
    (tmp_path / "config.yaml").write_text(header + yaml_dump(old_default))
    assert not finished(cfg)
    with pytest.raises(ConfigError, match=r"holds another config \(policies.*projection"):
        run_config(cfg.to_dict())


# 14 ------------------------------------------------------------------------------------------------------------
def test_14_a_run_knows_its_data_resume_and_evaluate_elsewhere_are_checked_and_its_lists_kept(tmp_path, capsys):
    """The checkpoints carry the data's classes and clip counts: a resume on other data and an evaluation on
    other classes are one-line errors that leave the run's bad-clip lists as they are; an --overwrite on clean
    data replaces those lists with its own (none)."""
    ks = make_ks_tree(tmp_path / "ks")
    other = make_ks_tree(tmp_path / "other")
    for split in ("train", "test"):
        for kind in ("audio", "video"):
            (other / split / kind / "singing").rename(other / split / kind / "humming")
    run = tmp_path / "run"
    tiny = [a for a in RUN if a != "--demo"][2:]  # its options, without --demo and its epochs
    base = ["train", "--demo", "--dataset", "kinetics-sounds", "--epochs", "1", *tiny, "--out", run]
    code, _, err = _cli(capsys, *base, "--data-root", ks)
    assert code == 0, err
    lists = {p.name: p.read_bytes() for p in run.glob("bad_clips_*.json")}
    assert "bad_clips_kinetics_sounds_train.json" in lists
    assert load_checkpoint(run / "best.pt")["data"]["classes"] == ["drumming", "laughing", "singing"]
    code, _, err = _cli(capsys, "train", "--resume", run, "--epochs", "2", "--data-root", other)
    assert code == 2 and "lacks singing; adds humming" in _one_line(err, "cannot resume")
    code, _, err = _cli(capsys, "evaluate", run, "--data-root", other)
    assert code == 2 and "lacks singing; adds humming" in _one_line(err, "cannot be scored")
    assert {p.name: p.read_bytes() for p in run.glob("bad_clips_*.json")} == lists
    clean = tmp_path / "clean"
    for label in ("a", "b"):
        for k in range(4):
            _wav(clean / label / f"c{k}.wav", seed=k)
            _jpgs(clean / label / f"c{k}", 2, seed=k)
    code, _, err = _cli(capsys, *base[:3], "folder", *base[4:], "--data-root", clean, "--overwrite")
    assert code == 0, err
    assert not list(run.glob("bad_clips_*.json")) and load_checkpoint(run)["data"]["classes"] == ["a", "b"]


def test_15_ctrl_c_is_one_line_saying_what_the_folder_holds(ref, tmp_path, monkeypatch, capsys):
    """Ctrl-C (KeyboardInterrupt) in a new run after its first checkpoint: continue it with --resume; in an
    --overwrite before the new run's first checkpoint: the old run is there as it was. Exit 130 both times."""
    import snn_msi.training.trainer as trainer_mod

    real = trainer_mod.Trainer.train_epoch

    def interrupted_at(stop_epoch):
        def train_epoch(self, epoch, plan):
            if epoch == stop_epoch:
                raise KeyboardInterrupt
            return real(self, epoch, plan)

        return train_epoch

    out = tmp_path / "run"
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", interrupted_at(1))
    code, _, err = _cli(capsys, "train", *RUN, "--out", out)
    assert code == 130 and f"continue it with snn-msi train --resume {out}" in _one_line(err, "interrupted")
    old = shutil.copytree(ref, tmp_path / "old")
    before = _files(old)
    monkeypatch.setattr(trainer_mod.Trainer, "train_epoch", interrupted_at(0))
    code, _, err = _cli(capsys, "train", *RUN, "--out", old, "--overwrite", "--seed", "3")
    assert code == 130 and "holds the old run as it was" in _one_line(err, "interrupted")
    assert _files(old) == before


def _file_writers() -> list[str]:
    """The commands that write one file named by a positional OUT (and take --overwrite for it)."""
    sub = next(a for a in build_parser()._actions if a.__class__.__name__ == "_SubParsersAction")
    return sorted(
        name
        for name, p in sub.choices.items()
        if "out" in {a.dest for a in p._actions if not a.option_strings} and "--overwrite" in p._option_string_actions
    )


@pytest.mark.parametrize("writer", _file_writers())
def test_16_a_file_writer_replaces_a_file_only_when_told_and_never_a_runs(writer, ref, tmp_path, capsys):
    """An existing OUT without --overwrite, and a run's checkpoint even with it: one line, exit 2, the file as
    it was; with --overwrite an existing file of the user's is replaced."""
    if writer == "export-nir":
        pytest.importorskip("nir")
    source = {"build-h5": [make_ks_tree(tmp_path / "ks")], "export-nir": [ref / "best.pt"]}
    assert writer in source, f"{writer} writes a file OUT: add its input to this test"
    run = shutil.copytree(ref, tmp_path / "run")
    mine = tmp_path / "mine.out"
    mine.write_text("mine")
    for out, extra, words in ((mine, [], "exists; pass --overwrite"), (run / "best.pt", ["--overwrite"], "run")):
        before = out.read_bytes()
        code, _, err = _cli(capsys, writer, *source[writer], out, *extra)
        assert code == 2 and words in _one_line(err, str(out)) and out.read_bytes() == before
    code, _, err = _cli(capsys, writer, *source[writer], mine, "--overwrite")
    assert code == 0 and mine.read_bytes() != b"mine", err


def test_17_a_study_pointed_at_other_data_does_not_reuse_the_old_datas_runs(tmp_path, capsys):
    """data.root is a placement key (a moved copy reuses its runs); a finished run on other classes or clips is
    not reused: one line naming the difference, and --overwrite trains it again on the new data."""
    from .trees import make_learnable_folder_tree

    first = make_learnable_folder_tree(tmp_path / "first", per_class=6, labels=("red", "green"))
    other = make_learnable_folder_tree(tmp_path / "other", per_class=6, labels=("red", "green", "blue"))
    tiny = ["--epochs", "1", "--set", "model.widths=[4]", "--set", "model.blocks=[1]", "--set", "model.T=2"]
    study = ["study", "methods", "--methods", "normal", "--no-iemf", "--seeds", "1", "--dataset", "folder", *tiny]
    study += ["--jobs", "1", "--quiet", "--out", tmp_path / "s"]
    assert _cli(capsys, *study, "--data-root", first)[0] == 0
    before = _files(tmp_path / "s" / "normal" / "s0")
    code, out, err = _cli(capsys, *study, "--data-root", first, "--epochs", "2")  # refused before any worker
    assert code == 2 and "1 of 1 run folders hold another config" in _one_line(err, "epochs")
    assert _files(tmp_path / "s" / "normal" / "s0") == before
    moved = shutil.copytree(first, tmp_path / "moved")
    code, out, err = _cli(capsys, *study, "--data-root", moved)
    assert code == 0 and "1 reused" in out + err
    code, out, err = _cli(capsys, *study, "--data-root", other)
    assert code == 2 and "its data: the model's classes are green, red; the data adds blue" in err, err
    code, out, err = _cli(capsys, *study, "--data-root", other, "--overwrite")
    assert code == 0 and load_checkpoint(tmp_path / "s" / "normal" / "s0")["data"]["classes"] == [
        "blue",
        "green",
        "red",
    ]
