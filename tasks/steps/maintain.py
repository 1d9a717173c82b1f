"""The steps of the maintain flow: what must stay readable, then upkeep of each table and of
the LanceDB index."""

from __future__ import annotations

from datetime import timedelta

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.anomaly.scan import ScanCursor
from tasks.events.cursors import cursor_values
from tasks.resources import (
    anomaly_store,
    open_index,
    quarantine_table,
    segments_table,
    snapshot_table,
)
from tasks.settings import Settings
from tasks.storage.delta import table_storage_options
from tasks.storage.upkeep import TableUpkeep, maintain_table


@task(name="versions-to-keep", cache_policy=NO_CACHE)
def versions_to_keep(settings: Settings) -> dict[str, list[int]]:
    """Table versions that later runs diff from, by table URI: the snapshot versions the index
    reflects and the anomaly scans last scanned, the quarantine versions the scans last read,
    the segments version the segment index reflects."""
    snapshot, segments = snapshot_table(settings), segments_table(settings)
    cursors = [ScanCursor.from_json(v) for v in cursor_values("anomaly_scan")]
    reflected = open_index(settings).reflected_version(snapshot.uri)
    segments_reflected = open_index(settings, segments=True).reflected_version(segments.uri)
    return {
        snapshot.uri: _versions(reflected, *(c.snapshot_version for c in cursors)),
        segments.uri: _versions(segments_reflected),
        quarantine_table(settings).uri: _versions(*(c.quarantine_version for c in cursors)),
    }


def _versions(*versions: int | None) -> list[int]:
    return sorted({v for v in versions if v is not None})


@task(name="maintain-tables", cache_policy=NO_CACHE)
def maintain_tables(
    settings: Settings, keep: dict[str, list[int]], dry_run: bool
) -> list[TableUpkeep]:
    """Compact, vacuum and checkpoint the snapshot, quarantine and anomaly tables."""
    anomaly = anomaly_store(settings)
    uris = [
        snapshot_table(settings).uri,
        segments_table(settings).uri,
        quarantine_table(settings).uri,
        anomaly.results_uri,
        anomaly.calibrations_uri,
    ]
    done = []
    for uri in uris:
        upkeep = maintain_table(
            uri,
            table_storage_options(uri, settings),
            settings.vacuum_retention_hours,
            keep.get(uri, []),
            dry_run,
        )
        if upkeep is not None:
            get_run_logger().info(
                "%s: %d -> %d files, %d unreferenced files %s",
                uri,
                upkeep.files_before,
                upkeep.files_after,
                len(upkeep.vacuumed),
                "would be deleted" if dry_run else "deleted",
            )
            done.append(upkeep)
    return done


@task(name="maintain-index", cache_policy=NO_CACHE)
def maintain_index(settings: Settings, dry_run: bool) -> dict[str, int] | None:
    """Compact the LanceDB index and drop its old versions (Azure AI Search needs nothing)."""
    retention = timedelta(hours=settings.vacuum_retention_hours)
    return open_index(settings).maintain(retention, dry_run)
