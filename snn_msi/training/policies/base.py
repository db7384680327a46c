"""What every balancing method is built from: the policy protocol, its context objects and shared helpers.

A policy is a small object with hooks that the trainer calls in a fixed order (Lightning's callbacks); a method
overrides the few it needs::

    policy.setup(model)                    # once, before training (forward hooks, its own modules, state)
    for each epoch:
        plan = policy.on_epoch_start(view)  # epoch-level work on a typed view of the data and the model
                                            # (prototypes, valuation, re-initialisation, unimodal teachers);
                                            # may return a SamplePlan: this epoch's training samples
        for each batch:
            out = policy.forward(fwd)       # at most one policy computes the training forward (AGM, OPM, ...)
            ...                             # else features -> policy.predict(model, a, v) or the model's
            w = policy.loss_weights(ctx)    # weights of the loss terms (fused, audio, visual): G-Blending, UME
            extra = policy.loss(ctx)        # add a term to the loss (LFM, PMR, CML, UMT)
            policy.backward(ctx, total)     # at most one policy replaces loss.backward() (MMPareto)
            policy.before_step(ctx)         # scale / perturb gradients (IEMF, OGM-GE, MSLR, AGM)
            optimizer.step()
          # or, instead of all of the above: policy.train_step(step) (MLA: one optimizer step per modality)
        policy.on_validation(val, epoch)    # once per epoch, validation split only (MSLR)

Evaluation uses the same ``predict`` (MMCosine's cosine logits, MLA's gating, ReconBoost's ensemble, UME's
average). It sees the model through a typed :class:`~snn_msi.models.ParamGroups` (no parameter-name prefixes),
the output through :class:`~snn_msi.models.AVOutput`, the batch through :class:`Batch`, the run's data through
:class:`EpochView` and the validation numbers through :class:`~snn_msi.training.metrics.SplitMetrics`. What it
did in the last step is in ``self.log``, an instance of its :class:`PolicyLog` dataclass (``log_class``): the
fields are declared with their defaults, so the run log knows every column before the first step; the trainer
namespaces them by the policy's name (``iemf/coeff``). Options are a small :class:`PolicyConfig` dataclass per
method, loaded strictly from the run's YAML. Parameters a method adds (MLA's shared head, ReconBoost's boost rate,
Greedy's MMTM blocks) live in ``self.extra``: the run's optimizer trains them and checkpoints carry them.
"""

from __future__ import annotations

import dataclasses
import math
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import ClassVar

import torch
import torch.distributed as dist
import torch.nn.functional as F
from torch import nn

import neurons

from ...models.heads import AVOutput, ParamGroups
from ...schema import Config, ConfigError, check
from ..metrics import SplitMetrics

__all__ = [
    "Policy",
    "PolicyConfig",
    "PolicyLog",
    "log_fields",
    "Composition",
    "WindowConfig",
    "StepContext",
    "NoiseSource",
    "scale_with_noise",
    "true_class_score",
    "Batch",
    "ForwardContext",
    "EpochView",
    "FeatureSet",
    "SamplePlan",
    "TrainStep",
    "default_output",
    "unmasked_heads",
    "scale_gradient",
    "DROP_NONE",
    "DROP_AUDIO",
    "DROP_VISUAL",
    "MODALITIES",
]

MODALITIES = ("audio", "visual")
#: per-sample drop codes of a :class:`SamplePlan` (the valuation paper's: 1 = audio dropped, 2 = visual dropped)
DROP_NONE, DROP_AUDIO, DROP_VISUAL = 0, 1, 2


@dataclass
class PolicyConfig(Config):
    """Options of a method (subclasses add theirs)."""


@dataclass
class PolicyLog:
    """What a method did in the last step: one float field per column of ``steps.csv`` (``<method>/<field>``).

    A method declares its fields (:func:`log_fields`, or a subclass), each with the value it logs before the step
    that first sets it (NaN: not measured yet); the run log's columns are the union of the declared fields, known
    before the first row. :meth:`update` refuses a field that was not declared. ``headline``: the field the
    progress bar shows and ``curves.png`` plots over the steps (IEMF's coefficient), if any."""

    headline: ClassVar[str | None] = None

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in dataclasses.fields(cls))

    def __setattr__(self, name: str, value: float) -> None:
        if name not in self.names():
            raise AttributeError(f"{type(self).__name__} declares no field {name!r}; add it to the class")
        object.__setattr__(self, name, value)

    def update(self, **values: float) -> None:
        """Set fields by name (each value as a float)."""
        for k, v in values.items():
            setattr(self, k, float(v))

    def values(self) -> dict[str, float]:
        return dataclasses.asdict(self)


