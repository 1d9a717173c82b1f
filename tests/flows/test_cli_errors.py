"""Mistakes a user makes, fed to every command as a user would run it (a separate process, with
Prefect's own console logging): one red ``error:`` line that names the fix, exit code 2, and no
traceback, also when the mistake only shows inside a flow run."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from prefect.settings import PREFECT_API_URL
from typer.testing import CliRunner

from flows.cli import app
from tasks.audio import samples
from tasks.index.azure_search import AzureSearchIndex
from tasks.ingest.shard import embed_shard
from tasks.model.embedder import PannsEmbedder
from tasks.settings import SearchServiceSettings
from tasks.storage.segments import SegmentsTable
from tasks.storage.snapshots import SnapshotTable
from tasks.storage.sources import LocalSource
from tests.blobs import unreachable_connection_string
from tests.search_emulator import SearchEmulator

pytestmark = pytest.mark.usefixtures("prefect_server")
ROOT = Path(__file__).parents[2]


def run_cli(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    """``audio-embeddings ARGS`` in a fresh interpreter, on the session's Prefect test server."""
    return subprocess.run(
        [sys.executable, "-m", "flows.cli", *args],
        env={**os.environ, "PREFECT_API_URL": PREFECT_API_URL.value(), **(env or {})},
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=300,
    )


def assert_user_error(done: subprocess.CompletedProcess, *fragments: str) -> None:
    output = done.stdout + done.stderr
    assert done.returncode == 2, output
    assert "Traceback" not in output, output
    assert output.count("error:") == 1, output
    for fragment in fragments:
        assert fragment in output, output


@pytest.fixture
def data_dir(tmp_path: Path, checkpoint: Path) -> dict[str, str]:
    """Settings of a user with a checkpoint and local stores under ``tmp_path``."""
    return {
        "AUDIO_EMBEDDINGS_DATA_DIR": str(tmp_path / "data"),
        "AUDIO_EMBEDDINGS_CHECKPOINT_PATH": str(checkpoint),
    }


def _commit_catalogue(
    folder: Path, snapshot: SnapshotTable, embedder: PannsEmbedder, run_id: str = "r1"
) -> None:
    """Embed a folder into ``snapshot`` and its segments table (where ingest keeps it)."""
    source = LocalSource(folder)
    shard = embed_shard(list(source.list_items()), source, embedder, run_id)
    SegmentsTable(snapshot.uri + "-segments").commit(shard.segments, [], run_id)
    snapshot.commit(shard.rows, [], run_id)


def test_ingest_of_a_missing_folder(data_dir: dict[str, str], tmp_path: Path) -> None:
    done = run_cli("ingest", str(tmp_path / "no-such-folder"), env=data_dir)
    assert_user_error(done, "audio folder not found", "no-such-folder")


def test_ingest_of_a_malformed_az_url(data_dir: dict[str, str]) -> None:
    done = run_cli("ingest", "az://Field_Recordings/2026", env=data_dir)
    assert_user_error(done, "not a container name", "az://<container>/<optional prefix>")


def test_ingest_from_an_unreachable_blob_endpoint(data_dir: dict[str, str]) -> None:
    env = {
        **data_dir,
        "AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING": unreachable_connection_string(),
        "AUDIO_EMBEDDINGS_BLOB_RETRY_TOTAL": "0",
    }
    done = run_cli("ingest", "az://audio/", env=env)
    assert_user_error(done, "cannot reach Azure Blob Storage", "BLOB_CONNECTION_STRING")
    assert "AccountKey" not in done.stdout + done.stderr


def test_search_with_a_downloaded_checkpoint_of_the_wrong_checksum(
    tmp_path: Path, catalogue: Path, file_server: tuple[str, bytes]
) -> None:
    url, _ = file_server
    env = {
        "AUDIO_EMBEDDINGS_DATA_DIR": str(tmp_path / "data"),
        "AUDIO_EMBEDDINGS_PANNS_DATA_DIR": str(tmp_path / "panns"),
        "AUDIO_EMBEDDINGS_ALLOW_DOWNLOAD": "true",
        "AUDIO_EMBEDDINGS_CHECKPOINT_URL": url,
    }
    done = run_cli("search", str(catalogue / "tones/a440.wav"), env=env)
    assert_user_error(done, "downloaded with sha256", "the file was discarded")


def test_search_on_an_unreachable_search_service(data_dir: dict[str, str], catalogue: Path) -> None:
    env = {
        **data_dir,
        "AUDIO_EMBEDDINGS_INDEX_BACKEND": "azure_search",
        "AUDIO_EMBEDDINGS_SEARCH_ENDPOINT": "http://127.0.0.1:9",
        "AUDIO_EMBEDDINGS_SEARCH_API_KEY": "not-a-real-key",
    }
    done = run_cli("search", str(catalogue / "tones/a440.wav"), env=env)
    assert_user_error(done, "cannot reach Azure AI Search at http://127.0.0.1:9", "SEARCH_ENDPOINT")
    assert "not-a-real-key" not in done.stdout + done.stderr


