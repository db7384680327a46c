"""Many runs: the recipe options every command that trains shares, one run folder's run / resume / reuse, and the
executors that run many folders (``local``: a process pool on this machine; ``ray``: Ray tasks on a Ray cluster).

The recipe. A command that trains starts from a recipe (``--config FILE``, else the command's own default; then
``--model NAME`` applies a registered recipe such as ``ks-paper``, ``paper`` or ``small``), then takes
``--dataset/--data-root``, ``--preset``, ``--neuron/--neuron-arg``, ``--fusion``, ``--device``, ``--epochs`` and
last ``--set KEY=VALUE`` on top. A study
then varies only its own knobs (levels, methods, fusions, ...) on the recipe; ``--seeds N`` (with ``--seed-start``)
or ``--seed-list 100-109`` choose its seeds.

A run folder (:func:`run_config`): a finished run made with the same configuration is reused; an interrupted one
continues from its own ``last.pt`` exactly as ``snn-msi train --resume`` does; a folder that holds a run of another
configuration is refused (``--overwrite``: trained again). So a killed study (or a dead Ray worker) rerun with the
same command trains only what is missing. Keys that do not change what a run computes (:data:`PLACEMENT`: where it
runs and where its data lies) do not count, nor model values the recipe leaves to the data (``num_classes:
null``).

The executors put runs on devices and report ``done / running / failed``; both write to the same folders, and the
studies read their tables from the folders (:func:`results`), so any executor gives the same tables. ``local``
spreads parallel runs over the visible GPUs (worker ``i`` gets ``cuda:i mod n``); ``ray`` asks Ray for
``--cpus-per-run`` and ``--gpus-per-run`` (fractions allowed) per run and retries a run whose worker died
(``--max-retries``), which then resumes from its ``last.pt``.
"""

from __future__ import annotations

import argparse
import functools
import json
import math
import multiprocessing as mp
import os
import re
import sys
import time
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path

from ..argtypes import int_at_least, nonnegative_float, positive_int
from ..schema import ConfigError
from ..training.config import TrainConfig
from ..training.result import RunResult
from ..training.rundir import RunDir, canonical_config, config_diff

__all__ = [
    "RunOptions",
    "RunOutcome",
    "RunsFailed",
    "Executor",
    "LocalExecutor",
    "RayExecutor",
    "add_executor_arguments",
    "add_recipe_arguments",
    "add_run_arguments",
    "add_seed_arguments",
    "apply_recipe_arguments",
    "make_executor",
    "results",
    "run_config",
    "run_line",
    "run_many",
    "run_options",
    "seed_list",
    "study_recipe",
    "visible_gpus",
    "worker_device",
]

#: config keys that say where a run computes and where its data lies, not what it computes
PLACEMENT = ("out", "device", "data.num_workers", "data.root")
EXECUTORS = ("local", "ray")


def seed_list(text: str) -> list[int]:
    """``'100-109'``, ``'3,5,7'`` or ``'0-2,10'`` -> the seeds, in order; a seed given twice is an error."""
    seeds: list[int] = []
    for part in text.replace(" ", ",").split(","):
        if not part:
            continue
        m = re.fullmatch(r"(\d+)(?:-(\d+))?", part)
        if not m or (m[2] is not None and int(m[2]) < int(m[1])):
            raise argparse.ArgumentTypeError(f"expected seeds like 100-109 or 3,5,7, got {text!r}")
        lo = int(m[1])
        twice = [s for s in range(lo, int(m[2] or lo) + 1) if s in seeds]
        if twice:
            raise argparse.ArgumentTypeError(f"seed {twice[0]} twice in {text!r}: each seed once")
        seeds += list(range(lo, int(m[2] or lo) + 1))
    if not seeds:
        raise argparse.ArgumentTypeError(f"expected seeds like 100-109 or 3,5,7, got {text!r}")
    return seeds


