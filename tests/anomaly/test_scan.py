"""Planning a scan: references and groups from paths or blob metadata, and what is new."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from flows.ingest import ingest
from tasks.anomaly.scan import ScanCursor, plan_scan
from tasks.anomaly.scoring import ReferenceSelector
from tasks.audio import samples
from tests.blobs import configured_snapshot, upload


@pytest.mark.usefixtures("prefect_server")
def test_blob_metadata_reaches_the_snapshot_and_selects_references(
    blob_env: ContainerClient,
) -> None:
    for i in range(3):
        upload(blob_env, f"line-1/n{i}.wav", samples.engine(2.0, 16_000, 1500.0, i), 16_000)
        blob_env.get_blob_client(f"line-1/n{i}.wav").set_blob_metadata(
            {"condition": "normal", "machine": "m1"}
        )
    upload(blob_env, "line-1/today.wav", samples.engine(2.0, 16_000, 1500.0, 9), 16_000)
    blob_env.get_blob_client("line-1/today.wav").set_blob_metadata({"machine": "m1"})
    ingest(source=f"az://{blob_env.container_name}/", refresh_index=False)

    snapshot = configured_snapshot()
    rows = {r["path"]: r for r in snapshot.read().to_pylist()}
    assert dict(rows["line-1/n0.wav"]["metadata"]) == {"condition": "normal", "machine": "m1"}
    selector = ReferenceSelector(metadata=(("condition", "normal"),), group_metadata_key="machine")
    plan = plan_scan(selector, snapshot, ScanCursor())
    assert {g: sorted(r["path"] for r in rs) for g, rs in plan.references.items()} == {
        "m1": ["line-1/n0.wav", "line-1/n1.wav", "line-1/n2.wav"]
    }
    assert [r["path"] for r in plan.to_scan] == ["line-1/today.wav"]
    assert plan_scan(selector, snapshot, ScanCursor(snapshot.version())).to_scan == []


def test_scan_cursor_round_trips_and_reads_the_single_version_of_older_scans() -> None:
    cursor = ScanCursor(snapshot_version=7, quarantine_version=3)
    assert ScanCursor.from_json(cursor.to_json()) == cursor
    assert ScanCursor.from_json(7) == ScanCursor(7, None)  # saved before silent clips counted
    assert ScanCursor.from_json(None) == ScanCursor()
