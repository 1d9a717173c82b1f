"""The cloud index: Azure AI Search through azure-search-documents 12.

Readers query an alias (``<name>``) that points at a physical index ``<name>-v<N>``, so a
rebuild fills ``<name>-v<N+1>`` while the old one keeps serving, then switches the alias. Which
snapshot version an index reflects is kept in a small side index, ``<name>-state``, written only
after every document of a refresh has been accepted: a failed refresh does not advance it.

Indexing uses ``SearchClient.index_documents`` with our own batches, bounded by documents and by
JSON bytes, and retries documents that failed with 409/422/503 (and whole requests that failed
with 429/5xx) with exponential backoff. We do not use ``SearchIndexingBufferedSender``: it was
seen dropping all but the first action when a whole batch request fails.
"""

from __future__ import annotations

import hashlib
import json
import posixpath
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from typing import Any

import numpy as np
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.search.documents import IndexDocumentsBatch, SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import (
    BinaryQuantizationCompression,
    HnswAlgorithmConfiguration,
    HnswParameters,
    RescoringOptions,
    ScalarQuantizationCompression,
    ScalarQuantizationParameters,
    SearchAlias,
    SearchField,
    SearchFieldDataType,
    SearchIndex,
    SimpleField,
    VectorSearch,
    VectorSearchProfile,
)
from azure.search.documents.models import VectorizedQuery
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from tasks.embedding import EMBEDDING_SIZE
from tasks.index import RefreshResult, SearchFilter, SearchHit
from tasks.settings import SearchServiceSettings
from tasks.snapshots import SnapshotDiff

RETRYABLE_DOCUMENT_STATUS = frozenset({409, 422, 503})
RETRYABLE_REQUEST_STATUS = frozenset({429, 500, 502, 503, 504})
VECTOR_FIELD = "embedding"
_RETURNED = ["key", "source_uri", "path", "duration_seconds", "labels"]


class IndexIncompatibleError(RuntimeError):
    """The existing index cannot hold this data as configured; a rebuild is needed."""


class IndexRefreshError(RuntimeError):
    """Some documents were not accepted; the reflected snapshot version was not advanced."""

    def __init__(self, message: str, uploaded: int, deleted: int, failed: list[str]) -> None:
        super().__init__(message)
        self.uploaded, self.deleted, self.failed = uploaded, deleted, failed


class _RetryableBatch(Exception):
    """Some actions of a batch should be sent again."""


def odata_string(value: str) -> str:
    """An OData string literal: quotes doubled, so user input cannot end the literal."""
    return "'" + value.replace("'", "''") + "'"


def odata_filter(where: SearchFilter | None) -> str | None:
    """The $filter for a SearchFilter, built from escaped literals only.

    OData has no starts-with for filters, so a path prefix is a range on the sortable ``path``.
    """
    if where is None or where.is_empty:
        return None
    parts = []
    if where.path_prefix:
        parts.append(
            f"path ge {odata_string(where.path_prefix)} and "
            f"path lt {odata_string(where.path_prefix + chr(0x10FFFF))}"
        )
    if where.any_labels:
        alternatives = " or ".join(f"l eq {odata_string(label)}" for label in where.any_labels)
        parts.append(f"labels/any(l: {alternatives})")
    return " and ".join(f"({p})" for p in parts)


