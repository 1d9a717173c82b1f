"""What ``audio-embeddings serve`` does, without HTTP: the model loaded once, the indexes and
the catalogue opened once, queries micro-batched, catalogue audio located, anomalies listed.

tasks.serve.app maps routes onto this; tests and benchmarks can drive it directly.
"""

from __future__ import annotations

import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

import numpy as np
import pyarrow.compute as pc

from tasks.anomaly.trends import MAX_TREND_POINTS, TrendPoint, machine_trends
from tasks.audio.decode import DecodedAudio, check_size, decode_bounded
from tasks.audio.errors import TooLongError
from tasks.classify.labelsets import CatalogueIndex, LabelChange, LabelSet, check_name
from tasks.classify.predicted_labels import predicted_label_filter
from tasks.classify.review import ReviewItem
from tasks.errors import UserError
from tasks.index.filters import SearchFilter
from tasks.index.interface import SearchHit
from tasks.model.front_end import LogMelPicture, log_mel_picture
from tasks.resources import (
    anomaly_store,
    classifier_store,
    label_sets,
    locate,
    map_store,
    open_catalogue,
    open_index,
    predictions_table,
)
from tasks.search.catalogue import CatalogueItem
from tasks.search.duplicates import file_vectors
from tasks.search.examples import check_examples, combined_vector
from tasks.search.query import QueryAudio, embedding_vector, query_vector, read_blob_query
from tasks.serve.admission import Admission, Deadline
from tasks.serve.batching import MicroBatcher
from tasks.serve.map_view import MapBody, MapViews, build_map_body
from tasks.serve.metrics import ServiceMetrics, read_or_nan
from tasks.serve.neighbours import NeighboursJobs, NeighboursState
from tasks.serve.retraining import Retrained, RetrainJobs
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
        self.map_store = map_store(settings)
        self.map_views = MapViews(self._map_state, self._build_map)
        self.retraining = RetrainJobs(self._retrain)
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
            return self._search([audio], options, deadline)

    def search_catalogue(self, key_or_path: str, options: SearchOptions) -> SearchAnswer:
        """Search with a file of the catalogue (its stored vector: no forward pass)."""
        return self._search([self._catalogue_file(key_or_path)], options)

    def search_examples(
        self,
        liked: Sequence[str],
        unliked: Sequence[str] = (),
        options: SearchOptions | None = None,
        upload: QueryAudio | None = None,
        deadline: Deadline | None = None,
    ) -> SearchAnswer:
        """Search like these, unlike those: catalogue files by key or path (their stored
        vectors), and an ``upload`` liked too (embedded, bounded as any upload is). The
        catalogue examples are left out of the hits."""
        options = options or SearchOptions()
        check_examples(len(liked) + (upload is not None), len(unliked))
        liked_files = [self._catalogue_file(reference) for reference in liked]
        unliked_files = [self._catalogue_file(reference) for reference in unliked]
        if upload is None:
            return self._search(liked_files, options, None, unliked_files)
        deadline = deadline or self.deadline()
        with self.admission.admitted():
            return self._search([upload, *liked_files], options, deadline, unliked_files)

    def _catalogue_file(self, key_or_path: str) -> CatalogueItem:
        item = self.catalogue.find(key_or_path)
        if item is None:
            raise NotInCatalogueError(f"{key_or_path}: not a key or path of the catalogue")
        return item

    def search_blob(
        self, url: str, options: SearchOptions, deadline: Deadline | None = None
    ) -> SearchAnswer:
        """Search with a blob of the configured storage account, bounded as an upload is."""
        deadline = deadline or self.deadline()
        with self.admission.admitted():
            audio = read_blob_query(url, self.settings, self.settings.serve_max_upload_bytes)
            deadline.check("reading the blob")
            return self._search([audio], options, deadline)

    def deadline(self) -> Deadline:
        """A request's deadline, starting now."""
        return Deadline.after(self.settings.serve_request_timeout_seconds)

    def _search(
        self,
        liked: Sequence[QueryAudio | CatalogueItem],
        options: SearchOptions,
        deadline: Deadline | None = None,
        unliked: Sequence[CatalogueItem] = (),
    ) -> SearchAnswer:
        """One query, or several examples combined into one vector (tasks.search.examples);
        with several, the catalogue examples are not hits."""
        start = time.perf_counter()

        def vector_of(query: QueryAudio | CatalogueItem) -> np.ndarray:
            return query_vector(
                query,
                self.catalogue,
                options.segments,
                lambda audio: self._embed(audio, options, deadline or self.deadline()),
            )

        liked_vectors = [vector_of(query) for query in liked]
        if len(liked) == 1 and not unliked:
            vector, examples = liked_vectors[0], set()
        else:
            vector = combined_vector(
                np.stack(liked_vectors),
                np.stack([vector_of(query) for query in unliked]) if unliked else None,
            )
            examples = {q.key for q in [*liked, *unliked] if isinstance(q, CatalogueItem)}
        embedded = time.perf_counter()
        hits = self.indexes[options.segments].search(
            vector, k=options.top + len(examples), where=options.where, per_file=options.per_file
        )
        hits = [hit for hit in hits if hit.key not in examples][: options.top]
        return SearchAnswer(
            _query_name(liked, unliked),
            hits,
            (embedded - start) * 1000,
            (time.perf_counter() - embedded) * 1000,
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

    def catalogue_map(self) -> MapBody | None:
        """The map's points and what they can be coloured by (None before the first map)."""
        return self.map_views.body()

    def _map_state(self) -> tuple:
        """The versions of every table the map's body is built from."""
        names = label_sets(self.settings).names()
        return (
            self.map_store.points.version(),
            self.catalogue.snapshot.version(),
            self.anomalies_store.results_version(),
            tuple((n, predictions_table(self.settings, n).version()) for n in names),
        )

    def _build_map(self) -> MapBody | None:
        predicted = {}
        for name in label_sets(self.settings).names():
            rows = predictions_table(self.settings, name).read(columns=["key", "label"])
            predicted[name] = {
                key: label or "abstained"
                for key, label in zip(
                    rows["key"].to_pylist(), rows["label"].to_pylist(), strict=True
                )
            }
        return build_map_body(
            self.map_store, self.catalogue.snapshot, self.anomalies_store, predicted
        )

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

    def label_set_names(self) -> list[str]:
        return label_sets(self.settings).names()

    def label_set(self, name: str) -> tuple[LabelSet | None, list[LabelChange]]:
        """Label set ``name`` (None before its first label) and its recorded changes, newest
        first."""
        sets = label_sets(self.settings)
        check_name(name)
        found = sets.read(name) if name in sets.names() else None
        return found, sets.history(name)

    def change_labels(
        self,
        name: str,
        who: str,
        add: dict[str, str] | None = None,
        remove: Sequence[str] = (),
        relabel: bool = False,
    ) -> LabelChange:
        """Label catalogue files (by key or path) or take them out of label set ``name``, as
        ``who`` (``LabelSets.change``: one new table version, refused whole with the reason)."""
        files = [*(add or {}), *remove]
        items = [self.catalogue.find(file) for file in files]
        unknown = [file for file, item in zip(files, items, strict=True) if item is None]
        if unknown:
            raise NotInCatalogueError(f"not in the catalogue: {', '.join(unknown)}")
        known = CatalogueIndex(
            {file: item.key for file, item in zip(files, items, strict=True)},
            {item.key: item.path for item in items},
        )
        change = label_sets(self.settings).change(name, known, who, add, remove, relabel)
        due = self.settings.classify_retrain_after_labels
        if change.version is not None and due and (self.labels_since_training(name) or 0) >= due:
            self.retraining.start(name)
        return change

    def labels_since_training(self, name: str) -> int | None:
        """Labels given or taken back since the set's classifier was trained (None: no
        classifier yet)."""
        trained = classifier_store(self.settings).history(name)
        if not trained:
            return None
        trained_on = trained[-1]["label_set_version"]
        return sum(
            len(change.added) + len(change.removed)
            for change in label_sets(self.settings).history(name)
            if change.version is not None and change.version > trained_on
        )

    def classifier_history(self, name: str) -> list[dict]:
        """Every classifier trained for label set ``name``, oldest first: when, on how many
        clips, and its cross-validated macro-F1 (and the majority baseline's)."""
        return classifier_store(self.settings).history(name)

    def _retrain(self, name: str) -> Retrained:
        from tasks.steps.classify import fit_classifier, label_catalogue

        store = classifier_store(self.settings)
        before = store.latest(name).evaluation if store.has(name) else None
        classifier, _, stored = fit_classifier(self.settings, name)
        result = label_catalogue(self.settings, name, f"retrain-{classifier.fingerprint}")
        return Retrained(before, classifier.evaluation, stored, result.predicted)

    def review_queue(self, name: str, size: int) -> list[ReviewItem]:
        """The files to hear next for label set ``name`` (tasks.classify.review)."""
        from tasks.steps.classify import review_labels

        return review_labels(self.settings, name, size)

    def predicted_labels(self) -> dict[str, dict[str, int]]:
        """Each label set's predicted labels and how many files carry them (abstentions
        left out): the page's facets."""
        from tasks.classify.predict import ABSTAINED, label_counts

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


def _query_name(
    liked: Sequence[QueryAudio | CatalogueItem], unliked: Sequence[CatalogueItem]
) -> str:
    """How a search's query is shown: its file, or its examples."""
    names = [q.name if isinstance(q, QueryAudio) else q.path for q in liked]
    shown = names[0] if len(names) == 1 else "like " + ", ".join(names)
    if unliked:
        shown += ", unlike " + ", ".join(q.path for q in unliked)
    return shown


_VERDICT_ORDER = {"anomaly": 0, "silent": 1, "normal": 2}


def _most_urgent_first(row: dict) -> tuple[int, float]:
    """Anomalies, then silent clips (no score: a dead microphone or a stopped machine), then
    normal ones; within each, the furthest above (or nearest to) the threshold first."""
    score, threshold = row["score"], row["threshold"]
    ratio = score / threshold if threshold and score == score else 0.0  # NaN != NaN
    return _VERDICT_ORDER.get(row["verdict"], 3), -ratio
