"""The streaming embed path: read and decode files ahead of the model in threads, pack windows of
consecutive files into full batches, and hand each file's result back in order. Unusable files
come back as ``AudioError`` values, never exceptions. Ingest shards and ``anomaly evaluate`` use it.

Long files (over ``stream_above_seconds``) never sit in memory whole: they are read from a file
(a blob is downloaded to a temporary file), decoded block by block in a thread, and their windows
go through the model as they are cut, in batches of their own.
"""

from __future__ import annotations

import io
import math
import queue
import threading
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass

import numpy as np
import soundfile

from tasks.audio.decode import (
    AudioError,
    AudioErrorKind,
    AudioHeader,
    DecodedAudio,
    check_size,
    decode_blocks,
    decode_opened,
    decode_pcm_wav,
    open_audio,
)
from tasks.audio.windows import WindowCutter, Windows, segment_spans
from tasks.model.allocator import give_back_freed_memory
from tasks.model.constants import EMBEDDING_SIZE, MODEL_SAMPLE_RATE, NUM_CLASSES
from tasks.model.embedder import (
    FileEmbedding,
    FileSegments,
    PannsEmbedder,
    WindowOutputs,
)
from tasks.storage.sources import AudioItem, AudioSource

#: Files up to this size are read into memory; larger ones are read from a file (bytes).
IN_MEMORY_MAX_BYTES = 64 << 20
#: Source bytes read ahead of the model beyond two files per reader thread (see ``prefetch``).
LOOKAHEAD_BYTES = 512 << 20
#: Decoded blocks of a long file waiting for the model (each STREAM_BLOCK_SECONDS of audio).
BLOCKS_AHEAD = 2


@dataclass(frozen=True)
class Prepared:
    """A file read, decoded and cut into windows, ready for the model."""

    item: AudioItem
    audio: DecodedAudio
    windows: Windows


@dataclass
class LongFile:
    """A file too long to decode whole: open, its header checked, to be streamed through the
    model (``embed_long_file``); ``resources`` closes the file."""

    item: AudioItem
    header: AudioHeader
    sound: soundfile.SoundFile
    resources: ExitStack


def prepare(item: AudioItem, source: AudioSource, embedder: PannsEmbedder) -> Prepared | LongFile:
    """Read, decode and window one item (or, for a long file, open it and check its header);
    raises ``AudioError`` for anything unusable.

    Runs in reader threads: when the embedder resamples on its device, the windows come back
    already there.
    """
    limits = embedder.limits
    resample = not embedder.resamples_on_device
    check_size(item.uri, item.size_bytes, limits)
    with ExitStack() as resources:
        try:
            if item.size_bytes <= IN_MEMORY_MAX_BYTES:
                data = source.read_bytes(item)
                # 16/24-bit PCM WAV straight from the bytes; anything else through libsndfile
                pcm = decode_pcm_wav(item.uri, data, limits, resample, limits.stream_above_seconds)
                if pcm is not None:
                    return Prepared(item, pcm, embedder.windows_of(pcm))
                file = io.BytesIO(data)
            else:
                file = resources.enter_context(source.open_file(item))
        except OSError as error:
            raise AudioError(
                item.uri, AudioErrorKind.UNREADABLE, f"cannot read ({error})"
            ) from None
        sound, header = open_audio(item.uri, file, limits)
        resources.callback(sound.close)
        if header.duration_seconds > limits.stream_above_seconds:
            return LongFile(item, header, sound, resources.pop_all())
        audio = decode_opened(item.uri, sound, header, limits, resample)
    return Prepared(item, audio, embedder.windows_of(audio))


def prefetch(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int,
) -> Iterator[tuple[AudioItem, Prepared | LongFile | AudioError]]:
    """Prepare items in ``workers`` threads, in order.

    Downloads and decoding overlap with the caller's forward passes. The look-ahead is two
    batches of files (a reader that stops after a few files leaves a GPU's batch of 256 waiting
    for the host), at least two files per thread, and at most ``LOOKAHEAD_BYTES`` of source
    files beyond those: memory stays bounded whatever the number or length of the items.
    """
    most_files = max(2 * workers, 2 * embedder.batch_size)
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        in_flight: deque[tuple[AudioItem, Future[Prepared | LongFile]]] = deque()
        in_flight_bytes = 0
        upcoming = iter(jobs)
        next_job = next(upcoming, None)

        def has_room() -> bool:
            if next_job is None or len(in_flight) >= most_files:
                return False
            return (
                len(in_flight) < 2 * workers
                or in_flight_bytes + next_job[0].size_bytes <= LOOKAHEAD_BYTES
            )

        while True:
            while has_room():
                item, source = next_job
                in_flight.append((item, pool.submit(prepare, item, source, embedder)))
                in_flight_bytes += item.size_bytes
                next_job = next(upcoming, None)
            if not in_flight:
                return
            item, future = in_flight.popleft()
            in_flight_bytes -= item.size_bytes
            try:
                outcome: Prepared | LongFile | AudioError = future.result()
            except AudioError as error:
                outcome = error
            yield item, outcome


