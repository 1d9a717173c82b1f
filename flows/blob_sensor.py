"""Poll a container for new blobs and emit ``azure.blob.created`` events (no Event Grid)."""

from __future__ import annotations

from prefect import flow

from tasks.settings import Settings
from tasks.steps.blob_sensor import (
    emit_blob_events,
    find_new_blobs,
    load_sensor_cursor,
    save_sensor_cursor,
)


@flow(name="blob-sensor")
def blob_sensor(source: str, max_events: int = 500, settle_seconds: float = 10.0) -> int:
    """Announce the blobs of a container added since the last poll; returns how many.

    Args:
        source: The container to watch, as az://container/prefix.
        max_events: At most this many events per run, oldest first (a backlog drains over
            several runs).
        settle_seconds: Announce a blob only once its last-modified time is this old (storage
            timestamps have 1 s granularity, so a second is complete only once it is past).
    """
    settings = Settings()
    cursor = load_sensor_cursor(source)
    batch = find_new_blobs(source, cursor, max_events, settle_seconds, settings)
    emitted = emit_blob_events(source, batch.items, settings)
    save_sensor_cursor(source, batch.cursor)
    return emitted
