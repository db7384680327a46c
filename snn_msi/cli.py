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
    """The options of ``snn-msi train`` (also used by ``experiments/ks_snn.py``): the recipe options every command
    that trains shares (:func:`snn_msi.reports.runs.add_recipe_arguments`) and one run's own."""
    from .reports.runs import add_recipe_arguments
    from .training import METHODS
    from .training.loggers import DEFAULT_LOGGERS, LOGGERS

    g = p.add_argument_group("what to train (--config, then --model, then these, then --set)")
    add_recipe_arguments(g)
    if demo_flag:
        demo_help = "the demo recipe (--model demo): the small network on the embedded digits-av; with --dataset, "
        demo_help += "classes, channels and image size come from that data"
        g.add_argument("--demo", action="store_true", help=demo_help)
    g.add_argument("--layout", help="folder layout where a data set has several (default: auto-detect)")
    g.add_argument("--audio-snr", type=float, help="audio SNR in dB (any data set)")
    g.add_argument("--image-snr", type=float, help="image SNR in dB (any data set)")
    g.add_argument("--num-classes", type=int, help="classes of the model (default: from the data set)")
    g.add_argument("--T", type=int, help="time steps")
    g = p.add_argument_group("method")
    g.add_argument("--method", choices=METHODS.names(), help="balancing method (see `snn-msi methods`)")
    g.add_argument("--iemf", action="store_true", help="add IEMF on top of --method")
    g.add_argument(
        "--method-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the method (repeatable), e.g. zero_pass_mode=train for agm (`snn-msi methods` lists "
        "them); METHOD.KEY=VALUE where several methods of the run have the option: iemf.noise=false",
    )
    g.add_argument("--alpha", type=float, help="the method's alpha (OGM-GE's modulation strength): --method-arg alpha=")
    g = p.add_argument_group("optimisation and run")
    g.add_argument("--batch-size", type=int, help="clips per step (default: the recipe's; the paper's 32)")
    g.add_argument("--lr", type=float, help="learning rate (default: the recipe's; the paper's 0.005)")
    g.add_argument("--optimizer", choices=["sgd", "adam"], help="SGD with Nesterov momentum (the paper's) or Adam")
    g.add_argument("--seed", type=int, help="seed of weights, splits, augmentation and data order (default: 0)")
    g.add_argument("--workers", type=int, help="DataLoader processes (default: 0 for in-memory data, else the cores)")
    g.add_argument("--out", help="run folder (config, checkpoints, logs, plots); default runs/<dataset>/<name>-<time>")
    g.add_argument(
        "--resume",
        nargs="?",
        const=True,
        default=None,
        metavar="PATH",
        help="continue a run: its folder or last.pt (without PATH: the folder of --out)",
    )
    g.add_argument("--overwrite", action="store_true", help="replace the run in --out instead of refusing")
    g.add_argument("--quiet", action="store_true", help="no progress bars")
    logger_help = f"where each epoch's numbers go, comma-separated: {', '.join(LOGGERS.names())} (default: "
    logger_help += "%(default)s; the CSV files are always written; a backend not installed is one warning line)"
    g.add_argument("--logger", default=",".join(DEFAULT_LOGGERS), type=_logger_names, metavar="NAMES", help=logger_help)


def _logger_names(text: str) -> tuple[str, ...]:
    from .training.loggers import parse_loggers

    try:
        return parse_loggers(text)
    except ConfigError as err:
        raise argparse.ArgumentTypeError(str(err).removeprefix("--logger: ")) from None


def _resume_folder(args) -> Path | None:
    if args.resume is None:
        return None
    if args.resume is True:
        if not args.out:
            raise ConfigError("--resume needs the run: --resume RUN_FOLDER (or its last.pt), or --out RUN_FOLDER")
        return Path(args.out)
    path = Path(args.resume)
    if path.suffix != ".pt":
        return path
    if path.exists() and not (path.parent / "config.yaml").is_file():  # a missing last.pt: a run's first attempt
        raise ConfigError(
            f"--resume {path}: not a run's checkpoint (no run's config.yaml beside it); give a run's "
            "folder or its last.pt"
        )
    return path.parent


