"""Azure Function (Python v2 model): Event Grid BlobCreated -> Prefect events.

The Event Grid trigger does the subscription validation handshake itself and runs once per event.
An exception makes Event Grid retry with backoff (at-least-once); event ids are deterministic, so
the Prefect server drops redeliveries.
"""

from __future__ import annotations

import os

import azure.functions as func
from bridge import post_events, to_prefect_events

app = func.FunctionApp()


@app.event_grid_trigger(arg_name="event")
def blob_created_to_prefect(event: func.EventGridEvent) -> None:
    payload = {
        "id": event.id,
        "eventType": event.event_type,
        "subject": event.subject,
        "eventTime": event.event_time.isoformat() if event.event_time else None,
        "data": event.get_json(),
    }
    post_events(to_prefect_events([payload]), os.environ)
