"""The trainer: one loop for every method; methods are policies (``policies/``), not branches here.

Per epoch: train (progress bar), validate (model selection), append the epoch's rows to the run log (CSV,
TensorBoard when installed), then write ``last.pt`` atomically (it carries the best weights too) and, on a new
best validation accuracy, ``best.pt``. A resumed run continues exactly: model, optimizer, scheduler, policy
state, RNG states and data order. The test split is evaluated once, at the end, with the best weights, and
``results.json`` marks the run finished (see :mod:`snn_msi.training.rundir`).

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
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, Sampler

from neurons import NonFiniteInputError

from ..data import build_datasets
from ..models import AVNet, ModelConfig, build
from ..schema import ConfigError
from .config import TrainConfig
from .losses import av_losses
from .metrics import SUM_FIELDS, SplitMetrics, batch_sums
from .policies import Compose, StepContext, build_policies
from .rundir import CHECKPOINT_VERSION, RunDir, load_checkpoint, save_checkpoint
from .runlog import RunLog, read_csv

log = logging.getLogger(__name__)

__all__ = ["Trainer", "NonFiniteLossError", "evaluate", "load_model", "resolve_device", "seed_everything"]


class NonFiniteLossError(RuntimeError):
    """Training met a NaN or infinite loss (``on_nonfinite="stop"``); the message names the batch's clips."""


# -- small pieces ------------------------------------------------------------------------------------------
def resolve_device(name: str) -> torch.device:
    """``auto`` / ``cpu`` / ``cuda`` / ``cuda:N`` -> a device that exists here (one-line error otherwise)."""
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


def _base_dataset(ds):
    while hasattr(ds, "dataset"):
        ds = ds.dataset
    return ds


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
    if getattr(_base_dataset(ds), "in_memory", False):
        return 0
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return min(8, cores)


def resolve_model_config(model: ModelConfig, train_set) -> ModelConfig:
    """Fill the class count and channel counts the model config leaves to the data (``None``)."""
    base = _base_dataset(train_set)
    classes = getattr(base, "classes", None)
    changes = {}
    if classes is not None:
        if model.num_classes is None:
            changes["num_classes"] = len(classes)
        elif model.num_classes < len(classes):
            raise ConfigError(f"model.num_classes is {model.num_classes} but the data set has {len(classes)} classes")
    if model.audio_channels is None or model.visual_channels is None:
        sample = train_set[0]
        changes.setdefault("audio_channels", model.audio_channels or int(sample.audio.shape[0]))
        changes.setdefault("visual_channels", model.visual_channels or int(sample.frames.shape[1]))
    return model.replace(**changes) if changes else model


def load_model(path: str | Path, device: str = "cpu") -> tuple[AVNet, TrainConfig]:
    """The model and config stored in a checkpoint (``best.pt``: the best weights; ``last.pt``: the last)."""
    state = load_checkpoint(path)
    try:
        cfg = TrainConfig.from_dict(state["config"])
    except ConfigError as err:
        raise ValueError(f"checkpoint {path}: its config does not load: {err}") from None
    model = build(cfg.model)
    _load_weights(model, state["model"], path)
    return model.to(device).eval(), cfg


@torch.no_grad()
def _eval_sums(model, loader, device: torch.device, amp: bool) -> torch.Tensor:
    model.eval()
    sums = torch.zeros(len(SUM_FIELDS), device=device)
    for batch in loader:
        audio, frames = batch.audio.to(device, non_blocking=True), batch.frames.to(device, non_blocking=True)
        y = torch.as_tensor(batch.label).to(device, non_blocking=True)
        with torch.autocast("cuda", dtype=torch.bfloat16, enabled=amp):
            out = model(audio, frames)
        sums += batch_sums(F.cross_entropy(out.fused.float(), y), out, y)  # plain CE, as the original validates
    return sums


def evaluate(model, ds: Dataset, device: torch.device | str = "cpu", batch_size: int = 32,
             amp: bool = False) -> SplitMetrics:  # fmt: skip
    """Loss (plain cross-entropy of the fused logits) and accuracies of ``model`` on ``ds`` (one process)."""
    device = torch.device(device)
    loader = DataLoader(ds, batch_size=batch_size, shuffle=False, num_workers=_default_workers(ds))
    return SplitMetrics.from_sums(_eval_sums(model, loader, device, amp).cpu())