def train_config(args, base=None):
    """The :class:`TrainConfig` a command line asks for: ``base`` (default: --config, a resumed run's config or
    the paper's), then the model recipe (--model, --demo), then the options, then ``--set``; checked strictly.

    A data set other than the base's (``--dataset``) brings its own classes, channels and SNR: the base's class
    and channel counts are dropped (taken from the data) and no SNR preset is kept that the command line does not
    ask for."""
    from .data import DATASETS
    from .reports.runs import apply_recipe_arguments
    from .schema import apply_overrides, load_yaml
    from .training import RunDir, TrainConfig, policies_for, recipe_config

    resume_dir = _resume_folder(args)
    recipe = getattr(args, "model", None) or ("demo" if getattr(args, "demo", False) else None)
    if args.config:
        d = TrainConfig.from_dict(load_yaml(args.config)).to_dict()
    elif resume_dir is not None and RunDir(resume_dir).resume_config_file.is_file():
        d = TrainConfig.from_dict(load_yaml(RunDir(resume_dir).resume_config_file)).to_dict()
        recipe = None  # a resumed run keeps its configuration
    elif base is not None:
        d = base.to_dict()
    elif recipe or args.dataset or args.data_root:
        d = TrainConfig().to_dict()
    elif resume_dir is not None:
        what = "no such folder" if not resume_dir.exists() else "no run in it (no config.yaml)"
        raise ConfigError(
            f"--resume {resume_dir}: {what}; give a run's folder (or its last.pt), or also what to train on "
            "(--demo, --dataset, --config) to start that run there"
        )
    else:
        raise ConfigError(
            "say what to train on: --demo (the embedded digits-av), --dataset NAME --data-root DIR "
            "(see `snn-msi datasets`), or --config FILE"
        )
    if recipe:
        d = recipe_config(recipe, d).to_dict()
    for key, value in (
        ("batch_size", args.batch_size),
        ("lr", args.lr),
        ("optimizer", args.optimizer),
        ("seed", args.seed),
    ):
        if value is not None:
            d[key] = value
    apply_recipe_arguments(d, args)
    data, model = d["data"], d["model"]
    for key, value in (
        ("layout", args.layout),
        ("audio_snr_db", args.audio_snr),
        ("image_snr_db", args.image_snr),
        ("num_workers", args.workers),
    ):
        if value is not None:
            data[key] = value
    for key, value in (("T", args.T), ("num_classes", args.num_classes)):
        if value is not None:
            model[key] = value
    if args.method or args.iemf or args.alpha is not None or args.method_arg:
        d["policies"] = _policies_from_args(args, d.get("policies", []), policies_for)
    if resume_dir is not None:
        d["out"] = str(resume_dir)
    elif args.out:
        d["out"] = args.out
    elif not names_its_folder(args):  # a fresh folder per run (made unique when the run starts)
        label = "+".join(p["name"] for p in d.get("policies", [])) or "normal"
        d["out"] = f"runs/{data['dataset']}/{label}-{model['neuron']}-s{d['seed']}-{time.strftime('%Y%m%d-%H%M%S')}"
    apply_overrides(d, args.set, TrainConfig)
    if d["data"].get("root"):  # stored absolute: evaluate, energy and resume work from any folder
        d["data"]["root"] = str(Path(d["data"]["root"]).expanduser().resolve())
    cfg = TrainConfig.from_dict(d)
    entry = DATASETS.get(cfg.data.dataset)
    if entry.needs_root and not cfg.data.root:
        raise ConfigError(f"--dataset {cfg.data.dataset} needs --data-root (its folder)")
    return cfg


def names_its_folder(args) -> bool:
    """The command names the run's folder: ``--out``, ``--resume``, a ``--config`` file's own ``out`` or
    ``--set out=...``; else :func:`train_config` makes a name up from the time (taken unique by the trainer)."""
    sets_out = any(item.partition("=")[0].strip() == "out" for item in args.set or ())
    return args.resume is not None or bool(args.out) or bool(args.config) or sets_out


