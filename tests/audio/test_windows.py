"""Where a file's segments and windows lie, in seconds and in trunk frames."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audio.pieces import FRAME_SECONDS, frame_count
from tasks.audio.windows import segment_spans, window_spans
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

LENGTHS = [0.05, 0.3, 1.0, 3.2, 9.99, 10.0, 10.01, 25.7, 41.0]


@pytest.mark.parametrize("seconds", LENGTHS)
def test_segments_cover_the_file_once_and_pool_the_frames_centred_in_them(seconds: float) -> None:
    length = round(seconds * MODEL_SAMPLE_RATE)
    spans = segment_spans(length, AudioLimits(window_seconds=10.0))
    assert spans.start_seconds[0] == 0.0 and spans.end_seconds[-1] == pytest.approx(seconds)
    np.testing.assert_allclose(spans.start_seconds[1:], spans.end_seconds[:-1])
    assert (spans.stop_frame > spans.first_frame).all()  # never empty
    assert spans.stop_frame.max() <= frame_count(length)
    for start, end, first, stop in zip(
        *(getattr(spans, f) for f in spans.__annotations__), strict=True
    ):
        centres = (np.arange(first, stop) + 0.5) * FRAME_SECONDS
        if end - start >= FRAME_SECONDS:
            assert ((centres >= start) & (centres < end)).all()


def test_windows_every_hop_with_the_last_moved_back_to_the_end() -> None:
    length = 25 * MODEL_SAMPLE_RATE
    np.testing.assert_allclose(
        window_spans(length, AudioLimits(window_seconds=10.0)).start_seconds, [0, 10, 15]
    )
    overlapping = window_spans(
        20 * MODEL_SAMPLE_RATE, AudioLimits(window_seconds=10.0, hop_seconds=5.0)
    )
    np.testing.assert_allclose(overlapping.start_seconds, [0.0, 5.0, 10.0])
    short = window_spans(3 * MODEL_SAMPLE_RATE, AudioLimits(window_seconds=10.0))
    assert len(short) == 1 and short.end_seconds[0] == pytest.approx(3.0)


@pytest.mark.parametrize("hop", [None, 5.0])
@pytest.mark.parametrize("seconds", [12.0, 25.7, 41.0])
def test_spans_known_while_streaming_are_those_of_the_whole_file(
    seconds: float, hop: float | None
) -> None:
    limits = AudioLimits(window_seconds=10.0, hop_seconds=hop)
    length = round(seconds * MODEL_SAMPLE_RATE)
    for spans_of in (segment_spans, window_spans):
        whole = spans_of(length, limits)
        for read in range(0, length, 77_777):
            early = spans_of(read, limits, final=False)
            for name in ("start_seconds", "end_seconds", "first_frame", "stop_frame"):
                np.testing.assert_array_equal(
                    getattr(early, name), getattr(whole, name)[: len(early)]
                )


def test_hop_longer_than_the_window_is_refused() -> None:
    with pytest.raises(ValueError, match="hop_seconds"):
        AudioLimits(window_seconds=2.0, hop_seconds=3.0)


def test_segments_must_divide_the_window() -> None:
    with pytest.raises(ValueError, match="segment_seconds"):
        AudioLimits(window_seconds=10.0, segment_seconds=3.0)
    assert AudioLimits(window_seconds=10.0, segment_seconds=2.5).segments_per_window == 4