def add_recipe_arguments(g) -> None:
    """The recipe options of every command that trains (``snn-msi train``, the studies, ``sweep``,
    ``experiments/ks_snn.py``): ``--config``, ``--model``, ``--dataset``, ``--data-root``, ``--preset``,
    ``--neuron``, ``--neuron-arg``, ``--fusion``, ``--fusion-arg``, ``--device``, ``--epochs``, ``--set``."""
    from ..data import DATASETS, SNR_PRESETS
    from ..models import FUSIONS, RECIPES

    g.add_argument("--config", help="YAML config (as saved next to every run as config.yaml)")
    model_help = f"recipe: {', '.join(RECIPES.names())} (`snn-msi recipes`) or a recipe YAML file; its "
    model_help += "architecture and the schedule it trains with (ks-paper: the paper's Kinetics-Sounds SNN)"
    g.add_argument("--model", metavar="RECIPE", help=model_help)
    g.add_argument("--dataset", choices=DATASETS.names(), help="see `snn-msi datasets`")
    g.add_argument("--data-root", help="the data set's folder (or the .h5 file for --dataset h5)")
    g.add_argument(
        "--preset",
        choices=list(SNR_PRESETS),
        help="SNR preset: clean, hard (audio -10 dB, image 0 dB), harder (-15 / -5 dB)",
    )
    g.add_argument("--neuron", help="any name of `snn-msi neurons`")
    g.add_argument(
        "--neuron-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="override one of the neuron's defaults (repeatable), e.g. tau=4 or surrogate=atan",
    )
    g.add_argument("--fusion", choices=FUSIONS.names(), help="how the two modalities meet (default: the recipe's)")
    g.add_argument(
        "--fusion-arg",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="an option of the fusion (repeatable), e.g. exponent=1.5 for msi (`snn-msi fusions` lists them)",
    )
    g.add_argument("--device", help="auto, cpu, cuda or cuda:N")
    g.add_argument("--epochs", type=int, help="epochs to train (default: the recipe's; the paper's 100)")
    g.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="set a config value by its dotted key (repeatable): model.T=8",
    )


def apply_recipe_arguments(d: dict, args) -> dict:
    """``--epochs``, ``--device``, ``--dataset``, ``--data-root``, ``--preset``, ``--neuron``, ``--neuron-arg``,
    ``--fusion``, ``--fusion-arg`` onto the plain config ``d`` (``--set`` comes last, from the caller); returns
    ``d``. A data set other than the recipe's brings its own classes, channels and SNR, another fusion its own
    options (the recipe's are dropped)."""
    from ..schema import parse_value

    for key, value in (("epochs", args.epochs), ("device", args.device)):
        if value is not None:
            d[key] = value
    data, model = d["data"], d["model"]
    if args.dataset:
        if args.dataset != data.get("dataset"):  # another data set: what the old one fixed comes from the new one
            data.update(dict.fromkeys(("root", "audio_snr_db", "image_snr_db", "frames_per_clip")))
            data.update(layout="auto", preset="clean")
            model.update(num_classes=None, audio_channels=None, visual_channels=None)
        data["dataset"] = args.dataset
    if args.data_root is not None:
        from ..data.config import check_given_root

        check_given_root(data.get("dataset"), args.data_root)
    for key, value in (("root", args.data_root), ("preset", args.preset)):
        if value is not None:
            data[key] = value
    if args.neuron and args.neuron != model.get("neuron"):
        model["neuron"] = args.neuron
    if args.fusion is not None and args.fusion != model.get("fusion"):  # another fusion: the recipe's options go
        model.update(fusion=args.fusion, fusion_args={})
    for option, items, into in (
        ("--neuron-arg", args.neuron_arg, "neuron_args"),
        ("--fusion-arg", args.fusion_arg, "fusion_args"),
    ):
        for item in items:
            key, sep, value = item.partition("=")
            if not sep or not key:
                raise ConfigError(f"{option} expects KEY=VALUE, got {item!r}")
            model.setdefault(into, {})[key] = parse_value(value, f"{option} {key}")
    return d


def study_recipe(args, default: TrainConfig) -> TrainConfig:
    """A study's recipe: ``--config`` or the study's ``default``, then ``--model``, the recipe options and
    ``--set`` on top; a data set that needs a folder without one is a one-line error."""
    from ..data import DATASETS
    from ..schema import apply_overrides, load_yaml
    from ..training import recipe_config

    d = TrainConfig.from_dict(load_yaml(args.config)).to_dict() if args.config else default.to_dict()
    if args.model:
        d = recipe_config(args.model, d).to_dict()
    apply_overrides(apply_recipe_arguments(d, args), args.set, TrainConfig)
    if d["data"].get("root"):  # absolute: every worker and node reads the same path
        d["data"]["root"] = str(Path(d["data"]["root"]).expanduser().resolve())
    cfg = TrainConfig.from_dict(d)
    if DATASETS.get(cfg.data.dataset).needs_root and not cfg.data.root:
        raise ConfigError(f"--dataset {cfg.data.dataset} needs --data-root (its folder)")
    return cfg


