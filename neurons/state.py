"""The neurons' state across a model: forget it, cut its graph, read it, put it back, and gradient checkpointing
that respects it.

Every neuron (any :class:`~neurons.base.StatefulModule`) keeps its state (``v``; ``i_syn``, ``a``, ``u`` where the
model has them) between calls, as in SpikingJelly and snnTorch. These functions act on every neuron of a model::

    neurons.reset(model)                  # between sequences
    neurons.detach(model)                 # between chunks of one sequence (truncated BPTT)
    s = neurons.get_state(model)          # {module name: {state name: tensor or None}}
    neurons.set_state(model, s)           # back to it (Norse-style explicit state, e.g. a beam or a replay)
    y = neurons.checkpoint(block, x)      # torch.utils.checkpoint for a block that holds neuron state
"""

from __future__ import annotations

from collections.abc import Mapping

import torch
from torch import nn
from torch.utils.checkpoint import checkpoint as _torch_checkpoint

from .base import StatefulModule

__all__ = ["reset", "detach", "get_state", "set_state", "checkpoint", "recomputing"]


def _neurons(model: nn.Module):
    return ((name, m) for name, m in model.named_modules() if isinstance(m, StatefulModule))


def reset(model: nn.Module) -> None:
    """Reset the state of every neuron (any :class:`StatefulModule`) inside ``model``."""
    for _, m in _neurons(model):
        m.reset()


def detach(model: nn.Module) -> None:
    """Cut the graph of every neuron's state inside ``model``, keeping its values: feed a long sequence in chunks
    with truncated BPTT (SpikingJelly's ``detach_net``, snnTorch's ``detach_hidden``)::

        for chunk in x.split(50):          # [T, B, ...] in chunks of 50 steps
            loss(model(chunk)).backward(); opt.step(); opt.zero_grad()
            neurons.detach(model)
    """
    for _, m in _neurons(model):
        m.detach()


def get_state(model: nn.Module) -> dict[str, dict[str, torch.Tensor | None]]:
    """``{module name: {state name: tensor or None}}`` for every neuron inside ``model`` (``""`` names the model
    itself when it is a neuron): the tensors themselves, graph included (``detach()`` or ``clone()`` them to keep
    a copy that later steps do not reach)."""
    return {name: m.get_state() for name, m in _neurons(model)}


def set_state(model: nn.Module, state: Mapping[str, Mapping[str, torch.Tensor | None]]) -> None:
    """Put back a state :func:`get_state` gave (for every neuron it names)."""
    mods = dict(_neurons(model))
    if unknown := sorted(set(state) - set(mods)):
        raise ValueError(f"set_state: no neuron named {unknown} in the model; its neurons are {sorted(mods)}")
    for name, s in state.items():
        mods[name].set_state(s)


def recomputing() -> bool:
    """True while :func:`checkpoint` recomputes a block in the backward pass: a forward hook that records what a
    forward did (:class:`snn_msi.metrics.SpikeMonitor`) skips those calls, which would count a batch twice."""
    return _recompute_depth > 0


_recompute_depth = 0


def _snapshot(block: nn.Module) -> list[tuple[nn.Module, dict]]:
    """Every module's attributes inside ``block``, and the contents of its attribute dicts (buffers,
    SpikingJelly's memories): all a forward can rebind (neuron state, ``v_seq``, a peer's own state)."""
    return [(m, {k: dict(v) if isinstance(v, dict) else v for k, v in vars(m).items()}) for m in block.modules()]


def _restore(snapshot: list[tuple[nn.Module, dict]]) -> None:
    for m, attrs in snapshot:
        now = vars(m)
        for k, v in attrs.items():
            if isinstance(v, dict) and isinstance(now.get(k), dict):
                now[k].clear()  # the same dict object (hooks and buffers dicts are referenced elsewhere)
                now[k].update(v)
            else:
                now[k] = v


def checkpoint(block: nn.Module, *args, **kwargs):
    """``torch.utils.checkpoint.checkpoint(block, *args, use_reentrant=False, **kwargs)`` for a block that holds
    neuron state.

    Plain checkpointing recomputes the block in the backward pass from the state its forward left behind (the
    neurons advanced it), which gives wrong gradients without an error; here the recompute starts from the
    block's attributes as the forward found them (every neuron's state, ours or a peer's, wrapped or not), and
    leaves no trace: the attributes are put back as the backward pass found them (later chunks go on from where
    the forward passes left them, ``v_seq`` is the forward's), and forward hooks can tell the recompute by
    :func:`recomputing`. ``kwargs``: ``torch.utils.checkpoint.checkpoint``'s own (``preserve_rng_state``,
    ``determinism_check``, ...); any other goes to ``block``.

    Shapes: as ``block``'s (e.g. ``[T, B, ...] -> [T, B, ...]`` for multi-step neurons).
    """
    if not isinstance(block, nn.Module):
        raise TypeError(
            f"neurons.checkpoint: block must be an nn.Module (whose state it keeps right), got {type(block).__name__}"
        )
    before, ran = _snapshot(block), False

    def run(*a, **k):
        global _recompute_depth
        nonlocal ran
        if not ran:  # the forward
            ran = True
            return block(*a, **k)
        now = _snapshot(block)  # the recompute, in backward: from the attributes the forward started from
        _restore(before)
        _recompute_depth += 1
        try:
            return block(*a, **k)
        finally:  # back to what it was (the recompute may also stop early: torch's early stop raises)
            _recompute_depth -= 1
            _restore(now)

    if kwargs.pop("use_reentrant", False):
        raise ValueError(
            "neurons.checkpoint: use_reentrant=True would drop the gradient through the state the neurons carry "
            "into the block (reentrant checkpointing differentiates only its explicit inputs); it runs non-reentrant"
        )
    return _torch_checkpoint(run, *args, use_reentrant=False, **kwargs)
