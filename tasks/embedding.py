"""The PANNs Cnn14 embedder: model construction, checkpoint loading, device and batching.

panns-inference is used for its ``Cnn14`` module only. Its ``config`` module downloads the label
CSV with ``wget`` on any import and its ``AudioTagging`` wrapper overwrites small checkpoints, so
we register an offline ``panns_inference.config`` (labels from our package data) before importing
``panns_inference.models``, and own loading, resampling and batching ourselves.

The surface follows hear-baseline: ``sample_rate``, ``embedding_size``,
``get_scene_embeddings(audio[n, samples]) -> [n, D]`` and
``get_timestamp_embeddings(audio) -> ([n, T, D], timestamps_ms[n, T])``.
"""

from __future__ import annotations

import copy
import csv
import sys
import threading
import types
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache, lru_cache
from importlib import resources
from pathlib import Path

import numpy as np
import torch

from tasks.audio import DecodedAudio, Windows, cut_windows, decode
from tasks.checkpoint import OFFICIAL_SHA256, file_sha256, resolve_checkpoint
from tasks.device_audio import cut_windows_on_device, resample_on_device, to_device
from tasks.settings import MODEL_SAMPLE_RATE, AudioLimits, ModelSettings, ResampleOn

MODEL_NAME = "Cnn14"
EMBEDDING_SIZE = 2048
NUM_CLASSES = 527
# Cnn14's front end, as trained (PANNs paper): STFT window and hop (samples), mel bins, band (Hz).
WINDOW_SIZE, HOP_SIZE, MEL_BINS, FMIN, FMAX = 1024, 320, 64, 50, 14_000


# Cnn14's six conv blocks and their pooling, as in panns_inference.models.Cnn14.forward.
_CONV_BLOCKS = (
    ("conv_block1", (2, 2)),
    ("conv_block2", (2, 2)),
    ("conv_block3", (2, 2)),
    ("conv_block4", (2, 2)),
    ("conv_block5", (2, 2)),
    ("conv_block6", (1, 1)),
)


@dataclass(frozen=True)
class AudioSetLabels:
    """The 527 AudioSet classes in Cnn14's output order."""

    ids: tuple[str, ...]
    names: tuple[str, ...]


@cache
def audioset_labels() -> AudioSetLabels:
    """Read the label CSV shipped as package data (CC BY 4.0, see tasks/data/README.md)."""
    text = resources.files("tasks").joinpath("data/audioset_class_labels_indices.csv").read_text()
    rows = list(csv.DictReader(text.splitlines()))
    return AudioSetLabels(
        ids=tuple(row["mid"] for row in rows), names=tuple(row["display_name"] for row in rows)
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


def choose_device(spec: str) -> torch.device:
    """'auto' -> the current CUDA device if there is one, else the CPU; 'cuda:N' is honoured."""
    if spec == "auto":
        return (
            torch.device("cuda", torch.cuda.current_device())
            if torch.cuda.is_available()
            else torch.device("cpu")
        )
    device = torch.device(spec)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"device {spec!r} was asked for but CUDA is not available here")
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise RuntimeError(f"device {spec!r} does not exist ({torch.cuda.device_count()} GPUs)")
    return device


def _load_state_dict(path: Path, sha256: str) -> dict[str, torch.Tensor]:
    try:
        checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    except Exception as error:  # torch raises UnpicklingError or RuntimeError here
        if sha256 != OFFICIAL_SHA256:
            raise RuntimeError(
                f"{path}: not loadable as plain weights ({error}). Only the official checkpoint "
                "(verified by its sha256) is loaded with full unpickling."
            ) from None
        checkpoint = torch.load(path, map_location="cpu", weights_only=False)
    state = checkpoint.get("model", checkpoint) if isinstance(checkpoint, dict) else None
    if not isinstance(state, dict):
        raise RuntimeError(f"{path}: expected {{'model': state_dict}}, found {type(checkpoint)}")
    return state


