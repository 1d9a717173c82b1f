"""Shared fixtures: an isolated environment, a random-weight checkpoint, synthetic audio, Prefect.

Tests run the real Cnn14 (random weights, written once per session) on CPU. Windows are 2 s
instead of 10 s to keep the suite fast; one test exercises the 10 s default.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tasks import samples
from tasks.embedding import PannsEmbedder, write_random_checkpoint
from tasks.settings import AudioLimits

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
def catalogue(tmp_path: Path) -> Path:
    """A small folder of distinct sounds in several formats, rates and channel counts."""
    root = tmp_path / "catalogue"
    samples.write(root / "tones/a440.wav", samples.tone(3.0, 44_100, 440.0), 44_100, 2)
    samples.write(root / "tones/a220.flac", samples.tone(2.5, 48_000, 220.0), 48_000, 1)
    samples.write(root / "noise/white.ogg", samples.noise(3.0, 22_050, 1), 22_050, 1)
    samples.write(root / "sweeps/chirp.mp3", samples.chirp(4.0, 44_100), 44_100, 2)
    samples.write(root / "machines/ticker.wav", samples.clicks(5.0, 16_000, 5.0), 16_000, 1)
    return root
