"""Ingest audio: list -> diff -> embed shards -> commit as it goes -> refresh the index.

Two entry points share every step after planning: ``ingest`` (a whole source, on a schedule or
by hand) and ``ingest_blobs`` (a list of blobs, from ``azure.blob.created`` events).
"""

from __future__ import annotations

from collections.abc import Iterator

from prefect import Flow, flow
from prefect.futures import PrefectFuture, as_completed
from prefect.runtime import flow_run
from prefect.task_runners import ThreadPoolTaskRunner

from tasks.ingest.commit import CommitBuffer, CommitResult
from tasks.ingest.plan import ChangePlan
from tasks.ingest.report import IngestSummary, ProgressReporter, publish_ingest_summary
from tasks.ingest.shard import ShardResult
from tasks.model.checkpoint import ResolvedCheckpoint
from tasks.settings import Settings
from tasks.steps.ingest import (
    commit_snapshot,
    count_resumed,
    embed_shard_task,
    plan_blob_batch,
    plan_ingest,
)
from tasks.steps.model import resolve_model
from tasks.steps.refresh_index import refresh_index_task
from tasks.steps.update_map import update_the_map
from tasks.storage.quarantine import Failure

# Two workers: one shard decodes while the other holds the model (forward passes are serialised).
RUNNER = ThreadPoolTaskRunner(max_workers=2)


@flow(name="ingest", task_runner=RUNNER)
def ingest(
    source: str,
    snapshot_uri: str | None = None,
    index_uri: str | None = None,
    checkpoint_path: str | None = None,
    shard_size: int | None = None,
    refresh_index: bool = True,
) -> IngestSummary:
    """Embed new and changed audio of a source and commit one snapshot version.

    Unchanged files are skipped, deleted ones removed; unusable files are quarantined with their
    reason while the rest of the run goes on.

    Args:
        source: The audio to ingest: a folder on the worker, or az://container/prefix in the
            configured storage account.
        snapshot_uri: Delta table of embeddings (a folder or az://container/path); empty: the
            worker's AUDIO_EMBEDDINGS_SNAPSHOT_URI.
        index_uri: LanceDB folder of the vector index; empty: the worker's
            AUDIO_EMBEDDINGS_INDEX_URI (unused with Azure AI Search).
        checkpoint_path: Cnn14 checkpoint file on the worker; empty: the worker's
            AUDIO_EMBEDDINGS_CHECKPOINT_PATH, ~/panns_data, or a one-time download.
        shard_size: Files per Prefect task (64 on a CPU; thousands on a GPU); empty: the
            worker's AUDIO_EMBEDDINGS_SHARD_SIZE.
        refresh_index: Bring the vector index up to the new snapshot version after the commit.
    """
    settings = Settings.with_overrides(
        snapshot_uri=snapshot_uri,
        index_uri=index_uri,
        checkpoint_path=checkpoint_path,
        shard_size=shard_size,
    )
    model = resolve_model(settings)
    plan = plan_ingest(source, settings)
    return _embed_commit_refresh(source, plan, settings, model, refresh_index)


@flow(name="ingest-blobs", task_runner=RUNNER)
def ingest_blobs(
    blob_urls: list[str],
    catch_up_source: str | None = None,
    snapshot_uri: str | None = None,
    index_uri: str | None = None,
    refresh_index: bool = True,
) -> IngestSummary:
    """Embed the given blobs if they are new or changed (the event-triggered ingest).

    Args:
        blob_urls: URLs of the blobs to embed, as azure.blob.created events carry them
            (https://<account>.blob.core.windows.net/<container>/<path>); one container.
        catch_up_source: Instead, ingest this whole az://container/prefix incrementally, which
            also covers blobs whose events were folded into this run.
        snapshot_uri: Delta table of embeddings; empty: the worker's
            AUDIO_EMBEDDINGS_SNAPSHOT_URI.
        index_uri: LanceDB folder of the vector index; empty: the worker's
            AUDIO_EMBEDDINGS_INDEX_URI (unused with Azure AI Search).
        refresh_index: Bring the vector index up to the new snapshot version after the commit.
    """
    settings = Settings.with_overrides(snapshot_uri=snapshot_uri, index_uri=index_uri)
    model = resolve_model(settings)
    if catch_up_source:
        source, plan = catch_up_source, plan_ingest(catch_up_source, settings)
    else:
        source, plan = plan_blob_batch(blob_urls, settings)
    return _embed_commit_refresh(source, plan, settings, model, refresh_index)


def _embed_commit_refresh(
    source: str,
    plan: ChangePlan,
    settings: Settings,
    model: ResolvedCheckpoint,
    refresh_index: bool,
) -> IngestSummary:
    """Deletions first, then shards as they finish, committed every N files or T seconds."""
    run_id = str(flow_run.id)
    resumed = count_resumed(plan.unchanged_by_run)
    progress = ProgressReporter(plan.to_embed)
    commits: list[CommitResult] = []
    failures: list[Failure] = []
    buffer = CommitBuffer(settings.commit_every_files, settings.commit_every_seconds)

    def commit() -> None:
        pending = buffer.take()
        commits.append(commit_snapshot(pending, settings, run_id, sequence=len(commits) + 1))
        failures.extend(pending.failures)
        progress.committed(commits[-1])

    try:
        for keys in plan.deleted_key_batches(settings.commit_every_files):
            buffer.delete(keys)
            if buffer.due():
                commit()
        for result in _embedded_shards(plan, source, settings, run_id):
            buffer.add(result)
            progress.embedded(result.rows.num_rows + len(result.failures))
            if buffer.due():
                commit()
    finally:
        plan.discard()
    if buffer.files:
        commit()
    refresh = refresh_index_task(settings) if refresh_index else None
    if refresh_index:
        update_the_map(settings, run_id)
    summary = IngestSummary.build(source, run_id, plan, commits, resumed, failures, refresh, model)
    publish_ingest_summary(summary)
    return summary


def _embedded_shards(
    plan: ChangePlan, source: str, settings: Settings, run_id: str
) -> Iterator[ShardResult]:
    """Shard results as they finish, with at most ``shards_in_flight`` submitted at a time, so
    the flow holds a bounded number of shards whatever the catalogue size."""
    in_flight: set[PrefectFuture[ShardResult]] = set()
    for shard in plan.shards(settings.shard_size):
        in_flight.add(embed_shard_task.submit(shard, source, settings, run_id))
        if len(in_flight) >= settings.shards_in_flight:
            finished = next(as_completed(in_flight))
            in_flight.discard(finished)
            yield finished.result()
    for finished in as_completed(in_flight):
        yield finished.result()


def on_dask(ingest_flow: Flow, address: str | None) -> Flow:
    """The same flow with its tasks on a Dask cluster (each worker loads the model once).

    ``address`` is a running scheduler (``tcp://host:8786``, e.g. dask-cuda workers on an AKS GPU
    node pool); None starts a temporary ``distributed.LocalCluster`` for the run.
    """
    from prefect_dask import DaskTaskRunner

    runner = DaskTaskRunner(address=address) if address else DaskTaskRunner()
    return ingest_flow.with_options(task_runner=runner)
