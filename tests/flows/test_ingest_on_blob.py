"""The ingest flows on Azure Blob Storage (Azurite): a container as the source, the Delta tables
on Blob, quarantine, and the event-driven ingest of named blobs."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from azure.storage.blob import ContainerClient

from flows.ingest import ingest, ingest_blobs
from tasks.audio import samples
from tasks.resources import quarantine_table
from tasks.settings import Settings
from tasks.storage.snapshots import SnapshotTable
from tests.blobs import configured_snapshot, fill, upload

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_ingest_of_a_container_then_add_overwrite_delete(blob_env: ContainerClient) -> None:
    fill(blob_env)
    container = blob_env.container_name
    first = ingest(source=f"az://{container}/")
    assert (first.embedded, first.quarantined) == (4, 0)
    snapshot = configured_snapshot()
    rows = {r["path"]: r for r in snapshot.read().to_pylist()}
    assert set(rows) == {
        "site-a/pumps/p1.wav",
        "site-a/pumps/p2.flac",
        "site-b/2026/11/tick.ogg",
        "site-b/2026/11/sweep.mp3",
    }
    assert rows["site-a/pumps/p1.wav"]["channels"] == 2
    assert rows["site-a/pumps/p1.wav"]["etag"] == blob_env.get_blob_client(
        "site-a/pumps/p1.wav"
    ).get_blob_properties().etag.strip('"')

    upload(blob_env, "site-c/new.wav", samples.tone(2.0, 16_000, 700.0), 16_000)
    upload(blob_env, "site-a/pumps/p2.flac", samples.noise(2.0, 48_000, 7), 48_000)
    blob_env.delete_blob("site-b/2026/11/tick.ogg")
    second = ingest(source=f"az://{container}/")
    assert (second.embedded, second.deleted, second.unchanged) == (2, 1, 2)
    after = {r["path"]: r for r in snapshot.read().to_pylist()}
    assert set(after) == set(rows) - {"site-b/2026/11/tick.ogg"} | {"site-c/new.wav"}
    assert after["site-a/pumps/p2.flac"]["run_id"] == second.run_id
    assert after["site-a/pumps/p1.wav"]["run_id"] == first.run_id


def test_corrupt_blobs_are_quarantined_on_blob(blob_env: ContainerClient) -> None:
    upload(blob_env, "ok.wav", samples.tone(2.0, 16_000), 16_000)
    blob_env.upload_blob("broken.mp3", b"\xff\xfb garbage " * 100)
    blob_env.upload_blob("empty.flac", b"")
    summary = ingest(source=f"az://{blob_env.container_name}/")
    assert (summary.embedded, summary.quarantined) == (1, 2)
    records = {r["path"]: r for r in quarantine_table(Settings()).read().to_pylist()}
    assert records["broken.mp3"]["error_kind"] == "not_audio"
    assert records["empty.flac"]["error_kind"] == "empty_file"
    assert "broken.mp3" in records["broken.mp3"]["message"]


def test_snapshot_on_blob_reads_back_what_local_would_hold(
    blob_env: ContainerClient, tmp_path: Path
) -> None:
    fill(blob_env)
    ingest(source=f"az://{blob_env.container_name}/site-a/")
    on_blob = configured_snapshot().read().sort_by("key")
    # The same rows written locally read back identically: Blob adds nothing and loses nothing.
    local = SnapshotTable(str(tmp_path / "copy"))
    local.commit(on_blob, [], "copy")
    np.testing.assert_array_equal(
        np.stack(local.read().sort_by("key")["embedding"].to_numpy(zero_copy_only=False)),
        np.stack(on_blob["embedding"].to_numpy(zero_copy_only=False)),
    )
    assert on_blob["path"].to_pylist() == local.read().sort_by("key")["path"].to_pylist()


def test_ingest_blobs_embeds_only_the_named_blobs(blob_env: ContainerClient) -> None:
    fill(blob_env)
    url = blob_env.get_blob_client("site-b/2026/11/sweep.mp3").url
    summary = ingest_blobs(blob_urls=[url, url])
    assert (summary.embedded, summary.deleted) == (1, 0)
    again = ingest_blobs(blob_urls=[url])
    assert again.embedded == 0 and again.unchanged == 1
