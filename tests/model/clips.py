"""Deterministic clips at the model rate for the model tests."""

from __future__ import annotations

import numpy as np

from tasks.audio import samples
from tasks.model.constants import MODEL_SAMPLE_RATE


def model_clips(count: int, seconds: float) -> np.ndarray:
    """``count`` distinct clips of ``seconds`` at 32 kHz, [count, samples] float32."""
    makers = [
        lambda: samples.tone(seconds, MODEL_SAMPLE_RATE, 440.0),
        lambda: samples.noise(seconds, MODEL_SAMPLE_RATE, 1),
        lambda: samples.chirp(seconds, MODEL_SAMPLE_RATE),
        lambda: samples.clicks(seconds, MODEL_SAMPLE_RATE, 6.0, 2),
        lambda: samples.tone(seconds, MODEL_SAMPLE_RATE, 97.0),
    ]
    return np.stack([makers[i % len(makers)]() for i in range(count)])
