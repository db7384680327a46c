"""What a run computed: the samples its encoders processed, its optimizer steps, its wall time and (estimated)
synaptic operations, counted over everything the run does, not only its training loop.

A balancing method may train copies of the network (G-Blending, ReconBoost), teachers (UMT), extra passes
(AGM's zero-input passes, the valuations' resampled copies, Shapley passes) or one step per modality (MLA);
comparing methods by accuracy alone hides that. :class:`ComputeMeter` counts, while a run is being trained:

- encoder passes, per modality, of training and of evaluation: every time any spiking encoder of the process
  (the run's network, a copy, a teacher) runs its stem on a batch (a process-wide forward hook on the stems of
  :class:`~snn_msi.models.resnet.SpikingResNet`, which are tagged with their modality), in clips (the visual
  stem's frames divided by the frames per clip). A pass counts as evaluation inside
  :meth:`ComputeMeter.evaluating` (the trainer's validation and test passes, the same for every method) and as
  training everywhere else, whatever its batch-norm mode or autograd: the step's passes, a copy's, a teacher's,
  AGM's zero-input passes, a method's statistics passes. Passes inside :func:`not_counted` (a method's
  diagnostics that only log, such as AGM's evaluation-path accuracy) are not counted;
- optimizer steps: every ``Optimizer.step`` of the process (a process-wide step hook): the run's, a copy's, a
  teacher's, each of MLA's per-modality steps;
- wall seconds from the start of training (``Trainer.fit``; ``metrics.csv`` has them after every epoch), and the
  CPU seconds of the run's process over the same time (every thread of it; not its DataLoader workers): unlike
  the wall time, not lengthened by other work on the machine or by a stopped process.

:meth:`Compute.gop` turns passes into synaptic operations with the operations per clip each encoder does at test
(:func:`ops_per_clip`, SOPs + MACs of the forward pass, :mod:`snn_msi.metrics.energy`): an estimate of the
forward passes' operations; backward passes are not counted.
"""

from __future__ import annotations

import contextlib
import logging
import math
import time
from dataclasses import asdict, dataclass, field

import torch
from torch import nn

from ..models.resnet import SeqConv

__all__ = ["Compute", "ComputeMeter", "not_counted", "ops_per_clip"]

MODALITIES = ("audio", "visual")

#: the rule passes are counted by: 2 (2026-12-05) counts every pass outside :meth:`ComputeMeter.evaluating` as
#: training work; 1 counted by the module's batch-norm mode. A checkpoint of another rule is resumed with a warning.
COUNTING = 2

log = logging.getLogger(__name__)


@dataclass
class Compute:
    """The cumulative work of a run (also over resumes).

    Attributes:
        passes: ``{"audio": {"train": clips, "eval": clips}, "visual": {...}}``: clips each encoder processed
            while training (every pass of the method: with gradients or without, in either batch-norm mode) and
            in evaluation (the trainer's validation and test passes).
        steps: optimizer steps of every optimizer of the run.
        seconds: wall time of training (cumulative over resumes; not in ``results.json``, which stays
            reproducible).
        cpu_seconds: CPU time of the run's process over the same time (likewise; NaN for a run resumed from a
            checkpoint written before it was counted).
        ops: operations per clip of each encoder and of the rest (fusion, heads) at test, ``{"audio": ..,
            "visual": .., "rest": ..}``; empty until measured.
    """

    passes: dict[str, dict[str, float]] = field(
        default_factory=lambda: {m: {"train": 0.0, "eval": 0.0} for m in MODALITIES}
    )
    steps: int = 0
    seconds: float = 0.0
    cpu_seconds: float = 0.0
    ops: dict[str, float] = field(default_factory=dict)
    counting: int = COUNTING

    @property
    def samples(self) -> float:
        """Training sample passes: clips through both encoders count once (the mean over modalities)."""
        return sum(self.passes[m]["train"] for m in MODALITIES) / len(MODALITIES)

    @property
    def eval_samples(self) -> float:
        return sum(self.passes[m]["eval"] for m in MODALITIES) / len(MODALITIES)

    def gop(self) -> float:
        """Forward synaptic operations (SOPs + MACs) of every pass, in 1e9, estimated from :attr:`ops` (NaN
        before it is measured)."""
        if not self.ops:
            return math.nan
        total = sum(p for m in MODALITIES for p in self.passes[m].values())
        enc = sum(self.ops[m] * sum(self.passes[m].values()) for m in MODALITIES)
        return (enc + self.ops.get("rest", 0.0) * total / len(MODALITIES)) / 1e9

    def row(self, wall: bool = True) -> dict[str, float]:
        """The cumulative numbers a log row (``metrics.csv``) carries; ``results.json`` carries them without the
        wall time (``wall=False``), so that a resumed run's results equal an uninterrupted one's bit for bit.
        ``compute_gop`` once :attr:`ops` is measured, at the end of the run."""
        return {
            "compute_samples": self.samples,
            "compute_eval_samples": self.eval_samples,
            "compute_steps": self.steps,
            **({"compute_seconds": self.seconds, "compute_cpu_seconds": self.cpu_seconds} if wall else {}),
            **({"compute_gop": self.gop()} if self.ops else {}),
        }

    def state_dict(self) -> dict:
        return asdict(self)

    def load_state_dict(self, state: dict | None) -> None:
        """Restore from a checkpoint (one written before compute was counted leaves the counts at 0)."""
        if state:
            self.passes = {m: dict(state["passes"][m]) for m in MODALITIES}
            self.steps, self.seconds, self.ops = int(state["steps"]), float(state["seconds"]), dict(state["ops"])
            self.cpu_seconds = float(state.get("cpu_seconds", math.nan))
            # the rule is saved from 2026-12-05, CPU time from earlier that day, under rule 2 already
            self.counting = int(state.get("counting", 2 if "cpu_seconds" in state else 1))
            if self.counting != COUNTING:
                log.warning(
                    "resuming counts made under compute rule %d (this version: %d): the run's compute columns mix "
                    "the two (snn_msi.training.compute.COUNTING); train it again for counts of one rule",
                    self.counting,
                    COUNTING,
                )


