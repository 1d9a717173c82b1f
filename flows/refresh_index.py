"""Bring the vector index up to the latest snapshot version."""

from __future__ import annotations

from prefect import flow

from tasks.index import RefreshResult
from tasks.pipeline import refresh_index_task
from tasks.settings import Settings


@flow(name="refresh-index")
def refresh_index(
    snapshot_uri: str | None = None, index_uri: str | None = None
) -> RefreshResult | None:
    """Apply the snapshot changes since the version the index reflects (upserts and deletes)."""
    return refresh_index_task(
        Settings.with_overrides(snapshot_uri=snapshot_uri, index_uri=index_uri)
    )
