"""Scan windows pooled from stored segments, and resolutions the table cannot give."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.anomaly.windows import ResolutionError, ScanWindows, pool_segments


def test_windows_are_means_of_consecutive_segments_and_cover_every_segment() -> None:
    segments = np.arange(5, dtype=np.float32)[:, None] * np.ones((1, 3), np.float32)
    starts = np.arange(5, dtype=np.float64)
    pooled = pool_segments("k", "a.wav", starts, segments, per_window=2, per_hop=1)
    np.testing.assert_allclose(pooled.embeddings[:, 0], [0.5, 1.5, 2.5, 3.5])
    np.testing.assert_array_equal(pooled.start_seconds, [0, 1, 2, 3])
    # a hop that would leave the last segment out: the last window moves back to cover it
    hopped = pool_segments("k", "a.wav", starts, segments, per_window=2, per_hop=2)
    np.testing.assert_allclose(hopped.embeddings[:, 0], [0.5, 2.5, 3.5])
    np.testing.assert_array_equal(hopped.start_seconds, [0, 2, 3])
    # a clip shorter than a window is one window of everything it has
    short = pool_segments("k", "a.wav", starts[:2], segments[:2], per_window=4, per_hop=1)
    np.testing.assert_allclose(short.embeddings[:, 0], [0.5])
    same = pool_segments("k", "a.wav", starts, segments, per_window=1, per_hop=1)
    np.testing.assert_array_equal(same.embeddings, segments)


def test_a_resolution_the_segments_cannot_give_is_a_clear_error() -> None:
    assert ScanWindows(None, None).in_segments(1.0) == (1, 1)  # one window per segment
    assert ScanWindows().in_segments(1.0) == (2, 1)  # the default: 2 s every 1 s
    assert ScanWindows(3.0, 1.5).in_segments(0.5) == (6, 3)
    with pytest.raises(ResolutionError, match=r"window of 0.5 s.*holds 1 s segments"):
        ScanWindows(0.5).in_segments(1.0)
    with pytest.raises(ResolutionError, match=r"hop of 1.5 s.*whole multiple of 1 s"):
        ScanWindows(2.0, 1.5).in_segments(1.0)
