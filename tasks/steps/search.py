"""The steps of the search flow: embed the query file, ask the index."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.model.embedder import load_embedder
from tasks.resources import open_index
from tasks.settings import Settings


@task(name="embed-query", cache_policy=NO_CACHE)
def embed_query(query_path: str, settings: Settings, segments: bool = False) -> np.ndarray:
    """The query's vector, as the index stores them: for files, the mean of its windows; for
    segments, the mean of its segments (its own audio only, not a short clip's padding)."""
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    embedded = embedder.embed_file(query_path, Path(query_path).read_bytes())
    return embedded.segments.embeddings.mean(axis=0) if segments else embedded.embedding


@task(name="search-index", cache_policy=NO_CACHE)
def search_index(
    vector: np.ndarray,
    top: int,
    where: SearchFilter,
    settings: Settings,
    segments: bool = False,
    per_file: int = 1,
) -> list[SearchHit]:
    """The ``top`` nearest files, or segments (at most ``per_file`` a file), in the index."""
    return open_index(settings, segments).search(vector, k=top, where=where, per_file=per_file)
