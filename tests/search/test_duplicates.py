"""Near-duplicate groups and isolated files, found through the index's nearest neighbours."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.index.lancedb_index import LanceDBIndex
from tasks.index.refresh import refresh_index
from tasks.model.constants import EMBEDDING_SIZE
from tasks.search.duplicates import catalogue_neighbours, file_vectors
from tasks.storage.snapshots import SnapshotTable
from tests.snapshot_rows import rows_for, synthetic_items


def _unit(vector: np.ndarray) -> np.ndarray:
    return (vector / np.linalg.norm(vector)).astype(np.float32)


def _near(base: np.ndarray, cosine: float, rng: np.random.Generator) -> np.ndarray:
    """A vector at exactly ``cosine`` from ``base`` (non-negative, like Cnn14's)."""
    base = _unit(base)
    other = rng.random(EMBEDDING_SIZE)
    other = _unit(other - other @ base * base)
    mixed = cosine * base + np.sqrt(1 - cosine**2) * other
    return _unit(mixed)


@pytest.fixture(scope="module")
def catalogue(tmp_path_factory: pytest.TempPathFactory):
    """Twelve files: a trio at 0.999, a pair at 0.97, six unrelated, and one far from all."""
    rng = np.random.default_rng(5)
    vectors = [rng.random(EMBEDDING_SIZE) for _ in range(12)]
    vectors[1] = _near(vectors[0], 0.999, rng)  # 000000, 000001, 000002: one recording
    vectors[2] = _near(vectors[0], 0.9985, rng)
    vectors[4] = _near(vectors[3], 0.97, rng)  # 000003, 000004: alike, not copies
    vectors[11] = np.zeros(EMBEDDING_SIZE)  # 000011: one band only, unlike everything
    vectors[11][:8] = 1.0
    items = synthetic_items(12)
    rows = rows_for(items, "r1")
    embeddings = pa.array([_unit(v) for v in vectors], rows.schema.field("embedding").type)
    rows = rows.set_column(rows.schema.get_field_index("embedding"), "embedding", embeddings)
    folder = tmp_path_factory.mktemp("dups")
    snapshot = SnapshotTable(str(folder / "snap"))
    snapshot.commit(rows, [], "r1")
    index = LanceDBIndex(str(folder / "index"))
    refresh_index(index, snapshot)
    return snapshot, index


def test_copies_group_together_and_the_threshold_is_a_cosine(catalogue) -> None:
    snapshot, index = catalogue
    found = catalogue_neighbours(file_vectors(snapshot), index, threshold=0.98)
    assert found.files == 12
    assert [g.paths for g in found.groups] == [["000000.wav", "000001.wav", "000002.wav"]]
    assert 0.996 < found.groups[0].weakest < 0.999
    looser = catalogue_neighbours(file_vectors(snapshot), index, threshold=0.96)
    assert [g.paths for g in looser.groups] == [
        ["000000.wav", "000001.wav", "000002.wav"],
        ["000003.wav", "000004.wav"],
    ]
    assert looser.groups[1].weakest == pytest.approx(0.97, abs=1e-4)


@pytest.mark.parametrize("order", [0, 1, 2, 3])
def test_the_groups_do_not_depend_on_the_order_files_are_visited(catalogue, order: int) -> None:
    snapshot, index = catalogue
    files = list(file_vectors(snapshot))
    np.random.default_rng(order).shuffle(files)
    found = catalogue_neighbours(files, index, threshold=0.96, neighbours=2)
    assert [g.paths for g in found.groups] == [
        ["000000.wav", "000001.wav", "000002.wav"],
        ["000003.wav", "000004.wav"],
    ]


def test_the_most_isolated_file_comes_first(catalogue) -> None:
    snapshot, index = catalogue
    found = catalogue_neighbours(file_vectors(snapshot), index, isolated=3)
    assert len(found.isolated) == 3
    assert found.isolated[0].path == "000011.wav"
    similarities = [f.similarity for f in found.isolated]
    assert similarities == sorted(similarities) and similarities[0] < 0.5
    assert all(f.nearest_path != f.path for f in found.isolated)


def test_an_empty_catalogue_has_no_groups(tmp_path: Path) -> None:
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    found = catalogue_neighbours(file_vectors(snapshot), LanceDBIndex(str(tmp_path / "index")))
    assert (found.files, found.groups, found.isolated) == (0, [], [])
