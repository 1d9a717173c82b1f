"""Event Grid -> Prefect: turn BlobCreated events into ``azure.blob.created`` Prefect events and
POST them to a Prefect server's events API.

Standard library only. ``tasks.events.blob`` (and the blob address parser it uses) are the
pipeline's own modules, copied in by package.sh, so the bridge and the pipeline's polling sensor
produce the same events.
"""

from __future__ import annotations

import base64
import json
import urllib.error
import urllib.request
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime

from tasks.events import blob as blob_events


class PrefectRejectedError(RuntimeError):
    """The Prefect API answered with an error: raising makes Event Grid redeliver later."""


def to_prefect_events(event_grid_events: Iterable[Mapping]) -> list[dict]:
    """The Prefect events for the BlobCreated events that announce complete blobs."""
    events = []
    for event in event_grid_events:
        blob = blob_events.from_event_grid(dict(event))
        if blob is None:
            continue
        stamp = event.get("eventTime") or event.get("time")
        occurred = (
            datetime.fromisoformat(stamp.replace("Z", "+00:00")) if stamp else datetime.now(UTC)
        )
        events.append(blob_events.prefect_event(blob, occurred, "eventgrid"))
    return events


def post_events(events: list[dict], settings: Mapping[str, str], timeout_s: float = 20.0) -> None:
    """POST events to ``{PREFECT_API_URL}/events``.

    Auth: ``PREFECT_API_KEY`` (Bearer, Prefect Cloud) or ``PREFECT_API_AUTH_STRING``
    (``user:password``, Basic, a self-hosted server with auth on). Secrets never reach messages.
    """
    if not events:
        return
    url = settings["PREFECT_API_URL"].rstrip("/") + "/events"
    headers = {"Content-Type": "application/json"}
    if settings.get("PREFECT_API_KEY"):
        headers["Authorization"] = f"Bearer {settings['PREFECT_API_KEY']}"
    elif settings.get("PREFECT_API_AUTH_STRING"):
        token = base64.b64encode(settings["PREFECT_API_AUTH_STRING"].encode()).decode()
        headers["Authorization"] = f"Basic {token}"
    request = urllib.request.Request(
        url, data=json.dumps(events).encode(), headers=headers, method="POST"
    )
    try:
        with urllib.request.urlopen(request, timeout=timeout_s) as response:
            status = response.status
    except urllib.error.HTTPError as error:
        status = error.code
    if not 200 <= status < 300:
        raise PrefectRejectedError(f"Prefect events API at {url} answered HTTP {status}")
