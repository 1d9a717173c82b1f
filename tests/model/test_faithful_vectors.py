"""A second's vector says what it sounds like, not where the model's pieces or the pooling
windows begin: the tests an engineer reviewing the embeddings would run, on random weights,
with the default 10 s windows, at every phase of the grid."""

from __future__ import annotations

import numpy as np
import pytest

from tasks.audio import samples
from tasks.audio.pieces import FRAME_SECONDS, core_frames, cut_pieces
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.model.embedder import PannsEmbedder
from tasks.settings import AudioLimits

RATE = MODEL_SAMPLE_RATE
LIMITS = AudioLimits(window_seconds=10.0)


@pytest.fixture(scope="module")
def ten_second(embedder: PannsEmbedder) -> PannsEmbedder:
    return embedder.with_options(LIMITS, batch_size=8)


def _background(seconds: float, seed: int) -> np.ndarray:
    hum = samples.engine(seconds, RATE, 1500 + 120 * seed, seed)
    return (hum + samples.noise(seconds, RATE, 100 + seed, 0.03)).astype(np.float32)


def _knock(seed: int) -> np.ndarray:
    """0.6 s: a damped 700 Hz ring with a noise burst."""
    t = np.arange(round(0.6 * RATE)) / RATE
    rng = np.random.default_rng(seed)
    ring = 0.8 * np.sin(2 * np.pi * (700 + 30 * rng.standard_normal()) * t)
    return ((ring + 0.5 * rng.standard_normal(len(t))) * np.exp(-t / 0.08)).astype(np.float32)


def _segments(embedder: PannsEmbedder, clip: np.ndarray):
    return embedder.embed_files([cut_pieces(clip, embedder.limits)])[0].segments


def _unit(rows: np.ndarray) -> np.ndarray:
    return rows / np.linalg.norm(rows, axis=-1, keepdims=True)


def test_a_steady_background_is_uniform_across_window_and_piece_edges(
    ten_second: PannsEmbedder,
) -> None:
    """Segments next to a 10 s window edge or a piece edge (every 10.24 s) spread no more
    than twice the others around the background's mean (file edges aside)."""
    seconds = 45
    segments = _segments(ten_second, _background(seconds, 0))
    inner = np.arange(1, seconds - 1)  # the file's own first and last second aside
    vectors = _unit(segments.embeddings[inner])
    spread = 1 - vectors @ _unit(vectors.mean(axis=0))
    piece_seconds = core_frames(LIMITS) * FRAME_SECONDS
    edges = [10 * k for k in range(1, 5)] + [piece_seconds * k for k in range(1, 5)]
    near_edge = np.asarray([any(abs(s + 0.5 - e) <= 1.0 for e in edges) for s in inner])
    assert near_edge.sum() >= 10 and (~near_edge).sum() >= 10
    assert spread[near_edge].mean() <= 2 * spread[~near_edge].mean(), (
        spread[near_edge].mean(),
        spread[~near_edge].mean(),
    )


def test_a_short_query_finds_an_event_at_every_phase_of_the_grid(
    ten_second: PannsEmbedder,
) -> None:
    """A knock planted at 10 s + 0.0 ... 9.5 s in 20 recordings: a 1 s query of another knock
    finds it within 1 s in every one, above the recording's own first and last second."""
    query = np.zeros(RATE, np.float32)
    query[3200 : 3200 + round(0.6 * RATE)] += _knock(999)
    query += samples.noise(1.0, RATE, 5, 0.02)
    wanted = _segments(ten_second, query).embeddings.mean(axis=0)
    misses = []
    for i, phase in enumerate(np.arange(0.0, 10.0, 0.5)):
        recording = _background(21.0, i % 5)
        at = 10.0 + phase
        start = round(at * RATE)
        knock = _knock(i)
        recording[start : start + len(knock)] += knock
        segments = _segments(ten_second, recording)
        scores = _unit(segments.embeddings) @ _unit(wanted)
        best = int(np.argmax(scores))
        middle = (segments.start_seconds[best] + segments.end_seconds[best]) / 2
        if abs(middle - (at + 0.3)) > 1.0:
            misses.append((phase, float(segments.start_seconds[best])))
    assert not misses, misses


def test_clips_of_many_lengths_in_one_pass_get_what_they_get_alone(
    ten_second: PannsEmbedder,
) -> None:
    """Clips of 0.4-2.5 s share a forward pass with a 10 s clip, padded to its 12.8 s past their
    context: each one's vectors equal its own, embedded alone."""
    clips = [_background(seconds, i) for i, seconds in enumerate([0.4, 1.0, 2.5, 1.7, 10.0, 0.9])]
    pieces = [cut_pieces(clip, LIMITS) for clip in clips]
    together = ten_second.embed_files(pieces)
    for clip_pieces, shared in zip(pieces, together, strict=True):
        alone = ten_second.embed_files([clip_pieces])[0]
        np.testing.assert_allclose(shared.embedding, alone.embedding, rtol=1e-4, atol=1e-6)
        np.testing.assert_allclose(
            shared.segments.embeddings, alone.segments.embeddings, rtol=1e-4, atol=1e-6
        )