def test_refresh_of_an_index_built_with_other_vector_settings(
    data_dir: dict[str, str], tmp_path: Path, catalogue: Path, embedder: PannsEmbedder
) -> None:
    service = SearchEmulator()
    url = service.start()
    try:
        snapshot = SnapshotTable(str(tmp_path / "snapshot"))
        _commit_catalogue(catalogue, snapshot, embedder)
        built = SearchServiceSettings(search_endpoint=url, search_api_key=service.api_key)
        AzureSearchIndex(built, "audio-embeddings").apply(snapshot.diff(None), snapshot.uri)
        samples.write(catalogue / "later.wav", samples.chirp(2.0, 16_000), 16_000)
        _commit_catalogue(catalogue, snapshot, embedder, "r2")  # a new version to apply
        env = {
            **data_dir,
            "AUDIO_EMBEDDINGS_SNAPSHOT_URI": snapshot.uri,
            "AUDIO_EMBEDDINGS_INDEX_BACKEND": "azure_search",
            "AUDIO_EMBEDDINGS_SEARCH_ENDPOINT": url,
            "AUDIO_EMBEDDINGS_SEARCH_API_KEY": service.api_key,
            "AUDIO_EMBEDDINGS_SEARCH_HNSW_M": "8",
        }
        done = run_cli("refresh-index", env=env)
    finally:
        service.stop()
    assert_user_error(done, "audio-embeddings-v1 has vector shape", "refresh-index --rebuild")


def test_anomaly_scan_with_a_reference_of_two_clips(
    data_dir: dict[str, str], tmp_path: Path, embedder: PannsEmbedder
) -> None:
    audio = tmp_path / "audio"
    for i in range(2):
        samples.write(
            audio / f"pump/normal/n{i}.wav", samples.engine(2.0, 16_000, 1500.0, i), 16_000
        )
    samples.write(audio / "pump/new/today.wav", samples.engine(2.0, 16_000, 1500.0, 9), 16_000)
    _commit_catalogue(audio, SnapshotTable(str(tmp_path / "data/snapshots")), embedder)
    done = run_cli("anomaly", "scan", "--reference-prefix", "pump/normal/", env=data_dir)
    assert_user_error(done, "has 2 clip(s); at least 3 are needed")


def test_anomaly_scan_whose_reference_matches_no_clip(
    data_dir: dict[str, str], tmp_path: Path, embedder: PannsEmbedder
) -> None:
    """A typo in a (scheduled) scan's reference is an error, never "scanned 0 clips"."""
    audio = tmp_path / "audio"
    for i in range(3):
        samples.write(audio / f"pump/n{i}.wav", samples.engine(2.0, 16_000, 1500.0, i), 16_000)
    _commit_catalogue(audio, SnapshotTable(str(tmp_path / "data/snapshots")), embedder)
    done = run_cli("anomaly", "scan", "--reference-prefix", "nothing-here/", env=data_dir)
    assert_user_error(done, "no file of the catalogue (3 files)", "paths under 'nothing-here/'")


def test_anomaly_scan_with_metadata_that_is_not_key_value(data_dir: dict[str, str]) -> None:
    done = run_cli("anomaly", "scan", "--reference-metadata", "condition", env=data_dir)
    output = done.stdout + done.stderr
    assert done.returncode == 2 and "Traceback" not in output
    assert "'condition' is not KEY=VALUE" in output


def test_anomaly_evaluate_with_a_reference_of_two_clips(
    data_dir: dict[str, str], tmp_path: Path
) -> None:
    for folder, count in (("ref", 2), ("ok", 1), ("bad", 1)):
        for i in range(count):
            clip = samples.engine(2.0, 16_000, 1500.0, i)
            samples.write(tmp_path / folder / f"{i}.wav", clip, 16_000)
    folders = [str(tmp_path / f) for f in ("ref", "ok", "bad")]
    done = run_cli("anomaly", "evaluate", *folders, env=data_dir)
    assert_user_error(done, "has 2 clip(s)")


def test_make_random_checkpoint_where_nothing_can_be_written(tmp_path: Path) -> None:
    (tmp_path / "a-file").write_text("not a folder")
    done = run_cli("make-random-checkpoint", str(tmp_path / "a-file/w.pth"))
    assert_user_error(done, "cannot write", "a-file/w.pth")


def test_a_malformed_setting_is_a_user_error(data_dir: dict[str, str], catalogue: Path) -> None:
    done = run_cli("ingest", str(catalogue), env={**data_dir, "AUDIO_EMBEDDINGS_SHARD_SIZE": "x"})
    assert_user_error(done, "invalid AUDIO_EMBEDDINGS_* setting", "shard_size")


def test_unexpected_errors_keep_their_traceback(
    monkeypatch: pytest.MonkeyPatch, catalogue: Path, checkpoint: Path
) -> None:
    def broken_flow(**parameters):
        raise RuntimeError("a bug, not a user mistake")

    monkeypatch.setattr("flows.ingest.ingest", broken_flow)
    result = CliRunner().invoke(app, ["ingest", str(catalogue), "--checkpoint", str(checkpoint)])
    assert isinstance(result.exception, RuntimeError)  # not turned into a one-line message
    assert result.exit_code == 1 and "error:" not in result.output


def test_classify_mistakes_name_the_fix(
    data_dir: dict[str, str], catalogue: Path, tmp_path: Path
) -> None:
    query = str(catalogue / "tones/a440.wav")
    assert_user_error(
        run_cli("search", query, "--predicted", "gender", env=data_dir), "write LABEL_SET=LABEL"
    )
    assert_user_error(
        run_cli("labels", "import", "gender", str(tmp_path / "none.csv"), env=data_dir),
        "ingest the audio before labelling it",
    )
    assert_user_error(run_cli("classify", "train", "gender", env=data_dir), "no label set 'gender'")
