"""Where a file's segments and windows lie: in seconds, and as runs of trunk frames.

A segment (``segment_seconds``, 1 s by default) and a window (``window_seconds``, 10 s) are spans
of the file. Each is pooled from the trunk frames whose centre lies in it (Cnn14's own max + mean
over time), and the frames are the whole file's (tasks.audio.pieces): a span's vector depends on
its audio and the audio around it, not on how the file was cut for the model.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from tasks.audio.pieces import FRAME_SECONDS, frame_count
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits


@dataclass(frozen=True)
class Spans:
    """Spans of one file in time order: start and end (s), and the frames pooled for each,
    ``first_frame`` to ``stop_frame`` (exclusive; never empty)."""

    start_seconds: np.ndarray
    end_seconds: np.ndarray
    first_frame: np.ndarray
    stop_frame: np.ndarray

    def __len__(self) -> int:
        return len(self.start_seconds)


def segment_spans(length: int, limits: AudioLimits, final: bool = True) -> Spans:
    """The segments of a file of ``length`` 32 kHz samples: consecutive, covering it once, the
    last one ending at its last sample (so it may be shorter).

    Not ``final``: ``length`` is what a stream has read so far, and only the segments that any
    longer file has too are given (the whole ones).
    """
    duration = length / MODEL_SAMPLE_RATE
    if not final:
        count = math.floor(duration / limits.segment_seconds + 1e-9)
    else:
        count = max(1, math.ceil(duration / limits.segment_seconds - 1e-9))
    starts = np.arange(count) * limits.segment_seconds
    ends = np.minimum(starts + limits.segment_seconds, duration)
    return _spans(starts, ends, frame_count(length))


def window_spans(length: int, limits: AudioLimits, final: bool = True) -> Spans:
    """The windows of a file of ``length`` samples: ``window_seconds`` long every hop, the last
    one moved back to end at the file's end so that none is mostly past it; a file shorter than
    a window is one window.

    Not ``final``: only the windows on the hop that end within ``length`` read so far.
    """
    window, starts = window_starts(length, limits)
    if not final:
        hop = round(limits.hop * MODEL_SAMPLE_RATE)
        starts = list(range(0, length - window + 1, hop))
    if starts is None:
        begin, end = np.zeros(1), np.asarray([length / MODEL_SAMPLE_RATE])
    else:
        begin = np.asarray(starts, np.float64) / MODEL_SAMPLE_RATE
        end = begin + window / MODEL_SAMPLE_RATE
    return _spans(begin, end, frame_count(length))


def file_span(length: int) -> Spans:
    """The whole file as one span: the frames centred inside it (all but, at most, a last frame
    that holds more of the mirrored end than of the file)."""
    return _spans(np.zeros(1), np.asarray([length / MODEL_SAMPLE_RATE]), frame_count(length))


def window_starts(length: int, limits: AudioLimits) -> tuple[int, list[int] | None]:
    """(window length, window starts) in 32 kHz samples for a file of ``length`` samples;
    starts is None when the file fits in one window. See ``window_spans``."""
    window = round(limits.window_seconds * MODEL_SAMPLE_RATE)
    hop = round(limits.hop * MODEL_SAMPLE_RATE)
    if length <= window:
        return window, None
    starts = list(range(0, length - window + 1, hop))
    if starts[-1] + window < length:
        starts.append(length - window)
    return window, starts


def _spans(starts: np.ndarray, ends: np.ndarray, frames: int) -> Spans:
    # frame j's centre is at (j + 0.5) x 0.32 s: a span takes the frames centred inside it, or
    # (a span shorter than a frame) the frame that holds its middle
    first = np.ceil(starts / FRAME_SECONDS - 0.5 - 1e-9).astype(np.int64)
    stop = np.ceil(ends / FRAME_SECONDS - 0.5 - 1e-9).astype(np.int64)
    middle = np.floor((starts + ends) / 2 / FRAME_SECONDS).astype(np.int64)
    empty = stop <= first
    first = np.where(empty, middle, first).clip(0, frames - 1)
    stop = np.where(empty, first + 1, stop).clip(first + 1, frames)
    return Spans(starts.astype(np.float64), ends.astype(np.float64), first, stop)