# -- run options -------------------------------------------------------------------------------------------------
@dataclass
class RunOptions:
    """How a study (or sweep) runs its runs. ``seeds``: the seeds of every point; ``jobs``: runs at once (local)
    or the most in flight (ray); ``executor``: ``local`` or ``ray``; ``address``: the Ray cluster (None: the
    ``RAY_ADDRESS`` variable, else a local Ray); ``cpus_per_run`` / ``gpus_per_run``: what each run asks of Ray
    (fractions allowed); ``max_retries``: retries of a run whose worker died."""

    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    out: str = "runs/study"
    jobs: int = 2
    overwrite: bool = False
    executor: str = "local"
    address: str | None = None
    cpus_per_run: float = 1.0
    gpus_per_run: float = 0.0
    max_retries: int = 3
    progress: bool = True

    def __post_init__(self) -> None:
        if not self.seeds or any(s < 0 for s in self.seeds) or len(set(self.seeds)) != len(self.seeds):
            raise ConfigError(f"seeds must be distinct integers >= 0, got {self.seeds}")
        if self.jobs < 1 or self.max_retries < 0:
            raise ConfigError(f"jobs must be >= 1 and max_retries >= 0, got {self.jobs}, {self.max_retries}")
        if self.executor not in EXECUTORS:
            raise ConfigError(f"--executor must be one of {', '.join(EXECUTORS)}, got {self.executor!r}")
        if self.cpus_per_run <= 0 or self.gpus_per_run < 0:
            raise ConfigError(
                f"--cpus-per-run must be > 0 and --gpus-per-run >= 0, got {self.cpus_per_run}, {self.gpus_per_run}"
            )


def add_seed_arguments(g, seeds: int = 3) -> None:
    """``--seeds N`` (from ``--seed-start``) or ``--seed-list 100-109``: the seeds of every point."""
    g.add_argument("--seeds", type=positive_int, help=f"seeds per point (default {seeds})")
    g.add_argument("--seed-start", type=int, help="the first of --seeds N seeds (default 0)")
    g.add_argument("--seed-list", type=seed_list, help="these seeds instead of --seeds / --seed-start (100-109, 3,5,7)")
    g.set_defaults(default_seeds=seeds)


def seeds_of(args) -> list[int]:
    """The seeds a command line asks for: ``--seed-list``, or ``--seeds`` from ``--seed-start``."""
    if args.seed_list is not None:
        if args.seeds is not None or args.seed_start is not None:
            raise ConfigError("--seed-list names the seeds: leave out --seeds and --seed-start")
        return list(args.seed_list)
    start = 0 if args.seed_start is None else args.seed_start
    if start < 0:
        raise ConfigError(f"--seed-start must be >= 0, got {start}")
    return list(range(start, start + (args.default_seeds if args.seeds is None else args.seeds)))


def add_executor_arguments(g, jobs: int = 2) -> None:
    """Where the runs run: ``--executor``, ``--jobs``, ``--address``, ``--cpus-per-run``, ``--gpus-per-run``,
    ``--max-retries``."""
    g.add_argument(
        "--executor",
        choices=EXECUTORS,
        default="local",
        help="local: a process pool here; ray: Ray tasks (a local Ray, or --address)",
    )
    g.add_argument(
        "--jobs",
        "-j",
        type=positive_int,
        default=jobs,
        help="runs at once (local; a local Ray gets --jobs x --cpus-per-run CPUs)",
    )
    g.add_argument(
        "--address", help="(ray) the cluster to join: auto, or HOST:PORT (default: $RAY_ADDRESS, else a local Ray)"
    )
    g.add_argument("--cpus-per-run", type=nonnegative_float, default=1.0, help="(ray) CPUs each run asks for")
    g.add_argument(
        "--gpus-per-run",
        type=nonnegative_float,
        default=0.0,
        help="(ray) GPUs each run asks for (0.5: two runs share a GPU)",
    )
    g.add_argument(
        "--max-retries", type=int_at_least(0), default=3, help="(ray) retries of a run whose worker or node died"
    )


