import numpy as np
import pytest
import torch

from snn_msi.encoders import (
    DeltaCoding,
    FrameTransform,
    LatencyCoding,
    LogMelSpectrogram,
    LogSpectrogram,
    RateCoding,
    add_noise_snr,
    build_coding,
    fit_length,
    sample_frame_indices,
)


def test_spectrogram_paper_shape_and_values():
    wav = torch.randn(2, 22050 * 3 + 500)
    spec = LogSpectrogram()(wav)
    assert spec.shape == (2, 1, 257, 188)
    # independent check with numpy: centred (zero-padded) frames, periodic Hann, |rfft|
    x = np.pad(wav[0, : 22050 * 3].numpy().astype(np.float64), 256)
    win = np.hanning(513)[:512]  # periodic Hann of length 512
    frames = np.stack([x[i * 353 : i * 353 + 512] * win for i in range(188)], axis=1)
    ref = np.log(np.abs(np.fft.rfft(frames, axis=0)) + 1e-7)
    np.testing.assert_allclose(spec[0, 0].numpy(), ref, rtol=1e-4, atol=1e-3)


def test_short_clips_are_tiled_or_padded():
    w = torch.arange(1.0, 4.0)
    assert fit_length(w, 7).tolist() == [1, 2, 3, 1, 2, 3, 1]
    assert fit_length(w, 5, "pad").tolist() == [1, 2, 3, 0, 0]
    assert fit_length(w, 2).tolist() == [1, 2]
    with pytest.raises(ValueError, match="empty"):
        fit_length(torch.zeros(0), 3)


def test_logmel_shape_and_against_torchaudio_when_installed():
    wav = torch.randn(1, 16000)
    mel = LogMelSpectrogram(n_mels=40, sample_rate=16000, duration=1.0, n_fft=512, hop_length=500)
    out = mel(wav)
    assert out.shape == (1, 1, 40, 33)
    ta = pytest.importorskip("torchaudio", reason="torchaudio not installed (optional extra 'audio')")
    ref = ta.transforms.MelSpectrogram(16000, n_fft=512, hop_length=500, n_mels=40, pad_mode="constant")(wav)
    torch.testing.assert_close(out[:, 0], torch.log(ref + 1e-7), rtol=1e-3, atol=1e-3)


def test_direct_rate_latency_coding():
    x = torch.rand(3, 5)
    d = build_coding("direct", 4)(x)
    assert d.shape == (4, 3, 5) and torch.equal(d[2], x)
    g1, g2 = torch.Generator().manual_seed(1), torch.Generator().manual_seed(1)
    r1, r2 = RateCoding(2000, g1)(x), RateCoding(2000, g2)(x)
    assert torch.equal(r1, r2) and set(r1.unique().tolist()) <= {0.0, 1.0}
    torch.testing.assert_close(RateCoding.decode(r1), x, atol=0.05, rtol=0)
    lat = LatencyCoding(11)
    s = lat(x)
    assert (s.sum(0) <= 1).all()
    torch.testing.assert_close(lat.decode(s), torch.round(x * 10) / 10)


def test_delta_coding_roundtrip():
    frames = torch.tensor([[0.0, 0.5, 0.5, 0.0]]).unsqueeze(-1)  # [B=1, F=4, 1]
    dc = DeltaCoding(threshold=0.5 - 1e-6)
    s = dc(frames)
    assert s.shape == (4, 1, 2, 1)
    assert s[:, 0, 0, 0].tolist() == [0, 1, 0, 0] and s[:, 0, 1, 0].tolist() == [0, 0, 0, 1]
    torch.testing.assert_close(dc.decode(s), frames, atol=1e-5, rtol=0)


@pytest.mark.parametrize("snr", [-10.0, 0.0, 10.0])
def test_noise_snr(snr):
    x = torch.randn(8, 20000) * 3
    y = add_noise_snr(x, snr, torch.Generator().manual_seed(0))
    measured = 10 * torch.log10(x.pow(2).mean(1) / (y - x).pow(2).mean(1))
    assert torch.allclose(measured, torch.full_like(measured, snr), atol=0.2)
    assert add_noise_snr(x, None) is x


def test_frame_sampling_and_transform():
    assert sample_frame_indices(10, 3, train=False) == [0, 4, 9]
    idx = sample_frame_indices(10, 3, train=True, generator=torch.Generator().manual_seed(0))
    assert len(set(idx)) == 3 and idx == sorted(idx)
    with pytest.raises(ValueError, match="at least 3"):
        sample_frame_indices(2, 3, train=False)
    frame = torch.randint(0, 256, (3, 40, 50), dtype=torch.uint8)
    clip = frame.expand(3, 3, 40, 50)  # the same frame 3 times
    out = FrameTransform(24, train=True, generator=torch.Generator().manual_seed(0))(clip)
    assert out.shape == (3, 3, 24, 24)
    assert torch.equal(out[0], out[1]) and torch.equal(out[1], out[2])  # one crop / flip per clip
    ev = FrameTransform(24, train=False)
    assert torch.equal(ev(clip.unsqueeze(0)), ev(clip.unsqueeze(0)))
    square = frame[:, :, :40]
    plain = FrameTransform(40, train=False, mean=None, std=None)(square.unsqueeze(0).unsqueeze(0))
    torch.testing.assert_close(plain[0, 0], square.float() / 255)  # same size: resize is the identity
