"""The step every flow that runs the model starts with (ingest, search)."""

from __future__ import annotations

from prefect import get_run_logger, task
from prefect.cache_policies import NO_CACHE

from tasks.model.checkpoint import ResolvedCheckpoint, resolve_checkpoint
from tasks.settings import Settings


@task(name="resolve-checkpoint", cache_policy=NO_CACHE)
def resolve_model(settings: Settings) -> ResolvedCheckpoint:
    """Find the checkpoint (see tasks.model.checkpoint); warn loudly when it is not official."""
    resolved = resolve_checkpoint(settings.model_settings())
    if resolved.warning:
        get_run_logger().warning(resolved.warning)
    return resolved