def index_definition(name: str, settings: SearchServiceSettings) -> SearchIndex:
    """The index schema, generated from the snapshot schema and the vector settings."""
    string, collection = SearchFieldDataType.String, SearchFieldDataType.Collection
    fields = [
        SimpleField(name="key", type=string, key=True, filterable=True),
        SimpleField(name="source_uri", type=string, filterable=True),
        SimpleField(name="path", type=string, filterable=True, sortable=True),
        SimpleField(name="folder", type=string, filterable=True, facetable=True),
        SimpleField(
            name="duration_seconds", type=SearchFieldDataType.Double, filterable=True, sortable=True
        ),
        SimpleField(
            name="sample_rate", type=SearchFieldDataType.Int32, filterable=True, facetable=True
        ),
        SimpleField(name="channels", type=SearchFieldDataType.Int32, filterable=True),
        SimpleField(
            name="last_modified",
            type=SearchFieldDataType.DateTimeOffset,
            filterable=True,
            sortable=True,
        ),
        SearchField(
            name="labels", type=collection(string), filterable=True, facetable=True, searchable=True
        ),
        SimpleField(name="label_scores", type=collection(SearchFieldDataType.Double)),
        SimpleField(name="model", type=string, filterable=True, facetable=True),
        SimpleField(name="checkpoint_sha256", type=string, filterable=True),
        SimpleField(name="snapshot_version", type=SearchFieldDataType.Int64, filterable=True),
        SearchField(
            name=VECTOR_FIELD,
            type=collection(SearchFieldDataType.Single),
            searchable=True,
            vector_search_dimensions=EMBEDDING_SIZE,
            vector_search_profile_name="audio-hnsw",
            # Not returned by queries: rebuilds read the snapshot, so the copy is not needed.
            stored=False,
        ),
    ]
    compressions = []
    if settings.search_quantization != "none":
        rescoring = RescoringOptions(
            enable_rescoring=True,
            default_oversampling=4.0,
            rescore_storage_method="preserveOriginals",
        )
        compressions.append(
            ScalarQuantizationCompression(
                compression_name="audio-compression",
                parameters=ScalarQuantizationParameters(quantized_data_type="int8"),
                rescoring_options=rescoring,
            )
            if settings.search_quantization == "scalar"
            else BinaryQuantizationCompression(
                compression_name="audio-compression", rescoring_options=rescoring
            )
        )
    vector_search = VectorSearch(
        algorithms=[
            HnswAlgorithmConfiguration(
                name="hnsw",
                parameters=HnswParameters(
                    m=settings.search_hnsw_m,
                    ef_construction=settings.search_hnsw_ef_construction,
                    ef_search=settings.search_hnsw_ef_search,
                    metric="cosine",
                ),
            )
        ],
        profiles=[
            VectorSearchProfile(
                name="audio-hnsw",
                algorithm_configuration_name="hnsw",
                compression_name="audio-compression" if compressions else None,
            )
        ],
        compressions=compressions,
    )
    return SearchIndex(name=name, fields=fields, vector_search=vector_search)


def _state_definition(name: str) -> SearchIndex:
    string = SearchFieldDataType.String
    return SearchIndex(
        name=name,
        fields=[
            SimpleField(name="id", type=string, key=True),
            SimpleField(name="snapshot_uri", type=string, filterable=True),
            SimpleField(name="index_name", type=string, filterable=True),
            SimpleField(name="snapshot_version", type=SearchFieldDataType.Int64),
            SimpleField(name="updated_at", type=SearchFieldDataType.DateTimeOffset),
        ],
    )


def _vector_shape(index: SearchIndex) -> tuple:
    """What must match for an index to take our documents and answer our queries."""
    vector = next((f for f in index.fields if f.name == VECTOR_FIELD), None)
    if vector is None or index.vector_search is None:
        return (None,)
    profile = next(
        p for p in index.vector_search.profiles if p.name == vector.vector_search_profile_name
    )
    algorithm = next(
        a for a in index.vector_search.algorithms if a.name == profile.algorithm_configuration_name
    )
    compression = next(
        (
            c
            for c in index.vector_search.compressions or []
            if c.compression_name == profile.compression_name
        ),
        None,
    )
    parameters = algorithm.parameters
    return (
        vector.vector_search_dimensions,
        parameters.m,
        parameters.ef_construction,
        parameters.ef_search,
        str(parameters.metric),
        type(compression).__name__ if compression else None,
    )


