"""The ``snn-msi`` command line: train, evaluate, neurons, methods, datasets, prepare, build-h5, and the report
commands each module of ``snn_msi.reports`` registers (energy, study, ...), all through one registry
(:mod:`snn_msi.commands`).

Every subcommand has ``--help``. A user error (a bad argument, value, file or folder) is one line on stderr naming
it, exit code 2; a run that stops on a non-finite loss exits 1; never a traceback for either.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING

import torch

from .argtypes import positive_int
from .commands import register_command
from .schema import ConfigError

if TYPE_CHECKING:
    from .training import RunResult

# -- training arguments (shared with experiments/ks_snn.py) ----------------------------------------------


def add_train_arguments(p: argparse.ArgumentParser, demo_flag: bool = True) -> None:
    """The options of ``snn-msi train`` (also used by ``experiments/ks_snn.py``)."""
    from .data import DATASETS, SNR_PRESETS
    from .models import FUSIONS
    from .training import METHODS

    g = p.add_argument_group("what to train")
    g.add_argument("--config", help="YAML config (as saved next to every run as config.yaml)")
    if demo_flag:
        g.add_argument("--demo", action="store_true", help="the small digits-av network instead of the paper's")
    g.add_argument("--dataset", choices=DATASETS.names(), help="see `snn-msi datasets`")
    g.add_argument("--data-root", help="the data set's folder (or the .h5 file for --dataset h5)")
    g.add_argument("--layout", help="folder layout where a data set has several (default: auto-detect)")
    g.add_argument("--preset", choices=list(SNR_PRESETS), help="SNR preset: clean, hard (audio -10 dB, image 0 dB), "
                   "harder (-15 / -5 dB)")  # fmt: skip
    g.add_argument("--audio-snr", type=float, help="audio SNR in dB (any data set)")
    g.add_argument("--image-snr", type=float, help="image SNR in dB (any data set)")
    g.add_argument("--num-classes", type=int, help="classes of the model (default: from the data set)")
    g = p.add_argument_group("model")
    g.add_argument("--neuron", help="any name of `snn-msi neurons`")
    g.add_argument("--neuron-arg", action="append", default=[], metavar="KEY=VALUE",
                   help="override one of the neuron's defaults (repeatable), e.g. tau=4 or surrogate=atan")  # fmt: skip
    g.add_argument("--T", type=int, help="time steps")
    g.add_argument("--fusion", choices=FUSIONS.names())
    g = p.add_argument_group("method")
    g.add_argument("--method", choices=METHODS.names(), help="balancing method (see `snn-msi methods`)")
    g.add_argument("--iemf", action="store_true", help="add IEMF on top of --method")
    g.add_argument("--alpha", type=float, help="the method's alpha (OGM-GE's modulation strength)")
    g = p.add_argument_group("optimisation and run")
    g.add_argument("--epochs", type=int)
    g.add_argument("--batch-size", type=int)
    g.add_argument("--lr", type=float)
    g.add_argument("--optimizer", choices=["sgd", "adam"])
    g.add_argument("--seed", type=int)
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--workers", type=int, help="DataLoader processes (default: 0 for in-memory data, else the cores)")
    g.add_argument("--out", help="run folder (config, checkpoints, logs, plots); default runs/<dataset>/<name>-<time>")
    g.add_argument("--resume", nargs="?", const=True, default=None, metavar="PATH",
                   help="continue a run: its folder or last.pt (without PATH: the folder of --out)")  # fmt: skip
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out instead of refusing")
    g.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                   help="set a config value by its dotted key (repeatable): model.T=8")  # fmt: skip
    g.add_argument("--quiet", action="store_true", help="no progress bars")


def _resume_folder(args) -> Path | None:
    if args.resume is None:
        return None
    if args.resume is True:
        if not args.out:
            raise ConfigError("--resume needs the run: --resume RUN_FOLDER (or its last.pt), or --out RUN_FOLDER")
        return Path(args.out)
    path = Path(args.resume)
    return path.parent if path.suffix == ".pt" else path


def train_config(args, base=None):
    """The :class:`TrainConfig` a command line asks for: ``base`` (default: --config, --demo, a resumed run's
    config or the paper's), then the options, then ``--set``; checked strictly."""
    from .data import DATASETS
    from .schema import apply_overrides, load_yaml, parse_value
    from .training import RunDir, TrainConfig, demo_config, policies_for

    resume_dir = _resume_folder(args)
    if args.config:
        d = TrainConfig.from_dict(load_yaml(args.config)).to_dict()
    elif resume_dir is not None and RunDir(resume_dir).resume_config_file.is_file():
        d = TrainConfig.from_dict(load_yaml(RunDir(resume_dir).resume_config_file)).to_dict()
    elif getattr(args, "demo", False):
        d = demo_config().to_dict()
    elif base is not None:
        d = base.to_dict()
    elif args.dataset or args.data_root:
        d = TrainConfig().to_dict()
    else:
        raise ConfigError("say what to train on: --demo (the embedded digits-av), --dataset NAME --data-root DIR "
                          "(see `snn-msi datasets`), or --config FILE")  # fmt: skip
    for key, value in (("epochs", args.epochs), ("batch_size", args.batch_size), ("lr", args.lr),
                       ("optimizer", args.optimizer), ("seed", args.seed), ("device", args.device)):  # fmt: skip
        if value is not None:
            d[key] = value
    data, model = d["data"], d["model"]
    if args.dataset:
        if args.dataset != data.get("dataset"):
            data.update(root=None, layout="auto")
        data["dataset"] = args.dataset
    for key, value in (("root", args.data_root), ("layout", args.layout), ("preset", args.preset),
                       ("audio_snr_db", args.audio_snr), ("image_snr_db", args.image_snr),
                       ("num_workers", args.workers)):  # fmt: skip
        if value is not None:
            data[key] = value
    if args.neuron and args.neuron != model.get("neuron"):
        model["neuron"] = args.neuron
    for item in args.neuron_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--neuron-arg expects KEY=VALUE, got {item!r}")
        model.setdefault("neuron_args", {})[key] = parse_value(value, f"--neuron-arg {key}")
    for key, value in (("T", args.T), ("fusion", args.fusion), ("num_classes", args.num_classes)):
        if value is not None:
            model[key] = value
    if args.method or args.iemf or args.alpha is not None:
        d["policies"] = _policies_from_args(args, d.get("policies", []), policies_for)
    if resume_dir is not None:
        d["out"] = str(resume_dir)
    elif args.out:
        d["out"] = args.out
    elif not args.config:  # a fresh folder per run; a --config file's own `out` is kept
        label = "+".join(p["name"] for p in d.get("policies", [])) or "normal"
        d["out"] = f"runs/{data['dataset']}/{label}-{model['neuron']}-s{d['seed']}-{time.strftime('%Y%m%d-%H%M%S')}"
    apply_overrides(d, args.set, TrainConfig)
    cfg = TrainConfig.from_dict(d)
    entry = DATASETS.get(cfg.data.dataset)
    if entry.needs_root and not cfg.data.root:
        raise ConfigError(f"--dataset {cfg.data.dataset} needs --data-root (its folder)")
    return cfg


def _policies_from_args(args, current: list[dict], policies_for) -> list[dict]:
    """--method / --iemf / --alpha on top of the config's methods."""
    from .training.policies.iemf import IEMF

    base = [p for p in current if p["name"] != IEMF.name]
    has_iemf = any(p["name"] == IEMF.name for p in current) or args.iemf
    if args.method:
        base = policies_for(args.method) if args.method != IEMF.name else []
        has_iemf = has_iemf or args.method == IEMF.name
    if args.alpha is not None:
        from .training import METHODS

        takers = [p for p in base if "alpha" in METHODS.get(p["name"]).factory.config_class.__dataclass_fields__]
        if not takers:
            names = ", ".join(p["name"] for p in base) or "normal"
            raise ConfigError(f"--alpha: the method ({names}) has no alpha; OGM-GE has (--method ogm_ge)")
        for p in takers:
            p["alpha"] = args.alpha
    return base + ([p for p in current if p["name"] == IEMF.name] or policies_for(iemf=True) if has_iemf else [])


def _train_mode(args) -> str:
    if args.resume is not None and args.overwrite:
        raise ConfigError("--resume continues a run and --overwrite replaces it: give one of them")
    return "resume" if args.resume is not None else ("overwrite" if args.overwrite else "new")


def _print_result(result: RunResult) -> None:
    numbers = result.to_dict()
    print(json.dumps({k: round(v, 4) if isinstance(v, float) else v for k, v in numbers.items()}, indent=1))


def _cmd_train(args) -> int:
    from .training import Trainer

    cfg = train_config(args)
    print(f"run folder: {cfg.out}", file=sys.stderr)
    result = Trainer(cfg, mode=_train_mode(args), progress=not args.quiet).fit()
    _print_result(result)
    return 0


@register_command("train", description="train a model (--demo: digits-av; --dataset/--data-root: the paper's network)")
def _train_command(q: argparse.ArgumentParser) -> None:
    add_train_arguments(q)
    q.set_defaults(func=_cmd_train)


# -- other commands ----------------------------------------------------------------------------------------
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


@register_command("neurons", description="list the neuron registry (or --demo: rates table + raster plot)")
def _neurons_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("--demo", action="store_true", help="run every neuron on a fixed ramp input")
    q.add_argument("--out", default="runs/neurons", help="folder for the raster PNG")
    q.set_defaults(func=_cmd_neurons)


def _cmd_datasets(args) -> int:
    from .data import DATASETS

    for name, desc in DATASETS.available().items():
        print(f"{name:<16} {desc}")
    return 0


@register_command("datasets", description="the data sets snn-msi knows and how to get them")
def _datasets_command(q: argparse.ArgumentParser) -> None:
    q.set_defaults(func=_cmd_datasets)


def _cmd_methods(args) -> int:
    from .training import method_table

    rows = method_table()
    if args.markdown:
        print("| method | source | what it modulates | composes with IEMF |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r.method} | {r.source} | {r.modulates} | {r.with_iemf} |")
        return 0
    for r in rows:
        print(f"{r.method:<12} {r.description}\n{'':<12} source: {r.source}\n{'':<12} modulates: "
              f"{r.modulates}; with IEMF: {r.with_iemf}")  # fmt: skip
    return 0


@register_command("methods", description="the balancing methods, their sources and whether they compose with IEMF")
def _methods_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("--markdown", action="store_true", help="as a Markdown table")
    q.set_defaults(func=_cmd_methods)


def _cmd_evaluate(args) -> int:
    from .data import build_datasets
    from .training import evaluate, load_model, resolve_device

    device = resolve_device(args.device)
    model, cfg = load_model(args.checkpoint, device)
    data = cfg.data.replace(root=args.data_root) if args.data_root else cfg.data
    sets = build_datasets(data, cfg.seed)
    split = {"train": 0, "val": 1, "test": 2}[args.split]
    metrics = evaluate(model, sets[split], device, cfg.batch_size)
    print(json.dumps(metrics.row(args.split), indent=1))
    return 0


@register_command("evaluate", description="accuracy of a checkpoint on a split")
def _evaluate_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("checkpoint")
    q.add_argument("--split", choices=["train", "val", "test"], default="test")
    q.add_argument("--data-root")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    q.set_defaults(func=_cmd_evaluate)


def _cmd_prepare(args) -> int:
    from .data.prepare import prepare

    report = prepare(args.video_dir, args.out_root, n_frames=args.frames, workers=args.workers)
    print(f"done {report['done']}, skipped (already there) {report['skipped']}, failed {len(report['failed'])}")
    for clip, why in list(report["failed"].items())[:20]:
        print(f"  {clip}: {why}")
    if report["renamed"]:
        print(f"{len(report['renamed'])} clip id(s) differ from the file name (a name in two classes or with two "
              f"extensions, or characters a list line cannot hold; e.g. {next(iter(report['renamed'].items()))}); "
              "clip_ids.json maps every id to its video")  # fmt: skip
    return 0 if report["done"] + report["skipped"] > 0 else 1


@register_command("prepare", description="videos <label>/<clip>.mp4 -> the Kinetics-Sounds seed layout (PyAV)")
def _prepare_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("video_dir")
    q.add_argument("out_root")
    q.add_argument("--frames", type=positive_int, default=10)
    q.add_argument("--workers", type=positive_int, default=None)
    q.set_defaults(func=_cmd_prepare)


def _cmd_build_h5(args) -> int:
    from .data import DataConfig, build_datasets
    from .data.h5 import build_h5

    cfg = DataConfig(dataset=args.dataset, root=args.root, layout=args.layout, val_fraction=args.val_fraction)
    splits = dict(zip(("train", "val", "test"), build_datasets(cfg, 0, Path(args.out).parent), strict=True))
    for ds in splits.values():  # cache plain frames: augmentation happens when the cache is read
        ds.train = False
    path = build_h5(splits, args.out, frame_size=args.frame_size, waveforms=args.waveforms)
    print(f"wrote {path} ({sum(map(len, splits.values()))} clips)")
    return 0


@register_command("build-h5", description="precompute spectrograms and frames into one HDF5 file")
def _build_h5_command(q: argparse.ArgumentParser) -> None:
    from .data import DATASETS

    q.add_argument("root")
    q.add_argument("out")
    builders = [n for n in DATASETS.names() if DATASETS.get(n).needs_root and n != "h5"]
    q.add_argument("--dataset", choices=builders, default="kinetics-sounds")
    q.add_argument("--layout", default="auto")
    q.add_argument("--frame-size", type=positive_int, default=256, help="stored frame side (>= training size)")
    q.add_argument("--val-fraction", type=float, default=0.1)
    q.add_argument("--waveforms", action="store_true", help="also store waveforms (needed for an audio SNR)")
    q.set_defaults(func=_cmd_build_h5)


def build_parser() -> argparse.ArgumentParser:
    """The ``snn-msi`` parser: one sub-command per entry of the command registry (the built-in commands above and
    every report's)."""
    from . import reports  # noqa: F401  (registers the report commands)
    from .commands import COMMANDS, add_parsers

    p = argparse.ArgumentParser(
        prog="snn-msi", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    add_parsers(p.add_subparsers(dest="command", required=True, metavar="COMMAND"), COMMANDS)
    return p


def main_guard(prog: str, func, args) -> int:
    """Run ``func(args)``; a user error becomes one line on stderr and exit 2, a non-finite loss exit 1."""
    from .training import NonFiniteLossError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return func(args)
    except NonFiniteLossError as err:
        print(f"{prog}: stopped: {err}", file=sys.stderr)
        return 1
    except (ValueError, OSError) as err:  # ConfigError and FileNotFoundError included: the user's input
        lines = str(err).strip().splitlines()
        if len(lines) > 1 and lines[1].startswith("Original Traceback"):  # re-raised from a DataLoader worker
            lines = [lines[-1].split(": ", 1)[-1]]
        msg = lines[0] if lines else type(err).__name__
        print(f"{prog}: error: {msg}", file=sys.stderr)
        return 2


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return main_guard(f"snn-msi {args.command}", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
