"""The segments table: one row per segment of every file in the snapshot (``segment_seconds``,
1 s by default), with its embedding and AudioSet tags, so that search can say where in a file a
sound is and anomaly scans can read what ingest computed instead of embedding again.

Versioned with the snapshot: each commit of an ingest writes the segments of its files first,
then their snapshot rows (a crash in between leaves segments ahead of a snapshot row whose etag
is old, and the next run re-embeds that file and rewrites them). A file that changed or
disappeared loses its old segments in the same commit.

Embeddings are stored as float16 (4 KB a segment instead of 8 KB; Delta has no float16 type,
so as 4,096 little-endian bytes; ``segment_vectors`` decodes them): against float32, the minimum
cosine over 210 segments was 0.9999999 and recall@10 among them 0.995, where uint8 with a scale
per vector gave 0.99999 and 0.965 (random-weight Cnn14, whose embeddings are nearly parallel:
the hardest case for ranking).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.table import TableMerger

from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.delta import UTC_MICROS, quote_literal
from tasks.storage.keyed_table import KEY_PREFIX_CHARS, PARTITION_COLUMN, KeyedTable, key_prefixes
from tasks.storage.snapshots import TAG_SCORES_COLUMN, TAGS_COLUMN

#: Bytes of one stored segment embedding (float16).
EMBEDDING_BYTES = EMBEDDING_SIZE * 2

SEGMENTS_SCHEMA = pa.schema(
    [
        # "<file key>-<segment index, 5 digits>": sorts and partitions with its file
        pa.field("key", pa.string(), nullable=False),
        pa.field(PARTITION_COLUMN, pa.string()),
        pa.field("file_key", pa.string()),
        pa.field("source_uri", pa.string()),
        pa.field("path", pa.string()),
        pa.field("etag", pa.string()),
        pa.field("segment_index", pa.int32()),
        pa.field("start_seconds", pa.float64()),
        pa.field("end_seconds", pa.float64()),
        # the nominal segment length the file was cut with (AUDIO_EMBEDDINGS_SEGMENT_SECONDS)
        pa.field("segment_seconds", pa.float64()),
        pa.field("embedding", pa.binary()),
        pa.field(TAGS_COLUMN, pa.list_(pa.string())),
        pa.field(TAG_SCORES_COLUMN, pa.list_(pa.float32())),
        pa.field("run_id", pa.string()),
        pa.field("ingested_at", UTC_MICROS),
    ]
)


def segment_key(file_key: str, index: int) -> str:
    """The key of a file's ``index``-th segment."""
    return f"{file_key}-{index:05d}"


def encode_vectors(vectors: np.ndarray) -> pa.Array:
    """Embeddings [n, 2048] as the stored float16 bytes.

    Built on the float16 array's own buffer with computed offsets: the former copy to bytes and
    cast from fixed-size binary cost 35 ms per 256 files' segments, on the main thread that
    feeds the model (profiled; ~0.1 ms a file).
    """
    half = np.ascontiguousarray(vectors, dtype="<f2")
    if len(half) * EMBEDDING_BYTES > np.iinfo(np.int32).max:
        raise ValueError(f"{len(half)} vectors are over one binary array's 2 GiB of data")
    offsets = np.arange(len(half) + 1, dtype=np.int32) * np.int32(EMBEDDING_BYTES)
    return pa.Array.from_buffers(
        pa.binary(), len(half), [None, pa.py_buffer(offsets), pa.py_buffer(half)]
    )


def segment_vectors(embeddings: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The stored float16 bytes back to float32 embeddings [n, 2048]."""
    if isinstance(embeddings, pa.ChunkedArray):
        embeddings = (
            embeddings.combine_chunks() if embeddings.num_chunks else pa.array([], pa.binary())
        )
    if len(embeddings) == 0:
        return np.empty((0, EMBEDDING_SIZE), np.float32)
    if isinstance(embeddings, pa.ChunkedArray):
        embeddings = embeddings.combine_chunks()
    fixed = embeddings.cast(pa.binary(EMBEDDING_BYTES))
    half = np.frombuffer(
        fixed.buffers()[1],
        dtype="<f2",
        count=len(fixed) * EMBEDDING_SIZE,
        offset=fixed.offset * EMBEDDING_BYTES,
    )
    return half.reshape(-1, EMBEDDING_SIZE).astype(np.float32)


class SegmentsTable(KeyedTable):
    """The segments Delta table at ``uri`` (a local folder or ``az://`` URL)."""

    schema = SEGMENTS_SCHEMA
    name = "audio_segments"
    description = "PANNs Cnn14 segment embeddings (float16 bytes), one row per file segment"
    app = "audio-embeddings-segments"

    def commit(
        self,
        rows: pa.Table,
        stale_file_keys: Sequence[str],
        run_id: str,
        sequence: int = 1,
    ) -> int | None:
        """Upsert segment ``rows`` and delete every other segment of ``stale_file_keys`` (files
        that changed or disappeared), as commit ``sequence`` of ``run_id``; None if there was
        nothing to do or this commit is already in."""
        if rows.num_rows == 0 and not stale_file_keys:
            return None
        source = rows.select([n for n in rows.column_names if n != PARTITION_COLUMN])
        source = source.append_column(PARTITION_COLUMN, key_prefixes(source["key"]))
        source = source.select(SEGMENTS_SCHEMA.names).cast(SEGMENTS_SCHEMA)
        stale = sorted(set(stale_file_keys))

        def upsert_and_drop_stale(merger: TableMerger) -> TableMerger:
            merger = merger.when_matched_update_all().when_not_matched_insert_all()
            if not stale:
                return merger
            prefixes = sorted({key[:KEY_PREFIX_CHARS] for key in stale})
            return merger.when_not_matched_by_source_delete(
                predicate=f"t.{PARTITION_COLUMN} IN ({', '.join(map(quote_literal, prefixes))}) "
                f"AND t.file_key IN ({', '.join(map(quote_literal, stale))})"
            )

        return self._commit(source, upsert_and_drop_stale, run_id, sequence)

    def of_files(self, file_keys: Sequence[str], columns: Sequence[str] | None = None) -> pa.Table:
        """The latest segments of ``file_keys``, in file and time order."""
        keys = pa.array(sorted(set(file_keys)), pa.string())
        if len(keys) == 0:
            return self.empty(columns)
        rows = self.latest().rows_under(
            sorted(set(key_prefixes(keys).to_pylist())),
            list(dict.fromkeys([*(columns or SEGMENTS_SCHEMA.names), "file_key", "key"])),
        )
        rows = rows.filter(pc.is_in(rows["file_key"], keys)).sort_by("key")
        return rows.select(list(columns)) if columns else rows
