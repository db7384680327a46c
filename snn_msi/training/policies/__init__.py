"""Balancing methods as composable policies, behind one registry (``METHODS``).

Every module of this package registers its methods when the package is imported (a new method is one new
file here plus its test). A run's methods are a list in its config::

    policies: [{name: ogm_ge, alpha: 0.8}, {name: iemf}]

and :func:`build_policies` turns that into a :class:`Compose` (OGM-GE on the encoders and IEMF on the fusion
layer in the same step, as the paper's tables combine them).
"""

from __future__ import annotations

import importlib
import pkgutil
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from neurons.registry import Registry

from ...schema import ConfigError
from .base import (
    DROP_AUDIO,
    DROP_NONE,
    DROP_VISUAL,
    MODALITIES,
    Batch,
    Composition,
    EpochView,
    FeatureSet,
    ForwardContext,
    NoiseSource,
    Policy,
    PolicyConfig,
    PolicyLog,
    SamplePlan,
    StepContext,
    TrainStep,
    WindowConfig,
    default_output,
    log_fields,
    scale_gradient,
    scale_with_noise,
    true_class_score,
    unmasked_heads,
)

__all__ = [
    "METHODS",
    "register_method",
    "build_policies",
    "Compose",
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
    "method_table",
    "Batch",
    "ForwardContext",
    "EpochView",
    "FeatureSet",
    "SamplePlan",
    "TrainStep",
    "default_output",
    "scale_gradient",
    "unmasked_heads",
    "DROP_NONE",
    "DROP_AUDIO",
    "DROP_VISUAL",
    "MODALITIES",
    "composes_with_iemf",
    "option_names",
    "option_owner",
    "check_fusion",
]

METHODS = Registry("method")


def register_method(
    cls=None, *, source: str, modulates: str, iemf: Composition, fusions: tuple[str, ...] | None = None
):
    """Class decorator: register a :class:`Policy` subclass under ``cls.name``.

    Args:
        source: the paper and the official code it follows.
        modulates: what it acts on, in a few words.
        iemf: whether it composes with IEMF (a run that lists both is refused with the reason when it does not).
        fusions: the fusions it supports (None: every one); a run with another is refused.
    """
    if not isinstance(iemf, Composition):
        raise TypeError(f"iemf must be a Composition, got {iemf!r}")

    def deco(c):
        return METHODS.register(c.name, c, source=source, modulates=modulates, iemf=iemf, fusions=fusions)

    return deco(cls) if cls is not None else deco


def option_names(name: str) -> set[str]:
    """The options of the registered method ``name`` (what ``--method-arg`` and ``sweep --param`` set)."""
    return set(METHODS.get(name).factory.config_class.__dataclass_fields__)


def option_owner(key: str, methods: Sequence[str], what: str) -> tuple[str, str] | None:
    """``(method, option)`` that ``key`` sets among the run's ``methods``: ``METHOD.option``, or a bare option of
    exactly one of them; None when none of them has a bare ``key`` (or ``key`` names another method). A
    ConfigError starting with ``what`` when the named method lacks the option or several have the bare one
    (``lam`` is CML's loss weight and IEMF's coefficient scale)."""
    method, dot, option = key.rpartition(".")
    if dot and method in methods:
        if option not in option_names(method):
            known = ", ".join(sorted(option_names(method))) or "none"
            raise ConfigError(f"{what}: the method ({method}) has no option {option!r}; its options: {known}")
        return method, option
    takers = [m for m in methods if key in option_names(m)]
    if len(takers) > 1:
        raise ConfigError(
            f"{what}: several methods of this run have {key!r}; say which: " + " or ".join(f"{m}.{key}" for m in takers)
        )
    return (takers[0], key) if takers else None


def composes_with_iemf(name: str) -> Composition:
    """Whether the registered method ``name`` may run in one run with IEMF, and why."""
    return METHODS.get(name).iemf


