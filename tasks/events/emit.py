"""Emit events to the Prefect server, from the JSON shape that ``POST /api/events`` takes."""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from datetime import datetime


def emit(events: Iterable[dict]) -> int:
    """Emit each event (``id``, ``occurred``, ``event``, ``resource``, ``payload``); returns how
    many. Ids are deterministic upstream, so the server drops a re-emitted event."""
    from prefect.events import emit_event

    count = 0
    for event in events:
        emit_event(
            event=event["event"],
            resource=event["resource"],
            payload=event["payload"],
            occurred=datetime.fromisoformat(event["occurred"]),
            id=uuid.UUID(event["id"]),
        )
        count += 1
    return count
