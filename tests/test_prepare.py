import json

import numpy as np
import pytest

from snn_msi.data import KineticsSounds
from snn_msi.data.prepare import prepare

av = pytest.importorskip("av", reason="PyAV not installed (pip install av)")


def _encode(path, seconds=1.0, fps=12, audio=True):
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        vs = out.add_stream("mpeg4", rate=fps)
        vs.width, vs.height, vs.pix_fmt = 32, 24, "yuv420p"
        as_ = out.add_stream("aac", rate=16000) if audio else None
        if as_ is not None:
            as_.layout = "mono"
        n = int(seconds * fps)
        for i in range(n):
            img = np.full((24, 32, 3), (i * 20) % 255, np.uint8)
            for p in vs.encode(av.VideoFrame.from_ndarray(img, format="rgb24")):
                out.mux(p)
        for p in vs.encode():
            out.mux(p)
        if as_ is not None:
            t = np.arange(int(16000 * seconds)) / 16000
            samples = (0.3 * np.sin(2 * np.pi * 440 * t)).astype(np.float32).reshape(1, -1)
            frame = av.AudioFrame.from_ndarray(samples, format="flt", layout="mono")
            frame.sample_rate = 16000
            for p in as_.encode(frame):
                out.mux(p)
            for p in as_.encode():
                out.mux(p)


def test_prepare_makes_the_seed_layout(tmp_path):
    src = tmp_path / "videos"
    for label in ("cat", "dog"):
        for k in range(3):
            _encode(src / label / f"{label}{k}.mp4")
    _encode(src / "cat" / "silent_film.mp4", audio=False)
    (src / "dog" / "broken.mp4").write_bytes(b"not a video")
    _encode(src / "dog" / "short.mp4", seconds=0.3)  # 3 frames < 10
    out = tmp_path / "ks"
    report = prepare(src, out, n_frames=10, workers=2, progress=False)
    assert report["done"] == 6 and report["skipped"] == 0
    assert report["failed"]["silent_film"] == "no audio stream"
    assert report["failed"]["broken"].startswith("unreadable")
    assert report["failed"]["short"].startswith("too short")
    assert json.loads((out / "prepare_report.json").read_text())["done"] == 6
    lines = (out / "my_train.txt").read_text().split() + (out / "my_test.txt").read_text().split()
    assert len(lines) == 6 and all(line.endswith((",0", ",1")) for line in lines)
    ds = KineticsSounds(out, "train", val_fraction=0.0, image_size=16, audio_seconds=0.5)
    assert ds.classes == ["cat", "dog"] and len(ds) + len((out / "my_test.txt").read_text().split()) == 6
    assert ds[0].frames.shape == (3, 3, 16, 16)
    again = prepare(src, out, n_frames=10, workers=1, progress=False)  # resumable: finished clips skipped
    assert again["skipped"] == 6 and again["done"] == 0
