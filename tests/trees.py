"""Tiny data-set trees on disk, in every layout the loaders read (shared by the data and CLI tests)."""

from pathlib import Path

import numpy as np
import soundfile as sf
from PIL import Image

SR = 22050


def _wav(path: Path, seconds=0.5, silent=False, seed=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    data = np.zeros(int(SR * seconds), np.float32) if silent else (0.3 * rng.standard_normal(int(SR * seconds)))
    sf.write(path, data.astype(np.float32), SR)


def _jpgs(folder: Path, n: int, seed=0, size=(40, 32), name=None):
    """``n`` random jpgs ``frame_i.jpg`` in ``folder`` (or one ``<name>.jpg`` when ``name`` is given)."""
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(n):
        img = Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8))
        img.save(folder / (f"{name}.jpg" if name else f"frame_{i}.jpg"))


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


def make_cremad_tree(root: Path, layout: str = "bim-ml") -> Path:
    """Two clips per emotion for train and one for test, in the IEMF tree or the OGM-GE CSV layout."""
    emotions = ["ANG", "HAP", "SAD"]
    rows = {"train": [], "test": []}
    for split, n in (("train", 3), ("test", 1)):
        for e, emo in enumerate(emotions):
            for k in range(n):
                clip = f"10{e}{k}_{split[:2]}_{emo}_XX"
                if layout == "bim-ml":
                    _wav(root / split / "audio" / emo / f"{clip}.wav", seed=e * 10 + k)
                    _jpgs(root / split / "visual" / emo, 1, seed=k, name=clip)
                else:
                    _wav(root / "AudioWAV" / f"{clip}.wav", seed=e * 10 + k)
                    _jpgs(root / "Image-01-FPS" / clip, 2, seed=k)
                rows[split].append(f"{clip},{emo}")
    if layout != "bim-ml":
        for split, lines in rows.items():
            (root / f"{split}.csv").write_text("\n".join(lines) + "\n")
    return root


def make_urbansound_tree(root: Path, layout: str = "bim-ml") -> Path:
    """UrbanSound8K-AV: the IEMF tree (10 clips of 2 classes, split 70/30) or UrbanSound8K's own layout."""
    classes = ["dog_bark", "siren"]
    if layout == "bim-ml":
        for c, cls in enumerate(classes):
            for k in range(5):
                _wav(root / "Dataset_v3_sound" / cls / f"{c}-{k}.wav", seed=c * 10 + k)
                _jpgs(root / "Dataset_v3_vision" / cls, 1, seed=k, name=f"{c}-{k}")
        return root
    (root / "metadata").mkdir(parents=True)
    rows = ["slice_file_name,fsID,start,end,salience,fold,classID,class"]
    for i in range(8):
        cls, cid, fold = classes[i % 2], (3, 8)[i % 2], (1, 2, 10, 3)[i % 4]
        name = f"{i}-0-0-{i}.wav"
        _wav(root / "audio" / f"fold{fold}" / name, seed=i)
        rows.append(f"{name},{i},0,1,1,{fold},{cid},{cls}")
    for cls in classes:
        _jpgs(root / "images" / cls, 3)
    (root / "metadata" / "UrbanSound8K.csv").write_text("\n".join(rows) + "\n")
    return root


def make_folder_tree(root: Path, presplit: bool = False) -> Path:
    """root/<label>/<clip>.wav + frames, 5 clips per label (or under train/ and test/)."""
    for label in ("cat", "dog"):
        for k in range(5):
            base = root / ("test" if presplit and k == 4 else "train") if presplit else root
            _wav(base / label / f"c{k}.wav", seed=k)
            _jpgs(base / label / f"c{k}", 2, seed=k)
    return root


def make_learnable_folder_tree(root: Path, per_class: int = 20, labels=("red", "green", "blue")) -> Path:
    """A folder tree both modalities can learn: class ``c`` is a tone of ``(c + 1) * 660`` Hz in noise and RGB frames
    tinted towards its colour channel, noisy; ``per_class`` clips per class, 2 frames of 32 x 32 each."""
    t = np.arange(int(SR * 0.5)) / SR
    for c, label in enumerate(labels):
        for k in range(per_class):
            rng = np.random.default_rng(1000 * c + k)
            tone = 0.3 * np.sin(2 * np.pi * (c + 1) * 660 * t) + 0.1 * rng.standard_normal(len(t))
            (root / label).mkdir(parents=True, exist_ok=True)
            sf.write(root / label / f"clip{k}.wav", tone.astype(np.float32), SR)
            for i in range(2):
                img = rng.integers(0, 140, (32, 32, 3))
                img[..., c % 3] += 110
                (root / label / f"clip{k}").mkdir(exist_ok=True)
                Image.fromarray(img.astype(np.uint8)).save(root / label / f"clip{k}" / f"frame_{i}.jpg")
    return root


def make_h5(root: Path) -> Path:
    """An HDF5 cache (with waveforms) of a tiny Kinetics-Sounds tree."""
    from snn_msi.data import DataConfig, build_datasets
    from snn_msi.data.h5 import build_h5

    ks = make_ks_tree(root / "ks")
    sets = build_datasets(DataConfig(dataset="kinetics-sounds", root=str(ks), image_size=16), 0)
    for ds in sets:
        ds.train = False
    return build_h5(
        dict(zip(("train", "val", "test"), sets, strict=True)),
        root / "ks.h5",
        frame_size=24,
        progress=False,
        waveforms=True,
    )


DATA_TREES = {
    "digits-av": lambda root: None,
    "kinetics-sounds": make_ks_tree,
    "cremad": make_cremad_tree,
    "urbansound8k-av": make_urbansound_tree,
    "folder": make_folder_tree,
    "h5": make_h5,
}
