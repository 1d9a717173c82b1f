"""The Delta snapshot table: one version per commit, diffs between versions, quarantine."""

from __future__ import annotations

from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tasks import samples
from tasks.embedding import EMBEDDING_SIZE, PannsEmbedder
from tasks.ingestion import embed_shard
from tasks.snapshots import Failure, QuarantineTable, SnapshotTable, plan_changes
from tasks.sources import LocalSource


def _embed_all(source: LocalSource, embedder: PannsEmbedder, run_id: str):
    return embed_shard(list(source.list_items()), source, embedder, run_id)


def test_commit_writes_one_version_and_reads_back_fixed_size_embeddings(
    tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    source = LocalSource(catalogue)
    result = _embed_all(source, embedder, "run-1")
    assert result.failures == [] and result.rows.num_rows == 5
    table = SnapshotTable(str(tmp_path / "snap"))
    version = table.commit(result.rows, [], "run-1")
    assert version == table.version() == 1  # version 0 is the empty table
    data = table.read()
    assert data.schema.field("embedding").type == pa.list_(pa.float32(), EMBEDDING_SIZE)
    row = {r["path"]: r for r in data.to_pylist()}["tones/a440.wav"]
    assert row["sample_rate"] == 44_100 and row["channels"] == 2
    assert row["duration_seconds"] == pytest.approx(3.0)
    assert row["num_windows"] == 2 and len(row["labels"]) == 5
    assert row["label_scores"] == sorted(row["label_scores"], reverse=True)
    assert row["model"] == "Cnn14" and row["checkpoint_sha256"] == embedder.checkpoint_sha256
    history = DeltaTable(table.uri).history(1)[0]
    assert history["audio_embeddings.run_id"] == "run-1"


def test_nothing_to_change_commits_nothing(tmp_path: Path) -> None:
    table = SnapshotTable(str(tmp_path / "snap"))
    assert table.commit(pa.table({}), [], "r") is None
    assert table.version() is None


def test_plan_finds_new_changed_deleted_and_skips_quarantined(
    tmp_path: Path, catalogue: Path
) -> None:
    source = LocalSource(catalogue)
    items = {i.path: i for i in source.list_items()}
    current = {items[p].key: items[p].etag for p in ["tones/a440.wav", "noise/white.ogg"]}
    current[items["tones/a440.wav"].key] = "old-etag"
    current["gone-key"] = "e"
    quarantined = {(items["sweeps/chirp.mp3"].key, items["sweeps/chirp.mp3"].etag)}
    plan = plan_changes(items.values(), current, quarantined)
    assert sorted(i.path for i in plan.to_embed) == [
        "machines/ticker.wav",
        "tones/a220.flac",
        "tones/a440.wav",
    ]
    assert plan.unchanged == 1 and plan.skipped_quarantined == 1
    assert plan.deleted_keys == ["gone-key"]


def test_diff_between_versions(tmp_path: Path, catalogue: Path, embedder: PannsEmbedder) -> None:
    source = LocalSource(catalogue)
    table = SnapshotTable(str(tmp_path / "snap"))
    first = _embed_all(source, embedder, "run-1")
    v1 = table.commit(first.rows, [], "run-1")
    by_path = {r["path"]: r for r in first.rows.to_pylist()}
    samples.write(catalogue / "tones/new.wav", samples.tone(2.0, 16_000, 300.0), 16_000)
    changed_item = next(i for i in source.list_items() if i.path == "tones/new.wav")
    second = embed_shard([changed_item], source, embedder, "run-2")
    deleted = [by_path["noise/white.ogg"]["key"]]
    v2 = table.commit(second.rows, deleted, "run-2")
    assert v2 == v1 + 1

    diff = table.diff(v1, v2)
    assert diff.upserts["path"].to_pylist() == ["tones/new.wav"]
    assert diff.deleted_keys == deleted
    assert table.diff(v2, v2).is_empty
    everything = table.diff(None, v2)
    assert sorted(everything.upserts["path"].to_pylist()) == sorted(
        set(by_path) - {"noise/white.ogg"} | {"tones/new.wav"}
    )
    # time travel: version 1 still has the deleted file
    assert "noise/white.ogg" in table.read(v1, columns=["path"])["path"].to_pylist()


def test_quarantine_appends_with_reasons(tmp_path: Path, catalogue: Path) -> None:
    item = next(iter(LocalSource(catalogue).list_items()))
    quarantine = QuarantineTable(str(tmp_path / "q"))
    assert quarantine.quarantined() == set()
    quarantine.append([Failure(item, "silent", f"{item.uri}: the file is silent")], "run-1")
    quarantine.append([], "run-2")
    rows = quarantine.read().to_pylist()
    assert len(rows) == 1 and rows[0]["error_kind"] == "silent" and rows[0]["run_id"] == "run-1"
    assert quarantine.quarantined() == {(item.key, item.etag)}


def test_a_table_from_before_the_metadata_column_evolves_on_commit(
    tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    from tasks.snapshots import SNAPSHOT_SCHEMA

    uri = str(tmp_path / "old")
    old_schema = pa.schema([f for f in SNAPSHOT_SCHEMA if f.name != "metadata"])
    DeltaTable.create(uri, old_schema)
    result = _embed_all(LocalSource(catalogue), embedder, "run-1")
    table = SnapshotTable(uri)
    assert table.commit(result.rows, [], "run-1") == 1
    assert "metadata" in table.read().column_names and table.read().num_rows == 5
