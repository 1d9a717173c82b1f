"""The cloud index: Azure AI Search through azure-search-documents 12.

Readers query an alias (``<name>``) that points at a physical index ``<name>-v<N>``, so a
rebuild fills ``<name>-v<N+1>`` while the old one keeps serving, then switches the alias. Which
snapshot version an index reflects is kept in a small side index, ``<name>-state``, written only
after every document of a refresh has been accepted: a failed refresh does not advance it.

Indexing uses ``SearchClient.index_documents`` with our own batches, bounded by documents and by
JSON bytes. One retry layer: the indexing client's own HTTP retries are off, and we retry both
whole requests that failed (connection errors, 429, 5xx) and single documents that failed inside
a 207 (409/422/503), with exponential backoff, at most ``search_max_attempts`` sends per
document. We do not use ``SearchIndexingBufferedSender``: it was seen dropping all but the first
action when a whole batch request fails. Other calls (index and alias management, queries) keep
the SDK's default retry policy, their only layer.
"""

from __future__ import annotations

import functools
import hashlib
import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from azure.core.exceptions import HttpResponseError, ResourceNotFoundError, ServiceRequestError
from azure.search.documents import IndexDocumentsBatch, SearchClient
from azure.search.documents.indexes import SearchIndexClient
from azure.search.documents.indexes.models import SearchAlias
from azure.search.documents.models import VectorizedQuery
from tenacity import Retrying, retry_if_exception_type, stop_after_attempt, wait_exponential_jitter

from tasks.errors import UserError, reaching
from tasks.index.azure_search_schema import (
    VECTOR_FIELD,
    document,
    index_definition,
    state_definition,
    vector_shape,
)
from tasks.index.filters import SearchFilter, odata_filter
from tasks.index.interface import RefreshResult, SearchHit, check_query_vector
from tasks.index.layouts import FILES, Layout, best_per_file
from tasks.settings import SearchServiceSettings
from tasks.storage.keyed_table import TableDiff

RETRYABLE_DOCUMENT_STATUS = frozenset({409, 422, 503})
RETRYABLE_REQUEST_STATUS = frozenset({429, 500, 502, 503, 504})
SEARCH_SETTINGS_HINT = "AUDIO_EMBEDDINGS_SEARCH_ENDPOINT and AUDIO_EMBEDDINGS_SEARCH_API_KEY"
_Method = TypeVar("_Method", bound=Callable[..., Any])


class SearchConfigurationError(UserError, ValueError):
    """The Azure AI Search backend was chosen but not configured."""


class IndexIncompatibleError(UserError):
    """The existing index cannot hold this data as configured; a rebuild is needed."""


class IndexRefreshError(RuntimeError):
    """Some documents were not accepted; the reflected snapshot version was not advanced."""

    def __init__(self, message: str, uploaded: int, deleted: int, failed: list[str]) -> None:
        super().__init__(message)
        self.uploaded, self.deleted, self.failed = uploaded, deleted, failed


class _RetryableBatch(Exception):
    """Some actions of a batch should be sent again."""


def _reaching_service(method: _Method) -> _Method:
    """Connection and credential failures of the service become one clear user error."""

    @functools.wraps(method)
    def wrapper(self: AzureSearchIndex, *args: Any, **kwargs: Any) -> Any:
        with reaching(f"Azure AI Search at {self.endpoint}", SEARCH_SETTINGS_HINT, self._secrets):
            return method(self, *args, **kwargs)

    return wrapper  # type: ignore[return-value]


