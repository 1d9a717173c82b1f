"""The refresh-index flow: catching up a stale index, and a rebuild that fails and is run again
(one try per run: the backend retries its own requests, the task does not)."""

from __future__ import annotations

from pathlib import Path

import pytest

from flows.ingest import ingest
from flows.refresh_index import refresh_index
from tasks.index.azure_search import IndexRefreshError
from tasks.index.lancedb_index import LanceDBIndex
from tests.search_emulator import Faults, SearchEmulator

pytestmark = pytest.mark.usefixtures("prefect_server")


def test_refresh_index_flow_catches_up_a_stale_index(
    catalogue: Path, stores: dict[str, str]
) -> None:
    ingest(source=str(catalogue), refresh_index=False)
    assert LanceDBIndex(stores["index"]).count() == 0
    result = refresh_index()
    assert result is not None and result.upserted == 5
    assert refresh_index().upserted == 0  # already current


def test_a_failed_rebuild_run_again_ends_with_one_new_index_and_one_alias_move(
    catalogue: Path, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    service = SearchEmulator()
    monkeypatch.setenv("AUDIO_EMBEDDINGS_INDEX_BACKEND", "azure_search")
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_ENDPOINT", service.start())
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_API_KEY", service.api_key)
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_MAX_ATTEMPTS", "2")
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_RETRY_INITIAL_SECONDS", "0.01")
    try:
        ingest(source=str(catalogue))
        assert service.aliases["audio-embeddings"]["indexes"] == ["audio-embeddings-v1"]
        before = len(service.requests)

        service.faults = Faults(document_503=1.0)  # the new index cannot be filled
        with pytest.raises(IndexRefreshError):
            refresh_index(rebuild=True)
        service.faults = Faults()
        refresh_index(rebuild=True)
        requests = service.requests[before:]
    finally:
        service.stop()
    created = [
        p for m, p in requests if m == "PUT" and p.startswith("/indexes('audio-embeddings-v")
    ]
    alias_moves = [p for m, p in requests if m == "PUT" and p == "/aliases('audio-embeddings')"]
    # one index per run: the failed run made v2 once (no task retry), the second run replaced it
    assert created == ["/indexes('audio-embeddings-v2')"] * 2
    assert len(alias_moves) == 1
    assert sorted(i for i in service.indexes if "segments" not in i) == [
        "audio-embeddings-state",
        "audio-embeddings-v1",
        "audio-embeddings-v2",
    ]
    assert service.aliases["audio-embeddings"]["indexes"] == ["audio-embeddings-v2"]
    assert len(service.documents["audio-embeddings-v2"]) == 5
