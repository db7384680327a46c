"""Make the spoken-digit clips of the embedded ``digits-av`` data set (run once; the output is committed).

Each clip is espeak-ng (Debian package ``espeak-ng``) saying one English digit word, "zero" .. "nine", with one
of 50 synthetic voices: 7 English accents (en-us, en-gb, en-gb-scotland, en-gb-x-rp, en-gb-x-gbclan,
en-gb-x-gbcwmd, en-029) x espeak voice variants (male m1-m7, female f1-f4, ...) x speaking rate (130-190 words
per minute) x pitch (30-70), drawn with a fixed seed. The same 50 voices say every digit, so splits can be made
by voice. Post-processing: resample 22,050 -> 16,000 Hz, trim leading/trailing silence (below 2 % of the peak),
centre in exactly 1 s (cut if longer), peak-normalise to 0.9, write 16-bit mono FLAC.

    python scripts/make_digits_audio.py [--out snn_msi/data/digits_av]
"""

from __future__ import annotations

import argparse
import csv
import random
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import soundfile as sf
from scipy.signal import resample_poly

WORDS = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
ACCENTS = ["en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd", "en-029"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "klatt", "klatt2", "whisper"]
N_VOICES, SR, SECONDS = 50, 16000, 1.0


def voices(seed: int = 0) -> list[dict]:
    rng = random.Random(seed)
    combos = [(a, v) for a in ACCENTS for v in VARIANTS]
    rng.shuffle(combos)
    return [
        {"voice": i, "accent": a, "variant": v, "speed": rng.randrange(130, 191, 10), "pitch": rng.randrange(30, 71, 5)}
        for i, (a, v) in enumerate(combos[:N_VOICES])
    ]


def speak(word: str, voice: dict) -> np.ndarray:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "w.wav"
        cmd = [
            "espeak-ng",
            "-v",
            f"{voice['accent']}+{voice['variant']}",
            "-s",
            str(voice["speed"]),
            "-p",
            str(voice["pitch"]),
            "-w",
            str(path),
            word,
        ]
        subprocess.run(cmd, check=True, capture_output=True)
        data, sr = sf.read(path, dtype="float32")
    data = resample_poly(data, SR, sr).astype(np.float32)
    loud = np.flatnonzero(np.abs(data) > 0.02 * np.abs(data).max())
    data = data[loud[0] : loud[-1] + 1]
    n = int(SR * SECONDS)
    if len(data) > n:
        data = data[:n]
    out = np.zeros(n, dtype=np.float32)
    start = (n - len(data)) // 2
    out[start : start + len(data)] = data
    return 0.9 * out / np.abs(out).max()


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "snn_msi" / "data" / "digits_av"))
    args = p.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    vs = voices()
    with (out / "voices.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(vs[0]))
        w.writeheader()
        w.writerows(vs)
    for digit, word in enumerate(WORDS):
        for v in vs:
            sf.write(out / f"{digit}_{v['voice']:02d}.flac", speak(word, v), SR, subtype="PCM_16")
    print(f"wrote {len(WORDS) * len(vs)} clips to {out}")


if __name__ == "__main__":
    main()
