"""The step of the refresh-index flow, which every ingest also ends with."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.index.interface import RefreshResult
from tasks.index.refresh import refresh_index
from tasks.resources import open_index, predicted_labels_of_files, segments_table, snapshot_table
from tasks.settings import Settings


# No task retries: the backends retry their own requests (one layer), and a repeated rebuild
# would only redo work that failed for a reason a retry seconds later does not fix.
@task(name="refresh-index", cache_policy=NO_CACHE)
def refresh_index_task(
    settings: Settings, rebuild: bool = False, drop_old: bool = False
) -> RefreshResult | None:
    """Bring the file index up to the latest snapshot version and the segment index up to the
    latest segments version (see tasks.index.refresh); returns what the file index did."""
    logger = get_run_logger()
    # predicted labels ride along once a label set has predictions
    predicted = predicted_labels_of_files(settings)
    result = refresh_index(
        open_index(settings),
        snapshot_table(settings),
        rebuild,
        drop_old,
        predicted.column if predicted else None,
    )
    if result is None:
        logger.info("no snapshot yet at %s: nothing to index", settings.resolved_snapshot_uri())
    elif result.rebuilt_index:
        logger.info("rebuilt %s from snapshot version %d", result.rebuilt_index, result.to_version)
    else:
        logger.info(
            "index reflects snapshot version %d (%d upserted, %d deleted)",
            result.to_version,
            result.upserted,
            result.deleted,
        )
    segments = refresh_index(
        open_index(settings, segments=True), segments_table(settings), rebuild, drop_old
    )
    if segments is not None:
        logger.info(
            "segment index reflects segments version %d (%d upserted, %d deleted)",
            segments.to_version,
            segments.upserted,
            segments.deleted,
        )
    return result