def log_fields(
    name: str, *fields: str, base: type[PolicyLog] = PolicyLog, headline: str | None = None, **defaults: float
) -> type[PolicyLog]:
    """A method's :class:`PolicyLog` dataclass ``name``: ``base``'s fields, then float ``fields`` (default NaN: not
    measured yet), then ``defaults`` (``field=value``: what the log holds before a step sets it)."""
    spec = [(f, float, dataclasses.field(default=math.nan)) for f in fields]
    spec += [(f, float, dataclasses.field(default=float(v))) for f, v in defaults.items()]
    cls = dataclasses.make_dataclass(name, spec, bases=(base,))
    cls.headline = headline if headline is not None else base.headline
    return cls


@dataclass(frozen=True)
class Composition:
    """Whether a method may run in one run with IEMF, and why: ``composes`` with a ``reason`` (shown by ``snn-msi
    methods``; a refused run names it); ``itself``: the method is IEMF."""

    composes: bool
    reason: str = ""
    itself: bool = False

    def __post_init__(self) -> None:
        if not self.composes and not self.reason:
            raise ValueError("a method that does not compose with IEMF says why (Composition(False, reason))")

    def __str__(self) -> str:
        if self.itself:
            return "is IEMF"
        if not self.composes:
            return f"no: {self.reason}"
        return f"yes ({self.reason})" if self.reason else "yes"


@dataclass
class WindowConfig(PolicyConfig):
    """Options of a method that acts inside an epoch window ``[start, end)`` (0-based epochs; end None: open)."""

    start: int = field(default=0, metadata=check(ge=0))
    end: int | None = field(default=None, metadata=check(ge=1))

    def validate(self, where: str = "") -> None:
        if self.end is not None and self.end <= self.start:
            raise ConfigError(f"{where or 'window'}: end ({self.end}) must be after start ({self.start})")

    def active(self, epoch: int) -> bool:
        return epoch >= self.start and (self.end is None or epoch < self.end)


@dataclass
class Batch:
    """One batch as the trainer hands it to policies (on the training device).

    ``index``: each sample's index in its data set; ``drop``: each sample's drop code of this epoch's
    :class:`SamplePlan` (:data:`DROP_NONE` without a plan); ``clip_id``: names, for error messages.
    """

    audio: torch.Tensor
    frames: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor
    drop: torch.Tensor
    clip_id: list[str] = field(default_factory=list)


def default_output(model: nn.Module, a: torch.Tensor, v: torch.Tensor) -> AVOutput:
    """The model's output from its time-resolved features ``a, v [T, B, D]``: what ``AVNet.forward`` computes
    after its encoders (fusion and unimodal heads, logits averaged over T)."""
    fused, out_a, out_v = model.fusion(a, v)
    head_a, head_v = model.heads(a, v)
    return AVOutput(
        fused=fused.mean(0),
        audio=head_a.mean(0),
        visual=head_v.mean(0),
        fused_audio=out_a.mean(0),
        fused_visual=out_v.mean(0),
        features={"audio": a.mean(0), "visual": v.mean(0)},
    )


def unmasked_heads(out: AVOutput, model: nn.Module, a: torch.Tensor, v: torch.Tensor) -> AVOutput:
    """``out`` with the unimodal heads (and ``features``) of the unmasked features ``a, v``: for methods that mask
    what the fusion sees (OPM, the valuation methods) but not what each modality's own head learns from."""
    head_a, head_v = model.heads(a, v)
    return dataclasses.replace(
        out, audio=head_a.mean(0), visual=head_v.mean(0), features={"audio": a.mean(0), "visual": v.mean(0)}
    )


Predictor = Callable[[nn.Module, torch.Tensor, torch.Tensor], "AVOutput | None"]


