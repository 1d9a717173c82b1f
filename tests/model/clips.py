"""Deterministic clips at the model rate for the model tests, and embedding them as files."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from tasks.audio import samples
from tasks.audio.pieces import cut_pieces
from tasks.model.constants import MODEL_SAMPLE_RATE

if TYPE_CHECKING:
    from tasks.model.embedder import PannsEmbedder
    from tasks.model.file_vectors import FileEmbedding


def model_clips(count: int, seconds: float) -> np.ndarray:
    """``count`` distinct clips of ``seconds`` at 32 kHz, [count, samples] float32."""
    makers = [
        lambda: samples.tone(seconds, MODEL_SAMPLE_RATE, 440.0),
        lambda: samples.noise(seconds, MODEL_SAMPLE_RATE, 1),
        lambda: samples.chirp(seconds, MODEL_SAMPLE_RATE),
        lambda: samples.clicks(seconds, MODEL_SAMPLE_RATE, 6.0, 2),
        lambda: samples.tone(seconds, MODEL_SAMPLE_RATE, 97.0),
    ]
    return np.stack([makers[i % len(makers)]() for i in range(count)])


def embed_clips(embedder: PannsEmbedder, clips: Sequence[np.ndarray]) -> list[FileEmbedding]:
    """Each clip (32 kHz samples) embedded as a file, in shared batches."""
    return embedder.embed_files([cut_pieces(clip, embedder.limits) for clip in clips])


def file_vectors(embedder: PannsEmbedder, clips: Sequence[np.ndarray]) -> np.ndarray:
    """[n, 2048]: each clip's file vector."""
    return np.stack([f.embedding for f in embed_clips(embedder, clips)])