def add_run_arguments(q, seeds: int = 3, out: str = "runs/study", jobs: int = 2) -> None:
    """Every option of a command that trains many runs: the recipe options (:func:`add_recipe_arguments`), the
    seeds, ``--out``, ``--overwrite``, ``--quiet``, the executor and its resources; the defaults are the
    command's."""
    add_recipe_arguments(q.add_argument_group("the recipe (default: the command's own)"))
    g = q.add_argument_group("seeds and runs")
    add_seed_arguments(g, seeds)
    g.add_argument("--out", default=out, help=f"the folder of every run and table (default {out})")
    g.add_argument("--overwrite", action="store_true", help="retrain runs whose folders hold another config")
    g.add_argument("--quiet", action="store_true", help="no progress bar")
    add_executor_arguments(q.add_argument_group("where the runs run"), jobs)
    q.set_defaults(
        on_interrupt="interrupted; the same command continues: finished runs are reused, a run in progress "
        "resumes from its last finished epoch"
    )


def run_options(args) -> RunOptions:
    """The :class:`RunOptions` of a parsed command line; a Ray option given with the local executor is an error
    (it would be ignored)."""
    if args.executor == "local":
        ray_only = ("address", "cpus_per_run", "gpus_per_run", "max_retries")
        given = [k for k in ray_only if getattr(args, k) != RunOptions.__dataclass_fields__[k].default]
        if given:
            names = ", ".join("--" + k.replace("_", "-") for k in given)
            raise ConfigError(f"{names}: for --executor ray (the runs run here, with --executor local)")
    return RunOptions(
        seeds=seeds_of(args),
        out=args.out,
        jobs=args.jobs,
        overwrite=args.overwrite,
        executor=args.executor,
        address=args.address,
        cpus_per_run=args.cpus_per_run,
        gpus_per_run=args.gpus_per_run,
        max_retries=args.max_retries,
        progress=not args.quiet,
    )


# -- one run folder ----------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class RunOutcome:
    """What :func:`run_config` did in ``out``: ``reused`` (a finished run of the same config), ``resumed`` (from
    its ``last.pt``) or ``trained`` (from scratch)."""

    out: str
    status: str


_DEVICE: str | None = None  # the device a local worker was given (None: the config's)


def _placed(cfg: TrainConfig) -> TrainConfig:
    """``device: auto`` / ``cuda`` on the device this worker was given (the local executor's GPU spread)."""
    if _DEVICE is not None and cfg.device in ("auto", "cuda"):
        return cfg.replace(device=_DEVICE)
    return cfg


def run_config(cfg_dict: dict, overwrite: bool = False) -> RunOutcome:
    """Make the run folder ``cfg_dict["out"]`` hold the finished run of this configuration: reuse it, resume it
    from its ``last.pt``, or train it; a folder holding another configuration is an error (``overwrite``: trained
    again from scratch)."""
    from ..training import Trainer

    cfg = _placed(TrainConfig.from_dict(cfg_dict))
    rd = RunDir(cfg.out)
    diff = _difference(rd, cfg)
    if rd.is_complete() and diff == []:
        other = _other_data(rd, cfg)
        if other is None:
            return RunOutcome(cfg.out, "reused")
        diff = [f"its data: {other}"]
    if (diff or rd.is_complete()) and not overwrite:
        what = f"another config ({'; '.join(diff)})" if diff else "a finished run without its config.yaml"
        raise ConfigError(f"{rd.path} holds {what}; pass --overwrite to train it again, or another --out")
    resume = not diff and not rd.is_complete() and rd.last.is_file()
    Trainer(cfg, mode="resume" if resume else "overwrite", progress=False).fit()
    return RunOutcome(cfg.out, "resumed" if resume else "trained")


def _other_data(rd: RunDir, cfg: TrainConfig) -> str | None:
    """How the data ``cfg`` names differs from the data the finished run in ``rd`` trained on (its checkpoint's
    record: classes and clip counts; ``data.root`` is a placement key, so a study pointed at other data would
    otherwise reuse the old data's runs); None when it does not, or the run records none (older versions)."""
    from ..data.identity import data_mismatch
    from ..training.rundir import load_checkpoint

    saved = load_checkpoint(rd.best).get("data") if rd.best.is_file() else None
    return data_mismatch(saved, data_record_of(cfg.data)) if saved else None


