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

from neurons.registry import Registry

from ...schema import ConfigError
from .base import (
    NoiseSource,
    Policy,
    PolicyConfig,
    StepContext,
    WindowConfig,
    scale_with_noise,
    true_class_score,
)

__all__ = ["METHODS", "register_method", "build_policies", "Compose", "Policy", "PolicyConfig", "WindowConfig",
           "StepContext", "NoiseSource", "scale_with_noise", "true_class_score", "method_table"]  # fmt: skip

METHODS = Registry("method")


def register_method(cls=None, *, source: str, modulates: str, iemf: str):
    """Class decorator: register a :class:`Policy` subclass under ``cls.name``.

    Args:
        source: the paper and the official code it follows.
        modulates: what it acts on, in a few words.
        iemf: whether it composes with IEMF ("yes", or "no: <why>").
    """

    def deco(c):
        return METHODS.register(c.name, c, source=source, modulates=modulates, iemf=iemf)

    return deco(cls) if cls is not None else deco


class Compose(Policy):
    """Run several policies in order; their logs are namespaced (``iemf/coeff``, ``ogm_ge/coeff_audio``)."""

    name = "compose"

    def __init__(self, policies: Sequence[Policy]) -> None:
        super().__init__()
        own = [p.name for p in policies if type(p).backward is not Policy.backward]
        if len(own) > 1:
            raise ConfigError(f"at most one method may compute the backward itself: {', '.join(own)}")
        names = [p.name for p in policies]
        twice = sorted({n for n in names if names.count(n) > 1})
        if twice:
            raise ConfigError(f"method(s) {', '.join(twice)} listed twice; each method acts once per step")
        self.policies = list(policies)
        self.needs_unimodal_losses = any(p.needs_unimodal_losses for p in self.policies)

    @property
    def label(self) -> str:
        return "+".join(p.name for p in self.policies) or "normal"

    def names(self) -> list[str]:
        return [p.name for p in self.policies]

    def setup(self, model):
        for p in self.policies:
            p.setup(model)

    def loss(self, ctx):
        extra = [t for p in self.policies if (t := p.loss(ctx)) is not None]
        return sum(extra) if extra else None

    def backward(self, ctx, total):
        return any(p.backward(ctx, total) for p in self.policies)

    def before_step(self, ctx):
        for p in self.policies:
            p.before_step(ctx)

    def on_validation(self, val, epoch):
        for p in self.policies:
            p.on_validation(val, epoch)

    def step_log(self) -> dict[str, float]:
        """What every policy did in the last step, keys namespaced by policy."""
        return {f"{p.name}/{k}": float(v) for p in self.policies for k, v in p.log.items()}

    def state_dict(self):
        return {"policies": [{"name": p.name, **p.state_dict()} for p in self.policies]}

    def load_state_dict(self, state):
        saved = state.get("policies", [])
        if [s.get("name") for s in saved] != self.names():
            raise ValueError(f"the checkpoint's methods {[s.get('name') for s in saved]} are not this run's "
                             f"{self.names()}")  # fmt: skip
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


def build_policies(specs: Sequence[Mapping], seed: int = 0) -> Compose:
    """A :class:`Compose` of the methods ``specs`` (``[{"name": "ogm_ge", "alpha": 0.8}, {"name": "iemf"}]``).

    Each method gets its own seed (``seed`` and its position), for its noise stream.
    """
    policies = []
    for i, spec in enumerate(specs):
        cls, cfg = parse_policy(spec, f"policies[{i}]")
        policies.append(cls(cfg, seed=seed * 1000 + 17 * (i + 1)))
    return Compose(policies)


def method_table() -> list[dict[str, str]]:
    """One row per registered method: name, description, source, what it modulates, composes with IEMF."""
    rows = []
    for name in METHODS.names():
        e = METHODS.get(name)
        rows.append({"method": name, "description": e.description, "source": e.source, "modulates": e.modulates,
                     "iemf": e.iemf})  # fmt: skip
    return rows


# every module of this package registers its methods on import
for _info in pkgutil.iter_modules(__path__):
    if _info.name != "base":
        importlib.import_module(f"{__name__}.{_info.name}")
