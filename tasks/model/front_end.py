"""Cnn14's log-mel front end in numpy (no torch): the Hann window, Slaney mel filterbank and DFT
matrix the model is built with, and the same log-mel picture of a sound for people to look at
(``log_mel``)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from tasks.model.constants import FMAX, FMIN, HOP_SIZE, MEL_BINS, MODEL_SAMPLE_RATE, WINDOW_SIZE


def dft_matrix(n: int) -> np.ndarray:
    """The n x n DFT matrix exp(-2 pi i jk / n), with jk reduced mod n first (torchlibrosa
    raises a complex number to the power jk: 0.18 s at n = 1024, and less exact)."""
    indices = np.arange(n)
    return np.exp(-2j * np.pi * (np.outer(indices, indices) % n) / n)


def hann_window(length: int) -> np.ndarray:
    """The periodic Hann window of ``length`` samples (an STFT window, as scipy's fftbins)."""
    return 0.5 - 0.5 * np.cos(2.0 * np.pi * np.arange(length) / length)


def pad_center(data: np.ndarray, size: int) -> np.ndarray:
    left = (size - len(data)) // 2
    return np.pad(data, (left, size - len(data) - left))


def slaney_mel_filterbank(
    sample_rate: int, n_fft: int, n_mels: int, fmin: float, fmax: float
) -> np.ndarray:
    """Mel filterbank [n_mels, n_fft // 2 + 1] (float32): triangles on Slaney's mel scale
    (linear below 1 kHz, logarithmic above), each normalised to unit area (librosa's defaults,
    htk=False, norm="slaney")."""
    fft_hz = np.fft.rfftfreq(n_fft, 1.0 / sample_rate)
    edges_hz = _mel_to_hz(np.linspace(_hz_to_mel(fmin), _hz_to_mel(fmax), n_mels + 2))
    widths = np.diff(edges_hz)
    ramps = np.subtract.outer(edges_hz, fft_hz)
    weights = np.zeros((n_mels, len(fft_hz)))
    for i in range(n_mels):
        rising = -ramps[i] / widths[i]
        falling = ramps[i + 2] / widths[i + 1]
        weights[i] = np.maximum(0.0, np.minimum(rising, falling))
    weights *= (2.0 / (edges_hz[2 : n_mels + 2] - edges_hz[:n_mels]))[:, np.newaxis]
    return weights.astype(np.float32)


# Slaney's mel scale: 3 mels per 200 Hz up to 1 kHz, then 27 mels per factor of 6.4.
_MEL_PER_HZ_LINEAR = 3.0 / 200.0
_LOG_START_HZ = 1_000.0
_LOG_START_MEL = _LOG_START_HZ * _MEL_PER_HZ_LINEAR
_LOG_STEP = np.log(6.4) / 27.0


def _hz_to_mel(hz: float) -> float:
    if hz < _LOG_START_HZ:
        return hz * _MEL_PER_HZ_LINEAR
    return _LOG_START_MEL + float(np.log(hz / _LOG_START_HZ)) / _LOG_STEP


def _mel_to_hz(mels: np.ndarray) -> np.ndarray:
    linear = mels / _MEL_PER_HZ_LINEAR
    logarithmic = _LOG_START_HZ * np.exp(_LOG_STEP * (mels - _LOG_START_MEL))
    return np.where(mels >= _LOG_START_MEL, logarithmic, linear)


#: Columns of a picture: a longer file's frames are max-pooled into this many (a 10 s clip has
#: 1,000 frames; a picture 512 wide costs 32 KB).
PICTURE_COLUMNS = 512
#: Dynamic range a picture shows (dB): cells quieter than the loudest by more are black.
PICTURE_RANGE_DB = 80.0
_SILENCE_POWER = 1e-10
_SILENCE_DB = -100.0
#: STFT frames computed at once: memory holds one block's spectrum (about 40 MB), not a file's.
BLOCK_FRAMES = 2_048


@dataclass(frozen=True)
class LogMelPicture:
    """A sound's log-mel spectrogram, as a picture: ``values`` uint8 [bands, columns], row 0
    the lowest band, 255 the loudest cell; ``seconds`` the audio it spans."""

    values: np.ndarray
    seconds: float


def log_mel_picture(
    samples: np.ndarray, columns: int = PICTURE_COLUMNS, block_frames: int = BLOCK_FRAMES
) -> LogMelPicture:
    """What Cnn14 hears of 32 kHz mono ``samples``: its front end's power spectrum (1,024-sample
    Hann window, 10 ms hop) through its 64 mel bands (50 Hz to 14 kHz), frames max-pooled into at
    most ``columns`` columns (a short click stays visible in a long file), in dB scaled to 0-255
    over the top ``PICTURE_RANGE_DB``. Frames are computed ``block_frames`` at a time."""
    length = len(samples)
    padded = samples if length >= WINDOW_SIZE else np.pad(samples, (0, WINDOW_SIZE - length))
    frames = 1 + (len(padded) - WINDOW_SIZE) // HOP_SIZE
    width = min(columns, frames)
    window = hann_window(WINDOW_SIZE).astype(np.float32)
    bands = slaney_mel_filterbank(MODEL_SAMPLE_RATE, WINDOW_SIZE, MEL_BINS, FMIN, FMAX).T
    pooled = np.zeros((width, MEL_BINS), np.float32)
    for start in range(0, frames, block_frames):
        first = np.arange(start, min(frames, start + block_frames))
        spans = first[:, None] * HOP_SIZE + np.arange(WINDOW_SIZE)
        power = np.abs(np.fft.rfft(padded[spans] * window, axis=1)) ** 2
        np.maximum.at(pooled, first * width // frames, power.astype(np.float32) @ bands)
    decibels = 10.0 * np.log10(np.maximum(pooled, _SILENCE_POWER))
    # the loudest cell sets the scale, but silence stays black rather than stretched to white
    floor = max(float(decibels.max()), _SILENCE_DB + PICTURE_RANGE_DB) - PICTURE_RANGE_DB
    scaled = np.clip((decibels - floor) * (255.0 / PICTURE_RANGE_DB), 0, 255)
    return LogMelPicture(scaled.T.round().astype(np.uint8), length / MODEL_SAMPLE_RATE)
