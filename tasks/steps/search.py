"""The steps of the search flow: the query's vector (of one query, or of several examples),
then the index's answer."""

from __future__ import annotations

import numpy as np
from prefect import task
from prefect.cache_policies import NO_CACHE

from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.resources import open_catalogue, open_index
from tasks.search.examples import check_examples, combined_vector
from tasks.search.query import QueryAudio, embedding_vector, query_vector, resolve_query
from tasks.settings import Settings


@task(name="embed-query", cache_policy=NO_CACHE)
def embed_query(query: str, settings: Settings, segments: bool = False) -> np.ndarray:
    """The query's vector, as the index stores them: for files, the file vector; for
    segments, the mean of its segments (its own audio only, not a short clip's padding).

    ``query``: a file on this machine, a blob URL, or a path or key of the catalogue (its
    stored vector: no model is loaded)."""
    return _query_vectors([query], settings, segments)[0][0]


@task(name="embed-examples", cache_policy=NO_CACHE)
def embed_examples(
    liked: list[str], unliked: list[str], settings: Settings, segments: bool = False
) -> tuple[np.ndarray, list[str]]:
    """One vector for "like these, unlike those" (tasks.search.examples), each example named
    as ``embed_query`` takes them; and the keys of the catalogue files among the examples,
    which are not matches."""
    check_examples(len(liked), len(unliked))
    liked_vectors, liked_keys = _query_vectors(liked, settings, segments)
    unliked_vectors, unliked_keys = _query_vectors(unliked, settings, segments)
    vector = combined_vector(liked_vectors, unliked_vectors if unliked else None)
    return vector, [*liked_keys, *unliked_keys]


def _query_vectors(
    queries: list[str], settings: Settings, segments: bool
) -> tuple[np.ndarray, list[str]]:
    """The vectors [n, d] of ``queries`` (as ``embed_query`` names them) and the keys of the
    catalogue files among them; the model is loaded once, and only when a query is audio."""
    catalogue = open_catalogue(settings)
    embedder = None

    def embed(audio: QueryAudio) -> np.ndarray:
        nonlocal embedder
        if embedder is None:
            from tasks.model.embedder import load_embedder

            embedder = load_embedder(settings.model_settings(), settings.audio_limits())
        return embedding_vector(embedder.embed_file(audio.name, audio.data), segments)

    resolved = [resolve_query(q, catalogue, settings, settings.max_file_bytes) for q in queries]
    keys = [r.key for r in resolved if not isinstance(r, QueryAudio)]
    vectors = [query_vector(r, catalogue, segments, embed) for r in resolved]
    return (np.stack(vectors) if vectors else np.zeros((0, 0), np.float32)), keys


@task(name="search-index", cache_policy=NO_CACHE)
def search_index(
    vector: np.ndarray,
    top: int,
    where: SearchFilter,
    settings: Settings,
    segments: bool = False,
    per_file: int = 1,
    leave_out: list[str] | None = None,
) -> list[SearchHit]:
    """The ``top`` nearest files, or segments (at most ``per_file`` a file), in the index;
    files of ``leave_out`` (keys) are not matches."""
    left_out = set(leave_out or ())
    hits = open_index(settings, segments).search(
        vector, k=top + len(left_out), where=where, per_file=per_file
    )
    return [hit for hit in hits if hit.key not in left_out][:top]