class ForwardContext:
    """One forward pass, split where methods act: the encoders (:meth:`features`) and what follows
    (:meth:`output`: a method's ``predict`` or the model's fusion and heads). The features last given to
    :meth:`output` are kept (``used``): the trainer masks them for the Shapley values, CML reduces them.
    """

    def __init__(
        self,
        model: nn.Module,
        groups: ParamGroups,
        batch: Batch,
        epoch: int,
        train: bool,
        predict: Predictor | None = None,
    ) -> None:
        self.model, self.groups, self.batch, self.epoch, self.train = model, groups, batch, epoch, train
        self.predict = predict
        self.used: tuple[torch.Tensor, torch.Tensor] | None = None

    def features(self, audio: torch.Tensor | None = None, frames: torch.Tensor | None = None):
        """Time-resolved encoder features ``(a, v)``, each ``[T, B, D]``, of the batch's (or the given) inputs,
        from fresh neuron state."""
        neurons.reset(self.model)
        audio = self.batch.audio if audio is None else audio
        frames = self.batch.frames if frames is None else frames
        return self.model.features(audio, frames)

    def output(self, a: torch.Tensor, v: torch.Tensor, keep: bool = True) -> AVOutput:
        """The output from features: the method's ``predict`` where it has one, else fusion and heads."""
        out = self.predict(self.model, a, v) if self.predict is not None else None
        out = out if out is not None else default_output(self.model, a, v)
        neurons.reset(self.model)
        if keep:
            self.used = (a, v)
        return out

    def run(self) -> AVOutput:
        """features, then output."""
        return self.output(*self.features())


@dataclass
class StepContext:
    """One training step as a policy sees it.

    Attributes:
        model: the network (unwrapped from DDP / compile), for methods that need more forward passes.
        groups: its parameters by role.
        out: the forward pass's output; ``y``: labels ``[B]``; ``epoch``: 0-based.
        losses: the loss terms by name (``fused``, and ``audio`` / ``visual`` when the heads are trained).
        batch: the batch (inputs, indices, drop codes); ``fwd``: the forward pass when it went through
            :class:`ForwardContext` (``fwd.used`` holds the features), else None.
        extra: the methods' own loss terms (:meth:`Policy.loss`: a rate regulariser, LFM's term), summed; set
            before :meth:`Policy.backward`, so that a method that splits the gradient keeps them; None if none.
    """

    model: torch.nn.Module
    groups: ParamGroups
    out: AVOutput
    y: torch.Tensor
    epoch: int
    losses: dict[str, torch.Tensor] = field(default_factory=dict)
    batch: Batch | None = None
    fwd: ForwardContext | None = None
    extra: torch.Tensor | None = None


@dataclass
class TrainStep:
    """A whole training step, for the method that takes it over (:meth:`Policy.train_step`).

    ``zero_grad()`` clears the gradients; ``optimizer_step()`` runs the trainer's checks (a non-finite gradient
    stops the run or skips the batch, as configured), clipping and the optimizer step. ``batch_index`` /
    ``batches``: the step's place in the epoch.
    """

    model: nn.Module
    groups: ParamGroups
    batch: Batch
    epoch: int
    batch_index: int
    batches: int
    fwd: ForwardContext
    zero_grad: Callable[[], None]
    optimizer_step: Callable[[], None]


@dataclass
class FeatureSet:
    """Time-averaged encoder features of a split: ``audio`` / ``visual`` ``[N, D]``, labels ``y [N]``, data-set
    ``index [N]`` (CPU tensors)."""

    audio: torch.Tensor
    visual: torch.Tensor
    y: torch.Tensor
    index: torch.Tensor


@dataclass
class SamplePlan:
    """The training samples of one epoch: ``indices [N']`` into the training set (repeats allowed) and each
    copy's drop code ``drop [N']`` (:data:`DROP_NONE`, :data:`DROP_AUDIO`, :data:`DROP_VISUAL`)."""

    indices: torch.Tensor
    drop: torch.Tensor

    def __post_init__(self) -> None:
        if self.indices.shape != self.drop.shape or self.indices.dim() != 1:
            raise ValueError(
                f"a SamplePlan needs indices and drop codes of one length, got {tuple(self.indices.shape)}"
                f" and {tuple(self.drop.shape)}"
            )


