"""Prefect tasks: thin wrappers that connect the plain functions of tasks/ to the flows.

Each task takes plain, serialisable inputs (URIs, settings models, lists of items) so that it
can run in a thread, a process or on a Dask worker. The model is loaded once per process.
"""

from __future__ import annotations

import hashlib
import uuid
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.checkpoint import resolve_checkpoint
from tasks.embedding import load_embedder
from tasks.events import BlobRef, parse_blob_url, prefect_event
from tasks.index import RefreshResult, SearchFilter, SearchHit, VectorIndex
from tasks.ingestion import ShardResult, embed_shard
from tasks.sensor import SensorBatch, SensorCursor, select_new
from tasks.settings import Settings
from tasks.snapshots import (
    SNAPSHOT_SCHEMA,
    ChangePlan,
    Failure,
    QuarantineTable,
    SnapshotTable,
    plan_changes,
)
from tasks.sources import AudioItem, BlobSource, SourceReadError, open_source


@dataclass(frozen=True)
class CommitResult:
    """What an ingest committed: the snapshot version (None if nothing changed) and counts."""

    version: int | None
    upserted: int
    deleted: int
    quarantined: int
    retry_later: int = 0


@dataclass(frozen=True)
class ModelInfo:
    """Which checkpoint a run uses, for logs and artifacts."""

    path: str
    origin: str
    sha256: str
    is_official: bool


def open_index(settings: Settings) -> VectorIndex:
    """The configured vector index backend (``AUDIO_EMBEDDINGS_INDEX_BACKEND``)."""
    if settings.index_backend == "azure_search":
        from tasks.index.azure_search import AzureSearchIndex

        return AzureSearchIndex(settings, settings.index_name)
    from tasks.index.lancedb_index import LanceDBIndex

    return LanceDBIndex(
        settings.resolved_index_uri(),
        settings.index_name,
        ann_min_rows=settings.lancedb_ann_min_rows,
        nprobes=settings.lancedb_ann_nprobes,
        refine_factor=settings.lancedb_ann_refine_factor,
    )


def snapshot_table(settings: Settings) -> SnapshotTable:
    """The configured snapshot table, local or on Azure."""
    uri = settings.resolved_snapshot_uri()
    return SnapshotTable(uri, settings.storage_options(uri))


def quarantine_table(settings: Settings) -> QuarantineTable:
    """The configured quarantine table, local or on Azure."""
    uri = settings.resolved_quarantine_uri()
    return QuarantineTable(uri, settings.storage_options(uri))


@task(name="resolve-checkpoint", cache_policy=NO_CACHE)
def resolve_model(settings: Settings) -> ModelInfo:
    """Find the checkpoint (see tasks.checkpoint); warn loudly when it is not the official one."""
    resolved = resolve_checkpoint(settings.model_settings())
    if not resolved.is_official:
        get_run_logger().warning(
            "Checkpoint %s (sha256 %s…) is NOT the official Cnn14 checkpoint: embeddings and "
            "labels carry no meaning beyond this test.",
            resolved.path,
            resolved.sha256[:12],
        )
    return ModelInfo(str(resolved.path), resolved.origin, resolved.sha256, resolved.is_official)


@task(name="plan-changes", cache_policy=NO_CACHE)
def plan_ingest(source_uri: str, settings: Settings) -> ChangePlan:
    """List the source and compare it with the latest snapshot and the quarantine."""
    source = open_source(source_uri, settings)
    plan = plan_changes(
        source.list_items(),
        snapshot_table(settings).current_etags(source.item_uri_prefix),
        quarantine_table(settings).quarantined(),
    )
    get_run_logger().info(
        "%s: %d to embed, %d unchanged, %d deleted, %d skipped (quarantined, unchanged)",
        source.uri,
        len(plan.to_embed),
        plan.unchanged,
        len(plan.deleted_keys),
        plan.skipped_quarantined,
    )
    return plan


@task(name="embed-shard", cache_policy=NO_CACHE, retries=1, retry_delay_seconds=5)
def embed_shard_task(
    items: Sequence[AudioItem], source_uri: str, settings: Settings, run_id: str
) -> ShardResult:
    """Decode and embed one shard of files; bad files come back as failures."""
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    result = embed_shard(
        items,
        open_source(source_uri, settings),
        embedder,
        run_id,
        settings.top_labels,
        settings.prepare_workers,
    )
    logger = get_run_logger()
    for failure in result.failures:
        if failure.retryable:
            logger.warning("will retry next run: %s", failure.message)
        else:
            logger.warning("quarantined %s", failure.message)
    return result


@task(name="commit-snapshot", cache_policy=NO_CACHE)
def commit_snapshot(
    results: Sequence[ShardResult], deleted_keys: Sequence[str], settings: Settings, run_id: str
) -> CommitResult:
    """Write the run's rows and deletions as one snapshot version; record its failures."""
    rows = pa.concat_tables([r.rows for r in results]) if results else SNAPSHOT_SCHEMA.empty_table()
    failures: list[Failure] = [f for r in results for f in r.failures]
    bad_inputs = [f for f in failures if not f.retryable]
    version = snapshot_table(settings).commit(rows, deleted_keys, run_id)
    quarantine_table(settings).append(bad_inputs, run_id)
    if version is not None:
        get_run_logger().info("snapshot version %d committed", version)
    return CommitResult(
        version, rows.num_rows, len(deleted_keys), len(bad_inputs), len(failures) - len(bad_inputs)
    )


