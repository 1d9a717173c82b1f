"""Keep the map up to date with the snapshot: place new and changed files with the current
projection, drop the files that left, and refit when it is worth it.

Each commit of the points table records what it reflects (the snapshot version, the
projection, the files on the map, how many were placed since the fit), so the next update
reads only the snapshot's changes since then, partition by partition, as an index refresh
does. Without that record (a first map, a commit from before it, a snapshot version no longer
readable) the whole snapshot is compared with the map instead.

A refit happens when there is no projection yet, when asked, when the catalogue has grown to
twice the files a projection was fitted on while that was fewer than a full sample, or when
drift is measured among the files placed since the fit:

- neighbours kept (``Projection.placement_preservation``) fell below ``1 - REFIT_DROP`` of
  what the fit kept, or
- the share of their vectors the reduced space keeps (``explained``) fell below ``1 -
  REFIT_DROP`` of the fit's: sounds unlike any the projection was fitted on, which the reduced
  space cannot tell apart (a new kind of recording, another model).

Drift is measured each time another ``MIN_DRIFT_FILES`` files were placed since the fit (it
reads every point: 0.2 s at 100,000 files).
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
from deltalake.exceptions import DeltaError

from tasks.catalogue_map.projection import FIT_SAMPLE, PRESERVATION_SAMPLE, Projection, fit
from tasks.catalogue_map.store import POINT_ROWS, MapStore, decode_reduced, encode_reduced
from tasks.storage.keyed_table import TableVersion, key_prefixes
from tasks.storage.snapshots import SnapshotTable, embeddings_of

_log = logging.getLogger(__name__)
#: Relative fall of a drift measure (against the fit's) that calls for a refit.
REFIT_DROP = 0.25
#: Files placed since the fit before drift is measured (fewer say little).
MIN_DRIFT_FILES = 100
#: The commit information that says what a points version reflects (``_Cursor``, as JSON).
CURSOR = "audio_embeddings.map"
#: What tells a snapshot row apart from its earlier versions (a changed file, a new model).
_FILE_VERSION = ["key", "etag", "ingest_run_id"]
#: The snapshot columns placing a file needs.
_PLACE_COLUMNS = ["key", "path", "etag", "run_id", "embedding"]
#: Rows read from the snapshot at a time (their vectors: 8 MB).
_READ_ROWS = 1_024


@dataclass(frozen=True)
class MapUpdate:
    """What an update did. ``reason`` says why it refitted (None: it placed files with the
    projection it had); ``preservation`` and ``explained`` are the drift measures of the files
    placed since the fit (the fit's own when it refitted; None when not measured)."""

    files: int
    placed: int
    removed: int
    projection_version: int | None
    method: str | None
    refitted: bool
    reason: str | None
    preservation: float | None
    explained: float | None
    seconds: float


@dataclass(frozen=True)
class _Cursor:
    """What a points version reflects."""

    snapshot_version: int
    projection_version: int
    files: int
    placed_since_fit: int


@dataclass
class _Placed:
    """Point rows made by placing files, with their reduced vectors and points."""

    rows: list[pa.Table]
    reduced: list[np.ndarray]
    points: list[np.ndarray]
    explained: list[np.ndarray]

    @classmethod
    def none(cls) -> _Placed:
        return cls([], [], [], [])

    @property
    def count(self) -> int:
        return sum(t.num_rows for t in self.rows)

    def table(self) -> pa.Table:
        return pa.concat_tables(self.rows) if self.rows else POINT_ROWS.empty_table()

    def add(self, other: _Placed) -> None:
        for name in ("rows", "reduced", "points", "explained"):
            getattr(self, name).extend(getattr(other, name))


def update_map(
    snapshot: SnapshotTable,
    store: MapStore,
    run_id: str,
    refit: bool = False,
    fit_sample: int = FIT_SAMPLE,
    seed: int = 0,
    n_jobs: int = 1,
) -> MapUpdate:
    """Bring ``store``'s map up to the snapshot's latest version (see the module's text)."""
    started = time.perf_counter()
    latest = snapshot.latest()
    if latest.table is None:
        return MapUpdate(0, 0, 0, None, None, False, None, None, None, _since(started))
    latest_version = latest.table.version()
    projection = store.latest_projection()
    cursor = _read_cursor(store)
    if projection is not None and (
        cursor is None or cursor.projection_version != projection.version
    ):
        cursor = None  # points of an older projection may remain: compare everything
    if not refit and cursor is not None and cursor.snapshot_version == latest_version:
        return _unchanged(cursor.files, 0, 0, projection, None, None, started)

    placed, removed, files = _Placed.none(), [], 0
    reason = "first map" if projection is None else ("asked" if refit else None)
    if reason is None:
        placed, removed, files = _changes(snapshot, latest, store, projection, cursor)
        reason = _grown(projection, files, fit_sample)
    if reason is None:
        since_fit = (cursor.placed_since_fit if cursor else 0) + placed.count
        cursor = _Cursor(latest_version, projection.version, files, since_fit)
        _commit(store, placed.table(), removed, run_id, 1, cursor)
        preservation = explained = None
        # measured each time another MIN_DRIFT_FILES files were placed since the fit
        if since_fit // MIN_DRIFT_FILES > (since_fit - placed.count) // MIN_DRIFT_FILES:
            preservation, explained = _drift(store, projection)
            reason = _drift_reason(projection, preservation, explained)
        if reason is None:
            moved = (files, placed.count, len(removed))
            return _unchanged(*moved, projection, preservation, explained, started)

    keys = latest.rows_under(None, ["key"])["key"]
    if len(keys) == 0:  # every file left: so do their points
        removed = store.points.read(columns=["key"])["key"].to_pylist()
        store.points.commit(POINT_ROWS.empty_table(), removed, run_id, sequence=2)
        return MapUpdate(0, 0, len(removed), None, None, False, None, None, None, _since(started))
    projection, placed, removed = _refit(
        latest, keys, store, reason, fit_sample, seed, n_jobs, run_id
    )
    files = placed.count
    cursor = _Cursor(latest_version, projection.version, files, 0)
    _commit(store, placed.table(), removed, run_id, 2, cursor)
    return MapUpdate(
        files=files,
        placed=files,
        removed=len(removed),
        projection_version=projection.version,
        method=projection.method,
        refitted=True,
        reason=reason,
        preservation=projection.preservation,
        explained=projection.explained,
        seconds=_since(started),
    )


def _unchanged(
    files: int,
    placed: int,
    removed: int,
    projection: Projection,
    preservation: float | None,
    explained: float | None,
    started: float,
) -> MapUpdate:
    """An update that kept its projection."""
    return MapUpdate(
        files=files,
        placed=placed,
        removed=removed,
        projection_version=projection.version,
        method=projection.method,
        refitted=False,
        reason=None,
        preservation=preservation,
        explained=explained,
        seconds=_since(started),
    )


def _changes(
    snapshot: SnapshotTable,
    latest: TableVersion,
    store: MapStore,
    projection: Projection,
    cursor: _Cursor | None,
) -> tuple[_Placed, list[str], int]:
    """The files new or changed since the cursor, placed; the keys that left; the files the map
    then holds. From the snapshot's changes when the cursor's version can be read, else from a
    comparison of the whole snapshot with the map."""
    if cursor is not None:
        try:
            version = latest.table.version()
            diff = snapshot.diff(cursor.snapshot_version, version, _PLACE_COLUMNS)
            placed, removed = _Placed.none(), []
            for chunk in diff.batches(_READ_ROWS):
                if chunk.upserts.num_rows:
                    placed.add(_place_rows(chunk.upserts, projection))
                removed.extend(chunk.deleted_keys)
        except (DeltaError, OSError, ValueError) as error:  # e.g. that version was vacuumed
            _log.warning("map: comparing the whole snapshot (%s)", error)
        else:
            keys = placed.table()["key"].combine_chunks()
            asked = pa.concat_arrays([keys, pa.array(removed, pa.string())])
            known = _known_keys(store, asked)
            added = sum(1 for key in keys.to_pylist() if key not in known)
            gone = sum(1 for key in removed if key in known)
            return placed, [k for k in removed if k in known], cursor.files + added - gone
    files = latest.rows_under(None, ["key", "etag", "run_id"]).rename_columns(_FILE_VERSION)
    mapped = store.points.read(columns=[*_FILE_VERSION, "projection_version"])
    removed = _missing(mapped["key"], files["key"]).to_pylist()
    current = mapped.filter(pc.equal(mapped["projection_version"], projection.version))
    fresh = files.join(current.select(_FILE_VERSION), _FILE_VERSION, join_type="left semi")
    stale = _missing(files["key"], fresh["key"])
    return _place(latest, projection, stale), removed, files.num_rows


def _known_keys(store: MapStore, keys: pa.Array) -> set[str]:
    """Which of ``keys`` the map has (only their partitions are read)."""
    if len(keys) == 0:
        return set()
    prefixes = pc.unique(key_prefixes(keys)).to_pylist()
    rows = store.points.rows_under(prefixes, ["key"])
    return set(rows["key"].to_pylist()) & set(keys.to_pylist())


def _grown(projection: Projection, files: int, fit_sample: int) -> str | None:
    if projection.fitted_files < fit_sample and files >= 2 * projection.fitted_files:
        return (
            f"the catalogue grew to {files} files from the {projection.fitted_files} "
            "the map was fitted on"
        )
    return None


def _drift_reason(
    projection: Projection, preservation: float | None, explained: float | None
) -> str | None:
    floor = 1 - REFIT_DROP
    kept = projection.preservation
    if preservation is not None and kept and preservation < floor * kept:
        return (
            f"drift: files placed since the fit keep {preservation:.2f} of their "
            f"neighbours, the fit kept {kept:.2f}"
        )
    if explained is not None and explained < floor * projection.explained:
        return (
            f"drift: the reduced space keeps {explained:.2f} of new files' spread, "
            f"{projection.explained:.2f} of the fit's"
        )
    return None


def _drift(store: MapStore, projection: Projection) -> tuple[float | None, float | None]:
    """Neighbours kept and spread kept among the files placed since ``projection`` was fitted
    (None, None while there are fewer than ``MIN_DRIFT_FILES``)."""
    rows = store.points.read(columns=["reduced", "x", "y", "placed_at", "explained"])
    rows = rows.filter(
        pc.greater(rows["placed_at"], pa.scalar(projection.fitted_at, rows["placed_at"].type))
    )
    if rows.num_rows < MIN_DRIFT_FILES:
        return None, None
    points = np.column_stack([rows["x"].to_numpy(), rows["y"].to_numpy()])
    preservation = projection.placement_preservation(decode_reduced(rows["reduced"]), points)
    return preservation, float(pc.mean(rows["explained"]).as_py())


def _refit(
    latest: TableVersion,
    keys: pa.ChunkedArray,
    store: MapStore,
    reason: str,
    fit_sample: int,
    seed: int,
    n_jobs: int,
    run_id: str,
) -> tuple[Projection, _Placed, list[str]]:
    """Fit on a seeded sample of ``fit_sample`` of the snapshot's ``keys``, then place every
    file with the fit; also the keys on the map that left the snapshot."""
    started = time.perf_counter()
    # the sample and its order go by key: the same catalogue gets the same map however its
    # files happen to be laid out in storage
    keys = keys.take(pc.sort_indices(keys))
    if len(keys) > fit_sample:
        chosen = np.random.default_rng(seed).choice(len(keys), fit_sample, replace=False)
        keys = keys.take(pa.array(np.sort(chosen)))
    read = pa.Table.from_batches(
        list(latest.batches(["key", "embedding"], keys, _READ_ROWS))
    ).sort_by("key")
    sample = embeddings_of(read)
    fitted = fit(sample, seed, n_jobs)
    provisional = fitted.projection()
    placed = _place(latest, provisional, None)
    reduced, explained = np.concatenate(placed.reduced), np.concatenate(placed.explained)
    # measured as later files will be: each placed among the anchors other than itself (a
    # seeded sample of the files in key order, so that the figure does not depend on layout)
    by_key = pc.sort_indices(placed.table()["key"]).to_numpy()
    asked = by_key[np.random.default_rng(seed).permutation(len(reduced))[:PRESERVATION_SAMPLE]]
    preservation = provisional.placement_preservation(
        reduced[asked], provisional.place(reduced[asked], leave_anchors_out=True), seed
    )
    projection = store.record_projection(
        fitted,
        catalogue_files=len(reduced),
        snapshot_version=latest.table.version(),
        reason=reason,
        seconds=time.perf_counter() - started,
        preservation=preservation,
        explained=float(np.mean(explained)),
    )
    placed.rows = [_with_version(rows, projection.version) for rows in placed.rows]
    mapped = store.points.read(columns=["key"])["key"]
    removed = _missing(mapped, placed.table()["key"]).to_pylist()
    return projection, placed, removed


def _with_version(rows: pa.Table, version: int) -> pa.Table:
    index = rows.column_names.index("projection_version")
    return rows.set_column(
        index, "projection_version", pa.array([version] * rows.num_rows, pa.int64())
    )


def _place(latest: TableVersion, projection: Projection, keys: pa.Array | None) -> _Placed:
    """Reduce and place the files of ``keys`` (None: every file) with ``projection``."""
    placed = _Placed.none()
    if keys is not None and len(keys) == 0:
        return placed
    for batch in latest.batches(_PLACE_COLUMNS, keys, _READ_ROWS):
        placed.add(_place_rows(pa.Table.from_batches([batch]), projection))
    return placed


def _place_rows(rows: pa.Table, projection: Projection) -> _Placed:
    """Snapshot rows (``_PLACE_COLUMNS``) as placed point rows."""
    vectors = embeddings_of(rows)
    reduced = projection.reduce(vectors)
    points = projection.place(reduced)
    explained = projection.explained_fraction(vectors).astype(np.float32)
    count, now = rows.num_rows, datetime.now(UTC)
    table = pa.table(
        {
            "key": rows["key"],
            "path": rows["path"],
            "etag": rows["etag"],
            "ingest_run_id": rows["run_id"],
            "x": pa.array(points[:, 0], pa.float32()),
            "y": pa.array(points[:, 1], pa.float32()),
            "projection_version": pa.array([projection.version] * count, pa.int64()),
            "reduced": encode_reduced(reduced),
            "explained": pa.array(explained, pa.float32()),
            "placed_at": pa.array([now] * count, pa.timestamp("us", tz="UTC")),
            "run_id": pa.array([""] * count, pa.string()),
        }
    )
    return _Placed([table], [reduced], [points], [explained])


def _commit(
    store: MapStore,
    rows: pa.Table,
    removed: Iterable[str],
    run_id: str,
    sequence: int,
    cursor: _Cursor,
) -> None:
    rows = rows.set_column(
        rows.column_names.index("run_id"), "run_id", pa.array([run_id] * rows.num_rows)
    )
    store.points.commit(
        rows, list(removed), run_id, sequence, metadata={CURSOR: json.dumps(asdict(cursor))}
    )


def _read_cursor(store: MapStore) -> _Cursor | None:
    found = store.points.commit_metadata(CURSOR)
    return None if found is None else _Cursor(**json.loads(found))


def _missing(keys: pa.Array | pa.ChunkedArray, present) -> pa.Array:
    """``keys`` not among ``present``."""
    if isinstance(keys, pa.ChunkedArray):
        keys = keys.combine_chunks()
    if isinstance(present, pa.ChunkedArray):
        present = present.combine_chunks()
    return keys.filter(pc.invert(pc.is_in(keys, value_set=present.cast(pa.string()))))


def _since(started: float) -> float:
    return round(time.perf_counter() - started, 3)
