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
from tasks.model.embedder import PannsEmbedder
from tasks.model.labels import top_labels
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


def embed_shard(
    items: Sequence[AudioItem],
    source: AudioSource,
    embedder: PannsEmbedder,
    run_id: str,
    top_label_count: int = 5,
    workers: int = 2,
) -> ShardResult:
    """Embed ``items``; each file's embedding is the mean of its window embeddings."""
    failures: list[Failure] = []
    rows: list[dict] = []
    segments: list[pa.Table] = []
    for item, outcome in embed_items([(i, source) for i in items], embedder, workers):
        if isinstance(outcome, AudioError):
            failures.append(Failure(item, str(outcome.kind), str(outcome), outcome.retryable))
        else:
            rows.append(snapshot_row(outcome, embedder, run_id, top_label_count))
            segments.append(segment_rows(outcome, run_id))
    return ShardResult(
        pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA),
        pa.concat_tables(segments) if segments else SEGMENTS_SCHEMA.empty_table(),
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


def segment_rows(embedded: Embedded, run_id: str) -> pa.Table:
    """The segment rows of an embedded file (see ``SEGMENTS_SCHEMA``), in time order."""
    item, segments = embedded.prepared.item, embedded.result.segments
    count = len(segments.start_seconds)
    labelled = [top_labels(p, SEGMENT_LABELS) for p in segments.probabilities]
    return pa.table(
        {
            "key": [segment_key(item.key, i) for i in range(count)],
            "key_prefix": pa.nulls(count, pa.string()),
            "file_key": [item.key] * count,
            "source_uri": [item.uri] * count,
            "path": [item.path] * count,
            "etag": [item.etag] * count,
            "segment_index": pa.array(range(count), pa.int32()),
            "start_seconds": segments.start_seconds.astype(np.float64),
            "end_seconds": segments.end_seconds.astype(np.float64),
            "segment_seconds": pa.array([segments.segment_seconds] * count, pa.float64()),
            "embedding": encode_vectors(segments.embeddings),
            "labels": [labels for labels, _ in labelled],
            "label_scores": [scores for _, scores in labelled],
            "run_id": [run_id] * count,
            "ingested_at": pa.array(
                [datetime.now(UTC)] * count, SEGMENTS_SCHEMA.field("ingested_at").type
            ),
        },
        schema=SEGMENTS_SCHEMA,
    )
