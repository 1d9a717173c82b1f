"""The embedder the pipeline calls: Cnn14 on one device, batching, precision, and the audio
preparation that belongs to the model (host or device resampling, windows).

The surface follows hear-baseline: ``sample_rate``, ``embedding_size``,
``get_scene_embeddings(audio[n, samples]) -> [n, D]`` and
``get_timestamp_embeddings(audio) -> ([n, T, D], timestamps_ms[n, T])``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tasks.audio.decode import DecodedAudio, decode
from tasks.audio.device import cut_windows_on_device, resample_on_device, to_device
from tasks.audio.windows import SegmentSpans, Windows, cut_windows, segment_spans
from tasks.errors import UserError
from tasks.model.allocator import give_back_freed_memory, keep_freed_memory
from tasks.model.checkpoint import file_sha256, resolve_checkpoint
from tasks.model.cnn14 import cnn14_forward, cnn14_head, load_cnn14
from tasks.model.constants import (
    EMBEDDING_SIZE,
    MODEL_NAME,
    MODEL_SAMPLE_RATE,
    NUM_CLASSES,
    OFFICIAL_SHA256,
)
from tasks.model.engines import OnnxTrunk, choose_engine, exported_trunk
from tasks.settings import AudioLimits, Engine, ModelSettings, ResampleOn


class DeviceUnavailableError(UserError):
    """The configured device does not exist on this machine."""


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
        raise DeviceUnavailableError(
            f"device {spec!r} was asked for but CUDA is not available here "
            "(AUDIO_EMBEDDINGS_DEVICE=auto uses the CPU when there is no GPU)"
        )
    if (
        device.type == "cuda"
        and device.index is not None
        and device.index >= torch.cuda.device_count()
    ):
        raise DeviceUnavailableError(
            f"device {spec!r} does not exist ({torch.cuda.device_count()} GPUs)"
        )
    return device


_OUTPUT_ARRAYS = ("embeddings", "probabilities", "segment_embeddings", "segment_probabilities")


@dataclass(frozen=True)
class WindowOutputs:
    """The model's outputs for windows, as float32 numpy arrays: embeddings [n, 2048] and
    AudioSet probabilities [n, 527] per window; the same per window and segment
    ([n, S, 2048], [n, S, 527])."""

    embeddings: np.ndarray
    probabilities: np.ndarray
    segment_embeddings: np.ndarray
    segment_probabilities: np.ndarray

    def __getitem__(self, windows: slice) -> WindowOutputs:
        return WindowOutputs(
            self.embeddings[windows],
            self.probabilities[windows],
            self.segment_embeddings[windows],
            self.segment_probabilities[windows],
        )

    @classmethod
    def empty(cls, windows: int, segments: int) -> WindowOutputs:
        """Uninitialised outputs for ``windows`` windows of ``segments`` segments, to fill."""
        return cls(
            np.empty((windows, EMBEDDING_SIZE), np.float32),
            np.empty((windows, NUM_CLASSES), np.float32),
            np.empty((windows, segments, EMBEDDING_SIZE), np.float32),
            np.empty((windows, segments, NUM_CLASSES), np.float32),
        )

    def fill(self, first: int, outputs: WindowOutputs) -> None:
        """Write ``outputs`` over windows ``first`` onwards (assembling a file across batches)."""
        for name in _OUTPUT_ARRAYS:
            part = getattr(outputs, name)
            getattr(self, name)[first : first + len(part)] = part

    @classmethod
    def concatenate(cls, parts: Sequence[WindowOutputs]) -> WindowOutputs:
        return cls(
            *(np.concatenate([getattr(part, name) for part in parts]) for name in _OUTPUT_ARRAYS)
        )


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

    @classmethod
    def kept(cls, outputs: WindowOutputs, spans: SegmentSpans, limits: AudioLimits) -> FileSegments:
        """The segments ``spans`` keeps of the model's outputs for some windows."""
        return cls(
            spans.start,
            spans.end,
            outputs.segment_embeddings[spans.window, spans.part],
            outputs.segment_probabilities[spans.window, spans.part],
            limits.segment_seconds,
        )


