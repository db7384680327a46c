"""The trainer: one loop for every method; methods are policies (``policies/``), not branches here.

Per epoch: the methods' epoch-level work (``on_epoch_start`` with a typed :class:`EpochView`; it may resample
the training set as a :class:`SamplePlan`), train (progress bar), validate (model selection), append the epoch's
rows to the run log (CSV, TensorBoard when installed), then write ``last.pt`` atomically (it carries the best
weights too) and, on a new best validation accuracy, ``best.pt``. A resumed run continues exactly: model,
optimizer, scheduler, policy state, RNG states and data order. The test split is evaluated once, at the end, with
the best weights (and the methods' state of that epoch), and ``results.json`` marks the run finished (see
:mod:`snn_msi.training.rundir`). Every split's numbers include macro F1 and mAP, and the evaluation passes each
modality's Shapley contribution (:mod:`.metrics`).

Every random draw of a sample comes from (seed, epoch, split, index), so a run's numbers do not depend on the
number of DataLoader workers. They can still differ across machines and thread counts (floating-point sums in
another order); on CUDA, cuDNN's algorithm choice adds more (set ``torch.backends.cudnn.deterministic``).

Data parallel: run under ``torchrun`` (gloo on CPU, nccl on CUDA); policy scores are all-reduced, and the
evaluation shards each split without padding, so every sample counts once.
"""

from __future__ import annotations

import copy
import logging
import math
import os
import random
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from neurons import NonFiniteInputError, kernels

from ..data import DATASETS, build_datasets
from ..data.config import SPLITS
from ..data.identity import base_dataset, data_mismatch, data_record
from ..data.loader import Packed, collate, loader_options, to_device
from ..models import AVNet, AVOutput, ModelConfig, build
from ..schema import ConfigError
from .compute import Compute, ComputeMeter, ops_per_clip
from .config import TrainConfig, check_device, schedule_warnings
from .loggers import DEFAULT_LOGGERS
from .losses import av_losses
from .metrics import MetricsCollector, SplitMetrics
from .policies import (
    DROP_NONE,
    Batch,
    Compose,
    EpochView,
    ForwardContext,
    SamplePlan,
    StepContext,
    TrainStep,
    build_policies,
    check_fusion,
)
from .result import RunResult
from .rundir import CHECKPOINT_VERSION, RunDir, lifecycle_hook, load_checkpoint, save_checkpoint
from .runlog import RunLog, read_csv

log = logging.getLogger(__name__)

__all__ = ["Trainer", "NonFiniteLossError", "evaluate", "load_model", "resolve_device", "seed_everything"]


#: the step-log columns of ``val_every``
_STEP_VAL = ("val_acc", "compute_samples")

#: seconds between two drawings of ``curves.png`` (the last epoch is always drawn), as TensorBoard flushes its
#: events every ``flush_secs``: a 56-epoch digits-av run spent 5 % of its time drawing after every epoch
PLOT_INTERVAL_S = 30.0


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss (``on_nonfinite="stop"``); the message names the batch's clips."""


# -- small pieces ------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> a device that exists here (one-line error otherwise)."""
    check_device(name)
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    dev = torch.device(name)
    if dev.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"device {name!r}: CUDA is not available on this machine (use --device cpu)")
        if dev.index is not None and dev.index >= torch.cuda.device_count():
            raise ConfigError(f"device {name!r}: this machine has {torch.cuda.device_count()} CUDA device(s)")
    return dev


def _rng_state() -> dict:
    np_state = np.random.get_state()
    return {
        "torch": torch.get_rng_state(),
        "cuda": torch.cuda.get_rng_state_all() if torch.cuda.is_available() else [],
        "numpy": [np_state[0], torch.from_numpy(np_state[1].astype(np.int64)), *np_state[2:]],
        "python": random.getstate(),
    }


def _set_rng_state(s: dict) -> None:
    torch.set_rng_state(s["torch"])
    if s["cuda"] and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(s["cuda"])
    n = s["numpy"]
    np.random.set_state((n[0], n[1].numpy().astype(np.uint32), *n[2:]))
    random.setstate(_to_tuple(s["python"]))


def _to_tuple(x):
    return tuple(_to_tuple(i) for i in x) if isinstance(x, list | tuple) else x


def seed_everything(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def _dist_info() -> tuple[int, int]:
    if dist.is_available() and dist.is_initialized():
        return dist.get_rank(), dist.get_world_size()
    return 0, 1


def init_distributed(device: torch.device) -> bool:
    """Join the process group when launched by torchrun (WORLD_SIZE > 1)."""
    if int(os.environ.get("WORLD_SIZE", "1")) > 1 and not dist.is_initialized():
        dist.init_process_group("nccl" if device.type == "cuda" else "gloo")
    return dist.is_available() and dist.is_initialized()


class ShardSampler(Sampler):
    """Rank r of w gets indices r, r + w, ...: every sample exactly once across ranks (no padding, unlike
    ``DistributedSampler``), for evaluation."""

    def __init__(self, n: int, rank: int, world: int) -> None:
        self.indices = list(range(rank, n, world))

    def __iter__(self):
        return iter(self.indices)

    def __len__(self) -> int:
        return len(self.indices)


def _default_workers(ds) -> int:
    if getattr(base_dataset(ds), "in_memory", False):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, cores)


