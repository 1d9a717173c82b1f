"""The azure.blob.created contract: Event Grid -> Prefect event translation (the bridge's logic)
and blob URLs."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from tasks.events.blob import BLOB_CREATED, from_event_grid, prefect_event

EVENT_GRID_BLOB_CREATED = {
    "topic": "/subscriptions/s/resourceGroups/rg/providers/Microsoft.Storage/storageAccounts/acct",
    "subject": "/blobServices/default/containers/audio/blobs/site a/p1.wav",
    "eventType": "Microsoft.Storage.BlobCreated",
    "id": "831e1650-001e-001b-66ab-eeb76e069631",
    "data": {
        "api": "PutBlockList",
        "eTag": '"0x8D4BCC2E4835CD0"',
        "contentType": "audio/wav",
        "contentLength": 524288,
        "blobType": "BlockBlob",
        "url": "https://acct.blob.core.windows.net/audio/site%20a/p1.wav",
        "sequencer": "00000000000004420000000000028963",
    },
    "dataVersion": "",
    "metadataVersion": "1",
    "eventTime": "2026-11-25T12:00:00.000Z",
}


def test_event_grid_blob_created_becomes_the_contract_event() -> None:
    blob = from_event_grid(EVENT_GRID_BLOB_CREATED)
    assert blob is not None
    event = prefect_event(blob, datetime(2026, 11, 25, 12, tzinfo=UTC), "eventgrid")
    assert event["event"] == BLOB_CREATED
    assert event["resource"]["prefect.resource.id"] == "azure.blob.acct.audio/site a/p1.wav"
    assert event["payload"] == {
        "url": "https://acct.blob.core.windows.net/audio/site%20a/p1.wav",
        "etag": "0x8D4BCC2E4835CD0",
        "size": 524288,
        "source": "eventgrid",
    }


def test_cloudevents_schema_and_unquoted_etag_give_the_same_event_id() -> None:
    cloud = {
        "specversion": "1.0",
        "type": "Microsoft.Storage.BlobCreated",
        "source": EVENT_GRID_BLOB_CREATED["topic"],
        "id": "x",
        "subject": "s",
        "data": {**EVENT_GRID_BLOB_CREATED["data"], "eTag": "0x8D4BCC2E4835CD0"},
    }
    assert from_event_grid(cloud).event_id == from_event_grid(EVENT_GRID_BLOB_CREATED).event_id


def test_redelivery_collapses_and_a_new_version_does_not() -> None:
    first = from_event_grid(EVENT_GRID_BLOB_CREATED)
    again = from_event_grid(dict(EVENT_GRID_BLOB_CREATED, id="another-delivery"))
    newer = from_event_grid(
        {**EVENT_GRID_BLOB_CREATED, "data": {**EVENT_GRID_BLOB_CREATED["data"], "eTag": '"0x9"'}}
    )
    assert first.event_id == again.event_id != newer.event_id


@pytest.mark.parametrize("api", ["CreateFile", "PutBlock", None])
def test_incomplete_writes_and_other_types_are_ignored(api: str | None) -> None:
    event = {**EVENT_GRID_BLOB_CREATED, "data": {**EVENT_GRID_BLOB_CREATED["data"], "api": api}}
    assert from_event_grid(event) is None
    assert (
        from_event_grid({**EVENT_GRID_BLOB_CREATED, "eventType": "Microsoft.Storage.BlobDeleted"})
        is None
    )
