"""Fused CPU path: a C++ extension (``csrc/if_family.cpp``) built once on first use and cached by PyTorch.

Build needs a C++ compiler, Python headers and ``ninja``; :func:`unavailable_reason` says why it cannot be used.
"""

from __future__ import annotations

import functools
import hashlib
import os
from pathlib import Path

_SRC = Path(__file__).parent / "csrc" / "if_family.cpp"


def code_flags() -> list[str]:
    """``-DSNN_LEAK_DIV=1 ...``: the integer codes the C++ source uses, generated from the Python tables."""
    from ..functional import LEAKS, RESETS
    from ..surrogate import KERNEL_SURROGATES

    tables = (("LEAK", LEAKS), ("RESET", RESETS), ("SG", KERNEL_SURROGATES))
    return [f"-DSNN_{prefix}_{name.upper()}={i}" for prefix, names in tables for i, name in enumerate(names)]


@functools.lru_cache(maxsize=1)
def _load():
    from torch.utils.cpp_extension import load

    build_dir = os.environ.get("SNN_MSI_EXT_DIR")
    if build_dir:
        os.makedirs(build_dir, exist_ok=True)
    # OpenMP pragmas, but no -lgomp at link time: the calls bind to the OpenMP runtime torch has loaded, so
    # there is one thread pool (two runtimes spinning against each other made model steps 5x slower)
    cflags, ldflags = ["-O3", "-fopenmp", "-ffp-contract=off", *code_flags()], []
    # the name carries a hash of source and flags, so an edited source never loads a stale cached build
    digest = hashlib.sha1(_SRC.read_bytes() + " ".join(cflags + ldflags).encode()).hexdigest()[:10]
    return load(
        name=f"snn_msi_if_family_cpu_{digest}",
        sources=[str(_SRC)],
        extra_cflags=cflags,
        extra_ldflags=ldflags,
        build_directory=build_dir,
        verbose=False,
    )


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when the extension builds and loads, else why not (a one-line reason)."""
    try:
        _load()
    except Exception as err:  # a failed build is reported to the user, who then gets the torch path
        return f"C++ extension failed to build/load: {type(err).__name__}: {str(err).strip().splitlines()[-1]}"
    return None


def forward(x, v0, leak, tau, k, decay_input, th, vr, reset):
    return _load().forward(x, v0, leak, tau, k, decay_input, th, vr, reset)


def backward(grad_s, grad_v_last, h_seq, x, v0, leak, k, decay_input, th, vr, reset, sg_id, alpha, detach):
    return _load().backward(
        grad_s, grad_v_last, h_seq, x, v0, leak, k, decay_input, th, vr, reset, sg_id, alpha, detach
    )


def warm_up() -> float:
    """Build (or load from cache) the extension; returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    _load()
    return time.perf_counter() - t0


__all__ = ["forward", "backward", "unavailable_reason", "warm_up"]
