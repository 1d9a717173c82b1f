"""One shard of an ingest: embed its files through the streaming path and turn the results into
snapshot rows and segment rows; bad files become ``Failure`` records, never exceptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from tasks.audio.decode import AudioError
from tasks.ingest.stream import Embedded, embed_items
from tasks.model.embedder import FileSegments, PannsEmbedder
from tasks.model.labels import top_labels, top_labels_of_rows
from tasks.storage.quarantine import Failure
from tasks.storage.segments import SEGMENTS_SCHEMA, encode_vectors, segment_key
from tasks.storage.snapshots import SNAPSHOT_SCHEMA
from tasks.storage.sources import AudioItem, AudioSource

#: AudioSet labels kept per segment (a second rarely holds more than a few sounds).
SEGMENT_LABELS = 3


@dataclass
class ShardResult:
    """Snapshot rows and segment rows for the files that embedded, and failures for those that
    did not."""

    rows: pa.Table
    segments: pa.Table = field(default_factory=SEGMENTS_SCHEMA.empty_table)
    failures: list[Failure] = field(default_factory=list)


#: Files whose segment rows are built as one table (bounds the segment arrays held at once).
SEGMENT_TABLE_FILES = 256


def embed_shard(
    items: Sequence[AudioItem],
    source: AudioSource,
    embedder: PannsEmbedder,
    run_id: str,
    top_label_count: int = 5,
    workers: int = 2,
) -> ShardResult:
    """Embed ``items``; each file's embedding is the mean of its window embeddings.

    Segment rows are built for groups of files at once: per file, building a small Arrow table
    cost ~1 ms of the main thread, more than a GPU takes to embed the file.
    """
    failures: list[Failure] = []
    rows: list[dict] = []
    segment_tables: list[pa.Table] = []
    pending: list[tuple[AudioItem, FileSegments]] = []
    for item, outcome in embed_items([(i, source) for i in items], embedder, workers):
        if isinstance(outcome, AudioError):
            failures.append(Failure(item, str(outcome.kind), str(outcome), outcome.retryable))
            continue
        rows.append(snapshot_row(outcome, embedder, run_id, top_label_count))
        pending.append((item, outcome.result.segments))
        if len(pending) >= SEGMENT_TABLE_FILES:
            segment_tables.append(segment_rows(pending, run_id))
            pending = []
    if pending:
        segment_tables.append(segment_rows(pending, run_id))
    return ShardResult(
        pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA),
        pa.concat_tables(segment_tables) if segment_tables else SEGMENTS_SCHEMA.empty_table(),
        failures,
    )


def snapshot_row(
    embedded: Embedded, embedder: PannsEmbedder, run_id: str, top_label_count: int
) -> dict:
    """The snapshot row of an embedded file (see ``SNAPSHOT_SCHEMA``)."""
    item, audio, result = embedded.prepared.item, embedded.prepared.audio, embedded.result
    labels, scores = top_labels(result.probabilities, top_label_count)
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
        "num_windows": embedded.prepared.windows.count,
        "num_segments": len(embedded.result.segments.start_seconds),
        "embedding": result.embedding.astype(np.float32),
        "labels": labels,
        "label_scores": scores,
        "model": embedder.model_name,
        "checkpoint_sha256": embedder.checkpoint_sha256,
        "run_id": run_id,
        "ingested_at": datetime.now(UTC),
    }


def segment_rows(files: Sequence[tuple[AudioItem, FileSegments]], run_id: str) -> pa.Table:
    """The segment rows of embedded files (see ``SEGMENTS_SCHEMA``): each file's in time order,
    files in the order given."""
    counts = [len(segments.start_seconds) for _, segments in files]
    total = sum(counts)
    if not total:
        return SEGMENTS_SCHEMA.empty_table()

    def per_segment(values: list) -> list:
        return [value for value, count in zip(values, counts, strict=True) for _ in range(count)]

    items = [item for item, _ in files]
    labels, scores = top_labels_of_rows(
        np.concatenate([segments.probabilities for _, segments in files]), SEGMENT_LABELS
    )
    return pa.table(
        {
            "key": [
                segment_key(item.key, i)
                for item, count in zip(items, counts, strict=True)
                for i in range(count)
            ],
            "key_prefix": pa.nulls(total, pa.string()),
            "file_key": per_segment([item.key for item in items]),
            "source_uri": per_segment([item.uri for item in items]),
            "path": per_segment([item.path for item in items]),
            "etag": per_segment([item.etag for item in items]),
            "segment_index": pa.array(
                np.concatenate([np.arange(count, dtype=np.int32) for count in counts])
            ),
            "start_seconds": np.concatenate(
                [segments.start_seconds for _, segments in files]
            ).astype(np.float64),
            "end_seconds": np.concatenate([segments.end_seconds for _, segments in files]).astype(
                np.float64
            ),
            "segment_seconds": pa.array(
                per_segment([segments.segment_seconds for _, segments in files]), pa.float64()
            ),
            "embedding": encode_vectors(
                np.concatenate([segments.embeddings for _, segments in files])
            ),
            "labels": labels,
            "label_scores": scores,
            "run_id": pa.array([run_id] * total, pa.string()),
            "ingested_at": pa.array(
                [datetime.now(UTC)] * total, SEGMENTS_SCHEMA.field("ingested_at").type
            ),
        },
        schema=SEGMENTS_SCHEMA,
    )
