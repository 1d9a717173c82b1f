"""Table upkeep: what keeps the Delta tables fast after thousands of small commits.

Every checkpointed ingest and event-triggered burst adds a table version and small data files;
500 one-file commits made a 10,000-row plan read 23x slower here. Upkeep of a table is:
- compaction of small files into files of at most ``target_size`` bytes (64 MB: a commit that
  changes one file rewrites at most the one file holding its row, so this bounds the bytes
  written per change as well);
- vacuum of data files no version needs any more, older than the retention; files of the
  versions in ``keep_versions`` (what the index and the anomaly scans will diff from) are kept
  whatever their age, so upkeep never breaks a refresh;
- a checkpoint, so that opening the table reads one Parquet file instead of every commit.

``dry_run`` changes nothing and lists what vacuum would delete. A run's markdown report (a
Prefect artifact) says what upkeep did to each table.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

from deltalake.exceptions import DeltaError

from tasks.errors import UserError
from tasks.storage.delta import open_table

#: Compacted file size (bytes): also the most a one-file change rewrites.
TARGET_FILE_BYTES = 64 * 1024 * 1024


class RetentionTooShortError(UserError):
    """The retention asked for is below what the table allows readers to rely on."""


@dataclass(frozen=True)
class TableUpkeep:
    """What upkeep did to one table (or would do, in a dry run)."""

    uri: str
    version_before: int | None
    files_before: int
    files_after: int
    files_compacted: int
    vacuumed: list[str] = field(default_factory=list)
    checkpoint_version: int | None = None
    dry_run: bool = False


def maintain_table(
    uri: str,
    storage_options: dict[str, str] | None,
    retention_hours: int,
    keep_versions: Sequence[int] = (),
    dry_run: bool = False,
    target_size: int = TARGET_FILE_BYTES,
) -> TableUpkeep | None:
    """Compact, vacuum and checkpoint the Delta table at ``uri`` (None if there is none)."""
    table = open_table(uri, storage_options)
    if table is None:
        return None
    version_before, files_before = table.version(), len(table.file_uris())
    keep = sorted({v for v in keep_versions if 0 <= v <= version_before})
    if dry_run:
        would_delete = _vacuum(table, retention_hours, keep, dry_run=True)
        return TableUpkeep(
            uri, version_before, files_before, files_before, 0, would_delete, None, True
        )
    metrics = table.optimize.compact(target_size=target_size)
    deleted = _vacuum(table, retention_hours, keep, dry_run=False)
    table.create_checkpoint()
    table.cleanup_metadata()  # log files past the table's log retention (30 days by default)
    return TableUpkeep(
        uri,
        version_before,
        files_before,
        len(table.file_uris()),
        int(metrics.get("numFilesRemoved", 0)),
        deleted,
        table.version(),
    )


def _vacuum(table, retention_hours: int, keep: list[int], dry_run: bool) -> list[str]:
    try:
        # full: consider every unreferenced file, not only those removed since the last
        # checkpoint (upkeep writes a checkpoint after each vacuum, which would hide the rest).
        return table.vacuum(
            retention_hours=retention_hours,
            dry_run=dry_run,
            enforce_retention_duration=True,
            full=True,
            keep_versions=keep or None,
        )
    except DeltaError as error:
        if "Invalid retention period" not in str(error):
            raise
        raise RetentionTooShortError(
            f"{table.table_uri}: {error}; other readers may still need those files. Use a "
            "longer AUDIO_EMBEDDINGS_VACUUM_RETENTION_HOURS (--retention-hours), or lower the "
            "table's delta.deletedFileRetentionDuration if no one else reads it"
        ) from None


def upkeep_report(
    tables: Sequence[TableUpkeep], index: dict[str, int] | None, dry_run: bool
) -> str:
    """The markdown report of a maintain run: files per table before and after, what vacuum
    deleted (or would delete), the checkpoint, and the index."""
    lines = [
        "# Table upkeep" + (" (dry run: nothing changed)" if dry_run else ""),
        "",
        "| table | version | files before | files after | compacted | vacuumed | checkpoint |",
        "|---|---|---|---|---|---|---|",
        *(
            f"| {t.uri} | {t.version_before} | {t.files_before} | {t.files_after} | "
            f"{t.files_compacted} | {len(t.vacuumed)}{' (would be)' if dry_run else ''} | "
            f"{t.checkpoint_version if t.checkpoint_version is not None else '-'} |"
            for t in tables
        ),
    ]
    if index:
        lines += ["", "LanceDB index: " + ", ".join(f"{k} {v}" for k, v in index.items())]
    for table in tables:
        if table.vacuumed:
            shown = table.vacuumed[:50]
            lines += [
                "",
                f"## Files vacuum {'would delete' if dry_run else 'deleted'}: {table.uri}",
            ]
            lines += [f"- {name}" for name in shown]
            if len(table.vacuumed) > len(shown):
                lines.append(f"- ... and {len(table.vacuumed) - len(shown)} more")
    return "\n".join(lines)


def publish_upkeep_report(report: str, tables: int, dry_run: bool) -> None:
    """The upkeep report as a markdown artifact (key ``table-upkeep``)."""
    from prefect.artifacts import create_markdown_artifact

    create_markdown_artifact(
        report,
        key="table-upkeep",
        description=f"{'Dry run over' if dry_run else 'Upkeep of'} {tables} tables",
    )