def resolve_model_config(model: ModelConfig, train_set, strict: bool = True) -> ModelConfig:
    """Fill the class count and channel counts the model config leaves to the data (``None``). A class count
    other than the data's is an error (more would score over classes without samples); ``strict=False`` (a run
    resumed from an older version, which allowed more) only warns about more."""
    base = base_dataset(train_set)
    classes = getattr(base, "classes", None)
    changes = {}
    if classes is not None:
        if model.num_classes is None:
            changes["num_classes"] = len(classes)
        elif model.num_classes < len(classes) or (strict and model.num_classes > len(classes)):
            raise ConfigError(
                f"model.num_classes is {model.num_classes} but the data set has {len(classes)} classes (a model "
                "of more classes would score over classes without samples; leave it out to take the data's)"
            )
        elif model.num_classes > len(classes):
            log.warning(
                "model.num_classes is %d, the data set has %d classes: macro F1 and the loss count classes "
                "without samples",
                model.num_classes,
                len(classes),
            )
    if model.audio_channels is None or model.visual_channels is None:
        sample = train_set[0]
        changes.setdefault("audio_channels", model.audio_channels or int(sample.audio.shape[0]))
        changes.setdefault("visual_channels", model.visual_channels or int(sample.frames.shape[1]))
    return model.replace(**changes) if changes else model


def load_model(path: str | Path, device: str = "cpu", data_root: str | Path | None = None) -> tuple[AVNet, TrainConfig]:
    """The model and config stored in a checkpoint (``best.pt``: the best weights; ``last.pt``: the last; a run
    folder: its ``best.pt``); ``data_root``: the data's folder where it moved (the config's ``data.root``)."""
    return model_from_checkpoint(load_checkpoint(path), path, device, data_root)


def model_from_checkpoint(
    state: dict, path: str | Path, device: str = "cpu", data_root: str | Path | None = None
) -> tuple[AVNet, TrainConfig]:
    """:func:`load_model` of a checkpoint already loaded (``state``, read from ``path``)."""
    try:
        cfg = TrainConfig.from_dict(state["config"])
    except ConfigError as err:
        raise ValueError(f"checkpoint {path}: its config does not load: {err}") from None
    if data_root is not None:
        cfg = cfg.replace(data=cfg.data.with_root(Path(data_root).expanduser().resolve()).to_dict())
    model = build(cfg.model)
    _load_weights(model, state["model"], path)
    return model.to(device).eval(), cfg


class IndexedDataset(Dataset):
    """A data set's samples with their index and a drop code: ``(sample, index, drop)``; with a
    :class:`SamplePlan`, the plan's copies (in the plan's order) instead of every sample once."""

    def __init__(self, dataset: Dataset, plan: SamplePlan | None = None) -> None:
        self.dataset = dataset
        if plan is not None:
            n = len(dataset)
            if len(plan.indices) and (int(plan.indices.min()) < 0 or int(plan.indices.max()) >= n):
                raise ValueError(f"a SamplePlan indexes samples outside the training set (0 .. {n - 1})")
        self.indices = plan.indices.tolist() if plan is not None else None
        self.drop = plan.drop.tolist() if plan is not None else None

    def __len__(self) -> int:
        return len(self.dataset) if self.indices is None else len(self.indices)

    def __getitem__(self, i: int):
        if self.indices is None:
            return self.dataset[i], i, DROP_NONE
        j = self.indices[i]
        return self.dataset[j], j, self.drop[i]


def _collate_indexed(items):
    samples, index, drop = zip(*items, strict=True)
    return collate(list(samples)), torch.tensor(index), torch.tensor(drop)


def to_batch(item, device: torch.device) -> Batch:
    """A DataLoader item (a collated ``AVSample``, or ``(AVSample, index, drop)`` of :class:`IndexedDataset`)
    -> a :class:`Batch` on ``device``."""
    if isinstance(item, tuple | list) and len(item) == 3 and not hasattr(item, "audio"):
        sample, index, drop = item
    else:
        sample, index, drop = item, None, None
    y = torch.as_tensor(sample.label)
    n = y.numel()
    index = torch.arange(n) if index is None else index
    drop = torch.zeros(n, dtype=torch.long) if drop is None else drop
    sample = to_device(sample, device)  # compact worker batches are finished on the device
    y = y.to(device, non_blocking=True)
    return Batch(sample.audio, sample.frames, y, index.to(device), drop.to(device), list(sample.clip_id))


@torch.no_grad()
def evaluate_pass(
    model, groups, batches, device: torch.device, amp: bool, predict=None, forward=None, shapley: bool = True
) -> MetricsCollector:
    """One evaluation pass: loss (plain cross-entropy of the fused logits, as the original validates),
    accuracies, F1, mAP and, with ``shapley``, the fused predictions with each modality's features masked.
    ``predict`` / ``forward``: the methods' (a method's own evaluation forward, e.g. Greedy's MMTM encoders)."""
    model.eval()
    col = MetricsCollector(device)
    for batch in batches:
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            fwd = ForwardContext(model, groups, batch, 0, False, predict)
            out = forward(fwd) if forward is not None else None
            if out is None:
                out = fwd.run()
            masked = None
            if shapley and fwd.used is not None:
                a, v = fwd.used
                za, zv = torch.zeros_like(a), torch.zeros_like(v)
                masked = {
                    "only_audio": fwd.output(a, zv, keep=False).fused,
                    "only_visual": fwd.output(za, v, keep=False).fused,
                    "none": fwd.output(za, zv, keep=False).fused,
                }
        if not bool(torch.isfinite(out.fused).all()):
            ids = list(batch.clip_id)
            raise NonFiniteLossError(f"non-finite outputs for the clips {', '.join(ids[:4])}{' ...' * (len(ids) > 4)}")
        col.add(
            F.cross_entropy(out.fused.float(), batch.y),
            out,
            batch.y,
            {k: z.float() for k, z in masked.items()} if masked else None,
        )
    return col


