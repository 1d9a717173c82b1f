"""The catalogue as search sees it: the files of the latest snapshot, found by key or by path,
with their stored vectors (a query that is already in the catalogue needs no model).

Every lookup reads the latest table version: a key reads one partition (1/256 of the table), a
path scans the ``path`` column only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime

import numpy as np
import pyarrow.compute as pc

from tasks.storage.delta import scan, text_field
from tasks.storage.keyed_table import KEY_PREFIX_CHARS
from tasks.storage.segments import SegmentsTable, segment_vectors
from tasks.storage.snapshots import TAGS_COLUMN, SnapshotTable

_KEY = re.compile(r"^[0-9a-f]{64}$")
_ITEM_COLUMNS = (
    "key",
    "path",
    "source_uri",
    "etag",
    "duration_seconds",
    TAGS_COLUMN,
    "size_bytes",
)


@dataclass(frozen=True)
class CatalogueItem:
    """One file of the snapshot: where it is, how long (s), its AudioSet tags."""

    key: str
    path: str
    source_uri: str
    etag: str
    duration_seconds: float
    tags: list[str]
    size_bytes: int


class Catalogue:
    """Lookups in the snapshot (and its segments table)."""

    def __init__(self, snapshot: SnapshotTable, segments: SegmentsTable) -> None:
        self.snapshot = snapshot
        self.segments = segments

    def item(self, key: str) -> CatalogueItem | None:
        """The file with this key, or None (anything that is not a key is simply not found)."""
        rows = self._rows_of_key(key, _ITEM_COLUMNS)
        return _item(rows.to_pylist()[0]) if rows.num_rows else None

    def find(self, key_or_path: str) -> CatalogueItem | None:
        """The file with this key, else the file at this path (as the snapshot lists it)."""
        found = self.item(key_or_path)
        if found is not None:
            return found
        version = self.snapshot.latest()
        if version.data is None:
            return None
        rows = scan(version.data, _ITEM_COLUMNS, text_field("path") == key_or_path)
        return _item(rows.to_pylist()[0]) if rows.num_rows else None

    def recorded_at(self, keys: list[str]) -> dict[str, datetime]:
        """key -> the file's ``last_modified``, for the keys still in the snapshot (only their
        partitions are read)."""
        wanted = [key for key in set(keys) if _KEY.match(key)]
        if not wanted:
            return {}
        prefixes = sorted({key[:KEY_PREFIX_CHARS] for key in wanted})
        rows = self.snapshot.latest().rows_under(prefixes, ("key", "last_modified"))
        found = dict(zip(rows["key"].to_pylist(), rows["last_modified"].to_pylist(), strict=True))
        return {key: found[key] for key in wanted if found.get(key) is not None}

    def file_vector(self, key: str) -> np.ndarray | None:
        """The file's stored embedding [2048], or None."""
        rows = self._rows_of_key(key, ("key", "embedding"))
        if not rows.num_rows:
            return None
        return np.asarray(rows["embedding"][0].values, dtype=np.float32)

    def segments_vector(self, key: str) -> np.ndarray | None:
        """The mean of the file's stored segment embeddings [2048] (what a segment search
        queries with), or None if the file has no segments stored."""
        vectors = segment_vectors(self.segments.of_files([key], ["embedding"])["embedding"])
        return vectors.mean(axis=0) if len(vectors) else None

    def _rows_of_key(self, key: str, columns: tuple[str, ...]):
        if not _KEY.match(key):
            return self.snapshot.empty(columns)
        rows = self.snapshot.latest().rows_under([key[:KEY_PREFIX_CHARS]], columns)
        return self.snapshot.cast_read(rows.filter(pc.equal(rows["key"], key)))


def _item(row: dict) -> CatalogueItem:
    return CatalogueItem(
        key=row["key"],
        path=row["path"],
        source_uri=row["source_uri"],
        etag=row["etag"],
        duration_seconds=float(row["duration_seconds"]),
        tags=list(row[TAGS_COLUMN] or []),
        size_bytes=int(row["size_bytes"]),
    )
