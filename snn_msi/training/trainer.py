"""The trainer: one loop for every method; methods are policies (``policies.py``), not branches here.

Per epoch: train (tqdm), validate (model selection), log (CSV, TensorBoard when installed, PNG curves), write
``last.pt`` atomically (and ``best.pt`` on a new best validation accuracy). ``resume=True`` continues from
``last.pt`` exactly: model, optimizer, scheduler, policy state, RNG states and data order. The test split is
evaluated once, at the end, with the best checkpoint.

Data parallel: run under ``torchrun`` (gloo on CPU, nccl on CUDA); scores are all-reduced inside the policies.
"""

from __future__ import annotations

import csv
import json
import logging
import os
import random
import time
from pathlib import Path

import numpy as np
import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset

from ..data import build_datasets
from ..models import AVNet, build
from .config import TrainConfig
from .policies import Compose, build_policies

log = logging.getLogger(__name__)

CHECKPOINT_VERSION = 1


# -- checkpoints -------------------------------------------------------------------------------------------
def save_checkpoint(state: dict, path: str | Path) -> Path:
    """Write atomically: a temporary file in the same folder, then a rename."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp{os.getpid()}")
    torch.save(state, tmp)
    os.replace(tmp, path)
    return path


def load_checkpoint(path: str | Path) -> dict:
    """Load with ``weights_only=True`` (never executes code); clear errors for missing / corrupt files."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"checkpoint {path} does not exist")
    try:
        state = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as err:  # any unpickling failure means a corrupt or foreign file
        raise ValueError(
            f"checkpoint {path} is corrupt or not an snn-msi checkpoint: {type(err).__name__}: {err}"
        ) from None
    if not isinstance(state, dict) or state.get("version") != CHECKPOINT_VERSION or "model" not in state:
        raise ValueError(f"checkpoint {path} is not an snn-msi checkpoint (version {CHECKPOINT_VERSION})")
    return state


def load_model(path: str | Path, device: str = "cpu") -> tuple[AVNet, TrainConfig]:
    """The model (best weights) and config stored in a checkpoint."""
    state = load_checkpoint(path)
    cfg = TrainConfig.from_dict(state["config"])
    model = build(cfg.model)
    _load_weights(model, state["model"], path)
    return model.to(device).eval(), cfg


def _load_weights(model, weights, path) -> None:
    try:
        model.load_state_dict(weights)
    except RuntimeError as err:
        first = str(err).strip().splitlines()
        raise ValueError(f"checkpoint {path} does not match this model: {' '.join(first[:3])}") from None


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


# -- distributed -------------------------------------------------------------------------------------------
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


