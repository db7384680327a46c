"""Bring your own audio-visual data: videos -> `snn-msi prepare` -> (optionally `snn-msi build-h5`) -> train.

Three ways in, from the least to the most preparation:

1. A folder of labelled clips, read as is (`--dataset folder`): `root/<label>/<clip>.wav` with its frames in
   `root/<label>/<clip>/*.jpg` (or one `root/<label>/<clip>.jpg`); optionally split by you into `root/train/...`
   and `root/test/...`.
2. A folder of videos `videos/<label>/<clip>.mp4`: `snn-msi prepare videos DATA` extracts a mono wav and N frames
   per clip into the Kinetics-Sounds layout (`DATA/{train,test}/audio/<label>/<clip>.wav`,
   `DATA/{train,test}/video/<label>/<clip>/frame_i.jpg`, `my_train.txt` / `my_test.txt`); it is parallel,
   resumable and reports the clips it could not read. Train on it with `--dataset kinetics-sounds`.
3. `snn-msi build-h5 DATA DATA.h5` caches spectrograms and frames in one HDF5 file (`--dataset h5`): no decoding
   while training.

Every loader checks each clip when it indexes the data set and reports the bad ones instead of crashing. Here a
few synthetic videos stand in for yours (two classes: a bright flickering frame with a low tone, a dark one with
a high tone), so that the tutorial runs anywhere in seconds.
"""

import json
from pathlib import Path

import av  # PyAV: pip install 'snn-msi[data]'
import numpy as np

from snn_msi.cli import main

work = Path("runs/tutorials/own_data")
videos, data = work / "videos", work / "data"


def write_video(path: Path, brightness: int, tone_hz: float, seed: int, seconds: float = 1.0, fps: int = 12) -> None:
    """A tiny mp4 (32 x 24 px, `fps` frames a second) with a mono AAC sine tone: a stand-in for a real clip."""
    rng = np.random.default_rng(seed)
    path.parent.mkdir(parents=True, exist_ok=True)
    with av.open(str(path), "w") as out:
        video = out.add_stream("mpeg4", rate=fps)
        video.width, video.height, video.pix_fmt = 32, 24, "yuv420p"
        audio = out.add_stream("aac", rate=16000)
        audio.layout = "mono"
        for i in range(int(seconds * fps)):
            level = np.clip(brightness + 30 * np.sin(i) + rng.normal(0, 10, (24, 32, 3)), 0, 255)
            for packet in video.encode(av.VideoFrame.from_ndarray(level.astype(np.uint8), format="rgb24")):
                out.mux(packet)
        for packet in video.encode():
            out.mux(packet)
        t = np.arange(int(16000 * seconds)) / 16000
        wave = 0.3 * np.sin(2 * np.pi * tone_hz * t) + 0.02 * rng.standard_normal(t.size)
        frame = av.AudioFrame.from_ndarray(wave.astype(np.float32).reshape(1, -1), format="flt", layout="mono")
        frame.sample_rate = 16000
        for packet in [*audio.encode(frame), *audio.encode()]:
            out.mux(packet)


for k in range(5):
    write_video(videos / "low_bright" / f"lb{k}.mp4", brightness=200, tone_hz=300, seed=k)
    write_video(videos / "high_dark" / f"hd{k}.mp4", brightness=40, tone_hz=1200, seed=10 + k)

# 1. videos -> the Kinetics-Sounds seed layout (4 frames per clip; 20 % of the clips become the test split)
assert main(["prepare", str(videos), str(data), "--frames", "4", "--workers", "1"]) == 0
print(sorted(p.relative_to(data).as_posix() for p in data.glob("*/*/*")))

# 2. cache it in one HDF5 file (spectrograms and frames), then train on the cache. Training on the prepared folder
#    itself is the same command with `--dataset kinetics-sounds --data-root DATA`. The settings are tiny (a small
#    network, 16 x 16 frames, one epoch); without them you get the paper's network (`snn-msi train --help`).
assert main(["build-h5", str(data), str(work / "data.h5"), "--frame-size", "24"]) == 0
TINY = [
    "--epochs",
    "1",
    "--batch-size",
    "4",
    "--quiet",
    "--overwrite",
    "--T",
    "2",
    "--set",
    "data.image_size=16",
    "--set",
    "model.widths=[8]",
    "--set",
    "model.blocks=[1]",
    "--set",
    "model.stem=small",
    "--set",
    "model.stem_stride=4",
    "--set",
    "data.val_fraction=0.2",
]
assert main(["train", "--dataset", "h5", "--data-root", str(work / "data.h5"), *TINY, "--out", str(work / "run")]) == 0
print("test accuracy:", json.loads((work / "run" / "results.json").read_text())["test_acc"])
