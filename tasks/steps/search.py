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
def embed_query(query_path: str, settings: Settings) -> np.ndarray:
    """The scene embedding of one audio file (mean of its windows), as the index stores them."""
    embedder = load_embedder(settings.model_settings(), settings.audio_limits())
    return embedder.embed_file(query_path, Path(query_path).read_bytes()).embedding


@task(name="search-index", cache_policy=NO_CACHE)
def search_index(
    vector: np.ndarray, top: int, where: SearchFilter, settings: Settings
) -> list[SearchHit]:
    """The ``top`` nearest files in the index."""
    return open_index(settings).search(vector, k=top, where=where)
