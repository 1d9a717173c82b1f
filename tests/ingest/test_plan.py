"""Planning an ingest: new, changed and deleted files by etag, quarantined files skipped; the
plan streams through spill files and comes back in key order, shard by shard."""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

import pyarrow as pa
import pytest

from tasks.ingest.plan import PLAN_FOLDER_PREFIX, container_of, new_plan_folder, plan_changes
from tasks.model.constants import EMBEDDING_METHOD
from tasks.storage.quarantine import Failure, QuarantineTable
from tasks.storage.snapshots import SnapshotTable
from tasks.storage.sources import InvalidSourceError, LocalSource
from tests.snapshot_rows import rows_for, synthetic_items


def test_plan_finds_new_changed_deleted_and_skips_quarantined(
    tmp_path: Path, catalogue: Path
) -> None:
    source = LocalSource(catalogue)
    items = {i.path: i for i in source.list_items()}
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    known = [items["tones/a440.wav"], items["noise/white.ogg"]]
    gone = synthetic_items(1, prefix=source.uri)[0]
    elsewhere = synthetic_items(1, prefix="file:///another/source")[0]
    snapshot.commit(
        rows_for([*known, gone, elsewhere], "r0", etags=["old-etag", known[1].etag, "e", "e"]),
        [],
        "r0",
    )
    quarantine = QuarantineTable(str(tmp_path / "q"))
    quarantine.append([Failure(items["sweeps/chirp.mp3"], "not_audio", "bad")], "r0")

    plan = plan_changes(items.values(), snapshot, quarantine, source.item_uri_prefix)
    assert sorted(i.path for i in plan.items()) == [
        "machines/ticker.wav",
        "tones/a220.flac",
        "tones/a440.wav",
    ]
    assert (plan.to_embed, plan.unchanged, plan.skipped_quarantined) == (3, 1, 1)
    assert plan.deleted_keys() == [gone.key]  # not the other source's row
    assert plan.unchanged_by_run == {"r0": 1}
    assert plan.listed == 5


def test_a_partial_listing_deletes_nothing(tmp_path: Path, catalogue: Path) -> None:
    items = list(LocalSource(catalogue).list_items())
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    snapshot.commit(rows_for([*items, *synthetic_items(3)], "r0"), [], "r0")
    plan = plan_changes(
        items[:1], snapshot, QuarantineTable(str(tmp_path / "q")), complete_listing=False
    )
    assert plan.deleted_keys() == [] and plan.unchanged == 1 and plan.to_embed == 0


def test_a_large_plan_comes_back_in_key_order_shard_by_shard(tmp_path: Path) -> None:
    items = synthetic_items(2_500)
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    snapshot.commit(rows_for(items[:500], "r0"), [], "r0")
    plan = plan_changes(items, snapshot, QuarantineTable(str(tmp_path / "q")))
    shards = list(plan.shards(300))
    assert [len(s) for s in shards] == [300] * 6 + [200]
    keys = [item.key for shard in shards for item in shard]
    assert keys == sorted(keys) and set(keys) == {i.key for i in items[500:]}
    assert plan.unchanged == 500 and plan.deleted == 0
    first = shards[0][0]
    original = next(i for i in items if i.key == first.key)
    assert first == original and first.last_modified == original.last_modified


def test_the_plan_files_go_away_with_the_plan(tmp_path: Path) -> None:
    plan = plan_changes(
        synthetic_items(10),
        SnapshotTable(str(tmp_path / "s")),
        QuarantineTable(str(tmp_path / "q")),
    )
    folder = plan.folder
    assert folder.is_dir()
    del plan
    assert not folder.exists()


def test_a_batch_of_blobs_must_share_one_container_and_be_blob_urls() -> None:
    url = "https://acct.blob.core.windows.net/audio/a/b.wav"
    assert container_of([url, url]) == ("acct", "az://audio/")
    with pytest.raises(InvalidSourceError, match="one container per batch"):
        container_of([url, "https://acct.blob.core.windows.net/other/c.wav"])
    with pytest.raises(InvalidSourceError, match="names no blob"):
        container_of(["https://acct.blob.core.windows.net/container-only"])


def test_files_embedded_before_segments_were_stored_are_embedded_again(tmp_path: Path) -> None:
    items = synthetic_items(4)
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    rows = rows_for(items, "r0")
    without_segments = pa.array([None, None, 3, 1], pa.int32())  # two rows from before segments
    column = rows.schema.get_field_index("num_segments")
    rows = rows.set_column(column, "num_segments", without_segments)
    snapshot.commit(rows, [], "r0")
    plan = plan_changes(items, snapshot, QuarantineTable(str(tmp_path / "q")))
    assert sorted(i.key for i in plan.items()) == sorted(i.key for i in items[:2])
    assert (plan.to_embed, plan.unchanged, plan.deleted) == (2, 2, 0)


def test_files_embedded_by_another_method_are_embedded_again_once(tmp_path: Path) -> None:
    items = synthetic_items(4)
    snapshot = SnapshotTable(str(tmp_path / "snap"))
    rows = rows_for(items, "r0")
    methods = pa.array(["windows-zero-padded", None, EMBEDDING_METHOD, EMBEDDING_METHOD])
    rows = rows.set_column(
        rows.schema.get_field_index("embedding_method"), "embedding_method", methods
    )
    snapshot.commit(rows, [], "r0")
    plan = plan_changes(items, snapshot, QuarantineTable(str(tmp_path / "q")))
    assert sorted(i.key for i in plan.items()) == sorted(i.key for i in items[:2])
    snapshot.commit(rows_for(items[:2], "r1"), [], "r1")  # embedded again: the current method
    again = plan_changes(items, snapshot, QuarantineTable(str(tmp_path / "q2")))
    assert (again.to_embed, again.unchanged) == (0, 4)


def test_a_new_plan_removes_the_folders_of_plans_whose_process_is_gone(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(ended.stdout)
    own = new_plan_folder()
    namespace = own.name.removeprefix(PLAN_FOLDER_PREFIX).split("-")[0]
    killed = tmp_path / f"{PLAN_FOLDER_PREFIX}{namespace}-{dead_pid}-abcd"
    other_namespace = tmp_path / f"{PLAN_FOLDER_PREFIX}1-{dead_pid}-abcd"  # another container's
    for folder in (killed, other_namespace):
        folder.mkdir()
        (folder / "to_embed.arrow").write_bytes(b"manifest")
    second = new_plan_folder()
    assert not killed.exists()
    assert own.exists() and second.exists() and other_namespace.exists()
