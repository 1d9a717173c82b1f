"""The embeddings snapshot: a Delta Lake table with one row per audio file, one version per
ingest run that changed something.

A snapshot is a table version. ``SnapshotTable.commit`` applies one run's upserts and deletes in
a single Delta MERGE, so a run that dies before it leaves the table at its last good version,
and the next run re-plans from there. ``SnapshotTable.diff`` compares two versions by
(key, etag, run_id): that is what an index refresh applies.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa
import pyarrow.compute as pc
from deltalake import CommitProperties, DeltaTable

from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.delta import UTC_MICROS, open_table, read_table

if TYPE_CHECKING:
    import pandas as pd

SNAPSHOT_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
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


@dataclass(frozen=True)
class SnapshotDiff:
    """Rows new or changed between two versions, and keys that disappeared."""

    from_version: int | None
    to_version: int
    upserts: pa.Table
    deleted_keys: list[str]

    @property
    def is_empty(self) -> bool:
        return self.upserts.num_rows == 0 and not self.deleted_keys


class SnapshotTable:
    """The embeddings Delta table at ``uri`` (a local folder or ``az://`` URL)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def _table(self, version: int | None = None) -> DeltaTable | None:
        return open_table(self.uri, self.storage_options, version)

    def ensure(self) -> int:
        """Create the (empty) table if absent; return its current version."""
        table = self._table()
        if table is None:
            table = DeltaTable.create(
                self.uri,
                SNAPSHOT_SCHEMA,
                name="audio_embeddings",
                description="PANNs Cnn14 embeddings, one row per audio file",
                storage_options=self.storage_options,
            )
        return table.version()

    def version(self) -> int | None:
        """The latest version, or None if the table does not exist."""
        table = self._table()
        return None if table is None else table.version()

    def current_etags(self, uri_prefix: str = "") -> dict[str, str]:
        """key -> etag of the latest version's rows whose source URI starts with ``uri_prefix``."""
        table = self._table()
        if table is None:
            return {}
        data = read_table(table, ["key", "etag", "source_uri"])
        if uri_prefix:
            data = data.filter(pc.starts_with(data["source_uri"], uri_prefix))
        return dict(zip(data["key"].to_pylist(), data["etag"].to_pylist(), strict=True))

    def column_names(self) -> list[str]:
        """Columns of the latest version (older tables may lack newer columns until a commit)."""
        table = self._table()
        return SNAPSHOT_SCHEMA.names if table is None else table.schema().to_arrow().names

    def read(self, version: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of a version (default the latest), ``embedding`` as fixed_size_list[2048]."""
        table = self._table(version)
        if table is None:
            return SNAPSHOT_SCHEMA.empty_table().select(list(columns or SNAPSHOT_SCHEMA.names))
        return _cast_embedding(read_table(table, columns))

    def commit(self, rows: pa.Table, deleted_keys: Sequence[str], run_id: str) -> int | None:
        """Upsert ``rows`` and delete ``deleted_keys`` in one table version.

        Returns the new version, or None when there was nothing to change.
        """
        if rows.num_rows == 0 and not deleted_keys:
            return None
        self.ensure()
        upserts = rows.cast(SNAPSHOT_SCHEMA).append_column(
            _DELETE_FLAG, pa.array([False] * rows.num_rows, pa.bool_())
        )
        deletes = pa.table(
            {
                name: (
                    pa.array(list(deleted_keys), pa.string())
                    if name == "key"
                    else pa.nulls(len(deleted_keys), SNAPSHOT_SCHEMA.field(name).type)
                )
                for name in SNAPSHOT_SCHEMA.names
            },
            schema=SNAPSHOT_SCHEMA,
        ).append_column(_DELETE_FLAG, pa.array([True] * len(deleted_keys), pa.bool_()))
        source = pa.concat_tables([upserts, deletes])
        table = self._table()
        assert table is not None
        (
            table.merge(
                source,
                predicate="t.key = s.key",
                source_alias="s",
                target_alias="t",
                merge_schema=True,  # tables written before a column was added evolve in place
                commit_properties=CommitProperties(
                    custom_metadata={"audio_embeddings.run_id": run_id}
                ),
            )
            .when_matched_delete(predicate=f"s.{_DELETE_FLAG}")
            .when_matched_update_all(predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG])
            .when_not_matched_insert_all(
                predicate=f"NOT s.{_DELETE_FLAG}", except_cols=[_DELETE_FLAG]
            )
            .execute()
        )
        return table.version()

    def diff(
        self,
        from_version: int | None,
        to_version: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> SnapshotDiff:
        """What changed from ``from_version`` (None: nothing) to ``to_version`` (None: latest).

        Only ``columns`` are read, when given (an anomaly scan needs no embeddings).
        """
        target = self._table(to_version)
        if target is None:
            raise FileNotFoundError(f"no snapshot table at {self.uri}")
        markers = ["key", "etag", "run_id"]
        new = read_table(target, markers)
        if from_version is None:
            old = SNAPSHOT_SCHEMA.empty_table().select(markers)
        else:
            base = self._table(from_version)
            assert base is not None
            old = read_table(base, markers)
        old_markers = dict(
            zip(
                old["key"].to_pylist(),
                zip(old["etag"].to_pylist(), old["run_id"].to_pylist(), strict=True),
                strict=True,
            )
        )
        changed = [
            key
            for key, etag, run_id in zip(
                new["key"].to_pylist(),
                new["etag"].to_pylist(),
                new["run_id"].to_pylist(),
                strict=True,
            )
            if old_markers.get(key) != (etag, run_id)
        ]
        deleted = sorted(set(old_markers) - set(new["key"].to_pylist()))
        rows = read_table(target, columns)
        upserts = rows.filter(
            pc.is_in(rows["key"].cast(pa.string()), pa.array(changed, pa.string()))
        )
        return SnapshotDiff(from_version, target.version(), _cast_embedding(upserts), deleted)


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