def check_fusion(names: Sequence[str], fusion: str) -> None:
    """Refuse (one-line ConfigError) a run whose methods do not support its fusion."""
    for name in names:
        allowed = METHODS.get(name).fusions
        if allowed is not None and fusion not in allowed:
            raise ConfigError(
                f"method {name!r} needs a fusion with a linear head per modality ({', '.join(allowed)}); "
                f"this run's fusion is {fusion!r}"
            )


def _overrides(p: Policy, hook: str) -> bool:
    return getattr(type(p), hook) is not getattr(Policy, hook)


class Compose(Policy):
    """Run several policies in order; their logs are namespaced (``iemf/coeff``, ``ogm_ge/coeff_audio``).

    At most one policy may own each of ``forward``, ``predict``, ``backward`` and ``train_step``; a method that
    takes over the whole step runs alone; a method that does not compose with IEMF is refused beside it.
    """

    name = "compose"

    def __init__(self, policies: Sequence[Policy]) -> None:
        super().__init__()
        names = [p.name for p in policies]
        hooks = (
            ("backward", "compute the backward"),
            ("forward", "compute the forward"),
            ("predict", "compute the prediction"),
            ("train_step", "take over the training step"),
        )
        for hook, what in hooks:
            own = [p.name for p in policies if _overrides(p, hook)]
            if len(own) > 1:
                raise ConfigError(f"at most one method may {what} itself: {', '.join(own)}")
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"method(s) {', '.join(twice)} listed twice; each method acts once per step")
        registered = [METHODS.get(n).iemf for n in names if n in METHODS]
        if any(c.itself for c in registered):
            for name, c in zip([n for n in names if n in METHODS], registered, strict=True):
                if not c.composes:
                    raise ConfigError(f"method {name!r} does not compose with IEMF: {c.reason}")
        step = [p.name for p in policies if _overrides(p, "train_step")]
        if step and len(policies) > 1:
            raise ConfigError(
                f"method {step[0]!r} takes over the whole training step and runs alone, not with "
                f"{', '.join(n for n in names if n != step[0])}"
            )
        self.policies = list(policies)
        self.needs_unimodal_losses = any(p.needs_unimodal_losses for p in self.policies)
        self.needs_features = any(p.needs_features for p in self.policies)
        # DDP syncs the gradients of its one forward per step: a method with more passes of the model (or of parts
        # of it), or its own backward, runs in one process
        own = ("forward", "predict", "backward", "train_step")
        self.data_parallel = all(
            p.data_parallel and not p.needs_features and not any(_overrides(p, h) for h in own) for p in self.policies
        )

    @property
    def label(self) -> str:
        return "+".join(p.name for p in self.policies) or "normal"

    def names(self) -> list[str]:
        return [p.name for p in self.policies]

    def owner(self, hook: str) -> Policy | None:
        """The policy that overrides ``hook`` (``forward``, ``predict``, ``train_step``, ...), if any."""
        return next((p for p in self.policies if _overrides(p, hook)), None)

    def setup(self, model):
        for p in self.policies:
            p.setup(model)

    def on_epoch_start(self, view):
        plans = [(p.name, plan) for p in self.policies if (plan := p.on_epoch_start(view)) is not None]
        if len(plans) > 1:
            raise ConfigError(f"methods {', '.join(n for n, _ in plans)} each resample the training set; only one may")
        return plans[0][1] if plans else None

    def forward(self, fwd):
        p = self.owner("forward")
        return p.forward(fwd) if p is not None else None

    def predict(self, model, a, v):
        p = self.owner("predict")
        return p.predict(model, a, v) if p is not None else None

    def loss_weights(self, ctx):
        weights: dict[str, float] = {}
        for p in self.policies:
            for k, w in (p.loss_weights(ctx) or {}).items():
                weights[k] = weights.get(k, 1.0) * float(w)
        return weights or None

    def loss(self, ctx):
        extra = [t for p in self.policies if (t := p.loss(ctx)) is not None]
        return sum(extra) if extra else None

    def backward(self, ctx, total):
        return any(p.backward(ctx, total) for p in self.policies)

    def before_step(self, ctx):
        for p in self.policies:
            p.before_step(ctx)

    def train_step(self, step):
        p = self.owner("train_step")
        return p.train_step(step) if p is not None else None

    def on_validation(self, val, epoch):
        for p in self.policies:
            p.on_validation(val, epoch)

    def parameters(self):
        return [q for p in self.policies for q in p.parameters()]

    def log_columns(self) -> list[str]:
        """Every policy's declared log fields, namespaced by policy (the columns :meth:`step_log` fills)."""
        return [f"{p.name}/{k}" for p in self.policies for k in p.log_class.names()]

    def headlines(self) -> list[str]:
        """The log columns the progress bar shows and ``curves.png`` plots (each policy's ``headline``)."""
        return [f"{p.name}/{p.log_class.headline}" for p in self.policies if p.log_class.headline is not None]

    def step_log(self) -> dict[str, float]:
        """What every policy did in the last step, keys namespaced by policy."""
        return {f"{p.name}/{k}": float(v) for p in self.policies for k, v in p.log.values().items()}

    def state_dict(self):
        return {"policies": [{"name": p.name, **p.state_dict()} for p in self.policies]}

    def load_state_dict(self, state):
        saved = state.get("policies", [])
        if [s.get("name") for s in saved] != self.names():
            raise ValueError(
                f"the checkpoint's methods {[s.get('name') for s in saved]} are not this run's {self.names()}"
            )
        for p, s in zip(self.policies, saved, strict=True):
            p.load_state_dict(s)

    def __repr__(self):
        return f"Compose({self.policies})"