def data_record_of(data) -> dict:
    """The data record (:func:`~snn_msi.data.identity.data_record`) of a :class:`~snn_msi.data.DataConfig`,
    built once per process."""
    return _data_record(json.dumps(data.to_dict(), sort_keys=True))


@functools.lru_cache(maxsize=4)
def _data_record(data_json: str) -> dict:
    """The data record (:func:`~snn_msi.data.identity.data_record`) of a data config, built once per process
    (classes and clip counts do not depend on the run's seed: every class gives the same share to validation)."""
    from ..data import DataConfig, build_datasets
    from ..data.identity import data_record

    return data_record(build_datasets(DataConfig.from_dict(json.loads(data_json)), 0))


def _difference(rd: RunDir, cfg: TrainConfig) -> list[str] | None:
    """How the configuration saved in ``rd`` differs from ``cfg`` in what a run computes (:data:`PLACEMENT` and
    the model sizes resolved from the data aside): ``[]`` the same, None when the folder has no saved config."""
    saved, wanted = rd.saved_config(), canonical_config(cfg.to_dict())
    if saved is None:
        return None
    resolved = tuple(f"model.{k}" for k, v in wanted["model"].items() if v is None)  # from the data, when run
    return config_diff(saved, wanted, PLACEMENT + resolved)


def finished(cfg: TrainConfig) -> bool:
    """``cfg.out`` holds the finished run of this configuration (what :func:`run_config` reuses); reads only."""
    rd = RunDir(cfg.out)
    return rd.is_complete() and _difference(rd, cfg) == []


def results(out: str | Path) -> RunResult:
    """The results of a finished run, read from its folder (``results.json``)."""
    return RunDir(out).results()


# -- executors ---------------------------------------------------------------------------------------------------
class RunsFailed(ConfigError):
    """Some runs failed; the others finished. The message names the first failed folder and its error."""


class Executor:
    """Runs ``fn(item)`` for every item and returns the results in the order given, with a progress bar of runs
    done / running / failed. A failed run does not stop the others; :class:`RunsFailed` comes at the end."""

    def map(self, fn: Callable, items: list, labels: list[str] | None = None, on_done: Callable | None = None) -> list:
        """``[fn(x) for x in items]``, in the order given; ``on_done(i, result)`` in this process as each finishes."""
        raise NotImplementedError

    def _bar(self, total: int, progress: bool):
        from tqdm import tqdm

        return tqdm(total=total, desc="runs", unit="run", disable=not progress or total == 0, dynamic_ncols=True)

    @staticmethod
    def _finish(results: list, errors: dict[int, BaseException], labels: list[str]) -> list:
        if errors:
            i, err = next(iter(sorted(errors.items())))
            first = str(err).strip().splitlines()[0] if str(err).strip() else type(err).__name__
            raise RunsFailed(
                f"{len(errors)} of {len(results)} runs failed (the others are done and kept); {labels[i]}: {first}"
            )
        return results


def visible_gpus() -> list[str]:
    """``cuda:0 .. cuda:n-1`` for the GPUs this process sees (none on a CPU machine)."""
    import torch

    return [f"cuda:{i}" for i in range(torch.cuda.device_count())] if torch.cuda.is_available() else []