def evaluate(
    model,
    ds: Dataset,
    device: torch.device | str = "cpu",
    batch_size: int = 32,
    amp: bool = False,
    policies: Compose | None = None,
) -> SplitMetrics:
    """Loss (plain cross-entropy of the fused logits), accuracies and imbalance numbers of ``model`` on ``ds`` (one
    process). ``policies``: the run's methods (set up on ``model``), for the methods that change the prediction
    (MMCosine, MLA, ReconBoost, UME); without them the model's own fusion predicts."""
    return evaluate_collect(model, ds, device, batch_size, amp, policies).result()


def evaluate_collect(
    model, ds: Dataset, device: torch.device | str = "cpu", batch_size: int = 32, amp: bool = False, policies=None
) -> MetricsCollector:
    """:func:`evaluate`'s pass, returned unreduced: ``.result()`` the numbers, ``.predictions()`` every sample's."""
    device = torch.device(device)
    opts = loader_options(_default_workers(ds), device)
    loader = DataLoader(Packed(ds), batch_size=batch_size, shuffle=False, collate_fn=collate, **opts)
    predict = policies.predict if policies is not None and policies.owner("predict") is not None else None
    forward = policies.forward if policies is not None and policies.owner("forward") is not None else None
    batches = (to_batch(b, device) for b in loader)
    return evaluate_pass(model, model.parameter_groups(), batches, device, amp, predict, forward)