class EpochView(ABC):
    """What a method sees at the start of an epoch: the model (``model``, ``groups``), where the run is (``epoch``,
    ``epochs``, ``seed``, ``num_classes``) and the run's data, through services the trainer implements.

    Splits are ``"train"`` (the training set, this epoch's augmentation and noise) and ``"val"`` (never the test
    split). Every pass here is seeded by (seed, epoch): a resumed run repeats it exactly.
    """

    model: nn.Module
    groups: ParamGroups
    epoch: int
    epochs: int
    seed: int
    num_classes: int
    predict: Predictor | None = None

    @abstractmethod
    def batches(self, split: str, shuffle: bool = False, limit: int | None = None) -> Iterator[Batch]:
        """The split's batches (the run's batch size; ``limit``: at most that many)."""

    @abstractmethod
    def num_batches(self, split: str) -> int:
        """How many batches one pass over the split has."""

    @abstractmethod
    def train_copy(
        self, model: nn.Module, loss_fn: Callable[[AVOutput, torch.Tensor], torch.Tensor], epochs: int
    ) -> list[float]:
        """Train ``model`` (a copy the method made) on the training split for ``epochs`` epochs with
        ``loss_fn(out, y)``, using a fresh optimizer of the run's kind and current learning rate; the mean
        training loss of each epoch."""

    def map(
        self, split: str, fn: Callable[[ForwardContext, Batch], object], shuffle: bool = False, limit: int | None = None
    ) -> list:
        """``[fn(fwd, batch) for each batch]`` with the model in evaluation mode, without gradients."""
        was = self.model.training
        self.model.eval()
        try:
            with torch.no_grad():
                return [
                    fn(ForwardContext(self.model, self.groups, b, self.epoch, False, self.predict), b)
                    for b in self.batches(split, shuffle, limit)
                ]
        finally:
            self.model.train(was)

    def features(self, split: str, shuffle: bool = False, limit: int | None = None) -> FeatureSet:
        """The split's time-averaged encoder features (evaluation mode)."""

        def one(fwd, b):
            a, v = fwd.features()
            neurons.reset(self.model)
            return a.mean(0).float().cpu(), v.mean(0).float().cpu(), b.y.cpu(), b.index.cpu()

        parts = self.map(split, one, shuffle, limit)
        return FeatureSet(*(torch.cat([p[i] for p in parts]) for i in range(4)))

    def mean_loss(
        self, model: nn.Module, loss_fn: Callable[[AVOutput, torch.Tensor], torch.Tensor], split: str
    ) -> list[float]:
        """Mean over the split of ``loss_fn(out, y)`` (a scalar, or a vector of several losses at once: one pass),
        ``model`` in evaluation mode, without gradients; a list with one mean per entry."""
        was = model.training
        model.eval()
        total, n = None, 0
        try:
            with torch.no_grad():
                for b in self.batches(split):
                    value = loss_fn(model(b.audio, b.frames), b.y).detach().double().reshape(-1) * b.y.numel()
                    total = value if total is None else total + value
                    n += b.y.numel()
        finally:
            model.train(was)
        return [] if total is None else (total / max(n, 1)).tolist()


