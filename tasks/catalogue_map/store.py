"""Where the map lives, beside the snapshot: ``<map uri>/points``, a keyed Delta table with one
row per file (its map point, the projection version that placed it, its reduced vector), and
``<map uri>/projections``, one row per fitted projection (appended, never rewritten: the
history of refits, with what was measured at each)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake import write_deltalake

from tasks.catalogue_map.projection import REDUCED_DIMENSIONS, Fit, Projection, from_bytes, to_bytes
from tasks.storage.delta import UTC_MICROS, open_table, read_or_empty, read_table
from tasks.storage.keyed_table import PARTITION_COLUMN, KeyedTable

POINTS_SCHEMA = pa.schema(
    [
        pa.field("key", pa.string(), nullable=False),
        pa.field(PARTITION_COLUMN, pa.string()),
        pa.field("path", pa.string()),
        # the snapshot row placed (its etag and the run that embedded it): a file that changed,
        # or was embedded again, is placed again
        pa.field("etag", pa.string()),
        pa.field("ingest_run_id", pa.string()),
        pa.field("x", pa.float32()),
        pa.field("y", pa.float32()),
        pa.field("projection_version", pa.int64()),
        # the file's vector in the projection's reduced space, float16 little-endian: what drift
        # is measured on without reading the snapshot's vectors again
        pa.field("reduced", pa.binary()),
        # the share of the vector's spread the reduced space keeps (Projection.explained_fraction)
        pa.field("explained", pa.float32()),
        pa.field("placed_at", UTC_MICROS),
        pa.field("run_id", pa.string()),
    ]
)

PROJECTIONS_SCHEMA = pa.schema(
    [
        pa.field("version", pa.int64()),
        pa.field("method", pa.string()),
        pa.field("fitted_at", UTC_MICROS),
        pa.field("fitted_files", pa.int64()),
        pa.field("catalogue_files", pa.int64()),
        pa.field("snapshot_version", pa.int64()),
        # measured on the files placed by the fit (tasks.catalogue_map.projection)
        pa.field("preservation", pa.float64()),
        pa.field("explained", pa.float64()),
        # why it was fitted: first map, asked, grown, drift ...
        pa.field("reason", pa.string()),
        pa.field("seconds", pa.float64()),
        # arrays as .npy bytes
        pa.field("mean", pa.binary()),
        pa.field("components", pa.binary()),
        pa.field("anchors", pa.binary()),
        pa.field("anchor_points", pa.binary()),
    ]
)
#: A point row as placement makes it (commit fills the partition column).
POINT_ROWS = pa.schema([f for f in POINTS_SCHEMA if f.name != PARTITION_COLUMN])
#: The projections' columns without their arrays (the history the page and reports show).
HISTORY_COLUMNS = [
    n
    for n in PROJECTIONS_SCHEMA.names
    if n not in ("mean", "components", "anchors", "anchor_points")
]


class MapPoints(KeyedTable):
    """One row per file of the snapshot: where it is on the map."""

    schema = POINTS_SCHEMA
    name = "audio_embeddings_map"
    description = "2-D map points of the catalogue's files"
    app = "audio-embeddings-map"


def encode_reduced(reduced: np.ndarray) -> pa.Array:
    """Reduced vectors [n, REDUCED_DIMENSIONS] as the stored float16 bytes."""
    half = np.ascontiguousarray(reduced, dtype="<f2")
    return pa.array([row.tobytes() for row in half], pa.binary())


def decode_reduced(column: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """The stored bytes back to float32 [n, REDUCED_DIMENSIONS]."""
    data = b"".join(column.to_pylist())
    return np.frombuffer(data, dtype="<f2").reshape(-1, REDUCED_DIMENSIONS).astype(np.float32)


class MapStore:
    """The map tables under ``uri`` (a local folder or ``az://`` URL)."""

    def __init__(self, uri: str, storage_options: dict[str, str] | None = None) -> None:
        self.uri = uri.rstrip("/")
        self.storage_options = storage_options
        self.points = MapPoints(f"{self.uri}/points", storage_options)
        self.projections_uri = f"{self.uri}/projections"

    def history(self) -> pa.Table:
        """Every projection fitted, oldest first, without its arrays."""
        rows = read_or_empty(
            self.projections_uri, PROJECTIONS_SCHEMA, self.storage_options, HISTORY_COLUMNS
        )
        return rows.sort_by("version")

    def latest_projection(self) -> Projection | None:
        """The newest projection, arrays and all; None before the first fit."""
        table = open_table(self.projections_uri, self.storage_options)
        if table is None:
            return None
        versions = read_table(table, ["version"])["version"]
        if len(versions) == 0:
            return None
        newest = pc.max(versions).as_py()
        data = table.to_pyarrow_dataset()
        row = data.to_table(filter=pc.field("version") == newest).to_pylist()[0]
        return Projection(
            version=row["version"],
            method=row["method"],
            fitted_at=row["fitted_at"],
            fitted_files=row["fitted_files"],
            mean=from_bytes(row["mean"]),
            components=from_bytes(row["components"]),
            anchors=from_bytes(row["anchors"]),
            anchor_points=from_bytes(row["anchor_points"]),
            preservation=row["preservation"],
            explained=row["explained"],
        )

    def record_projection(
        self,
        fitted: Fit,
        catalogue_files: int,
        snapshot_version: int,
        reason: str,
        seconds: float,
        preservation: float | None,
        explained: float,
    ) -> Projection:
        """Append a fitted projection as the next version and return it."""
        history = self.history()
        version = (pc.max(history["version"]).as_py() or 0) + 1 if history.num_rows else 1
        fitted_at = datetime.now(UTC)
        row = {
            "version": version,
            "method": fitted.method,
            "fitted_at": fitted_at,
            "fitted_files": len(fitted.anchors),
            "catalogue_files": catalogue_files,
            "snapshot_version": snapshot_version,
            "preservation": preservation,
            "explained": explained,
            "reason": reason,
            "seconds": seconds,
            "mean": to_bytes(fitted.mean),
            "components": to_bytes(fitted.components),
            "anchors": to_bytes(fitted.anchors),
            "anchor_points": to_bytes(fitted.anchor_points),
        }
        write_deltalake(
            self.projections_uri,
            pa.Table.from_pylist([row], PROJECTIONS_SCHEMA),
            mode="append",
            storage_options=self.storage_options,
        )
        return dataclasses.replace(
            fitted.projection(),
            version=version,
            fitted_at=fitted_at,
            preservation=preservation,
            explained=explained,
        )
