"""The Event Grid -> Prefect bridge, packaged as it is deployed, posting to a Prefect server."""

from __future__ import annotations

import importlib
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL

from tests.events.test_blob import EVENT_GRID_BLOB_CREATED

ROOT = Path(__file__).parents[2]


@pytest.fixture(scope="module")
def bridge(tmp_path_factory: pytest.TempPathFactory):
    """bridge.py imported from the folder package.sh assembles (with its copy of the events)."""
    dist = tmp_path_factory.mktemp("function")
    subprocess.run(
        [str(ROOT / "infra/eventgrid_bridge/package.sh"), str(dist)],
        check=True,
        capture_output=True,
    )
    for module in ("tasks/events/blob.py", "tasks/storage/blob_address.py"):
        assert (dist / module).read_text() == (ROOT / module).read_text()
    # The function app has no pipeline installed: the bridge imports with the standard library
    # and what package.sh copied, nothing else.
    alone = subprocess.run(
        [
            sys.executable,
            "-I",
            "-S",
            "-c",
            "import sys; sys.path.insert(0, ''); import bridge; print(bridge.blob_events.__file__)",
        ],
        cwd=dist,
        capture_output=True,
        text=True,
    )
    assert alone.returncode == 0, alone.stderr
    assert alone.stdout.strip() == str(dist / "tasks/events/blob.py")
    sys.path.insert(0, str(dist))
    try:
        yield importlib.import_module("bridge")
    finally:
        sys.path.remove(str(dist))
        sys.modules.pop("bridge", None)


def test_only_complete_blob_writes_become_events(bridge) -> None:
    stub = {
        **EVENT_GRID_BLOB_CREATED,
        "data": {**EVENT_GRID_BLOB_CREATED["data"], "api": "CreateFile"},
    }
    events = bridge.to_prefect_events([EVENT_GRID_BLOB_CREATED, stub])
    assert len(events) == 1
    assert events[0]["occurred"].startswith("2026-11-25T12:00:00")
    assert events[0]["resource"]["prefect.resource.id"] == "azure.blob.acct.audio/site a/p1.wav"


@pytest.mark.usefixtures("prefect_server")
def test_posts_to_the_prefect_events_api(bridge) -> None:
    events = bridge.to_prefect_events([EVENT_GRID_BLOB_CREATED])
    bridge.post_events(events, {"PREFECT_API_URL": PREFECT_API_URL.value()})  # 204, no raise
    bridge.post_events(events, {"PREFECT_API_URL": PREFECT_API_URL.value()})  # redelivery: fine
    broken = [{**events[0], "resource": {}}]
    with pytest.raises(bridge.PrefectRejectedError, match="HTTP 422"):
        bridge.post_events(
            broken,
            {"PREFECT_API_URL": PREFECT_API_URL.value(), "PREFECT_API_AUTH_STRING": "user:s3cret"},
        )
