"""Shared fixtures: an isolated environment, a random-weight checkpoint, synthetic audio, Prefect.

Tests run the real Cnn14 (random weights, written once per session) on CPU. Windows are 2 s
instead of 10 s to keep the suite fast; one test exercises the 10 s default.
"""

from __future__ import annotations

import http.server
import os
import socket
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks.audio import samples
from tasks.model.cnn14 import write_random_checkpoint
from tasks.model.embedder import PannsEmbedder
from tasks.settings import AudioLimits
from tests.blobs import connection_string

TEST_WINDOW_SECONDS = 2.0


@pytest.fixture(scope="session", autouse=True)
def isolated_environment(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """No AUDIO_EMBEDDINGS_* from the host, no downloads, no ~/panns_data, no analytics."""
    saved = dict(os.environ)
    for name in list(os.environ):
        if name.startswith("AUDIO_EMBEDDINGS_"):
            del os.environ[name]
    home = tmp_path_factory.mktemp("home")
    os.environ.update(
        {
            "AUDIO_EMBEDDINGS_PANNS_DATA_DIR": str(home / "panns_data"),
            "AUDIO_EMBEDDINGS_ALLOW_DOWNLOAD": "false",
            "AUDIO_EMBEDDINGS_WINDOW_SECONDS": str(TEST_WINDOW_SECONDS),
            "PREFECT_SERVER_ANALYTICS_ENABLED": "false",
        }
    )
    yield
    os.environ.clear()
    os.environ.update(saved)


@pytest.fixture(scope="session")
def checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A random-weight Cnn14 checkpoint in the official file's layout."""
    return write_random_checkpoint(tmp_path_factory.mktemp("model") / "random-cnn14.pth", seed=0)


@pytest.fixture(scope="session")
def test_limits() -> AudioLimits:
    return AudioLimits(window_seconds=TEST_WINDOW_SECONDS)


@pytest.fixture(scope="session")
def embedder(checkpoint: Path, test_limits: AudioLimits) -> PannsEmbedder:
    return PannsEmbedder.load(checkpoint, device="cpu", limits=test_limits, batch_size=4)


@pytest.fixture(scope="session")
def prefect_server() -> Iterator[None]:
    """One Prefect test server for the whole session (about 12 s to start)."""
    from prefect.testing.utilities import prefect_test_harness

    with prefect_test_harness(server_startup_timeout=120):
        yield


@pytest.fixture
def file_server(tmp_path: Path) -> Iterator[tuple[str, bytes]]:
    """A loopback HTTP server that serves one file, standing in for Zenodo."""
    payload = b"pretend checkpoint " * 50_000
    served = tmp_path / "served"
    served.mkdir()
    (served / "model.pth").write_bytes(payload)

    class Handler(http.server.SimpleHTTPRequestHandler):
        def __init__(self, *args, **kwargs):
            super().__init__(*args, directory=str(served), **kwargs)

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}/model.pth", payload
    server.shutdown()


@pytest.fixture
def catalogue(tmp_path: Path) -> Path:
    """A small folder of distinct sounds in several formats, rates and channel counts."""
    return write_catalogue(tmp_path / "catalogue")


def write_catalogue(root: Path) -> Path:
    """Write the ``catalogue`` fixture's files under ``root``."""
    samples.write(root / "tones/a440.wav", samples.tone(3.0, 44_100, 440.0), 44_100, 2)
    samples.write(root / "tones/a220.flac", samples.tone(2.5, 48_000, 220.0), 48_000, 1)
    samples.write(root / "noise/white.ogg", samples.noise(3.0, 22_050, 1), 22_050, 1)
    samples.write(root / "sweeps/chirp.mp3", samples.chirp(4.0, 44_100), 44_100, 2)
    samples.write(root / "machines/ticker.wav", samples.clicks(5.0, 16_000, 5.0), 16_000, 1)
    return root


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="session")
def azurite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """Azurite's Blob service on a free loopback port; yields its connection string."""
    binary = Path(__file__).parents[1] / "node_modules/.bin/azurite-blob"
    if not binary.exists():
        pytest.fail("Azurite is not installed: run `npm ci` (scripts/test does it)")
    port = _free_port()
    workspace = tmp_path_factory.mktemp("azurite")
    process = subprocess.Popen(
        [
            str(binary),
            "--blobHost",
            "127.0.0.1",
            "--blobPort",
            str(port),
            "--location",
            str(workspace),
            "--skipApiVersionCheck",
            "--disableTelemetry",
            "--silent",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )
    deadline = time.monotonic() + 60
    while True:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=1).close()
            break
        except OSError:
            if process.poll() is not None or time.monotonic() > deadline:
                process.kill()
                raise RuntimeError(
                    f"Azurite did not start: {process.stderr.read().decode()}"
                ) from None
            time.sleep(0.1)
    yield connection_string(port)
    process.terminate()
    try:
        process.wait(timeout=10)
    except subprocess.TimeoutExpired:
        process.kill()


@pytest.fixture
def blob_env(azurite: str, monkeypatch: pytest.MonkeyPatch, checkpoint: Path, tmp_path: Path):
    """Settings that reach Azurite, a fresh container per test, and stores on Azurite."""
    from azure.storage.blob import BlobServiceClient

    monkeypatch.setenv("AUDIO_EMBEDDINGS_BLOB_CONNECTION_STRING", azurite)
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "data"))
    suffix = uuid.uuid4().hex[:8]
    service = BlobServiceClient.from_connection_string(azurite)
    audio = service.create_container(f"audio-{suffix}")
    stores = service.create_container(f"stores-{suffix}")
    monkeypatch.setenv("AUDIO_EMBEDDINGS_SNAPSHOT_URI", f"az://{stores.container_name}/snapshots")
    monkeypatch.setenv(
        "AUDIO_EMBEDDINGS_QUARANTINE_URI", f"az://{stores.container_name}/quarantine"
    )
    return audio
