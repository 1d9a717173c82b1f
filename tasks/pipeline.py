"""Prefect tasks: thin wrappers that connect the plain functions of tasks/ to the flows.

Each task takes plain, serialisable inputs (URIs, settings models, lists of items) so that it
can run in a thread, a process or on a Dask worker. The model is loaded once per process.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pyarrow as pa
from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.audio import cut_windows
from tasks.audio import decode as decode_audio
from tasks.checkpoint import resolve_checkpoint
from tasks.embedding import load_embedder
from tasks.index import RefreshResult, SearchFilter, SearchHit
from tasks.index.lancedb_index import LanceDBIndex
from tasks.ingestion import ShardResult, embed_shard
from tasks.settings import Settings
from tasks.snapshots import (
    SNAPSHOT_SCHEMA,
    ChangePlan,
    Failure,
    QuarantineTable,
    SnapshotTable,
    plan_changes,
)
from tasks.sources import AudioItem, open_source


@dataclass(frozen=True)
class CommitResult:
    """What an ingest committed: the snapshot version (None if nothing changed) and counts."""

    version: int | None
    upserted: int
    deleted: int
    quarantined: int


@dataclass(frozen=True)
class ModelInfo:
    """Which checkpoint a run uses, for logs and artifacts."""

    path: str
    origin: str
    sha256: str
    is_official: bool


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
    source = open_source(source_uri)
    snapshot = SnapshotTable(settings.resolved_snapshot_uri())
    quarantine = QuarantineTable(settings.resolved_quarantine_uri())
    plan = plan_changes(source.list_items(), snapshot.current_etags(), quarantine.quarantined())
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
    result = embed_shard(items, open_source(source_uri), embedder, run_id, settings.top_labels)
    logger = get_run_logger()
    for failure in result.failures:
        logger.warning("quarantined %s", failure.message)
    return result


@task(name="commit-snapshot", cache_policy=NO_CACHE)
def commit_snapshot(
    results: Sequence[ShardResult], deleted_keys: Sequence[str], settings: Settings, run_id: str
) -> CommitResult:
    """Write the run's rows and deletions as one snapshot version; record its failures."""
    rows = pa.concat_tables([r.rows for r in results]) if results else SNAPSHOT_SCHEMA.empty_table()
    failures: list[Failure] = [f for r in results for f in r.failures]
    version = SnapshotTable(settings.resolved_snapshot_uri()).commit(rows, deleted_keys, run_id)
    QuarantineTable(settings.resolved_quarantine_uri()).append(failures, run_id)
    if version is not None:
        get_run_logger().info("snapshot version %d committed", version)
    return CommitResult(version, rows.num_rows, len(deleted_keys), len(failures))


@task(name="refresh-index", cache_policy=NO_CACHE, retries=2, retry_delay_seconds=[5, 30])
def refresh_index_task(settings: Settings) -> RefreshResult | None:
    """Bring the index up to the latest snapshot version by applying only the difference."""
    snapshot_uri = settings.resolved_snapshot_uri()
    snapshot = SnapshotTable(snapshot_uri)
    latest = snapshot.version()
    if latest is None:
        get_run_logger().info("no snapshot yet at %s: nothing to index", snapshot_uri)
        return None
    index = LanceDBIndex(settings.resolved_index_uri(), settings.index_name)
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
        audio = decode_audio(query_path, stream.read(), embedder.limits)
    return embedder.embed_files([cut_windows(audio.samples, embedder.limits)])[0].embedding


@task(name="search-index", cache_policy=NO_CACHE)
def search_index(
    vector: np.ndarray, top: int, where: SearchFilter, settings: Settings
) -> list[SearchHit]:
    """The ``top`` nearest files in the index."""
    index = LanceDBIndex(settings.resolved_index_uri(), settings.index_name)
    return index.search(vector, k=top, where=where)
