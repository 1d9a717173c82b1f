"""The step that keeps the catalogue map up to date: the end of every ingest and index refresh,
and the update-map flow."""

from __future__ import annotations

import os

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.catalogue_map.update import MapUpdate, update_map
from tasks.resources import map_store, snapshot_table
from tasks.settings import Settings


@task(name="update-map", cache_policy=NO_CACHE)
def update_map_task(settings: Settings, run_id: str, refit: bool = False) -> MapUpdate:
    """Place new and changed files on the map and drop the ones that left; refit when asked,
    or when the map has drifted (see tasks.catalogue_map.update)."""
    logger = get_run_logger()
    update = update_map(
        snapshot_table(settings), map_store(settings), run_id, refit, n_jobs=os.cpu_count() or 1
    )
    if update.refitted:
        logger.info(
            "map refitted (%s): projection %d (%s) places %d files; neighbours kept %s",
            update.reason,
            update.projection_version,
            update.method,
            update.placed,
            "n/a" if update.preservation is None else f"{update.preservation:.2f}",
        )
    else:
        logger.info(
            "map: %d files placed, %d removed with projection %s (%d files on the map)",
            update.placed,
            update.removed,
            update.projection_version,
            update.files,
        )
    return update


def update_the_map(settings: Settings, run_id: str) -> MapUpdate | None:
    """The map step at the end of an ingest or a refresh: the map is derived from what was
    committed, so a map that cannot be updated is reported and the run goes on (the next
    update catches up)."""
    state = update_map_task(settings, run_id, return_state=True)
    if state.is_completed():
        return state.result()
    get_run_logger().error("the catalogue map was not updated: %s", state.message)
    return None
