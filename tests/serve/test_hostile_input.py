"""Hostile query audio through the real HTTP service: every malformed file of the corpus and a
few hundred seeded mutations of valid files get an answer below 500 (a refusal names the file
and the reason), none hangs, and the service is still up afterwards."""

from __future__ import annotations

import httpx
import pytest

from tests.hostile_audio import corpus, mutations
from tests.serve.conftest import Served

#: Seeded mutants sent per run (about 20 s here); the same ones every run.
MUTANTS = 300


@pytest.fixture(scope="module")
def hostile() -> list:
    return corpus(long_seconds=600.0)


def _send(http: httpx.Client, name: str, data: bytes) -> httpx.Response:
    # a hang fails the test through the client's timeout
    return http.post("/api/search", files={"file": (name, data)}, timeout=30)


def test_every_malformed_file_is_refused_with_its_name_and_reason(
    served: Served, hostile: list
) -> None:
    with httpx.Client(base_url=served.url) as http:
        for item in hostile:
            answer = _send(http, item.name, item.data)
            assert answer.status_code < 500, (item.name, answer.text)
            if item.must_refuse:
                assert 400 <= answer.status_code < 500, (item.name, answer.status_code)
                assert item.name in answer.json()["detail"], (item.name, answer.text)
        assert http.get("/healthz").json()["status"] == "ok"


def test_seeded_mutations_of_valid_files_never_get_a_server_error(served: Served) -> None:
    statuses: dict[int, int] = {}
    with httpx.Client(base_url=served.url) as http:
        for name, data in mutations(MUTANTS, seed=2026):
            answer = _send(http, name, data)
            assert answer.status_code < 500, (name, answer.text)
            statuses[answer.status_code] = statuses.get(answer.status_code, 0) + 1
        assert http.get("/healthz").json()["status"] == "ok"
    # the mutants reach both ends: some still decode and are answered, most are refused
    assert statuses.get(200, 0) > 0 and sum(statuses.values()) - statuses.get(200, 0) > 0