@dataclass
class FileEmbedding:
    """One file's scene embedding (mean over its windows) and mean AudioSet probabilities."""

    embedding: np.ndarray
    probabilities: np.ndarray
    window_embeddings: np.ndarray
    window_start_seconds: np.ndarray

    @classmethod
    def of_windows(
        cls, embeddings: np.ndarray, probabilities: np.ndarray, start_seconds: np.ndarray
    ) -> FileEmbedding:
        """A file's result from its window embeddings [n, 2048] and probabilities [n, 527]."""
        return cls(embeddings.mean(axis=0), probabilities.mean(axis=0), embeddings, start_seconds)


class PannsEmbedder:
    """Cnn14 on one device; thread-safe (one forward pass at a time)."""

    sample_rate = MODEL_SAMPLE_RATE
    embedding_size = EMBEDDING_SIZE
    model_name = MODEL_NAME

    def __init__(
        self,
        model: torch.nn.Module,
        device: torch.device,
        checkpoint_sha256: str,
        limits: AudioLimits,
        batch_size: int = 8,
        precision: str = "fp32",
        resample_on: ResampleOn = "auto",
    ) -> None:
        self.model = model.to(device).eval()
        self.device = device
        self.checkpoint_sha256 = checkpoint_sha256
        self.limits = limits
        self.batch_size = batch_size
        self.precision = precision
        self.resamples_on_device = _resamples_on_device(resample_on, device)
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self._forward_lock = threading.Lock()

    @classmethod
    def load(
        cls,
        path: Path,
        device: str = "auto",
        limits: AudioLimits | None = None,
        batch_size: int = 8,
        precision: str = "fp32",
        resample_on: ResampleOn = "auto",
    ) -> PannsEmbedder:
        """Build Cnn14 and load the checkpoint at ``path`` onto ``device``."""
        sha256 = file_sha256(path)
        model = build_cnn14()
        state = _load_state_dict(path, sha256)
        missing, unexpected = model.load_state_dict(state, strict=False)
        # The STFT and mel matrices are deterministic buffers; anything else missing is an error.
        missing = [k for k in missing if not k.startswith(("spectrogram_", "logmel_"))]
        if missing or unexpected:
            raise RuntimeError(
                f"{path}: not a Cnn14 checkpoint (missing {missing[:5]}, unexpected "
                f"{unexpected[:5]})"
            )
        return cls(
            model,
            choose_device(device),
            sha256,
            limits or AudioLimits(),
            batch_size,
            precision,
            resample_on,
        )

    def with_options(
        self, limits: AudioLimits, batch_size: int, resample_on: ResampleOn = "auto"
    ) -> PannsEmbedder:
        """The same model (and lock) with other windows, batch size and resampling place."""
        wrapper = copy.copy(self)
        wrapper.limits, wrapper.batch_size = limits, batch_size
        wrapper.resamples_on_device = _resamples_on_device(resample_on, self.device)
        return wrapper

    @property
    def is_official_checkpoint(self) -> bool:
        return self.checkpoint_sha256 == OFFICIAL_SHA256

    def decode(self, name: str, data: bytes) -> DecodedAudio:
        """Decode a file, resampling it on the host unless this embedder resamples on device."""
        return decode(name, data, self.limits, resample=not self.resamples_on_device)

    def windows_of(self, audio: DecodedAudio) -> Windows:
        """The model's windows of decoded audio: cut on the host when it is already at 32 kHz
        (and resampling is a host job), else resampled and cut on the model's device."""
        if not self.resamples_on_device:
            return cut_windows(audio.samples, self.limits)
        resampled = resample_on_device(audio.samples, audio.sample_rate, self.device)
        return cut_windows_on_device(resampled, self.limits)

    def embed_batch(self, windows: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """One forward pass: windows [n, samples] at 32 kHz (host or device) ->
        (embeddings [n, 2048], probabilities [n, 527]) as float32 numpy arrays."""
        if windows.ndim != 2:
            raise ValueError(f"expected audio of shape [n, samples], got {tuple(windows.shape)}")
        if isinstance(windows, np.ndarray):
            batch = to_device(windows, self.device)
        else:
            batch = windows.to(self.device)
        with self._forward_lock, torch.inference_mode():
            embedding, clipwise = self._forward(batch)
            return embedding.float().cpu().numpy(), clipwise.float().cpu().numpy()

    def embed_windows(self, windows: np.ndarray | torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Any number of windows [n, samples] at 32 kHz, in batches of ``batch_size`` ->
        (embeddings [n, 2048], probabilities [n, 527])."""
        outputs = [
            self.embed_batch(windows[start : start + self.batch_size])
            for start in range(0, windows.shape[0], self.batch_size)
        ]
        if not outputs:
            return np.empty((0, EMBEDDING_SIZE), np.float32), np.empty((0, NUM_CLASSES), np.float32)
        return np.concatenate([e for e, _ in outputs]), np.concatenate([p for _, p in outputs])

    def _forward(self, batch: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Cnn14's eval-mode forward pass, with the log-mel front end kept in fp32.

        The STFT power of a loud window reaches ~2.6e5, past fp16's 65504, so only the
        convolutional trunk and the head run under autocast (when a lower precision is set).
        """
        model = self.model
        features = model.logmel_extractor(model.spectrogram_extractor(batch))
        features = model.bn0(features.transpose(1, 3)).transpose(1, 3)
        with torch.autocast(
            self.device.type, dtype=self._autocast_dtype, enabled=self._autocast_dtype is not None
        ):
            x = features
            for block, pool in _CONV_BLOCKS:
                x = getattr(model, block)(x, pool_size=pool, pool_type="avg")
            x = torch.mean(x, dim=3)
            x = torch.max(x, dim=2).values + torch.mean(x, dim=2)
            embedding = torch.relu(model.fc1(x))
            clipwise = torch.sigmoid(model.fc_audioset(embedding))
        return embedding, clipwise

    def embed_files(self, files: Sequence[Windows]) -> list[FileEmbedding]:
        """Embed many files' windows, filling each batch with windows from several files."""
        if not files:
            return []
        embeddings, probabilities = self.embed_windows(concatenate([f.audio for f in files]))
        results, offset = [], 0
        for windows in files:
            stop = offset + windows.count
            results.append(
                FileEmbedding.of_windows(
                    embeddings[offset:stop], probabilities[offset:stop], windows.start_seconds
                )
            )
            offset = stop
        return results

    def get_scene_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """Clips [n, samples] at 32 kHz -> one embedding per clip [n, 2048] (mean of windows)."""
        self._check_clips(audio)
        windows = [cut_windows(clip, self.limits) for clip in audio]
        return np.stack([f.embedding for f in self.embed_files(windows)])

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clips [n, samples] -> (window embeddings [n, T, 2048], window centres in ms [n, T])."""
        self._check_clips(audio)
        cut = [cut_windows(clip, self.limits) for clip in audio]
        results = self.embed_files(cut)
        centres = np.stack(
            [(c.start_seconds + self.limits.window_seconds / 2) * 1000.0 for c in cut]
        )
        return np.stack([r.window_embeddings for r in results]), centres

    @staticmethod
    def _check_clips(audio: np.ndarray) -> None:
        if audio.ndim != 2:
            raise ValueError(f"expected audio of shape [n, samples], got {audio.shape}")


def _resamples_on_device(resample_on: ResampleOn, device: torch.device) -> bool:
    # Host cores are the bottleneck only when a GPU runs the model.
    return resample_on == "device" or (resample_on == "auto" and device.type == "cuda")


def concatenate(parts: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray | torch.Tensor:
    """Stack window arrays along the first axis; all on the host (numpy) or all on a device."""
    if isinstance(parts[0], torch.Tensor):
        return parts[0] if len(parts) == 1 else torch.cat(list(parts))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@lru_cache(maxsize=2)
def _cached_embedder(path: Path, mtime_ns: int, device: str, precision: str) -> PannsEmbedder:
    return PannsEmbedder.load(path, device, precision=precision)


def load_embedder(settings: ModelSettings, limits: AudioLimits) -> PannsEmbedder:
    """Resolve the checkpoint and load the model once per process (later calls reuse it).

    Callers with other windows or batch sizes (ingest vs anomaly scans) share the same model
    and its forward-pass lock: only the light wrapper differs.
    """
    resolved = resolve_checkpoint(settings)
    loaded = _cached_embedder(
        resolved.path.resolve(),
        resolved.path.stat().st_mtime_ns,
        settings.device,
        settings.precision,
    )
    return loaded.with_options(limits, settings.batch_size, settings.resample_on)
