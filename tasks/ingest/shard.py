"""One shard of an ingest: embed its files through the streaming path and turn the results into
snapshot rows; bad files become ``Failure`` records, never exceptions."""

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
from tasks.storage.snapshots import SNAPSHOT_SCHEMA
from tasks.storage.sources import AudioItem, AudioSource


@dataclass
class ShardResult:
    """Snapshot rows for the files that embedded, and failures for those that did not."""

    rows: pa.Table
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
    for item, outcome in embed_items([(i, source) for i in items], embedder, workers):
        if isinstance(outcome, AudioError):
            failures.append(Failure(item, str(outcome.kind), str(outcome), outcome.retryable))
        else:
            rows.append(snapshot_row(outcome, embedder, run_id, top_label_count))
    return ShardResult(pa.Table.from_pylist(rows, schema=SNAPSHOT_SCHEMA), failures)


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
        "embedding": result.embedding.astype(np.float32),
        "labels": labels,
        "label_scores": scores,
        "model": embedder.model_name,
        "checkpoint_sha256": embedder.checkpoint_sha256,
        "run_id": run_id,
        "ingested_at": datetime.now(UTC),
    }
