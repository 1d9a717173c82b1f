"""Keyed, partitioned Delta tables with idempotent commits and streaming diffs: what the
snapshot (a row per file) and the segments (a row per segment) have in common.

A commit is one Delta MERGE tagged with the run id and a sequence number (a Delta ``txn``
action, so a repeated commit is a no-op). A commit that loses a race with another writer is
retried against the new version (the MERGE gives the same result whatever it finds), so
concurrent runs neither lose nor duplicate rows.

Tables are partitioned by ``key_prefix``, the first two hex digits of the (file) key: 256
partitions of a uniformly spread hash. A commit rewrites only the files of the partitions its
keys fall in, which bounds the bytes written per change, and a diff between versions reads only
the partitions whose files changed, in batches: that is what an index refresh applies.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import ClassVar

import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
from deltalake import CommitProperties, DeltaTable
from deltalake.exceptions import CommitFailedError
from deltalake.table import TableMerger
from deltalake.transaction import Transaction
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_random_exponential

from tasks.storage.delta import keys_in, open_table, read_table, scan, scan_batches

_log = logging.getLogger(__name__)
PARTITION_COLUMN = "key_prefix"
#: Hex digits of the key that name its partition: 2 -> 256 partitions.
KEY_PREFIX_CHARS = 2
#: What tells a row's version apart: a diff compares these between two table versions.
MARKERS = ("key", "etag", "run_id")
#: Tries of a commit that conflicts with a concurrent writer (each against the new version).
COMMIT_ATTEMPTS = 8
#: The MERGE source column that marks a deletion (``KeyedTable.commit``).
_DELETE_FLAG = "_delete"
#: Rows read at a time from a partition by a diff (about 8 MB of embeddings).
_ROWS_PER_READ = 1_024


def key_prefixes(keys: pa.Array | pa.ChunkedArray) -> pa.Array | pa.ChunkedArray:
    """The partition value of each key."""
    return pc.utf8_slice_codeunits(keys, 0, KEY_PREFIX_CHARS)


@dataclass(frozen=True)
class DiffChunk:
    """Part of a diff (one partition): rows new or changed, and keys that disappeared."""

    upserts: pa.Table
    deleted_keys: list[str]


class TableDiff:
    """What changed between two versions, read partition by partition (``chunks``) so that a
    refresh holds one partition's rows at a time whatever the table size."""

    def __init__(
        self,
        table: KeyedTable,
        from_version: int | None,
        to_version: int,
        columns: Sequence[str] | None = None,
        joined: Callable[[pa.Table], pa.Table] | None = None,
    ) -> None:
        self.table = table
        self.from_version = from_version
        self.to_version = to_version
        self.columns = list(columns) if columns else None
        self.joined = joined

    def joining(self, join: Callable[[pa.Table], pa.Table]) -> TableDiff:
        """This diff with ``join`` applied to every chunk's upserts (columns from elsewhere,
        such as predicted labels for the index)."""
        return TableDiff(self.table, self.from_version, self.to_version, self.columns, join)

    def chunks(self) -> Iterator[DiffChunk]:
        """The changes, partition by partition (a table from before partitioning is one), in
        batches of at most ``_ROWS_PER_READ`` rows; partitions whose files are the same in both
        versions are not read."""
        for chunk in self._chunks():
            if self.joined is not None:
                chunk = DiffChunk(self.joined(chunk.upserts), chunk.deleted_keys)
            yield chunk

    def _chunks(self) -> Iterator[DiffChunk]:
        new = self.table._table(self.to_version)
        old = None if self.from_version is None else self.table._table(self.from_version)
        assert new is not None
        new_files = _files_by_partition(new)
        old_files = _files_by_partition(old) if old is not None else {}
        changed = [
            prefix
            for prefix in sorted(set(new_files) | set(old_files), key=lambda p: p or "")
            if new_files.get(prefix) != old_files.get(prefix)
        ]
        if not changed:
            return
        # datasets of the changed partitions only: opening every file of a large table costs
        # seconds (1,300 files: 1.1 s here), a diff of one new file's partition milliseconds
        prefixes = [prefix for prefix in changed if prefix is not None]
        new_data = _dataset(new, prefixes)
        old_data = _dataset(old, prefixes) if old is not None else None
        for prefix in changed:
            yield from self._partition_chunks(prefix, new_data, old_data)
            # Arrow's allocator keeps what a partition's read freed; given back, a diff of
            # a million rows peaked at 530 MB here instead of 810 MB
            pa.default_memory_pool().release_unused()

    def _partition_chunks(
        self, prefix: str | None, new: ds.Dataset, old: ds.Dataset | None
    ) -> Iterator[DiffChunk]:
        where = None if prefix is None else ds.field(PARTITION_COLUMN) == prefix
        new_markers = scan(new, MARKERS, where)
        old_markers = scan(old, MARKERS, where) if old else new_markers.schema.empty_table()
        changed = new_markers.join(old_markers, list(MARKERS), join_type="left anti")
        deleted = old_markers.select(["key"]).join(
            new_markers.select(["key"]), "key", join_type="left anti"
        )
        deleted_keys = sorted(deleted["key"].to_pylist())
        if changed.num_rows:
            in_changed = keys_in(changed["key"])
            # streamed in batches: a partition holds ~36 MB of rows per million files
            for batch in scan_batches(new, self.columns, _and(where, in_changed), _ROWS_PER_READ):
                yield DiffChunk(self.table.cast_read(pa.Table.from_batches([batch])), deleted_keys)
                deleted_keys = []
        if deleted_keys:
            yield DiffChunk(self.table.empty(self.columns), deleted_keys)

    def batches(self, max_rows: int = 4_096) -> Iterator[DiffChunk]:
        """The chunks, with small ones merged up to ``max_rows`` upserts (fewer index writes)."""
        upserts: list[pa.Table] = []
        deleted: list[str] = []
        for chunk in self.chunks():
            upserts.append(chunk.upserts)
            deleted.extend(chunk.deleted_keys)
            if sum(t.num_rows for t in upserts) >= max_rows:
                yield DiffChunk(pa.concat_tables(upserts), deleted)
                upserts, deleted = [], []
        if upserts or deleted:
            rows = pa.concat_tables(upserts) if upserts else self.table.empty(self.columns)
            yield DiffChunk(rows, deleted)

    @cached_property
    def _materialized(self) -> DiffChunk:
        chunks = list(self.chunks())
        upserts = (
            pa.concat_tables([c.upserts for c in chunks], promote_options="permissive")
            if chunks
            else self.table.empty(self.columns)
        )
        return DiffChunk(upserts, sorted(k for c in chunks for k in c.deleted_keys))

    @property
    def upserts(self) -> pa.Table:
        """Every new or changed row at once (small diffs and tests; refreshes use ``chunks``)."""
        return self._materialized.upserts

    @property
    def deleted_keys(self) -> list[str]:
        """Every key that disappeared, sorted."""
        return self._materialized.deleted_keys

    @property
    def is_empty(self) -> bool:
        return self.upserts.num_rows == 0 and not self.deleted_keys