def _policies_from_args(args, current: list[dict], policies_for) -> list[dict]:
    """--method / --iemf / --method-arg / --alpha on top of the config's methods. An option goes to the method of
    the run that has it (``METHOD.KEY``: to that one); an error, in one line, where none has it (naming their
    options) or several have it (``lam`` is CML's loss weight and IEMF's coefficient scale)."""
    from .schema import parse_value
    from .training.policies import option_names, option_owner
    from .training.policies.iemf import IEMF

    base = [p for p in current if p["name"] != IEMF.name]
    has_iemf = any(p["name"] == IEMF.name for p in current) or args.iemf
    if args.method:
        base = policies_for(args.method) if args.method != IEMF.name else []
        has_iemf = has_iemf or args.method == IEMF.name
    policies = base + ([p for p in current if p["name"] == IEMF.name] or policies_for(iemf=True) if has_iemf else [])
    items = []
    for item in args.method_arg:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise ConfigError(f"--method-arg expects [METHOD.]KEY=VALUE, got {item!r}")
        items.append((f"--method-arg {key}", key, parse_value(value, f"--method-arg {key}")))
    items += [("--alpha", "alpha", args.alpha)] if args.alpha is not None else []

    names = [p["name"] for p in policies]
    for option, key, value in items:
        found = option_owner(key, names, option)
        if found is None:
            method, dot, name = key.rpartition(".")
            if dot:
                raise ConfigError(f"{option}: {method!r} is not a method of this run ({', '.join(names) or 'normal'})")
            known = ", ".join(sorted({f for m in names for f in option_names(m)})) or "none"
            raise ConfigError(
                f"{option}: the method ({', '.join(names) or 'normal'}) has no option {name!r}; its options: {known}"
            )
        method, name = found
        next(p for p in policies if p["name"] == method)[name] = value
    return policies


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
    unique = not names_its_folder(args) and _train_mode(args) == "new"
    trainer = Trainer(cfg, mode=_train_mode(args), progress=not args.quiet, loggers=args.logger, unique_out=unique)
    print(f"run folder: {trainer.cfg.out}", file=sys.stderr)
    try:
        result = trainer.fit()
    except KeyboardInterrupt:
        out = trainer.cfg.out
        if trainer.wrote_checkpoint or (trainer.mode == "resume" and trainer.rundir.last.is_file()):
            kept = f"{out} keeps its last finished epoch; continue it with snn-msi train --resume {out}"
        elif trainer.mode == "overwrite":
            kept = f"the new run had no checkpoint yet: {out} holds the old run as it was"
        else:
            kept = "no epoch had finished"
        raise Interrupted(f"interrupted; {kept}") from None
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


def _print_available(available: dict[str, str], width: int) -> int:
    """One line per registered name with its description (the listing commands)."""
    for name, desc in available.items():
        print(f"{name:<{width}} {desc}")
    return 0


def _cmd_datasets(args) -> int:
    from .data import DATASETS

    return _print_available(DATASETS.available(), 16)


@register_command("datasets", description="the data sets snn-msi knows and how to get them")
def _datasets_command(q: argparse.ArgumentParser) -> None:
    q.set_defaults(func=_cmd_datasets)


def _cmd_recipes(args) -> int:
    from .models import RECIPES

    return _print_available(RECIPES.available(), 8)


@register_command("recipes", description="the model recipes of --model (and build(name) in Python)")
def _recipes_command(q: argparse.ArgumentParser) -> None:
    q.set_defaults(func=_cmd_recipes)


def _cmd_fusions(args) -> int:
    import inspect

    from neurons.registry import accepted_arguments

    from .models import FUSIONS
    from .models.avnet import FUSION_FROM_MODEL

    for name in FUSIONS.names():
        entry = FUSIONS.get(name)
        options = {k: v for k, v in accepted_arguments(entry.factory)[0].items() if k not in FUSION_FROM_MODEL}
        shown = ", ".join(f"{k}={'(required)' if v is inspect.Parameter.empty else v!r}" for k, v in options.items())
        print(f"{name:<11} {entry.description}\n{'':<11} --fusion-arg: {shown or '(none)'}")
    return 0


