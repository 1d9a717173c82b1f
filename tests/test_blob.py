"""Azure Blob Storage as source and snapshot store, against Azurite started by the tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from azure.storage.blob import ContainerClient

from flows.blob_sensor import blob_sensor
from flows.ingest import ingest, ingest_blobs
from tasks import samples
from tasks.azure_storage import BlobSettings, delta_storage_options, redact
from tasks.settings import Settings
from tasks.snapshots import QuarantineTable, SnapshotTable
from tasks.sources import BlobSource, SourceReadError, open_source

pytestmark = pytest.mark.usefixtures("prefect_server")


def _upload(
    container: ContainerClient, name: str, mono: np.ndarray, rate: int, channels: int = 1
) -> None:
    data = samples.encode(mono, rate, name.rsplit(".", 1)[-1], channels)
    container.upload_blob(name, data, overwrite=True)


def _fill(container: ContainerClient) -> None:
    _upload(container, "site-a/pumps/p1.wav", samples.engine(3.0, 44_100, 1800.0, 1), 44_100, 2)
    _upload(container, "site-a/pumps/p2.flac", samples.engine(2.5, 48_000, 1500.0, 2), 48_000)
    _upload(container, "site-b/2026/11/tick.ogg", samples.clicks(3.0, 22_050, 4.0), 22_050)
    _upload(container, "site-b/2026/11/sweep.mp3", samples.chirp(3.0, 44_100), 44_100, 2)
    container.upload_blob("site-b/readme.txt", b"not listed: not an audio extension")


def _snapshot(settings: Settings) -> SnapshotTable:
    uri = settings.resolved_snapshot_uri()
    return SnapshotTable(uri, settings.storage_options(uri))


def test_listing_streams_items_with_etag_size_metadata(blob_env: ContainerClient) -> None:
    _fill(blob_env)
    blob_env.get_blob_client("site-a/pumps/p1.wav").set_blob_metadata({"machine": "pump-01"})
    source = open_source(f"az://{blob_env.container_name}/site-a/")
    assert isinstance(source, BlobSource)
    items = list(source.list_items())
    assert [i.path for i in items] == ["site-a/pumps/p1.wav", "site-a/pumps/p2.flac"]
    first = items[0]
    assert first.uri == f"az://devstoreaccount1/{blob_env.container_name}/site-a/pumps/p1.wav"
    assert first.metadata == {"machine": "pump-01"}
    assert not first.etag.startswith('"') and first.size_bytes > 0
    assert source.item_uri_prefix.endswith(f"{blob_env.container_name}/site-a/")


def test_ingest_of_a_container_then_add_overwrite_delete(blob_env: ContainerClient) -> None:
    _fill(blob_env)
    container = blob_env.container_name
    first = ingest(source=f"az://{container}/")
    assert (first.embedded, first.quarantined) == (4, 0)
    settings = Settings()
    snapshot = _snapshot(settings)
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

    _upload(blob_env, "site-c/new.wav", samples.tone(2.0, 16_000, 700.0), 16_000)
    _upload(blob_env, "site-a/pumps/p2.flac", samples.noise(2.0, 48_000, 7), 48_000)
    blob_env.delete_blob("site-b/2026/11/tick.ogg")
    second = ingest(source=f"az://{container}/")
    assert (second.embedded, second.deleted, second.unchanged) == (2, 1, 2)
    after = {r["path"]: r for r in snapshot.read().to_pylist()}
    assert set(after) == set(rows) - {"site-b/2026/11/tick.ogg"} | {"site-c/new.wav"}
    assert after["site-a/pumps/p2.flac"]["run_id"] == second.run_id
    assert after["site-a/pumps/p1.wav"]["run_id"] == first.run_id


def test_corrupt_blobs_are_quarantined_on_blob(blob_env: ContainerClient) -> None:
    _upload(blob_env, "ok.wav", samples.tone(2.0, 16_000), 16_000)
    blob_env.upload_blob("broken.mp3", b"\xff\xfb garbage " * 100)
    blob_env.upload_blob("empty.flac", b"")
    summary = ingest(source=f"az://{blob_env.container_name}/")
    assert (summary.embedded, summary.quarantined) == (1, 2)
    settings = Settings()
    uri = settings.resolved_quarantine_uri()
    records = {
        r["path"]: r for r in QuarantineTable(uri, settings.storage_options(uri)).read().to_pylist()
    }
    assert records["broken.mp3"]["error_kind"] == "not_audio"
    assert records["empty.flac"]["error_kind"] == "empty_file"
    assert "broken.mp3" in records["broken.mp3"]["message"]


def test_snapshot_on_blob_reads_back_what_local_would_hold(
    blob_env: ContainerClient, tmp_path: Path
) -> None:
    _fill(blob_env)
    ingest(source=f"az://{blob_env.container_name}/site-a/")
    on_blob = _snapshot(Settings()).read().sort_by("key")
    # The same rows written locally read back identically: Blob adds nothing and loses nothing.
    local = SnapshotTable(str(tmp_path / "copy"))
    local.commit(on_blob, [], "copy")
    np.testing.assert_array_equal(
        np.stack(local.read().sort_by("key")["embedding"].to_numpy(zero_copy_only=False)),
        np.stack(on_blob["embedding"].to_numpy(zero_copy_only=False)),
    )
    assert on_blob["path"].to_pylist() == local.read().sort_by("key")["path"].to_pylist()


def test_ingest_blobs_embeds_only_the_named_blobs(blob_env: ContainerClient) -> None:
    _fill(blob_env)
    url = blob_env.get_blob_client("site-b/2026/11/sweep.mp3").url
    summary = ingest_blobs(blob_urls=[url, url])
    assert (summary.embedded, summary.deleted) == (1, 0)
    again = ingest_blobs(blob_urls=[url])
    assert again.embedded == 0 and again.unchanged == 1


def test_a_blob_changed_after_listing_is_left_for_the_next_run(blob_env: ContainerClient) -> None:
    _upload(blob_env, "moving.wav", samples.tone(2.0, 16_000), 16_000)
    source = open_source(f"az://{blob_env.container_name}/")
    (item,) = list(source.list_items())
    _upload(blob_env, "moving.wav", samples.noise(2.0, 16_000), 16_000)
    with pytest.raises(SourceReadError, match=r"moving\.wav"):
        source.read_bytes(item)


def test_secrets_never_reach_messages(azurite: str) -> None:
    settings = BlobSettings(blob_connection_string=azurite)
    key = delta_storage_options(settings)["account_key"]
    assert key and key in azurite
    assert redact(f"failed with {azurite} and {key}", settings) == "failed with *** and ***"
    assert key not in repr(settings) and key not in str(settings.model_dump())


def test_sensor_announces_each_new_blob_once(blob_env: ContainerClient) -> None:
    source = f"az://{blob_env.container_name}/"
    _fill(blob_env)
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 3
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 1  # the backlog drains
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 0
    _upload(blob_env, "site-c/late.wav", samples.tone(1.0, 16_000), 16_000)
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 1
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 0


def test_development_storage_shorthand_reaches_azurite_defaults() -> None:
    settings = BlobSettings(blob_connection_string="UseDevelopmentStorage=true")
    options = delta_storage_options(settings)
    assert options["account_name"] == "devstoreaccount1"
    assert options["azure_endpoint"] == "http://127.0.0.1:10000/devstoreaccount1"
    assert options["azure_allow_http"] == "true"


def test_blob_metadata_reaches_the_snapshot_and_selects_references(
    blob_env: ContainerClient,
) -> None:
    from tasks.anomaly import ReferenceSelector
    from tasks.anomaly_pipeline import plan_scan

    for i in range(3):
        _upload(blob_env, f"line-1/n{i}.wav", samples.engine(2.0, 16_000, 1500.0, i), 16_000)
        blob_env.get_blob_client(f"line-1/n{i}.wav").set_blob_metadata(
            {"condition": "normal", "machine": "m1"}
        )
    _upload(blob_env, "line-1/today.wav", samples.engine(2.0, 16_000, 1500.0, 9), 16_000)
    blob_env.get_blob_client("line-1/today.wav").set_blob_metadata({"machine": "m1"})
    ingest(source=f"az://{blob_env.container_name}/", refresh_index=False)

    rows = {r["path"]: r for r in _snapshot(Settings()).read().to_pylist()}
    assert dict(rows["line-1/n0.wav"]["metadata"]) == {"condition": "normal", "machine": "m1"}
    selector = ReferenceSelector(metadata=(("condition", "normal"),), group_metadata_key="machine")
    plan = plan_scan.fn(selector, Settings())
    assert {g: sorted(r["path"] for r in rs) for g, rs in plan.references.items()} == {
        "m1": ["line-1/n0.wav", "line-1/n1.wav", "line-1/n2.wav"]
    }
    assert [r["path"] for r in plan.to_scan] == ["line-1/today.wav"]
