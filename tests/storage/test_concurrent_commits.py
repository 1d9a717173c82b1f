"""Two writers committing to one snapshot at the same time: a commit that loses the race is
retried against the new version, and no row is lost or duplicated."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest
from deltalake import DeltaTable
from deltalake.exceptions import CommitFailedError

from tasks.storage.snapshots import SnapshotTable
from tests.snapshot_rows import rows_for, synthetic_items

ROOT = Path(__file__).parents[2]
# Each writer commits 12 times: 20 files of its own and 10 that the other writer commits too.
WRITER = """
import sys
from tasks.storage.snapshots import SnapshotTable
from tests.snapshot_rows import rows_for, synthetic_items
name, uri = sys.argv[1], sys.argv[2]
own = synthetic_items(240, prefix=f"file:///{name}")
shared = synthetic_items(120, prefix="file:///shared")
table = SnapshotTable(uri)
for commit in range(12):
    batch = own[commit * 20 : (commit + 1) * 20] + shared[commit * 10 : (commit + 1) * 10]
    table.commit(rows_for(batch, name, seed=commit), [], name, sequence=commit + 1)
"""


def test_two_processes_committing_at_once_lose_and_duplicate_nothing(tmp_path: Path) -> None:
    uri = str(tmp_path / "snapshot")
    SnapshotTable(uri).ensure()
    writers = [
        subprocess.Popen(
            [sys.executable, "-c", WRITER, name, uri],
            cwd=ROOT,
            stderr=subprocess.PIPE,
            text=True,
        )
        for name in ("nightly", "by-hand")
    ]
    logs = [writer.communicate(timeout=300)[1] for writer in writers]
    assert [writer.returncode for writer in writers] == [0, 0], logs
    keys = SnapshotTable(uri).read(columns=["key"])["key"].to_pylist()
    assert len(keys) == len(set(keys)) == 240 + 240 + 120
    sizes = {"nightly": 240, "by-hand": 240, "shared": 120}
    expected = {i.key for p, n in sizes.items() for i in synthetic_items(n, prefix=f"file:///{p}")}
    assert set(keys) == expected
    # every commit of both runs is in the table, each exactly once
    table = DeltaTable(uri)
    assert table.transaction_version("audio-embeddings/nightly") == 12
    assert table.transaction_version("audio-embeddings/by-hand") == 12


def test_a_conflicting_commit_is_retried_against_the_new_version(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    table = SnapshotTable(str(tmp_path / "snapshot"))
    items = synthetic_items(10)
    table.commit(rows_for(items[:5], "first"), [], "first")
    real_merge = DeltaTable.merge
    raced = []

    def merge_after_a_rival(self, *args, **kwargs):
        if not raced:  # another writer commits between our read and our commit
            raced.append(True)
            SnapshotTable(table.uri).commit(rows_for(items[5:8], "rival"), [], "rival")
            raise CommitFailedError("concurrent transaction added files")
        return real_merge(self, *args, **kwargs)

    monkeypatch.setattr(DeltaTable, "merge", merge_after_a_rival)
    version = table.commit(rows_for(items[3:], "second"), [], "second")
    assert raced and version == table.version()
    rows = {r["key"]: r["run_id"] for r in table.read(columns=["key", "run_id"]).to_pylist()}
    assert len(rows) == 10 and rows[items[9].key] == "second" and rows[items[0].key] == "first"
    # a commit repeated with the same run and sequence changes nothing
    assert table.commit(rows_for(items[3:], "second"), [], "second") is None
    assert table.version() == version