def parse_policy(spec: Mapping, where: str = "policies[0]") -> tuple[type[Policy], PolicyConfig]:
    """``{"name": ..., **options}`` -> the method's class and its checked options."""
    if not isinstance(spec, Mapping) or "name" not in spec:
        raise ConfigError(
            f"{where} must be a mapping with a 'name' (one of {', '.join(METHODS.names())}), got {spec!r}"
        )
    try:
        cls = METHODS.get(spec["name"]).factory
    except (ValueError, TypeError) as err:
        raise ConfigError(f"{where}: {err}") from None
    options = {k: v for k, v in spec.items() if k != "name"}
    return cls, cls.config_class.from_dict(options, f"{where}({spec['name']})")


def resolve_policies(specs: Sequence[Mapping]) -> list[dict]:
    """Each method with every option written out (its defaults where ``specs`` leaves them): what a run saves, so
    that a default changed later is a change of the run's config, not a silent reuse of a run made under the old
    one."""
    return [{"name": spec["name"], **parse_policy(spec, f"policies[{i}]")[1].to_dict()} for i, spec in enumerate(specs)]


def build_policies(specs: Sequence[Mapping], seed: int = 0) -> Compose:
    """A :class:`Compose` of the methods ``specs`` (``[{"name": "ogm_ge", "alpha": 0.8}, {"name": "lfm"}]``).

    Each method gets its own seed (``seed`` and its position), for its noise stream.
    """
    policies = []
    for i, spec in enumerate(specs):
        cls, cfg = parse_policy(spec, f"policies[{i}]")
        policies.append(cls(cfg, seed=seed * 1000 + 17 * (i + 1)))
    return Compose(policies)


@dataclass(frozen=True)
class MethodRow:
    """One registered method as ``snn-msi methods`` shows it."""

    method: str
    description: str
    source: str
    modulates: str
    with_iemf: Composition
    fusions: str


def method_table() -> list[MethodRow]:
    """One row per registered method: name, description, source, what it modulates, composes with IEMF, fusions."""
    return [
        MethodRow(name, e.description, e.source, e.modulates, e.iemf, ", ".join(e.fusions) if e.fusions else "all")
        for name, e in ((n, METHODS.get(n)) for n in METHODS.names())
    ]


# every module of this package registers its methods on import
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")
