"""A polling sensor for places without Event Grid (Azurite, on-premises, a local folder).

The cursor is the (last_modified, name) of the last blob announced. Each poll streams the
listing, keeps only blobs after the cursor whose last_modified is at least ``settle_seconds``
old (storage timestamps have 1 s granularity, so a second is only complete once it is past),
and announces the oldest ``cap`` of them in (last_modified, name) order. Memory is O(cap)
whatever the container size. Re-announcing after a crash is harmless: event ids are
deterministic (tasks.events.blob), so the Prefect server drops duplicates.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from tasks.events.blob import BlobRef, prefect_event
from tasks.storage.sources import AudioItem, BlobSource


@dataclass(frozen=True)
class SensorCursor:
    """Position of a sensor: everything up to and including (last_modified, name) was announced."""

    last_modified: datetime | None = None
    name: str = ""

    def to_json(self) -> dict[str, str | None]:
        stamp = self.last_modified.isoformat() if self.last_modified else None
        return {"last_modified": stamp, "name": self.name}

    @classmethod
    def from_json(cls, value: dict | None) -> SensorCursor:
        if not value or not value.get("last_modified"):
            return cls()
        return cls(datetime.fromisoformat(value["last_modified"]), value.get("name", ""))


@dataclass(frozen=True)
class SensorBatch:
    """Items to announce, oldest first, and the cursor after them."""

    items: list[AudioItem]
    cursor: SensorCursor


def _position(item: AudioItem) -> tuple[datetime, str]:
    return (item.last_modified, item.path)


def select_new(
    listing: Iterable[AudioItem],
    cursor: SensorCursor,
    cap: int,
    settle_seconds: float = 10.0,
    now: datetime | None = None,
) -> SensorBatch:
    """The oldest ``cap`` settled items after ``cursor``, and the cursor that follows them."""
    if cap < 1:
        raise ValueError("cap must be at least 1")
    settled_before = (now or datetime.now(UTC)) - timedelta(seconds=settle_seconds)
    start = (cursor.last_modified, cursor.name) if cursor.last_modified else None
    candidates = (
        item
        for item in listing
        if item.last_modified <= settled_before and (start is None or _position(item) > start)
    )
    chosen = heapq.nsmallest(cap, candidates, key=_position)
    if not chosen:
        return SensorBatch([], cursor)
    last = chosen[-1]
    return SensorBatch(chosen, SensorCursor(last.last_modified, last.path))


def created_events(source: BlobSource, items: Iterable[AudioItem]) -> Iterator[dict]:
    """The ``azure.blob.created`` events announcing ``items`` of ``source``."""
    for item in items:
        blob = BlobRef(
            account=source.account,
            container=source.container.container_name,
            path=item.path,
            etag=item.etag,
            size=item.size_bytes,
            url=source.container.get_blob_client(item.path).url,
        )
        yield prefect_event(blob, item.last_modified, "blob-sensor")
