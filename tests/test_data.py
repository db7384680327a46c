import json
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch
from PIL import Image

from snn_msi.data import AudioVisualFolder, CremaD, DigitsAV, KineticsSounds, UrbanSound8KAV
from snn_msi.data.h5 import H5Dataset, build_h5

SR = 22050


def _wav(path: Path, seconds=0.5, silent=False, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = np.zeros(int(SR * seconds), np.float32) if silent else (0.3 * rng.standard_normal(int(SR * seconds)))
    sf.write(path, data.astype(np.float32), SR)


def _jpgs(folder: Path, n: int, seed=0, size=(40, 32)):
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(folder / f"frame_{i}.jpg")


def make_ks_tree(root: Path, with_lists=True) -> Path:
    labels = ["drumming", "laughing", "singing"]
    lines = {"train": [], "test": []}
    for split, n_per in (("train", 4), ("test", 2)):
        for li, label in enumerate(labels):
            for k in range(n_per):
                clip = f"{label[:3]}_{split}_{k}"
                _wav(root / split / "audio" / label / f"{clip}.wav", seed=k + 10 * li)
                _jpgs(root / split / "video" / label / clip, 10, seed=k)
                lines[split].append(f"{clip},10,{li}")
    tr = root / "train"
    # broken clips (train split)
    (tr / "audio/drumming/dru_missing_wav.wav").parent.mkdir(parents=True, exist_ok=True)
    _jpgs(tr / "video/drumming/dru_missing_wav", 10)
    lines["train"].append("dru_missing_wav,10,0")
    _jpgs(tr / "video/drumming/dru_bad_wav", 10)
    (tr / "audio/drumming/dru_bad_wav.wav").write_bytes(b"RIFF garbage")
    lines["train"].append("dru_bad_wav,10,0")
    _jpgs(tr / "video/laughing/lau_silent", 10)
    _wav(tr / "audio/laughing/lau_silent.wav", silent=True)
    lines["train"].append("lau_silent,10,1")
    _jpgs(tr / "video/laughing/lau_two_frames", 2)
    _wav(tr / "audio/laughing/lau_two_frames.wav")
    lines["train"].append("lau_two_frames,2,1")
    _jpgs(tr / "video/singing/sin_bad_jpg", 10)
    (tr / "video/singing/sin_bad_jpg/frame_3.jpg").write_bytes(b"not a jpeg")
    _wav(tr / "audio/singing/sin_bad_jpg.wav")
    lines["train"].append("sin_bad_jpg,10,2")
    _jpgs(tr / "video/singing/sin_mislabel", 10)
    _wav(tr / "audio/singing/sin_mislabel.wav")
    lines["train"].append("sin_mislabel,10,0")  # lies in singing, list says drumming
    lines["train"].append("ghost,10,7")  # label not in class list
    if with_lists:
        for split in lines:
            (root / f"my_{split}.txt").write_text("\n".join(lines[split]) + "\n")
    return root


SMALL = dict(image_size=16, audio_seconds=0.5)


def test_kinetics_layout_classes_counts_and_report(tmp_path):
    root = make_ks_tree(tmp_path / "ks")
    ds = KineticsSounds(root, "train", val_fraction=0.0, report_dir=tmp_path / "rep", **SMALL)
    assert ds.classes == ["drumming", "laughing", "singing"]
    assert len(ds) == 12
    assert ds.bad.problems == {
        "missing wav": ["dru_missing_wav"], "unreadable wav": ["dru_bad_wav"], "silent wav": ["lau_silent"],
        "too few frames": ["lau_two_frames"], "unreadable jpg": ["sin_bad_jpg"],
        "label disagrees with folder": ["sin_mislabel"], "label not in class list": ["ghost"],
    }  # fmt: skip
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
    # evaluation noise is fixed per sample; training noise changes with the epoch
    assert torch.equal(sets["test"][5].audio, s.audio)
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
