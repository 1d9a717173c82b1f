"""The step of the refresh-index flow, which every ingest also ends with."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.index.interface import RefreshResult
from tasks.index.refresh import refresh_index
from tasks.resources import open_index, snapshot_table
from tasks.settings import Settings


# No task retries: the backends retry their own requests (one layer), and a repeated rebuild
# would only redo work that failed for a reason a retry seconds later does not fix.
@task(name="refresh-index", cache_policy=NO_CACHE)
def refresh_index_task(
    settings: Settings, rebuild: bool = False, drop_old: bool = False
) -> RefreshResult | None:
    """Bring the index up to the latest snapshot version (see tasks.index.refresh)."""
    result = refresh_index(open_index(settings), snapshot_table(settings), rebuild, drop_old)
    logger = get_run_logger()
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
    return result
