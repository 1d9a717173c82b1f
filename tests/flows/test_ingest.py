"""The ingest flow end to end on a Prefect test server: quarantine, re-run, change, failure,
and a search that finds each file."""

from __future__ import annotations

import io
import os
import tempfile
from pathlib import Path

import numpy as np
import pytest
import soundfile
from prefect.client.orchestration import get_client
from prefect.client.schemas.filters import ArtifactFilter, ArtifactFilterKey

from flows.ingest import ingest
from flows.search import search
from tasks.audio import samples
from tasks.index.lancedb_index import LanceDBIndex
from tasks.index.layouts import SEGMENTS
from tasks.storage.quarantine import QuarantineTable
from tasks.storage.segments import SegmentsTable, segment_vectors
from tasks.storage.snapshots import SnapshotTable

pytestmark = pytest.mark.usefixtures("prefect_server")

BAD_FILES = {
    "bad/empty.wav": "empty_file",
    "bad/text.mp3": "not_audio",
    "bad/silent.flac": "silent",
    "bad/nan.wav": "non_finite_samples",
    "bad/truncated.wav": "truncated",
}


def _add_bad_files(root: Path) -> None:
    (root / "bad").mkdir()
    (root / "bad/empty.wav").write_bytes(b"")
    (root / "bad/text.mp3").write_text("definitely not an mp3\n" * 100)
    soundfile.write(root / "bad/silent.flac", np.zeros(16_000, dtype=np.float32), 16_000)
    soundfile.write(
        root / "bad/nan.wav", np.full(8_000, np.nan, dtype=np.float32), 8_000, subtype="FLOAT"
    )
    buffer = io.BytesIO()
    soundfile.write(buffer, samples.tone(2.0, 16_000), 16_000, format="WAV")
    (root / "bad/truncated.wav").write_bytes(buffer.getvalue()[:30_000])


def _artifact_keys() -> set[str]:
    with get_client(sync_client=True) as client:
        artifacts = client.read_artifacts(
            artifact_filter=ArtifactFilter(
                key=ArtifactFilterKey(
                    any_=[
                        "ingest-summary",
                        "ingest-quarantine",
                        "ingest-progress",
                        "search-results",
                    ]
                )
            )
        )
    return {a.key for a in artifacts}


def test_ingest_embeds_good_files_quarantines_bad_ones_and_search_finds_itself(
    catalogue: Path, stores: dict[str, str]
) -> None:
    _add_bad_files(catalogue)
    summary = ingest(source=str(catalogue), shard_size=3)
    assert (summary.listed, summary.embedded, summary.quarantined) == (10, 5, 5)
    assert summary.snapshot_version == 1 and summary.index_version == 1
    assert not summary.model.is_official

    quarantined = {r["path"]: r for r in QuarantineTable(stores["quarantine"]).read().to_pylist()}
    assert {p: r["error_kind"] for p, r in quarantined.items()} == BAD_FILES
    for path, row in quarantined.items():
        assert path in row["message"]  # the reason names the file

    index = LanceDBIndex(stores["index"])
    assert index.document_keys() == set(
        SnapshotTable(stores["snapshot"]).read(columns=["key"])["key"].to_pylist()
    )
    hits = search(query=str(catalogue / "sweeps/chirp.mp3"), top=3)
    assert hits[0].path == "sweeps/chirp.mp3"
    assert hits[0].score == pytest.approx(1.0, abs=1e-4)
    assert len(hits) == 3
    assert _artifact_keys() >= {
        "ingest-summary",
        "ingest-quarantine",
        "ingest-progress",
        "search-results",
    }


