"""The streaming embed path: read and decode files ahead of the model in threads, pack windows of
consecutive files into full batches, and hand each file's result back in order. Unusable files
come back as ``AudioError`` values, never exceptions. Ingest shards and ``anomaly evaluate`` use it.

Long files (over ``stream_above_seconds``) never sit in memory whole: they are read from a file
(a blob is downloaded to a temporary file), decoded block by block in a thread, and their windows
go through the model as they are cut, in batches of their own. Either way a file's frames are
the whole file's (tasks.audio.pieces).
"""

from __future__ import annotations

import io
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
    AudioHeader,
    DecodedAudio,
    check_size,
    decode_blocks,
    decode_opened,
    decode_pcm_wav,
    open_audio,
)
from tasks.audio.errors import AudioError, AudioErrorKind
from tasks.audio.pieces import PieceCutter, Pieces
from tasks.model.allocator import give_back_freed_memory
from tasks.model.constants import MODEL_SAMPLE_RATE
from tasks.model.embedder import PannsEmbedder
from tasks.model.file_vectors import FileEmbedding, FileFrames
from tasks.storage.sources import AudioItem, AudioSource

#: Files up to this size are read into memory; larger ones are read from a file (bytes).
IN_MEMORY_MAX_BYTES = 64 << 20
#: Source bytes read ahead of the model beyond two files per reader thread (see ``prefetch``).
LOOKAHEAD_BYTES = 512 << 20
#: Decoded blocks of a long file waiting for the model (each STREAM_BLOCK_SECONDS of audio).
BLOCKS_AHEAD = 2


@dataclass(frozen=True)
class Prepared:
    """A file read, decoded and cut into pieces, ready for the model."""

    item: AudioItem
    audio: DecodedAudio
    pieces: Pieces


@dataclass
class LongFile:
    """A file too long to decode whole: open, its header checked, to be streamed through the
    model (``embed_long_file``); ``resources`` closes the file."""

    item: AudioItem
    header: AudioHeader
    sound: soundfile.SoundFile
    resources: ExitStack


def prepare(item: AudioItem, source: AudioSource, embedder: PannsEmbedder) -> Prepared | LongFile:
    """Read, decode and cut one item (or, for a long file, open it and check its header);
    raises ``AudioError`` for anything unusable.

    Runs in reader threads: when the embedder resamples on its device, the pieces come back
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
                    return Prepared(item, pcm, embedder.pieces_of(pcm))
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
    return Prepared(item, audio, embedder.pieces_of(audio))


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
    """An embedded file: its item, its decoded audio (for a streamed long file, the header's
    facts without samples) and its embedding."""

    item: AudioItem
    audio: DecodedAudio
    result: FileEmbedding


@dataclass
class _Waiting:
    """A prepared file whose pieces are going through batches."""

    prepared: Prepared
    frames: FileFrames
    batched: int = 0  # pieces already embedded

    @property
    def unbatched(self) -> int:
        return self.prepared.pieces.count - self.batched


def embed_items(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int = 2,
) -> Iterator[tuple[AudioItem, Embedded | AudioError]]:
    """Embed items (each read from its source), streaming; files come out in order, failures
    as soon as they are known.

    Files are read and decoded by ``workers`` threads while the model runs on earlier ones.
    Pieces of consecutive files are packed into full batches of ``batch_size`` (a file may span
    two batches), so only the stream's last batch (and one before each long file) can be short.
    Memory held: the look-ahead, plus under one batch of pieces and the files they belong to;
    a long file's vectors, never its audio.
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
            yield from _finished(waiting)
            yield item, embed_long_file(outcome, embedder)
            continue
        frames = embedder.file_frames(outcome.pieces.length)
        waiting.append(_Waiting(outcome, frames))
        unbatched += outcome.pieces.count
        while unbatched >= embedder.batch_size:
            unbatched -= _embed_next_batch(waiting, embedder)
            yield from _finished(waiting)
    while unbatched:
        unbatched -= _embed_next_batch(waiting, embedder)
    yield from _finished(waiting)


def _embed_next_batch(waiting: deque[_Waiting], embedder: PannsEmbedder) -> int:
    """One forward pass over the next (up to) ``batch_size`` pieces; returns how many."""
    batch = []
    for entry in waiting:
        take = min(embedder.batch_size - len(batch), entry.unbatched)
        pieces = entry.prepared.pieces
        batch.extend((entry.frames, pieces.piece(entry.batched + i)) for i in range(take))
        entry.batched += take
        if len(batch) == embedder.batch_size:
            break
    embedder.run_pieces(batch)
    return len(batch)


def _finished(waiting: deque[_Waiting]) -> Iterator[tuple[AudioItem, Embedded]]:
    # Batches take pieces front to back, so files finish in order.
    while waiting and not waiting[0].unbatched:
        entry = waiting.popleft()
        prepared = entry.prepared
        yield prepared.item, Embedded(prepared.item, prepared.audio, entry.frames.finish())


def embed_long_file(long: LongFile, embedder: PannsEmbedder) -> Embedded | AudioError:
    """Stream a long file through the model: blocks decoded in a thread, pieces cut as they
    complete (the same frames as decoding it whole), batches of ``batch_size``.

    Memory holds a few blocks and one batch of audio, the frames of about one window, and the
    file's segment and window vectors.
    """
    cutter = PieceCutter(embedder.limits)
    frames = embedder.file_frames(None)
    batch = []

    def run(pieces: list, last: bool = False) -> None:
        batch.extend((frames, piece) for piece in pieces)
        while len(batch) >= embedder.batch_size or (last and batch):
            frames.settle(cutter.length)  # the spans these pieces' frames complete are known
            embedder.run_pieces(batch[: embedder.batch_size])
            del batch[: embedder.batch_size]
            # A long file allocates and frees batches of pieces and decoded blocks over and
            # over, from two threads, and glibc otherwise keeps much of that memory: a 3 h file
            # peaked 148 MB above the baseline with this (one call a batch) against 283 and
            # 343 MB without (benchmarks/long_file.py).
            give_back_freed_memory()

    try:
        with long.resources:
            for block in _ahead(
                decode_blocks(long.item.uri, long.sound, embedder.limits), BLOCKS_AHEAD
            ):
                run(cutter.feed(block))
            run(cutter.finish(), last=True)
    except AudioError as error:
        return error
    header = long.header
    audio = DecodedAudio(
        np.empty(0, np.float32),
        MODEL_SAMPLE_RATE,
        header.sample_rate,
        header.channels,
        header.duration_seconds,
    )
    return Embedded(long.item, audio, frames.finish(cutter.length))


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
