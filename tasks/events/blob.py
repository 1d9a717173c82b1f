"""``azure.blob.created`` events: one shape for the Event Grid bridge and the polling sensor.

Standard library only, like the blob address parser it uses: the Azure Function bridge in
infra/eventgrid_bridge ships both files at their package paths (its build script copies them),
so the bridge and the sensor cannot drift apart.

Event contract (also in docs/how-to/azure-blob.md): name ``azure.blob.created``; resource id
``azure.blob.<account>.<container>/<path>``; payload with ``url``, ``etag`` (unquoted) and
``size`` (bytes). Ids are deterministic (uuid5 of account, container, path and etag), so a
redelivered or re-polled blob collapses into one event on the Prefect server.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime

from tasks.storage.blob_address import BlobAddress

BLOB_CREATED = "azure.blob.created"
_NAMESPACE = uuid.UUID("6f1c3d1e-6c55-4f0e-9a55-2f4f1c9a8b70")
# Event Grid APIs that mean "a blob's content is complete" (HNS CreateFile is a 0-byte stub).
COMPLETE_WRITE_APIS = frozenset(
    {"PutBlob", "PutBlockList", "CopyBlob", "FlushWithClose", "SftpCommit"}
)


@dataclass(frozen=True)
class BlobRef:
    """One blob version."""

    account: str
    container: str
    path: str
    etag: str
    size: int
    url: str

    @property
    def resource_id(self) -> str:
        return f"azure.blob.{self.account}.{self.container}/{self.path}"

    @property
    def event_id(self) -> str:
        key = f"{self.account}/{self.container}/{self.path}@{self.etag}"
        return str(uuid.uuid5(_NAMESPACE, key))


def prefect_event(blob: BlobRef, occurred: datetime, source: str) -> dict:
    """The Prefect event (JSON-ready, as ``POST /api/events`` takes it) for a new blob."""
    return {
        "id": blob.event_id,
        "occurred": occurred.isoformat(),
        "event": BLOB_CREATED,
        "resource": {
            "prefect.resource.id": blob.resource_id,
            "prefect.resource.name": blob.path,
            "azure.storage.account": blob.account,
            "azure.storage.container": blob.container,
        },
        "payload": {"url": blob.url, "etag": blob.etag, "size": blob.size, "source": source},
    }


def from_event_grid(event: dict) -> BlobRef | None:
    """A ``Microsoft.Storage.BlobCreated`` event (Event Grid or CloudEvents schema) -> BlobRef.

    Returns None for events that do not announce complete content (other types, HNS
    ``CreateFile`` stubs, directories).
    """
    event_type = event.get("eventType") or event.get("type")
    if event_type != "Microsoft.Storage.BlobCreated":
        return None
    data = event.get("data") or {}
    if data.get("api") not in COMPLETE_WRITE_APIS:
        return None
    url = data.get("url") or data.get("blobUrl")
    if not url:
        raise ValueError(f"BlobCreated event {event.get('id')} has no data.url")
    address = BlobAddress.from_url(url)
    return BlobRef(
        account=str(address.account),
        container=address.container,
        path=address.path,
        etag=str(data.get("eTag") or data.get("etag") or "").strip('"'),
        size=int(data.get("contentLength") or 0),
        url=url,
    )