def test_rerun_on_unchanged_input_embeds_and_commits_nothing(
    catalogue: Path, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    _add_bad_files(catalogue)
    ingest(source=str(catalogue))
    version = SnapshotTable(stores["snapshot"]).version()
    quarantine_rows = QuarantineTable(stores["quarantine"]).read().num_rows

    def must_not_embed(*args, **kwargs):
        raise AssertionError("a re-run on unchanged input must not run the model")

    monkeypatch.setattr("tasks.model.embedder.PannsEmbedder.trunk_frames", must_not_embed)
    again = ingest(source=str(catalogue))
    assert (again.embedded, again.unchanged, again.skipped_quarantined) == (0, 5, 5)
    assert again.snapshot_version is None
    assert SnapshotTable(stores["snapshot"]).version() == version
    assert QuarantineTable(stores["quarantine"]).read().num_rows == quarantine_rows


def test_changed_file_is_replaced_added_embedded_deleted_removed(
    catalogue: Path, stores: dict[str, str]
) -> None:
    first = ingest(source=str(catalogue))
    snapshot = SnapshotTable(stores["snapshot"])
    before = {r["path"]: r for r in snapshot.read().to_pylist()}

    changed = catalogue / "tones/a440.wav"
    samples.write(changed, samples.noise(3.0, 44_100, 9), 44_100, 2)
    os.utime(changed, ns=(changed.stat().st_atime_ns, changed.stat().st_mtime_ns + 10**9))
    (catalogue / "noise/white.ogg").unlink()
    samples.write(catalogue / "tones/new.flac", samples.tone(2.0, 22_050, 330.0), 22_050)

    second = ingest(source=str(catalogue))
    assert (second.embedded, second.deleted, second.unchanged) == (2, 1, 3)
    assert second.snapshot_version == first.snapshot_version + 1
    after = {r["path"]: r for r in snapshot.read().to_pylist()}
    assert set(after) == set(before) - {"noise/white.ogg"} | {"tones/new.flac"}
    assert after["tones/a440.wav"]["etag"] != before["tones/a440.wav"]["etag"]
    assert after["tones/a440.wav"]["run_id"] == second.run_id
    assert not np.allclose(
        after["tones/a440.wav"]["embedding"], before["tones/a440.wav"]["embedding"]
    )
    assert after["tones/a220.flac"]["run_id"] == first.run_id  # untouched rows keep their run

    index = LanceDBIndex(stores["index"])
    assert index.document_keys() == {r["key"] for r in after.values()}
    deleted_vector = np.asarray(before["noise/white.ogg"]["embedding"], dtype=np.float32)
    assert all(h.path != "noise/white.ogg" for h in index.search(deleted_vector, k=10))
    assert second.index_upserted == 2 and second.index_deleted == 1


def test_a_failed_run_leaves_the_last_good_version_and_the_next_run_finishes(
    catalogue: Path, stores: dict[str, str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    ingest(source=str(catalogue))
    samples.write(catalogue / "later/one.wav", samples.chirp(2.0, 16_000), 16_000)
    samples.write(catalogue / "later/two.wav", samples.clicks(2.0, 16_000), 16_000)
    snapshot = SnapshotTable(stores["snapshot"])
    good_version = snapshot.version()

    import tasks.ingest.stream

    real_prepare = tasks.ingest.stream.prepare

    def crash_on_two(item, *args):
        if item.path == "later/two.wav":
            raise MemoryError("worker died")  # not an input problem: the run must fail
        return real_prepare(item, *args)

    monkeypatch.setattr(tasks.ingest.stream, "prepare", crash_on_two)
    scratch = tmp_path / "scratch"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))
    with pytest.raises(MemoryError):
        ingest(source=str(catalogue), shard_size=1)
    assert snapshot.version() == good_version
    assert not list(scratch.iterdir())  # the run's plan (its manifest on local disk) is gone
    assert LanceDBIndex(stores["index"]).reflected_version(stores["snapshot"]) == good_version

    monkeypatch.setattr(tasks.ingest.stream, "prepare", real_prepare)
    resumed = ingest(source=str(catalogue))
    assert resumed.embedded == 2 and resumed.snapshot_version == good_version + 1
    assert {"later/one.wav", "later/two.wav"} <= set(
        snapshot.read(columns=["path"])["path"].to_pylist()
    )


def test_segments_cover_each_file_and_follow_changes_and_deletions(
    catalogue: Path, stores: dict[str, str], embedder
) -> None:
    ingest(source=str(catalogue))  # files and segments indexed
    segments = SegmentsTable(stores["snapshot"] + "-segments")
    snapshot = SnapshotTable(stores["snapshot"])
    rows = {r["path"]: r for r in snapshot.read().to_pylist()}
    chirp = segments.of_files([rows["sweeps/chirp.mp3"]["key"]])
    # 4 s at 1 s resolution, contiguous from the first sample to the last
    assert chirp["start_seconds"].to_pylist() == [0.0, 1.0, 2.0, 3.0]
    assert chirp["end_seconds"].to_pylist()[-1] == pytest.approx(4.0, abs=0.03)
    # equal to embedding the same file's windows alone (test windows: 2 s, two segments each)
    data = (catalogue / "sweeps/chirp.mp3").read_bytes()
    alone = embedder.embed_file("chirp.mp3", data).segments.embeddings
    np.testing.assert_allclose(segment_vectors(chirp["embedding"]), alone, rtol=2e-3, atol=1e-3)

    shorter = catalogue / "sweeps/chirp.mp3"
    samples.write(shorter, samples.chirp(1.5, 44_100), 44_100, 2)
    os.utime(shorter, ns=(shorter.stat().st_atime_ns, shorter.stat().st_mtime_ns + 10**9))
    (catalogue / "noise/white.ogg").unlink()
    ingest(source=str(catalogue))
    assert segments.of_files([rows["sweeps/chirp.mp3"]["key"]])["end_seconds"].to_pylist() == [
        1.0,
        pytest.approx(1.5, abs=0.03),
    ]
    assert segments.of_files([rows["noise/white.ogg"]["key"]]).num_rows == 0
    remaining = set(segments.read(columns=["file_key"])["file_key"].to_pylist())
    assert remaining == set(snapshot.read(columns=["key"])["key"].to_pylist())
    # the segment index follows the table: changed and deleted files' segments are gone there too
    indexed = LanceDBIndex(stores["index"], layout=SEGMENTS).document_keys()
    assert indexed == set(segments.read(columns=["key"])["key"].to_pylist())
