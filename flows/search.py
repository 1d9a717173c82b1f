"""Query by audio: embed a file, find its nearest neighbours in the index.

``search`` is the flow (deployments, the UI, the CLI when a Prefect API is configured);
``search_in_process`` runs the same steps as plain calls, for a CLI without a Prefect API: a
temporary Prefect server would cost more than the search itself.
"""

from __future__ import annotations

import warnings

from prefect import flow

from tasks.classify.predicted_labels import predicted_label_filter
from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.model.checkpoint import ResolvedCheckpoint, resolve_checkpoint
from tasks.search.report import publish_search_results
from tasks.settings import Settings
from tasks.steps.model import resolve_model
from tasks.steps.search import embed_examples, embed_query, search_index


@flow(name="search")
def search(
    query: str | None = None,
    top: int = 10,
    path_prefix: str | None = None,
    tags: list[str] | None = None,
    index_uri: str | None = None,
    checkpoint_path: str | None = None,
    segments: bool = False,
    per_file: int = 1,
    predicted_labels: list[str] | None = None,
    labels: list[str] | None = None,
    classes: list[str] | None = None,
    like: list[str] | None = None,
    unlike: list[str] | None = None,
) -> list[SearchHit]:
    """The files in the index that sound most like an audio file, or like several examples and
    unlike others, or where in them.

    Args:
        query: The audio to search with: a file on the machine that runs the flow, a blob
            (az://container/path.wav or its https URL on the configured storage account), or a
            file already in the catalogue, by its path as listed (e.g. pumps/p1.wav) or its key.
            May be left out when ``like`` names the examples.
        top: How many matches to return, best first.
        path_prefix: Only files whose path starts with this (a folder, e.g. pumps/).
        tags: Only files tagged with any of these AudioSet tags (e.g. Dog).
        index_uri: LanceDB folder of the vector index; empty: the worker's
            AUDIO_EMBEDDINGS_INDEX_URI (unused with Azure AI Search).
        checkpoint_path: Cnn14 checkpoint file on the worker; empty: the worker's
            AUDIO_EMBEDDINGS_CHECKPOINT_PATH, ~/panns_data, or a one-time download.
        segments: Find the segments (1 s by default) that sound most like the query, each with
            where it is in its file, instead of whole files; tags then filter segments.
        per_file: With segments: at most this many segments from one file.
        predicted_labels: Only files with these predicted labels, each LABEL_SET=LABEL (e.g.
            gender=female; any label of one set, every set named); file search only.
        labels: Deprecated name of ``tags``, kept for one release.
        classes: Deprecated name of ``predicted_labels``, kept for one release.
        like: More examples to sound like, named as ``query`` is; the matches leave out the
            catalogue files among the examples.
        unlike: Examples the matches should not sound like.
    """
    tags, predicted_labels = _renamed(tags, labels, predicted_labels, classes)
    settings, where = _inputs(
        path_prefix, tags, index_uri, checkpoint_path, predicted_labels, segments
    )
    model = resolve_model(settings)
    liked = [*([query] if query else []), *(like or [])]
    if len(liked) == 1 and not unlike:
        vector, leave_out = embed_query(liked[0], settings, segments), []
    else:
        vector, leave_out = embed_examples(liked, unlike or [], settings, segments)
    hits = search_index(vector, top, where, settings, segments, per_file, leave_out)
    publish_search_results(_shown(liked, unlike), hits, model)
    return hits


def search_in_process(
    query: str | None = None,
    top: int = 10,
    path_prefix: str | None = None,
    tags: list[str] | None = None,
    index_uri: str | None = None,
    checkpoint_path: str | None = None,
    segments: bool = False,
    per_file: int = 1,
    predicted_labels: list[str] | None = None,
    like: list[str] | None = None,
    unlike: list[str] | None = None,
) -> tuple[list[SearchHit], ResolvedCheckpoint]:
    """The ``search`` flow's steps as plain calls, with no Prefect run (and so no artifact):
    the matches, and the checkpoint used (for the caller to warn when it is not official)."""
    settings, where = _inputs(
        path_prefix, tags, index_uri, checkpoint_path, predicted_labels, segments
    )
    if settings.engine == "auto":
        # One query in a fresh process: ONNX Runtime's faster passes do not repay its ~1 s
        # session build (a cold search is slower with it; benchmarks/serve_latency.py).
        settings = settings.model_copy(update={"engine": "torch"})
    model = resolve_checkpoint(settings.model_settings())
    liked = [*([query] if query else []), *(like or [])]
    if len(liked) == 1 and not unlike:
        vector, leave_out = embed_query.fn(liked[0], settings, segments), []
    else:
        vector, leave_out = embed_examples.fn(liked, unlike or [], settings, segments)
    return search_index.fn(vector, top, where, settings, segments, per_file, leave_out), model


def _shown(liked: list[str], unlike: list[str] | None) -> str:
    """How the query is named in the run's report."""
    shown = liked[0] if len(liked) == 1 else "like " + ", ".join(liked)
    return shown + (", unlike " + ", ".join(unlike) if unlike else "")


def _renamed(
    tags: list[str] | None,
    labels: list[str] | None,
    predicted_labels: list[str] | None,
    classes: list[str] | None,
) -> tuple[list[str], list[str]]:
    """The filters, given by their names or by the deprecated ones (deployments made before
    the rename still run, with a warning)."""
    for old, new, value in (("labels", "tags", labels), ("classes", "predicted_labels", classes)):
        if value:
            warnings.warn(
                f"the search parameter {old!r} is deprecated: use {new!r}",
                DeprecationWarning,
                stacklevel=3,
            )
    return [*(tags or ()), *(labels or ())], [*(predicted_labels or ()), *(classes or ())]


def _inputs(
    path_prefix: str | None,
    tags: list[str] | None,
    index_uri: str | None,
    checkpoint_path: str | None,
    predicted_labels: list[str] | None = None,
    segments: bool = False,
) -> tuple[Settings, SearchFilter]:
    """The settings a search runs with and its filter, from the flow's parameters."""
    settings = Settings.with_overrides(index_uri=index_uri, checkpoint_path=checkpoint_path)
    return settings, SearchFilter(
        path_prefix=path_prefix,
        any_tags=tuple(tags or ()),
        predicted_labels=predicted_label_filter(predicted_labels or (), segments),
    )
