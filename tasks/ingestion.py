"""One shard of an ingest: read, decode and window files, embed them in shared batches, and
turn the results into snapshot rows; bad files become ``Failure`` records, never exceptions.
"""

from __future__ import annotations

import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from tasks.audio import AudioError, AudioErrorKind, DecodedAudio, Windows, check_size, cut_windows
from tasks.audio import decode as decode_audio
from tasks.embedding import FileEmbedding, PannsEmbedder, audioset_labels
from tasks.snapshots import SNAPSHOT_SCHEMA, Failure
from tasks.sources import AudioItem, AudioSource

# Windows held before a forward pass is forced: bounds a shard's memory (~1.3 MB per 10 s window)
# while still letting windows from several files share a batch.
MAX_PENDING_WINDOWS = 64


@dataclass
class ShardResult:
    """Snapshot rows for the files that embedded, and failures for those that did not."""

    rows: pa.Table
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class _Prepared:
    item: AudioItem
    audio: DecodedAudio
    windows: Windows


def new_run_id() -> str:
    """A unique id for an ingest run (used when not running inside Prefect)."""
    return uuid.uuid4().hex


def prepare(item: AudioItem, source: AudioSource, embedder: PannsEmbedder) -> _Prepared:
    """Read, decode and window one item; raises ``AudioError`` for anything unusable."""
    limits = embedder.limits
    check_size(item.uri, item.size_bytes, limits)
    try:
        data = source.read_bytes(item)
    except OSError as error:
        raise AudioError(item.uri, AudioErrorKind.UNREADABLE, f"cannot read ({error})") from None
    audio = decode_audio(item.uri, data, limits)
    return _Prepared(item, audio, cut_windows(audio.samples, limits))


def prefetch(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int,
) -> Iterator[tuple[AudioItem, _Prepared | AudioError]]:
    """Prepare items in ``workers`` threads, in order, at most 2 x workers in flight.

    Downloads and decoding overlap with the caller's forward passes, and memory stays bounded
    by the look-ahead whatever the number of items.
    """
    with ThreadPoolExecutor(max_workers=workers, thread_name_prefix="prepare") as pool:
        in_flight: deque[tuple[AudioItem, Future[_Prepared]]] = deque()
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

    prepared: _Prepared
    result: FileEmbedding


def embed_items(
    jobs: Sequence[tuple[AudioItem, AudioSource]],
    embedder: PannsEmbedder,
    workers: int = 2,
) -> Iterator[tuple[AudioItem, Embedded | AudioError]]:
    """Embed items (each read from its source), in order, streaming.

    Files are read and decoded by ``workers`` threads while the model runs on earlier ones, and
    windows of several files share each batch (at most ``MAX_PENDING_WINDOWS`` held).
    """
    pending: list[_Prepared] = []

    def flush() -> Iterator[tuple[AudioItem, Embedded]]:
        results = embedder.embed_files([p.windows for p in pending])
        done = [(p.item, Embedded(p, r)) for p, r in zip(pending, results, strict=True)]
        pending.clear()
        return iter(done)

    for item, outcome in prefetch(jobs, embedder, workers):
        if isinstance(outcome, AudioError):
            yield item, outcome
            continue
        pending.append(outcome)
        if sum(p.windows.count for p in pending) >= MAX_PENDING_WINDOWS:
            yield from flush()
    if pending:
        yield from flush()


def embed_shard(
    items: Sequence[AudioItem],
    source: AudioSource,
    embedder: PannsEmbedder,
    run_id: str,
    top_labels: int = 5,
    workers: int = 2,
) -> ShardResult:
    """Embed ``items``; each file's embedding is the mean of its window embeddings."""
    failures: list[Failure] = []
    rows: list[dict] = []
    for item, outcome in embed_items([(i, source) for i in items], embedder, workers):
        if isinstance(outcome, AudioError):
            failures.append(Failure(item, str(outcome.kind), str(outcome), outcome.retryable))
        else:
            rows.append(_row(outcome.prepared, outcome.result, embedder, run_id, top_labels))
    return ShardResult(pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA), failures)


def top_labels_of(probabilities: np.ndarray, count: int) -> tuple[list[str], list[float]]:
    """The ``count`` most probable AudioSet labels, best first, with their probabilities."""
    if count == 0:
        return [], []
    names = audioset_labels().names
    best = np.argsort(probabilities)[::-1][:count]
    return [names[i] for i in best], [float(probabilities[i]) for i in best]


def _row(
    prepared: _Prepared,
    result: FileEmbedding,
    embedder: PannsEmbedder,
    run_id: str,
    top_labels: int,
) -> dict:
    item, audio = prepared.item, prepared.audio
    labels, scores = top_labels_of(result.probabilities, top_labels)
    return {
        "key": item.key,
        "source_uri": item.uri,
        "path": item.path,
        "etag": item.etag,
        "size_bytes": item.size_bytes,
        "last_modified": item.last_modified,
        "metadata": sorted(item.metadata.items()),
        "duration_seconds": audio.duration_seconds,
        "sample_rate": audio.original_sample_rate,
        "channels": audio.channels,
        "num_windows": prepared.windows.count,
        "embedding": result.embedding.astype(np.float32),
        "labels": labels,
        "label_scores": scores,
        "model": embedder.model_name,
        "checkpoint_sha256": embedder.checkpoint_sha256,
        "run_id": run_id,
        "ingested_at": datetime.now(UTC),
    }