class TableVersion:
    """One opened version of a table, for several reads of the same data."""

    def __init__(self, table: DeltaTable | None, schema: pa.Schema) -> None:
        self.table, self.schema = table, schema
        self.partitioned = table is not None and _is_partitioned(table)

    @cached_property
    def data(self) -> ds.Dataset | None:
        """Every file of the version as a dataset (None: no table)."""
        return self.table.to_pyarrow_dataset() if self.table is not None else None

    def _data_under(self, prefixes: Sequence[str]) -> ds.Dataset:
        """The files of these partitions only, when partitioned (else every file)."""
        if not self.partitioned or "data" in self.__dict__:  # built already: reuse it
            return self.data
        return _dataset(self.table, prefixes)

    def rows_under(
        self, prefixes: Sequence[str] | None = None, columns: Sequence[str] = MARKERS
    ) -> pa.Table:
        """``columns`` of the rows whose key starts with one of ``prefixes`` (partition values;
        None: every row). Partitioned tables read only those partitions."""
        if self.table is None:
            return self.schema.empty_table().select(list(columns))
        if prefixes is None:
            return scan(self.data, columns)
        if self.partitioned:
            data = self._data_under(prefixes)
            return scan(data, columns, ds.field(PARTITION_COLUMN).isin(prefixes))
        rows = scan(self.data, list(dict.fromkeys([*columns, "key"])))
        rows = rows.filter(pc.is_in(key_prefixes(rows["key"]), pa.array(list(prefixes))))
        return rows.select(list(columns))

    def batches(
        self,
        columns: Sequence[str],
        keys: Sequence[str] | pa.Array | None = None,
        batch_size: int = _ROWS_PER_READ,
    ) -> Iterator[pa.RecordBatch]:
        """``columns`` of every row, or of the rows of ``keys``, ``batch_size`` rows at a time;
        a partitioned table reads only the partitions those keys fall in."""
        if self.table is None:
            return
        if keys is None:
            yield from scan_batches(self.data, columns, None, batch_size)
            return
        keys = keys if isinstance(keys, pa.Array) else pa.array(list(keys), pa.string())
        if len(keys) == 0:
            return
        where, data = keys_in(keys), self.data if not self.partitioned else None
        if self.partitioned:
            prefixes = pc.unique(key_prefixes(keys)).to_pylist()
            where = ds.field(PARTITION_COLUMN).isin(prefixes) & where
            data = self._data_under(prefixes)
        yield from scan_batches(data, columns, where, batch_size)


