"""Cut 32 kHz mono audio into the pieces Cnn14's trunk runs on, so that every output frame is
the frame the trunk would give for the whole file at once, whatever piece it was computed in.

The trunk turns audio into frames of ``FRAME_SAMPLES`` (0.32 s: the STFT hop of 320 samples
times 2^5 of time pooling), and a frame depends on about 1.5 s of audio on each side. A piece
is a run of frames (its core) with ``CONTEXT_FRAMES`` of audio on each side whose output is
dropped. With 4 frames (1.28 s) of context the core frames equal the whole-file trunk's exactly
(random-weight Cnn14, 40 s of hum and noise: 0 relative difference; 3 frames: 2.5 %; 2 frames:
13 %), so a second's vector no longer depends on where a window began.

Where a file has no audio (before its start, after its end) the context is the file mirrored
at its edge: an edge second is computed as if the sound went on. Zeros, or the trunk's own
padding, are not silence to it: with them every file's first and last second looked alike, and
a 1 s query matched those instead of the sound (on 20 files with a planted knock, the best
segment of each file was the knock in 20 of 20 with mirrored edges, 0 of 20 with the trunk's
own edges). Catalogue files and queries are cut the same way.

Frames start at the file's first sample, so pieces start on the frame grid (multiples of
``FRAME_SAMPLES``) and a piece's frames are file frames. Beyond a piece's right context, any
padding (to batch it with longer pieces) leaves its core frames unchanged.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.settings import AudioLimits

if TYPE_CHECKING:
    import torch

#: 32 kHz samples per trunk output frame (STFT hop 320 x 32 of time pooling): 0.32 s.
FRAME_SAMPLES = 10_240
FRAME_SECONDS = FRAME_SAMPLES / MODEL_SAMPLE_RATE
#: Frames of audio on each side of a piece's core whose output is dropped (see the module doc).
CONTEXT_FRAMES = 4
CONTEXT_SAMPLES = CONTEXT_FRAMES * FRAME_SAMPLES


def frame_count(length: int) -> int:
    """Frames of a file of ``length`` samples: one per started 0.32 s, at least one."""
    return max(1, math.ceil(length / FRAME_SAMPLES))


def core_frames(limits: AudioLimits) -> int:
    """Most frames in one piece's core: one window's worth (a 10 s clip is one piece)."""
    return frame_count(round(limits.window_seconds * MODEL_SAMPLE_RATE))


@dataclass(frozen=True)
class Pieces:
    """One file's pieces, in time order: ``audio`` [n, piece samples] float32 (context
    included), on the host (numpy) or on the model's device (torch).

    Piece i's core starts at file frame ``first_frame[i]``; it contributes file frames
    ``kept_from[i]`` to ``kept_to[i]`` (exclusive; a last piece moved back to end at the file's
    end repeats frames the piece before gave, and keeps only the new ones). ``frames`` is the
    file's frame count and ``length`` its length in samples.
    """

    audio: np.ndarray | torch.Tensor
    first_frame: np.ndarray
    kept_from: np.ndarray
    kept_to: np.ndarray
    frames: int
    length: int

    @property
    def count(self) -> int:
        return int(self.audio.shape[0])

    @property
    def duration_seconds(self) -> float:
        return self.length / MODEL_SAMPLE_RATE

    def piece(self, i: int) -> Piece:
        return Piece(
            self.audio[i], int(self.first_frame[i]), int(self.kept_from[i]), int(self.kept_to[i])
        )


def plan_pieces(frames: int, most_core_frames: int) -> tuple[int, list[tuple[int, int, int]]]:
    """(core frames per piece, [(first frame, kept from, kept to)]) covering ``frames`` once: a
    file that fits is one piece as long as itself; a longer one is cut every ``most_core_frames``
    and its last piece moved back to end at the last frame."""
    if frames <= most_core_frames:
        return frames, [(0, 0, frames)]
    plan = [
        (s, s, s + most_core_frames)
        for s in range(0, frames - most_core_frames + 1, most_core_frames)
    ]
    covered = plan[-1][2]
    if covered < frames:
        plan.append((frames - most_core_frames, covered, frames))
    return most_core_frames, plan


def cut_pieces(samples: np.ndarray | torch.Tensor, limits: AudioLimits) -> Pieces:
    """Cut a whole file of 32 kHz mono samples (host or device) into pieces."""
    length = int(samples.shape[0])
    frames = frame_count(length)
    core, plan = plan_pieces(frames, core_frames(limits))
    piece_samples = (core + 2 * CONTEXT_FRAMES) * FRAME_SAMPLES
    rows = [
        extended(samples, 0, length, first * FRAME_SAMPLES, first * FRAME_SAMPLES + piece_samples)
        for first, _, _ in plan
    ]
    columns = np.asarray(plan, dtype=np.int64).T
    return Pieces(_stack(rows), *columns, frames, length)


def extended(
    held: np.ndarray | torch.Tensor, offset: int, length: int, start: int, stop: int
) -> np.ndarray | torch.Tensor:
    """Samples [start, stop) of a file of ``length`` samples extended by ``CONTEXT_SAMPLES`` of
    its mirror image on the left (index 0 is the mirror's first sample) and as far as needed on
    the right. ``held`` holds the file's samples from ``offset`` on (a stream keeps only the
    tail it still needs)."""
    low, high = start - CONTEXT_SAMPLES, stop - CONTEXT_SAMPLES  # file coordinates
    parts = []
    if low < 0:
        parts.append(_gather(held, _mirror(np.arange(low, min(high, 0)), length) - offset))
    inside_from, inside_to = max(low, 0), min(high, length)
    if inside_from < inside_to:
        parts.append(held[inside_from - offset : inside_to - offset])
    if high > length:
        parts.append(_gather(held, _mirror(np.arange(max(low, length), high), length) - offset))
    return parts[0] if len(parts) == 1 else _concatenate(parts)


def _mirror(indices: np.ndarray, length: int) -> np.ndarray:
    """Indices outside [0, length) reflected into it (about the first and last sample, again
    and again for a file shorter than the reflection)."""
    if length == 1:
        return np.zeros_like(indices)
    folded = np.mod(indices, 2 * (length - 1))
    return np.where(folded < length, folded, 2 * (length - 1) - folded)


def _gather(held: np.ndarray | torch.Tensor, indices: np.ndarray) -> np.ndarray | torch.Tensor:
    if isinstance(held, np.ndarray):
        return held[indices]
    import torch

    return held[torch.as_tensor(indices, device=held.device)]


def _concatenate(parts: list) -> np.ndarray | torch.Tensor:
    if isinstance(parts[0], np.ndarray):
        return np.concatenate(parts)
    import torch

    return torch.cat(parts)


def _stack(rows: list) -> np.ndarray | torch.Tensor:
    if isinstance(rows[0], np.ndarray):
        return np.stack(rows).astype(np.float32, copy=False)
    import torch

    return torch.stack(rows).float()


@dataclass(frozen=True)
class Piece:
    """One piece: its audio [piece samples] (host or device), the file frame its core starts
    at, and the file frames it gives, ``kept_from`` to ``kept_to`` (exclusive)."""

    audio: np.ndarray | torch.Tensor
    first_frame: int
    kept_from: int
    kept_to: int

    def kept_offsets(self) -> tuple[int, int]:
        """Which of the trunk's output frames for this piece to keep: [start, stop)."""
        offset = CONTEXT_FRAMES - self.first_frame
        return self.kept_from + offset, self.kept_to + offset


