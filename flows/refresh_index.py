"""Bring the vector index up to the latest snapshot version."""

from __future__ import annotations

from prefect import flow

from tasks.index import RefreshResult
from tasks.pipeline import refresh_index_task
from tasks.settings import Settings


@flow(name="refresh-index")
def refresh_index(
    snapshot_uri: str | None = None,
    index_uri: str | None = None,
    rebuild: bool = False,
    drop_old: bool = False,
) -> RefreshResult | None:
    """Apply the snapshot changes since the version the index reflects (upserts and deletes).

    ``rebuild``: build a new index from the whole snapshot, switch to it when complete (after a
    model or index-setting change); ``drop_old``: delete the index it replaced.
    """
    return refresh_index_task(
        Settings.with_overrides(snapshot_uri=snapshot_uri, index_uri=index_uri), rebuild, drop_old
    )