# -- the trainer -------------------------------------------------------------------------------------------
class Trainer:
    """Train, validate and test one configuration.

    Args:
        config: the run's :class:`TrainConfig` (saved as ``config.yaml`` in ``config.out``).
        datasets: ``(train, val, test)``; default from ``config.data``.
        model: default ``build(config.model)``.
        policies: default from ``config.method`` / ``config.iemf``.
        resume: continue from ``out/last.pt`` if it exists.
        progress: tqdm bars.
        stop_after: stop (as if killed) after this many epochs of this call; for tests and time-boxed runs.
    """

    def __init__(self, config: TrainConfig, datasets: tuple[Dataset, Dataset, Dataset] | None = None,
                 model: AVNet | None = None, policies: Compose | None = None, resume: bool = False,
                 progress: bool = True, stop_after: int | None = None) -> None:  # fmt: skip
        self.cfg = config
        if config.device == "auto":
            self.device = torch.device("cuda" if torch.cuda.is_available() else "cpu")
        else:
            self.device = torch.device(config.device)
        self.distributed = init_distributed(self.device)
        self.rank, self.world = _dist_info()
        if self.distributed and self.device.type == "cuda":
            self.device = torch.device("cuda", int(os.environ.get("LOCAL_RANK", 0)))
            torch.cuda.set_device(self.device)
        self.out = Path(config.out)
        self.progress, self.stop_after, self.resume = progress and self.rank == 0, stop_after, resume
        seed_everything(config.seed)
        self.train_set, self.val_set, self.test_set = datasets or build_datasets(config.data, config.seed)
        self.model = (model or build(config.model)).to(self.device)
        self.net = self.model
        if self.distributed:
            self.model = torch.nn.parallel.DistributedDataParallel(
                self.model, device_ids=[self.device.index] if self.device.type == "cuda" else None
            )
        if config.compile:
            self.model = torch.compile(self.model)
        self.policies = policies or build_policies(config.method, config.iemf, **config.policy_kwargs())
        if self.distributed and "mmpareto" in self.policies.name:
            raise ValueError("method 'mmpareto' is not supported with data parallel training")
        self.optimizer = self._optimizer()
        self.scheduler = torch.optim.lr_scheduler.MultiStepLR(self.optimizer, list(config.milestones), config.gamma)
        self.amp = config.amp and self.device.type == "cuda"
        self.history: list[dict] = []
        self.steps: list[dict] = []
        self.best = -1.0
        self.start_epoch = 0
        self.step = 0
        self.tb = None

    def _optimizer(self):
        net, c = self.net, self.cfg
        audio, visual = set(map(id, net.encoder_parameters("audio"))), set(map(id, net.encoder_parameters("visual")))
        rest = [p for p in net.parameters() if id(p) not in audio and id(p) not in visual]
        groups = [
            {"params": net.encoder_parameters("audio"), "name": "audio"},
            {"params": net.encoder_parameters("visual"), "name": "visual"},
            {"params": rest, "name": "fusion_heads"},
        ]
        if c.optimizer == "sgd":
            return torch.optim.SGD(groups, lr=c.lr, momentum=c.momentum, nesterov=c.nesterov and c.momentum > 0,
                                   weight_decay=c.weight_decay)  # fmt: skip
        if c.optimizer == "adam":
            return torch.optim.Adam(groups, lr=c.lr, weight_decay=c.weight_decay)
        raise ValueError(f"optimizer must be 'sgd' or 'adam', got {c.optimizer!r}")

    # -- data -----------------------------------------------------------------------------------------------
    def _loader(self, ds: Dataset, epoch: int, train: bool) -> DataLoader:
        sampler, shuffle = None, train
        if self.distributed:
            from torch.utils.data.distributed import DistributedSampler

            sampler = DistributedSampler(ds, shuffle=train, seed=self.cfg.seed)
            sampler.set_epoch(epoch)
            shuffle = False
        g = torch.Generator().manual_seed(self.cfg.seed * 100003 + epoch)  # data order depends on (seed, epoch)
        return DataLoader(ds, batch_size=self.cfg.batch_size, shuffle=shuffle, sampler=sampler, generator=g,
                          num_workers=self.cfg.data.num_workers, drop_last=False,
                          pin_memory=self.device.type == "cuda")  # fmt: skip

    def _to(self, batch):
        return (batch.audio.to(self.device, non_blocking=True), batch.frames.to(self.device, non_blocking=True),
                torch.as_tensor(batch.label).to(self.device, non_blocking=True))  # fmt: skip

    # -- steps ----------------------------------------------------------------------------------------------
    def _losses(self, out, y) -> dict[str, torch.Tensor]:
        ls = self.cfg.unimodal_label_smoothing
        return {
            "fused": F.cross_entropy(out.fused.float(), y),
            "audio": F.cross_entropy(out.audio.float(), y, label_smoothing=ls),
            "visual": F.cross_entropy(out.visual.float(), y, label_smoothing=ls),
        }

    def train_epoch(self, epoch: int) -> dict[str, float]:
        self.model.train()
        base = _base_dataset(self.train_set)
        if hasattr(base, "set_epoch"):
            base.set_epoch(epoch)
        loader = self._loader(self.train_set, epoch, train=True)
        sums = torch.zeros(5, device=self.device)  # see _batch_sums
        from tqdm.auto import tqdm

        bar = tqdm(loader, desc=f"epoch {epoch + 1}/{self.cfg.epochs}", disable=not self.progress, leave=False)
        for batch in bar:
            audio, frames, y = self._to(batch)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(audio, frames)
            losses = self._losses(out, y)
            total = sum(losses.values())
            extra = self.policies.loss(out, y, losses, epoch)
            if extra is not None:
                total = total + extra
            self.optimizer.zero_grad(set_to_none=True)
            if not self.policies.backward(self.model, losses, total):
                total.backward()
            self.policies.before_step(self.model, out, y, epoch)
            if self.cfg.grad_clip:
                torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.cfg.grad_clip)
            self.optimizer.step()
            with torch.no_grad():
                sums += self._batch_sums(total.detach(), out, y)
            self.steps.append({"step": self.step, "epoch": epoch, **self.policies.last})
            self.step += 1
            if self.progress:
                bar.set_postfix(loss=f"{float(total):.3f}", **{k: f"{v:.3f}" for k, v in self.policies.last.items()
                                                               if k == "coeff"})  # fmt: skip
        return self._metrics(sums, "train")

    @torch.no_grad()
    def evaluate(self, ds: Dataset, prefix: str) -> dict[str, float]:
        self.model.eval()
        loader = self._loader(ds, 0, train=False)
        sums = torch.zeros(5, device=self.device)
        for batch in loader:
            audio, frames, y = self._to(batch)
            with torch.autocast("cuda", dtype=torch.bfloat16, enabled=self.amp):
                out = self.model(audio, frames)
            sums += self._batch_sums(F.cross_entropy(out.fused.float(), y), out, y)
        return self._metrics(sums, prefix)

    def _batch_sums(self, loss: torch.Tensor, out, y: torch.Tensor) -> torch.Tensor:
        """``[loss * n, correct fused, correct audio, correct visual, n]`` of one batch (summed over an epoch)."""
        n = torch.tensor(y.numel(), device=self.device)
        correct = [z.argmax(1).eq(y).sum() for z in (out.fused, out.audio, out.visual)]
        return torch.stack([loss * n, *correct, n]).float()

    def _metrics(self, sums: torch.Tensor, prefix: str) -> dict[str, float]:
        """Loss and the three accuracies from the epoch's sums (all-reduced across ranks first)."""
        if self.distributed:
            dist.all_reduce(sums)
        s = sums.tolist()
        return {f"{prefix}_loss": s[0] / s[4], f"{prefix}_acc": s[1] / s[4], f"{prefix}_acc_audio": s[2] / s[4],
                f"{prefix}_acc_visual": s[3] / s[4]}  # fmt: skip

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self, epoch_done: int) -> dict:
        return {
            "version": CHECKPOINT_VERSION,
            "config": self.cfg.to_dict(),
            "epoch": epoch_done,
            "step": self.step,
            "model": self.net.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "scheduler": self.scheduler.state_dict(),
            "policies": self.policies.state_dict(),
            "rng": _rng_state(),
            "best": self.best,
            "history": self.history,
            "steps": self.steps,
        }

    def load_state_dict(self, state: dict, path: Path) -> None:
        saved_model = state["config"].get("model")
        if saved_model != self.cfg.model.to_dict():
            raise ValueError(f"checkpoint {path} was made with another model config: {saved_model}")
        _load_weights(self.net, state["model"], path)
        self.optimizer.load_state_dict(state["optimizer"])
        self.scheduler.load_state_dict(state["scheduler"])
        self.policies.load_state_dict(state["policies"])
        _set_rng_state(state["rng"])
        self.start_epoch, self.step, self.best = state["epoch"], state["step"], state["best"]
        self.history, self.steps = list(state["history"]), list(state["steps"])

    # -- logging --------------------------------------------------------------------------------------------
    def _log_epoch(self, row: dict) -> None:
        if self.rank != 0:
            return
        path = self.out / "metrics.csv"
        keys = list(self.history[0])
        tmp = path.with_suffix(".csv.tmp")
        with tmp.open("w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys, extrasaction="ignore")
            w.writeheader()
            w.writerows(self.history)
        tmp.replace(path)
        if self.steps:
            keys = sorted({k for s in self.steps for k in s}, key=lambda k: (k not in ("step", "epoch"), k))
            with (self.out / "steps.csv").open("w", newline="") as fh:
                w = csv.DictWriter(fh, fieldnames=keys)
                w.writeheader()
                w.writerows(self.steps)
        if self.tb is None:
            try:
                from torch.utils.tensorboard import SummaryWriter

                self.tb = SummaryWriter(str(self.out / "tb"))
            except Exception:  # TensorBoard is optional: without it, the CSV is the log
                self.tb = False
        if self.tb:
            for k, v in row.items():
                if isinstance(v, float):
                    self.tb.add_scalar(k, v, row["epoch"])
        from ..plots import training_curves

        training_curves(self.history, self.steps, self.out / "curves.png")

    # -- the run --------------------------------------------------------------------------------------------
    def fit(self) -> dict[str, float]:
        """Train (or resume), select on validation, test once with the best weights; returns the final row."""
        if self.rank == 0:
            self.out.mkdir(parents=True, exist_ok=True)
            self.cfg.save(self.out / "config.yaml")
        last = self.out / "last.pt"
        if self.resume and last.is_file():
            self.load_state_dict(load_checkpoint(last), last)
            log.info("resumed from %s at epoch %d", last, self.start_epoch)
        done = 0
        for epoch in range(self.start_epoch, self.cfg.epochs):
            t0 = time.time()
            row = {"epoch": epoch + 1, "lr": self.optimizer.param_groups[0]["lr"], **self.train_epoch(epoch)}
            row.update(self.evaluate(self.val_set, "val"))
            self.scheduler.step()
            self.policies.on_validation(row, self.optimizer, epoch)
            coeffs = [s["coeff"] for s in self.steps if s.get("epoch") == epoch and "coeff" in s]
            if coeffs:
                row["coeff_mean"] = float(np.mean(coeffs))
            row["seconds"] = time.time() - t0
            self.history.append(row)
            improved = row["val_acc"] > self.best
            self.best = max(self.best, row["val_acc"])
            if self.rank == 0:
                state = self.state_dict(epoch + 1)
                save_checkpoint(state, last)
                if improved:
                    save_checkpoint(state, self.out / "best.pt")
                self._log_epoch(row)
            done += 1
            if self.stop_after is not None and done >= self.stop_after and epoch + 1 < self.cfg.epochs:
                return row
        best = self.out / "best.pt"
        if best.is_file():
            _load_weights(self.net, load_checkpoint(best)["model"], best)
        result = {**(self.history[-1] if self.history else {}), "best_val_acc": self.best}
        result.update(self.evaluate(self.test_set, "test"))
        if self.rank == 0:
            (self.out / "results.json").write_text(json.dumps(result, indent=1))
        if self.tb:
            self.tb.close()
        return result