def _load_weights(model, weights, path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(f"checkpoint {path} does not match this model: {' '.join(first[:3])}") from None


# -- the trainer -------------------------------------------------------------------------------------------
class _SkipBatch(Exception):
    """A non-finite loss or gradient inside a step that ``on_nonfinite="skip"`` skips."""


class Trainer:
    """Train, validate and test one configuration.

    Args:
        config: the run's :class:`TrainConfig` (saved as ``config.yaml`` in ``config.out``).
        datasets: ``(train, val, test)``; default from ``config.data``.
        model: default ``build(config.model)`` (with class and channel counts taken from the data).
        policies: default from ``config.policies``.
        mode: ``"new"``, ``"resume"`` or ``"overwrite"`` (see :class:`~snn_msi.training.rundir.RunDir`).
        progress: progress bars (and one-line warnings about a schedule that does not fit the data).
        stop_after: stop (as if killed) after this many epochs of this call; for tests and time-boxed runs.
        on_epoch: called with each epoch's row, that of ``metrics.csv``, once the epoch's checkpoint is written
            (under ``torchrun``: rank 0's, its answer sent to every rank); returning True ends :meth:`fit` there as
            ``stop_after`` does (it returns None; the checkpoint stays, so the run can be resumed), except at the
            last epoch, which finishes the run as usual. ``snn-msi sweep`` reports to Optuna and prunes with it.
        plots: draw ``curves.png``: after an epoch when :data:`PLOT_INTERVAL_S` have passed since the last
            drawing, and after the last epoch of the call (drawing takes about 0.2 s, as long as a demo epoch's
            tenth).
        loggers: where the epochs' numbers go besides the CSV files (``tb``, ``mlflow``, ``wandb``: :mod:`.loggers`).
        unique_out: ``config.out`` is a name made up for a new run: the run takes ``out``, ``out-1``, ... (the
            first that does not exist; :class:`~snn_msi.training.rundir.RunDir`); ``trainer.cfg.out`` is the one.
    """

    def __init__(
        self,
        config: TrainConfig,
        datasets: tuple[Dataset, Dataset, Dataset] | None = None,
        model: AVNet | None = None,
        policies: Compose | None = None,
        mode: str = "new",
        progress: bool = True,
        stop_after: int | None = None,
        on_epoch: Callable[[dict], bool] | None = None,
        plots: bool = True,
        loggers: tuple[str, ...] = DEFAULT_LOGGERS,
        unique_out: bool = False,
    ) -> None:
        self.device = resolve_device(config.device)
        self.distributed = init_distributed(self.device)
        self.rank, self.world = _dist_info()
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        # the methods first: a combination they refuse fails before a run folder is made
        self.policies = policies if policies is not None else build_policies(config.policies, config.seed)
        check_fusion(self.policies.names(), config.model.fusion)
        if self.distributed and not self.policies.data_parallel:
            raise ConfigError(
                f"method(s) {self.policies.label} run more passes of the model than data parallel "
                "training's one forward per step; train them in one process"
            )
        if unique_out and mode != "new":
            raise ValueError("a made-up run folder name (unique_out) is for a new run")
        root = config.data.root
        if (
            mode != "resume"
            and DATASETS.get(config.data.dataset).needs_root
            and root
            and Path(config.out).resolve().is_relative_to(Path(root).resolve())
        ):
            raise ConfigError(
                f"--out {config.out} lies in the data folder {root}: the run's files could be read as data by "
                "the next run; put runs elsewhere"
            )
        self.rundir = RunDir(config.out, mode, unique=unique_out and self.rank == 0)
        if self.rank == 0:
            self.has_checkpoint = self.rundir.prepare()
        if unique_out:  # the folder rank 0 claimed is the run's (every rank's)
            out = [str(self.rundir.path)]
            if self.distributed:
                dist.broadcast_object_list(out, src=0)
            config = config.replace(out=out[0])
            if self.rank != 0:
                self.rundir = RunDir(config.out, mode)
        if self.rank != 0:
            self.has_checkpoint = self.rundir.last.is_file()
        self.mode, self.wrote_checkpoint = mode, False
        self.progress, self.stop_after, self.plots = progress and self.rank == 0, stop_after, plots
        self.on_epoch = on_epoch
        self._plotted = -math.inf  # when curves.png was last drawn (time.monotonic)
        self.loggers = loggers
        try:
            self._build(config, datasets, model)
        except BaseException:  # the folder is unlocked (and removed when the run wrote nothing)
            self.rundir.release()
            raise

    def _build(self, config: TrainConfig, datasets, model) -> None:
        """Data, model, optimizer and log of the run (the folder is locked)."""
        seed_everything(config.seed)
        # a new run's folder takes the lists of clips a strict data check (on_bad_clip: raise) stops at; otherwise
        # the lists are written once the run is checked (_write_bad_clips)
        lists = self.rundir.work if self.mode == "new" and config.data.on_bad_clip == "raise" else None
        self.train_set, self.val_set, self.test_set = datasets or build_datasets(config.data, config.seed, lists)
        self.data = data_record((self.train_set, self.val_set, self.test_set))
        if model is None:
            model_cfg = resolve_model_config(config.model, self.train_set, strict=self.mode != "resume")
            config = config.replace(model=model_cfg.to_dict())
            model = build(config.model)
        self.cfg = config
        self.model = model.to(self.device)  # the plain model, as the methods' contexts see it
        self.wrapped = self.model  # the model as the training forward runs it: DDP-wrapped and / or compiled
        if self.distributed:
            self.wrapped = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if config.compile:
            self.wrapped = torch.compile(self.wrapped)
        self.groups = self.model.parameter_groups()
        self.policies.setup(self.model)
        self.predict = self.policies.predict if self.policies.owner("predict") is not None else None
        self.unimodal = config.loss.trains_heads(self.policies.needs_unimodal_losses)
        self.params = list(self.model.parameters()) + self.policies.parameters()
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.amp = config.amp and self.device.type == "cuda"
        self.workers = (
            config.data.num_workers if config.data.num_workers is not None else _default_workers(self.train_set)
        )
        self.runlog = RunLog(
            self.rundir.work,
            enabled=self.rank == 0,
            step_columns=(
                "epoch",
                "step",
                "loss",
                *self.policies.log_columns(),
                *(_STEP_VAL if config.val_every else ()),
            ),
            loggers=self.loggers,
            config=config.to_dict(),
        )
        for warning in schedule_warnings(config, len(self.train_set)) if self.progress else []:
            log.warning(warning)
        self.best, self.best_epoch, self.best_model, self.best_policies = -1.0, 0, None, None
        self.start_epoch, self.step = 0, 0
        self.meter = ComputeMeter(Compute(), frames_per_clip=int(self.train_set[0].frames.shape[0]))

    def _optimizer(self, params: list | None = None):
        """The run's optimizer over ``params`` (default: the model's and the methods' parameters)."""
        c = self.cfg
        if params is None:
            params = [p for p in self.model.parameters() if p.requires_grad] + self.policies.parameters()
        if not c.weight_decay_1d:  # timm's filter: no decay on biases and norm weights (1-D tensors)
            params = [
                {"params": [p for p in params if p.dim() > 1]},
                {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0},
            ]
        if c.optimizer == "sgd":
            return torch.optim.SGD(
                params,
                lr=c.lr,
                momentum=c.momentum,
                nesterov=c.nesterov and c.momentum > 0,
                weight_decay=c.weight_decay,
            )
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    # -- data -----------------------------------------------------------------------------------------------
    def _loader(
        self,
        ds: Dataset,
        epoch: int,
        train: bool,
        plan: SamplePlan | None = None,
        shuffle: bool | None = None,
        seed_offset: int = 0,
    ) -> DataLoader:
        shuffle = train if shuffle is None else shuffle
        sampler, collate_fn, ds = None, collate, Packed(ds)
        if train:
            ds, collate_fn = IndexedDataset(ds, plan), _collate_indexed
        if self.distributed:
            from torch.utils.data.distributed import DistributedSampler

            if train:
                sampler = DistributedSampler(ds, shuffle=shuffle, seed=self.cfg.seed + seed_offset)
                sampler.set_epoch(epoch)
            else:
                sampler = ShardSampler(len(ds), self.rank, self.world)
            shuffle = False
        # data order depends on (seed, epoch) only
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch + seed_offset)
        opts = loader_options(self.workers, self.device)
        return DataLoader(
            ds,
            batch_size=self.cfg.batch_size,
            shuffle=shuffle,
            sampler=sampler,
            generator=g,
            drop_last=False,
            collate_fn=collate_fn,
            **opts,
        )

    def _bar(self, loader, desc: str):
        from tqdm import tqdm  # the plain class: tqdm.auto's asyncio variant calls iter() on the loader twice

        return tqdm(loader, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    # -- steps ----------------------------------------------------------------------------------------------
    def _forward(self, batch: Batch, epoch: int) -> tuple[AVOutput, ForwardContext | None]:
        """The training forward: a method's own, the features-then-prediction path where a method needs it, else
        the (possibly DDP-wrapped or compiled) model."""
        fwd = ForwardContext(self.model, self.groups, batch, epoch, True, self.predict)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
            out = self.policies.forward(fwd)
            if out is None and (self.predict is not None or self.policies.needs_features):
                out = fwd.run()
            if out is None:
                return self.wrapped(batch.audio, batch.frames), None
        return out, fwd

    def _optimizer_step(self, epoch: int) -> None:
        """Finite-gradient check, clipping, the optimizer step (raises :class:`_SkipBatch` to skip the batch)."""
        grads = [p.grad for p in self.params if p.grad is not None]
        norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
        if not math.isfinite(norm):
            self.optimizer.zero_grad(set_to_none=True)
            raise _SkipBatch(f"non-finite gradient (norm {norm})")
        if self.cfg.grad_clip:
            torch.nn.utils.clip_grads_with_norm_(grads, self.cfg.grad_clip, torch.tensor(norm))
        self.optimizer.step()

    def _step(self, batch: Batch, epoch: int, index: int, batches: int) -> tuple[AVOutput, float, torch.Tensor]:
        """One training step; returns the output, the loss (a float, for the logs) and the loss tensor."""
        if self.policies.owner("train_step") is not None:
            fwd = ForwardContext(self.model, self.groups, batch, epoch, True, self.predict)
            step = TrainStep(
                self.model,
                self.groups,
                batch,
                epoch,
                index,
                batches,
                fwd,
                lambda: self.optimizer.zero_grad(set_to_none=True),
                lambda: self._optimizer_step(epoch),
            )
            out, total = self.policies.train_step(step)
            loss_value = float(total.detach())
            if not math.isfinite(loss_value):
                raise _SkipBatch(f"non-finite loss ({loss_value})")
            return out, loss_value, total
        self.optimizer.zero_grad(set_to_none=True)
        out, fwd = self._forward(batch, epoch)
        losses = av_losses(out, batch.y, self.cfg.loss, self.unimodal)
        ctx = StepContext(self.model, self.groups, out, batch.y, epoch, losses, batch, fwd)
        weights = self.policies.loss_weights(ctx) or {}
        unknown = set(weights) - set(losses)
        if unknown:
            raise ConfigError(
                f"methods {self.policies.label} weight loss terms this run does not have: "
                f"{', '.join(sorted(unknown))} (it has {', '.join(losses)})"
            )
        # a term weighted 0 is left out (not multiplied by 0): parameters only it reaches get no gradient, so
        # momentum and weight decay leave them alone, as in the codes that optimise only the other terms
        terms = [v * weights.get(k, 1.0) for k, v in losses.items() if weights.get(k, 1.0) != 0]
        ctx.extra = self.policies.loss(ctx)
        if ctx.extra is not None:
            terms.append(ctx.extra)
        total = sum(terms) if terms else torch.zeros((), device=self.device)
        loss_value = float(total.detach())
        if not math.isfinite(loss_value):
            raise _SkipBatch(f"non-finite loss ({loss_value})")
        if not self.policies.backward(ctx, total) and total.requires_grad:
            total.backward()
        self.policies.before_step(ctx)
        self._optimizer_step(epoch)
        return out, loss_value, total

    def train_epoch(self, epoch: int, plan: SamplePlan | None = None) -> tuple[SplitMetrics, int]:
        """One epoch (on ``plan``'s samples when a method resampled the training set); returns its training
        metrics and the number of batches skipped for a non-finite loss."""
        self.wrapped.train()
        base = base_dataset(self.train_set)
        if hasattr(base, "set_epoch"):
            base.set_epoch(epoch)
        col, skipped = MetricsCollector(self.device), 0
        loader = self._loader(self.train_set, epoch, train=True, plan=plan)
        bar = self._bar(loader, f"epoch {epoch + 1}/{self.cfg.epochs}")
        for index, item in enumerate(bar):
            batch = to_batch(item, self.device)
            try:
                out, loss_value, total = self._step(batch, epoch, index, len(loader))
            except NonFiniteInputError as err:  # a diverged network or a corrupt sample inside a spiking layer
                skipped += self._nonfinite(batch, epoch, str(err))
                continue
            except _SkipBatch as err:
                skipped += self._nonfinite(batch, epoch, str(err))
                continue
            col.add(total, out, batch.y)
            step_log = self.policies.step_log()
            row = {"epoch": epoch + 1, "step": self.step, "loss": loss_value, **step_log}
            self.step += 1
            if self.cfg.val_every and self.step % self.cfg.val_every == 0:
                row.update(self._step_validation(epoch))
            self.runlog.step(row)
            if self.progress:
                shown = {k: f"{step_log[k]:.3f}" for k in self.policies.headlines()}
                bar.set_postfix(loss=f"{loss_value:.3f}", **shown)
        return col.result(), skipped

    def _step_validation(self, epoch: int) -> dict[str, float]:
        """The validation accuracy after this step and the training samples so far (``val_every``); the random
        state and training mode are restored, so the run goes on exactly as without it."""
        state = _rng_state()
        acc = self.evaluate(self.val_set, epoch).acc
        _set_rng_state(state)
        self.wrapped.train()
        return {"val_acc": acc, "compute_samples": self.meter.compute.samples}

    def _nonfinite(self, batch: Batch, epoch: int, what: str) -> int:
        """Stop with the batch's clips named (``on_nonfinite="stop"``), or return 1 to count a skipped batch."""
        if self.cfg.on_nonfinite == "skip":
            return 1
        ids = list(batch.clip_id)
        raise NonFiniteLossError(
            f"{what} at epoch {epoch + 1}, step {self.step}; the batch's clips: {', '.join(ids[:8])}"
            f"{' ...' if len(ids) > 8 else ''} (lower --lr, check those clips, or --set on_nonfinite=skip)"
        )

    def evaluate(self, ds: Dataset, epoch: int | None = None) -> SplitMetrics:
        """Loss, accuracies and imbalance numbers on a data set (each sample once, also across ranks).

        Non-finite outputs (a diverged model, whatever ``on_nonfinite`` says: a model that cannot be evaluated
        cannot be selected) stop the run with :class:`NonFiniteLossError`, naming the epoch and step; its last
        checkpoint, of the last good epoch, stays as it is."""
        if self.distributed:  # what DDP's forward does first: every rank evaluates with rank 0's BN statistics
            for buf in self.model.buffers():
                dist.broadcast(buf, 0)
        batches = (to_batch(b, self.device) for b in self._loader(ds, 0, train=False))
        try:
            forward = self.policies.forward if self.policies.owner("forward") is not None else None
            with self.meter.evaluating():
                col = evaluate_pass(self.model, self.groups, batches, self.device, self.amp, self.predict, forward)
            return col.result()
        except (NonFiniteInputError, NonFiniteLossError) as err:
            when = f" at epoch {epoch + 1}, step {self.step}" if epoch is not None else ""
            kept = (
                f"; {self.rundir.last} (epoch {epoch}) is the last good checkpoint"
                if epoch and self.rundir.last.is_file()
                else ""
            )
            raise NonFiniteLossError(
                f"the model has diverged{when}: evaluating it gives non-finite values ({err}){kept}"
            ) from None

    def epoch_view(self, epoch: int) -> _EpochView:
        """The typed view of the run that methods get at the start of ``epoch``."""
        return _EpochView(self, epoch)

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self, epochs_done: int) -> dict:
        """What resume needs, and nothing else (the logs live in their files)."""
        return {
            "version": CHECKPOINT_VERSION,
            "config": self.cfg.to_dict(),
            "epoch": epochs_done,
            "step": self.step,
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "policies": self.policies.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_model": self.best_model,
            "best_policies": self.best_policies,
            "compute": self.meter.compute.state_dict(),
            "data": self.data,
        }

    def _save_best(self, config: dict) -> None:
        """``best.pt``: the best weights so far (with the methods' state of that epoch) and the config."""
        save_checkpoint(
            {
                "version": CHECKPOINT_VERSION,
                "config": config,
                "model": self.best_model,
                "policies": self.best_policies,
                "epoch": self.best_epoch,
                "val_acc": self.best,
                "data": self.data,
            },
            self.rundir.best,
        )

    def _restore_best(self) -> None:
        """After a resume: write ``best.pt`` from ``last.pt``'s best weights when a kill came between the two."""
        rd = self.rundir
        if self.rank != 0 or self.best_model is None:
            return
        try:
            current = load_checkpoint(rd.best).get("epoch") if rd.best.is_file() else None
        except ValueError:  # a corrupt best.pt is replaced too
            current = None
        if current != self.best_epoch:
            log.warning("%s: best.pt restored from last.pt (epoch %d)", rd.path, self.best_epoch)
            self._save_best(self.cfg.to_dict())

    def load_state_dict(self, state: dict, path: Path) -> None:
        if state.get("version") != CHECKPOINT_VERSION or "optimizer" not in state:
            raise ValueError(
                f"checkpoint {path} cannot be resumed (version {state.get('version')}, or a weights-only file)"
            )
        self.rundir.check_resume_config(state["config"], self.cfg.to_dict())
        why = data_mismatch(state.get("data"), self.data)
        if why is not None:
            raise ConfigError(
                f"cannot resume {self.rundir.path} on the data at {self.cfg.data.root or self.cfg.data.dataset}: "
                f"{why}; a resumed run goes on with the data it trained on (train a new run for other data)"
            )
        _load_weights(self.model, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.policies.load_state_dict(state["policies"])
        _set_rng_state(state["rng"])
        self.start_epoch, self.step = state["epoch"], state["step"]
        self.best, self.best_epoch, self.best_model = state["best"], state["best_epoch"], state["best_model"]
        self.best_policies = state.get("best_policies")
        self.meter.compute.load_state_dict(state.get("compute"))

    def _plot(self) -> None:
        from ..plots import training_curves

        self._plotted = time.monotonic()
        headlines = self.policies.headlines()
        training_curves(
            read_csv(self.rundir.work / "metrics.csv"),
            read_csv(self.rundir.work / "steps.csv"),
            self.rundir.work / "curves.png",
            headlines[0] if headlines else None,
        )

    # -- the run --------------------------------------------------------------------------------------------
    def fit(self) -> RunResult | None:
        """Train (or resume), select on validation, test once with the best weights; returns the results (None
        when ``stop_after`` or ``on_epoch`` stopped the run before its last epoch).

        Resuming a finished run returns its results, or, with more ``epochs`` than it trained (``--resume RUN
        --epochs N``), continues it to epoch N as a larger ``max_epochs`` does in Lightning: from its last
        checkpoint, with the learning-rate schedule where it stopped (the same milestones and gamma). Fewer epochs
        than trained is an error. The run folder is unlocked at the end, also when a run fails.
        """
        try:
            kernels.prepare(self.model, self.device)  # a kernel's build is not the run's compute
            with self.meter:
                return self._fit()
        finally:
            self.runlog.close()
            self.rundir.release()

    def _told_to_stop(self, row: dict) -> bool:
        """``on_epoch``'s answer for this epoch: rank 0's, on every rank (each rank takes part in the broadcast
        whether or not it was given a callback; an error in rank 0's is raised on every rank)."""
        answer: list = [False, None]
        if self.rank == 0 and self.on_epoch is not None:
            try:
                answer[0] = bool(self.on_epoch(row))
            except Exception as err:
                if not self.distributed:
                    raise
                answer[1] = err
        if self.distributed:
            sent = [answer[0], None if answer[1] is None else f"{type(answer[1]).__name__}: {answer[1]}"]
            dist.broadcast_object_list(sent, src=0)
            if sent[1] is not None:
                if answer[1] is not None:
                    raise answer[1]
                raise RuntimeError(f"on_epoch failed on rank 0: {sent[1]}")
            answer[0] = sent[0]
        return answer[0]

    def _resume(self) -> bool:
        """Load ``last.pt``; True when the run is finished and has nothing to do."""
        rd = self.rundir
        state = load_checkpoint(rd.last)
        trained = int(state.get("epoch", 0))
        if self.cfg.epochs < trained:
            raise ConfigError(
                f"--epochs {self.cfg.epochs}: {rd.path} has trained {trained} epochs already; a run "
                f"continues to more epochs, it cannot be cut back (give --epochs {trained} or more, "
                "or start a new run)"
            )
        finished = rd.is_complete() and trained >= self.cfg.epochs
        self.load_state_dict(state, rd.last)
        self._restore_best()
        if finished:
            return True
        if rd.is_complete():
            rd.results_file.unlink()  # the results of the shorter run: the continued run writes its own
            lr = self.optimizer.param_groups[0]["lr"]
            log.warning(
                "continuing the finished run %s from epoch %d to %d; the learning-rate schedule goes on where "
                "it stopped (lr %g now; x%g at epochs %s)",
                rd.path,
                trained,
                self.cfg.epochs,
                lr,
                self.cfg.gamma,
                list(self.cfg.milestones) or "none",
            )
        self.runlog.truncate(self.start_epoch)
        if self.rank == 0:
            rd.write_config(self.cfg)  # the resumable keys it may change (epochs, device, ...)
        log.info("resumed from %s at epoch %d", rd.last, self.start_epoch)
        return False

    def _write_bad_clips(self) -> None:
        """``bad_clips_<data set>_<split>.json`` for each split that left clips out, once the run is checked: a
        refused resume leaves the run's lists as they are, an ``--overwrite`` writes them with its other files."""
        for split, ds in zip(SPLITS, (self.train_set, self.val_set, self.test_set), strict=True):
            base = base_dataset(ds)
            bad = getattr(base, "bad", None)
            if bad is not None and bad.count:
                path = bad.write(self.rundir.work / f"bad_clips_{base.name}_{split}.json")
                log.warning("the %s split's clips left out are listed in %s", split, path)

    def _fit(self) -> RunResult | None:
        rd = self.rundir
        if self.has_checkpoint:
            if self._resume():
                rd.check_resume_config(rd.saved_config() or {}, self.cfg.to_dict())
                log.info("%s is a finished run; its results are returned as they are", rd.path)
                return rd.results()
        elif self.rank == 0:
            self.runlog.truncate(0)  # a run that starts afresh (--resume before any checkpoint) logs from nothing
            rd.write_config(self.cfg)
        if self.rank == 0:
            self._write_bad_clips()
        done = 0
        for epoch in range(self.start_epoch, self.cfg.epochs):
            t0 = time.time()
            lr = self.optimizer.param_groups[0]["lr"]
            plan = self.policies.on_epoch_start(self.epoch_view(epoch))
            train, skipped = self.train_epoch(epoch, plan)
            val = self.evaluate(self.val_set, epoch)
            self.scheduler.step()
            self.policies.on_validation(val, epoch)
            row = {
                "epoch": epoch + 1,
                "lr": lr,
                **train.row("train"),
                **val.row("val"),
                "nonfinite_skipped": skipped,
                "train_samples": train.n,
                "seconds": time.time() - t0,
            }
            self.meter.lap()
            row.update(self.meter.compute.row())
            if val.acc > self.best:
                self.best, self.best_epoch = val.acc, epoch + 1
                self.best_model = copy.deepcopy({k: v.detach().cpu() for k, v in self.model.state_dict().items()})
                self.best_policies = _to_cpu(self.policies.state_dict())
            if self.rank == 0:
                self.runlog.epoch(row)  # the row first: a kill before the checkpoint redoes (and re-logs) the epoch
                lifecycle_hook("after_log", epoch + 1)
                state = self.state_dict(epoch + 1)
                save_checkpoint(state, rd.last)
                self.wrote_checkpoint = True
                lifecycle_hook("after_last_pt", epoch + 1)
                if self.best_epoch == epoch + 1:
                    self._save_best(state["config"])
                    lifecycle_hook("after_best_pt", epoch + 1)
                if rd.commit():  # a run that replaces another: its first checkpoint is written, the old run goes
                    self.runlog.relocate(rd.work)
            done += 1
            told = self._told_to_stop(row)
            stopping = (told or self.stop_after is not None and done >= self.stop_after) and epoch + 1 < self.cfg.epochs
            if self.plots and self.rank == 0:
                last_epoch = stopping or epoch + 1 == self.cfg.epochs
                if last_epoch or time.monotonic() - self._plotted >= PLOT_INTERVAL_S:
                    self._plot()
            if stopping:
                return None
        if self.best_model is not None:
            self.model.load_state_dict(self.best_model)
            if self.best_policies is not None:  # the methods' own parameters and state of the best epoch too
                self.policies.load_state_dict(self.best_policies)
        test = self.evaluate(self.test_set)
        means = _policy_means(read_csv(rd.work / "steps.csv"), self.policies) if self.rank == 0 else {}
        clips = Packed(self.test_set)  # the first 8 test clips, without a DataLoader (and its workers) for them
        b = to_batch(collate([clips[i] for i in range(min(8, len(clips)))]), self.device)
        with self.meter.evaluating():
            self.meter.compute.ops = ops_per_clip(self.model, b.audio, b.frames)
        compute = self.meter.compute.row(wall=False)
        result = RunResult(self.best, self.best_epoch, self.cfg.epochs, test, means, compute)
        if self.rank == 0:
            rd.mark_complete(result)
        return result


def _to_cpu(obj):
    """A deep copy of nested dicts / lists of tensors, on the CPU."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().cpu().clone()
    if isinstance(obj, dict):
        return {k: _to_cpu(v) for k, v in obj.items()}
    if isinstance(obj, list | tuple):
        return type(obj)(_to_cpu(v) for v in obj)
    return copy.deepcopy(obj)


class _EpochView(EpochView):
    """The trainer's :class:`EpochView`: its model and data, seeded by (seed, epoch)."""

    def __init__(self, trainer: Trainer, epoch: int) -> None:
        self.trainer = trainer
        self.model, self.groups = trainer.model, trainer.groups
        self.epoch, self.epochs, self.seed = epoch, trainer.cfg.epochs, trainer.cfg.seed
        self.num_classes = int(trainer.cfg.model.num_classes)
        self.predict = trainer.predict
        self.device = trainer.device
        self._offset = 0

    def _dataset(self, split: str) -> Dataset:
        if split not in ("train", "val"):
            raise ValueError(f"an epoch view reads the 'train' or 'val' split, got {split!r}")
        return self.trainer.train_set if split == "train" else self.trainer.val_set

    def num_batches(self, split: str) -> int:
        return math.ceil(len(self._dataset(split)) / self.trainer.cfg.batch_size)

    def batches(self, split: str, shuffle: bool = False, limit: int | None = None):
        ds = self._dataset(split)
        base = base_dataset(ds)
        if split == "train" and hasattr(base, "set_epoch"):
            base.set_epoch(self.epoch)
        self._offset += 1  # each pass its own (seeded) order
        loader = self.trainer._loader(
            ds, self.epoch, train=split == "train", shuffle=shuffle, seed_offset=7919 * self._offset
        )
        for i, item in enumerate(loader):
            if limit is not None and i >= limit:
                break
            yield to_batch(item, self.device)

    def train_copy(self, model, loss_fn, epochs: int) -> list[float]:
        t = self.trainer
        params = [p for p in model.parameters() if p.requires_grad]
        opt = t._optimizer(params)
        for group in opt.param_groups:
            group["lr"] = t.optimizer.param_groups[0]["lr"]
        losses = []
        model.train()
        for _ in range(epochs):
            total, n = 0.0, 0
            for b in self.batches("train", shuffle=True):
                opt.zero_grad(set_to_none=True)
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=t.amp):
                    loss = loss_fn(model(b.audio, b.frames), b.y)
                if not math.isfinite(float(loss.detach())):
                    raise NonFiniteLossError(f"a copy trained at epoch {self.epoch + 1} met a non-finite loss")
                loss.backward()
                opt.step()
                total += float(loss.detach()) * b.y.numel()
                n += b.y.numel()
            losses.append(total / max(n, 1))
        return losses


def _policy_means(steps: list[dict], policies: Compose) -> dict[str, dict[str, float]]:
    """Each policy's declared log fields averaged over the steps that logged them (``{"ogm_ge": {"coeff_audio":
    ...}}``); a field no step logged is left out."""
    means: dict[str, dict[str, float]] = {}
    for p in policies.policies:
        for name in p.log_class.names():
            values = np.array([float(s.get(f"{p.name}/{name}", math.nan)) for s in steps], dtype=float)
            if not np.isnan(values).all():
                means.setdefault(p.name, {})[name] = float(np.nanmean(values))
    return means
