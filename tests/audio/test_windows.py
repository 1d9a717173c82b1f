"""Cutting 32 kHz audio into the model's windows."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audio.windows import WindowCutter, cut_windows, segment_spans
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


@pytest.mark.parametrize(
    ("seconds", "hop", "spans"),
    [
        (3.2, None, [(0, 0, 0.0, 1.0), (0, 1, 1.0, 2.0), (0, 2, 2.0, 3.0), (0, 3, 3.0, 3.2)]),
        (25.5, None, [(1, 9, 19.0, 20.0), (2, 4, 20.0, 20.5), (2, 5, 20.5, 21.5)]),
        (5.0, 1.0, [(0, 0, 0.0, 1.0), (0, 1, 1.0, 2.0), (1, 1, 2.0, 3.0), (2, 1, 3.0, 4.0)]),
    ],
)
def test_segments_cover_the_file_once_without_padding_or_repeats(
    seconds: float, hop: float | None, spans: list
) -> None:
    limits = AudioLimits(window_seconds=10.0 if hop is None else 2.0, hop_seconds=hop)
    windows = cut_windows(np.zeros(round(seconds * MODEL_SAMPLE_RATE), np.float32), limits)
    found = segment_spans(windows, limits)
    columns = (found.window, found.part, found.start, found.end)
    rows = list(zip(*(c.tolist() for c in columns), strict=True))
    assert all(row in rows for row in spans)
    assert found.start[0] == 0.0 and found.end[-1] == pytest.approx(seconds)
    np.testing.assert_allclose(found.start[1:], found.end[:-1])  # contiguous, no repeat


def test_segments_must_divide_the_window() -> None:
    with pytest.raises(ValueError, match="segment_seconds"):
        AudioLimits(window_seconds=10.0, segment_seconds=3.0)
    assert AudioLimits(window_seconds=10.0, segment_seconds=2.5).segments_per_window == 4


@pytest.mark.parametrize(
    ("window", "hop", "segment"), [(10.0, None, 1.0), (10.0, 5.0, 1.0), (2.0, 1.0, 1.0)]
)
@pytest.mark.parametrize("seconds", [0.3, 2.0, 10.0, 10.01, 25.7, 41.0])
def test_windows_cut_block_by_block_equal_the_whole_cut(
    window: float, hop: float | None, segment: float, seconds: float
) -> None:
    limits = AudioLimits(window_seconds=window, hop_seconds=hop, segment_seconds=segment)
    clip = np.random.default_rng(1).standard_normal(int(seconds * MODEL_SAMPLE_RATE))
    clip = clip.astype(np.float32)
    whole = cut_windows(clip, limits)
    for block in (777, 3 * MODEL_SAMPLE_RATE, 17 * MODEL_SAMPLE_RATE):
        cutter, cut = WindowCutter(limits), []
        for first in range(0, len(clip), block):
            cut += cutter.feed(clip[first : first + block])
        cut += cutter.finish()
        np.testing.assert_array_equal(np.stack([w for _, w in cut]), whole.audio)
        starts = np.array([start for start, _ in cut]) / MODEL_SAMPLE_RATE
        np.testing.assert_array_equal(starts, whole.start_seconds)
        assert cutter.length == len(clip)