@register_command("fusions", description="the fusions of --fusion and their options (--fusion-arg KEY=VALUE)")
def _fusions_command(q: argparse.ArgumentParser) -> None:
    q.set_defaults(func=_cmd_fusions)


def _cmd_methods(args) -> int:
    import dataclasses

    from .training import METHODS, method_table

    rows = method_table()
    if args.markdown:
        print("| method | source | what it modulates | composes with IEMF |\n|---|---|---|---|")
        for r in rows:
            print(f"| {r.method} | {r.source} | {r.modulates} | {r.with_iemf} |")
        return 0
    for r in rows:
        defaults = dataclasses.asdict(METHODS.get(r.method).factory.config_class())
        shown = ", ".join(f"{k}={v!r}" for k, v in defaults.items())
        print(
            f"{r.method:<12} {r.description}\n{'':<12} source: {r.source}\n{'':<12} modulates: "
            f"{r.modulates}; with IEMF: {r.with_iemf}\n{'':<12} --method-arg: {shown or '(none)'}"
        )
    return 0


@register_command(
    "methods",
    description="the balancing methods, their sources, whether they compose with IEMF and their options "
    "(--method-arg KEY=VALUE)",
)
def _methods_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("--markdown", action="store_true", help="as a Markdown table")
    q.set_defaults(func=_cmd_methods)


def _cmd_evaluate(args) -> int:
    from .data import build_datasets
    from .data.identity import class_mismatch, class_names
    from .training import load_checkpoint, resolve_device
    from .training.trainer import evaluate_collect, model_from_checkpoint

    device = resolve_device(args.device)
    state = load_checkpoint(args.checkpoint)
    model, cfg = model_from_checkpoint(state, args.checkpoint, device, args.data_root)
    trained = (state.get("data") or {}).get("classes")
    sets = build_datasets(cfg.data, cfg.seed)
    ds = sets[{"train": 0, "val": 1, "test": 2}[args.split]]
    found = class_names(ds)
    why = class_mismatch(trained, found)
    if why is not None:
        raise ConfigError(f"{args.checkpoint} cannot be scored on {cfg.data.root or cfg.data.dataset}: {why}")
    if trained is None and found is not None:
        logging.getLogger(__name__).warning(
            "%s records no class names (a checkpoint from before 2026-12-05): its class i is taken to be the "
            "data's i-th (%s)",
            args.checkpoint,
            ", ".join(found),
        )
    collected = evaluate_collect(model, ds, device, cfg.batch_size)
    metrics = collected.result()
    print(json.dumps(metrics.row(args.split), indent=1))
    classes = trained or found or [str(c) for c in range(cfg.model.num_classes)]
    table = evaluation_tables(collected.predictions(), classes, cfg.model.num_classes)
    print(_per_class_text(table["per_class"], args.split), file=sys.stderr)
    if args.out:
        written = write_evaluation(Path(args.out), table, metrics.row(args.split), classes, args.split)
        print(f"wrote {', '.join(str(p) for p in written)}", file=sys.stderr)
    return 0


HEADS = ("fused", "audio", "visual")


def evaluation_tables(pred: dict, classes: list[str], num_classes: int) -> dict:
    """Per-class precision / recall / F1 of the fused prediction and of each unimodal head, and the fused
    confusion matrix (scikit-learn's, through :mod:`snn_msi.training.metrics`)."""
    from .training.metrics import confusion, per_class

    reports = {h: per_class(pred["y"], pred[h], num_classes) for h in HEADS}
    rows = []
    for c in range(num_classes):
        row = {"class": classes[c] if c < len(classes) else str(c), "support": int(reports["fused"]["support"][c])}
        for h in HEADS:
            prefix = "" if h == "fused" else f"{h}_"
            row.update({f"{prefix}{k}": float(reports[h][k][c]) for k in ("precision", "recall", "f1")})
        rows.append(row)
    return {"per_class": rows, "confusion": confusion(pred["y"], pred["fused"], num_classes)}


