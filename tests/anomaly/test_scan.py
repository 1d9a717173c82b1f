"""Planning a scan: references and groups from paths or blob metadata, and what is new."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from flows.ingest import ingest
from tasks.anomaly.scan import plan_scan
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
    plan = plan_scan(selector, snapshot, scanned_version=None)
    assert {g: sorted(r["path"] for r in rs) for g, rs in plan.references.items()} == {
        "m1": ["line-1/n0.wav", "line-1/n1.wav", "line-1/n2.wav"]
    }
    assert [r["path"] for r in plan.to_scan] == ["line-1/today.wav"]
    assert plan_scan(selector, snapshot, scanned_version=snapshot.version()).to_scan == []
