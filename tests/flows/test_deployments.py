"""prefect.yaml deploys onto a Prefect server with the schedules, triggers and parameters it
promises, and an ``azure.blob.created`` event starts the event-driven deployment."""

from __future__ import annotations

import os
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import DeploymentFilter, DeploymentFilterId
from prefect.events import emit_event
from prefect.settings import PREFECT_API_URL

from tasks.events.blob import BlobRef, prefect_event

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def deployments(tmp_path_factory: pytest.TempPathFactory) -> dict:
    catalogue = tmp_path_factory.mktemp("catalogue")
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "AUDIO_EMBEDDINGS_SOURCE": str(catalogue),
        "AUDIO_EMBEDDINGS_BLOB_SOURCE": "",
        "AUDIO_EMBEDDINGS_REFERENCE_PREFIX": "pump-07/normal/",
    }
    prefect = [sys.executable, "-m", "prefect"]
    subprocess.run(
        [*prefect, "work-pool", "create", "audio-embeddings", "--type", "process"],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
    )
    deployed = subprocess.run(
        [*prefect, "--no-prompt", "deploy", "--all"],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    assert deployed.returncode == 0, deployed.stdout + deployed.stderr
    with get_client(sync_client=True) as client:
        found = {d.name: d for d in client.read_deployments()}
    found["_catalogue"] = str(catalogue)
    return found


def test_every_flow_is_deployed_with_its_schedule(deployments: dict) -> None:
    expected = {
        "nightly-ingest",
        "ingest-new-blobs",
        "blob-sensor",
        "anomaly-scan",
        "search",
        "refresh-index",
        "update-map",
        "weekly-maintain",
        "classify",
        "train-classifier",
    }
    assert expected <= set(deployments)
    nightly = deployments["nightly-ingest"]
    assert nightly.parameters["source"] == deployments["_catalogue"]
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
    assert nightly.work_pool_name == "audio-embeddings"
    assert nightly.global_concurrency_limit.limit == 1
    scan = deployments["anomaly-scan"]
    assert [s.schedule.cron for s in scan.schedules] == ["0 * * * *"]
    assert scan.parameters["reference_prefix"] == "pump-07/normal/"
    upkeep = deployments["weekly-maintain"]
    assert [s.schedule.cron for s in upkeep.schedules] == ["0 3 * * 0"]
    assert [s.schedule.cron for s in deployments["classify"].schedules] == ["30 4 * * *"]
    sensor = deployments["blob-sensor"]
    assert [s.active for s in sensor.schedules] == [False]
    # The UI renders forms from these schemas: typed, and every field says what it means.
    assert deployments["search"].parameter_openapi_schema["properties"]["top"]["type"] == "integer"
    for name in expected:
        properties = deployments[name].parameter_openapi_schema["properties"]
        assert properties and all(field.get("description") for field in properties.values()), name
    source = deployments["nightly-ingest"].parameter_openapi_schema["properties"]["source"]
    assert "az://container/prefix" in source["description"]


def test_blob_created_events_start_one_run_per_burst_with_the_blob_url(deployments: dict) -> None:
    deployment = deployments["ingest-new-blobs"]
    blobs = [
        BlobRef(
            "acct",
            "audio",
            f"incoming/clip-{i}.wav",
            f"0x8D{i}",
            1000 + i,
            f"https://acct.blob.core.windows.net/audio/incoming/clip-{i}.wav",
        )
        for i in range(3)
    ]
    for blob in blobs:
        event = prefect_event(blob, datetime.now(UTC), "test")
        emit_event(event=event["event"], resource=event["resource"], payload=event["payload"])
    runs = []
    deadline = time.monotonic() + 60
    with get_client(sync_client=True) as client:
        while time.monotonic() < deadline:
            runs = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
            if runs:
                break
            time.sleep(1)
        time.sleep(3)  # give a wrongly un-debounced trigger time to start more runs
        runs = client.read_flow_runs(
            deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
        )
    assert len(runs) == 1
    # Event order across the websocket is not guaranteed: the run carries one blob of the burst.
    (url,) = runs[0].parameters["blob_urls"]
    assert url in {blob.url for blob in blobs}
    assert runs[0].expected_start_time > datetime.now(UTC)  # scheduled after the burst window


def test_a_completed_ingest_starts_a_classify_run(deployments: dict) -> None:
    import yaml

    deployment = deployments["classify"]
    spec = yaml.safe_load((ROOT / "prefect.yaml").read_text())
    (trigger,) = next(d for d in spec["deployments"] if d["name"] == "classify")["triggers"]
    assert trigger["expect"] == ["prefect.flow-run.Completed"]
    assert trigger["match_related"] == {
        "prefect.resource.role": "flow",
        "prefect.resource.name": ["ingest", "ingest-blobs"],  # no other flow's completion
    }

    def runs() -> list:  # those the trigger started (the scheduler adds the nightly ones)
        with get_client(sync_client=True) as client:
            found = client.read_flow_runs(
                deployment_filter=DeploymentFilter(id=DeploymentFilterId(any_=[deployment.id]))
            )
        return [run for run in found if not run.auto_scheduled]

    # Ingests that other tests ran on this server can arrive late as events and start runs
    # too: only a new run is asserted here; what does not match is the trigger's spec above.
    before = len(runs())
    emit_event(
        event="prefect.flow-run.Completed",
        resource={"prefect.resource.id": f"prefect.flow-run.{uuid.uuid4()}"},
        related=[
            {
                "prefect.resource.id": f"prefect.flow.{uuid.uuid4()}",
                "prefect.resource.role": "flow",
                "prefect.resource.name": "ingest",
            }
        ],
    )
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and len(runs()) == before:
        time.sleep(1)
    assert len(runs()) > before
