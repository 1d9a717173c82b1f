"""Cutting audio into pieces with context: kept frames cover the file once, context is real audio
inside the file and its mirror image outside, and a stream is cut into the same audio."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audio.pieces import (
    CONTEXT_SAMPLES,
    FRAME_SAMPLES,
    PieceCutter,
    cut_pieces,
    extended,
    frame_count,
)
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

SECONDS = [0.01, 0.3, 1.0, 2.0, 9.99, 10.0, 10.3, 25.7, 41.0]


def _clip(seconds: float) -> np.ndarray:
    rng = np.random.default_rng(round(seconds * 100))
    return rng.standard_normal(max(1, round(seconds * MODEL_SAMPLE_RATE))).astype(np.float32)


@pytest.mark.parametrize("seconds", SECONDS)
def test_kept_frames_cover_the_file_once_in_order(seconds: float) -> None:
    clip = _clip(seconds)
    pieces = cut_pieces(clip, AudioLimits(window_seconds=10.0))
    kept = np.concatenate(
        [np.arange(a, b) for a, b in zip(pieces.kept_from, pieces.kept_to, strict=True)]
    )
    np.testing.assert_array_equal(kept, np.arange(frame_count(len(clip))))
    for i in range(pieces.count):  # every kept frame has a full context inside the piece
        start, stop = pieces.piece(i).kept_offsets()
        assert start >= 4 and stop <= pieces.audio.shape[1] // FRAME_SAMPLES - 4


def test_a_short_clip_costs_its_own_length_plus_context() -> None:
    pieces = cut_pieces(_clip(1.0), AudioLimits(window_seconds=10.0))
    assert pieces.count == 1
    assert pieces.audio.shape[1] == (frame_count(MODEL_SAMPLE_RATE) + 8) * FRAME_SAMPLES  # 3.84 s


def test_context_is_the_audio_around_inside_and_the_mirror_image_at_the_edges() -> None:
    clip = _clip(25.7)
    pieces = cut_pieces(clip, AudioLimits(window_seconds=10.0))
    first, second = pieces.audio[0], pieces.audio[1]
    np.testing.assert_array_equal(first[:CONTEXT_SAMPLES], clip[CONTEXT_SAMPLES:0:-1])
    np.testing.assert_array_equal(first[CONTEXT_SAMPLES:][:1000], clip[:1000])
    begins = int(pieces.first_frame[1]) * FRAME_SAMPLES - CONTEXT_SAMPLES
    np.testing.assert_array_equal(second, clip[begins : begins + len(second)])
    last = pieces.audio[-1]
    tail = len(clip) - (int(pieces.first_frame[-1]) * FRAME_SAMPLES - CONTEXT_SAMPLES)
    np.testing.assert_array_equal(last[:tail], clip[-tail:])
    np.testing.assert_array_equal(last[tail : tail + 100], clip[-2:-102:-1])


@pytest.mark.parametrize("length", [1, 2, 3, 500])
def test_a_file_shorter_than_its_mirror_is_reflected_again_and_again(length: int) -> None:
    clip = np.arange(length, dtype=np.float32)
    out = extended(clip, 0, length, 0, 2 * CONTEXT_SAMPLES + length)
    assert np.isin(out, clip).all()
    np.testing.assert_array_equal(out[CONTEXT_SAMPLES : CONTEXT_SAMPLES + length], clip)


@pytest.mark.parametrize("seconds", [0.3, 10.0, 25.7, 41.0, 66.6])
def test_a_stream_is_cut_into_the_whole_files_audio(seconds: float) -> None:
    clip = _clip(seconds)
    whole = extended(clip, 0, len(clip), 0, (frame_count(len(clip)) + 8) * FRAME_SAMPLES)
    for block in (777, 3 * MODEL_SAMPLE_RATE, 17 * MODEL_SAMPLE_RATE):
        cutter, pieces = PieceCutter(AudioLimits(window_seconds=10.0)), []
        for start in range(0, len(clip), block):
            pieces += cutter.feed(clip[start : start + block])
        pieces += cutter.finish()
        assert cutter.length == len(clip)
        kept = np.concatenate([np.arange(p.kept_from, p.kept_to) for p in pieces])
        np.testing.assert_array_equal(kept, np.arange(frame_count(len(clip))))
        for piece in pieces:
            begin = piece.first_frame * FRAME_SAMPLES
            np.testing.assert_array_equal(piece.audio, whole[begin : begin + len(piece.audio)])
