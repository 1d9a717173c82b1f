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
        return Windows(audio=padded, start_seconds=np.zeros(1))
    stacked = np.lib.stride_tricks.sliding_window_view(samples, window)[starts]
    return Windows(
        audio=np.ascontiguousarray(stacked, dtype=np.float32),
        start_seconds=np.asarray(starts, dtype=np.float64) / MODEL_SAMPLE_RATE,
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
