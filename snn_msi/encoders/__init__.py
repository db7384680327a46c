"""Encoders: audio (wav -> spectrogram), video frames (sampling and augmentation), spike coding over T steps,
and per-modality corruption (noise at a given SNR)."""

from .audio import LogMelSpectrogram, LogSpectrogram, fit_length, mel_filterbank
from .coding import CODINGS, DeltaCoding, DirectCoding, LatencyCoding, RateCoding, build_coding
from .noise import add_noise_snr, scale_noise
from .visual import (
    IMAGENET_MEAN,
    IMAGENET_STD,
    CropPlan,
    FrameSpec,
    FrameTransform,
    crop_frames,
    finish_frames,
    sample_frame_indices,
)

__all__ = [
    "LogSpectrogram",
    "LogMelSpectrogram",
    "fit_length",
    "mel_filterbank",
    "DirectCoding",
    "RateCoding",
    "LatencyCoding",
    "DeltaCoding",
    "build_coding",
    "CODINGS",
    "add_noise_snr",
    "scale_noise",
    "FrameTransform",
    "CropPlan",
    "FrameSpec",
    "crop_frames",
    "finish_frames",
    "sample_frame_indices",
    "IMAGENET_MEAN",
    "IMAGENET_STD",
]
