"""Write one ingest run's results: its rows and deletions as one snapshot version, its bad
inputs to the quarantine."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import pyarrow as pa

from tasks.storage.quarantine import QuarantineTable
from tasks.storage.snapshots import SNAPSHOT_SCHEMA, SnapshotTable

if TYPE_CHECKING:
    from tasks.ingest.shard import ShardResult


@dataclass(frozen=True)
class CommitResult:
    """What an ingest committed: the snapshot version (None if nothing changed) and counts."""

    version: int | None
    upserted: int
    deleted: int
    quarantined: int
    retry_later: int = 0


def commit_run(
    results: Sequence[ShardResult],
    deleted_keys: Sequence[str],
    snapshot: SnapshotTable,
    quarantine: QuarantineTable,
    run_id: str,
) -> CommitResult:
    """Upsert the shards' rows and delete ``deleted_keys`` in one snapshot version; quarantine
    the failures that are the inputs' fault (the others are left for the next run)."""
    rows = pa.concat_tables([r.rows for r in results]) if results else SNAPSHOT_SCHEMA.empty_table()
    failures = [f for r in results for f in r.failures]
    bad_inputs = [f for f in failures if not f.retryable]
    version = snapshot.commit(rows, deleted_keys, run_id)
    quarantine.append(bad_inputs, run_id)
    return CommitResult(
        version, rows.num_rows, len(deleted_keys), len(bad_inputs), len(failures) - len(bad_inputs)
    )
