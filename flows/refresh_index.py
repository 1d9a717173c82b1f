"""Bring the vector index up to the latest snapshot version."""

from __future__ import annotations

from prefect import flow

from tasks.index.interface import RefreshResult
from tasks.settings import Settings
from tasks.steps.refresh_index import refresh_index_task


@flow(name="refresh-index")
def refresh_index(
    snapshot_uri: str | None = None,
    index_uri: str | None = None,
    rebuild: bool = False,
    drop_old: bool = False,
) -> RefreshResult | None:
    """Apply the snapshot changes since the version the index reflects (upserts and deletes).

    Args:
        snapshot_uri: Delta table of embeddings; empty: the worker's
            AUDIO_EMBEDDINGS_SNAPSHOT_URI.
        index_uri: LanceDB folder of the vector index; empty: the worker's
            AUDIO_EMBEDDINGS_INDEX_URI (unused with Azure AI Search).
        rebuild: Build a new index from the whole snapshot and switch readers to it when
            complete (after a model or index-setting change).
        drop_old: With rebuild: delete the index it replaced.
    """
    return refresh_index_task(
        Settings.with_overrides(snapshot_uri=snapshot_uri, index_uri=index_uri), rebuild, drop_old
    )
