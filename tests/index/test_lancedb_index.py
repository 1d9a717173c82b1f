"""The LanceDB index: refresh by diff, reflected version, k-NN search and safe filters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest

from tasks.audio import samples
from tasks.index.filters import SearchFilter
from tasks.index.lancedb_index import LanceDBIndex
from tasks.ingest.shard import embed_shard
from tasks.model.constants import EMBEDDING_SIZE
from tasks.model.embedder import PannsEmbedder
from tasks.storage.snapshots import TAGS_COLUMN, SnapshotTable
from tasks.storage.sources import LocalSource
from tests.snapshot_rows import rows_for, synthetic_items


@pytest.fixture
def filled(tmp_path: Path, catalogue: Path, embedder: PannsEmbedder):
    """A catalogue with a tricky file name, snapshotted and indexed."""
    samples.write(catalogue / "it's odd/o'brien.wav", samples.tone(2.0, 16_000, 1234.0), 16_000)
    source = LocalSource(catalogue)
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    snapshot.commit(embed_shard(list(source.list_items()), source, embedder, "r1").rows, [], "r1")
    index = LanceDBIndex(str(tmp_path / "index"))
    index.apply(snapshot.diff(None), snapshot.uri)
    return snapshot, index


def test_index_equals_snapshot_and_records_its_version(filled) -> None:
    snapshot, index = filled
    assert index.count() == 6
    assert index.document_keys() == set(snapshot.read(columns=["key"])["key"].to_pylist())
    assert index.reflected_version(snapshot.uri) == snapshot.version()
    assert index.reflected_version("/some/other/table") is None


def test_every_file_is_its_own_nearest_neighbour(filled) -> None:
    snapshot, index = filled
    for row in snapshot.read().to_pylist():
        hits = index.search(np.asarray(row["embedding"], dtype=np.float32), k=3)
        assert hits[0].key == row["key"]
        assert hits[0].score == pytest.approx(1.0, abs=1e-4)
        assert hits[0].score >= hits[1].score >= hits[2].score
        assert hits[0].path == row["path"] and hits[0].tags == row[TAGS_COLUMN]


def test_refresh_applies_only_the_difference(
    filled, catalogue: Path, embedder: PannsEmbedder
) -> None:
    snapshot, index = filled
    rows = {r["path"]: r for r in snapshot.read().to_pylist()}
    v1 = snapshot.version()
    source = LocalSource(catalogue)
    changed = next(i for i in source.list_items() if i.path == "tones/a440.wav")
    replacement = embed_shard([changed], source, embedder, "r2").rows
    snapshot.commit(replacement, [rows["noise/white.ogg"]["key"]], "r2")
    diff = snapshot.diff(v1)
    result = index.apply(diff, snapshot.uri)
    assert (result.upserted, result.deleted) == (1, 1)
    assert index.count() == 5
    assert rows["noise/white.ogg"]["key"] not in index.document_keys()
    assert index.reflected_version(snapshot.uri) == snapshot.version()


def test_filters_restrict_results_and_quotes_cannot_widen_them(filled) -> None:
    snapshot, index = filled
    query = np.asarray(snapshot.read().to_pylist()[0]["embedding"], dtype=np.float32)
    tones = index.search(query, k=10, where=SearchFilter(path_prefix="tones/"))
    assert {h.path for h in tones} == {"tones/a440.wav", "tones/a220.flac"}
    quoted = index.search(query, k=10, where=SearchFilter(path_prefix="it's odd/"))
    assert [h.path for h in quoted] == ["it's odd/o'brien.wav"]
    injection = index.search(query, k=10, where=SearchFilter(path_prefix="x' OR '1'='1"))
    assert injection == []
    tag = snapshot.read().to_pylist()[0][TAGS_COLUMN][0]
    tagged = index.search(query, k=10, where=SearchFilter(any_tags=(tag, "Nope')--")))
    assert tagged and all(tag in h.tags for h in tagged)


def test_query_vector_of_the_wrong_size_is_refused(filled) -> None:
    _, index = filled
    with pytest.raises(ValueError, match=str(EMBEDDING_SIZE)):
        index.search(np.zeros(10, dtype=np.float32))


def _commit_synthetic(snapshot: SnapshotTable, count: int, start: int, seed: int):
    """Commit ``count`` rows of clustered non-negative vectors; return the diff and vectors."""
    items = synthetic_items(start + count)[start:]
    rows = rows_for(items, f"r{seed}", seed=seed)
    rng = np.random.default_rng(seed)
    centres = np.maximum(rng.normal(0, 1, (20, EMBEDDING_SIZE)), 0)
    vectors = np.maximum(
        centres[rng.integers(0, 20, count)] + rng.normal(0, 0.3, (count, EMBEDDING_SIZE)), 0
    ).astype(np.float32)
    embedding = pa.array(list(vectors), rows.schema.field("embedding").type)
    rows = rows.set_column(rows.column_names.index("embedding"), "embedding", embedding)
    before = snapshot.version()
    snapshot.commit(rows, [], f"r{seed}")
    return snapshot.diff(before), vectors, items


def test_ann_index_is_built_past_the_threshold_and_still_finds_new_rows(tmp_path: Path) -> None:
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    index = LanceDBIndex(str(tmp_path / "ann"), ann_min_rows=600, nprobes=16, refine_factor=20)
    small, _, _ = _commit_synthetic(snapshot, 300, 0, seed=1)
    index.apply(small, snapshot.uri)
    assert not index.has_ann_index()  # below the threshold: exact search
    more, vectors, items = _commit_synthetic(snapshot, 400, 300, seed=2)
    index.apply(more, snapshot.uri)
    assert index.has_ann_index() and index.count() == 700
    hits = index.search(vectors[5], k=5)
    assert hits[0].key == items[5].key and hits[0].score == pytest.approx(1.0, abs=1e-3)
    late, late_vectors, late_items = _commit_synthetic(snapshot, 10, 1000, seed=3)
    index.apply(late, snapshot.uri)  # rows added after the index was built are found too
    assert index.search(late_vectors[0], k=1)[0].key == late_items[0].key


def test_an_index_from_before_predicted_labels_gains_them_in_place(tmp_path: Path) -> None:
    import lancedb

    from tasks.index.refresh import refresh_index

    table = SnapshotTable(str(tmp_path / "snap"))
    items = synthetic_items(6)
    table.commit(rows_for(items, "r1"), [], "r1")
    index = LanceDBIndex(str(tmp_path / "index"))
    index.apply(table.diff(None), table.uri)
    # as deployed before the field existed: the same documents without the column
    db = lancedb.connect(str(tmp_path / "index"))
    old = db.open_table(index.name).to_arrow().drop_columns(["predicted_labels"])
    db.create_table(index.name, data=old, mode="overwrite")
    assert "predicted_labels" not in db.open_table(index.name).schema.names

    reopened = LanceDBIndex(str(tmp_path / "index"))
    first = items[0].key
    reopened.set_predicted_labels({first: ["machine=pump"], "not-indexed": ["machine=fan"]})
    vector = np.asarray(table.read().to_pylist()[0]["embedding"], dtype=np.float32)
    where = SearchFilter(predicted_labels=("machine=pump",))
    assert [(h.key, h.predicted_labels) for h in reopened.search(vector, k=6, where=where)] == [
        (first, ["machine=pump"])
    ]
    assert reopened.count() == 6  # a merge never inserts
    # a refresh writes changed documents with the labels of their current version only
    changed = rows_for(items[:2], "r2", etags=["e2", "e2"])
    table.commit(changed, [], "r2")
    refresh_index(
        reopened,
        table,
        predicted_labels=lambda rows: pa.array(
            [["machine=fan"] if key == items[1].key else [] for key in rows["key"].to_pylist()],
            pa.list_(pa.string()),
        ),
    )
    stored = {
        row["key"]: row["predicted_labels"]
        for row in db.open_table(index.name)
        .to_arrow()
        .select(["key", "predicted_labels"])
        .to_pylist()
    }
    assert stored[first] == [] and stored[items[1].key] == ["machine=fan"]
    assert stored[items[2].key] is None  # untouched by the refresh: never labelled


def test_an_index_written_before_the_tag_fields_is_rebuilt_by_the_next_refresh(
    tmp_path: Path,
) -> None:
    import lancedb

    from tasks.index.refresh import refresh_index

    table = SnapshotTable(str(tmp_path / "snap"))
    rows = rows_for(synthetic_items(4), "r1")
    tags = pa.array([[f"Tag {i}"] for i in range(4)], pa.list_(pa.string()))
    table.commit(
        rows.set_column(rows.schema.get_field_index(TAGS_COLUMN), TAGS_COLUMN, tags), [], "r1"
    )
    index = LanceDBIndex(str(tmp_path / "index"))
    refresh_index(index, table)
    # as an earlier release wrote it: the AudioSet tags under their old field names
    db = lancedb.connect(str(tmp_path / "index"))
    old = db.open_table(index.name).to_arrow()
    old = old.rename_columns(
        [{"tags": "labels", "tag_scores": "label_scores"}.get(n, n) for n in old.column_names]
    )
    db.create_table(index.name, data=old, mode="overwrite")
    assert index.needs_rebuild()

    result = refresh_index(index, table)  # nothing changed in the table, yet it rebuilds
    assert result is not None and result.rebuilt_index
    assert not index.needs_rebuild() and index.count() == 4
    for row in table.read().to_pylist():
        hit = index.search(np.asarray(row["embedding"], dtype=np.float32), k=1)[0]
        assert (hit.key, hit.tags) == (row["key"], row[TAGS_COLUMN])
    assert refresh_index(index, table).rebuilt_index is None  # and then it is current
