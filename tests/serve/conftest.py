"""A catalogue ingested once for these tests, and real services on loopback (uvicorn, a thread)."""

from __future__ import annotations

import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import httpx
import pytest

from tasks.anomaly.scoring import ClipScore
from tasks.settings import ServeSettings, Settings
from tests.conftest import write_catalogue

if TYPE_CHECKING:
    from tasks.serve.service import SearchService


@dataclass(frozen=True)
class Served:
    """A running service: its base URL, the catalogue folder it indexed, its objects."""

    url: str
    catalogue: Path
    service: object
    settings: Settings


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextmanager
def running(app) -> Iterator[str]:
    """Serve ``app`` on a free loopback port; its base URL."""
    import uvicorn

    config = uvicorn.Config(app, host="127.0.0.1", port=free_port(), log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        assert time.monotonic() < deadline, "the service did not start"
        time.sleep(0.05)
    try:
        yield f"http://127.0.0.1:{config.port}"
    finally:
        server.should_exit = True
        thread.join(timeout=30)


@pytest.fixture(scope="package")
def served(
    tmp_path_factory: pytest.TempPathFactory, checkpoint: Path, prefect_server: None
) -> Iterator[Served]:
    """The test catalogue ingested (snapshot, segments, LanceDB), one anomaly scan's results
    stored, and ``audio-embeddings serve``'s app running on loopback."""
    from flows.ingest import ingest
    from tasks.resources import anomaly_store, open_catalogue
    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    root = tmp_path_factory.mktemp("served")
    catalogue = write_catalogue(root / "catalogue")
    with pytest.MonkeyPatch.context() as environment:
        environment.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(root / "data"))
        environment.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
        ingest(source=str(catalogue))
        settings = Settings()
        listed = open_catalogue(settings).snapshot.read(columns=["key", "path"])
        keys = dict(zip(listed["path"].to_pylist(), listed["key"].to_pylist(), strict=True))
        anomaly_store(settings).record_results(
            [
                _clip(keys, "machines/ticker.wav", 3.0, worst=2.0, machine="pump-1"),
                _clip(keys, "noise/white.ogg", 0.5, worst=0.0, machine="pump-1"),
                _clip(keys, "sweeps/chirp.mp3", 1.5, worst=1.0, machine="fan-2"),
            ],
            run_id="scan-1",
            snapshot_version=1,
            window_seconds=1.0,
        )
        _predict_kinds(settings)
        service = SearchService.start(settings)
        app = create_app(service, Authenticator(ServeSettings()), ServeSettings())
        with running(app) as url:
            yield Served(url, catalogue, service, settings)
        service.close()


def _clip(keys: dict[str, str], path: str, score: float, worst: float, machine: str) -> ClipScore:
    return ClipScore(
        key=keys[path],
        path=path,
        group=machine,
        score=score,
        threshold=1.0,
        is_anomaly=score > 1.0,
        worst_window_start_seconds=worst,
        nearest_reference_paths=["tones/a440.wav"],
    )


def _predict_kinds(settings: Settings) -> None:
    """Predictions of a label set ``kind`` as the classify flow stores them (tones: tonal, the
    rest: other; the chirp abstained), given to the index as the flow does."""
    import pyarrow as pa

    from tasks.classify.labelsets import LABEL_SETS_SCHEMA
    from tasks.classify.predicted_labels import push_predicted_labels
    from tasks.classify.store import PREDICTIONS_SCHEMA
    from tasks.resources import (
        label_sets,
        open_catalogue,
        open_index,
        predicted_labels_of_files,
        predictions_table,
        snapshot_table,
    )

    rows = open_catalogue(settings).snapshot.read(columns=["key", "path", "etag"]).to_pylist()
    labelled = [{"label_set": "kind", "key": r["key"], "label": "x"} for r in rows]
    label_sets(settings).replace("kind", pa.Table.from_pylist(labelled, schema=LABEL_SETS_SCHEMA))
    predictions = []
    for row in rows:
        label = "tonal" if row["path"].startswith("tones/") else "other"
        abstained = row["path"].startswith("sweeps/")
        predictions.append(
            {
                **row,
                "label_set": "kind",
                "label": None if abstained else label,
                "best_label": label,
                "probability": 0.5 if abstained else 0.9,
                "abstained": abstained,
                "model_fingerprint": "test",
                "snapshot_version": 1,
                "run_id": "test",
            }
        )
    table = pa.Table.from_pylist(predictions, schema=PREDICTIONS_SCHEMA)
    predictions_table(settings, "kind").commit(table, [], "test")
    push_predicted_labels(
        snapshot_table(settings),
        predicted_labels_of_files(settings),
        open_index(settings),
        [r["key"] for r in rows],
    )


@contextmanager
def served_with(served: Served, **settings) -> Iterator[tuple[httpx.Client, SearchService]]:
    """The served catalogue behind a service of its own, run with other settings (the same
    loaded model): an HTTP client of it, and the service."""
    from tasks.serve.app import create_app
    from tasks.serve.auth import Authenticator
    from tasks.serve.service import SearchService

    full = Settings(**{**served.settings.model_dump(), **settings})
    service = SearchService(full, served.service.embedder)
    serve_settings = full.serve_settings()
    app = create_app(service, Authenticator(serve_settings), serve_settings)
    try:
        with running(app) as url, httpx.Client(base_url=url, timeout=60) as http:
            yield http, service
    finally:
        service.close()
