"""Registry of neuron models: swap a model by name (after timm's model registry).

@register("lif", description="leaky integrate-and-fire")
class LIF(BaseNeuron): ...

neuron = create("lif", tau=2.0, v_threshold=0.5)
available()            # {"lif": "leaky integrate-and-fire", ...}
available("snntorch.*")
"""

from __future__ import annotations

import difflib
import fnmatch
import inspect
from collections.abc import Callable
from dataclasses import dataclass

from torch import nn

__all__ = ["register", "create", "available", "info", "NeuronEntry"]


@dataclass(frozen=True)
class NeuronEntry:
    name: str
    factory: Callable[..., nn.Module]
    description: str
    kind: str  # "spiking", "analogue" (non-spiking control) or "peer:<library>"


_REGISTRY: dict[str, NeuronEntry] = {}


def register(name: str, description: str | None = None, kind: str | None = None):
    """Class or function decorator that registers a neuron factory under ``name``.

    ``description`` defaults to the first line of the factory's docstring; ``kind`` to its ``kind`` attribute.
    """

    def deco(factory):
        if name in _REGISTRY:
            raise ValueError(f"neuron {name!r} is already registered ({_REGISTRY[name].factory})")
        doc = (inspect.getdoc(factory) or "").strip().splitlines()
        desc = description or (doc[0] if doc else "")
        _REGISTRY[name] = NeuronEntry(name, factory, desc, kind or getattr(factory, "kind", "spiking"))
        return factory

    return deco


def _unknown(name: str) -> ValueError:
    close = difflib.get_close_matches(name, list(_REGISTRY), n=3, cutoff=0.5)
    hint = f" Did you mean {', '.join(map(repr, close))}?" if close else ""
    return ValueError(f"unknown neuron {name!r}; available: {', '.join(sorted(_REGISTRY))}.{hint}")


def info(name: str) -> NeuronEntry:
    """The registry entry of ``name`` (raises ``ValueError`` for unknown names)."""
    if name not in _REGISTRY:
        raise _unknown(name)
    return _REGISTRY[name]


def _accepted_kwargs(factory) -> tuple[set[str], bool]:
    """Keyword names a factory takes; for classes, follow ``**kwargs`` up the MRO to the base's arguments."""
    funcs = [c.__init__ for c in factory.__mro__ if "__init__" in vars(c)] if inspect.isclass(factory) else [factory]
    names: set[str] = set()
    for fn in funcs:
        params = inspect.signature(fn).parameters.values()
        names |= {p.name for p in params if p.kind not in (p.VAR_KEYWORD, p.VAR_POSITIONAL)}
        if not any(p.kind is p.VAR_KEYWORD for p in params):
            return names - {"self"}, False
    return names - {"self"}, True


def create(name: str, **kwargs) -> nn.Module:
    """Build the neuron registered as ``name`` with keyword arguments ``kwargs``.

    Raises:
        ValueError: unknown name (lists the registered names and close matches) or an argument the model
            does not take (lists the arguments it does take).
    """
    entry = info(name)
    accepted, var_kw = _accepted_kwargs(entry.factory)
    bad = sorted(set(kwargs) - accepted)
    if bad and not var_kw:
        raise ValueError(
            f"neuron {name!r} does not take argument(s) {', '.join(bad)}; valid: {', '.join(sorted(accepted))}"
        )
    return entry.factory(**kwargs)


def available(pattern: str | None = None) -> dict[str, str]:
    """Registered names (optionally filtered by a shell-style ``pattern``) with a one-line description."""
    names = sorted(_REGISTRY)
    if pattern is not None:
        names = [n for n in names if fnmatch.fnmatch(n, pattern)]
    return {n: f"[{_REGISTRY[n].kind}] {_REGISTRY[n].description}" for n in names}