class AzureSearchIndex:
    """Readers use the alias ``name``; writers fill ``name-vN`` and move the alias."""

    def __init__(self, settings: SearchServiceSettings, name: str, credential: Any = None) -> None:
        if not settings.search_endpoint:
            raise ValueError("AUDIO_EMBEDDINGS_SEARCH_ENDPOINT is not set")
        self.settings = settings
        self.name = name
        self.endpoint = settings.search_endpoint
        self.credential = credential or _credential(settings)
        self.indexes = SearchIndexClient(self.endpoint, self.credential)
        self._state = SearchClient(self.endpoint, f"{name}-state", self.credential)

    # -- which physical index, and what it reflects -----------------------------------------

    def current_index(self) -> str | None:
        """The physical index the alias points at (None before the first refresh)."""
        try:
            return self.indexes.get_alias(self.name).indexes[0]
        except ResourceNotFoundError:
            return None

    def reflected_version(self, snapshot_uri: str) -> int | None:
        index = self.current_index()
        if index is None:
            return None
        try:
            state = self._state.get_document(_state_id(snapshot_uri, index))
        except ResourceNotFoundError:
            return None
        return int(state["snapshot_version"])

    def ensure(self) -> str:
        """Create ``<name>-v1`` and the alias if absent; refuse an incompatible existing index."""
        self.indexes.create_or_update_index(_state_definition(f"{self.name}-state"))
        current = self.current_index()
        if current is None:
            current = f"{self.name}-v1"
            self.indexes.create_or_update_index(index_definition(current, self.settings))
            self.indexes.create_or_update_alias(SearchAlias(name=self.name, indexes=[current]))
            return current
        wanted = _vector_shape(index_definition(current, self.settings))
        found = _vector_shape(self.indexes.get_index(current))
        if wanted != found:
            raise IndexIncompatibleError(
                f"index {current} has vector shape {found} but the settings ask for {wanted} "
                "(dimensions, m, efConstruction, efSearch, metric, compression): run "
                "`audio-embeddings refresh-index --rebuild` to build a new index and switch to it"
            )
        return current

    # -- writing ----------------------------------------------------------------------------

    def apply(self, diff: SnapshotDiff, snapshot_uri: str) -> RefreshResult:
        index = self.ensure()
        self._write(index, diff, snapshot_uri)
        return RefreshResult(
            diff.from_version, diff.to_version, diff.upserts.num_rows, len(diff.deleted_keys)
        )

    def rebuild(self, everything: SnapshotDiff, snapshot_uri: str, drop_old: bool = False) -> str:
        """Fill a new ``<name>-v<N+1>`` from a whole snapshot, verify, switch the alias.

        The old index serves every query until the switch; with ``drop_old`` it is deleted after.
        """
        self.indexes.create_or_update_index(_state_definition(f"{self.name}-state"))
        old = self.current_index()
        number = 1 + max(
            (
                int(n.rsplit("-v", 1)[1])
                for n in self.indexes.list_index_names()
                if n.startswith(f"{self.name}-v") and n.rsplit("-v", 1)[1].isdigit()
            ),
            default=0,
        )
        new = f"{self.name}-v{number}"
        self.indexes.create_or_update_index(index_definition(new, self.settings))
        self._write(new, everything, snapshot_uri)
        count = SearchClient(self.endpoint, new, self.credential).get_document_count()
        if count != everything.upserts.num_rows:
            raise IndexRefreshError(
                f"{new} holds {count} documents, the snapshot {everything.upserts.num_rows}: "
                f"the alias still points at {old}",
                count,
                0,
                [],
            )
        self.indexes.create_or_update_alias(SearchAlias(name=self.name, indexes=[new]))
        if drop_old and old:
            self.indexes.delete_index(old)
        return new

    def _write(self, index: str, diff: SnapshotDiff, snapshot_uri: str) -> None:
        client = SearchClient(self.endpoint, index, self.credential)
        documents = [_document(row, diff.to_version) for row in diff.upserts.to_pylist()]
        actions = [("mergeOrUpload", d) for d in documents] + [
            ("delete", {"key": key}) for key in diff.deleted_keys
        ]
        failed: list[str] = []
        for batch in _batches(
            actions, self.settings.search_batch_max_documents, self.settings.search_batch_max_bytes
        ):
            failed.extend(self._send(client, batch))
        if failed:
            failed_set = set(failed)
            raise IndexRefreshError(
                f"{len(failed)} of {len(actions)} index actions failed for {index} (first: "
                f"{failed[:3]}); the index still reflects its previous snapshot version",
                sum(1 for d in documents if d["key"] not in failed_set),
                sum(1 for k in diff.deleted_keys if k not in failed_set),
                failed,
            )
        self._state.merge_or_upload_documents(
            [
                {
                    "id": _state_id(snapshot_uri, index),
                    "snapshot_uri": snapshot_uri,
                    "index_name": index,
                    "snapshot_version": diff.to_version,
                    "updated_at": datetime.now(UTC).isoformat(),
                }
            ]
        )

    def _send(self, client: SearchClient, actions: list[tuple[str, dict]]) -> list[str]:
        """Send one batch; return the keys that still failed after retries."""
        pending = actions
        permanent: list[str] = []
        retrying = Retrying(
            stop=stop_after_attempt(self.settings.search_max_attempts),
            wait=wait_exponential_jitter(
                initial=self.settings.search_retry_initial_seconds, max=60
            ),
            retry=retry_if_exception_type(_RetryableBatch),
            reraise=True,
        )
        try:
            for attempt in retrying:
                with attempt:
                    pending, failed_now = self._send_once(client, pending)
                    permanent.extend(failed_now)
                    if pending:
                        raise _RetryableBatch
        except _RetryableBatch:
            permanent.extend(doc["key"] for _, doc in pending)
        return permanent

    @staticmethod
    def _send_once(
        client: SearchClient, actions: list[tuple[str, dict]]
    ) -> tuple[list[tuple[str, dict]], list[str]]:
        batch = IndexDocumentsBatch()
        batch.add_merge_or_upload_actions([d for kind, d in actions if kind == "mergeOrUpload"])
        batch.add_delete_actions([d for kind, d in actions if kind == "delete"])
        try:
            results = client.index_documents(batch)
        except (HttpResponseError, ServiceRequestError) as error:
            status = getattr(error, "status_code", None)
            if status is None or status in RETRYABLE_REQUEST_STATUS:
                return actions, []
            raise
        retry_keys = {
            r.key for r in results if not r.succeeded and r.status_code in RETRYABLE_DOCUMENT_STATUS
        }
        failed = [
            r.key
            for r in results
            if not r.succeeded and r.status_code not in RETRYABLE_DOCUMENT_STATUS
        ]
        return [a for a in actions if a[1]["key"] in retry_keys], failed

    # -- reading ----------------------------------------------------------------------------

    def search(
        self, vector: np.ndarray, k: int = 10, where: SearchFilter | None = None
    ) -> list[SearchHit]:
        if vector.shape != (EMBEDDING_SIZE,):
            raise ValueError(f"query vector must have {EMBEDDING_SIZE} values, got {vector.shape}")
        client = SearchClient(self.endpoint, self.name, self.credential)
        results = client.search(
            search_text=None,
            vector_queries=[
                VectorizedQuery(
                    vector=vector.astype(float).tolist(), k_nearest_neighbors=k, fields=VECTOR_FIELD
                )
            ],
            filter=odata_filter(where),
            select=_RETURNED,
            top=k,
        )
        return [
            SearchHit(
                key=r["key"],
                path=r["path"],
                source_uri=r["source_uri"],
                # the service reports 1 / (1 + (1 - cos)) for cosine; return cos itself
                score=2.0 - 1.0 / r["@search.score"],
                duration_seconds=r["duration_seconds"],
                labels=list(r.get("labels") or []),
            )
            for r in results
        ]

    def count(self) -> int:
        if self.current_index() is None:
            return 0
        return SearchClient(self.endpoint, self.name, self.credential).get_document_count()


