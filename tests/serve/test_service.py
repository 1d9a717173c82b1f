"""audio-embeddings serve over real HTTP: search by upload, catalogue item and path, filters,
segments, audio with byte ranges, anomalies, health and schema."""

from __future__ import annotations

import threading

import httpx
import pytest

from tests.serve.conftest import Served

A440 = "tones/a440.wav"


def upload(served: Served, path: str, **form) -> httpx.Response:
    data = (served.catalogue / path).read_bytes()
    return _checked(
        httpx.post(
            f"{served.url}/api/search",
            files={"file": (path.rsplit("/", 1)[-1], data)},
            data=form,
            timeout=60,
        )
    )


def _checked(response: httpx.Response) -> httpx.Response:
    """The response, for ``.json()``; a server error fails with its body, not a JSON error."""
    assert response.status_code < 500, response.text
    return response


def test_an_uploaded_file_finds_itself_first_with_what_a_player_needs(served: Served) -> None:
    response = upload(served, A440, top="3")
    assert response.status_code == 200, response.text
    answer = response.json()
    assert len(answer["hits"]) == 3
    best = answer["hits"][0]
    assert best["path"] == A440 and best["score"] == pytest.approx(1.0, abs=1e-4)
    assert best["duration_seconds"] == pytest.approx(3.0) and best["tags"]
    assert best["audio_url"] == f"/api/audio/{best['key']}"
    assert answer["embed_ms"] > 0


def test_a_catalogue_item_by_key_or_path_searches_like_its_upload(served: Served) -> None:
    uploaded = upload(served, A440, top="5").json()["hits"]
    key = uploaded[0]["key"]
    by_key = httpx.get(f"{served.url}/api/search", params={"key": key, "top": 5}).json()
    by_path = httpx.get(f"{served.url}/api/search", params={"path": A440, "top": 5}).json()
    for answer in (by_key, by_path):
        assert [h["path"] for h in answer["hits"]] == [h["path"] for h in uploaded]
        for stored, embedded in zip(answer["hits"], uploaded, strict=True):
            assert stored["score"] == pytest.approx(embedded["score"], abs=1e-4)
    missing = httpx.get(f"{served.url}/api/search", params={"path": "tones/none.wav"})
    assert missing.status_code == 404 and "tones/none.wav" in missing.json()["detail"]
    both = httpx.get(f"{served.url}/api/search", params={"path": A440, "key": key})
    assert both.status_code == 422


def test_filters_and_segments(served: Served) -> None:
    tones = upload(served, A440, top="10", path_prefix="tones/").json()["hits"]
    assert {h["path"] for h in tones} == {"tones/a440.wav", "tones/a220.flac"}
    tag = tones[0]["tags"][0]
    tagged = upload(served, A440, top="10", tag=tag).json()["hits"]
    assert tagged and all(tag in h["tags"] for h in tagged)
    # the names before the glossary still work for a release: the same filter, the same fields
    old = upload(served, A440, top="10", label=tag).json()["hits"]
    assert [h["key"] for h in old] == [h["key"] for h in tagged]
    assert all(h["labels"] == h["tags"] and h["classes"] == h["predicted_labels"] for h in old)
    segments = _checked(
        httpx.get(
            f"{served.url}/api/search",
            params={"path": "machines/ticker.wav", "segments": "true", "per_file": 2, "top": 4},
            timeout=60,
        )
    ).json()["hits"]
    assert segments and all(h["end_seconds"] > h["start_seconds"] >= 0 for h in segments)
    per_file = {}
    for hit in segments:
        per_file[hit["path"]] = per_file.get(hit["path"], 0) + 1
    assert max(per_file.values()) <= 2


def test_audio_is_the_file_and_honours_byte_ranges(served: Served) -> None:
    hit = upload(served, A440, top="1").json()["hits"][0]
    original = (served.catalogue / A440).read_bytes()
    whole = httpx.get(served.url + hit["audio_url"])
    assert whole.status_code == 200 and whole.content == original
    assert whole.headers["content-type"].startswith("audio/")
    assert whole.headers["accept-ranges"] == "bytes"
    part = httpx.get(served.url + hit["audio_url"], headers={"Range": "bytes=100-199"})
    assert part.status_code == 206 and part.content == original[100:200]
    assert part.headers["content-range"] == f"bytes 100-199/{len(original)}"
    tail = httpx.get(served.url + hit["audio_url"], headers={"Range": "bytes=-50"})
    assert tail.status_code == 206 and tail.content == original[-50:]
    beyond = httpx.get(
        served.url + hit["audio_url"], headers={"Range": f"bytes={len(original) + 10}-"}
    )
    assert beyond.status_code == 416


