"""The steps of the ingest flows: plan, embed shards, commit (then the refresh-index step)."""

from __future__ import annotations

from collections.abc import Sequence

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.ingest.commit import CommitResult, PendingCommit, commit_run
from tasks.ingest.plan import ChangePlan, container_of, plan_blobs, plan_source
from tasks.ingest.runs import unfinished_runs
from tasks.ingest.shard import ShardResult, embed_shard
from tasks.model.embedder import load_embedder
from tasks.resources import (
    open_blob_source,
    open_source,
    quarantine_table,
    segments_table,
    snapshot_table,
)
from tasks.settings import Settings
from tasks.storage.sources import AudioItem


@task(name="plan-changes", cache_policy=NO_CACHE)
def plan_ingest(source_uri: str, settings: Settings) -> ChangePlan:
    """List the source and compare it with the latest snapshot and the quarantine."""
    plan = plan_source(
        open_source(source_uri, settings), snapshot_table(settings), quarantine_table(settings)
    )
    get_run_logger().info(
        "%s: %d to embed, %d unchanged, %d deleted, %d skipped (quarantined, unchanged)",
        source_uri,
        plan.to_embed,
        plan.unchanged,
        plan.deleted,
        plan.skipped_quarantined,
    )
    return plan


@task(name="plan-blob-batch", cache_policy=NO_CACHE)
def plan_blob_batch(blob_urls: Sequence[str], settings: Settings) -> tuple[str, ChangePlan]:
    """The source and plan for an explicit list of blobs (from events): new or changed only."""
    _, source_uri = container_of(blob_urls)
    plan, skipped = plan_blobs(
        blob_urls,
        open_blob_source(source_uri, settings),
        snapshot_table(settings),
        quarantine_table(settings),
    )
    for reason in skipped:
        get_run_logger().warning("skipped %s", reason)
    return source_uri, plan


@task(name="count-resumed", cache_policy=NO_CACHE)
def count_resumed(unchanged_by_run: dict[str, int]) -> int:
    """Unchanged files that were committed by runs that did not complete (killed, crashed,
    failed, cancelled): the work this run resumes instead of redoing."""
    return sum(unchanged_by_run.get(run, 0) for run in unfinished_runs(unchanged_by_run))


# No retries: a file's read failures are already retried by the storage SDK and then left for
# the next run, and an unexpected error (out of memory, a lost GPU) would fail again.
@task(name="embed-shard", cache_policy=NO_CACHE)
def embed_shard_task(
    items: Sequence[AudioItem], source_uri: str, settings: Settings, run_id: str
) -> ShardResult:
    """Decode and embed one shard of files; bad files come back as failures."""
    result = embed_shard(
        items,
        open_source(source_uri, settings),
        load_embedder(settings.model_settings(), settings.audio_limits()),
        run_id,
        settings.top_tags,
        settings.prepare_workers,
    )
    logger = get_run_logger()
    for failure in result.failures:
        verdict = "will retry next run" if failure.retryable else "quarantined"
        logger.warning("%s: %s", verdict, failure.message)
    return result


@task(name="commit-snapshot", cache_policy=NO_CACHE)
def commit_snapshot(
    pending: PendingCommit, settings: Settings, run_id: str, sequence: int
) -> CommitResult:
    """Write rows and deletions as commit ``sequence`` of the run; record its failures."""
    committed = commit_run(
        pending,
        snapshot_table(settings),
        segments_table(settings),
        quarantine_table(settings),
        run_id,
        sequence,
    )
    if committed.version is not None:
        get_run_logger().info(
            "commit %d: snapshot version %d (%d upserted, %d deleted)",
            sequence,
            committed.version,
            committed.upserted,
            committed.deleted,
        )
    return committed