@dataclass(frozen=True)
class Embedded:
    """A prepared file and its embedding."""

    prepared: Prepared
    result: FileEmbedding


@dataclass
class _Waiting:
    """A prepared file whose windows are going through batches."""

    prepared: Prepared
    outputs: WindowOutputs | None = None  # set once its first windows are embedded
    batched: int = 0  # windows already embedded

    @property
    def unbatched(self) -> int:
        return self.prepared.windows.count - self.batched


def embed_items(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int = 2,
) -> Iterator[tuple[AudioItem, Embedded | AudioError]]:
    """Embed items (each read from its source), streaming; files come out in order, failures
    as soon as they are known.

    Files are read and decoded by ``workers`` threads while the model runs on earlier ones.
    Windows of consecutive files are packed into full batches of ``batch_size`` (a file may span
    two batches), so only the stream's last batch (and one before each long file) can be short.
    Memory held: the look-ahead, plus under one batch of windows and the files they belong to;
    a long file's outputs, never its audio.
    """
    waiting: deque[_Waiting] = deque()
    unbatched = 0
    for item, outcome in prefetch(jobs, embedder, workers):
        if isinstance(outcome, AudioError):
            yield item, outcome
            continue
        if isinstance(outcome, LongFile):  # the files before it first, in order
            while unbatched:
                unbatched -= _embed_next_batch(waiting, embedder)
            yield from _finished(waiting, embedder)
            yield item, embed_long_file(outcome, embedder)
            continue
        waiting.append(_Waiting(outcome))
        unbatched += outcome.windows.count
        while unbatched >= embedder.batch_size:
            unbatched -= _embed_next_batch(waiting, embedder)
            yield from _finished(waiting, embedder)
    while unbatched:
        unbatched -= _embed_next_batch(waiting, embedder)
    yield from _finished(waiting, embedder)


def _embed_next_batch(waiting: deque[_Waiting], embedder: PannsEmbedder) -> int:
    """One forward pass over the next (up to) ``batch_size`` windows; returns how many."""
    parts: list[tuple[_Waiting, int, int]] = []  # (file, first window, window count)
    room = embedder.batch_size
    for entry in waiting:
        take = min(room, entry.unbatched)
        if take:
            parts.append((entry, entry.batched, take))
            room -= take
        if not room:
            break
    outputs = embedder.embed_window_parts(
        [entry.prepared.windows.audio[first : first + take] for entry, first, take in parts]
    )
    segments = embedder.limits.segments_per_window
    offset = 0
    for entry, first, take in parts:
        if take == entry.prepared.windows.count:  # the whole file: its slice of this batch
            entry.outputs = outputs[offset : offset + take]
        else:  # a file across batches is assembled in arrays of its own
            if entry.outputs is None:
                entry.outputs = WindowOutputs.empty(entry.prepared.windows.count, segments)
            entry.outputs.fill(first, outputs[offset : offset + take])
        entry.batched += take
        offset += take
    return offset


def _finished(
    waiting: deque[_Waiting], embedder: PannsEmbedder
) -> Iterator[tuple[AudioItem, Embedded]]:
    # Batches take windows front to back, so files finish in order.
    while waiting and not waiting[0].unbatched:
        entry = waiting.popleft()
        windows = entry.prepared.windows
        result = FileEmbedding.of_windows(entry.outputs, windows, embedder.limits)
        yield entry.prepared.item, Embedded(entry.prepared, result)


