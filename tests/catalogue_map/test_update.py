"""The catalogue map: fitted once, new files placed without refitting, refitted on drift."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.catalogue_map.projection import Projection, fit
from tasks.catalogue_map.store import MapStore
from tasks.catalogue_map.update import MIN_DRIFT_FILES, update_map
from tasks.storage.snapshots import SnapshotTable
from tests.snapshot_rows import rows_for, synthetic_items

SIZE = 2048


def family_centres(families: int, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(families, SIZE)).astype(np.float32)


def family_rows(
    prefix: str, centres: np.ndarray, count: int, run_id: str, seed: int, etag: str = "e1"
) -> tuple[pa.Table, np.ndarray]:
    """``count`` snapshot rows whose vectors come from ``centres`` in turn (with a little
    spread), and which centre each came from."""
    items = synthetic_items(count, prefix=f"file:///{prefix}", etag=etag)
    rows = rows_for(items, run_id)
    family = np.arange(count) % len(centres)
    rng = np.random.default_rng(seed)
    vectors = centres[family] + 0.15 * rng.normal(size=(count, SIZE)).astype(np.float32)
    index = rows.column_names.index("embedding")
    rows = rows.set_column(index, "embedding", pa.array(list(vectors), rows.schema[index].type))
    return rows, family


def points_by_key(store: MapStore) -> dict[str, tuple[float, float, int]]:
    rows = store.points.read(columns=["key", "x", "y", "projection_version"]).to_pylist()
    return {r["key"]: (r["x"], r["y"], r["projection_version"]) for r in rows}


def nearest_family_on_map(points: np.ndarray, reference: np.ndarray, families: np.ndarray):
    """For each point, the family of its nearest reference point on the map."""
    distances = np.linalg.norm(points[:, None, :] - reference[None, :, :], axis=2)
    return families[distances.argmin(axis=1)]


@pytest.fixture
def tables(tmp_path: Path) -> tuple[SnapshotTable, MapStore]:
    return SnapshotTable(str(tmp_path / "snapshot")), MapStore(str(tmp_path / "map"))


def test_the_first_update_fits_and_places_every_file_near_its_family(tables) -> None:
    snapshot, store = tables
    rows, family = family_rows("a", family_centres(3), 120, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")

    update = update_map(snapshot, store, "map-1")

    assert update.refitted and update.reason == "first map" and update.method == "tsne"
    assert update.placed == 120 and update.projection_version == 1
    points = points_by_key(store)
    assert set(points) == set(rows["key"].to_pylist())
    xy = np.array([points[k][:2] for k in rows["key"].to_pylist()])
    assert np.isfinite(xy).all() and np.abs(xy).max() <= 1.0 + 1e-5
    # every file's nearest other file on the map is of its own family
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert (family[distances.argmin(axis=1)] == family).all()
    assert update.preservation is not None and update.preservation > 0.3


def test_new_files_are_placed_without_refitting_near_their_family(tables) -> None:
    snapshot, store = tables
    centres = family_centres(3)
    rows, family = family_rows("a", centres, 120, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update_map(snapshot, store, "map-1")
    fitted = store.latest_projection()
    assert fitted is not None
    before = points_by_key(store)

    new, new_family = family_rows("b", centres, 9, "ingest-2", seed=2)
    snapshot.commit(new, [], "ingest-2")
    update = update_map(snapshot, store, "map-2")

    assert not update.refitted and update.placed == 9 and update.projection_version == 1
    after = points_by_key(store)
    # the files already placed did not move
    assert all(after[k] == before[k] for k in before)
    old_xy = np.array([after[k][:2] for k in rows["key"].to_pylist()])
    new_xy = np.array([after[k][:2] for k in new["key"].to_pylist()])
    assert (nearest_family_on_map(new_xy, old_xy, family) == new_family).all()
    # placing one file is the projection's own arithmetic: the stored projection places it the
    # same way in a later process
    again = store.latest_projection()
    vectors = np.stack(new["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    assert np.allclose(again.place(again.reduce(vectors[:1])), new_xy[:1], atol=1e-5)


def test_a_rerun_changes_nothing_and_changed_or_removed_files_follow(tables) -> None:
    snapshot, store = tables
    centres = family_centres(2)
    rows, family = family_rows("a", centres, 80, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update_map(snapshot, store, "map-1")
    version = store.points.version()

    rerun = update_map(snapshot, store, "map-2")
    assert (rerun.placed, rerun.removed, rerun.refitted) == (0, 0, False)
    assert store.points.version() == version  # nothing written

    keys = rows["key"].to_pylist()
    # file 0 (family 0) now sounds like family 1; files 1 and 2 are gone
    moved, _ = family_rows("a", centres[::-1], 1, "ingest-2", seed=5, etag="e2")
    snapshot.commit(moved, keys[1:3], "ingest-2")
    update = update_map(snapshot, store, "map-3")
    assert (update.placed, update.removed, update.refitted) == (1, 2, False)
    points = points_by_key(store)
    assert keys[1] not in points and keys[2] not in points
    others = [k for k in keys[3:]]
    others_xy = np.array([points[k][:2] for k in others])
    found = nearest_family_on_map(np.array([points[keys[0]][:2]]), others_xy, family[3:])
    assert found[0] == 1


def test_sounds_the_projection_never_saw_make_it_refit(tables) -> None:
    snapshot, store = tables
    rows, _ = family_rows("a", family_centres(3, seed=0), 150, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    # a full sample: growth alone does not refit
    update_map(snapshot, store, "map-1", fit_sample=150)

    # more files of the fit's families: no refit
    same, _ = family_rows("b", family_centres(3, seed=0), MIN_DRIFT_FILES, "ingest-2", seed=2)
    snapshot.commit(same, [], "ingest-2")
    kept = update_map(snapshot, store, "map-2", fit_sample=150)
    assert not kept.refitted and kept.preservation is not None

    # then families the fit never saw
    unseen, _ = family_rows("c", family_centres(4, seed=9), 2 * MIN_DRIFT_FILES, "i3", seed=3)
    snapshot.commit(unseen, [], "ingest-3")
    update = update_map(snapshot, store, "map-3", fit_sample=150)
    assert update.refitted and update.reason.startswith("drift"), update
    assert update.projection_version == 2
    assert {v for *_, v in points_by_key(store).values()} == {2}
    history = store.history().to_pylist()
    assert history[0]["reason"] == "first map"
    assert history[1]["reason"].startswith("drift")


def test_a_catalogue_that_doubled_past_a_small_fit_is_refitted(tables) -> None:
    snapshot, store = tables
    centres = family_centres(2)
    rows, _ = family_rows("a", centres, 30, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update_map(snapshot, store, "map-1", fit_sample=1_000)
    more, _ = family_rows("b", centres, 30, "ingest-2", seed=2)
    snapshot.commit(more, [], "ingest-2")
    update = update_map(snapshot, store, "map-2", fit_sample=1_000)
    assert update.refitted and "grew to 60 files" in update.reason
    assert update_map(snapshot, store, "map-3", refit=True).reason == "asked"


def test_a_fit_on_a_sample_places_the_rest(tables) -> None:
    snapshot, store = tables
    rows, family = family_rows("a", family_centres(3), 150, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update = update_map(snapshot, store, "map-1", fit_sample=60)
    assert update.placed == 150 and store.latest_projection().fitted_files == 60
    points = points_by_key(store)
    xy = np.array([points[k][:2] for k in rows["key"].to_pylist()])
    distances = np.linalg.norm(xy[:, None] - xy[None], axis=2)
    np.fill_diagonal(distances, np.inf)
    assert (family[distances.argmin(axis=1)] == family).mean() > 0.95


@pytest.mark.parametrize("files", [1, 2, 5])
def test_tiny_catalogues_get_a_map(tables, files: int) -> None:
    snapshot, store = tables
    rows, _ = family_rows("a", family_centres(2), files, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update = update_map(snapshot, store, "map-1")
    assert update.method == "pca" and update.placed == files
    xy = np.array([p[:2] for p in points_by_key(store).values()])
    assert np.isfinite(xy).all()
    if files > 1:  # distinct files are distinct points
        assert len({tuple(p) for p in xy.round(6)}) == files


def test_an_emptied_catalogue_empties_the_map(tables) -> None:
    snapshot, store = tables
    rows, _ = family_rows("a", family_centres(2), 10, "ingest-1", seed=1)
    snapshot.commit(rows, [], "ingest-1")
    update_map(snapshot, store, "map-1")
    snapshot.commit(rows.slice(0, 0), rows["key"].to_pylist(), "ingest-2")
    update = update_map(snapshot, store, "map-2")
    assert (update.files, update.removed) == (0, 10)
    assert points_by_key(store) == {}


def test_the_stored_projection_is_the_fitted_one(tables) -> None:
    _, store = tables
    rows, _ = family_rows("a", family_centres(2), 40, "ingest-1", seed=1)
    vectors = np.stack(rows["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    fitted = fit(vectors)
    stored = store.record_projection(fitted, 40, 1, "first map", 0.1, 0.5, 0.9)
    loaded = store.latest_projection()
    assert isinstance(loaded, Projection) and loaded.version == stored.version == 1
    for name in ("mean", "components", "anchors", "anchor_points"):
        assert np.array_equal(getattr(loaded, name), getattr(fitted, name))
    # an anchor is placed on itself
    assert np.allclose(
        loaded.place(loaded.reduce(vectors[:3])), fitted.anchor_points[:3], atol=1e-5
    )


def test_placement_preservation_tells_a_faithful_placement_from_a_shuffled_one() -> None:
    rng = np.random.default_rng(0)
    rows, _ = family_rows("a", family_centres(8), 400, "ingest-1", seed=1)
    vectors = np.stack(rows["embedding"].to_numpy(zero_copy_only=False)).astype(np.float32)
    fitted = fit(vectors[:300])
    projection = Projection(1, fitted.method, None, 300, fitted.mean, fitted.components,
                            fitted.anchors, fitted.anchor_points, None, 1.0)  # fmt: skip
    reduced = projection.reduce(vectors[300:])
    placed = projection.place(reduced)
    faithful = projection.placement_preservation(reduced, placed)
    shuffled = projection.placement_preservation(reduced, placed[rng.permutation(100)])
    assert faithful > 0.3 and shuffled < 0.1
    # an anchor is compared without itself: placed among the others, it still scores
    left_out = projection.place(projection.anchors, leave_anchors_out=True)
    assert projection.placement_preservation(projection.anchors, left_out) > 0.3


def test_placing_from_the_snapshots_changes_agrees_with_comparing_everything(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from tasks.catalogue_map import update

    centres = family_centres(3)
    rows, _ = family_rows("a", centres, 90, "ingest-1", seed=1)
    new, _ = family_rows("b", centres, 12, "ingest-2", seed=2)
    changed, _ = family_rows("a", centres[::-1], 2, "ingest-3", seed=3, etag="e2")
    points = []
    for name, full in (("diff", False), ("full", True)):
        snapshot = SnapshotTable(str(tmp_path / name / "snapshot"))
        store = MapStore(str(tmp_path / name / "map"))
        snapshot.commit(rows, [], "ingest-1")
        update_map(snapshot, store, "map-1")
        snapshot.commit(new, rows["key"].to_pylist()[10:14], "ingest-2")
        snapshot.commit(changed, [], "ingest-3")
        if full:  # as without a record of what the map reflects
            monkeypatch.setattr(update, "_read_cursor", lambda store: None)
        done = update_map(snapshot, store, "map-2")
        assert (done.files, done.placed, done.removed) == (98, 14, 4)
        assert done.files == len(points_by_key(store))
        points.append({k: p[:2] for k, p in points_by_key(store).items()})
    diff, full = points
    assert diff.keys() == full.keys()
    differ = [k for k in diff if not np.allclose(diff[k], full[k], atol=1e-5)]
    assert not differ, [(diff[k], full[k]) for k in differ]