def true_class_score(logits: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """``sum_i softmax(logits)[i, y_i]`` over the batch (all-reduced across ranks when distributed)."""
    s = F.softmax(logits.detach().float(), dim=1).gather(1, y.view(-1, 1)).sum()
    if dist.is_available() and dist.is_initialized():
        dist.all_reduce(s)
    return s


class _ScaleGradient(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, scale):
        ctx.scale = scale
        return x.view_as(x)

    @staticmethod
    def backward(ctx, grad):
        return grad * ctx.scale, None


def scale_gradient(x: torch.Tensor, scale: float) -> torch.Tensor:
    """``x`` in the forward; its gradient times ``scale`` in the backward (a full backward hook on an identity)."""
    return _ScaleGradient.apply(x, float(scale))


class NoiseSource:
    """Seeded Gaussian noise on whatever device the gradients live (one generator per device, resumable)."""

    def __init__(self, seed: int) -> None:
        self.seed = seed
        self.generators: dict[str, torch.Generator] = {}

    def generator(self, device: torch.device | str) -> torch.Generator:
        key = str(device)
        if key not in self.generators:
            self.generators[key] = torch.Generator(device=device).manual_seed(self.seed)
        return self.generators[key]

    def randn(self, like: torch.Tensor) -> torch.Tensor:
        return torch.randn(like.shape, generator=self.generator(like.device), device=like.device, dtype=like.dtype)

    def rand(self, shape, device: torch.device | str) -> torch.Tensor:
        """Uniform ``[0, 1)`` draws from the same stream."""
        return torch.rand(shape, generator=self.generator(device), device=device)

    def state_dict(self) -> dict:
        return {k: g.get_state() for k, g in self.generators.items()}

    def load_state_dict(self, state: dict) -> None:
        for key, st in state.items():
            self.generators[key] = torch.Generator(device=key)
            self.generators[key].set_state(st)


def scale_with_noise(params, coeff: float, noise: NoiseSource | None) -> None:
    """``grad <- grad * coeff + N(0, std(grad) + 1e-8)`` in place (the std of the unscaled gradient, as the
    original code draws it); no noise when ``noise`` is None."""
    for p in params:
        if p.grad is None:
            continue
        g = p.grad
        std = (g.std() if g.numel() > 1 else torch.zeros((), device=g.device)) + 1e-8
        g.mul_(coeff)
        if noise is not None:
            g.add_(noise.randn(g) * std)


class Policy:
    """Base class: a method that does nothing (plain training). Subclasses override the hooks they need.

    Class attributes:
        name: the registry name (also the log namespace).
        config_class: its options dataclass.
        log_class: the fields it logs each step (a :class:`PolicyLog` dataclass with defaults).
        needs_unimodal_losses: the method reads the unimodal heads or their losses (IEMF, MMPareto), so they are
            trained whatever ``loss.unimodal`` says (the original code added them exactly in these runs).
        needs_features: the training forward must go through :class:`ForwardContext` (``ctx.fwd.used`` holds the
            features), not the model's own ``forward``.
        data_parallel: the method works under DDP (False for those that run more passes of the model, or
            parts of it, than DDP's one forward per step).
    """

    name: ClassVar[str] = "normal"
    config_class: ClassVar[type[PolicyConfig]] = PolicyConfig
    log_class: ClassVar[type[PolicyLog]] = PolicyLog
    needs_unimodal_losses: ClassVar[bool] = False
    needs_features: ClassVar[bool] = False
    data_parallel: ClassVar[bool] = True

    def __init__(self, config: PolicyConfig | None = None, seed: int = 0) -> None:
        self.cfg = config if config is not None else self.config_class()
        if not isinstance(self.cfg, self.config_class):
            raise TypeError(
                f"{type(self).__name__} takes a {self.config_class.__name__}, got {type(self.cfg).__name__}"
            )
        self.seed = seed
        self.log = self.log_class()
        self.extra: nn.Module | None = None

    # -- hooks ----------------------------------------------------------------------------------------------
    def setup(self, model: torch.nn.Module) -> None:
        """Once, before training, with the (unwrapped) model: attach forward hooks, build ``self.extra``, ..."""

    def on_epoch_start(self, view: EpochView) -> SamplePlan | None:
        """At the start of every epoch (also the first, also after a resume): epoch-level work; may return the
        epoch's training samples."""
        return None

    def forward(self, fwd: ForwardContext) -> AVOutput | None:
        """The training forward (``fwd.train``) or None for the usual one."""
        return None

    def predict(self, model: torch.nn.Module, a: torch.Tensor, v: torch.Tensor) -> AVOutput | None:
        """The output from time-resolved features ``a, v [T, B, D]`` (training and evaluation), or None for the
        model's fusion and heads."""
        return None

    def loss_weights(self, ctx: StepContext) -> dict[str, float] | None:
        """Weights of the loss terms by name (``fused``, ``audio``, ``visual``; a missing name keeps 1), or None."""
        return None

    def loss(self, ctx: StepContext) -> torch.Tensor | None:
        """An extra loss term (added to the total), or None."""
        return None

    def backward(self, ctx: StepContext, total: torch.Tensor) -> bool:
        """Compute the gradients itself and return True, or return False for ``total.backward()``."""
        return False

    def before_step(self, ctx: StepContext) -> None:
        """Act on ``p.grad`` (unscaled, before clipping and the optimizer step)."""

    def train_step(self, step: TrainStep) -> tuple[AVOutput, torch.Tensor] | None:
        """Take over the whole step (forwards, backwards, optimizer steps): return the step's output and its loss
        (for the logs), or None to leave the step to the trainer."""
        return None

    def on_validation(self, val: SplitMetrics, epoch: int) -> None:
        """Once per epoch with the validation split's numbers (never the test split's)."""

    def parameters(self) -> list[nn.Parameter]:
        """The parameters the method adds (``self.extra``), trained by the run's optimizer."""
        return list(self.extra.parameters()) if self.extra is not None else []

    # -- state ----------------------------------------------------------------------------------------------
    def state_dict(self) -> dict:
        state: dict = {"log": self.log.values()}
        if hasattr(self, "noise_source"):  # policies that perturb gradients resume their noise stream
            state["noise"] = self.noise_source.state_dict()
        if self.extra is not None:
            state["extra"] = {k: v.detach().clone() for k, v in self.extra.state_dict().items()}
        return state

    def load_state_dict(self, state: dict) -> None:
        saved = state.get("log", {})
        self.log = self.log_class(**{k: saved[k] for k in self.log_class.names() if k in saved})
        if hasattr(self, "noise_source"):
            self.noise_source.load_state_dict(state.get("noise", {}))
        if self.extra is not None and "extra" in state:
            self.extra.load_state_dict(state["extra"])

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.cfg})"