_UNCOUNTED = [0]  # depth of not_counted() blocks in this process


@contextlib.contextmanager
def not_counted():
    """Passes inside are not counted by any meter of this process: a method's diagnostics that only log (they
    would cost nothing in a run without the log)."""
    _UNCOUNTED[0] += 1
    try:
        yield
    finally:
        _UNCOUNTED[0] -= 1


class ComputeMeter:
    """Counts a run's :class:`Compute` while it is entered (``with meter: ...``; re-entrant per run, not
    thread-safe: one run per process at a time, as every executor runs them).

    Args:
        compute: the counts to add to (a resumed run's).
        frames_per_clip: the visual stem sees ``clips x frames`` images; this converts them to clips.
    """

    def __init__(self, compute: Compute | None = None, frames_per_clip: int = 1) -> None:
        self.compute = compute if compute is not None else Compute()
        self.frames_per_clip = max(1, int(frames_per_clip))
        self._handles: list = []
        self._t0 = self._c0 = 0.0
        self._evaluating = 0

    @contextlib.contextmanager
    def evaluating(self):
        """Passes inside count as evaluation (the trainer's validation and test): the protocol's cost, the same
        for every method; all others count as training."""
        self._evaluating += 1
        try:
            yield
        finally:
            self._evaluating -= 1

    def _on_forward(self, module: nn.Module, inputs, _out) -> None:
        if not isinstance(module, SeqConv) or module.modality is None or _UNCOUNTED[0]:
            return
        modality = module.modality
        n = inputs[0].shape[1] / (self.frames_per_clip if modality == "visual" else 1)
        self.compute.passes[modality]["eval" if self._evaluating else "train"] += float(n)

    def _on_step(self, *_args) -> None:
        self.compute.steps += 1

    def __enter__(self) -> ComputeMeter:
        from torch.nn.modules.module import register_module_forward_hook
        from torch.optim.optimizer import register_optimizer_step_post_hook

        if not self._handles:
            self._handles = [
                register_module_forward_hook(self._on_forward),
                register_optimizer_step_post_hook(self._on_step),
            ]
            self._t0, self._c0 = time.perf_counter(), time.process_time()
        return self

    def __exit__(self, *exc) -> None:
        for h in self._handles:
            h.remove()
        if self._handles:
            self.lap()
        self._handles = []

    def lap(self) -> None:
        """Move the wall and CPU time since entering (or the last lap) into the counts (before a checkpoint)."""
        if self._handles:
            now, cpu = time.perf_counter(), time.process_time()
            self.compute.seconds += now - self._t0
            self.compute.cpu_seconds += cpu - self._c0
            self._t0, self._c0 = now, cpu


def ops_per_clip(model: nn.Module, audio: torch.Tensor, frames: torch.Tensor) -> dict[str, float]:
    """Forward operations (SOPs + MACs) per clip of each encoder and of the rest of ``model`` (an ``AVNet``), on
    one batch (``audio [B, ...]``, ``frames [B, K, ...]``), in evaluation mode without gradients."""
    from ..metrics.energy import count_ops

    was_training = model.training
    try:
        counts = count_ops(model, lambda: model(audio, frames), model.config.T, int(audio.shape[0]))
    finally:
        model.train(was_training)
    ops = dict.fromkeys((*MODALITIES, "rest"), 0.0)
    for name, layer in counts.layers.items():
        part = name.split(".", 1)[0].removesuffix("_net")
        ops[part if part in MODALITIES else "rest"] += layer.sops + layer.macs
    return {k: v / counts.samples for k, v in ops.items()}