class KeyedTable:
    """A keyed, partitioned Delta table at ``uri`` (a local folder or ``az://`` URL).

    Subclasses give the ``schema`` (with ``key``, ``key_prefix``, ``etag`` and ``run_id``),
    the table's ``name`` and ``description``, the ``app`` that tags their commits, and how a
    read is typed (``cast_read``).
    """

    schema: ClassVar[pa.Schema]
    name: ClassVar[str]
    description: ClassVar[str]
    app: ClassVar[str]

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri
        self.storage_options = storage_options

    def cast_read(self, data: pa.Table) -> pa.Table:
        """Rows as a read returns them (a subclass restores types Delta cannot store)."""
        return data

    def _table(self, version: int | None = None) -> DeltaTable | None:
        return open_table(self.uri, self.storage_options, version)

    def ensure(self) -> int:
        """Create the (empty, partitioned) table if absent; return its current version."""
        table = self._table()
        if table is None:
            table = DeltaTable.create(
                self.uri,
                self.schema,
                partition_by=[PARTITION_COLUMN],
                name=self.name,
                description=self.description,
                storage_options=self.storage_options,
            )
        return table.version()

    def version(self) -> int | None:
        """The latest version, or None if the table does not exist."""
        table = self._table()
        return None if table is None else table.version()

    def empty(self, columns: Sequence[str] | None = None) -> pa.Table:
        """An empty table of ``columns`` (default all), typed as reads return them."""
        return self.cast_read(self.schema.empty_table().select(list(columns or self.schema.names)))

    def rows_under(
        self, prefixes: Sequence[str] | None = None, columns: Sequence[str] = MARKERS
    ) -> pa.Table:
        """``columns`` of the latest version's rows whose key starts with one of ``prefixes``
        (partition values; None: every row). Partitioned tables read only those partitions."""
        return self.latest().rows_under(prefixes, columns)

    def latest(self) -> TableVersion:
        """The latest version, opened once for several reads (an empty one if no table yet)."""
        return TableVersion(self._table(), self.schema)

    def column_names(self) -> list[str]:
        """Columns of the latest version (older tables may lack newer columns until a commit)."""
        table = self._table()
        return self.schema.names if table is None else table.schema().to_arrow().names

    def read(self, version: int | None = None, columns: Sequence[str] | None = None) -> pa.Table:
        """Rows of a version (default the latest)."""
        table = self._table(version)
        if table is None:
            return self.empty(columns)
        return self.cast_read(read_table(table, columns))

    def commit_metadata(self, name: str, look_back: int = 20) -> str | None:
        """The value of ``name`` in the newest of the last ``look_back`` commits that carry it
        (``commit``'s ``metadata``); None if none does."""
        table = self._table()
        if table is None:
            return None
        for entry in table.history(limit=look_back):  # newest first
            if name in entry:
                return str(entry[name])
        return None

    def diff(
        self,
        from_version: int | None,
        to_version: int | None = None,
        columns: Sequence[str] | None = None,
    ) -> TableDiff:
        """What changed from ``from_version`` (None: nothing) to ``to_version`` (None: latest).

        Only ``columns`` are read, when given (an anomaly scan needs no embeddings).
        """
        target = self._table(to_version)
        if target is None:
            raise FileNotFoundError(f"no {self.name} table at {self.uri}")
        return TableDiff(self, from_version, target.version(), columns)

    def commit(
        self,
        rows: pa.Table,
        deleted_keys: Sequence[str],
        run_id: str,
        sequence: int = 1,
        metadata: dict[str, str] | None = None,
    ) -> int | None:
        """Upsert ``rows`` and delete ``deleted_keys`` in one table version, as commit number
        ``sequence`` of ``run_id``; ``metadata`` goes into the commit's information (what the
        version reflects, read back with ``commit_metadata``).

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

        source = _merge_source(rows, deleted_keys, self.schema)
        return self._commit(source, upsert_or_delete, run_id, sequence, metadata)

    def _app_id(self, run_id: str) -> str:
        return f"{self.app}/{run_id}"

    def _commit(
        self,
        source: pa.Table,
        clauses: Callable[[TableMerger], TableMerger],
        run_id: str,
        sequence: int,
        metadata: dict[str, str] | None = None,
    ) -> int | None:
        """MERGE ``source`` on (key_prefix, key) with ``clauses``, as commit ``sequence`` of
        ``run_id``: None if nothing changed or the commit is already in, else the new version.
        A conflict with a concurrent writer is retried against the new version."""
        retrying = Retrying(
            stop=stop_after_attempt(COMMIT_ATTEMPTS),
            wait=wait_random_exponential(multiplier=0.2, max=10),
            retry=retry_if_exception_type(CommitFailedError),
            before_sleep=lambda state: _log.warning(
                "commit %d of run %s to %s conflicted with a concurrent writer (try %d); "
                "retrying against the new version",
                sequence,
                run_id,
                self.name,
                state.attempt_number,
            ),
            reraise=True,
        )
        for attempt in retrying:
            with attempt:
                return self._merge(source, clauses, run_id, sequence, metadata)
        raise AssertionError("unreachable: tenacity re-raises the last error")

    def _merge(
        self,
        source: pa.Table,
        clauses: Callable[[TableMerger], TableMerger],
        run_id: str,
        sequence: int,
        metadata: dict[str, str] | None = None,
    ) -> int | None:
        self.ensure()
        table = self._table()
        assert table is not None
        app_id = self._app_id(run_id)
        if (table.transaction_version(app_id) or 0) >= sequence:
            return None
        predicate = "t.key = s.key"
        if _is_partitioned(table):  # lets the MERGE read and rewrite only these partitions
            predicate = f"t.{PARTITION_COLUMN} = s.{PARTITION_COLUMN} AND {predicate}"
        merger = table.merge(
            source,
            predicate=predicate,
            source_alias="s",
            target_alias="t",
            merge_schema=True,  # tables written before a column was added evolve in place
            # streamed execution kept ~80 MB more resident after every commit of 4,096 rows
            # here (1.9 GB after 25); the source is one commit, bounded, so materialise it
            streamed_exec=False,
            commit_properties=CommitProperties(
                custom_metadata={
                    **(metadata or {}),
                    "audio_embeddings.run_id": run_id,
                    "audio_embeddings.sequence": str(sequence),
                },
                app_transactions=[Transaction(app_id=app_id, version=sequence)],
            ),
        )
        clauses(merger).execute()
        return table.version()


def _merge_source(rows: pa.Table, deleted_keys: Sequence[str], schema: pa.Schema) -> pa.Table:
    """Upserts and deletions as one MERGE source, with the partition value filled in."""
    upserts = rows.select([n for n in rows.column_names if n != PARTITION_COLUMN])
    upserts = upserts.append_column(PARTITION_COLUMN, key_prefixes(upserts["key"]))
    upserts = upserts.cast(pa.schema([schema.field(n) for n in upserts.column_names]))
    upserts = upserts.select(schema.names).append_column(
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
                else pa.nulls(len(keys), schema.field(name).type)
            )
            for name in schema.names
        },
        schema=schema,
    ).append_column(_DELETE_FLAG, pa.array([True] * len(keys), pa.bool_()))
    return pa.concat_tables([upserts, deletes])


def _dataset(table: DeltaTable, prefixes: Sequence[str] | None = None) -> ds.Dataset:
    """``table``'s files as a dataset: of the partitions ``prefixes`` only, when given and the
    table is partitioned."""
    if prefixes is None or not _is_partitioned(table):
        return table.to_pyarrow_dataset()
    return table.to_pyarrow_dataset(
        file_pruning_predicate=[(PARTITION_COLUMN, "in", sorted(prefixes))]
    )


def _is_partitioned(table: DeltaTable) -> bool:
    return PARTITION_COLUMN in table.metadata().partition_columns


def _files_by_partition(table: DeltaTable) -> dict[str | None, frozenset[str]]:
    """The data files of a version, by partition value (one group None when unpartitioned)."""
    actions = pa.table(table.get_add_actions(flatten=True))
    column = f"partition.{PARTITION_COLUMN}"
    prefixes = (
        actions[column].to_pylist() if column in actions.column_names else [None] * actions.num_rows
    )
    files: dict[str | None, set[str]] = {}
    for prefix, path in zip(prefixes, actions["path"].to_pylist(), strict=True):
        files.setdefault(prefix, set()).add(path)
    return {prefix: frozenset(paths) for prefix, paths in files.items()}


def _and(left: ds.Expression | None, right: ds.Expression) -> ds.Expression:
    return right if left is None else left & right
