"""Plain training: the loss as configured, no modulation."""

from __future__ import annotations

from . import register_method
from .base import Composition, Policy


@register_method(source="-", modulates="nothing", iemf=Composition(True))
class Normal(Policy):
    """Plain training: fused (+ unimodal) cross-entropy, no modulation."""

    name = "normal"
