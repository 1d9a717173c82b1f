"""Poll a container for new blobs and emit ``azure.blob.created`` events (no Event Grid)."""

from __future__ import annotations

from prefect import flow

from tasks.pipeline import (
    emit_blob_events,
    find_new_blobs,
    load_sensor_cursor,
    save_sensor_cursor,
)
from tasks.settings import Settings


@flow(name="blob-sensor")
def blob_sensor(source: str, max_events: int = 500, settle_seconds: float = 10.0) -> int:
    """Announce blobs of ``source`` (az://container/prefix) added since the last poll.

    At most ``max_events`` per run (a backlog drains over several runs); returns how many.
    """
    settings = Settings()
    cursor = load_sensor_cursor(source)
    batch = find_new_blobs(source, cursor, max_events, settle_seconds, settings)
    emitted = emit_blob_events(source, batch.items, settings)
    save_sensor_cursor(source, batch.cursor)
    return emitted