def embed_long_file(long: LongFile, embedder: PannsEmbedder) -> Embedded | AudioError:
    """Stream a long file through the model: blocks decoded in a thread, windows cut as they
    complete (the same windows as decoding it whole), batches of ``batch_size``.

    Memory holds a few blocks and one batch of audio, each window's embedding and probabilities,
    and the segments kept from each batch as it comes back (not every window's segments: with
    overlapping or moved-back windows some are never kept).
    """
    limits = embedder.limits
    cutter = WindowCutter(limits)
    expected_windows = _expected_windows(long.header, cutter)
    window_embeddings = _Rows(expected_windows, EMBEDDING_SIZE)
    window_probabilities = _Rows(expected_windows, NUM_CLASSES)
    expected_segments = math.ceil(long.header.duration_seconds / limits.segment_seconds) + 2
    segment_embeddings = _Rows(expected_segments, EMBEDDING_SIZE)
    segment_probabilities = _Rows(expected_segments, NUM_CLASSES)
    window_starts: list[float] = []
    segment_starts: list[float] = []
    segment_ends: list[float] = []
    batch: list[tuple[int, np.ndarray]] = []

    def run(windows: list[tuple[int, np.ndarray]], last: bool = False) -> None:
        batch.extend(windows)
        if not batch or (not last and len(batch) < embedder.batch_size):
            return
        outputs = embedder.embed_window_parts([window[np.newaxis] for _, window in batch])
        starts = np.asarray([start for start, _ in batch], np.float64) / MODEL_SAMPLE_RATE
        # every window of this batch lies within the audio decoded so far
        cut = Windows(
            np.empty((len(batch), 0), np.float32), starts, cutter.length / MODEL_SAMPLE_RATE
        )
        spans = segment_spans(cut, limits, segment_ends[-1] if segment_ends else 0.0)
        kept = FileSegments.kept(outputs, spans, limits)
        window_embeddings.append(outputs.embeddings)
        window_probabilities.append(outputs.probabilities)
        segment_embeddings.append(kept.embeddings)
        segment_probabilities.append(kept.probabilities)
        window_starts.extend(starts)
        segment_starts.extend(kept.start_seconds)
        segment_ends.extend(kept.end_seconds)
        batch.clear()
        # A long file allocates and frees batches of windows and decoded blocks over and over,
        # from two threads, and glibc otherwise keeps much of that memory: a 3 h file peaked
        # 148 MB above the baseline with this (one call a batch) against 283 and 343 MB without
        # (benchmarks/long_file.py).
        give_back_freed_memory()

    try:
        with long.resources:
            for block in _ahead(decode_blocks(long.item.uri, long.sound, limits), BLOCKS_AHEAD):
                run(cutter.feed(block))
            run(cutter.finish(), last=True)
    except AudioError as error:
        return error
    count = len(window_starts)
    # the windows went through the model as they were cut: their audio is gone, their count and
    # starts remain
    windows = Windows(
        np.empty((count, 0), np.float32),
        np.asarray(window_starts),
        cutter.length / MODEL_SAMPLE_RATE,
    )
    header = long.header
    audio = DecodedAudio(
        np.empty(0, np.float32),
        MODEL_SAMPLE_RATE,
        header.sample_rate,
        header.channels,
        header.duration_seconds,
    )
    result = FileEmbedding.of_parts(
        window_embeddings.rows,
        window_probabilities.rows,
        windows.start_seconds,
        FileSegments(
            np.asarray(segment_starts),
            np.asarray(segment_ends),
            segment_embeddings.rows,
            segment_probabilities.rows,
            limits.segment_seconds,
        ),
    )
    return Embedded(Prepared(long.item, audio, windows), result)


class _Rows:
    """float32 rows appended batch by batch into an array sized up front (from the header),
    grown only if the file holds more than its header promised."""

    def __init__(self, capacity: int, width: int) -> None:
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


def _expected_windows(header: AudioHeader, cutter: WindowCutter) -> int:
    """Windows a file of this header gives (one more for rounding in the resampler)."""
    length = math.ceil(header.frames * MODEL_SAMPLE_RATE / header.sample_rate)
    if length <= cutter.window:
        return 1
    return (length - cutter.window) // cutter.hop + 3


def _ahead(blocks: Iterator[np.ndarray], depth: int) -> Iterator[np.ndarray]:
    """Run ``blocks`` in a thread, at most ``depth`` blocks ahead of the caller (decoding one
    long file overlaps with its forward passes); its exceptions are raised here."""
    ready: queue.Queue[tuple[str, object]] = queue.Queue(maxsize=depth)
    stop = threading.Event()

    def put(kind: str, value: object) -> None:
        while not stop.is_set():
            try:
                ready.put((kind, value), timeout=0.1)
                return
            except queue.Full:
                continue

    def produce() -> None:
        try:
            for block in blocks:
                put("block", block)
                if stop.is_set():
                    return
            put("end", None)
        except BaseException as error:  # handed to the caller's thread
            put("error", error)

    thread = threading.Thread(target=produce, name="decode-long-file", daemon=True)
    thread.start()
    try:
        while True:
            kind, value = ready.get()
            if kind == "end":
                return
            if kind == "error":
                raise value  # type: ignore[misc]
            yield value  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