def _per_class_text(rows: list[dict], split: str) -> str:
    width = max([5, *(len(r["class"]) for r in rows)])
    lines = [
        f"{split} split, fused prediction per class:",
        f"{'class':<{width}} {'n':>5} {'precision':>9} {'recall':>7} {'F1':>6}   audio F1  visual F1",
    ]
    for r in rows:
        lines.append(
            f"{r['class']:<{width}} {r['support']:>5} {r['precision']:>9.3f} {r['recall']:>7.3f} "
            f"{r['f1']:>6.3f}   {r['audio_f1']:>8.3f}  {r['visual_f1']:>9.3f}"
        )
    return "\n".join(lines)


def write_evaluation(out: Path, table: dict, row: dict, classes: list[str], split: str) -> list[Path]:
    """``metrics.json`` (the split's numbers, per-head accuracies included), ``heads.csv`` (accuracy and macro F1
    of the fused prediction, each unimodal head and each modality's part of the fused logits),
    ``per_class.csv``, ``confusion_matrix.csv`` and ``confusion_matrix.png`` in ``out``."""
    import csv

    from .plots import confusion_matrix_plot

    out.mkdir(parents=True, exist_ok=True)
    names = [r["class"] for r in table["per_class"]]
    (out / "metrics.json").write_text(json.dumps({"split": split, "classes": classes, **row}, indent=1))
    heads = [
        ("fused", row[f"{split}_acc"], row[f"{split}_f1"]),
        ("audio head", row[f"{split}_acc_audio"], row[f"{split}_f1_audio"]),
        ("visual head", row[f"{split}_acc_visual"], row[f"{split}_f1_visual"]),
        ("audio part of the fused logits", row[f"{split}_acc_fused_audio"], ""),
        ("visual part of the fused logits", row[f"{split}_acc_fused_visual"], ""),
    ]
    with (out / "heads.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["head", "accuracy", "macro_f1"])
        w.writerows(heads)
    with (out / "per_class.csv").open("w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(table["per_class"][0]))
        w.writeheader()
        w.writerows(table["per_class"])
    with (out / "confusion_matrix.csv").open("w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["true \\ predicted", *names])
        w.writerows([name, *map(int, counts)] for name, counts in zip(names, table["confusion"], strict=True))
    png = confusion_matrix_plot(table["confusion"], names, out / "confusion_matrix.png", f"{split} split, fused")
    return [out / "metrics.json", out / "heads.csv", out / "per_class.csv", out / "confusion_matrix.csv", png]


@register_command("evaluate", description="accuracy, per-class table and confusion matrix of a checkpoint on a split")
def _evaluate_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("checkpoint", help="a run's best.pt (or last.pt), or its folder (for its best.pt)")
    q.add_argument("--split", choices=["train", "val", "test"], default="test", help="which split (default: test)")
    q.add_argument("--data-root", help="the data's folder, where it is not where the run found it")
    q.add_argument("--device", default="auto", help="auto, cpu, cuda or cuda:N")
    q.add_argument("--out", help="folder for metrics.json, heads.csv, per_class.csv, confusion_matrix.csv and .png")
    q.set_defaults(func=_cmd_evaluate)


def _cmd_prepare(args) -> int:
    from .data.prepare import prepare

    report = prepare(args.video_dir, args.out_root, n_frames=args.frames, workers=args.workers)
    print(f"done {report['done']}, skipped (already there) {report['skipped']}, failed {len(report['failed'])}")
    for clip, why in list(report["failed"].items())[:20]:
        print(f"  {clip}: {why}")
    if report["renamed"]:
        print(
            f"{len(report['renamed'])} clip id(s) differ from the file name (a name in two classes or with two "
            f"extensions, or characters a list line cannot hold; e.g. {next(iter(report['renamed'].items()))}); "
            "clip_ids.json maps every id to its video"
        )
    if report["done"] + report["skipped"] == 0:
        first = next(iter(report["failed"].items()), None)
        why = f" (e.g. {first[0]}: {first[1]})" if first else ""
        raise ConfigError(f"{args.video_dir}: none of its {len(report['failed'])} videos could be decoded{why}")
    return 0


@register_command("prepare", description="videos <label>/<clip>.mp4 -> the Kinetics-Sounds seed layout (PyAV)")
def _prepare_command(q: argparse.ArgumentParser) -> None:
    q.add_argument("video_dir", help="folder of videos, one sub-folder per label: <label>/<clip>.mp4")
    q.add_argument("out_root", help="where the seed layout goes (train/audio, train/video, my_train.txt, ...)")
    q.add_argument("--frames", type=positive_int, default=10, help="frames kept per clip (default: %(default)s)")
    q.add_argument("--workers", type=positive_int, default=None, help="decoding processes (default: the cores)")
    q.set_defaults(func=_cmd_prepare)


def _cmd_build_h5(args) -> int:
    from .data import DataConfig, build_datasets
    from .data.h5 import build_h5
    from .training.rundir import check_output_file

    check_output_file(args.out, args.overwrite)
    smallest = DataConfig.__dataclass_fields__["image_size"].metadata["range"]["ge"]
    if args.frame_size < smallest:
        raise ConfigError(f"--frame-size {args.frame_size}: frames smaller than a model takes ({smallest} pixels)")
    cfg = DataConfig(dataset=args.dataset, root=args.root, layout=args.layout, val_fraction=args.val_fraction)
    cfg.validate()
    splits = dict(zip(("train", "val", "test"), build_datasets(cfg, 0, Path(args.out).parent), strict=True))
    for ds in splits.values():  # cache plain frames: augmentation happens when the cache is read
        ds.train = False
    path = build_h5(splits, args.out, frame_size=args.frame_size, waveforms=args.waveforms)
    print(f"wrote {path} ({sum(map(len, splits.values()))} clips)")
    return 0


@register_command("build-h5", description="precompute spectrograms and frames into one HDF5 file")
def _build_h5_command(q: argparse.ArgumentParser) -> None:
    from .data import DATASETS

    q.add_argument("root", help="the data set's folder")
    q.add_argument("out", help="the .h5 file to write")
    builders = [n for n in DATASETS.names() if DATASETS.get(n).needs_root and n != "h5"]
    q.add_argument("--dataset", choices=builders, default="kinetics-sounds", help="its layout (default: %(default)s)")
    q.add_argument("--layout", default="auto", help="folder layout where a data set has several (default: detect)")
    q.add_argument("--frame-size", type=positive_int, default=256, help="stored frame side (>= training size)")
    q.add_argument("--val-fraction", type=float, default=0.1, help="share of training clips held out (default: 0.1)")
    q.add_argument("--waveforms", action="store_true", help="also store waveforms (needed for an audio SNR)")
    q.add_argument("--overwrite", action="store_true", help="replace OUT where it exists")
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


class Interrupted(KeyboardInterrupt):
    """Ctrl-C, with what the command kept (the message :func:`main_guard` prints)."""


def main_guard(prog: str, func, args) -> int:
    """Run ``func(args)``; a user error becomes one line on stderr and exit 2, a non-finite loss exit 1, Ctrl-C
    one line and exit 130 (as a shell reports SIGINT)."""
    from .training import NonFiniteLossError

    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s: %(message)s")
    try:
        return func(args)
    except KeyboardInterrupt as err:  # Ctrl-C: one line (what the command kept, where it says), exit 130
        print(f"{prog}: {str(err) or getattr(args, 'on_interrupt', None) or 'interrupted'}", file=sys.stderr)
        return 130
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
    command = " ".join(c for c in (args.command, getattr(args, "kind", None)) if c)  # "study methods" too
    return main_guard(f"snn-msi {command}", args.func, args)


if __name__ == "__main__":
    sys.exit(main())