def _load_weights(model, weights, path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(f"checkpoint {path} does not match this model: {' '.join(first[:3])}") from None


# -- the trainer -------------------------------------------------------------------------------------------
class Trainer:
    """Train, validate and test one configuration.

    Args:
        config: the run's :class:`TrainConfig` (saved as ``config.yaml`` in ``config.out``).
        datasets: ``(train, val, test)``; default from ``config.data``.
        model: default ``build(config.model)`` (with class and channel counts taken from the data).
        policies: default from ``config.policies``.
        mode: ``"new"``, ``"resume"`` or ``"overwrite"`` (see :class:`~snn_msi.training.rundir.RunDir`).
        progress: progress bars.
        stop_after: stop (as if killed) after this many epochs of this call; for tests and time-boxed runs.
    """

    def __init__(self, config: TrainConfig, datasets: tuple[Dataset, Dataset, Dataset] | None = None,
                 model: AVNet | None = None, policies: Compose | None = None, mode: str = "new",
                 progress: bool = True, stop_after: int | None = None) -> None:  # fmt: skip
        self.device = resolve_device(config.device)
        self.distributed = init_distributed(self.device)
        self.rank, self.world = _dist_info()
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.rundir = RunDir(config.out, mode)
        self.has_checkpoint = self.rundir.prepare() if self.rank == 0 else self.rundir.last.is_file()
        self.progress, self.stop_after = progress and self.rank == 0, stop_after
        seed_everything(config.seed)
        self.train_set, self.val_set, self.test_set = datasets or build_datasets(config.data, config.seed, config.out)
        if model is None:
            config = config.replace(model=resolve_model_config(config.model, self.train_set).to_dict())
            model = build(config.model)
        self.cfg = config
        self.net = model.to(self.device)
        self.model = self.net
        if self.distributed:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.net, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if config.compile:
            self.model = torch.compile(self.model)
        self.groups = self.net.parameter_groups()
        self.policies = policies if policies is not None else build_policies(config.policies, config.seed)
        self.policies.setup(self.net)
        if self.distributed and "mmpareto" in self.policies.names():
            raise ConfigError("method 'mmpareto' is not supported with data parallel training")
        self.unimodal = config.loss.trains_heads(self.policies.needs_unimodal_losses)
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.amp = config.amp and self.device.type == "cuda"
        self.workers = config.data.num_workers if config.data.num_workers is not None else _default_workers(
            self.train_set)  # fmt: skip
        self.runlog = RunLog(self.rundir.path, enabled=self.rank == 0)
        self.best, self.best_epoch, self.best_model = -1.0, 0, None
        self.start_epoch, self.step = 0, 0

    def _optimizer(self):
        c, params = self.cfg, [p for p in self.net.parameters() if p.requires_grad]
        if not c.weight_decay_1d:  # timm's filter: no decay on biases and norm weights (1-D tensors)
            params = [{"params": [p for p in params if p.dim() > 1]},
                      {"params": [p for p in params if p.dim() <= 1], "weight_decay": 0.0}]  # fmt: skip
        if c.optimizer == "sgd":
            return torch.optim.SGD(params, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0,
                                   weight_decay=c.weight_decay)  # fmt: skip
        return torch.optim.Adam(params, lr=c.lr, weight_decay=c.weight_decay)

    # -- data -----------------------------------------------------------------------------------------------
    def _loader(self, ds: Dataset, epoch: int, train: bool) -> DataLoader:
        sampler, shuffle = None, train
        if self.distributed:
            from torch.utils.data.distributed import DistributedSampler

            if train:
                sampler = DistributedSampler(ds, shuffle=True, seed=self.cfg.seed)
                sampler.set_epoch(epoch)
            else:
                sampler = ShardSampler(len(ds), self.rank, self.world)
            shuffle = False
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch)  # data order depends on (seed, epoch)
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=shuffle, sampler=sampler, generator=g,
                          num_workers=self.workers, drop_last=False, pin_memory=self.device.type == "cuda")  # fmt: skip

    def _to(self, batch):
        return (batch.audio.to(self.device, non_blocking=True), batch.frames.to(self.device, non_blocking=True),
                torch.as_tensor(batch.label).to(self.device, non_blocking=True))  # fmt: skip

    def _bar(self, loader, desc: str):
        from tqdm import tqdm  # the plain class: tqdm.auto's asyncio variant calls iter() on the loader twice

        return tqdm(loader, desc=desc, disable=not self.progress, leave=False, dynamic_ncols=True)

    # -- steps ----------------------------------------------------------------------------------------------
    def train_epoch(self, epoch: int) -> tuple[SplitMetrics, int]:
        """One epoch; returns its training metrics and the number of batches skipped for a non-finite loss."""
        self.model.train()
        base = _base_dataset(self.train_set)
        if hasattr(base, "set_epoch"):
            base.set_epoch(epoch)
        sums, skipped = torch.zeros(len(SUM_FIELDS), device=self.device), 0
        bar = self._bar(self._loader(self.train_set, epoch, train=True), f"epoch {epoch + 1}/{self.cfg.epochs}")
        for batch in bar:
            audio, frames, y = self._to(batch)
            self.optimizer.zero_grad(set_to_none=True)
            try:
                with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                    out = self.model(audio, frames)
            except NonFiniteInputError as err:  # a diverged network or a corrupt sample inside a spiking layer
                skipped += self._nonfinite(batch, epoch, str(err))
                continue
            losses = av_losses(out, y, self.cfg.loss, self.unimodal)
            ctx = StepContext(self.net, self.groups, out, y, epoch, losses)
            total = sum(losses.values())
            extra = self.policies.loss(ctx)
            if extra is not None:
                total = total + extra
            loss_value = float(total.detach())
            if not math.isfinite(loss_value):
                skipped += self._nonfinite(batch, epoch, f"non-finite loss ({loss_value})")
                continue
            if not self.policies.backward(ctx, total):
                total.backward()
            self.policies.before_step(ctx)
            grads = [p.grad for p in self.net.parameters() if p.grad is not None]
            norm = float(torch.nn.utils.get_total_norm(grads)) if grads else 0.0
            if not math.isfinite(norm):
                self.optimizer.zero_grad(set_to_none=True)
                skipped += self._nonfinite(batch, epoch, f"non-finite gradient (norm {norm})")
                continue
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grads_with_norm_(grads, self.cfg.grad_clip, torch.tensor(norm))
            self.optimizer.step()
            with torch.no_grad():
                sums += batch_sums(total, out, y)
            step_log = self.policies.step_log()
            self.runlog.step({"epoch": epoch + 1, "step": self.step, "loss": loss_value, **step_log})
            self.step += 1
            if self.progress:
                bar.set_postfix(loss=f"{loss_value:.3f}", **{k: f"{v:.3f}" for k, v in step_log.items()
                                                            if k.endswith("/coeff")})  # fmt: skip
        return self._reduce(sums), skipped

    def _nonfinite(self, batch, epoch: int, what: str) -> int:
        """Stop with the batch's clips named (``on_nonfinite="stop"``), or return 1 to count a skipped batch."""
        if self.cfg.on_nonfinite == "skip":
            return 1
        ids = list(batch.clip_id)
        raise NonFiniteLossError(
            f"{what} at epoch {epoch + 1}, step {self.step}; the batch's clips: {', '.join(ids[:8])}"
            f"{' ...' if len(ids) > 8 else ''} (lower --lr, check those clips, or --set on_nonfinite=skip)"
        )

    def evaluate(self, ds: Dataset) -> SplitMetrics:
        """Loss and accuracies on a data set (each sample once, also across ranks)."""
        try:
            return self._reduce(_eval_sums(self.model, self._loader(ds, 0, train=False), self.device, self.amp))
        except NonFiniteInputError as err:
            raise NonFiniteLossError(f"the model has diverged: evaluating it gives non-finite values ({err})") from None

    def _reduce(self, sums: torch.Tensor) -> SplitMetrics:
        if self.distributed:
            dist.all_reduce(sums)
        return SplitMetrics.from_sums(sums.cpu())

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self, epochs_done: int) -> dict:
        """What resume needs, and nothing else (the logs live in their files)."""
        return {
            "version": CHECKPOINT_VERSION,
            "config": self.cfg.to_dict(),
            "epoch": epochs_done,
            "step": self.step,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "policies": self.policies.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "best_epoch": self.best_epoch,
            "best_model": self.best_model,
        }

    def load_state_dict(self, state: dict, path: Path) -> None:
        if state.get("version") != CHECKPOINT_VERSION or "optimizer" not in state:
            raise ValueError(f"checkpoint {path} cannot be resumed (version {state.get('version')}, or a weights-only"
                             " file)")  # fmt: skip
        self.rundir.check_resume_config(state["config"], self.cfg.to_dict())
        _load_weights(self.net, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.policies.load_state_dict(state["policies"])
        _set_rng_state(state["rng"])
        self.start_epoch, self.step = state["epoch"], state["step"]
        self.best, self.best_epoch, self.best_model = state["best"], state["best_epoch"], state["best_model"]

    def _plot(self) -> None:
        from ..plots import training_curves

        training_curves(read_csv(self.rundir.path / "metrics.csv"), read_csv(self.rundir.path / "steps.csv"),
                        self.rundir.path / "curves.png")  # fmt: skip

    # -- the run --------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train (or resume), select on validation, test once with the best weights; returns the results."""
        rd = self.rundir
        if self.has_checkpoint:
            if rd.is_complete():
                saved = rd.saved_config() or {}
                rd.check_resume_config(saved, self.cfg.to_dict())
                log.info("%s is a finished run; its results are returned as they are", rd.path)
                return rd.results()
            self.load_state_dict(load_checkpoint(rd.last), rd.last)
            self.runlog.truncate(self.start_epoch)
            log.info("resumed from %s at epoch %d", rd.last, self.start_epoch)
        elif self.rank == 0:
            rd.write_config(self.cfg)
        done = 0
        for epoch in range(self.start_epoch, self.cfg.epochs):
            t0 = time.time()
            lr = self.optimizer.param_groups[0]["lr"]
            train, skipped = self.train_epoch(epoch)
            val = self.evaluate(self.val_set)
            self.scheduler.step()
            self.policies.on_validation(val, epoch)
            row = {"epoch": epoch + 1, "lr": lr, **train.row("train"), **val.row("val"), "nonfinite_skipped": skipped,
                   "seconds": time.time() - t0}  # fmt: skip
            if val.acc > self.best:
                self.best, self.best_epoch = val.acc, epoch + 1
                self.best_model = copy.deepcopy({k: v.detach().cpu() for k, v in self.net.state_dict().items()})
            if self.rank == 0:
                self.runlog.epoch(row)  # the row first: a kill before the checkpoint redoes (and re-logs) the epoch
                state = self.state_dict(epoch + 1)
                save_checkpoint(state, rd.last)
                if self.best_epoch == epoch + 1:
                    save_checkpoint({"version": CHECKPOINT_VERSION, "config": state["config"], "model": self.best_model,
                                     "epoch": epoch + 1, "val_acc": self.best}, rd.best)  # fmt: skip
                self._plot()
            done += 1
            if self.stop_after is not None and done >= self.stop_after and epoch + 1 < self.cfg.epochs:
                return row
        if self.best_model is not None:
            self.net.load_state_dict(self.best_model)
        result = {"best_val_acc": self.best, "best_epoch": self.best_epoch, "epochs": self.cfg.epochs,
                  **self.evaluate(self.test_set).row("test")}  # fmt: skip
        policy_means = _policy_means(read_csv(rd.path / "steps.csv")) if self.rank == 0 else {}
        result.update(policy_means)
        if self.rank == 0:
            rd.mark_complete(result)
        self.runlog.close()
        return result


def _policy_means(steps: list[dict]) -> dict[str, float]:
    """Mean of every policy column over all steps (``iemf/coeff`` -> ``mean iemf/coeff``)."""
    keys = [k for k in (steps[0] if steps else {}) if "/" in k]
    return {f"mean {k}": float(np.nanmean([float(s[k]) for s in steps])) for k in keys}
