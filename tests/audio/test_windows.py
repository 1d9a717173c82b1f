"""Cutting 32 kHz audio into the model's windows."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audio.windows import cut_windows
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits


def test_short_clip_is_padded_to_one_window() -> None:
    clip = np.ones(MODEL_SAMPLE_RATE * 3, dtype=np.float32)
    windows = cut_windows(clip, AudioLimits(window_seconds=10.0))
    assert windows.audio.shape == (1, MODEL_SAMPLE_RATE * 10)
    assert windows.audio[0, : MODEL_SAMPLE_RATE * 3].all()
    assert not windows.audio[0, MODEL_SAMPLE_RATE * 3 :].any()


def test_windows_cover_the_file_and_the_last_one_ends_at_the_last_sample() -> None:
    clip = np.arange(MODEL_SAMPLE_RATE * 25, dtype=np.float32)
    windows = cut_windows(clip, AudioLimits(window_seconds=10.0))
    np.testing.assert_allclose(windows.start_seconds, [0.0, 10.0, 15.0])
    assert windows.audio[-1, -1] == clip[-1]
    np.testing.assert_array_equal(
        windows.audio[1], clip[10 * MODEL_SAMPLE_RATE : 20 * MODEL_SAMPLE_RATE]
    )


def test_hop_makes_overlapping_windows() -> None:
    clip = np.zeros(MODEL_SAMPLE_RATE * 20, dtype=np.float32)
    windows = cut_windows(clip, AudioLimits(window_seconds=10.0, hop_seconds=5.0))
    np.testing.assert_allclose(windows.start_seconds, [0.0, 5.0, 10.0])


def test_hop_longer_than_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="hop_seconds"):
        AudioLimits(window_seconds=2.0, hop_seconds=3.0)
