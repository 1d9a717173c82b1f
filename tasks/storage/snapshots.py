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

import pyarrow as pa
from deltalake.table import TableMerger

from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.delta import UTC_MICROS, open_table, read_table
from tasks.storage.keyed_table import PARTITION_COLUMN, KeyedTable, key_prefixes

if TYPE_CHECKING:
    import pandas as pd

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
        pa.field("labels", pa.list_(pa.string())),
        pa.field("label_scores", pa.list_(pa.float32())),
        pa.field("model", pa.string()),
        pa.field("checkpoint_sha256", pa.string()),
        pa.field("run_id", pa.string()),
        pa.field("ingested_at", UTC_MICROS),
    ]
)

EMBEDDING_TYPE = pa.list_(pa.float32(), EMBEDDING_SIZE)
_DELETE_FLAG = "_delete"


class SnapshotTable(KeyedTable):
    """The embeddings snapshot at ``uri`` (a local folder or ``az://`` URL)."""

    schema = SNAPSHOT_SCHEMA
    name = "audio_embeddings"
    description = "PANNs Cnn14 embeddings, one row per audio file"
    app = "audio-embeddings"

    def cast_read(self, data: pa.Table) -> pa.Table:
        """``embedding`` back to fixed_size_list[2048] (Delta has no fixed-size list)."""
        return _cast_embedding(data)

    def commit(
        self, rows: pa.Table, deleted_keys: Sequence[str], run_id: str, sequence: int = 1
    ) -> int | None:
        """Upsert ``rows`` and delete ``deleted_keys`` in one table version, as commit number
        ``sequence`` of ``run_id``.

        Returns the new version, or None when there was nothing to change or this commit of
        this run is already in the table.
        """
        if rows.num_rows == 0 and not deleted_keys:
            return None

        def upsert_or_delete(merger: TableMerger) -> TableMerger:
            return (
                merger.when_matched_delete(predicate=f"s.{_DELETE_FLAG}")
                .when_matched_update_all(
                    predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG]
                )
                .when_not_matched_insert_all(
                    predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG]
                )
            )

        return self._commit(_merge_source(rows, deleted_keys), upsert_or_delete, run_id, sequence)


def _merge_source(rows: pa.Table, deleted_keys: Sequence[str]) -> pa.Table:
    """Upserts and deletions as one MERGE source, with the partition value filled in."""
    upserts = rows.select([n for n in rows.column_names if n != PARTITION_COLUMN])
    upserts = upserts.append_column(PARTITION_COLUMN, key_prefixes(upserts["key"]))
    upserts = upserts.cast(pa.schema([SNAPSHOT_SCHEMA.field(n) for n in upserts.column_names]))
    upserts = upserts.select(SNAPSHOT_SCHEMA.names).append_column(
        _DELETE_FLAG, pa.array([False] * rows.num_rows, pa.bool_())
    )
    keys = pa.array(list(deleted_keys), pa.string())
    deletes = pa.table(
        {
            name: (
                keys
                if name == "key"
                else key_prefixes(keys)
                if name == PARTITION_COLUMN
                else pa.nulls(len(keys), SNAPSHOT_SCHEMA.field(name).type)
            )
            for name in SNAPSHOT_SCHEMA.names
        },
        schema=SNAPSHOT_SCHEMA,
    ).append_column(_DELETE_FLAG, pa.array([True] * len(keys), pa.bool_()))
    return pa.concat_tables([upserts, deletes])


def _cast_embedding(data: pa.Table) -> pa.Table:
    if "embedding" not in data.column_names:
        return data
    index = data.column_names.index("embedding")
    return data.set_column(index, "embedding", data["embedding"].cast(EMBEDDING_TYPE))


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
        from tasks.resources import table_storage_options

        storage_options = table_storage_options(uri)
    table = open_table(uri, storage_options, version)
    if table is None:
        raise FileNotFoundError(f"no snapshot table at {uri}")
    return read_table(table, columns).to_pandas()
