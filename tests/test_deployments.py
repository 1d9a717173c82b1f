"""prefect.yaml deploys onto a Prefect server with the schedules and parameters it promises."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.client.orchestration import get_client
from prefect.settings import PREFECT_API_URL

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).parents[1]


def test_prefect_yaml_deploys_every_flow(tmp_path: Path) -> None:
    env = {
        **os.environ,
        "PREFECT_API_URL": PREFECT_API_URL.value(),
        "AUDIO_EMBEDDINGS_SOURCE": str(tmp_path / "catalogue"),
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
        deployments = {d.name: d for d in client.read_deployments()}
    assert {"nightly-ingest", "search", "refresh-index"} <= set(deployments)
    nightly = deployments["nightly-ingest"]
    assert nightly.parameters["source"] == str(tmp_path / "catalogue")
    assert [s.schedule.cron for s in nightly.schedules] == ["0 2 * * *"]
    assert nightly.work_pool_name == "audio-embeddings"
    assert nightly.global_concurrency_limit is not None
    assert nightly.global_concurrency_limit.limit == 1
    # The UI renders forms from these schemas.
    assert deployments["search"].parameter_openapi_schema["properties"]["top"]["type"] == "integer"
