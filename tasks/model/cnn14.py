"""Cnn14 itself: built offline from panns-inference's module, loaded from a checkpoint, and its
eval-mode forward pass with the log-mel front end kept in fp32.

panns-inference is used for its ``Cnn14`` module only. Its ``config`` module downloads the label
CSV with ``wget`` on any import and its ``AudioTagging`` wrapper overwrites small checkpoints, so
we register an offline ``panns_inference.config`` (labels from our package data) before importing
``panns_inference.models``, and own loading, resampling and batching ourselves.
"""

from __future__ import annotations

import sys
import types
from dataclasses import dataclass
from itertools import pairwise
from pathlib import Path

import torch

from tasks.model.checkpoint import CheckpointError
from tasks.model.constants import (
    FMAX,
    FMIN,
    HOP_SIZE,
    MEL_BINS,
    MODEL_SAMPLE_RATE,
    NUM_CLASSES,
    OFFICIAL_SHA256,
    WINDOW_SIZE,
)
from tasks.model.labels import audioset_labels

# Cnn14's six conv blocks and their pooling, as in panns_inference.models.Cnn14.forward.
_CONV_BLOCKS = (
    ("conv_block1", (2, 2)),
    ("conv_block2", (2, 2)),
    ("conv_block3", (2, 2)),
    ("conv_block4", (2, 2)),
    ("conv_block5", (2, 2)),
    ("conv_block6", (1, 1)),
)


def _install_offline_panns_config() -> None:
    """Stand in for ``panns_inference.config``: importing panns_inference must not go online."""
    if "panns_inference.config" in sys.modules:
        return
    labels = audioset_labels()
    config = types.ModuleType("panns_inference.config")
    config.sample_rate = MODEL_SAMPLE_RATE
    config.labels = list(labels.names)
    config.ids = list(labels.ids)
    config.classes_num = len(labels.names)
    config.lb_to_ix = {name: i for i, name in enumerate(labels.names)}
    config.ix_to_lb = dict(enumerate(labels.names))
    config.id_to_ix = {mid: i for i, mid in enumerate(labels.ids)}
    config.ix_to_id = dict(enumerate(labels.ids))
    sys.modules["panns_inference.config"] = config


def build_cnn14() -> torch.nn.Module:
    """A Cnn14 with panns-inference's default (random) initialisation, in eval mode."""
    _install_offline_panns_config()
    from panns_inference.models import Cnn14

    model = Cnn14(
        sample_rate=MODEL_SAMPLE_RATE,
        window_size=WINDOW_SIZE,
        hop_size=HOP_SIZE,
        mel_bins=MEL_BINS,
        fmin=FMIN,
        fmax=FMAX,
        classes_num=NUM_CLASSES,
    )
    return model.eval()


def write_random_checkpoint(path: Path, seed: int = 0) -> Path:
    """Save a random-weight Cnn14 as ``{'model': state_dict}``, the official file's layout.

    For offline trials and tests only: its embeddings are deterministic but carry no meaning.
    """
    torch.manual_seed(seed)
    model = build_cnn14()
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(path.name + ".partial")
    torch.save({"model": model.state_dict()}, partial)
    partial.replace(path)
    return path


def load_cnn14(path: Path, sha256: str) -> torch.nn.Module:
    """Cnn14 with the weights of the checkpoint at ``path`` (whose sha256 is given), on the CPU.

    Raises ``CheckpointError`` for a file that is not a Cnn14 checkpoint.
    """
    model = build_cnn14()
    missing, unexpected = model.load_state_dict(_load_state_dict(path, sha256), strict=False)
    # The STFT and mel matrices are deterministic buffers; anything else missing is an error.
    missing = [k for k in missing if not k.startswith(("spectrogram_", "logmel_"))]
    if missing or unexpected:
        raise CheckpointError(
            f"{path}: not a Cnn14 checkpoint (missing {missing[:5]}, unexpected {unexpected[:5]})"
        )
    return model


def _load_state_dict(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError, RuntimeError or EOFError here
        if sha256 != OFFICIAL_SHA256:
            raise CheckpointError(
                f"{path}: not loadable as plain weights ({error}). Only the official checkpoint "
                "(verified by its sha256) is loaded with full unpickling."
            ) from None
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise CheckpointError(f"{path}: expected {{'model': state_dict}}, found {type(checkpoint)}")
    return state


@dataclass(frozen=True)
class Cnn14Output:
    """One forward pass over windows [n, samples]: per window, the embedding [n, 2048] and the
    AudioSet probabilities [n, 527]; per window and segment (equal consecutive parts of the
    window), the segment embeddings [n, S, 2048] and probabilities [n, S, 527]."""

    embedding: torch.Tensor
    clipwise: torch.Tensor
    segment_embedding: torch.Tensor
    segment_clipwise: torch.Tensor


def cnn14_forward(
    model: torch.nn.Module,
    batch: torch.Tensor,
    autocast_dtype: torch.dtype | None = None,
    segments: int = 1,
) -> Cnn14Output:
    """Cnn14's eval-mode forward pass over windows [n, samples] at 32 kHz, with ``segments``
    timestamp embeddings per window from the same pass.

    Cnn14 pools its last feature map (2048 channels, one frame per ~0.32 s) over time (max +
    mean) before fc1; a segment embedding is the same pooling over the frames of one part of
    the window, through the same fc1 and ReLU, so it lives in the same space as the window's.
    It costs one fc1 per segment (4 M multiply-adds, against 21 G for the window).

    The STFT power of a loud window reaches ~2.6e5, past fp16's 65504, so only the
    convolutional trunk and the head run under autocast (when ``autocast_dtype`` is set).
    """
    features = model.logmel_extractor(model.spectrogram_extractor(batch))
    features = model.bn0(features.transpose(1, 3)).transpose(1, 3)
    with torch.autocast(
        batch.device.type, dtype=autocast_dtype, enabled=autocast_dtype is not None
    ):
        x = features
        for block, pool in _CONV_BLOCKS:
            x = getattr(model, block)(x, pool_size=pool, pool_type="avg")
        frames = torch.mean(x, dim=3)  # [n, 2048, T]
        pooled = torch.max(frames, dim=2).values + torch.mean(frames, dim=2)
        embedding = torch.relu(model.fc1(pooled))
        clipwise = torch.sigmoid(model.fc_audioset(embedding))
        parts = [
            frames[:, :, start:stop] for start, stop in segment_frames(frames.shape[2], segments)
        ]
        segment_pooled = torch.stack(
            [part.max(dim=2).values + part.mean(dim=2) for part in parts], dim=1
        )  # [n, S, 2048]
        segment_embedding = torch.relu(model.fc1(segment_pooled))
        segment_clipwise = torch.sigmoid(model.fc_audioset(segment_embedding))
    return Cnn14Output(embedding, clipwise, segment_embedding, segment_clipwise)


def segment_frames(frames: int, segments: int) -> list[tuple[int, int]]:
    """Frame ranges [start, stop) that split ``frames`` feature-map frames into ``segments``
    consecutive parts of (nearly) equal length, each at least one frame."""
    if segments < 1:
        raise ValueError("a window has at least one segment")
    bounds = [round(i * frames / segments) for i in range(segments + 1)]
    return [(min(a, frames - 1), max(b, min(a, frames - 1) + 1)) for a, b in pairwise(bounds)]
