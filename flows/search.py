"""Query by audio: embed a file, find its nearest neighbours in the index."""

from __future__ import annotations

from prefect import flow

from tasks.index import SearchFilter, SearchHit
from tasks.pipeline import embed_query, resolve_model, search_index
from tasks.reports import publish_search_results
from tasks.settings import Settings


@flow(name="search")
def search(
    query: str,
    top: int = 10,
    path_prefix: str | None = None,
    labels: list[str] | None = None,
    index_uri: str | None = None,
    checkpoint_path: str | None = None,
) -> list[SearchHit]:
    """The ``top`` files in the index that sound most like the audio file ``query``.

    ``path_prefix`` keeps files under a folder; ``labels`` keeps files tagged with any of them.
    """
    settings = Settings.with_overrides(index_uri=index_uri, checkpoint_path=checkpoint_path)
    model = resolve_model(settings)
    vector = embed_query(query, settings)
    where = SearchFilter(path_prefix=path_prefix, any_labels=tuple(labels or ()))
    hits = search_index(vector, top, where, settings)
    publish_search_results(query, hits, model)
    return hits