@dataclass
class FileEmbedding:
    """One file's scene embedding (mean over its windows) and mean AudioSet probabilities, its
    window embeddings, and its segments."""

    embedding: np.ndarray
    probabilities: np.ndarray
    window_embeddings: np.ndarray
    window_start_seconds: np.ndarray
    segments: FileSegments

    @classmethod
    def of_windows(
        cls, outputs: WindowOutputs, windows: Windows, limits: AudioLimits
    ) -> FileEmbedding:
        """A file's result from the model's outputs for its windows."""
        segments = FileSegments.kept(outputs, segment_spans(windows, limits), limits)
        return cls.of_parts(
            outputs.embeddings, outputs.probabilities, windows.start_seconds, segments
        )

    @classmethod
    def of_parts(
        cls,
        window_embeddings: np.ndarray,
        window_probabilities: np.ndarray,
        window_start_seconds: np.ndarray,
        segments: FileSegments,
    ) -> FileEmbedding:
        """A file's result from its windows' embeddings and probabilities and its segments."""
        return cls(
            _mean_of_rows(window_embeddings),
            _mean_of_rows(window_probabilities),
            window_embeddings,
            window_start_seconds,
            segments,
        )


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
        trunk: OnnxTrunk | None = None,
    ) -> None:
        self.model = model.to(device).eval()
        self.trunk = trunk  # another engine's trunk (None: torch runs the whole pass)
        self.device = device
        self.checkpoint_sha256 = checkpoint_sha256
        self.limits = limits
        self.batch_size = batch_size
        self.precision = precision
        self.resamples_on_device = _resamples_on_device(resample_on, device)
        self._autocast_dtype = {"fp16": torch.float16, "bf16": torch.bfloat16}.get(precision)
        self._forward_lock = threading.Lock()
        self._batch_buffers = threading.local()

    @classmethod
    def load(
        cls,
        path: Path,
        device: str = "auto",
        limits: AudioLimits | None = None,
        batch_size: int = 8,
        precision: str = "fp32",
        resample_on: ResampleOn = "auto",
        engine: Engine = "auto",
    ) -> PannsEmbedder:
        """Build Cnn14 and load the checkpoint at ``path`` onto ``device``, run by ``engine``
        (tasks.model.engines; ONNX Runtime exports the trunk once per checkpoint)."""
        keep_freed_memory()
        sha256 = file_sha256(path)
        model = load_cnn14(path, sha256)
        on = choose_device(device)
        trunk = None
        if choose_engine(engine, on, precision) == "onnxruntime":
            trunk = OnnxTrunk(exported_trunk(model, path, sha256))
            # Building the session allocates and frees about 1.1 GB (the parsed model, graph
            # copies), which the allocator setting above would otherwise keep for good.
            give_back_freed_memory()
        return cls(
            model,
            on,
            sha256,
            limits or AudioLimits(),
            batch_size,
            precision,
            resample_on,
            trunk,
        )

    @property
    def engine(self) -> str:
        """What runs the trunk: torch or onnxruntime."""
        return self.trunk.name if self.trunk is not None else "torch"

    def with_options(
        self, limits: AudioLimits, batch_size: int, resample_on: ResampleOn = "auto"
    ) -> PannsEmbedder:
        """The same model (and lock) with other windows, batch size and resampling place."""
        wrapper = copy.copy(self)
        wrapper.limits, wrapper.batch_size = limits, batch_size
        wrapper.resamples_on_device = _resamples_on_device(resample_on, self.device)
        wrapper._batch_buffers = threading.local()
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

    def embed_file(self, name: str, data: bytes) -> FileEmbedding:
        """Decode, window and embed the bytes of one audio file called ``name``."""
        return self.embed_files([self.windows_of(self.decode(name, data))])[0]

    def embed_batch(self, windows: np.ndarray | torch.Tensor) -> WindowOutputs:
        """One forward pass over windows [n, samples] at 32 kHz (host or device)."""
        _check_two_dimensional(windows)
        if isinstance(windows, np.ndarray):
            batch = to_device(windows, self.device)
        else:
            batch = windows.to(self.device)
        with self._forward_lock, torch.inference_mode():
            if self.trunk is not None:
                frames = torch.from_numpy(self.trunk.run(batch.numpy()))
                out = cnn14_head(self.model, frames, self.limits.segments_per_window)
            else:
                out = cnn14_forward(
                    self.model, batch, self._autocast_dtype, self.limits.segments_per_window
                )
            return WindowOutputs(
                *(
                    tensor.float().cpu().numpy()
                    for tensor in (
                        out.embedding,
                        out.clipwise,
                        out.segment_embedding,
                        out.segment_clipwise,
                    )
                )
            )

    def embed_window_parts(self, parts: Sequence[np.ndarray | torch.Tensor]) -> WindowOutputs:
        """One forward pass over the windows of several parts ([n_i, samples] each, consecutive
        files' windows), as ``embed_batch`` of their concatenation.

        Host windows are packed into a batch buffer the calling thread reuses, pinned on CUDA:
        one copy on the host instead of two (a concatenation, then a copy into pinned memory;
        327 MB each for a GPU batch of 256 ten-second windows), then one copy to the device.
        """
        if isinstance(parts[0], torch.Tensor):
            return self.embed_batch(concatenate(parts))
        batch = self._batch_buffer(sum(len(part) for part in parts), parts[0].shape[1])
        offset = 0
        for part in parts:
            batch[offset : offset + len(part)] = part
            offset += len(part)
        # embed_batch returns host arrays, so the copy out of the buffer is over on return
        return self.embed_batch(batch)

    def _batch_buffer(self, windows: int, samples: int) -> np.ndarray:
        """[windows, samples] float32 of this thread's batch buffer (pinned on CUDA), grown to
        hold at least ``batch_size`` windows of ``samples``."""
        buffer = getattr(self._batch_buffers, "batch", None)
        if buffer is None or buffer.shape[1] != samples or buffer.shape[0] < windows:
            shape = (max(windows, self.batch_size), samples)
            if self.device.type == "cuda":
                buffer = torch.empty(shape, dtype=torch.float32, pin_memory=True).numpy()
            else:
                buffer = np.empty(shape, np.float32)
            self._batch_buffers.batch = buffer
        return buffer[:windows]

    def embed_windows(self, windows: np.ndarray | torch.Tensor) -> WindowOutputs:
        """Any number of windows [n, samples] at 32 kHz, in batches of ``batch_size``."""
        outputs = [
            self.embed_batch(windows[start : start + self.batch_size])
            for start in range(0, windows.shape[0], self.batch_size)
        ]
        if not outputs:
            return WindowOutputs.empty(0, self.limits.segments_per_window)
        return WindowOutputs.concatenate(outputs)

    def embed_files(self, files: Sequence[Windows]) -> list[FileEmbedding]:
        """Embed many files' windows, filling each batch with windows from several files."""
        if not files:
            return []
        outputs = self.embed_windows(concatenate([f.audio for f in files]))
        results, offset = [], 0
        for windows in files:
            stop = offset + windows.count
            results.append(FileEmbedding.of_windows(outputs[offset:stop], windows, self.limits))
            offset = stop
        return results

    def get_scene_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """Clips [n, samples] at 32 kHz -> one embedding per clip [n, 2048] (mean of windows)."""
        _check_two_dimensional(audio)
        windows = [cut_windows(clip, self.limits) for clip in audio]
        return np.stack([f.embedding for f in self.embed_files(windows)])

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clips [n, samples] -> (window embeddings [n, T, 2048], window centres in ms [n, T])."""
        _check_two_dimensional(audio)
        cut = [cut_windows(clip, self.limits) for clip in audio]
        results = self.embed_files(cut)
        centres = np.stack(
            [(c.start_seconds + self.limits.window_seconds / 2) * 1000.0 for c in cut]
        )
        return np.stack([r.window_embeddings for r in results]), centres


def _mean_of_rows(rows: np.ndarray) -> np.ndarray:
    # most files are one window, whose mean is that row: numpy's mean costs ~30 us a call,
    # twice a file, on the thread that feeds the model
    return rows[0] if len(rows) == 1 else rows.mean(axis=0)


def _check_two_dimensional(audio: np.ndarray | torch.Tensor) -> None:
    if audio.ndim != 2:
        raise ValueError(f"expected audio of shape [n, samples], got {tuple(audio.shape)}")


def _resamples_on_device(resample_on: ResampleOn, device: torch.device) -> bool:
    # 'auto' is the host everywhere: on a 16-core H200 host the host path fed 888 clips/s with
    # soxr in the reader threads and 581 with a resampling launch per file on the GPU, in the
    # same run (benchmarks/host_path.py; README, GPU figures). 'device' stays for hosts with
    # few cores per GPU.
    del device
    return resample_on == "device"


def concatenate(parts: Sequence[np.ndarray | torch.Tensor]) -> np.ndarray | torch.Tensor:
    """Stack window arrays along the first axis; all on the host (numpy) or all on a device."""
    if isinstance(parts[0], torch.Tensor):
        return parts[0] if len(parts) == 1 else torch.cat(list(parts))
    return parts[0] if len(parts) == 1 else np.concatenate(parts)


@lru_cache(maxsize=2)
def _cached_embedder(
    path: Path, mtime_ns: int, device: str, precision: str, engine: Engine
) -> PannsEmbedder:
    return PannsEmbedder.load(path, device, precision=precision, engine=engine)


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
        settings.engine,
    )
    return loaded.with_options(limits, settings.batch_size, settings.resample_on)
