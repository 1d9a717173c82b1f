"""The Delta snapshot table: one version per commit, diffs between versions, reading it back."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pyarrow as pa
import pytest
from deltalake import DeltaTable

from tasks.audio import samples
from tasks.ingest.shard import embed_shard
from tasks.model.constants import EMBEDDING_SIZE
from tasks.model.embedder import PannsEmbedder
from tasks.storage.snapshots import (
    SNAPSHOT_SCHEMA,
    TAG_SCORES_COLUMN,
    TAGS_COLUMN,
    SnapshotTable,
    read_snapshot,
)
from tasks.storage.sources import LocalSource


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
    assert row["num_windows"] == 2 and len(row[TAGS_COLUMN]) == 5
    assert row[TAG_SCORES_COLUMN] == sorted(row[TAG_SCORES_COLUMN], reverse=True)
    assert row["model"] == "Cnn14" and row["checkpoint_sha256"] == embedder.checkpoint_sha256
    history = DeltaTable(table.uri).history(1)[0]
    assert history["audio_embeddings.run_id"] == "run-1"


def test_nothing_to_change_commits_nothing(tmp_path: Path) -> None:
    table = SnapshotTable(str(tmp_path / "snap"))
    assert table.commit(pa.table({}), [], "r") is None
    assert table.version() is None


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


def test_a_table_from_before_the_metadata_column_evolves_on_commit(
    tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    from tasks.storage.snapshots import SNAPSHOT_SCHEMA

    uri = str(tmp_path / "old")
    old_schema = pa.schema([f for f in SNAPSHOT_SCHEMA if f.name != "metadata"])
    DeltaTable.create(uri, old_schema)
    result = _embed_all(LocalSource(catalogue), embedder, "run-1")
    table = SnapshotTable(uri)
    assert table.commit(result.rows, [], "run-1") == 1
    assert "metadata" in table.read().column_names and table.read().num_rows == 5


def test_read_snapshot_gives_a_dataframe_at_any_version(
    tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    table = SnapshotTable(str(tmp_path / "snap"))
    table.commit(_embed_all(LocalSource(catalogue), embedder, "run-1").rows, [], "run-1")
    first = read_snapshot(table.uri)
    assert sorted(first["path"]) == sorted(i.path for i in LocalSource(catalogue).list_items())
    assert first["embedding"].iloc[0].shape == (EMBEDDING_SIZE,)
    table.commit(SNAPSHOT_SCHEMA.empty_table(), [first["key"].iloc[0]], "run-2")
    assert len(read_snapshot(table.uri)) == 4
    assert len(read_snapshot(table.uri, version=1, columns=["key", "path"])) == 5
    assert list(read_snapshot(table.uri, columns=["path"]).columns) == ["path"]
    with pytest.raises(FileNotFoundError, match="no snapshot table"):
        read_snapshot(str(tmp_path / "nothing-here"))


def test_a_script_that_reads_a_snapshot_exits_cleanly(
    tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    # deltalake 1.6.6 + pyarrow 26: reading columns through to_pyarrow_table() made the process
    # abort at exit (code 134) after its work was done; every read path here must exit 0.
    table = SnapshotTable(str(tmp_path / "snap"))
    table.commit(_embed_all(LocalSource(catalogue), embedder, "run-1").rows, [], "run-1")
    script = (
        "import sys\n"
        "from tasks.storage.snapshots import SnapshotTable, read_snapshot\n"
        "table = SnapshotTable(sys.argv[1])\n"
        "print(table.rows_under().num_rows, table.read(columns=['key', 'path']).num_rows,\n"
        "      table.diff(None).upserts.num_rows,\n"
        "      len(read_snapshot(sys.argv[1], columns=['key'])))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script, table.uri],
        capture_output=True,
        text=True,
        cwd=Path(__file__).parents[2],
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.split() == ["5", "5", "5", "5"]


def test_rows_of_some_keys_are_read_from_their_partitions_only(tmp_path: Path) -> None:
    from tests.snapshot_rows import rows_for, synthetic_items

    items = synthetic_items(300)
    table = SnapshotTable(str(tmp_path / "snap"))
    table.commit(rows_for(items, "run-1"), [], "run-1")
    keys = [items[i].key for i in (3, 150, 299)]
    latest = table.latest()
    found = pa.Table.from_batches(list(latest.batches(["key", "path"], keys, batch_size=2)))
    assert sorted(found["key"].to_pylist()) == sorted(keys)
    assert list(latest.batches(["key"], [])) == []
    # a partitioned table's dataset of some partitions holds only their files
    assert "data" not in latest.__dict__  # the whole table was never opened for it
    everything = pa.Table.from_batches(list(latest.batches(["key"])))
    assert everything.num_rows == 300


def test_a_commit_carries_what_it_reflects(tmp_path: Path) -> None:
    from tests.snapshot_rows import rows_for, synthetic_items

    table = SnapshotTable(str(tmp_path / "snap"))
    assert table.commit_metadata("reflects") is None  # no table yet
    items = synthetic_items(4)
    table.commit(rows_for(items[:2], "run-1"), [], "run-1", metadata={"reflects": "1"})
    table.commit(rows_for(items[2:3], "run-2"), [], "run-2")
    assert table.commit_metadata("reflects") == "1"  # the newest commit that says it
    table.commit(rows_for(items[3:], "run-3"), [], "run-3", metadata={"reflects": "7"})
    assert table.commit_metadata("reflects") == "7"
    assert table.commit_metadata("reflects", look_back=1) == "7"
