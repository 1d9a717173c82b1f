"""Event Grid -> Prefect event translation (the bridge's logic) and the sensor's cursor."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from tasks.events import BLOB_CREATED, from_event_grid, parse_blob_url, prefect_event
from tasks.sensor import SensorCursor, select_new
from tasks.sources import AudioItem

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


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("https://acct.blob.core.windows.net/c/a/b.wav", ("acct", "c", "a/b.wav")),
        (
            "http://127.0.0.1:10000/devstoreaccount1/c/x%27y.wav",
            ("devstoreaccount1", "c", "x'y.wav"),
        ),
        ("az://acct/c/deep/er/z.flac", ("acct", "c", "deep/er/z.flac")),
    ],
)
def test_blob_urls_parse(url: str, expected: tuple[str, str, str]) -> None:
    assert parse_blob_url(url) == expected


def test_a_url_without_a_blob_is_refused() -> None:
    with pytest.raises(ValueError, match="not a blob URL"):
        parse_blob_url("https://acct.blob.core.windows.net/container-only")


T0 = datetime(2026, 11, 25, 12, 0, 0, tzinfo=UTC)


def _item(path: str, second: int, etag: str = "e") -> AudioItem:
    return AudioItem(f"az://a/c/{path}", path, etag, 1, T0 + timedelta(seconds=second))


def test_cursor_never_skips_or_repeats() -> None:
    listing = [_item("b.wav", 0), _item("a.wav", 0), _item("c.wav", 1), _item("d.wav", 2)]
    now = T0 + timedelta(seconds=100)
    first = select_new(listing, SensorCursor(), cap=2, now=now)
    assert [i.path for i in first.items] == ["a.wav", "b.wav"] and first.more_waiting
    second = select_new(listing, first.cursor, cap=2, now=now)
    assert [i.path for i in second.items] == ["c.wav", "d.wav"] and not second.more_waiting
    assert select_new(listing, second.cursor, cap=2, now=now).items == []
    overwritten = [*listing, _item("a.wav", 5, etag="e2")]
    assert [i.path for i in select_new(overwritten, second.cursor, 2, now=now).items] == ["a.wav"]


def test_unsettled_seconds_wait_so_late_arrivals_in_them_are_not_skipped() -> None:
    listing = [_item("z.wav", 10)]
    early = select_new(
        listing, SensorCursor(), cap=5, settle_seconds=10, now=T0 + timedelta(seconds=15)
    )
    assert early.items == [] and early.cursor == SensorCursor()
    later = [*listing, _item("a.wav", 10)]  # same second, smaller name, listed later
    settled = select_new(
        later, SensorCursor(), cap=5, settle_seconds=10, now=T0 + timedelta(seconds=25)
    )
    assert [i.path for i in settled.items] == ["a.wav", "z.wav"]


def test_cursor_round_trips_through_json() -> None:
    cursor = SensorCursor(T0, "x/y.wav")
    assert SensorCursor.from_json(cursor.to_json()) == cursor
    assert SensorCursor.from_json(None) == SensorCursor()
