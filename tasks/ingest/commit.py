"""Write an ingest run's results as it goes: segments, then rows and deletions, as versions of
the segments table and the snapshot (each one commit of the run, numbered), bad inputs to the
quarantine.

A run commits every ``commit_every_files`` embedded files or ``commit_every_seconds``, whichever
comes first (``CommitBuffer``), so a run that dies loses at most that much work.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import pyarrow as pa

from tasks.storage.keyed_table import KEY_PREFIX_CHARS
from tasks.storage.quarantine import Failure, QuarantineTable
from tasks.storage.segments import SEGMENTS_SCHEMA, SegmentsTable
from tasks.storage.snapshots import SNAPSHOT_SCHEMA, SnapshotTable

if TYPE_CHECKING:
    from tasks.ingest.shard import ShardResult


@dataclass(frozen=True)
class CommitResult:
    """One commit of a run: its sequence number, the snapshot version (None if nothing
    changed) and counts."""

    sequence: int
    version: int | None
    upserted: int
    deleted: int
    quarantined: int
    retry_later: int = 0


@dataclass
class PendingCommit:
    """What the next commit of a run writes."""

    rows: pa.Table
    segments: pa.Table
    failures: list[Failure]
    deleted_keys: list[str]


@dataclass
class CommitBuffer:
    """Deletions and shard results waiting for the next commit; due every ``every_files`` files
    or ``every_seconds`` seconds (checked as shards finish: a commit never splits a shard)."""

    every_files: int
    every_seconds: float
    rows: list[pa.Table] = field(default_factory=list)
    segments: list[pa.Table] = field(default_factory=list)
    failures: list[Failure] = field(default_factory=list)
    deleted_keys: list[str] = field(default_factory=list)
    files: int = 0
    started: float = field(default_factory=time.monotonic)

    def add(self, result: ShardResult) -> None:
        self.rows.append(result.rows)
        self.segments.append(result.segments)
        self.failures.extend(result.failures)
        self.files += result.rows.num_rows + len(result.failures)

    def delete(self, keys: list[str]) -> None:
        self.deleted_keys.extend(keys)
        self.files += len(keys)

    def due(self) -> bool:
        if not self.files:
            return False
        return (
            self.files >= self.every_files or time.monotonic() - self.started >= self.every_seconds
        )

    def take(self) -> PendingCommit:
        """Everything buffered, as one commit; the buffer starts over."""
        rows = pa.concat_tables(self.rows) if self.rows else SNAPSHOT_SCHEMA.empty_table()
        segments = (
            pa.concat_tables(self.segments) if self.segments else SEGMENTS_SCHEMA.empty_table()
        )
        pending = PendingCommit(rows, segments, self.failures, self.deleted_keys)
        self.rows, self.segments, self.failures, self.deleted_keys = [], [], [], []
        self.files, self.started = 0, time.monotonic()
        return pending


def commit_run(
    pending: PendingCommit,
    snapshot: SnapshotTable,
    segments: SegmentsTable,
    quarantine: QuarantineTable,
    run_id: str,
    sequence: int,
) -> CommitResult:
    """Write the segments, then upsert the rows and delete the keys, as commit ``sequence`` of
    the run; quarantine the failures that are the inputs' fault (the others are left for the
    next run). Segments first: a snapshot row never points at segments not yet written."""
    bad_inputs = [f for f in pending.failures if not f.retryable]
    committed = pending.rows["key"].to_pylist()
    known = snapshot.rows_under(sorted({k[:KEY_PREFIX_CHARS] for k in committed}), ["key"])
    changed = set(known["key"].to_pylist()) & set(committed)
    segments.commit(pending.segments, sorted(changed) + pending.deleted_keys, run_id, sequence)
    version = snapshot.commit(pending.rows, pending.deleted_keys, run_id, sequence)
    quarantine.append(bad_inputs, run_id)
    return CommitResult(
        sequence,
        version,
        pending.rows.num_rows,
        len(pending.deleted_keys),
        len(bad_inputs),
        len(pending.failures) - len(bad_inputs),
    )
