"""The neuron registry: swap a model by name, each name with its own defaults.

    @register("lif", description="leaky integrate-and-fire")
    class LIF(BaseNeuron): ...

    neuron = create("lif", tau=2.0, v_threshold=0.5)
    defaults("if")         # {"v_threshold": 1.0, "surrogate": "atan", ...}: what "if" is built with
    available()            # {"lif": "[spiking] leaky integrate-and-fire", ...}
    available("snntorch.*")

A name carries its defaults (its factory's signature), so a model config stores a name plus overrides and
never another model's arguments. Arguments in :data:`SHARED_ARGS` (threshold, surrogate and its width, ...)
pass to every neuron that has them and are dropped for one that has not (the ReLU control has none, the
Izhikevich model's cut-off is in millivolts); every other argument must belong to the chosen neuron.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from torch import nn

from .registry import Entry, Registry, accepted_arguments

__all__ = ["NEURONS", "SHARED_ARGS", "register", "create", "available", "info", "defaults", "split_shared"]

NEURONS = Registry("neuron")

#: arguments every neuron family understands the same way; they apply wherever a neuron takes them
SHARED_ARGS = ("v_threshold", "surrogate", "alpha", "detach_reset", "step_mode", "backend", "check_inputs")


def register(name: str, description: str | None = None, kind: str | None = None):
    """Class or function decorator that registers a neuron factory under ``name``.

    ``kind`` ("spiking", "analogue" for non-spiking controls, "peer:<library>") defaults to the factory's
    ``kind`` attribute, else "spiking".
    """

    def deco(factory):
        return NEURONS.register(
            name, factory, description=description, kind=kind or getattr(factory, "kind", "spiking")
        )

    return deco


def info(name: str) -> Entry:
    """The registry entry of ``name`` (``.kind``, ``.description``, ``.factory``)."""
    return NEURONS.get(name)


def defaults(name: str) -> dict[str, Any]:
    """``{argument: default}`` that ``create(name)`` uses (arguments without a default are left out)."""
    from inspect import Parameter

    return {k: v for k, v in NEURONS.arguments(name).items() if v is not Parameter.empty}


def split_shared(name: str, kwargs: Mapping[str, Any]) -> tuple[dict[str, Any], list[str]]:
    """``(kwargs for neuron name, dropped)``: shared arguments the neuron does not take are dropped (none for a
    factory that takes ``**kwargs`` through to the end: it may take them all, as ``def f(**kw): return LIF(**kw)``)."""
    accepted, takes_any = accepted_arguments(NEURONS.get(name).factory)
    dropped = [] if takes_any else [k for k in kwargs if k in SHARED_ARGS and k not in accepted]
    return {k: v for k, v in kwargs.items() if k not in dropped}, dropped


def create(name: str, /, **kwargs: Any) -> nn.Module:
    """Build the neuron registered as ``name``.

    ``step_mode`` (a shared argument) is ``"s"`` unless given, as in SpikingJelly: each call is ONE time step, so
    a ``[T, B, F]`` sequence is taken as a single step of shape ``[T, B, F]``. Feed sequences with
    ``create(name, step_mode="m")`` (``[T, B, ...] -> [T, B, ...]``), or loop over T in single-step mode as in
    snnTorch; :func:`neurons.set_step_mode` switches every neuron of a model.

    Shared arguments (:data:`SHARED_ARGS`) that this neuron does not take are ignored; any other argument it
    does not take raises ``ValueError`` listing the valid ones. Unknown names raise with close matches.
    """
    kwargs, _ = split_shared(name, kwargs)
    return NEURONS.create(name, **kwargs)


def available(pattern: str | None = None) -> dict[str, str]:
    """Registered names (optionally filtered by a shell-style ``pattern``) with ``"[kind] description"``."""
    return {n: f"[{NEURONS.get(n).kind}] {d}" for n, d in NEURONS.available(pattern).items()}
