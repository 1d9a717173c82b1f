"""The streaming embed path: read and decode files ahead of the model in threads, pack windows of
consecutive files into full batches, and hand each file's result back in order. Unusable files
come back as ``AudioError`` values, never exceptions. Ingest shards and ``anomaly evaluate`` use it.
"""

from __future__ import annotations

from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass

from tasks.audio.decode import AudioError, AudioErrorKind, DecodedAudio, check_size
from tasks.audio.windows import Windows
from tasks.model.embedder import FileEmbedding, PannsEmbedder, WindowOutputs, concatenate
from tasks.storage.sources import AudioItem, AudioSource


@dataclass(frozen=True)
class Prepared:
    """A file read, decoded and cut into windows, ready for the model."""

    item: AudioItem
    audio: DecodedAudio
    windows: Windows


def prepare(item: AudioItem, source: AudioSource, embedder: PannsEmbedder) -> Prepared:
    """Read, decode and window one item; raises ``AudioError`` for anything unusable.

    Runs in reader threads: when the embedder resamples on its device, the windows come back
    already there.
    """
    check_size(item.uri, item.size_bytes, embedder.limits)
    try:
        data = source.read_bytes(item)
    except OSError as error:
        raise AudioError(item.uri, AudioErrorKind.UNREADABLE, f"cannot read ({error})") from None
    audio = embedder.decode(item.uri, data)
    return Prepared(item, audio, embedder.windows_of(audio))


def prefetch(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int,
) -> Iterator[tuple[AudioItem, Prepared | AudioError]]:
    """Prepare items in ``workers`` threads, in order, at most 2 x workers in flight.

    Downloads and decoding overlap with the caller's forward passes, and memory stays bounded
    by the look-ahead whatever the number of items.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        in_flight: deque[tuple[AudioItem, Future[Prepared]]] = deque()
        upcoming = iter(jobs)

        def submit(job: tuple[AudioItem, AudioSource]) -> None:
            item, source = job
            in_flight.append((item, pool.submit(prepare, item, source, embedder)))

        for job in upcoming:
            submit(job)
            if len(in_flight) >= 2 * workers:
                break
        while in_flight:
            item, future = in_flight.popleft()
            next_job = next(upcoming, None)
            if next_job is not None:
                submit(next_job)
            try:
                yield item, future.result()
            except AudioError as error:
                yield item, error


@dataclass(frozen=True)
class Embedded:
    """A prepared file and its embedding."""

    prepared: Prepared
    result: FileEmbedding


@dataclass
class _Waiting:
    """A prepared file whose windows are going through batches."""

    prepared: Prepared
    outputs: WindowOutputs
    batched: int = 0  # windows already embedded

    @classmethod
    def of(cls, prepared: Prepared, segments: int) -> _Waiting:
        return cls(prepared, WindowOutputs.empty(prepared.windows.count, segments))

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
    two batches), so only the stream's last batch can be short. Memory held: the look-ahead,
    plus under one batch of windows and the files they belong to.
    """
    waiting: deque[_Waiting] = deque()
    unbatched = 0
    for item, outcome in prefetch(jobs, embedder, workers):
        if isinstance(outcome, AudioError):
            yield item, outcome
            continue
        waiting.append(_Waiting.of(outcome, embedder.limits.segments_per_window))
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
    batch = concatenate(
        [entry.prepared.windows.audio[first : first + take] for entry, first, take in parts]
    )
    outputs = embedder.embed_batch(batch)
    offset = 0
    for entry, first, take in parts:
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
