"""The batch transform of uint8 frame crops on the CPU as one C++ pass (``csrc/frames.cpp``): to float, bilinear
resize, mirror and normalise, plane by plane, into the batch's output tensor.

It does what :func:`~snn_msi.encoders.visual.finish_frames` does with PyTorch ops (its reference, ``fused=False``),
in PyTorch's arithmetic, without the intermediate tensors: about 4x less CPU time a sample for the paper's
transforms (``benchmarks/bench_data.py``). Built on first use like the neurons' CPU kernels
(:func:`neurons.kernels.cpu.load_extension`); where it cannot be built, :func:`unavailable_reason` says why and
``finish_frames`` uses the reference.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from pathlib import Path

import torch

from neurons.kernels.cpu import failure, load_extension

_SRC = Path(__file__).parent / "csrc" / "frames.cpp"


@functools.lru_cache(maxsize=1)
def _load():
    return load_extension("snn_msi_frames_cpu", _SRC)


@functools.lru_cache(maxsize=1)
def unavailable_reason() -> str | None:
    """None when the extension builds and loads, else why not (a one-line reason)."""
    return failure(_load)


def finish(
    crops: Sequence[torch.Tensor],
    flips: Sequence[bool],
    size: int,
    mean: Sequence[float] | None,
    std: Sequence[float] | None,
) -> torch.Tensor:
    """B uint8 crops ``[K, C, h_b, w_b]`` on the CPU -> float32 ``[B, K, C, size, size]``: ``u8 / 255`` resized
    (bilinear, ``align_corners=False``), mirrored where ``flips``, then ``(x - mean) / std`` per channel (none when
    ``mean`` is None)."""
    empty = torch.empty(0)
    m = empty if mean is None else torch.tensor(mean, dtype=torch.float32)
    s = empty if std is None else torch.tensor(std, dtype=torch.float32)
    return _load().finish(list(crops), torch.tensor(list(flips), dtype=torch.bool), int(size), m, s)
