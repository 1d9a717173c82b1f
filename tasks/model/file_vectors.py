"""A file's trunk frames, arriving in time order, into its vectors: one per segment, one per
window, and the file's own.

Each span is pooled as Cnn14 pools a clip (max + mean over its frames) and goes through the same
fully connected layers, so segment, window and file vectors share one space. The file vector is
that pooling over all the file's frames, what PANNs gives for a whole clip: on labelled sets of
30 s files (benchmarks/file_vector.py) it matched the mean of 10 s window vectors where the
sound is steady and beat it where the label lives in a few short events (1-NN accuracy 0.85
against 0.58, a logistic regression 1.00 against 0.90). Spans are pooled as
soon as their frames are in, and only frames that spans still to come need are held: a 24 h file
holds about a window of frames, plus its vectors.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from tasks.audio.pieces import core_frames
from tasks.audio.windows import Spans, file_span, segment_spans, window_spans
from tasks.model.cnn14 import pool_frames
from tasks.model.constants import EMBEDDING_SIZE, NUM_CLASSES
from tasks.settings import AudioLimits

#: pooled frames [m, 2048] -> (embeddings [m, 2048], AudioSet probabilities [m, 527]), numpy
Head = Callable[[torch.Tensor], tuple[np.ndarray, np.ndarray]]


@dataclass(frozen=True)
class FileSegments:
    """A file's segments in time order, covering it once: start and end (s) [k], embeddings
    [k, 2048] and AudioSet probabilities [k, 527]; ``segment_seconds`` is their nominal length
    (the last one, or the only one of a short clip, may be shorter)."""

    start_seconds: np.ndarray
    end_seconds: np.ndarray
    embeddings: np.ndarray
    probabilities: np.ndarray
    segment_seconds: float


@dataclass
class FileEmbedding:
    """One file's vector and AudioSet probabilities (Cnn14's pooling of all its frames), its
    window vectors with their starts (s), and its segments."""

    embedding: np.ndarray
    probabilities: np.ndarray
    window_embeddings: np.ndarray
    window_start_seconds: np.ndarray
    segments: FileSegments


class SpanPooler:
    """Pools spans (``Spans``, in time order) as a file's frames arrive, holding only the
    frames that spans not yet pooled need."""

    def __init__(self, spans: Spans, tail_frames: int = 0) -> None:
        self.spans = spans
        self.tail_frames = tail_frames  # the last frames are held whatever the spans need
        self.pooled = 0  # spans pooled so far
        self.received = 0  # frames received so far
        self._held: torch.Tensor | None = None  # frames from _held_from on
        self._held_from = 0

    def add(self, frames: torch.Tensor) -> torch.Tensor | None:
        """Take the next frames [k, 2048]; return the spans they complete, pooled [m, 2048]."""
        held = frames if self._held is None else torch.cat([self._held, frames])
        self.received += len(frames)
        self._held = held
        return self._pool_complete()

    def respan(self, spans: Spans) -> torch.Tensor | None:
        """Go on with ``spans`` (the same first ``pooled`` spans, more after them: a stream's
        spans as more of it is known); return the spans now complete, pooled."""
        self.spans = spans
        return self._pool_complete()

    def _pool_complete(self) -> torch.Tensor | None:
        spans, done = self.spans, []
        while self.pooled < len(spans) and spans.stop_frame[self.pooled] <= self.received:
            first = int(spans.first_frame[self.pooled]) - self._held_from
            stop = int(spans.stop_frame[self.pooled]) - self._held_from
            done.append(pool_frames(self._held[first:stop]))
            self.pooled += 1
        # spans start in order: frames before the next one's start are needed no more
        needed_from = self.received - self.tail_frames
        if self.pooled < len(spans):
            needed_from = min(needed_from, int(spans.first_frame[self.pooled]))
        if self._held is not None and needed_from > self._held_from:
            self._held = self._held[needed_from - self._held_from :]
            self._held_from = needed_from
        return torch.stack(done) if done else None


class Rows:
    """float32 rows appended batch by batch into an array that grows by doubling."""

    def __init__(self, width: int, capacity: int = 16) -> None:
        self._array = np.empty((capacity, width), np.float32)
        self._count = 0

    def append(self, rows: np.ndarray) -> None:
        end = self._count + len(rows)
        if end > len(self._array):
            grown = np.empty((max(end, 2 * len(self._array)), self._array.shape[1]), np.float32)
            grown[: self._count] = self._array[: self._count]
            self._array = grown
        self._array[self._count : end] = rows
        self._count = end

    @property
    def rows(self) -> np.ndarray:
        return self._array[: self._count]


class _Vectors:
    """One kind of span of a file (its segments, or its windows), pooled and through the head
    into rows of embeddings and probabilities."""

    def __init__(self, spans_of: Callable[[int, bool], Spans], length: int | None, tail: int):
        self.spans_of = spans_of  # (length in samples, final) -> spans
        known = length if length is not None else 0  # a stream's spans come as it is read
        self.pooler = SpanPooler(spans_of(known, length is not None), tail)
        self.embeddings = Rows(EMBEDDING_SIZE)
        self.probabilities = Rows(NUM_CLASSES)

    def keep(self, embeddings: np.ndarray, probabilities: np.ndarray) -> None:
        self.embeddings.append(embeddings)
        self.probabilities.append(probabilities)


class FileFrames:
    """One file's frames, in order (``add``), into its ``FileEmbedding`` (``finish``).

    ``length`` is the file's length in 32 kHz samples when known up front. A stream passes
    None, says how far it has read before its frames arrive (``settle``), and gives its length
    to ``finish``.
    """

    def __init__(self, head: Head, limits: AudioLimits, length: int | None) -> None:
        self.head, self.limits = head, limits
        # a stream's last window is moved back over frames its earlier spans no longer need
        tail = 0 if length is not None else core_frames(limits) + 2
        self.segments = _Vectors(lambda n, final: segment_spans(n, limits, final), length, tail)
        self.windows = _Vectors(lambda n, final: window_spans(n, limits, final), length, tail)
        self.length = length or 0
        self._last: torch.Tensor | None = None
        self._most: torch.Tensor | None = None
        self._total: torch.Tensor | None = None
        self._frames = 0

    def add(self, frames: torch.Tensor) -> None:
        """The file's next frames [k, 2048]."""
        self._keep([vectors.pooler.add(frames) for vectors in self._kinds])
        # the whole file's pooling, as a running max and sum (flat memory for any length); the
        # newest frame waits, as the file's last one may fall outside it (``file_span``)
        if self._last is not None:
            frames = torch.cat([self._last, frames])
        self._fold(frames[:-1])
        self._last = frames[-1:]

    def _fold(self, frames: torch.Tensor) -> None:
        if not len(frames):
            return
        most, total = frames.max(dim=0).values, frames.sum(dim=0)
        self._most = most if self._most is None else torch.maximum(self._most, most)
        self._total = total if self._total is None else self._total + total
        self._frames += len(frames)

    def settle(self, read: int) -> None:
        """A stream has read ``read`` samples: the segments and windows that end by then are
        the file's whatever its length (each is pooled once its frames are in)."""
        self._keep([v.pooler.respan(v.spans_of(read, False)) for v in self._kinds])

    def finish(self, length: int | None = None) -> FileEmbedding:
        """The file's vectors once all its frames are in (``length``: a stream's, in samples)."""
        if length is not None:
            self._keep([v.pooler.respan(v.spans_of(length, True)) for v in self._kinds])
        if int(file_span(length or self.length).stop_frame[0]) > self._frames:
            self._fold(self._last)
        segments, windows = self.segments, self.windows
        embedding, probabilities = self.head((self._most + self._total / self._frames)[None])
        return FileEmbedding(
            embedding[0],
            probabilities[0],
            windows.embeddings.rows,
            windows.pooler.spans.start_seconds,
            FileSegments(
                segments.pooler.spans.start_seconds,
                segments.pooler.spans.end_seconds,
                segments.embeddings.rows,
                segments.probabilities.rows,
                self.limits.segment_seconds,
            ),
        )

    @property
    def _kinds(self) -> tuple[_Vectors, _Vectors]:
        return self.segments, self.windows

    def _keep(self, pooled: list[torch.Tensor | None]) -> None:
        """Newly pooled spans of each kind through the head, in one call."""
        parts = [p for p in pooled if p is not None]
        if not parts:
            return
        embeddings, probabilities = self.head(torch.cat(parts) if len(parts) > 1 else parts[0])
        start = 0
        for vectors, part in zip(self._kinds, pooled, strict=True):
            if part is not None:
                vectors.keep(
                    embeddings[start : start + len(part)], probabilities[start : start + len(part)]
                )
                start += len(part)
