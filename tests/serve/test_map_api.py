"""GET /api/map: every file's point and what it can be coloured by, kept until a table moves."""

from __future__ import annotations

import httpx

from tasks.resources import open_catalogue
from tests.serve.conftest import Served, _clip, served_with


def colour_of(body: dict, scheme: str, index: int) -> str | None:
    category = body["colour_by"][scheme]
    code = category["codes"][index]
    return None if code < 0 else category["values"][code]


def test_the_map_has_every_file_with_its_colours(served: Served) -> None:
    answer = httpx.get(f"{served.url}/api/map")
    assert answer.status_code == 200, answer.text
    body = answer.json()
    listed = open_catalogue(served.settings).snapshot.read(columns=["key", "path"]).to_pylist()
    assert sorted(body["keys"]) == sorted(r["key"] for r in listed)
    assert body["files"] == len(listed) and body["projection"]["version"] >= 1
    assert all(-1.0 <= v <= 1.0 for v in body["x"] + body["y"])
    # distinct files are distinct points
    assert len(set(zip(body["x"], body["y"], strict=True))) == len(listed)
    by_path = {path: i for i, path in enumerate(body["paths"])}
    for path, i in by_path.items():
        assert colour_of(body, "folder", i) == path.split("/")[0]
    assert colour_of(body, "verdict", by_path["machines/ticker.wav"]) == "anomaly"
    assert colour_of(body, "verdict", by_path["tones/a440.wav"]) is None  # never scanned
    assert colour_of(body, "predicted:kind", by_path["tones/a440.wav"]) == "tonal"
    assert colour_of(body, "predicted:kind", by_path["sweeps/chirp.mp3"]) == "abstained"
    counts = body["colour_by"]["folder"]["counts"]
    assert counts == sorted(counts, reverse=True) and sum(counts) == len(listed)
    # a point plays: its key is the audio route's
    assert httpx.get(f"{served.url}/api/audio/{body['keys'][0]}").status_code == 200


def test_the_map_is_gzipped_cached_and_rebuilt_when_a_table_moves(served: Served, tmp_path) -> None:
    # anomaly results of its own, so that the scan below changes no other test's catalogue
    with served_with(served, anomaly_uri=str(tmp_path / "anomaly")) as (http, service):
        plain = http.get("/api/map", headers={"accept-encoding": "identity"})
        packed = http.get("/api/map", headers={"accept-encoding": "gzip"})
        assert plain.headers.get("content-encoding") is None
        assert packed.headers["content-encoding"] == "gzip"
        assert packed.json() == plain.json()  # httpx decodes it
        etag = plain.headers["etag"]
        assert http.get("/api/map", headers={"if-none-match": etag}).status_code == 304

        # a new scan says the tone is anomalous: the map's verdicts follow
        key = plain.json()["keys"][plain.json()["paths"].index("tones/a440.wav")]
        clip = _clip({"tones/a440.wav": key}, "tones/a440.wav", 4.0, worst=0.0, machine="fan-2")
        service.anomalies_store.record_results([clip], "scan-2", snapshot_version=1)
        moved = http.get("/api/map")
        assert moved.headers["etag"] != etag
        body = moved.json()
        assert colour_of(body, "verdict", body["paths"].index("tones/a440.wav")) == "anomaly"


def test_before_the_first_map_the_answer_says_how_to_make_one(served: Served, tmp_path) -> None:
    with served_with(served, map_uri=str(tmp_path / "no-map")) as (http, _):
        answer = http.get("/api/map")
    assert answer.status_code == 404
    assert "audio-embeddings map" in answer.json()["detail"]
