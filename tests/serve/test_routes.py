"""Each router stands alone: mounted on an app of its own, with only the state it depends on
and the error answers, it answers as it does inside the full service."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import httpx
from fastapi import FastAPI

from tasks.resources import open_catalogue
from tasks.serve.error_responses import add_error_responses
from tasks.serve.routes import anomalies, catalogue, search
from tests.serve.conftest import Served, running


@contextmanager
def _alone(served: Served, *routers) -> Iterator[httpx.Client]:
    app = FastAPI()
    app.state.service = served.service
    app.state.serve_settings = served.settings.serve_settings()
    add_error_responses(app)
    for router in routers:
        app.include_router(router)
    with running(app) as url, httpx.Client(base_url=url, timeout=60) as client:
        yield client


def test_the_catalogue_router_serves_a_files_bytes_and_ranges_alone(served: Served) -> None:
    with _alone(served, catalogue.router) as client:
        key = open_catalogue(served.settings).find("machines/ticker.wav").key
        whole = client.get(f"/api/audio/{key}")
        assert whole.status_code == 200
        assert whole.content == (served.catalogue / "machines/ticker.wav").read_bytes()
        part = client.get(f"/api/audio/{key}", headers={"Range": "bytes=4-11"})
        assert part.status_code == 206 and part.content == whole.content[4:12]
        assert client.get("/api/audio/no-such-key").status_code == 404


def test_the_search_router_answers_by_catalogue_path_alone(served: Served) -> None:
    with _alone(served, search.router) as client:
        answer = client.get("/api/search", params={"path": "machines/ticker.wav", "top": 3})
        assert answer.status_code == 200, answer.text
        hits = answer.json()["hits"]
        assert len(hits) == 3 and hits[0]["path"] == "machines/ticker.wav"
        assert client.get("/api/search").status_code == 422  # none of key, path or url


def test_the_anomalies_router_lists_verdicts_alone(served: Served) -> None:
    with _alone(served, anomalies.router) as client:
        verdicts = client.get("/api/anomalies", params={"only_anomalies": True}).json()
        assert [v["path"] for v in verdicts][:1] == ["machines/ticker.wav"]
