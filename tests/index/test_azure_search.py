"""Azure AI Search backend: the real azure-search-documents SDK over HTTP against the in-repo
emulator (tests/search_emulator.py, a test double), plus live tests when a service is configured.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pytest
from pydantic import SecretStr

from tasks.audio import samples
from tasks.errors import ServiceUnreachableError
from tasks.index.azure_search import AzureSearchIndex, IndexIncompatibleError, IndexRefreshError
from tasks.index.filters import SearchFilter
from tasks.index.layouts import SEGMENTS
from tasks.ingest.shard import embed_shard
from tasks.model.embedder import PannsEmbedder
from tasks.settings import SearchServiceSettings
from tasks.storage.segments import SegmentsTable, segment_vectors
from tasks.storage.snapshots import TAGS_COLUMN, SnapshotTable
from tasks.storage.sources import LocalSource
from tests.search_emulator import Faults, SearchEmulator


@pytest.fixture
def emulator():
    service = SearchEmulator()
    url = service.start()
    service.url = url
    yield service
    service.stop()


def _settings(emulator: SearchEmulator, **overrides) -> SearchServiceSettings:
    return SearchServiceSettings(
        search_endpoint=emulator.url,
        search_api_key=emulator.api_key,
        search_retry_initial_seconds=0.01,
        **overrides,
    )


@pytest.fixture
def snapshot(tmp_path: Path, catalogue: Path, embedder: PannsEmbedder) -> SnapshotTable:
    samples.write(catalogue / "it's odd/o'brien.wav", samples.tone(2.0, 16_000, 1234.0), 16_000)
    source = LocalSource(catalogue)
    table = SnapshotTable(str(tmp_path / "snap"))
    table.commit(embed_shard(list(source.list_items()), source, embedder, "r1").rows, [], "r1")
    return table


def _index_keys(emulator: SearchEmulator, index: AzureSearchIndex) -> set[str]:
    return set(emulator.documents[index.current_index()])


def test_round_trip_create_fill_query(emulator, snapshot: SnapshotTable) -> None:
    index = AzureSearchIndex(_settings(emulator), "audio")
    assert index.reflected_version(snapshot.uri) is None and index.count() == 0
    index.apply(snapshot.diff(None), snapshot.uri)
    assert index.current_index() == "audio-v1"
    assert emulator.aliases["audio"]["indexes"] == ["audio-v1"]
    assert index.count() == 6
    assert index.reflected_version(snapshot.uri) == snapshot.version()
    for row in snapshot.read().to_pylist():
        hits = index.search(np.asarray(row["embedding"], dtype=np.float32), k=3)
        assert hits[0].key == row["key"] and hits[0].score == pytest.approx(1.0, abs=1e-5)
        assert hits[0].path == row["path"] and hits[0].tags == row[TAGS_COLUMN]
        assert len(hits) == 3 and hits[0].score >= hits[1].score >= hits[2].score
    definition = emulator.indexes["audio-v1"]
    vector = next(f for f in definition["fields"] if f["name"] == "embedding")
    assert vector["dimensions"] == 2048 and vector["stored"] is False
    tags = next(f for f in definition["fields"] if f["name"] == "tags")
    assert tags["filterable"] and tags["facetable"]
    hnsw = definition["vectorSearch"]["algorithms"][0]["hnswParameters"]
    assert (hnsw["m"], hnsw["efConstruction"], hnsw["efSearch"], hnsw["metric"]) == (
        4,
        400,
        500,
        "cosine",
    )


def test_refresh_touches_exactly_the_changed_documents(
    emulator, snapshot: SnapshotTable, catalogue: Path, embedder: PannsEmbedder
) -> None:
    index = AzureSearchIndex(_settings(emulator), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    v1 = snapshot.version()
    rows = {r["path"]: r for r in snapshot.read().to_pylist()}
    samples.write(catalogue / "tones/a440.wav", samples.noise(3.0, 44_100, 5), 44_100, 2)
    samples.write(catalogue / "added.flac", samples.chirp(2.0, 22_050), 22_050)
    source = LocalSource(catalogue)
    changed = [i for i in source.list_items() if i.path in ("tones/a440.wav", "added.flac")]
    snapshot.commit(
        embed_shard(changed, source, embedder, "r2").rows, [rows["noise/white.ogg"]["key"]], "r2"
    )
    before = len(emulator.requests)
    index.apply(snapshot.diff(v1), snapshot.uri)
    index_calls = [r for r in emulator.requests[before:] if r[1].endswith("search.index")]
    assert len(index_calls) == 2  # one batch of documents, one state update
    stored = emulator.documents["audio-v1"]
    assert {
        k: d["snapshot_version"]
        for k, d in stored.items()
        if d["snapshot_version"] == snapshot.version()
    }.keys() == {r["key"] for r in snapshot.read().to_pylist() if r["run_id"] == "r2"}
    assert rows["noise/white.ogg"]["key"] not in stored
    assert set(stored) == set(snapshot.read(columns=["key"])["key"].to_pylist())


def test_injected_503s_and_partial_failures_still_converge(
    emulator, snapshot: SnapshotTable
) -> None:
    emulator.faults = Faults(
        request_503=0.2, document_503=0.2, document_409=0.05, document_422=0.05, seed=7
    )
    index = AzureSearchIndex(_settings(emulator, search_batch_max_documents=2), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    assert _index_keys(emulator, index) == set(snapshot.read(columns=["key"])["key"].to_pylist())
    assert index.reflected_version(snapshot.uri) == snapshot.version()


def test_persistent_failures_are_reported_and_do_not_advance_the_version(
    emulator, snapshot: SnapshotTable
) -> None:
    index = AzureSearchIndex(_settings(emulator, search_max_attempts=2), "audio")
    emulator.faults = Faults(document_503=1.0)
    with pytest.raises(IndexRefreshError, match="6 of 6 index actions failed") as caught:
        index.apply(snapshot.diff(None), snapshot.uri)
    assert caught.value.uploaded == 0 and len(caught.value.failed) == 6
    assert index.reflected_version(snapshot.uri) is None


def test_batches_respect_the_byte_limit(emulator, snapshot: SnapshotTable) -> None:
    # ~30 KB per document: a 100 KB limit means several requests, each under it.
    index = AzureSearchIndex(_settings(emulator, search_batch_max_bytes=100_000), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    calls = [r for r in emulator.requests if r[1] == "/indexes('audio-v1')/docs/search.index"]
    assert len(calls) >= 2
    assert index.count() == 6


def test_filters_with_quotes_neither_fail_nor_widen(emulator, snapshot: SnapshotTable) -> None:
    index = AzureSearchIndex(_settings(emulator), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    query = np.asarray(snapshot.read().to_pylist()[0]["embedding"], dtype=np.float32)
    tones = index.search(query, k=10, where=SearchFilter(path_prefix="tones/"))
    assert {h.path for h in tones} == {"tones/a440.wav", "tones/a220.flac"}
    quoted = index.search(query, k=10, where=SearchFilter(path_prefix="it's odd/"))
    assert [h.path for h in quoted] == ["it's odd/o'brien.wav"]
    assert index.search(query, k=10, where=SearchFilter(path_prefix="x' or path ne '")) == []
    tag = snapshot.read().to_pylist()[0][TAGS_COLUMN][0]
    tagged = index.search(query, k=10, where=SearchFilter(any_tags=(tag, "a') or (true")))
    assert tagged and all(tag in h.tags for h in tagged)


def test_rebuild_keeps_the_old_index_serving_until_the_new_one_is_complete(
    emulator, snapshot: SnapshotTable
) -> None:
    index = AzureSearchIndex(_settings(emulator, search_max_attempts=2), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    query = np.asarray(snapshot.read().to_pylist()[0]["embedding"], dtype=np.float32)

    emulator.faults = Faults(document_503=1.0)  # the new index cannot be filled
    with pytest.raises(IndexRefreshError):
        index.rebuild(snapshot.diff(None), snapshot.uri)
    assert index.current_index() == "audio-v1"
    emulator.faults = Faults()
    assert len(index.search(query, k=3)) == 3  # still served by v1

    new = index.rebuild(snapshot.diff(None), snapshot.uri, drop_old=True)
    # the failed try's partial audio-v2 was replaced, not left beside a v3
    assert new == "audio-v2" and index.current_index() == "audio-v2"
    assert sorted(emulator.indexes) == ["audio-state", "audio-v2"]
    assert "audio-v1" not in emulator.indexes
    assert index.search(query, k=1)[0].key == snapshot.read().to_pylist()[0]["key"]
    assert index.reflected_version(snapshot.uri) == snapshot.version()


def test_a_changed_vector_setting_is_reported_as_incompatible(
    emulator, snapshot: SnapshotTable
) -> None:
    AzureSearchIndex(_settings(emulator), "audio").apply(snapshot.diff(None), snapshot.uri)
    changed = AzureSearchIndex(
        _settings(emulator, search_hnsw_m=8, search_quantization="scalar"), "audio"
    )
    with pytest.raises(IndexIncompatibleError, match="refresh-index --rebuild"):
        changed.apply(snapshot.diff(None), snapshot.uri)
    changed.rebuild(snapshot.diff(None), snapshot.uri)
    compression = emulator.indexes["audio-v2"]["vectorSearch"]["compressions"][0]
    assert compression["kind"] == "scalarQuantization"


def test_an_index_made_before_the_tag_fields_is_rebuilt_beside_it_by_the_next_refresh(
    emulator, snapshot: SnapshotTable
) -> None:
    from tasks.index.refresh import refresh_index

    index = AzureSearchIndex(_settings(emulator), "audio")
    refresh_index(index, snapshot)
    # as an earlier release made it: the AudioSet tags under their old field names
    old_names = {"tags": "labels", "tag_scores": "label_scores"}
    for field in emulator.indexes["audio-v1"]["fields"]:
        field["name"] = old_names.get(field["name"], field["name"])
    for document in emulator.documents["audio-v1"].values():
        for new, old in old_names.items():
            document[old] = document.pop(new)
    assert index.needs_rebuild()

    result = refresh_index(index, snapshot)
    assert result is not None and result.rebuilt_index == "audio-v2"
    assert index.current_index() == "audio-v2" and not index.needs_rebuild()
    assert "audio-v1" in emulator.indexes  # the old one served until the switch, and is kept
    row = snapshot.read().to_pylist()[0]
    hit = index.search(np.asarray(row["embedding"], dtype=np.float32), k=1)[0]
    assert hit.key == row["key"] and hit.tags == row[TAGS_COLUMN]


def test_a_wrong_key_is_refused_and_never_printed(emulator) -> None:
    settings = _settings(emulator).model_copy(update={"search_api_key": SecretStr("wrong-key")})
    with pytest.raises(ServiceUnreachableError, match="refused the credentials") as caught:
        AzureSearchIndex(settings, "audio").ensure()
    assert "wrong-key" not in str(caught.value)
    assert "AUDIO_EMBEDDINGS_SEARCH_API_KEY" in str(caught.value)
    assert emulator.api_key not in repr(_settings(emulator))


def test_an_unreachable_service_is_one_clear_error() -> None:
    settings = SearchServiceSettings(search_endpoint="http://127.0.0.1:9", search_api_key="k")
    with pytest.raises(
        ServiceUnreachableError, match=r"cannot reach Azure AI Search at http://127\.0\.0\.1:9"
    ):
        AzureSearchIndex(settings, "audio").count()


def test_a_rebuild_that_died_midway_and_ran_again_makes_one_new_index_and_moves_the_alias_once(
    emulator, snapshot: SnapshotTable, monkeypatch: pytest.MonkeyPatch
) -> None:
    index = AzureSearchIndex(_settings(emulator, search_batch_max_documents=2), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    alias_moves_before = _alias_writes(emulator)
    real_send_once = AzureSearchIndex._send_once
    batches_sent = []

    def worker_lost_after_one_batch(client, actions):
        if batches_sent:
            raise KeyboardInterrupt("worker evicted")  # not an Exception: nothing may catch it
        batches_sent.append(len(actions))
        return real_send_once(client, actions)

    monkeypatch.setattr(AzureSearchIndex, "_send_once", staticmethod(worker_lost_after_one_batch))
    with pytest.raises(KeyboardInterrupt):
        index.rebuild(snapshot.diff(None), snapshot.uri)
    assert len(emulator.documents["audio-v2"]) == 2  # the partial index a dead worker leaves
    assert index.current_index() == "audio-v1"

    monkeypatch.setattr(AzureSearchIndex, "_send_once", staticmethod(real_send_once))
    assert index.rebuild(snapshot.diff(None), snapshot.uri) == "audio-v2"
    assert sorted(emulator.indexes) == ["audio-state", "audio-v1", "audio-v2"]
    assert len(emulator.documents["audio-v2"]) == snapshot.read().num_rows
    assert _alias_writes(emulator) == alias_moves_before + 1
    assert index.current_index() == "audio-v2"


def _alias_writes(emulator: SearchEmulator) -> int:
    return sum(1 for method, path in emulator.requests if method == "PUT" and "aliases" in path)


LIVE = pytest.mark.skipif(
    not (
        os.environ.get("AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT")
        and os.environ.get("AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY")
    ),
    reason="set AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT and _API_KEY to test a real service",
)


@LIVE
def test_live_service_round_trip(snapshot: SnapshotTable) -> None:
    settings = SearchServiceSettings(
        search_endpoint=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT"],
        search_api_key=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY"],
    )
    name = f"audio-embeddings-test-{os.getpid()}"
    index = AzureSearchIndex(settings, name)
    try:
        index.apply(snapshot.diff(None), snapshot.uri)
        row = snapshot.read().to_pylist()[0]
        hits = index.search(np.asarray(row["embedding"], dtype=np.float32), k=1)
        assert hits and hits[0].key == row["key"]
    finally:
        index.delete()


@LIVE
def test_live_recall_at_10_against_exact_search() -> None:
    """HNSW at the default settings on a real service, measured (printed; run pytest -s)."""
    from benchmarks.azure_search_recall import measure_recall

    settings = SearchServiceSettings(
        search_endpoint=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_ENDPOINT"],
        search_api_key=os.environ["AUDIO_EMBEDDINGS_LIVE_SEARCH_API_KEY"],
    )
    result = measure_recall(settings, rows=5_000, queries=50)
    print("Azure AI Search recall", result)
    assert result["recall_at_10"] >= 0.9


def test_the_recall_measurement_runs_end_to_end_on_the_double(emulator) -> None:
    """The live recall benchmark's plumbing (fill, query, compare, clean up) on the test double,
    which searches exactly: anything but 1.0 would be a bug in the measurement."""
    from benchmarks.azure_search_recall import measure_recall

    settings = SearchServiceSettings(search_endpoint=emulator.url, search_api_key=emulator.api_key)
    result = measure_recall(settings, rows=300, queries=10)
    assert result["recall_at_10"] == 1.0 and result["rows"] == 300
    assert not any(name.startswith("recall-bench") for name in emulator.documents)


@pytest.mark.usefixtures("prefect_server")
def test_ingest_and_search_flows_on_azure_search(
    emulator, catalogue: Path, checkpoint: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.ingest import ingest
    from flows.search import search

    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_INDEX_BACKEND", "azure_search")
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_ENDPOINT", emulator.url)
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SEARCH_API_KEY", emulator.api_key)
    summary = ingest(source=str(catalogue))
    assert summary.index_upserted == 5 and summary.index_version == summary.snapshot_version
    assert len(emulator.documents["audio-embeddings-v1"]) == 5
    hits = search(query=str(catalogue / "machines/ticker.wav"), top=2)
    assert hits[0].path == "machines/ticker.wav"


def test_a_segments_index_beside_the_file_index(
    emulator, tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    source = LocalSource(catalogue)
    shard = embed_shard(list(source.list_items()), source, embedder, "r1")
    segments = SegmentsTable(str(tmp_path / "segments"))
    segments.commit(shard.segments, [], "r1")
    index = AzureSearchIndex(_settings(emulator), "audio", layout=SEGMENTS)
    result = index.apply(segments.diff(None), segments.uri)
    assert index.current_index() == "audio-segments-v1"
    assert result.upserted == shard.segments.num_rows == index.count()
    fields = {f["name"] for f in emulator.indexes["audio-segments-v1"]["fields"]}
    assert {"file_key", "start_seconds", "end_seconds", "embedding"} <= fields

    row = shard.segments.to_pylist()[3]
    vector = segment_vectors(pa.array([row["embedding"]], pa.binary()))[0]
    hits = index.search(vector, k=3)
    assert hits[0].key == row["file_key"] and hits[0].start_seconds == row["start_seconds"]
    assert len({h.key for h in hits}) == len(hits)  # one segment per file
    per_file = index.search(vector, k=3, per_file=3)
    assert [h.key for h in per_file].count(row["file_key"]) >= 2


def test_predicted_labels_are_added_to_an_older_index_set_in_place_and_filtered(
    emulator, snapshot: SnapshotTable
) -> None:
    from tasks.index.refresh import refresh_index

    index = AzureSearchIndex(_settings(emulator), "audio")
    index.apply(snapshot.diff(None), snapshot.uri)
    # an index deployed before predicted labels existed: no field, no values
    definition = emulator.indexes["audio-v1"]
    definition["fields"] = [f for f in definition["fields"] if f["name"] != "predicted_labels"]
    for document in emulator.documents["audio-v1"].values():
        document.pop("predicted_labels", None)
    rows = snapshot.read().to_pylist()
    first, second = rows[0]["key"], rows[1]["key"]
    index.set_predicted_labels(
        {first: ["machine=pump"], second: ["machine=fan"], "not-indexed": ["x=y"]}
    )
    assert "predicted_labels" in {f["name"] for f in emulator.indexes["audio-v1"]["fields"]}
    assert emulator.documents["audio-v1"][first]["predicted_labels"] == ["machine=pump"]
    assert "not-indexed" not in emulator.documents["audio-v1"]  # merged, never created
    query = np.asarray(rows[0]["embedding"], dtype=np.float32)
    hits = index.search(query, k=10, where=SearchFilter(predicted_labels=("machine=pump",)))
    assert [(h.key, h.predicted_labels) for h in hits] == [(first, ["machine=pump"])]
    either = index.search(
        query, k=10, where=SearchFilter(predicted_labels=("machine=pump", "machine=fan"))
    )
    assert {h.key for h in either} == {first, second}
    # a rebuild writes whole documents: the labels ride along from the predicted_labels column
    refresh_index(
        index,
        snapshot,
        rebuild=True,
        predicted_labels=lambda rows: pa.array(
            [["machine=fan"]] * rows.num_rows, pa.list_(pa.string())
        ),
    )
    rebuilt = emulator.documents[index.current_index()]
    assert {tuple(d["predicted_labels"]) for d in rebuilt.values()} == {("machine=fan",)}