@pytest.mark.parametrize(
    "crafted",
    [
        "..%2F..%2F..%2Fetc%2Fpasswd",
        "%2Fetc%2Fpasswd",
        "tones%2Fa440.wav",
        "0" * 64,  # the shape of a key, but no file of the catalogue
        "..",
    ],
)
def test_the_audio_endpoint_serves_only_catalogue_files(served: Served, crafted: str) -> None:
    response = httpx.get(f"{served.url}/api/audio/{crafted}")
    assert response.status_code == 404
    assert b"root:" not in response.content


def test_search_by_path_never_reads_files_outside_the_catalogue(served: Served) -> None:
    outside = served.catalogue.parent / "secret.wav"
    outside.write_bytes((served.catalogue / A440).read_bytes())
    for crafted in (str(outside), "../secret.wav", "/etc/passwd"):
        response = httpx.get(f"{served.url}/api/search", params={"path": crafted})
        assert response.status_code == 404, crafted


def test_an_undecodable_upload_is_refused_with_its_name_and_reason(served: Served) -> None:
    response = httpx.post(
        f"{served.url}/api/search", files={"file": ("notes.wav", b"not audio at all" * 100)}
    )
    assert response.status_code == 422
    assert "notes.wav" in response.json()["detail"]


def test_concurrent_queries_get_their_own_answers(served: Served) -> None:
    paths = [A440, "noise/white.ogg", "sweeps/chirp.mp3", "machines/ticker.wav"] * 2
    answers: dict[int, str] = {}

    def ask(i: int, path: str) -> None:
        answers[i] = upload(served, path, top="1").json()["hits"][0]["path"]

    threads = [threading.Thread(target=ask, args=item) for item in enumerate(paths)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [answers[i] for i in range(len(paths))] == paths


def test_anomalies_list_the_newest_verdicts_most_urgent_first(served: Served) -> None:
    rows = httpx.get(f"{served.url}/api/anomalies").json()
    assert [r["path"] for r in rows] == [
        "machines/ticker.wav",
        "sweeps/chirp.mp3",
        "noise/white.ogg",
    ]
    assert [r["verdict"] for r in rows] == ["anomaly", "anomaly", "normal"]
    assert rows[0]["worst_window_start_seconds"] == 2.0
    assert rows[0]["audio_url"].startswith("/api/audio/")
    only = httpx.get(f"{served.url}/api/anomalies", params={"only_anomalies": "true"}).json()
    assert len(only) == 2


def test_health_schema_and_page(served: Served) -> None:
    health = httpx.get(f"{served.url}/healthz").json()
    assert health["status"] == "ok" and health["files_indexed"] == 5
    assert health["forward_passes"] <= health["queries_embedded"]
    schema = httpx.get(f"{served.url}/openapi.json").json()
    for path in ("/api/search", "/api/audio/{key}", "/api/anomalies", "/healthz"):
        assert path in schema["paths"]
    assert "multipart/form-data" in schema["paths"]["/api/search"]["post"]["requestBody"]["content"]
    # the names before the glossary are marked deprecated, and still answer
    assert schema["paths"]["/api/labels"]["get"]["deprecated"] is True
    old_names = {
        p["name"]: p.get("deprecated") for p in schema["paths"]["/api/search"]["get"]["parameters"]
    }
    assert old_names["label"] is old_names["where"] is True and not old_names["tag"]
    tags = httpx.get(f"{served.url}/api/tags").json()
    assert "Speech" in tags and httpx.get(f"{served.url}/api/labels").json() == tags
    page = httpx.get(served.url + "/")
    assert page.status_code == 200 and 'id="query-file"' in page.text
    assert httpx.get(served.url + "/static/app.js").status_code == 200


def test_predicted_labels_are_facets_and_filters(served: Served) -> None:
    facets = _checked(httpx.get(f"{served.url}/api/predicted-labels")).json()
    assert facets == {"kind": {"other": 2, "tonal": 2}}  # the abstained chirp is in neither
    tonal = upload(served, A440, top="10", predicted="kind=tonal").json()["hits"]
    assert {h["path"] for h in tonal} == {"tones/a440.wav", "tones/a220.flac"}
    assert all(h["predicted_labels"] == ["kind=tonal"] for h in tonal)
    deprecated = upload(served, A440, top="10", where="kind=tonal").json()["hits"]
    assert [h["key"] for h in deprecated] == [h["key"] for h in tonal]
    by_path = httpx.get(
        f"{served.url}/api/search",
        params=[
            ("path", A440),
            ("top", 10),
            ("predicted", "kind=other"),
            ("predicted", "kind=tonal"),
        ],
    ).json()["hits"]
    assert {h["path"] for h in by_path} == {
        "tones/a440.wav",
        "tones/a220.flac",
        "noise/white.ogg",
        "machines/ticker.wav",
    }
    refused = upload(served, A440, predicted="kind")
    assert refused.status_code == 400 and "LABEL_SET=LABEL" in refused.json()["detail"]
    segments = upload(served, A440, predicted="kind=tonal", segments="true")
    assert segments.status_code == 400 and "file search only" in segments.json()["detail"]


def test_anomaly_trends_place_each_clip_at_its_recording_time(served: Served) -> None:
    from datetime import datetime

    trend = _checked(httpx.get(f"{served.url}/api/anomalies/trend")).json()
    assert trend["machines"] == ["fan-2", "pump-1"] and len(trend["points"]) == 3
    pump = _checked(
        httpx.get(f"{served.url}/api/anomalies/trend", params={"machine": "pump-1"})
    ).json()["points"]
    assert {p["path"] for p in pump} == {"machines/ticker.wav", "noise/white.ogg"}
    for point in pump:  # at the file's modification time, oldest first, with its threshold
        recorded = datetime.fromtimestamp((served.catalogue / point["path"]).stat().st_mtime)
        assert abs(datetime.fromisoformat(point["at"]).timestamp() - recorded.timestamp()) < 1e-3
        assert point["threshold"] == 1.0 and point["audio_url"].startswith("/api/audio/")
    assert [p["at"] for p in pump] == sorted(p["at"] for p in pump)
    assert {p["path"]: p["verdict"] for p in pump} == {
        "machines/ticker.wav": "anomaly",
        "noise/white.ogg": "normal",
    }
    later = httpx.get(
        f"{served.url}/api/anomalies/trend", params={"since": "2999-01-01T00:00:00"}
    ).json()
    assert later["points"] == [] and later["machines"] == ["fan-2", "pump-1"]
    assert (
        httpx.get(f"{served.url}/api/anomalies/trend", params={"since": "nope"}).status_code == 422
    )


def test_a_files_spectrogram_is_drawn_once_per_version_and_bounded(served: Served) -> None:
    import base64

    import numpy as np

    from tasks.resources import open_catalogue
    from tests.serve.conftest import served_with

    key = open_catalogue(served.settings).find("sweeps/chirp.mp3").key
    first = _checked(httpx.get(f"{served.url}/api/spectrogram/{key}"))
    picture = first.json()
    values = np.frombuffer(base64.b64decode(picture["values"]), np.uint8)
    assert picture["bands"] == 64 and values.size == picture["bands"] * picture["columns"]
    assert picture["seconds"] == pytest.approx(4.0, abs=0.1) and values.max() == 255
    # a sweep rises: its loudest band climbs from the first columns to the last
    rows = values.reshape(picture["bands"], picture["columns"])
    assert rows[:, -20:].mean(axis=1).argmax() > rows[:, :20].mean(axis=1).argmax()
    again = httpx.get(
        f"{served.url}/api/spectrogram/{key}", headers={"If-None-Match": first.headers["etag"]}
    )
    assert again.status_code == 304  # the browser keeps it until the file changes
    assert httpx.get(f"{served.url}/api/spectrogram/not-a-key").status_code == 404
    with served_with(served, serve_max_spectrogram_seconds=1.0) as (http, _):
        refused = http.get(f"/api/spectrogram/{key}")
        assert refused.status_code == 413
        assert "AUDIO_EMBEDDINGS_SERVE_MAX_SPECTROGRAM_SECONDS" in refused.json()["detail"]


def test_duplicates_are_worked_out_in_the_background_then_kept(served: Served) -> None:
    import time

    def ask(threshold: float) -> httpx.Response:
        params = {"threshold": threshold, "isolated": 3}
        deadline = time.monotonic() + 60
        while True:
            answer = httpx.get(f"{served.url}/api/duplicates", params=params)
            if answer.status_code != 202:
                return answer
            assert answer.headers["retry-after"] == "2" and answer.json()["status"] == "running"
            assert time.monotonic() < deadline, "the pass did not finish"
            time.sleep(0.2)

    first = httpx.get(f"{served.url}/api/duplicates", params={"threshold": 0.9999, "isolated": 3})
    assert first.status_code == 202  # never answered inside the request: it may take minutes
    done = _checked(ask(0.9999)).json()
    assert done["status"] == "done" and done["files"] == 5
    assert done["groups"] == []  # no copies in this catalogue; random weights stay below 0.9999
    isolated = done["isolated"]
    assert len(isolated) == 3
    assert [f["similarity"] for f in isolated] == sorted(f["similarity"] for f in isolated)
    assert httpx.get(served.url + isolated[0]["audio_url"]).status_code == 200
    again = httpx.get(f"{served.url}/api/duplicates", params={"threshold": 0.9999, "isolated": 3})
    assert again.status_code == 200 and again.json() == done  # kept for this snapshot version
    # a threshold every file of a random-weight catalogue passes: one group of all five
    everything = _checked(ask(0.0)).json()
    assert [len(g["paths"]) for g in everything["groups"]] == [5]
    assert httpx.get(f"{served.url}/api/duplicates", params={"threshold": 2}).status_code == 422


def test_a_search_from_examples_leaves_them_out_and_names_them(served: Served) -> None:
    params = [
        ("like", "tones/a440.wav"),
        ("like", "tones/a220.flac"),
        ("unlike", "noise/white.ogg"),
    ]
    answer = _checked(httpx.get(f"{served.url}/api/search", params=params)).json()
    paths = {hit["path"] for hit in answer["hits"]}
    assert paths == {"machines/ticker.wav", "sweeps/chirp.mp3"}
    assert answer["query"] == "like tones/a440.wav, tones/a220.flac, unlike noise/white.ogg"
    scores = [hit["score"] for hit in answer["hits"]]
    assert scores == sorted(scores, reverse=True)
    # key= (or path=) counts as a liked example; an upload is one too
    keyed = httpx.get(
        f"{served.url}/api/search",
        params=[
            ("path", "tones/a440.wav"),
            ("like", "tones/a220.flac"),
            ("unlike", "noise/white.ogg"),
        ],
    )
    assert _checked(keyed).json()["hits"] == answer["hits"]
    uploaded = upload(served, "tones/a440.wav", like="tones/a220.flac")
    hits = [hit["path"] for hit in _checked(uploaded).json()["hits"]]
    assert "tones/a220.flac" not in hits and "tones/a440.wav" in hits  # the upload is no file


def test_a_search_from_examples_is_refused_with_the_reason(served: Served) -> None:
    unliked_only = httpx.get(f"{served.url}/api/search", params={"unlike": "tones/a440.wav"})
    assert unliked_only.status_code == 400
    assert "at least one example" in unliked_only.json()["detail"]
    unknown = httpx.get(f"{served.url}/api/search", params={"like": "nowhere/x.wav"})
    assert unknown.status_code == 404 and "nowhere/x.wav" in unknown.json()["detail"]
    too_many = httpx.get(f"{served.url}/api/search", params=[("like", "tones/a440.wav")] * 21)
    assert too_many.status_code == 400 and "at most 20" in too_many.json()["detail"]
    with_url = httpx.get(
        f"{served.url}/api/search", params={"url": "az://c/x.wav", "like": "tones/a440.wav"}
    )
    assert with_url.status_code == 422
