"""One shard of an ingest: embed its files through the streaming path and turn the results into
snapshot rows and segment rows; bad files become ``Failure`` records, never exceptions."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa

from tasks.audio.errors import AudioError
from tasks.ingest.stream import Embedded, embed_items
from tasks.model.constants import EMBEDDING_METHOD, EMBEDDING_SIZE
from tasks.model.embedder import PannsEmbedder
from tasks.model.file_vectors import FileEmbedding
from tasks.model.tags import top_tags_of_rows
from tasks.storage.quarantine import Failure
from tasks.storage.segments import SEGMENTS_SCHEMA, encode_vectors, segment_key
from tasks.storage.snapshots import SNAPSHOT_SCHEMA, TAG_SCORES_COLUMN, TAGS_COLUMN
from tasks.storage.sources import AudioItem, AudioSource

#: AudioSet tags kept per segment (a second rarely holds more than a few sounds).
SEGMENT_TAGS = 3


@dataclass
class ShardResult:
    """Snapshot rows and segment rows for the files that embedded, and failures for those that
    did not."""

    rows: pa.Table
    segments: pa.Table = field(default_factory=SEGMENTS_SCHEMA.empty_table)
    failures: list[Failure] = field(default_factory=list)


@dataclass(frozen=True)
class EmbeddedFile:
    """What an embedded file's rows need, without its audio: the audio must not outlive the
    file (a group of 256 ten-second files would hold over 600 MB of samples and pieces)."""

    item: AudioItem
    duration_seconds: float
    sample_rate: int  # the file's own (Hz)
    channels: int
    num_windows: int
    result: FileEmbedding

    @classmethod
    def of(cls, embedded: Embedded) -> EmbeddedFile:
        audio = embedded.audio
        return cls(
            embedded.item,
            audio.duration_seconds,
            audio.original_sample_rate,
            audio.channels,
            len(embedded.result.window_embeddings),
            embedded.result,
        )


#: Files whose snapshot and segment rows are built as one table: per file, building rows cost
#: ~1 ms of the main thread (a small Arrow table, a label sort), more than a GPU takes to embed
#: the file; a group bounds the segment arrays held at once.
ROW_TABLE_FILES = 256


def embed_shard(
    items: Sequence[AudioItem],
    source: AudioSource,
    embedder: PannsEmbedder,
    run_id: str,
    top_tag_count: int = 5,
    workers: int = 2,
    files_per_row_table: int = ROW_TABLE_FILES,
) -> ShardResult:
    """Embed ``items`` (a file's vector, its windows' and its segments'), their rows built for
    ``files_per_row_table`` files at a time (tags ranked for the group at once)."""
    failures: list[Failure] = []
    row_tables: list[pa.Table] = []
    segment_tables: list[pa.Table] = []
    pending: list[EmbeddedFile] = []

    def build_rows() -> None:
        row_tables.append(snapshot_rows(pending, embedder, run_id, top_tag_count))
        segment_tables.append(segment_rows(pending, run_id))
        pending.clear()

    for item, outcome in embed_items([(i, source) for i in items], embedder, workers):
        if isinstance(outcome, AudioError):
            failures.append(Failure(item, str(outcome.kind), str(outcome), outcome.retryable))
            continue
        pending.append(EmbeddedFile.of(outcome))
        if len(pending) >= files_per_row_table:
            build_rows()
    if pending:
        build_rows()
    return ShardResult(
        pa.concat_tables(row_tables) if row_tables else SNAPSHOT_SCHEMA.empty_table(),
        pa.concat_tables(segment_tables) if segment_tables else SEGMENTS_SCHEMA.empty_table(),
        failures,
    )


def snapshot_rows(
    files: Sequence[EmbeddedFile], embedder: PannsEmbedder, run_id: str, top_tag_count: int
) -> pa.Table:
    """The snapshot rows of embedded files (see ``SNAPSHOT_SCHEMA``), in the order given."""
    tags, scores = top_tags_of_rows(
        np.stack([file.result.probabilities for file in files]), top_tag_count
    )
    items = [file.item for file in files]
    return pa.table(
        {
            "key": [item.key for item in items],
            "key_prefix": pa.nulls(len(items), pa.string()),
            "source_uri": [item.uri for item in items],
            "path": [item.path for item in items],
            "etag": [item.etag for item in items],
            "size_bytes": [item.size_bytes for item in items],
            "last_modified": [item.last_modified for item in items],
            "metadata": [sorted(item.metadata.items()) for item in items],
            "duration_seconds": [file.duration_seconds for file in files],
            "sample_rate": [file.sample_rate for file in files],
            "channels": [file.channels for file in files],
            "num_windows": [file.num_windows for file in files],
            "num_segments": [len(file.result.segments.start_seconds) for file in files],
            "embedding": pa.ListArray.from_arrays(
                np.arange(len(files) + 1, dtype=np.int32) * np.int32(EMBEDDING_SIZE),
                np.stack([file.result.embedding for file in files], dtype=np.float32).ravel(),
            ),
            TAGS_COLUMN: tags,
            TAG_SCORES_COLUMN: scores,
            "model": [embedder.model_name] * len(files),
            "checkpoint_sha256": [embedder.checkpoint_sha256] * len(files),
            "embedding_method": [EMBEDDING_METHOD] * len(files),
            "run_id": [run_id] * len(files),
            "ingested_at": [datetime.now(UTC)] * len(files),
        },
        schema=SNAPSHOT_SCHEMA,
    )


def segment_rows(files: Sequence[EmbeddedFile], run_id: str) -> pa.Table:
    """The segment rows of embedded files (see ``SEGMENTS_SCHEMA``): each file's in time order,
    files in the order given."""
    segments = [file.result.segments for file in files]
    counts = [len(part.start_seconds) for part in segments]
    total = sum(counts)
    if not total:
        return SEGMENTS_SCHEMA.empty_table()

    def per_segment(values: list) -> list:
        return [value for value, count in zip(values, counts, strict=True) for _ in range(count)]

    items = [file.item for file in files]
    tags, scores = top_tags_of_rows(
        np.concatenate([part.probabilities for part in segments]), SEGMENT_TAGS
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
            "start_seconds": np.concatenate([part.start_seconds for part in segments]).astype(
                np.float64
            ),
            "end_seconds": np.concatenate([part.end_seconds for part in segments]).astype(
                np.float64
            ),
            "segment_seconds": pa.array(
                per_segment([part.segment_seconds for part in segments]), pa.float64()
            ),
            "embedding": encode_vectors(np.concatenate([part.embeddings for part in segments])),
            TAGS_COLUMN: tags,
            TAG_SCORES_COLUMN: scores,
            "run_id": pa.array([run_id] * total, pa.string()),
            "ingested_at": pa.array(
                [datetime.now(UTC)] * total, SEGMENTS_SCHEMA.field("ingested_at").type
            ),
        },
        schema=SEGMENTS_SCHEMA,
    )
