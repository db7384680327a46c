"""Spike-rate and energy metrics."""

from .monitor import SpikeMonitor

__all__ = ["SpikeMonitor"]
