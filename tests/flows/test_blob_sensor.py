"""The blob-sensor flow on Azurite: each new blob announced once, backlogs drained by the cap."""

from __future__ import annotations

import pytest
from azure.storage.blob import ContainerClient

from flows.blob_sensor import blob_sensor
from tasks.audio import samples
from tests.blobs import fill, upload

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_sensor_announces_each_new_blob_once(blob_env: ContainerClient) -> None:
    source = f"az://{blob_env.container_name}/"
    fill(blob_env)
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 3
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 1  # the backlog drains
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 0
    upload(blob_env, "site-c/late.wav", samples.tone(1.0, 16_000), 16_000)
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 1
    assert blob_sensor(source=source, max_events=3, settle_seconds=0) == 0