class AzureSearchIndex:
    """Readers use the alias ``name`` (``name-segments`` for the segments layout); writers fill
    ``<alias>-vN`` and move the alias."""

    def __init__(
        self,
        settings: SearchServiceSettings,
        name: str,
        credential: Any = None,
        layout: Layout = FILES,
    ) -> None:
        if not settings.search_endpoint:
            raise SearchConfigurationError(
                "AUDIO_EMBEDDINGS_INDEX_BACKEND=azure_search needs "
                "AUDIO_EMBEDDINGS_SEARCH_ENDPOINT (https://<service>.search.windows.net)"
            )
        self.settings = settings
        self.layout = layout
        self.name = f"{name}-{layout.suffix}" if layout.suffix else name
        self.endpoint = settings.search_endpoint
        self.credential = credential or _credential(settings)
        self._secrets = (
            [settings.search_api_key.get_secret_value()] if settings.search_api_key else []
        )
        self.indexes = SearchIndexClient(self.endpoint, self.credential)
        self._state = SearchClient(self.endpoint, f"{self.name}-state", self.credential)

    # -- which physical index, and what it reflects -----------------------------------------

    @_reaching_service
    def current_index(self) -> str | None:
        """The physical index the alias points at (None before the first refresh)."""
        try:
            return self.indexes.get_alias(self.name).indexes[0]
        except ResourceNotFoundError:
            return None

    @_reaching_service
    def delete(self) -> None:
        """Remove the alias, the index it points at and the state index (scratch indexes of
        tests and benchmarks)."""
        current = self.current_index()
        self.indexes.delete_alias(self.name)
        if current:
            self.indexes.delete_index(current)
        self.indexes.delete_index(f"{self.name}-state")

    @_reaching_service
    def reflected_version(self, snapshot_uri: str) -> int | None:
        index = self.current_index()
        return None if index is None else self._recorded_version(snapshot_uri, index)

    def _recorded_version(self, snapshot_uri: str, index: str) -> int | None:
        try:
            state = self._state.get_document(_state_id(snapshot_uri, index))
        except ResourceNotFoundError:
            return None
        return int(state["snapshot_version"])

    @_reaching_service
    def ensure(self) -> str:
        """Create ``<name>-v1`` and the alias if absent; refuse an incompatible existing index."""
        self.indexes.create_or_update_index(state_definition(f"{self.name}-state"))
        current = self.current_index()
        if current is None:
            current = f"{self.name}-v1"
            self.indexes.create_or_update_index(
                index_definition(current, self.settings, self.layout)
            )
            self.indexes.create_or_update_alias(SearchAlias(name=self.name, indexes=[current]))
            return current
        definition = index_definition(current, self.settings, self.layout)
        existing = self.indexes.get_index(current)
        wanted, found = vector_shape(definition), vector_shape(existing)
        if wanted != found:
            raise IndexIncompatibleError(
                f"index {current} has vector shape {found} but the settings ask for {wanted} "
                "(dimensions, m, efConstruction, efSearch, metric, compression): run "
                "`audio-embeddings refresh-index --rebuild` to build a new index and switch to it"
            )
        have = {f.name for f in existing.fields}
        added = [f for f in definition.fields if f.name not in have]
        if added:  # fields added since the index was made (predicted labels): add in place
            existing.fields = [*existing.fields, *added]
            self.indexes.create_or_update_index(existing)
        return current

    @_reaching_service
    def needs_rebuild(self) -> bool:
        current = self.current_index()
        if current is None:
            return False
        have = {f.name for f in self.indexes.get_index(current).fields}
        return not set(self.layout.columns) <= have

    # -- writing ----------------------------------------------------------------------------

    @_reaching_service
    def apply(self, diff: TableDiff, snapshot_uri: str) -> RefreshResult:
        index = self.ensure()
        upserted, deleted = self._write(index, diff, snapshot_uri)
        return RefreshResult(diff.from_version, diff.to_version, upserted, deleted)

    @_reaching_service
    def rebuild(self, everything: TableDiff, snapshot_uri: str, drop_old: bool = False) -> str:
        """Fill a new ``<name>-v<N+1>`` from a whole snapshot, verify, switch the alias.

        The old index serves every query until the switch; with ``drop_old`` it is deleted after.
        A rebuild that died part-way left an index numbered after the alias's that never got its
        state document: it is deleted and its number reused, so a retried rebuild ends with one
        new index, not one per try.
        """
        self.indexes.create_or_update_index(state_definition(f"{self.name}-state"))
        old = self.current_index()
        serving = (_version_number(self.name, old) or 0) if old else 0
        numbered = {
            number: index
            for index in self.indexes.list_index_names()
            if (number := _version_number(self.name, index)) is not None
        }
        for number, index in sorted(numbered.items()):
            if number > serving and self._recorded_version(snapshot_uri, index) is None:
                self.indexes.delete_index(index)
                del numbered[number]
        new = f"{self.name}-v{max(numbered, default=0) + 1}"
        self.indexes.create_or_update_index(index_definition(new, self.settings, self.layout))
        expected, _ = self._write(new, everything, snapshot_uri)
        count = SearchClient(self.endpoint, new, self.credential).get_document_count()
        if count != expected:
            raise IndexRefreshError(
                f"{new} holds {count} documents, the snapshot {expected}: "
                f"the alias still points at {old}",
                count,
                0,
                [],
            )
        self.indexes.create_or_update_alias(SearchAlias(name=self.name, indexes=[new]))
        if drop_old and old:
            self.indexes.delete_index(old)
        return new

    def _write(self, index: str, diff: TableDiff, snapshot_uri: str) -> tuple[int, int]:
        """Send the diff's actions batch by batch, then record its version; returns the
        documents (uploaded, deleted)."""
        # retry_total=0: this client's requests are retried by _send alone (one layer).
        client = SearchClient(self.endpoint, index, self.credential, retry_total=0)
        counts = {"mergeOrUpload": 0, "delete": 0}
        failed: list[str] = []
        failed_by_kind = {"mergeOrUpload": 0, "delete": 0}

        def actions() -> Iterator[tuple[str, dict]]:
            for chunk in diff.chunks():
                for row in chunk.upserts.to_pylist():
                    counts["mergeOrUpload"] += 1
                    yield "mergeOrUpload", document(row, diff.to_version, self.layout)
                for key in chunk.deleted_keys:
                    counts["delete"] += 1
                    yield "delete", {"key": key}

        for batch in _batches(
            actions(),
            self.settings.search_batch_max_documents,
            self.settings.search_batch_max_bytes,
        ):
            kinds = {document["key"]: kind for kind, document in batch}
            for key in self._send(client, batch):
                failed.append(key)
                failed_by_kind[kinds[key]] += 1
        if failed:
            raise IndexRefreshError(
                f"{len(failed)} of {sum(counts.values())} index actions failed for {index} "
                f"(first: {failed[:3]}); the index still reflects its previous snapshot version",
                counts["mergeOrUpload"] - failed_by_kind["mergeOrUpload"],
                counts["delete"] - failed_by_kind["delete"],
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
        return counts["mergeOrUpload"], counts["delete"]

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
        batch.add_merge_actions([d for kind, d in actions if kind == "merge"])
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
        merges = {d["key"] for kind, d in actions if kind == "merge"}
        failed = [
            r.key
            for r in results
            if not r.succeeded
            and r.status_code not in RETRYABLE_DOCUMENT_STATUS
            # a merge into a document not indexed yet: the next refresh writes it whole
            and not (r.status_code == 404 and r.key in merges)
        ]
        return [a for a in actions if a[1]["key"] in retry_keys], failed

    # -- reading ----------------------------------------------------------------------------

    @_reaching_service
    def search(
        self,
        vector: np.ndarray,
        k: int = 10,
        where: SearchFilter | None = None,
        per_file: int = 1,
    ) -> list[SearchHit]:
        query = check_query_vector(vector)
        segments = self.layout.kind == "segments"
        # a file holds many segments: look further, then keep the best per file
        depth = min(max(k * 10, 50), 1_000) if segments else k
        client = SearchClient(self.endpoint, self.name, self.credential)
        results = client.search(
            search_text=None,
            vector_queries=[
                VectorizedQuery(
                    vector=query.astype(float).tolist(),
                    k_nearest_neighbors=depth,
                    fields=VECTOR_FIELD,
                )
            ],
            filter=odata_filter(where),
            select=self.layout.returned,
            top=depth,
        )
        # the service reports 1 / (1 + (1 - cos)) for cosine; return cos itself
        hits = [self.layout.hit(r, 2.0 - 1.0 / r["@search.score"]) for r in results]
        return best_per_file(hits, per_file, k) if segments else hits

    def maintain(self, retention: timedelta, dry_run: bool = False) -> None:
        """Nothing to do: the service compacts its own storage."""
        return None

    @_reaching_service
    def set_predicted_labels(self, by_key: dict[str, list[str]]) -> None:
        if not by_key:
            return
        index = self.ensure()
        client = SearchClient(self.endpoint, index, self.credential, retry_total=0)
        actions = (
            ("merge", {"key": key, "predicted_labels": sorted(values)})
            for key, values in sorted(by_key.items())
        )
        failed: list[str] = []
        for batch in _batches(
            actions, self.settings.search_batch_max_documents, self.settings.search_batch_max_bytes
        ):
            failed.extend(self._send(client, batch))
        if failed:
            raise IndexRefreshError(
                f"{len(failed)} of {len(by_key)} predicted-label updates failed for {index} "
                f"(first: {failed[:3]}); run the classify flow again to resend them",
                len(by_key) - len(failed),
                0,
                failed,
            )

    @_reaching_service
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


def _version_number(name: str, index: str) -> int | None:
    """N for a physical index ``<name>-v<N>``, else None."""
    prefix = f"{name}-v"
    suffix = index[len(prefix) :]
    return int(suffix) if index.startswith(prefix) and suffix.isdigit() else None


def _state_id(snapshot_uri: str, index: str) -> str:
    return hashlib.sha256(f"{snapshot_uri}|{index}".encode()).hexdigest()


def _batches(
    actions: Iterable[tuple[str, dict]], max_documents: int, max_bytes: int
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
