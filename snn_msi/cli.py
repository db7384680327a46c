"""The ``snn-msi`` command line: train, evaluate, energy, neurons, datasets, prepare, build-h5, study.

Every subcommand has ``--help``; bad arguments are named in the error and the exit code is non-zero.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import torch


def _cmd_neurons(args: argparse.Namespace) -> int:
    import neurons

    if not args.demo:
        width = max(map(len, neurons.available()))
        for name, desc in neurons.available().items():
            print(f"{name:<{width}}  {desc}")
        return 0
    from .plots import spike_raster

    # a fixed input: 40 neurons with drive ramping from 0 to 2 thresholds, 100 steps
    steps, n = 100, 40
    x = torch.linspace(0.0, 2.0, n).expand(steps, n).contiguous()
    rows, rasters = [], {}
    for name in neurons.available():
        kind = neurons.info(name).kind
        neuron = neurons.create(name, step_mode="m")
        with torch.no_grad():
            out = neuron(x)
        rows.append((name, kind, out.float().mean().item()))
        if kind != "analogue":
            rasters[name] = out
    print(f"{'neuron':<20} {'kind':<20} {'firing rate':>11}   (ramp input 0..2, {steps} steps, {n} neurons)")
    for name, kind, rate in rows:
        label = f"{rate:11.3f}" if kind != "analogue" else f"{'(analogue)':>11}"
        print(f"{name:<20} {kind:<20} {label}")
    path = spike_raster(rasters, Path(args.out) / "neuron_raster.png", "registered neurons, ramp input")
    print(f"raster plot: {path}")
    return 0


DATASETS = {
    "digits-av": "embedded: sklearn handwritten digits + espeak-ng spoken digits (50 voices); nothing to download",
    "kinetics-sounds": "31 classes, ~14.7k/2.6k clips; download Kinetics-400 clips of the KS classes, then "
    "`snn-msi prepare VIDEO_DIR OUT_ROOT` (layout: my_train.txt, train/video/<label>/<clip>/frame_i.jpg, ...)",
    "cremad": "6 emotions, 7,442 clips; from the CREMA-D repository: AudioWAV/, Image-01-FPS/<clip>/, train.csv, "
    "test.csv (clip,emotion)",
    "urbansound8k-av": "10 classes, 8,732 clips; UrbanSound8K (audio/fold*/, metadata/UrbanSound8K.csv) plus "
    "images/<class>/*.jpg of the same classes",
    "h5": "a cache of any of the above made by `snn-msi build-h5` (--data-root points at the .h5 file)",
}


def _cmd_datasets(args) -> int:
    for name, desc in DATASETS.items():
        print(f"{name:<16} {desc}")
    return 0


def _train_config(args):
    from .training import TrainConfig, demo_config

    cfg = TrainConfig.load(args.config) if args.config else (demo_config() if args.demo else TrainConfig())
    d = cfg.to_dict()
    for key in ("epochs", "batch_size", "lr", "optimizer", "method", "seed", "device", "out"):
        if getattr(args, key, None) is not None:
            d[key] = getattr(args, key)
    if args.iemf:
        d["iemf"] = True
    if args.neuron:
        d["model"]["neuron"] = args.neuron
    if args.T:
        d["model"]["T"] = args.T
    if args.fusion:
        d["model"]["fusion"] = args.fusion
    for key, dest in (("dataset", "dataset"), ("data_root", "root"), ("preset", "preset"),
                      ("audio_snr", "audio_snr_db"), ("image_snr", "image_snr_db")):  # fmt: skip
        if getattr(args, key, None) is not None:
            d["data"][dest] = getattr(args, key)
    return TrainConfig.from_dict(d)


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    from .models.fusion import FUSIONS
    from .training.policies import METHODS

    p.add_argument("--config", help="YAML config (as saved next to every run)")
    p.add_argument("--demo", action="store_true", help="the small digits-av default instead of the paper's config")
    p.add_argument("--dataset", choices=list(DATASETS))
    p.add_argument("--data-root", help="data set root (seed layout) or .h5 cache")
    p.add_argument("--preset", choices=["clean", "hard", "harder"], help="digits-av noise preset")
    p.add_argument("--audio-snr", type=float, help="audio SNR in dB (digits-av)")
    p.add_argument("--image-snr", type=float, help="image SNR in dB (digits-av)")
    p.add_argument("--method", choices=METHODS)
    p.add_argument("--iemf", action="store_true", help="add IEMF on top of --method")
    p.add_argument("--neuron", help="any registry name (see `snn-msi neurons`)")
    p.add_argument("--T", type=int, help="time steps")
    p.add_argument("--fusion", choices=sorted(FUSIONS))
    p.add_argument("--epochs", type=int)
    p.add_argument("--batch-size", type=int)
    p.add_argument("--lr", type=float)
    p.add_argument("--optimizer", choices=["sgd", "adam"])
    p.add_argument("--seed", type=int)
    p.add_argument("--device", choices=["auto", "cpu", "cuda"])
    p.add_argument("--out", help="run folder (config, checkpoints, logs, plots)")
    p.add_argument("--resume", action="store_true", help="continue the run in --out from its last.pt")


def _cmd_train(args) -> int:
    import neurons

    from .training import Trainer

    cfg = _train_config(args)
    if cfg.model.neuron not in neurons.available():
        neurons.info(cfg.model.neuron)  # raises with the valid names
    result = Trainer(cfg, resume=args.resume).fit()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in result.items()}, indent=1))
    return 0


def _cmd_evaluate(args) -> int:
    from .data import build_datasets
    from .training import Trainer, load_model

    model, cfg = load_model(args.checkpoint, "cpu")
    if args.data_root:
        cfg.data.root = args.data_root
    sets = build_datasets(cfg.data, cfg.seed)
    split = {"train": 0, "val": 1, "test": 2}[args.split]
    trainer = Trainer(cfg, datasets=sets, model=model, progress=False)
    print(json.dumps(trainer.evaluate(sets[split], args.split), indent=1))
    return 0


def _cmd_energy(args) -> int:
    from .metrics.energy import energy_report_for_checkpoint

    energy_report_for_checkpoint(args.checkpoint, args.out, args.samples, args.precision, args.e_mac, args.e_ac)
    return 0


def _cmd_prepare(args) -> int:
    from .data.prepare import prepare

    report = prepare(args.video_dir, args.out_root, n_frames=args.frames, workers=args.workers)
    print(f"done {report['done']}, skipped (already there) {report['skipped']}, failed {len(report['failed'])}")
    for clip, why in list(report["failed"].items())[:20]:
        print(f"  {clip}: {why}")
    return 0 if report["done"] + report["skipped"] > 0 else 1


def _cmd_build_h5(args) -> int:
    from .data import CremaD, KineticsSounds
    from .data.h5 import build_h5

    cls = {"kinetics-sounds": KineticsSounds, "cremad": CremaD}[args.dataset]
    kw = dict(val_fraction=args.val_fraction, train=False, report_dir=Path(args.out).parent)
    splits = {s: cls(args.root, split=s, **kw) for s in ("train", "val", "test")}
    path = build_h5(splits, args.out, frame_size=args.frame_size)
    print(f"wrote {path} ({sum(map(len, splits.values()))} clips)")
    return 0


def _cmd_study(args) -> int:
    from .study import StudyConfig, run_study

    cfg = StudyConfig(
        levels=[tuple(map(float, lv.split(","))) for lv in args.levels] if args.levels else StudyConfig().levels,
        seeds=args.seeds,
        epochs=args.epochs,
        workers=args.workers,
        out=args.out,
        dataset=args.dataset,
        data_root=args.data_root,
    )
    run_study(cfg)
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="snn-msi", description=__doc__)
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    q = sub.add_parser("neurons", help="list the neuron registry (or --demo: rates table + raster plot)")
    q.add_argument("--demo", action="store_true", help="run every neuron on a fixed ramp input")
    q.add_argument("--out", default="runs/neurons", help="folder for the raster PNG")
    q.set_defaults(func=_cmd_neurons)

    q = sub.add_parser("datasets", help="the data sets snn-msi knows and how to get them")
    q.set_defaults(func=_cmd_datasets)

    q = sub.add_parser("train", help="train a model (paper's config by default; --demo for digits-av)")
    add_train_arguments(q)
    q.set_defaults(func=_cmd_train)

    q = sub.add_parser("evaluate", help="accuracy of a checkpoint on a split")
    q.add_argument("checkpoint")
    q.add_argument("--split", choices=["train", "val", "test"], default="test")
    q.add_argument("--data-root")
    q.set_defaults(func=_cmd_evaluate)

    q = sub.add_parser("energy", help="firing rates, SOPs and energy of a checkpoint (table + CSV/JSON)")
    q.add_argument("checkpoint")
    q.add_argument("--out", default=None, help="folder for energy.csv / energy.json / plots (default: beside it)")
    q.add_argument("--samples", type=int, default=64, help="test samples to measure firing rates on")
    q.add_argument("--precision", choices=["fp32", "fp16", "int8"], default="fp32")
    q.add_argument("--e-mac", type=float, help="pJ per MAC (overrides the table)")
    q.add_argument("--e-ac", type=float, help="pJ per accumulate (overrides the table)")
    q.set_defaults(func=_cmd_energy)

    q = sub.add_parser("prepare", help="videos <label>/<clip>.mp4 -> the Kinetics-Sounds seed layout (PyAV)")
    q.add_argument("video_dir")
    q.add_argument("out_root")
    q.add_argument("--frames", type=int, default=10)
    q.add_argument("--workers", type=int, default=None)
    q.set_defaults(func=_cmd_prepare)

    q = sub.add_parser("build-h5", help="precompute spectrograms and frames into one HDF5 file")
    q.add_argument("root")
    q.add_argument("out")
    q.add_argument("--dataset", choices=["kinetics-sounds", "cremad"], default="kinetics-sounds")
    q.add_argument("--frame-size", type=int, default=256, help="stored frame side (>= training size)")
    q.add_argument("--val-fraction", type=float, default=0.1)
    q.set_defaults(func=_cmd_build_h5)

    q = sub.add_parser("study", help="the inverse-effectiveness study (noise levels x methods x seeds)")
    q.add_argument("kind", choices=["inverse-effectiveness"])
    q.add_argument("--levels", nargs="+", help="'AUDIO_DB,IMAGE_DB' pairs, weakest last (default: 4 levels)")
    q.add_argument("--seeds", type=int, default=5)
    q.add_argument("--epochs", type=int, default=6)
    q.add_argument("--workers", type=int, default=2, help="runs in parallel")
    q.add_argument("--dataset", default="digits-av")
    q.add_argument("--data-root")
    q.add_argument("--out", default="runs/study")
    q.set_defaults(func=_cmd_study)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except (ValueError, FileNotFoundError) as err:
        print(f"snn-msi {args.command}: error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
