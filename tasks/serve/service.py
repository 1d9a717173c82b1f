"""What ``audio-embeddings serve`` does, without HTTP: the model loaded once, the indexes and
the catalogue opened once, queries micro-batched, catalogue audio located, anomalies listed.

tasks.serve.app maps routes onto this; tests and benchmarks can drive it directly.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from tasks.classify.classes import predicted_label_filter
from tasks.errors import UserError
from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.resources import anomaly_store, open_catalogue, open_index
from tasks.search.catalogue import CatalogueItem
from tasks.search.query import QueryAudio, embedding_vector, query_vector, read_blob_query
from tasks.serve.batching import MicroBatcher

if TYPE_CHECKING:
    from tasks.audio.pieces import Pieces
    from tasks.model.embedder import PannsEmbedder
    from tasks.model.file_vectors import FileEmbedding
    from tasks.settings import Settings


class NotInCatalogueError(UserError):
    """A key or path that is not a file of the latest snapshot."""


@dataclass(frozen=True)
class SearchOptions:
    """How many matches, which files, files or segments."""

    top: int = 10
    path_prefix: str | None = None
    labels: tuple[str, ...] = ()
    segments: bool = False
    per_file: int = 1
    #: predicted labels, LABEL_SET=LABEL (checked when the filter is made)
    classes: tuple[str, ...] = ()

    @property
    def where(self) -> SearchFilter:
        return SearchFilter(
            path_prefix=self.path_prefix or None,
            any_labels=self.labels,
            classes=predicted_label_filter(self.classes, self.segments),
        )


@dataclass(frozen=True)
class SearchAnswer:
    """The matches, and what the query was (its name, and whether the model ran: ms)."""

    query: str
    hits: list[SearchHit]
    embed_ms: float
    search_ms: float


class SearchService:
    """One per process: thread-safe (requests run in a thread pool; the model runs in the
    batcher's thread)."""

    def __init__(self, settings: Settings, embedder: PannsEmbedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalogue = open_catalogue(settings)
        self.indexes = {False: open_index(settings), True: open_index(settings, segments=True)}
        self.anomalies_store = anomaly_store(settings)
        self.batcher: MicroBatcher[Pieces, FileEmbedding] = MicroBatcher(
            embedder.embed_files,
            size=lambda pieces: pieces.count,
            max_wait_seconds=settings.serve_batch_wait_ms / 1000,
            max_windows=settings.serve_max_batch_windows,
        )

    @classmethod
    def start(cls, settings: Settings) -> SearchService:
        """Load the model (the slow part: seconds) and open everything."""
        from tasks.model.embedder import load_embedder

        return cls(settings, load_embedder(settings.model_settings(), settings.audio_limits()))

    def close(self) -> None:
        self.batcher.close()

    def search_audio(self, audio: QueryAudio, options: SearchOptions) -> SearchAnswer:
        """Search with audio bytes (an upload, a blob): decoded by the checked decoder, cut into
        pieces in this thread, embedded in a forward pass shared with concurrent queries."""
        return self._search(audio, options)

    def search_catalogue(self, key_or_path: str, options: SearchOptions) -> SearchAnswer:
        """Search with a file of the catalogue (its stored vector: no forward pass)."""
        item = self.catalogue.find(key_or_path)
        if item is None:
            raise NotInCatalogueError(f"{key_or_path}: not a key or path of the catalogue")
        return self._search(item, options)

    def search_blob(self, url: str, options: SearchOptions) -> SearchAnswer:
        """Search with a blob of the configured storage account."""
        return self._search(
            read_blob_query(url, self.settings, self.settings.serve_max_upload_bytes), options
        )

    def _search(self, query: QueryAudio | CatalogueItem, options: SearchOptions) -> SearchAnswer:
        start = time.perf_counter()
        vector = query_vector(
            query, self.catalogue, options.segments, lambda audio: self._embed(audio, options)
        )
        embedded = time.perf_counter()
        hits = self.indexes[options.segments].search(
            vector, k=options.top, where=options.where, per_file=options.per_file
        )
        name = query.name if isinstance(query, QueryAudio) else query.path
        return SearchAnswer(
            name, hits, (embedded - start) * 1000, (time.perf_counter() - embedded) * 1000
        )

    def _embed(self, audio: QueryAudio, options: SearchOptions) -> np.ndarray:
        with self.batcher.arriving():
            pieces = self.embedder.pieces_of(self.embedder.decode(audio.name, audio.data))
            embedded = self.batcher.submit(pieces)
        return embedding_vector(embedded.result(), options.segments)

    def item(self, key: str) -> CatalogueItem:
        """The catalogue file with this key (the only files the audio endpoint serves)."""
        found = self.catalogue.item(key)
        if found is None:
            raise NotInCatalogueError(f"{key}: not a key of the catalogue")
        return found

    def latest_anomalies(self, limit: int, only_anomalies: bool = False) -> list[dict]:
        """Each scanned clip's newest verdict, the furthest above its threshold first."""
        rows = self.anomalies_store.latest_verdicts()
        if only_anomalies and rows.num_rows:
            rows = rows.filter(pc.equal(rows["verdict"], "anomaly"))
        listed = rows.to_pylist()
        listed.sort(key=_most_urgent_first)
        return listed[:limit]

    def predicted_labels(self) -> dict[str, dict[str, int]]:
        """Each label set's predicted labels and how many files carry them (abstentions
        left out): the page's facets."""
        from tasks.classify.predict import ABSTAINED, label_counts
        from tasks.resources import label_sets, predictions_table

        facets = {}
        for name in label_sets(self.settings).names():
            counts = label_counts(predictions_table(self.settings, name))
            counts.pop(ABSTAINED, None)
            if counts:
                facets[name] = counts
        return facets

    def health(self) -> dict:
        """What is loaded and how batching went (for /healthz and the benchmark)."""
        stats = self.batcher.stats
        return {
            "model": self.embedder.model_name,
            "checkpoint_sha256": self.embedder.checkpoint_sha256,
            "official_checkpoint": self.embedder.is_official_checkpoint,
            "device": str(self.embedder.device),
            "files_indexed": self.indexes[False].count(),
            "queries_embedded": stats.queries,
            "forward_passes": stats.passes,
            "largest_batch": stats.largest_batch,
        }


_VERDICT_ORDER = {"anomaly": 0, "silent": 1, "normal": 2}


def _most_urgent_first(row: dict) -> tuple[int, float]:
    """Anomalies, then silent clips (no score: a dead microphone or a stopped machine), then
    normal ones; within each, the furthest above (or nearest to) the threshold first."""
    score, threshold = row["score"], row["threshold"]
    ratio = score / threshold if threshold and score == score else 0.0  # NaN != NaN
    return _VERDICT_ORDER.get(row["verdict"], 3), -ratio
