import json

import pytest
import torch

from snn_msi.data import AudioVisualFolder, CremaD, DigitsAV, KineticsSounds, UrbanSound8KAV
from snn_msi.data.h5 import H5Dataset, build_h5

from .trees import _jpgs, _wav, make_ks_tree

SMALL = dict(image_size=16, audio_seconds=0.5)


def test_kinetics_layout_classes_counts_and_report(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    ds = KineticsSounds(root, "train", val_fraction=0.0, report_dir=tmp_path / "rep", **SMALL)
    assert ds.classes == ["drumming", "laughing", "singing"]
    assert len(ds) == 12
    assert ds.bad.problems == {
        "missing wav": ["dru_missing_wav"],
        "unreadable wav": ["dru_bad_wav"],
        "silent wav": ["lau_silent"],
        "too few frames": ["lau_two_frames"],
        "unreadable jpg": ["sin_bad_jpg"],
        "label disagrees with folder": ["sin_mislabel"],
        "label not in class list": ["ghost"],
    }
    report = json.loads((tmp_path / "rep" / "bad_clips_kinetics_sounds_train.json").read_text())
    assert report["count"] == 7
    s = ds[0]
    assert s.audio.shape == (1, 257, 32) and s.frames.shape == (3, 3, 16, 16)
    assert s.label == 0 and s.clip_id == "dru_train_0"
    assert [ds[i].label for i in range(len(ds))] == sorted(ds.targets)
    with pytest.raises(ValueError, match="7 bad clip"):
        KineticsSounds(root, "train", val_fraction=0.0, on_error="raise", **SMALL)


def test_kinetics_without_list_files_and_val_split(tmp_path):
    root = make_ks_tree(tmp_path / "ks", with_lists=False)
    ds = KineticsSounds(root, "test", **SMALL)
    assert len(ds) == 6 and ds.classes == ["drumming", "laughing", "singing"]
    train = KineticsSounds(root, "train", val_fraction=0.25, seed=3, **SMALL)
    val = KineticsSounds(root, "val", val_fraction=0.25, seed=3, **SMALL)
    ids_t, ids_v = {r.clip_id for r in train.records}, {r.clip_id for r in val.records}
    assert not ids_t & ids_v and len(ids_v) == 3 and sorted(val.targets) == [0, 1, 2]
    again = KineticsSounds(root, "val", val_fraction=0.25, seed=3, **SMALL)
    assert [r.clip_id for r in again.records] == [r.clip_id for r in val.records]


def test_missing_root_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        KineticsSounds(tmp_path / "nowhere", "train")
    (tmp_path / "ks").mkdir()
    with pytest.raises(FileNotFoundError, match="train split"):
        KineticsSounds(tmp_path / "ks", "train")
    with pytest.raises(ValueError, match="split must be"):
        KineticsSounds(tmp_path / "ks", "dev")


def test_cremad_layout(tmp_path):
    root = tmp_path / "crema"
    rows = ["1001_DFA_ANG_XX,ANG", "1001_DFA_HAP_XX,HAP", "1002_IEO_SAD_HI,SAD", "1003_X,BOR"]
    for r in rows[:3]:
        clip = r.split(",")[0]
        _wav(root / "AudioWAV" / f"{clip}.wav")
        _jpgs(root / "Image-01-FPS" / clip, 2)
    (root / "train.csv").write_text("\n".join(rows) + "\n")
    ds = CremaD(root, "train", val_fraction=0.0, **SMALL)
    assert len(ds) == 3 and sorted(ds.targets) == [1, 2, 5]
    assert ds.bad.problems == {"label not in class list": ["1003_X"]}
    assert ds[0].frames.shape == (1, 3, 16, 16)


def test_urbansound_layout(tmp_path):
    root = tmp_path / "us8k"
    (root / "metadata").mkdir(parents=True)
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for i, (cls, cid, fold) in enumerate([("dog_bark", 3, 1), ("siren", 8, 1), ("dog_bark", 3, 10), ("siren", 8, 2)]):
        name = f"{i}-0-0-{i}.wav"
        _wav(root / "audio" / f"fold{fold}" / name)
        rows.append(f"{name},{i},0,1,1,{fold},{cid},{cls}")
    for cls in ("dog_bark", "siren"):
        _jpgs(root / "images" / cls, 3)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    train = UrbanSound8KAV(root, "train", val_fraction=0.0, **SMALL)
    test = UrbanSound8KAV(root, "test", **SMALL)
    assert len(train) == 3 and len(test) == 1
    assert train.classes == ["dog_bark", "siren"] and test.targets == [0] and sorted(train.targets) == [0, 1, 1]


def test_generic_folder(tmp_path):
    for label in ("a", "b"):
        _wav(tmp_path / label / "c1.wav")
        _jpgs(tmp_path / label / "c1", 3)
    ds = AudioVisualFolder(tmp_path, **SMALL)
    assert ds.classes == ["a", "b"] and len(ds) == 2


def test_folder_reads_what_users_keep(tmp_path):
    """Extensions in any case, frames as .png, hidden and tool folders beside the classes."""
    for label in ("a", "b"):
        _wav(tmp_path / label / "c1.WAV")
        _jpgs(tmp_path / label / "c2", 3)
        _wav(tmp_path / label / "c2.wav")
        for i, f in enumerate(sorted((tmp_path / label / "c2").iterdir())):
            f.rename(f.with_name(f"frame_{i}.PNG"))
        _jpgs(tmp_path / label, 1, name="c1")
        (tmp_path / label / "c1.jpg").rename(tmp_path / label / "c1.Jpg")
    _wav(tmp_path / ".ipynb_checkpoints" / "x.wav")
    (tmp_path / "__MACOSX" / "a").mkdir(parents=True)
    train, test = (
        AudioVisualFolder(tmp_path, split=s, val_fraction=0.0, test_fraction=0.5, **SMALL) for s in ("train", "test")
    )
    assert train.classes == ["a", "b"] and len(train) + len(test) == 4 and not train.bad.count
    assert {len(r.frames) for r in train.records + test.records} == {1, 3}


def test_folder_refuses_trees_it_would_misread(tmp_path):
    """An empty label folder (an extra class never seen), a test class that train/ lacks, train/ without test/:
    each is an error naming the folder, not a silently different data set."""
    for label in ("a", "b"):
        _wav(tmp_path / "one" / label / "c1.wav")
        _jpgs(tmp_path / "one" / label / "c1", 2)
    (tmp_path / "one" / "empty").mkdir()
    (tmp_path / "one" / "empty" / "c1.mp3").write_bytes(b"x")
    with pytest.raises(ValueError, match=r"empty \(1 \.mp3\)"):
        AudioVisualFolder(tmp_path / "one", **SMALL)
    for split, label in (("train", "a"), ("train", "b"), ("test", "a"), ("test", "c")):
        _wav(tmp_path / "two" / split / label / "c1.wav")
        _jpgs(tmp_path / "two" / split / label / "c1", 2)
    assert len(AudioVisualFolder(tmp_path / "two", split="train", val_fraction=0.0, **SMALL)) == 2
    with pytest.raises(ValueError, match=r"two/test/c: not a class"):
        AudioVisualFolder(tmp_path / "two", split="test", **SMALL)
    (tmp_path / "two" / "test").rename(tmp_path / "two" / "held_out")
    with pytest.raises(ValueError, match=r"two/train has no test/"):
        AudioVisualFolder(tmp_path / "two", **SMALL)


def test_h5_cache_returns_the_same_tensors(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    splits = {s: KineticsSounds(root, s, val_fraction=0.25, train=False, **SMALL) for s in ("train", "val", "test")}
    path = build_h5(splits, tmp_path / "ks.h5", progress=False)
    for split, files in splits.items():
        h5 = H5Dataset(path, split, train=False, image_size=16)
        assert len(h5) == len(files) and h5.classes == files.classes
        for i in (0, len(files) - 1):
            a, b = files[i], h5[i]
            assert a.label == b.label and a.clip_id == b.clip_id
            torch.testing.assert_close(b.audio, a.audio, atol=2e-2, rtol=2e-3)  # stored as float16
            torch.testing.assert_close(b.frames, a.frames)
    with pytest.raises(ValueError, match="no split"):
        H5Dataset(path, "dev")
    loader = torch.utils.data.DataLoader(H5Dataset(path, "train", image_size=16), batch_size=4, num_workers=2)
    assert sum(len(b.label) for b in loader) == len(splits["train"])


def test_digits_av_splits_pairing_and_noise():
    sets = {s: DigitsAV(s, preset="hard") for s in ("train", "val", "test")}
    assert sum(len(d) for d in sets.values()) == 1797
    for d in sets.values():
        assert sorted(set(d.targets)) == list(range(10))
    s = sets["test"][5]
    assert s.audio.shape == (1, 40, 32) and s.frames.shape == (1, 1, 16, 16)
    # evaluation noise is fixed per sample (a fresh instance at another epoch makes the same sample, which the
    # data set keeps after its first use); training noise changes with the epoch
    fresh = DigitsAV("test", preset="hard")
    fresh.set_epoch(7)
    assert torch.equal(fresh[5].audio, s.audio) and torch.equal(fresh[5].frames, s.frames)
    tr = sets["train"]
    tr.set_epoch(0)
    a0 = tr[3].audio
    tr.set_epoch(1)
    assert not torch.equal(a0, tr[3].audio)
    tr.set_epoch(0)
    assert torch.equal(a0, tr[3].audio)
    clean = DigitsAV("test", preset="clean")
    assert not torch.equal(clean[5].frames, s.frames)
    with pytest.raises(ValueError, match="preset"):
        DigitsAV("train", preset="noisy")


def test_a_data_root_for_an_embedded_data_set_is_refused(capsys):
    """``--data-root`` with digits-av (embedded, reads no folder) was ignored without a word: a user believed their
    folder was read. Every data set that needs no root refuses one."""
    from snn_msi.cli import main
    from snn_msi.data import DATASETS, DataConfig
    from snn_msi.schema import ConfigError

    embedded = [n for n in DATASETS.names() if not DATASETS.get(n).needs_root]
    assert embedded
    for name in embedded:
        with pytest.raises(ConfigError, match=f"--data-root /somewhere: {name} is embedded and reads no folder"):
            DataConfig(dataset=name).with_root("/somewhere")
        DataConfig.from_dict({"dataset": name, "root": "/saved/by/an/older/version"})  # a saved config still loads
    assert main(["train", "--demo", "--data-root", "/nonexistent", "--epochs", "1"]) == 2
    assert "--data-root /nonexistent: digits-av is embedded" in capsys.readouterr().err
