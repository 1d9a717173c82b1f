"""The embeddings snapshot: a Delta Lake table with one row per audio file.

A snapshot is a table version. An ingest run commits as it goes (``SnapshotTable.commit``: one
MERGE of upserts and deletes per commit, numbered within the run, see ``keyed_table``), so a run
that dies loses only what it had not committed yet, and the next run re-plans from the etags.
Partitioned by key prefix: a commit rewrites only the files of the partitions its keys fall in
(about 36 MB per partition per million rows, compacted), and a diff reads only the partitions
that changed: that is what an index refresh applies, streaming.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
import pyarrow as pa

from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.delta import UTC_MICROS, open_table, read_table
from tasks.storage.keyed_table import KeyedTable

if TYPE_CHECKING:
    import pandas as pd

#: The columns that hold a file's (or segment's) AudioSet tags and their probabilities. The
#: tables keep the names their first versions were written with: renaming a Delta column would
#: rewrite every table. Code outside the storage layer says "tags" (tasks.index.layouts maps).
TAGS_COLUMN, TAG_SCORES_COLUMN = "labels", "label_scores"

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        # The partition column: the key's first KEY_PREFIX_CHARS hex digits (commit fills it).
        pa.field("key_prefix", pa.string()),
        pa.field("source_uri", pa.string()),
        pa.field("path", pa.string()),
        pa.field("etag", pa.string()),
        pa.field("size_bytes", pa.int64()),
        pa.field("last_modified", UTC_MICROS),
        # Blob metadata (empty for local files): reference sets and groups can select on it.
        pa.field("metadata", pa.map_(pa.string(), pa.string())),
        pa.field("duration_seconds", pa.float64()),
        pa.field("sample_rate", pa.int32()),
        pa.field("channels", pa.int32()),
        pa.field("num_windows", pa.int32()),
        # Rows in the segments table; null for rows written before segments were stored (the
        # next ingest embeds those files once more to store them).
        pa.field("num_segments", pa.int32()),
        # Delta has no fixed-size list: stored as list<float32>, cast back on read.
        pa.field("embedding", pa.list_(pa.float32())),
        pa.field(TAGS_COLUMN, pa.list_(pa.string())),
        pa.field(TAG_SCORES_COLUMN, pa.list_(pa.float32())),
        pa.field("model", pa.string()),
        pa.field("checkpoint_sha256", pa.string()),
        # How the vectors were computed (tasks.model.constants.EMBEDDING_METHOD); rows of another
        # method, or written before the column, are embedded again by the next ingest.
        pa.field("embedding_method", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("ingested_at", UTC_MICROS),
    ]
)

EMBEDDING_TYPE = pa.list_(pa.float32(), EMBEDDING_SIZE)


class SnapshotTable(KeyedTable):
    """The embeddings snapshot at ``uri`` (a local folder or ``az://`` URL); ``commit``
    upserts rows and deletes keys in one version (``KeyedTable.commit``)."""

    schema = SNAPSHOT_SCHEMA
    name = "audio_embeddings"
    description = "PANNs Cnn14 embeddings, one row per audio file"
    app = "audio-embeddings"

    def cast_read(self, data: pa.Table) -> pa.Table:
        """``embedding`` back to fixed_size_list[2048] (Delta has no fixed-size list)."""
        return _cast_embedding(data)


def _cast_embedding(data: pa.Table) -> pa.Table:
    if "embedding" not in data.column_names:
        return data
    index = data.column_names.index("embedding")
    return data.set_column(index, "embedding", data["embedding"].cast(EMBEDDING_TYPE))


def embeddings_of(batch: pa.RecordBatch | pa.Table) -> np.ndarray:
    """The ``embedding`` column of read rows as float32 [rows, 2048]."""
    column = batch.column("embedding")
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    return np.asarray(values, np.float32).reshape(batch.num_rows, -1)


def read_snapshot(
    uri: str,
    version: int | None = None,
    columns: Sequence[str] | None = None,
    storage_options: dict[str, str] | None = None,
) -> pd.DataFrame:
    """A snapshot as a pandas DataFrame: one row per file, ``embedding`` as float32 arrays.

    ``uri`` is a local folder or ``az://container/path`` (storage options then come from the
    ``AUDIO_EMBEDDINGS_BLOB_*`` settings unless given); ``version`` picks an older snapshot
    (Delta time travel); ``columns`` reads only those (skip ``embedding`` to read fast).
    """
    if storage_options is None:
        from tasks.storage.delta import table_storage_options

        storage_options = table_storage_options(uri)
    table = open_table(uri, storage_options, version)
    if table is None:
        raise FileNotFoundError(f"no snapshot table at {uri}")
    return read_table(table, columns).to_pandas()
