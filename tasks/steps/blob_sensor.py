"""The steps of the blob-sensor flow: where it got to, what is new, announce it, move on."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.events.cursors import cursor_name, load_cursor, save_cursor
from tasks.events.emit import emit
from tasks.events.sensor import SensorBatch, SensorCursor, created_events, select_new
from tasks.resources import open_blob_source
from tasks.settings import Settings
from tasks.storage.sources import AudioItem


@task(name="load-sensor-cursor", cache_policy=NO_CACHE)
def load_sensor_cursor(source_uri: str) -> SensorCursor:
    """The sensor's cursor for a source (a Prefect Variable, visible in the UI)."""
    return SensorCursor.from_json(load_cursor(cursor_name("blob_sensor", source_uri)))


@task(name="find-new-blobs", cache_policy=NO_CACHE)
def find_new_blobs(
    source_uri: str, cursor: SensorCursor, cap: int, settle_seconds: float, settings: Settings
) -> SensorBatch:
    """Blobs after the sensor's cursor, oldest first, at most ``cap``."""
    listing = open_blob_source(source_uri, settings).list_items()
    return select_new(listing, cursor, cap, settle_seconds)


@task(name="emit-blob-events", cache_policy=NO_CACHE)
def emit_blob_events(source_uri: str, items: Sequence[AudioItem], settings: Settings) -> int:
    """Emit one ``azure.blob.created`` event per item (ids derived from name + etag)."""
    return emit(created_events(open_blob_source(source_uri, settings), items))


@task(name="save-sensor-cursor", cache_policy=NO_CACHE)
def save_sensor_cursor(source_uri: str, cursor: SensorCursor) -> None:
    """Store the cursor after the events were emitted (a crash in between re-emits: harmless)."""
    save_cursor(cursor_name("blob_sensor", source_uri), cursor.to_json(), ["blob-sensor"])