def _die_with_parent() -> None:
    """Linux: this process gets SIGTERM when its parent dies, so a study killed with ``kill`` (not only Ctrl-C,
    which reaches the whole process group) leaves no worker training on, holding its run folder's lock."""
    if sys.platform.startswith("linux"):
        import ctypes
        import signal

        PR_SET_PDEATHSIG = 1
        ctypes.CDLL(None, use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


def _worker_init(devices) -> None:
    """A local worker: one thread (parallel runs share the cores), the next device of the spread, and an end
    with its parent (:func:`_die_with_parent`)."""
    import torch

    global _DEVICE
    _die_with_parent()
    torch.set_num_threads(1)
    _DEVICE = devices.get() if devices is not None else None


def worker_device() -> str | None:
    """The device this worker was given (None: none was)."""
    return _DEVICE


class LocalExecutor(Executor):
    """``jobs`` spawned processes of one thread each on this machine (``jobs == 1``: in this process). With GPUs
    visible, worker ``i`` runs on ``cuda:(i mod GPUs)``: parallel runs spread over the GPUs."""

    def __init__(self, jobs: int = 2, progress: bool = True) -> None:
        self.jobs, self.progress = jobs, progress
        self.devices = visible_gpus()

    def map(self, fn: Callable, items: list, labels: list[str] | None = None, on_done: Callable | None = None) -> list:
        global _DEVICE
        labels = labels or [str(i) for i in range(len(items))]
        out, errors = [None] * len(items), {}
        bar = self._bar(len(items), self.progress)
        if self.jobs <= 1 or len(items) <= 1:
            before, _DEVICE = _DEVICE, (self.devices[0] if self.devices else _DEVICE)
            try:
                for i, x in enumerate(items):
                    bar.set_postfix_str(f"running 1, failed {len(errors)}")
                    try:
                        out[i] = fn(x)
                    except (ValueError, OSError, RuntimeError) as err:
                        errors[i] = err
                    bar.update()
                    if i not in errors and on_done is not None:
                        on_done(i, out[i])
            finally:
                _DEVICE = before
                bar.close()
            return self._finish(out, errors, labels)
        ctx = mp.get_context("spawn")
        queue = None
        if self.devices:
            queue = ctx.Manager().Queue()
            for i in range(self.jobs):
                queue.put(self.devices[i % len(self.devices)])
        with ProcessPoolExecutor(self.jobs, mp_context=ctx, initializer=_worker_init, initargs=(queue,)) as pool:
            pending = {pool.submit(fn, x): i for i, x in enumerate(items)}
            try:
                while pending:
                    bar.set_postfix_str(f"running {min(self.jobs, len(pending))}, failed {len(errors)}")
                    done, _ = wait(pending, return_when=FIRST_COMPLETED)
                    for f in done:
                        i = pending.pop(f)
                        try:
                            out[i] = f.result()
                        except (ValueError, OSError, RuntimeError) as err:
                            errors[i] = err
                        bar.update()
                        if i not in errors and on_done is not None:
                            on_done(i, out[i])
            except BaseException:
                for f in pending:
                    f.cancel()
                raise
            finally:
                bar.close()
        return self._finish(out, errors, labels)


class RayExecutor(Executor):
    """Each item a Ray task asking ``cpus_per_run`` CPUs and ``gpus_per_run`` GPUs (Ray gives the task its GPUs
    as ``CUDA_VISIBLE_DEVICES``, so ``device: auto`` lands on them); a task whose worker or node died is retried
    ``max_retries`` times. ``address``: ``auto`` or ``HOST:PORT`` joins a cluster (None: ``RAY_ADDRESS``, else a
    local Ray on this machine's cores). A Ray already started in this process (``ray.init`` by the caller) is
    used as it is."""

    def __init__(
        self,
        address: str | None = None,
        cpus_per_run: float = 1.0,
        gpus_per_run: float = 0.0,
        max_retries: int = 3,
        jobs: int = 2,
        progress: bool = True,
    ) -> None:
        try:
            import ray  # noqa: F401
        except ImportError:
            raise ConfigError("--executor ray needs Ray: pip install 'snn-msi[scale]' (or pip install ray)") from None
        self.address, self.cpus, self.gpus = address, cpus_per_run, gpus_per_run
        self.max_retries, self.jobs, self.progress = max_retries, jobs, progress

    def _init(self) -> bool:
        """Start or join Ray unless it runs in this process already; True when this call started it."""
        import ray

        if ray.is_initialized():
            return False
        address = self.address or os.environ.get("RAY_ADDRESS") or None
        if address is None:  # a local Ray: it has this machine's GPUs and never more
            import torch

            if self.gpus > (have := torch.cuda.device_count()):
                raise ConfigError(
                    f"--gpus-per-run {self.gpus:g}: this machine has {have} GPU(s) and no --address (a Ray "
                    "cluster) was given; the runs would wait forever"
                )
        local = {"num_cpus": max(1, math.ceil(self.jobs * self.cpus))} if address is None else {}
        ray.init(address=address, include_dashboard=False, log_to_driver=False, **local)
        return True

    def map(self, fn: Callable, items: list, labels: list[str] | None = None, on_done: Callable | None = None) -> list:
        import ray

        labels = labels or [str(i) for i in range(len(items))]
        started = self._init()
        if self.gpus > (have := ray.cluster_resources().get("GPU", 0)):  # a cluster may still grow
            print(
                f"--gpus-per-run {self.gpus:g}: Ray has {have:g} GPU(s) now; the runs wait for nodes with GPUs to "
                "join (Ctrl-C stops)",
                file=sys.stderr,
            )
        task = ray.remote(num_cpus=self.cpus, num_gpus=self.gpus, max_retries=self.max_retries)(_ray_call)
        threads = max(1, int(self.cpus))
        out, errors = [None] * len(items), {}
        bar = self._bar(len(items), self.progress)
        running = {task.remote(fn, x, threads): i for i, x in enumerate(items)}  # Ray schedules by resources
        slots = max(1, int(ray.cluster_resources().get("CPU", 1) / self.cpus))
        try:
            while running:
                bar.set_postfix_str(f"running {min(slots, len(running))}, failed {len(errors)}")
                ready, _ = ray.wait(list(running), num_returns=1)
                for ref in ready:
                    i = running.pop(ref)
                    try:
                        out[i] = ray.get(ref)
                    except Exception as err:  # noqa: BLE001  (a run's error, or a worker lost after retries)
                        errors[i] = getattr(err, "cause", None) or err
                    bar.update()
                    if i not in errors and on_done is not None:
                        on_done(i, out[i])
        except BaseException:
            for ref in running:
                ray.cancel(ref, force=True)
            raise
        finally:
            bar.close()
            if started:
                ray.shutdown()
        return self._finish(out, errors, labels)


def _ray_call(fn: Callable, item, threads: int):
    """A Ray task: ``threads`` torch threads (the CPUs it asked for), then ``fn(item)``."""
    import torch

    torch.set_num_threads(threads)
    return fn(item)


def make_executor(opts: RunOptions) -> Executor:
    """The executor ``opts`` asks for."""
    if opts.executor == "ray":
        return RayExecutor(
            opts.address, opts.cpus_per_run, opts.gpus_per_run, opts.max_retries, opts.jobs, opts.progress
        )
    return LocalExecutor(opts.jobs, opts.progress)


def _run_then(cfg_dict: dict, overwrite: bool, after: Callable[[str], object] | None) -> RunOutcome:
    outcome = run_config(cfg_dict, overwrite)
    if after is not None:
        after(outcome.out)
    return outcome


def run_many(
    configs: list[TrainConfig], opts: RunOptions, after: Callable[[str], object] | None = None
) -> list[RunResult]:
    """Make every configuration's folder hold its finished run (reused, resumed or trained, on ``opts``'
    executor; ``after(folder)`` then runs where the run ran, e.g. a measurement cached in the folder) and return
    each run's results read from its folder, in the order given. Prints how many runs were trained, resumed and
    reused."""
    import functools

    if not opts.overwrite:  # what the workers would each refuse, refused before any of them starts
        held = [(c.out, d) for c in configs if (d := _difference(RunDir(c.out), c))]
        if held:
            raise ConfigError(
                f"{len(held)} of {len(configs)} run folders hold another config (e.g. {held[0][0]}: "
                f"{'; '.join(held[0][1])}); pass --overwrite to train them again, or another --out"
            )
    t0 = time.time()
    fn = functools.partial(_run_then, overwrite=opts.overwrite, after=after)
    done = [0]

    def finished(i: int, outcome: RunOutcome) -> None:
        done[0] += 1
        if opts.progress:
            from tqdm import tqdm

            line = run_line(outcome.out, results(outcome.out), done[0], len(configs), time.time() - t0)
            tqdm.write(f"{line} ({outcome.status})", file=sys.stderr)

    outcomes = make_executor(opts).map(fn, [c.to_dict() for c in configs], [c.out for c in configs], finished)
    counts = {s: sum(o.status == s for o in outcomes) for s in ("trained", "resumed", "reused")}
    print(
        f"{len(configs)} runs ({opts.executor}): {counts['trained']} trained, {counts['resumed']} resumed, "
        f"{counts['reused']} reused, {(time.time() - t0) / 60:.1f} min"
    )
    return [results(c.out) for c in configs]


def run_line(out: str, result: RunResult, done: int, total: int, seconds: float) -> str:
    """``[3/12] runs/demo/IEMF_s0: test 0.873 (audio 0.41, visual 0.80), best val 0.880 at epoch 9; 35 s``."""
    t = result.test
    return (
        f"[{done}/{total}] {out}: test {t.acc:.3f} (audio {t.acc_audio:.2f}, visual {t.acc_visual:.2f}), best val "
        f"{result.best_val_acc:.3f} at epoch {result.best_epoch}; {seconds:.0f} s"
    )
