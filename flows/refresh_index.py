"""Bring the vector index up to the latest snapshot version."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from tasks.index.interface import RefreshResult
from tasks.settings import Settings
from tasks.steps.refresh_index import refresh_index_task
from tasks.steps.update_map import update_the_map


@flow(name="refresh-index")
def refresh_index(
    snapshot_uri: str | None = None,
    index_uri: str | None = None,
    rebuild: bool = False,
    drop_old: bool = False,
) -> RefreshResult | None:
    """Apply the snapshot changes since the version the index reflects (upserts and deletes),
    then place the new files on the catalogue map.

    Args:
        snapshot_uri: Delta table of embeddings; empty: the worker's
            AUDIO_EMBEDDINGS_SNAPSHOT_URI.
        index_uri: LanceDB folder of the vector index; empty: the worker's
            AUDIO_EMBEDDINGS_INDEX_URI (unused with Azure AI Search).
        rebuild: Build a new index from the whole snapshot and switch readers to it when
            complete (after a model or index-setting change).
        drop_old: With rebuild: delete the index it replaced.
    """
    settings = Settings.with_overrides(snapshot_uri=snapshot_uri, index_uri=index_uri)
    result = refresh_index_task(settings, rebuild, drop_old)
    update_the_map(settings, str(flow_run.id))
    return result
