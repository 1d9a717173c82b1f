"""What ``audio-embeddings serve`` does, without HTTP: the model loaded once, the indexes and
the catalogue opened once, queries micro-batched, catalogue audio located, anomalies listed.

tasks.serve.app maps routes onto this; tests and benchmarks can drive it directly.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from tasks.anomaly.trends import MAX_TREND_POINTS, TrendPoint, machine_trends
from tasks.audio.decode import DecodedAudio, check_size, decode_bounded
from tasks.audio.errors import TooLongError
from tasks.classify.predicted_labels import predicted_label_filter
from tasks.errors import UserError
from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.model.front_end import LogMelPicture, log_mel_picture
from tasks.resources import anomaly_store, locate, open_catalogue, open_index
from tasks.search.catalogue import CatalogueItem
from tasks.search.duplicates import file_vectors
from tasks.search.query import QueryAudio, embedding_vector, query_vector, read_blob_query
from tasks.serve.admission import Admission, Deadline
from tasks.serve.batching import MicroBatcher
from tasks.serve.metrics import ServiceMetrics, read_or_nan
from tasks.serve.neighbours import NeighboursJobs, NeighboursState
from tasks.storage.sources import file_uri_path

if TYPE_CHECKING:
    from tasks.audio.pieces import Pieces
    from tasks.model.embedder import PannsEmbedder
    from tasks.model.file_vectors import FileEmbedding
    from tasks.settings import Settings


class NotInCatalogueError(UserError):
    """A key or path that is not a file of the latest snapshot."""


#: Spectrogram pictures kept in memory (32 KB each): the pages of a few busy users.
PICTURES_KEPT = 512


@dataclass(frozen=True)
class SearchOptions:
    """How many matches, which files, files or segments."""

    top: int = 10
    path_prefix: str | None = None
    #: AudioSet tags: files (or segments) tagged with any of them
    tags: tuple[str, ...] = ()
    segments: bool = False
    per_file: int = 1
    #: predicted labels, LABEL_SET=LABEL (checked when the filter is made)
    predicted_labels: tuple[str, ...] = ()

    @property
    def where(self) -> SearchFilter:
        return SearchFilter(
            path_prefix=self.path_prefix or None,
            any_tags=self.tags,
            predicted_labels=predicted_label_filter(self.predicted_labels, self.segments),
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
    batcher's thread).

    Work per query with audio is bounded: its length (``serve_max_query_seconds``, from the
    header before decoding), how many are in hand and decoding at once (``Admission``), and
    its time (a ``Deadline``, by default ``serve_request_timeout_seconds`` from its start).
    """

    def __init__(self, settings: Settings, embedder: PannsEmbedder) -> None:
        self.settings = settings
        self.embedder = embedder
        self.catalogue = open_catalogue(settings)
        self.indexes = {False: open_index(settings), True: open_index(settings, segments=True)}
        self.anomalies_store = anomaly_store(settings)
        self.metrics = ServiceMetrics()
        self.admission = Admission(settings.serve_max_decodes, settings.serve_max_queued)
        self.query_limits = embedder.limits.model_copy(
            update={
                "max_duration_seconds": min(
                    embedder.limits.max_duration_seconds, settings.serve_max_query_seconds
                )
            }
        )
        self.picture_limits = embedder.limits.model_copy(
            update={"max_duration_seconds": settings.serve_max_spectrogram_seconds}
        )
        self.neighbours = NeighboursJobs(
            lambda: file_vectors(self.catalogue.snapshot), lambda: self.indexes[False]
        )
        self._pictures: OrderedDict[tuple[str, str], LogMelPicture] = OrderedDict()
        self._pictures_lock = threading.Lock()
        self.batcher: MicroBatcher[Pieces, FileEmbedding] = MicroBatcher(
            embedder.embed_files,
            size=lambda pieces: pieces.count,
            max_wait_seconds=settings.serve_batch_wait_ms / 1000,
            max_windows=settings.serve_max_batch_windows,
            on_pass=self.metrics.observe_forward_pass,
        )
        self._watch()

    def _watch(self) -> None:
        """Point the metrics' gauges at what they report (read at each scrape)."""
        metrics = self.metrics
        metrics.queries_in_hand.set_function(lambda: self.admission.in_hand)
        metrics.queries_decoding.set_function(lambda: self.admission.decoding)
        metrics.queries_waiting.set_function(lambda: self.batcher.waiting)
        for name, segments in (("files", False), ("segments", True)):
            index = self.indexes[segments]
            metrics.index_rows.labels(name).set_function(read_or_nan(index.count))
        metrics.snapshot_version.set_function(read_or_nan(self.catalogue.snapshot.version))

    @classmethod
    def start(cls, settings: Settings) -> SearchService:
        """Load the model (the slow part: seconds) and open everything."""
        from tasks.model.embedder import load_embedder

        return cls(settings, load_embedder(settings.model_settings(), settings.audio_limits()))

    def close(self) -> None:
        self.batcher.close()

    def search_audio(
        self, audio: QueryAudio, options: SearchOptions, deadline: Deadline | None = None
    ) -> SearchAnswer:
        """Search with audio bytes (an upload): decoded by the checked decoder, cut into
        pieces in this thread, embedded in a forward pass shared with concurrent queries.

        Raises ``ServiceBusyError`` at once when the service holds as many queries as it may,
        ``DeadlineExceededError`` past ``deadline``, ``TooLongError`` for audio longer than a
        query may be (from its header, before decoding)."""
        deadline = deadline or self.deadline()
        with self.admission.admitted():
            return self._search(audio, options, deadline)

    def search_catalogue(self, key_or_path: str, options: SearchOptions) -> SearchAnswer:
        """Search with a file of the catalogue (its stored vector: no forward pass)."""
        item = self.catalogue.find(key_or_path)
        if item is None:
            raise NotInCatalogueError(f"{key_or_path}: not a key or path of the catalogue")
        return self._search(item, options)

    def search_blob(
        self, url: str, options: SearchOptions, deadline: Deadline | None = None
    ) -> SearchAnswer:
        """Search with a blob of the configured storage account, bounded as an upload is."""
        deadline = deadline or self.deadline()
        with self.admission.admitted():
            audio = read_blob_query(url, self.settings, self.settings.serve_max_upload_bytes)
            deadline.check("reading the blob")
            return self._search(audio, options, deadline)

    def deadline(self) -> Deadline:
        """A request's deadline, starting now."""
        return Deadline.after(self.settings.serve_request_timeout_seconds)

    def _search(
        self,
        query: QueryAudio | CatalogueItem,
        options: SearchOptions,
        deadline: Deadline | None = None,
    ) -> SearchAnswer:
        start = time.perf_counter()
        vector = query_vector(
            query,
            self.catalogue,
            options.segments,
            lambda audio: self._embed(audio, options, deadline or self.deadline()),
        )
        embedded = time.perf_counter()
        hits = self.indexes[options.segments].search(
            vector, k=options.top, where=options.where, per_file=options.per_file
        )
        name = query.name if isinstance(query, QueryAudio) else query.path
        return SearchAnswer(
            name, hits, (embedded - start) * 1000, (time.perf_counter() - embedded) * 1000
        )

    def _embed(self, audio: QueryAudio, options: SearchOptions, deadline: Deadline) -> np.ndarray:
        with self.admission.decode_slot(deadline), self.batcher.arriving():
            started = time.perf_counter()
            pieces = self.embedder.pieces_of(self._decode(audio, deadline))
            self.metrics.decode_seconds.observe(time.perf_counter() - started)
            embedded = self.batcher.submit(pieces)
        try:
            result = embedded.result(timeout=deadline.remaining())
        except TimeoutError:
            embedded.cancel()  # still queued: dropped from its batch; running: its result unused
            raise deadline.exceeded("waiting for the model") from None
        return embedding_vector(result, options.segments)

    def _decode(self, audio: QueryAudio, deadline: Deadline) -> DecodedAudio:
        """The query's audio at 32 kHz, refused from its header when it is longer than a query
        may be, decoded in blocks with the deadline checked between them."""
        limits = self.query_limits
        try:
            return decode_bounded(
                audio.name, audio.data, limits, lambda: deadline.check("decoding the query")
            )
        except TooLongError as error:
            if limits.max_duration_seconds < self.embedder.limits.max_duration_seconds:
                raise TooLongError(
                    audio.name,
                    error.duration_seconds,
                    limits.max_duration_seconds,
                    "AUDIO_EMBEDDINGS_SERVE_MAX_QUERY_SECONDS",
                ) from None
            raise

    def item(self, key: str) -> CatalogueItem:
        """The catalogue file with this key (the only files the audio endpoint serves)."""
        found = self.catalogue.item(key)
        if found is None:
            raise NotInCatalogueError(f"{key}: not a key of the catalogue")
        return found

    def spectrogram(self, key: str, deadline: Deadline | None = None) -> LogMelPicture:
        """A catalogue file's log-mel picture (what Cnn14 hears), kept for its version: drawn
        once per file and change, from the file at its source, decoded as a query is (header
        checked first, a decode slot held, the deadline kept)."""
        item = self.item(key)
        with self._pictures_lock:
            cached = self._pictures.get((key, item.etag))
            if cached is not None:
                self._pictures.move_to_end((key, item.etag))
                return cached
        deadline = deadline or self.deadline()
        check_size(item.path, item.size_bytes, self.picture_limits)
        with self.admission.admitted(), self.admission.decode_slot(deadline):
            data = self._catalogue_bytes(item)
            deadline.check("reading the file")
            try:
                audio = decode_bounded(
                    item.path, data, self.picture_limits, lambda: deadline.check("decoding")
                )
            except TooLongError as error:
                raise TooLongError(
                    item.path,
                    error.duration_seconds,
                    error.limit_seconds,
                    "AUDIO_EMBEDDINGS_SERVE_MAX_SPECTROGRAM_SECONDS",
                ) from None
            picture = log_mel_picture(audio.samples)
        with self._pictures_lock:
            self._pictures[(key, item.etag)] = picture
            while len(self._pictures) > PICTURES_KEPT:
                self._pictures.popitem(last=False)
        return picture

    def _catalogue_bytes(self, item: CatalogueItem) -> bytes:
        if item.source_uri.startswith("file://"):
            try:
                return file_uri_path(item.source_uri).read_bytes()
            except FileNotFoundError:
                raise NotInCatalogueError(f"{item.path}: no longer at its source") from None
        source, name = locate(item.source_uri, self.settings)
        return b"".join(source.stream_range(name, 0, item.size_bytes))

    def duplicates(self, threshold: float, isolated: int) -> NeighboursState:
        """The catalogue's near-duplicate groups and most isolated files, worked out in the
        background (see tasks.serve.neighbours): the answer, or how far the pass is."""
        return self.neighbours.state(self.catalogue.snapshot.version(), threshold, isolated)

    def latest_anomalies(self, limit: int, only_anomalies: bool = False) -> list[dict]:
        """Each scanned clip's newest verdict, the furthest above its threshold first."""
        rows = self.anomalies_store.latest_verdicts()
        if only_anomalies and rows.num_rows:
            rows = rows.filter(pc.equal(rows["verdict"], "anomaly"))
        listed = rows.to_pylist()
        listed.sort(key=_most_urgent_first)
        return listed[:limit]

    def anomaly_trend(
        self,
        machine: str | None = None,
        since: datetime | None = None,
        until: datetime | None = None,
        limit: int = MAX_TREND_POINTS,
    ) -> tuple[list[str], list[TrendPoint]]:
        """Every machine scanned, and the trend points of one (None: all), oldest first."""
        verdicts = self.anomalies_store.latest_verdicts()
        machines = sorted({group or "" for group in verdicts["group"].to_pylist()})
        recorded_at = self.catalogue.recorded_at(verdicts["key"].to_pylist())
        return machines, machine_trends(verdicts, recorded_at, machine, since, until, limit)

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
            "queries_in_hand": self.admission.in_hand,
        }


_VERDICT_ORDER = {"anomaly": 0, "silent": 1, "normal": 2}


def _most_urgent_first(row: dict) -> tuple[int, float]:
    """Anomalies, then silent clips (no score: a dead microphone or a stopped machine), then
    normal ones; within each, the furthest above (or nearest to) the threshold first."""
    score, threshold = row["score"], row["threshold"]
    ratio = score / threshold if threshold and score == score else 0.0  # NaN != NaN
    return _VERDICT_ORDER.get(row["verdict"], 3), -ratio
