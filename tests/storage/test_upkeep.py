"""Table upkeep: many small commits compacted, unreferenced files vacuumed except those of the
versions later refreshes diff from, a checkpoint written; a dry run changes nothing."""

from __future__ import annotations

from pathlib import Path

import pytest
from deltalake import DeltaTable

from tasks.storage.snapshots import SnapshotTable
from tasks.storage.upkeep import RetentionTooShortError, maintain_table
from tests.snapshot_rows import rows_for, synthetic_items


def _two_partitions_of_small_commits(uri: str, commits: int) -> SnapshotTable:
    items = [i for i in synthetic_items(5_000) if i.key[:2] in ("00", "01")][:commits]
    snapshot = SnapshotTable(uri)
    for number, item in enumerate(items):
        snapshot.commit(rows_for([item], f"run-{number}"), [], f"run-{number}")
    return snapshot


def test_upkeep_compacts_vacuums_and_checkpoints_but_keeps_what_refreshes_need(
    tmp_path: Path,
) -> None:
    snapshot = _two_partitions_of_small_commits(str(tmp_path / "snapshot"), 24)
    # readers of this table need no grace period (the default minimum is a week)
    DeltaTable(snapshot.uri).alter.set_table_properties(
        {"delta.deletedFileRetentionDuration": "interval 0 hours"}
    )
    reflected = 10  # the version an index refresh will diff from
    rows_at_reflected = snapshot.read(reflected, columns=["key"]).num_rows

    compacted = maintain_table(snapshot.uri, None, 168, [reflected])
    assert compacted.files_before >= 20 and compacted.files_after == 2  # one per partition
    assert compacted.vacuumed == []  # the replaced files are younger than a week
    assert compacted.checkpoint_version == snapshot.version()
    assert list((Path(snapshot.uri) / "_delta_log").glob("*.checkpoint.parquet"))

    version = snapshot.version()
    dry = maintain_table(snapshot.uri, None, 0, [reflected], dry_run=True)
    assert dry.dry_run and dry.vacuumed and snapshot.version() == version
    assert all((Path(snapshot.uri) / name).exists() for name in dry.vacuumed)

    done = maintain_table(snapshot.uri, None, 0, [reflected])
    assert set(done.vacuumed) == set(dry.vacuumed)
    assert not any((Path(snapshot.uri) / name).exists() for name in done.vacuumed)
    # the kept version still diffs; a later one that nobody needs lost its files
    assert snapshot.diff(reflected).upserts.num_rows == 24 - rows_at_reflected
    with pytest.raises(OSError):
        snapshot.read(20, columns=["key"])
    assert snapshot.read(columns=["key"]).num_rows == 24


def test_a_retention_below_the_tables_minimum_is_a_clear_error(tmp_path: Path) -> None:
    snapshot = _two_partitions_of_small_commits(str(tmp_path / "snapshot"), 3)
    with pytest.raises(RetentionTooShortError, match="AUDIO_EMBEDDINGS_VACUUM_RETENTION_HOURS"):
        maintain_table(snapshot.uri, None, 0)


def test_no_table_no_upkeep(tmp_path: Path) -> None:
    assert maintain_table(str(tmp_path / "none"), None, 168) is None
