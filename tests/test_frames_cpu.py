"""The C++ batch transform of frame crops (snn_msi.encoders.frames_cpu) against the PyTorch ops it replaces
(``finish_frames(..., fused=False)``), on fresh random inputs: equal to float32 rounding (PyTorch's own resize
differs by that much between 1 and 2 intra-op threads on the same machine), the same numbers for any thread
count, and the PyTorch path where the extension cannot be built."""

import pytest
import torch

from snn_msi.encoders import IMAGENET_MEAN, IMAGENET_STD, FrameSpec, finish_frames, frames_cpu

pytestmark = pytest.mark.skipif(
    frames_cpu.unavailable_reason() is not None, reason=f"C++ extension not built: {frames_cpu.unavailable_reason()}"
)

#: float32 rounding of pixels normalised to about [-2.2, 2.7]: a few ulp; a wrong index, weight, flip or channel
#: is off by 1e-3 or more
ATOL = 1e-5


def random_batch(g: torch.Generator, size: int):
    b, k, c = (int(torch.randint(lo, hi, (1,), generator=g)) for lo, hi in ((1, 7), (1, 4), (1, 4)))
    sides = [n for n in (1, 2, size - 1, size, size + 1, 3 * size) if n > 0]  # edges: 1 pixel, equal, off by 1
    crops = []
    for _ in range(b):
        h, w = (
            sides[int(torch.randint(len(sides), (1,), generator=g))]
            if torch.rand(1, generator=g) < 0.3
            else int(torch.randint(1, 4 * size, (1,), generator=g))
            for _ in range(2)
        )
        crops.append(torch.randint(0, 256, (k, c, h, w), dtype=torch.uint8, generator=g))
    flips = (torch.rand(b, generator=g) < 0.5).tolist()
    return crops, flips


@pytest.mark.parametrize("normalise", [True, False])
@pytest.mark.parametrize("snr_db", [None, 0.0])
@pytest.mark.parametrize("size", [1, 7, 24, 224])
def test_fused_equals_the_pytorch_ops(size, snr_db, normalise):
    g = torch.Generator().manual_seed(size * 10 + (snr_db is None) * 2 + normalise)
    for _ in range(4 if size < 224 else 2):
        crops, flips = random_batch(g, size)
        c = crops[0].shape[1]
        mean, std = (IMAGENET_MEAN * 2)[:c], (IMAGENET_STD * 2)[:c]
        spec = FrameSpec(size, mean, std) if normalise else FrameSpec(size, None, None)
        noise = torch.randn(len(crops), *crops[0].shape[:2], size, size, generator=g)
        kw = {} if snr_db is None else {"snr_db": snr_db, "noise": noise}
        fused = finish_frames(crops, flips, spec, **kw)
        torch_ops = finish_frames(crops, flips, spec, fused=False, **kw)
        assert fused.shape == torch_ops.shape == (len(crops), *crops[0].shape[:2], size, size)
        torch.testing.assert_close(fused, torch_ops, atol=ATOL, rtol=0)


def test_same_numbers_for_any_thread_count():
    g = torch.Generator().manual_seed(3)
    crops, flips = random_batch(g, 64)
    spec = FrameSpec(64, IMAGENET_MEAN[: crops[0].shape[1]], IMAGENET_STD[: crops[0].shape[1]])
    threads = torch.get_num_threads()
    try:
        out = []
        for n in (1, 2, 3):
            torch.set_num_threads(n)
            out.append(finish_frames(crops, flips, spec))
    finally:
        torch.set_num_threads(threads)
    assert torch.equal(out[0], out[1]) and torch.equal(out[0], out[2])


def test_without_the_extension_the_pytorch_ops_run(monkeypatch):
    g = torch.Generator().manual_seed(4)
    crops, flips = random_batch(g, 16)
    spec = FrameSpec(16, None, None)
    monkeypatch.setattr(frames_cpu, "unavailable_reason", lambda: "no compiler")
    monkeypatch.setattr(frames_cpu, "finish", lambda *a: pytest.fail("the extension ran"))
    assert torch.equal(finish_frames(crops, flips, spec), finish_frames(crops, flips, spec, fused=False))
    floats = [c.float() / 255 for c in crops]  # not uint8: the PyTorch ops too
    assert torch.equal(finish_frames(floats, flips, spec), finish_frames(floats, flips, spec, fused=False))


def test_bad_crops_are_refused_in_one_line():
    spec = FrameSpec(8, None, None)
    crops = [torch.zeros(2, 3, 5, 5, dtype=torch.uint8), torch.zeros(1, 3, 5, 5, dtype=torch.uint8)]
    with pytest.raises(RuntimeError, match="same K and C"):
        frames_cpu.finish(crops, [False, False], 8, None, None)
    with pytest.raises(RuntimeError, match="one flip per crop"):
        frames_cpu.finish(crops[:1], [False, True], 8, None, None)
    with pytest.raises(RuntimeError, match=r"uint8 \[K, C, h, w\]"):
        frames_cpu.finish([torch.zeros(3, 5, 5, dtype=torch.uint8)], [False], 8, None, None)
    with pytest.raises(RuntimeError, match=r"uint8 \[K, C, h, w\]"):
        frames_cpu.finish([crops[0], torch.zeros(2, 3, 5, 5)], [False, False], 8, None, None)
    with pytest.raises(RuntimeError, match="at least one pixel"):
        frames_cpu.finish([torch.zeros(1, 3, 0, 5, dtype=torch.uint8)], [False], 8, None, None)
    assert finish_frames(crops[:1], [True], spec).shape == (1, 2, 3, 8, 8)


def test_a_failed_build_with_an_empty_message_is_still_one_line():
    from neurons.kernels.cpu import failure

    def broken():
        raise RuntimeError()

    assert failure(broken) == "C++ extension failed to build/load: RuntimeError: "
