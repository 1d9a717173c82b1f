"""The run forms of the Prefect UI: every flow parameter is typed and explains itself."""

from __future__ import annotations

import pytest
from prefect import Flow

from flows.anomaly_scan import anomaly_scan
from flows.blob_sensor import blob_sensor
from flows.ingest import ingest, ingest_blobs
from flows.refresh_index import refresh_index
from flows.search import search

FLOWS = [ingest, ingest_blobs, refresh_index, search, blob_sensor, anomaly_scan]


@pytest.mark.parametrize("flow", FLOWS, ids=lambda f: f.name)
def test_every_parameter_has_a_description(flow: Flow) -> None:
    properties = flow.parameters.properties
    assert set(properties) == set(flow.fn.__code__.co_varnames[: flow.fn.__code__.co_argcount])
    undescribed = [name for name, schema in properties.items() if not schema.get("description")]
    assert undescribed == []


def test_parameters_are_typed() -> None:
    properties = ingest.parameters.properties
    assert properties["source"]["type"] == "string"
    assert properties["refresh_index"]["type"] == "boolean"
    assert search.parameters.properties["top"]["type"] == "integer"
    assert "source" in ingest.parameters.required
    assert anomaly_scan.parameters.properties["threshold_method"]["enum"] == ["gamma", "quantile"]