class PieceCutter:
    """``cut_pieces`` for audio that arrives block by block (a long file decoded as a stream):
    pieces whose kept frames equal the whole file's, holding under two pieces and a block.

    ``feed`` each block of 32 kHz mono samples and take the pieces it completes, then
    ``finish`` for the rest; ``length`` is then the file's length in samples.
    """

    def __init__(self, limits: AudioLimits) -> None:
        self.core = core_frames(limits)
        self.piece_samples = (self.core + 2 * CONTEXT_FRAMES) * FRAME_SAMPLES
        self.length = 0  # samples fed so far
        self._held = np.zeros(0, np.float32)
        self._held_from = 0  # file index of _held[0]
        self._next_frame = 0  # first frame no piece has given yet

    def feed(self, block: np.ndarray) -> list[Piece]:
        """The pieces whose audio (right context included) this block completes."""
        self._held = np.concatenate([self._held, np.asarray(block, np.float32)])
        self.length += len(block)
        out = []
        core_samples = self.core * FRAME_SAMPLES
        while (self._next_frame * FRAME_SAMPLES + core_samples + CONTEXT_SAMPLES) <= self.length:
            first = self._next_frame
            out.append(self._piece(first, first, first + self.core))
            self._next_frame += self.core
        # keep what a last piece moved back by up to a core, with its left context, may need
        keep_from = max(0, (self._next_frame - self.core - CONTEXT_FRAMES) * FRAME_SAMPLES)
        if keep_from > self._held_from:
            self._held = self._held[keep_from - self._held_from :]
            self._held_from = keep_from
        return out

    def finish(self) -> list[Piece]:
        """The pieces that cover the frames left, with the file's end mirrored as context."""
        frames = frame_count(self.length)
        out = []
        if self._next_frame == 0 and frames <= self.core:  # a short file: one piece of its own
            self.piece_samples = (frames + 2 * CONTEXT_FRAMES) * FRAME_SAMPLES
            return [self._piece(0, 0, frames)]
        while self._next_frame < frames:
            first = min(self._next_frame, frames - self.core)
            kept_to = min(first + self.core, frames)
            out.append(self._piece(first, self._next_frame, kept_to))
            self._next_frame = kept_to
        return out

    def _piece(self, first: int, kept_from: int, kept_to: int) -> Piece:
        # a piece cut before the end reaches no further than the samples fed: no right mirror
        start = first * FRAME_SAMPLES
        audio = extended(
            self._held, self._held_from, self.length, start, start + self.piece_samples
        )
        return Piece(np.ascontiguousarray(audio, np.float32), first, kept_from, kept_to)
