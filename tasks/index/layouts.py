"""What an index holds: whole files (a vector per snapshot row) or segments (a vector per
segment row, "where in the file"). Each backend keeps one index per layout, refreshed from its
own table with the same diff machinery.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

import pyarrow as pa

from tasks.index.interface import SearchHit
from tasks.model.constants import EMBEDDING_SIZE
from tasks.storage.segments import SEGMENTS_SCHEMA, segment_vectors
from tasks.storage.snapshots import SNAPSHOT_SCHEMA, TAG_SCORES_COLUMN, TAGS_COLUMN

Kind = Literal["files", "segments"]
#: Index fields whose table columns have other names: the tables keep the names they were
#: written with (see tasks.storage.snapshots), the index speaks the glossary's.
STORED_AS = {"tags": TAGS_COLUMN, "tag_scores": TAG_SCORES_COLUMN}


@dataclass(frozen=True)
class Layout:
    """One kind of index: its name suffix, the columns it copies from its table, and how a
    row found becomes a ``SearchHit``."""

    kind: Kind
    suffix: str
    #: Index fields copied from the table, each from the table's column of the same name or,
    #: where ``stored_as`` says so, of another.
    columns: tuple[str, ...]
    source_schema: pa.Schema
    vector_type: pa.DataType
    #: Columns that do not come from the table but are joined in (predicted labels): null
    #: when the rows lack them.
    derived: tuple[pa.Field, ...] = ()
    stored_as: dict[str, str] = field(default_factory=lambda: dict(STORED_AS))

    def source_column(self, name: str) -> str:
        """The table column an index field is copied from."""
        return self.stored_as.get(name, name)

    @property
    def lancedb_schema(self) -> pa.Schema:
        return pa.schema(
            [
                self.source_schema.field(self.source_column(name)).with_name(name)
                for name in self.columns
            ]
            + list(self.derived)
            + [pa.field("vector", self.vector_type)]
        )

    def documents(self, rows: pa.Table) -> pa.Table:
        """Table rows as LanceDB documents: the copied columns and the vector."""
        if self.kind == "segments":
            vectors = pa.FixedSizeListArray.from_arrays(
                pa.array(segment_vectors(rows["embedding"]).astype("float16").ravel()),
                EMBEDDING_SIZE,
            )
        else:
            vectors = rows["embedding"]
        derived = {
            f.name: rows[f.name] if f.name in rows.column_names else pa.nulls(rows.num_rows, f.type)
            for f in self.derived
        }
        copied = {name: rows[self.source_column(name)] for name in self.columns}
        columns = {**copied, **derived, "vector": vectors}
        return pa.table(columns).cast(self.lancedb_schema)

    @property
    def returned(self) -> list[str]:
        """Columns a hit needs."""
        common = ["source_uri", "path", "tags"]
        if self.kind == "segments":
            return ["file_key", *common, "start_seconds", "end_seconds"]
        return ["key", *common, "duration_seconds", *(f.name for f in self.derived)]

    def hit(self, row: dict, score: float) -> SearchHit:
        """A found row (returned columns) as a hit; a segment hit carries its file's key."""
        tags = list(row.get("tags") or [])
        if self.kind == "segments":
            return SearchHit(
                key=row["file_key"],
                path=row["path"],
                source_uri=row["source_uri"],
                score=score,
                duration_seconds=row["end_seconds"] - row["start_seconds"],
                tags=tags,
                start_seconds=row["start_seconds"],
                end_seconds=row["end_seconds"],
            )
        return SearchHit(
            key=row["key"],
            path=row["path"],
            source_uri=row["source_uri"],
            score=score,
            duration_seconds=row["duration_seconds"],
            tags=tags,
            predicted_labels=list(row.get("predicted_labels") or []),
        )


FILES = Layout(
    kind="files",
    suffix="",
    columns=(
        "key",
        "source_uri",
        "path",
        "duration_seconds",
        "sample_rate",
        "last_modified",
        "tags",
        "tag_scores",
        "model",
        "checkpoint_sha256",
    ),
    source_schema=SNAPSHOT_SCHEMA,
    vector_type=pa.list_(pa.float32(), EMBEDDING_SIZE),
    # predicted labels, "<label set>=<label>" (tasks.classify.predicted_labels)
    derived=(pa.field("predicted_labels", pa.list_(pa.string())),),
)
SEGMENTS = Layout(
    kind="segments",
    suffix="segments",
    columns=(
        "key",
        "file_key",
        "source_uri",
        "path",
        "segment_index",
        "start_seconds",
        "end_seconds",
        "tags",
        "tag_scores",
    ),
    source_schema=SEGMENTS_SCHEMA,
    # float16 like the table: a segment index is ten times the file index
    vector_type=pa.list_(pa.float16(), EMBEDDING_SIZE),
)


def best_per_file(hits: list[SearchHit], per_file: int, top: int) -> list[SearchHit]:
    """Hits in score order, at most ``per_file`` from one file, at most ``top`` in all."""
    kept: list[SearchHit] = []
    taken: dict[str, int] = {}
    for hit in sorted(hits, key=lambda h: -h.score):
        if taken.get(hit.key, 0) < per_file:
            kept.append(hit)
            taken[hit.key] = taken.get(hit.key, 0) + 1
            if len(kept) == top:
                break
    return kept
