"""The embedded default index: a LanceDB table in a local folder.

Search is exact (flat) cosine k-NN until the table holds ``ann_min_rows`` rows: then an IVF_RQ
index (RaBitQ: 1 bit per dimension, 256 bytes a vector) is built and brought up to date after
each refresh, and queries probe ``nprobes`` partitions and re-rank ``refine_factor`` x k
candidates on the full vectors; rows not yet in the index are still searched exactly. The kind
and its parameters were chosen by benchmarks/search_latency.py (README: "Search at scale").

The snapshot version the index reflects is kept in a small side table, written after the data,
so a refresh that dies part-way is simply applied again (upserts and deletes are idempotent).
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta

# LanceDB's Rust logger warns "No existing dataset at ..., it will be created" whenever a table
# is made: expected here, alarming in a user's terminal; its errors still show. It reads the
# variable once, when lancedb is imported (this module is its only importer).
os.environ.setdefault("LANCEDB_LOG", "error")

import lancedb
import numpy as np
import pyarrow as pa
from lancedb.index import IvfRq

from tasks.index.filters import SearchFilter, quote_literal, sql_predicate
from tasks.index.interface import RefreshResult, SearchHit, check_query_vector
from tasks.index.layouts import FILES, Layout, best_per_file
from tasks.storage.delta import UTC_MICROS
from tasks.storage.keyed_table import TableDiff

#: The file index's schema (benchmarks fill it directly).
INDEX_SCHEMA = FILES.lancedb_schema
STATE_SCHEMA = pa.schema(
    [
        pa.field("snapshot_uri", pa.string(), nullable=False),
        pa.field("snapshot_version", pa.int64()),
        pa.field("updated_at", UTC_MICROS),
    ]
)
_DELETE_CHUNK = 500


class LanceDBIndex:
    """A LanceDB folder holding the table ``name`` (``name_segments`` for the segments layout)
    and its ``<table>_state`` side table. ``ann_min_rows`` 0: exact search only."""

    def __init__(
        self,
        uri: str,
        name: str = "audio-embeddings",
        ann_min_rows: int = 0,
        nprobes: int = 40,
        refine_factor: int = 20,
        layout: Layout = FILES,
    ) -> None:
        self.uri = uri
        self.layout = layout
        self.name = f"{name}_{layout.suffix}" if layout.suffix else name
        self.schema = layout.lancedb_schema
        self.ann_min_rows = ann_min_rows
        self.nprobes = nprobes
        self.refine_factor = refine_factor
        self._db = lancedb.connect(uri)

    def _open(self, name: str, schema: pa.Schema) -> lancedb.table.Table:
        return self._db.create_table(name, schema=schema, exist_ok=True)

    def _documents_table(self) -> lancedb.table.Table:
        """The documents table; one made before a derived column existed (predicted labels)
        gains it, all null, in place."""
        try:  # opened as it is: creating with today's schema refuses an older table
            table = self._db.open_table(self.name)
        except ValueError:  # "Table ... was not found"
            table = self._open(self.name, self.schema)
        missing = [f for f in self.layout.derived if f.name not in table.schema.names]
        if missing:
            table.add_columns(missing)
        return table

    def reflected_version(self, snapshot_uri: str) -> int | None:
        state = self._open(f"{self.name}_state", STATE_SCHEMA).to_arrow()
        for uri, version in zip(
            state["snapshot_uri"].to_pylist(), state["snapshot_version"].to_pylist(), strict=True
        ):
            if uri == snapshot_uri:
                return int(version)
        return None

    def needs_rebuild(self) -> bool:
        try:
            table = self._db.open_table(self.name)
        except ValueError:  # no index yet: the first refresh fills it whole
            return False
        return not set(self.layout.columns) <= set(table.schema.names)

    def apply(self, diff: TableDiff, snapshot_uri: str) -> RefreshResult:
        if diff.from_version is None:  # a first fill: one streamed write, no key matching
            self.rebuild(diff, snapshot_uri)
            return RefreshResult(None, diff.to_version, self.count(), 0)
        table = self._documents_table()
        upserted = deleted = 0
        for batch in diff.batches():  # one batch of partitions at a time: memory stays flat
            if batch.upserts.num_rows:
                (
                    table.merge_insert("key")
                    .when_matched_update_all()
                    .when_not_matched_insert_all()
                    .execute(self._documents(batch.upserts))
                )
            self._delete(table, batch.deleted_keys)
            upserted += batch.upserts.num_rows
            deleted += len(batch.deleted_keys)
        self._maintain_ann(table)
        self._record(snapshot_uri, diff.to_version)
        return RefreshResult(diff.from_version, diff.to_version, upserted, deleted)

    def _documents(self, rows: pa.Table) -> pa.Table:
        return self.layout.documents(rows)

    def _record(self, snapshot_uri: str, version: int) -> None:
        """Write which snapshot version the index reflects (after the data)."""
        state = pa.table(
            {
                "snapshot_uri": [snapshot_uri],
                "snapshot_version": [version],
                "updated_at": [datetime.now(UTC)],
            },
            schema=STATE_SCHEMA,
        )
        (
            self._open(f"{self.name}_state", STATE_SCHEMA)
            .merge_insert("snapshot_uri")
            .when_matched_update_all()
            .when_not_matched_insert_all()
            .execute(state)
        )

    def rebuild(self, everything: TableDiff, snapshot_uri: str, drop_old: bool = False) -> str:
        """Refill from a whole snapshot into a new table version (readers see the old version
        until the new one is committed); ``drop_old`` also removes older table versions.

        One overwrite commit, streamed batch by batch: a rebuild that fails leaves the old
        version, and a second try writes one new version, never a second table."""
        documents = (
            record_batch
            for batch in everything.batches()
            for record_batch in self._documents(batch.upserts).to_batches()
        )
        table = self._db.create_table(
            self.name, data=documents, schema=self.schema, mode="overwrite"
        )
        self._maintain_ann(table)
        self._record(snapshot_uri, everything.to_version)
        if drop_old:
            table.cleanup_old_versions(older_than=timedelta(0))
        return self.name

    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        where: SearchFilter | None = None,
        per_file: int = 1,
    ) -> list[SearchHit]:
        segments = self.layout.kind == "segments"
        # a file holds many segments: look further, then keep the best per file
        limit = min(max(k * 10, 50), 1_000) if segments else k
        query = (
            self._documents_table()
            .search(check_query_vector(vector), vector_column_name="vector")
            .metric("cosine")
            .limit(limit)
            .select([*self.layout.returned, "_distance"])
        )
        if self.has_ann_index():
            query = query.nprobes(self.nprobes).refine_factor(self.refine_factor)
        clause = sql_predicate(where)
        if clause:
            query = query.where(clause, prefilter=True)
        hits = [
            self.layout.hit(row, 1.0 - float(row["_distance"]))
            for row in query.to_arrow().to_pylist()
        ]
        return best_per_file(hits, per_file, k) if segments else hits

    def has_ann_index(self) -> bool:
        """Whether the vector column has an ANN index."""
        indices = self._documents_table().list_indices()
        return any("vector" in index.columns for index in indices)

    def _maintain_ann(self, table: lancedb.table.Table) -> None:
        """Build the ANN index once the table is large enough; fold new rows in afterwards."""
        if not self.ann_min_rows:
            return
        if self.has_ann_index():
            table.optimize()  # merges new fragments and adds them to the index
        elif table.count_rows() >= self.ann_min_rows:
            table.create_index(
                "vector", config=IvfRq(distance_type="cosine", **self.ann_parameters(table))
            )

    def ann_parameters(self, table: lancedb.table.Table | None = None) -> dict[str, int]:
        """The IVF partition count the index is (or would be) built with: about the square
        root of the rows, so a partition holds about as many vectors as there are partitions."""
        rows = (table or self._documents_table()).count_rows()
        return {"num_partitions": max(16, round(rows**0.5))}

    def count(self) -> int:
        return self._documents_table().count_rows()

    def set_predicted_labels(self, by_key: dict[str, list[str]]) -> None:
        if not by_key:
            return
        table = self._documents_table()
        keys = sorted(by_key)
        field = self.schema.field("predicted_labels")
        update = pa.table(
            {"key": keys, "predicted_labels": [sorted(by_key[key]) for key in keys]},
            schema=pa.schema([pa.field("key", pa.string()), field]),
        )
        # matched rows only: a key not indexed yet gets its labels from the next refresh
        table.merge_insert("key").when_matched_update_all().execute(update)

    def maintain(self, retention: timedelta, dry_run: bool = False) -> dict[str, int]:
        """Compact the table's fragments, fold new rows into its ANN index, and remove
        versions older than ``retention``; returns fragments and versions before and after."""
        table = self._documents_table()
        before = {
            "fragments_before": table.stats()["fragment_stats"]["num_fragments"],
            "versions_before": len(table.list_versions()),
        }
        if dry_run:
            return before
        for maintained in (table, self._open(f"{self.name}_state", STATE_SCHEMA)):
            maintained.optimize(cleanup_older_than=retention)
        return {
            **before,
            "fragments_after": table.stats()["fragment_stats"]["num_fragments"],
            "versions_after": len(table.list_versions()),
        }

    def document_keys(self) -> set[str]:
        """Every document key (for checks that the index equals a snapshot)."""
        table = self._documents_table()
        keys = table.search().select(["key"]).limit(max(table.count_rows(), 1)).to_arrow()
        return set(keys.column("key").to_pylist())

    @staticmethod
    def _delete(table: lancedb.table.Table, keys: Sequence[str]) -> None:
        for start in range(0, len(keys), _DELETE_CHUNK):
            chunk = ", ".join(quote_literal(k) for k in keys[start : start + _DELETE_CHUNK])
            table.delete(f"key IN ({chunk})")