def _credential(settings: SearchServiceSettings) -> Any:
    if settings.search_api_key:
        from azure.core.credentials import AzureKeyCredential

        return AzureKeyCredential(settings.search_api_key.get_secret_value())
    from azure.identity import DefaultAzureCredential

    return DefaultAzureCredential()


def _state_id(snapshot_uri: str, index: str) -> str:
    return hashlib.sha256(f"{snapshot_uri}|{index}".encode()).hexdigest()


def _document(row: dict, snapshot_version: int) -> dict:
    modified = row["last_modified"]
    return {
        "key": row["key"],
        "source_uri": row["source_uri"],
        "path": row["path"],
        "folder": posixpath.dirname(row["path"]),
        "duration_seconds": row["duration_seconds"],
        "sample_rate": row["sample_rate"],
        "channels": row["channels"],
        "last_modified": modified.isoformat() if modified else None,
        "labels": list(row["labels"] or []),
        "label_scores": [float(s) for s in row["label_scores"] or []],
        "model": row["model"],
        "checkpoint_sha256": row["checkpoint_sha256"],
        "snapshot_version": snapshot_version,
        # float32 carries ~7 significant digits; more only inflates the JSON
        VECTOR_FIELD: [float(f"{x:.7g}") for x in row["embedding"]],
    }


def _batches(
    actions: Sequence[tuple[str, dict]], max_documents: int, max_bytes: int
) -> Iterator[list[tuple[str, dict]]]:
    """Consecutive batches within both limits (JSON size estimated per action, + envelope)."""
    batch: list[tuple[str, dict]] = []
    size = 64
    for action in actions:
        action_size = len(json.dumps(action[1])) + 40
        if batch and (len(batch) >= max_documents or size + action_size > max_bytes):
            yield batch
            batch, size = [], 64
        batch.append(action)
        size += action_size
    if batch:
        yield batch
