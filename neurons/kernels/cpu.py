"""Fused CPU path: a C++ extension (``csrc/if_family.cpp``) built once on first use and cached by PyTorch.

Build needs a C++ compiler, Python headers and ``ninja``; :func:`unavailable_reason` says why it cannot be used.

The extension is compiled for the machine it runs on (``-march=native``: AVX2 / AVX-512 where the CPU has
them, which makes the loops 2-4x faster than the portable SSE2 build); the cached build's name carries a hash
of the CPU's feature flags, so a cache shared between different machines never loads a build for another CPU.
``SNN_MSI_PORTABLE_BUILD=1`` builds without ``-march=native`` (and a failed native build falls back to it).
FP contraction stays off, so the results are bitwise the same as the portable build's and the reference's.
:func:`load_extension` builds the project's other C++ extensions the same way (the data path's frame transform,
``snn_msi/encoders/csrc/frames.cpp``).

PyTorch's build lock (a ``lock`` file in the build folder) outlives a process killed while building or loading,
and every later process then waits for it forever. Builds here run under an OS lock (``flock``, released when
its process dies, however it dies), so a ``lock`` file found while holding it is such a leftover and is removed.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import platform
from collections.abc import Iterator, Sequence
from pathlib import Path

_SRC = Path(__file__).parent / "csrc" / "if_family.cpp"


def code_flags() -> list[str]:
    """``-DSNN_LEAK_DIV=1 ...``: the integer codes the C++ source uses, generated from the Python tables."""
    from ..functional import LEAKS, RESETS
    from ..surrogate import KERNEL_SURROGATES

    tables = (("LEAK", LEAKS), ("RESET", RESETS), ("SG", KERNEL_SURROGATES))
    return [f"-DSNN_{prefix}_{name.upper()}={i}" for prefix, names in tables for i, name in enumerate(names)]


def _cpu_id() -> str:
    """The CPU's model and feature flags (what ``-march=native`` compiles for)."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return platform.machine() + platform.processor()
    keep = [ln for ln in text.splitlines() if ln.startswith(("flags", "model name", "Features", "CPU part"))]
    return platform.machine() + "\n".join(sorted(set(keep)))


def build_name(name: str, source: Path, cflags: list[str], native: bool) -> str:
    """``name`` + a hash of the source's text and path, the flags and (for a native build) the CPU: an edited
    source or another machine never loads a stale cached build, and two checkouts do not share one build folder
    (ninja's command line names the source's path: sharing one, each checkout's first load rebuilt what the other
    had built, a minute per process)."""
    key = b"\0".join(
        [source.read_bytes(), str(source.resolve()).encode(), " ".join(cflags).encode()]
        + ([_cpu_id().encode()] if native else [])
    )
    return f"{name}_{hashlib.sha1(key).hexdigest()[:10]}"


def _build(name: str, source: Path, flags: list[str], native: bool):
    from torch.utils.cpp_extension import load

    build_dir = os.environ.get("SNN_MSI_EXT_DIR")
    # OpenMP pragmas, but no -lgomp at link time: the calls bind to the OpenMP runtime torch has loaded, so
    # there is one thread pool (two runtimes spinning against each other made model steps 5x slower)
    cflags = ["-O3", "-fopenmp", "-ffp-contract=off", *flags]
    if native:
        cflags.append("-march=native")
    full = build_name(name, source, cflags, native)
    if build_dir:  # one folder per build: PyTorch's build lock and build.ninja are per folder
        build_dir = os.path.join(build_dir, full)
        os.makedirs(build_dir, exist_ok=True)
    else:
        from torch.utils.cpp_extension import _get_build_directory

        build_dir = _get_build_directory(full, verbose=False)
    with build_lock(build_dir):
        if not any(f.endswith((".so", ".pyd")) for f in os.listdir(build_dir)):
            logging.getLogger("neurons").warning(
                "building the C++ kernel %s for this machine (once, cached; about a minute)", name
            )
        return load(
            name=full,
            sources=[str(source)],
            extra_cflags=cflags,
            build_directory=build_dir,
            verbose=False,
        )


@contextlib.contextmanager
def build_lock(build_dir: str) -> Iterator[None]:
    """Hold an OS lock on ``build_dir`` (one builder or loader at a time, across processes) and remove the
    ``lock`` file PyTorch left there if its process died (none that is alive can hold it: they all take this lock
    first). Without ``fcntl`` (Windows) only PyTorch's own lock is used."""
    try:
        import fcntl
    except ImportError:
        yield
        return
    with open(os.path.join(build_dir, "snn_msi.flock"), "a") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(build_dir, "lock"))
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def load_extension(name: str, source: Path, flags: Sequence[str] = ()):
    """Build (once; PyTorch caches it) and import the C++ extension ``source`` for this machine: the native build
    (``-march=native``), else (``SNN_MSI_PORTABLE_BUILD=1``, or a compiler that cannot) the portable one; both
    without FP contraction. ``flags``: more compiler flags (``-D...``)."""
    if os.environ.get("SNN_MSI_PORTABLE_BUILD", "0") != "1":
        try:
            return _build(name, source, list(flags), native=True)
        except Exception:  # a compiler without -march=native (or a failed native build): the portable one
            pass
    return _build(name, source, list(flags), native=False)


def failure(load) -> str | None:
    """None when ``load()`` builds and imports an extension, else why not (a one-line reason)."""
    try:
        load()
    except Exception as err:  # a failed build is reported to the user, who then gets the torch path
        last = (str(err).strip().splitlines() or [""])[-1]
        return f"C++ extension failed to build/load: {type(err).__name__}: {last}"
    return None


@functools.lru_cache(maxsize=1)
def _load():
    return load_extension("snn_msi_if_family_cpu", _SRC, code_flags())


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when the extension builds and loads, else why not (a one-line reason)."""
    return failure(_load)


def forward(x, v0, leak, tau, k, decay_input, th, vr, reset):
    """``x [T, ...]`` (float32/bf16/fp16), ``v0 [...]`` float32 or None (v_reset) ->
    ``(spikes in x's dtype, v_T, whether any input is NaN or infinite)``."""
    return _load().forward(x, v0, leak, tau, k, decay_input, th, vr, reset)


def backward(grad_s, grad_v_last, x, v0, leak, tau, k, decay_input, th, vr, reset, sg_id, alpha, detach):
    """The membrane is recomputed from the forward's ``x`` and ``v0`` -> ``(grad_x in x's dtype, grad_v0,
    grad_k per element or empty)``; a None ``grad_v_last`` means zeros, a None ``v0`` a fresh state."""
    return _load().backward(grad_s, grad_v_last, x, v0, leak, tau, k, decay_input, th, vr, reset, sg_id, alpha, detach)


def apply_fn():
    """The extension's ``apply(x, v0, k, *KernelArgs, check)``: the eager op with its autograd node in C++ ->
    ``[spikes, v_T]``."""
    return _load().apply


def warm_up() -> float:
    """Build (or load from cache) the extension; returns the seconds it took."""
    import time

    t0 = time.perf_counter()
    _load()
    return time.perf_counter() - t0


__all__ = [
    "forward",
    "backward",
    "apply_fn",
    "unavailable_reason",
    "warm_up",
    "code_flags",
    "load_extension",
    "failure",
]
