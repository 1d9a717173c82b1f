"""The steps of the search flow: the query's vector, then the index's answer."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.resources import open_catalogue, open_index
from tasks.search.query import QueryAudio, embedding_vector, query_vector, resolve_query
from tasks.settings import Settings


@task(name="embed-query", cache_policy=NO_CACHE)
def embed_query(query: str, settings: Settings, segments: bool = False) -> np.ndarray:
    """The query's vector, as the index stores them: for files, the file vector; for
    segments, the mean of its segments (its own audio only, not a short clip's padding).

    ``query``: a file on this machine, a blob URL, or a path or key of the catalogue (its
    stored vector: no model is loaded)."""
    catalogue = open_catalogue(settings)

    def embed(audio: QueryAudio) -> np.ndarray:
        from tasks.model.embedder import load_embedder

        embedder = load_embedder(settings.model_settings(), settings.audio_limits())
        return embedding_vector(embedder.embed_file(audio.name, audio.data), segments)

    resolved = resolve_query(query, catalogue, settings, settings.max_file_bytes)
    return query_vector(resolved, catalogue, segments, embed)


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
