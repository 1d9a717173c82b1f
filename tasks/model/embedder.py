"""The embedder the pipeline calls: Cnn14 on one device, batching, precision, and the audio
preparation that belongs to the model (host or device resampling, pieces).

The surface follows hear-baseline: ``sample_rate``, ``embedding_size``,
``get_scene_embeddings(audio[n, samples]) -> [n, D]`` and
``get_timestamp_embeddings(audio) -> ([n, T, D], timestamps_ms[n, T])``.
"""

from __future__ import annotations

import copy
import threading
from collections.abc import Sequence
from functools import lru_cache
from pathlib import Path

import numpy as np
import torch

from tasks.audio.decode import DecodedAudio, decode
from tasks.audio.device import resample_on_device, to_device
from tasks.audio.pieces import Piece, Pieces, cut_pieces
from tasks.errors import UserError
from tasks.model.allocator import give_back_freed_memory, keep_freed_memory
from tasks.model.checkpoint import file_sha256, resolve_checkpoint
from tasks.model.cnn14 import cnn14_head, cnn14_trunk, load_cnn14
from tasks.model.constants import EMBEDDING_SIZE, MODEL_NAME, MODEL_SAMPLE_RATE, OFFICIAL_SHA256
from tasks.model.engines import OnnxTrunk, choose_engine, exported_trunk
from tasks.model.file_vectors import FileEmbedding, FileFrames
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

    def pieces_of(self, audio: DecodedAudio) -> Pieces:
        """The model's pieces of decoded audio: cut on the host when it is already at 32 kHz
        (and resampling is a host job), else resampled and cut on the model's device."""
        if not self.resamples_on_device:
            return cut_pieces(audio.samples, self.limits)
        resampled = resample_on_device(audio.samples, audio.sample_rate, self.device)
        return cut_pieces(resampled, self.limits)

    def embed_file(self, name: str, data: bytes) -> FileEmbedding:
        """Decode, cut and embed the bytes of one audio file called ``name``."""
        return self.embed_files([self.pieces_of(self.decode(name, data))])[0]

    def file_frames(self, length: int | None) -> FileFrames:
        """An accumulator of one file's frames (``length`` in samples; None for a stream)."""
        return FileFrames(self.head, self.limits, length)

    def trunk_frames(self, rows: Sequence[np.ndarray | torch.Tensor]) -> torch.Tensor:
        """One forward pass of the trunk over pieces (1-D, 32 kHz, host or device): their
        frames [n, T, 2048] float32 on the model's device, T for the longest piece. A shorter
        piece is padded with zeros past its right context, which leaves its frames as alone.

        Host pieces are packed into a batch buffer the calling thread reuses, pinned on CUDA:
        one copy on the host, then one copy to the device.
        """
        longest = max(int(row.shape[0]) for row in rows)
        if isinstance(rows[0], torch.Tensor):
            batch = torch.zeros((len(rows), longest), dtype=torch.float32, device=self.device)
            for i, row in enumerate(rows):
                batch[i, : row.shape[0]] = row
        else:
            buffer = self._batch_buffer(len(rows), longest)
            for i, row in enumerate(rows):
                buffer[i, : len(row)] = row
                buffer[i, len(row) :] = 0.0
            batch = to_device(buffer, self.device)
        with self._forward_lock, torch.inference_mode():
            if self.trunk is not None:
                frames = torch.from_numpy(self.trunk.run(batch.numpy()))
            else:
                frames = cnn14_trunk(self.model, batch, self._autocast_dtype)
            # copied out of the thread's reusable host buffer by now (ONNX Runtime's output and
            # torch's are new tensors)
            return frames.float().transpose(1, 2)

    def head(self, pooled: torch.Tensor) -> tuple[np.ndarray, np.ndarray]:
        """Pooled frames [m, 2048] -> (embeddings [m, 2048], AudioSet probabilities [m, 527])."""
        with torch.inference_mode():
            embeddings, probabilities = cnn14_head(self.model, pooled.to(self.device))
        return embeddings.cpu().numpy(), probabilities.cpu().numpy()

    def run_pieces(self, pieces: Sequence[tuple[FileFrames, Piece]]) -> None:
        """One forward pass over pieces (of one file or of consecutive files, each with its
        file's accumulator, in order): each piece's kept frames go to its file."""
        frames = self.trunk_frames([piece.audio for _, piece in pieces])
        for row, (file, piece) in enumerate(pieces):
            start, stop = piece.kept_offsets()
            file.add(frames[row, start:stop])

    def _batch_buffer(self, rows: int, samples: int) -> np.ndarray:
        """[rows, samples] float32 of this thread's batch buffer (pinned on CUDA), grown to hold
        at least ``batch_size`` rows of ``samples``."""
        buffer = getattr(self._batch_buffers, "batch", None)
        if buffer is None or buffer.size < rows * samples:
            size = max(rows, self.batch_size) * samples
            if self.device.type == "cuda":
                buffer = torch.empty(size, dtype=torch.float32, pin_memory=True).numpy()
            else:
                buffer = np.empty(size, np.float32)
            self._batch_buffers.batch = buffer
        return buffer[: rows * samples].reshape(rows, samples)

    def embed_files(self, files: Sequence[Pieces]) -> list[FileEmbedding]:
        """Embed many files' pieces, filling each batch with pieces from several files."""
        accumulators = [self.file_frames(f.length) for f in files]
        queue = [
            (file, pieces.piece(i))
            for file, pieces in zip(accumulators, files, strict=True)
            for i in range(pieces.count)
        ]
        for start in range(0, len(queue), self.batch_size):
            self.run_pieces(queue[start : start + self.batch_size])
        return [file.finish() for file in accumulators]

    def get_scene_embeddings(self, audio: np.ndarray) -> np.ndarray:
        """Clips [n, samples] at 32 kHz -> one embedding per clip [n, 2048]."""
        _check_two_dimensional(audio)
        pieces = [cut_pieces(clip, self.limits) for clip in audio]
        return np.stack([f.embedding for f in self.embed_files(pieces)])

    def get_timestamp_embeddings(self, audio: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Clips [n, samples] -> (window embeddings [n, T, 2048], window centres in ms [n, T])."""
        _check_two_dimensional(audio)
        results = self.embed_files([cut_pieces(clip, self.limits) for clip in audio])
        window = min(self.limits.window_seconds, audio.shape[1] / MODEL_SAMPLE_RATE)
        centres = np.stack([(r.window_start_seconds + window / 2) * 1000.0 for r in results])
        return np.stack([r.window_embeddings for r in results]), centres


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
