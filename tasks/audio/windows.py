"""Cut 32 kHz mono audio into the model's fixed-length analysis windows."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

if TYPE_CHECKING:
    import torch


@dataclass(frozen=True)
class Windows:
    """Fixed-length windows of one file at 32 kHz: ``audio`` is [n, window_samples] float32,
    on the host (numpy) or already on the model's device (torch)."""

    audio: np.ndarray | torch.Tensor
    start_seconds: np.ndarray
    #: length of the audio the windows were cut from (s): the last window may be padding past it
    duration_seconds: float

    @property
    def count(self) -> int:
        return int(self.audio.shape[0])


def cut_windows(samples: np.ndarray, limits: AudioLimits) -> Windows:
    """Cut 32 kHz mono samples into windows of ``window_seconds`` every ``hop`` seconds.

    A clip shorter than one window is zero-padded to one window. Otherwise windows start every
    hop, and when the last one would run past the end it is moved back to end at the last sample,
    so no window is mostly padding and every sample is covered.
    """
    window, starts = window_starts(samples.shape[0], limits)
    if starts is None:
        padded = np.zeros((1, window), dtype=np.float32)
        padded[0, : samples.shape[0]] = samples
        return Windows(padded, np.zeros(1), samples.shape[0] / MODEL_SAMPLE_RATE)
    stacked = np.lib.stride_tricks.sliding_window_view(samples, window)[starts]
    return Windows(
        audio=np.ascontiguousarray(stacked, dtype=np.float32),
        start_seconds=np.asarray(starts, dtype=np.float64) / MODEL_SAMPLE_RATE,
        duration_seconds=samples.shape[0] / MODEL_SAMPLE_RATE,
    )


def window_starts(length: int, limits: AudioLimits) -> tuple[int, list[int] | None]:
    """(window length, window starts) in 32 kHz samples for a clip of ``length`` samples;
    starts is None when the clip fits in one zero-padded window. See ``cut_windows``."""
    window = round(limits.window_seconds * MODEL_SAMPLE_RATE)
    hop = round(limits.hop * MODEL_SAMPLE_RATE)
    if length <= window:
        return window, None
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return window, starts


class WindowCutter:
    """``cut_windows`` for audio that arrives block by block (a long file decoded as a stream):
    the same windows at the same starts, holding under two windows and a block of samples.

    ``feed`` each block of 32 kHz mono samples and take the windows it completes, then
    ``finish`` for the last one (moved back to end at the last sample, or a zero-padded window
    for a clip shorter than one); ``length`` is then the clip's length in samples.
    """

    def __init__(self, limits: AudioLimits) -> None:
        self.window = round(limits.window_seconds * MODEL_SAMPLE_RATE)
        self.hop = round(limits.hop * MODEL_SAMPLE_RATE)
        self.length = 0  # samples fed so far
        self._buffer = np.zeros(0, np.float32)
        self._buffer_start = 0  # sample index of _buffer[0]
        self._next_start = 0
        self._last_start: int | None = None  # of the last window given out

    def feed(self, block: np.ndarray) -> list[tuple[int, np.ndarray]]:
        """The (start sample, window) pairs this block completes."""
        self._buffer = np.concatenate([self._buffer, np.asarray(block, np.float32)])
        self.length += len(block)
        out = []
        while self._next_start + self.window <= self.length:
            out.append((self._next_start, self._take(self._next_start)))
            self._last_start = self._next_start
            self._next_start += self.hop
        # keep what the next window, or a last window moved back, may still need
        keep_from = min(self._next_start, max(self.length - self.window, 0))
        self._buffer = self._buffer[keep_from - self._buffer_start :]
        self._buffer_start = keep_from
        return out

    def finish(self) -> list[tuple[int, np.ndarray]]:
        """The last window: moved back to end at the last sample when the hops left the end
        uncovered, or the whole clip zero-padded when it is shorter than one window."""
        if self._last_start is not None and self._last_start + self.window >= self.length:
            return []
        if self.length <= self.window:
            padded = np.zeros(self.window, np.float32)
            padded[: self.length] = self._buffer[: self.length]
            return [(0, padded)]
        start = self.length - self.window
        return [(start, self._take(start))]

    def _take(self, start: int) -> np.ndarray:
        offset = start - self._buffer_start
        return self._buffer[offset : offset + self.window].copy()


@dataclass(frozen=True)
class SegmentSpans:
    """Which segments of a file's windows to keep, and where they are: ``window`` and ``part``
    index the [windows, segments per window] grid; ``start`` and ``end`` are in seconds."""

    window: np.ndarray
    part: np.ndarray
    start: np.ndarray
    end: np.ndarray


def segment_spans(
    windows: Windows, limits: AudioLimits, covered_seconds: float = 0.0
) -> SegmentSpans:
    """The segments that cover the file once, in time order.

    Windows are cut every hop; a segment is kept when it reaches past the end of the last one
    kept and starts inside the audio (not in the zero padding of a short clip), and its span
    starts where the last one ended: segments of a last window moved back to end at the last
    sample, or of overlapping windows, never repeat audio, and together the spans cover the
    file once, ending at its last sample.

    A file streamed window by window gives its windows in runs: ``covered_seconds`` is where
    the segments kept from the runs before end (``windows.duration_seconds`` then only needs to
    reach past this run's windows).
    """
    parts, length = limits.segments_per_window, limits.segment_seconds
    kept: list[tuple[int, int, float, float]] = []
    covered = covered_seconds
    for window, window_start in enumerate(windows.start_seconds):
        for part in range(parts):
            start = float(window_start) + part * length
            end = min(start + length, windows.duration_seconds)
            if end <= covered + 1e-6 or start >= windows.duration_seconds - 1e-6:
                continue
            kept.append((window, part, max(start, covered), end))
            covered = end
    columns = list(zip(*kept, strict=True)) if kept else [[], [], [], []]
    return SegmentSpans(*(np.asarray(c) for c in columns))