@task(name="refresh-index", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def refresh_index_task(
    settings: Settings, rebuild: bool = False, drop_old: bool = False
) -> RefreshResult | None:
    """Bring the index up to the latest snapshot version by applying only the difference.

    ``rebuild`` builds a new index from the whole snapshot and switches readers to it once it is
    complete (for a model or schema change); ``drop_old`` then deletes the previous one.
    """
    snapshot_uri = settings.resolved_snapshot_uri()
    snapshot = snapshot_table(settings)
    latest = snapshot.version()
    if latest is None:
        get_run_logger().info("no snapshot yet at %s: nothing to index", snapshot_uri)
        return None
    index = open_index(settings)
    if rebuild:
        everything = snapshot.diff(None, latest)
        name = index.rebuild(everything, snapshot_uri, drop_old)
        get_run_logger().info("rebuilt %s from snapshot version %d", name, latest)
        return RefreshResult(None, latest, everything.upserts.num_rows, 0)
    reflected = index.reflected_version(snapshot_uri)
    if reflected == latest:
        return RefreshResult(reflected, latest, 0, 0)
    result = index.apply(snapshot.diff(reflected, latest), snapshot_uri)
    get_run_logger().info(
        "index now reflects snapshot version %d (%d upserted, %d deleted)",
        result.to_version,
        result.upserted,
        result.deleted,
    )
    return result


@task(name="embed-query", cache_policy=NO_CACHE)
def embed_query(query_path: str, settings: Settings) -> np.ndarray:
    """The scene embedding of one audio file (mean of its windows), as the index stores them."""
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    with open(query_path, "rb") as stream:
        audio = embedder.decode(query_path, stream.read())
    return embedder.embed_files([embedder.windows_of(audio)])[0].embedding


@task(name="search-index", cache_policy=NO_CACHE)
def search_index(
    vector: np.ndarray, top: int, where: SearchFilter, settings: Settings
) -> list[SearchHit]:
    """The ``top`` nearest files in the index."""
    return open_index(settings).search(vector, k=top, where=where)


@task(name="plan-blob-batch", cache_policy=NO_CACHE)
def plan_blob_batch(blob_urls: Sequence[str], settings: Settings) -> tuple[str, ChangePlan]:
    """The source and plan for an explicit list of blobs (from events): new or changed only.

    Nothing is deleted: a partial list says nothing about blobs that are not in it. Blobs that
    are gone by now are skipped (their deletion reaches the snapshot with the next full ingest).
    """
    containers = {parse_blob_url(url)[:2] for url in blob_urls}
    if len(containers) != 1:
        raise ValueError(f"one container per batch expected, got {sorted(containers)}")
    ((account, container),) = containers
    source_uri = f"az://{container}/"
    source = open_source(source_uri, settings)
    if not isinstance(source, BlobSource) or source.account != account:
        raise ValueError(f"blobs of account {account!r} but the configured account differs")
    logger = get_run_logger()
    items = []
    for url in dict.fromkeys(blob_urls):  # events may repeat a blob
        try:
            items.append(source.item(parse_blob_url(url)[2]))
        except SourceReadError as error:
            logger.warning("skipped %s", error)
    plan = plan_changes(
        items,
        snapshot_table(settings).current_etags(),
        quarantine_table(settings).quarantined(),
        complete_listing=False,
    )
    return source_uri, plan


@task(name="find-new-blobs", cache_policy=NO_CACHE)
def find_new_blobs(
    source_uri: str, cursor: SensorCursor, cap: int, settle_seconds: float, settings: Settings
) -> SensorBatch:
    """Blobs after the sensor's cursor, oldest first, at most ``cap``."""
    source = open_source(source_uri, settings)
    if not isinstance(source, BlobSource):
        raise ValueError(f"the blob sensor watches az://container/prefix sources, not {source_uri}")
    return select_new(source.list_items(), cursor, cap, settle_seconds)


@task(name="emit-blob-events", cache_policy=NO_CACHE)
def emit_blob_events(source_uri: str, items: Sequence[AudioItem], settings: Settings) -> int:
    """Emit one ``azure.blob.created`` event per item (ids derived from name + etag)."""
    from prefect.events import emit_event

    source = open_source(source_uri, settings)
    assert isinstance(source, BlobSource)
    for item in items:
        blob = BlobRef(
            account=source.account,
            container=source.container.container_name,
            path=item.path,
            etag=item.etag,
            size=item.size_bytes,
            url=source.container.get_blob_client(item.path).url,
        )
        event = prefect_event(blob, item.last_modified, "blob-sensor")
        emit_event(
            event=event["event"],
            resource=event["resource"],
            payload=event["payload"],
            occurred=item.last_modified,
            id=uuid.UUID(event["id"]),
        )
    return len(items)


def _cursor_variable(source_uri: str) -> str:
    return "blob_sensor_" + hashlib.sha1(source_uri.encode()).hexdigest()[:16]


@task(name="load-sensor-cursor", cache_policy=NO_CACHE)
def load_sensor_cursor(source_uri: str) -> SensorCursor:
    """The sensor's cursor for a source, kept in a Prefect Variable (visible in the UI)."""
    from prefect.variables import Variable

    return SensorCursor.from_json(Variable.get(_cursor_variable(source_uri), default=None))


@task(name="save-sensor-cursor", cache_policy=NO_CACHE)
def save_sensor_cursor(source_uri: str, cursor: SensorCursor) -> None:
    """Store the cursor after the events were emitted (a crash in between re-emits: harmless)."""
    from prefect.variables import Variable

    Variable.set(
        _cursor_variable(source_uri),
        cursor.to_json(),
        overwrite=True,
        tags=["audio-embeddings", "blob-sensor"],
    )
