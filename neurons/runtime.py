"""Process-wide settings that make CPU training faster: keep freed memory in the process (glibc).

A training step allocates and frees the same large tensors every step. glibc hands blocks above its mmap
threshold (128 KiB, raised dynamically up to 32 MiB) straight to ``mmap`` and returns them to the OS on ``free``,
and trims the top of the heap above 128 KiB; so every step faults the same pages in again (on a 2-core machine a
large share of a small network's step). :func:`keep_freed_memory` tells glibc, at run time, to serve large blocks
from the heap and not to give freed memory back: the process keeps its peak footprint (what the step needs
anyway) and the page faults go away. It is the same as starting Python with
``MALLOC_MMAP_THRESHOLD_=<bytes> MALLOC_TRIM_THRESHOLD_=<bytes>``.

    from neurons.runtime import keep_freed_memory
    keep_freed_memory()          # True when applied (glibc), False elsewhere (macOS, Windows, musl)

The setting cannot be undone inside the process (glibc's dynamic threshold is off once it is set); the price is
that the resident memory does not shrink after a peak.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

__all__ = ["keep_freed_memory", "kept_freed_memory", "DEFAULT_THRESHOLD", "ENV_DISABLE"]

#: bytes: blocks below this come from the heap; freed heap above this is not trimmed (1 GiB)
DEFAULT_THRESHOLD = 1 << 30
#: set to ``0`` to make :func:`keep_freed_memory` a no-op (for example to compare against glibc's default)
ENV_DISABLE = "SNN_MSI_KEEP_FREED_MEMORY"

# glibc's mallopt parameters (malloc.h)
_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3

_state = {"applied": None}


@functools.lru_cache(maxsize=1)
def _libc():
    if not sys.platform.startswith("linux"):
        return None
    try:
        libc = ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6")
        _ = libc.gnu_get_libc_version  # only glibc has mallopt with these meanings
        libc.mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
        libc.mallopt.restype = ctypes.c_int
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory(threshold: int = DEFAULT_THRESHOLD) -> bool:
    """Serve blocks below ``threshold`` bytes from the heap and never trim freed heap below it (glibc).

    Returns True when glibc accepted both settings, False where it cannot apply (not glibc, or the environment
    variable ``SNN_MSI_KEEP_FREED_MEMORY=0``). Safe to call more than once.
    """
    threshold = int(threshold)
    if not 0 < threshold < 2**31:
        raise ValueError(f"keep_freed_memory: threshold must be in (0, 2**31) bytes, got {threshold}")
    if os.environ.get(ENV_DISABLE, "1").strip().lower() in ("0", "false", "no", "off"):
        return False
    libc = _libc()
    if libc is None:
        return False
    ok = bool(libc.mallopt(_M_MMAP_THRESHOLD, threshold)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, threshold))
    if ok:
        _state["applied"] = threshold
    return ok


def kept_freed_memory() -> int | None:
    """The threshold :func:`keep_freed_memory` set in this process, or None if it has not."""
    return _state["applied"]
