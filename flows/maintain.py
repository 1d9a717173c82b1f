"""Weekly upkeep of the tables and the index: compaction, vacuum, checkpoint."""

from __future__ import annotations

from prefect import flow

from tasks.settings import Settings
from tasks.steps.maintain import maintain_index, maintain_tables, versions_to_keep
from tasks.storage.upkeep import TableUpkeep, publish_upkeep_report, upkeep_report


@flow(name="maintain")
def maintain(dry_run: bool = False, retention_hours: int | None = None) -> list[TableUpkeep]:
    """Compact small files, vacuum unreferenced ones and checkpoint the snapshot, quarantine
    and anomaly tables; compact the LanceDB index.

    Args:
        dry_run: Change nothing; list the files vacuum would delete.
        retention_hours: Delete unreferenced files older than this (h); empty: the worker's
            AUDIO_EMBEDDINGS_VACUUM_RETENTION_HOURS (168, a week). Files of the snapshot
            versions the index and the anomaly scans will diff from are kept whatever their age.
    """
    settings = Settings.with_overrides(vacuum_retention_hours=retention_hours)
    keep = versions_to_keep(settings)
    tables = maintain_tables(settings, keep, dry_run)
    index = maintain_index(settings, dry_run)
    publish_upkeep_report(upkeep_report(tables, index, dry_run), len(tables), dry_run)
    return tables
