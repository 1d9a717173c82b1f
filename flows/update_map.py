"""Keep the catalogue map (every file as a 2-D point) up to date with the snapshot."""

from __future__ import annotations

from prefect import flow
from prefect.runtime import flow_run

from tasks.catalogue_map.update import MapUpdate
from tasks.settings import Settings
from tasks.steps.update_map import update_map_task


@flow(name="update-map")
def update_map(
    snapshot_uri: str | None = None, map_uri: str | None = None, refit: bool = False
) -> MapUpdate:
    """Place the files new or changed since the last update on the map, with the projection
    it has, and drop the files that left. Refits on a sample when there is no map yet, when
    the catalogue has outgrown a small fit, or when drift is measured (see docs: the catalogue
    map). Every ingest and index refresh ends with this step.

    Args:
        snapshot_uri: Delta table of embeddings; empty: the worker's
            AUDIO_EMBEDDINGS_SNAPSHOT_URI.
        map_uri: Folder of the map tables; empty: the worker's AUDIO_EMBEDDINGS_MAP_URI, or
            beside the snapshot.
        refit: Fit a new projection now, whatever drift says.
    """
    settings = Settings.with_overrides(snapshot_uri=snapshot_uri, map_uri=map_uri)
    return update_map_task(settings, str(flow_run.id), refit)
