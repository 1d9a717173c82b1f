"""Labels given and taken back through the service: audited versions of the label sets."""

from __future__ import annotations

from pathlib import Path

from tests.serve.conftest import Served, served_with


def test_labels_from_the_service_are_versions_that_say_who_and_when(
    served: Served, tmp_path: Path
) -> None:
    with served_with(served, classify_uri=str(tmp_path / "classify")) as (http, service):
        assert http.get("/api/label-sets").json() == []
        empty = http.get("/api/label-sets/kind").json()
        assert (empty["version"], empty["labels"], empty["history"]) == (None, {}, [])
        key_a220 = service.catalogue.find("tones/a220.flac").key
        added = http.post(
            "/api/label-sets/kind/labels",
            json={"label": "tonal", "files": ["tones/a440.wav", key_a220]},
        )
        assert added.status_code == 200, added.text
        first = added.json()
        assert first["who"] == "local"  # no authentication on loopback
        assert first["added"] == {"tones/a440.wav": "tonal", "tones/a220.flac": "tonal"}
        state = http.get("/api/label-sets/kind").json()
        assert state["version"] == first["version"] and state["counts"] == {"tonal": 2}
        assert key_a220 in state["labels"] and state["history"][0]["added"] == first["added"]

        unknown = http.post(
            "/api/label-sets/kind/labels", json={"label": "x", "files": ["nowhere/x.wav"]}
        )
        assert unknown.status_code == 404 and "nowhere/x.wav" in unknown.json()["detail"]
        other = http.post(
            "/api/label-sets/kind/labels", json={"label": "noisy", "files": ["tones/a440.wav"]}
        )
        assert other.status_code == 400 and "labelled 'tonal'" in other.json()["detail"]
        bad_name = http.post(
            "/api/label-sets/Kind!/labels", json={"label": "x", "files": ["tones/a440.wav"]}
        )
        assert bad_name.status_code == 400 and "label set name" in bad_name.json()["detail"]
        too_many = http.post(
            "/api/label-sets/kind/labels", json={"label": "x", "files": ["a"] * 501}
        )
        assert too_many.status_code == 422

        removed = http.delete("/api/label-sets/kind/labels", params={"file": "tones/a440.wav"})
        assert removed.status_code == 200, removed.text
        assert removed.json()["version"] > first["version"]
        after = http.get("/api/label-sets/kind").json()
        assert after["counts"] == {"tonal": 1}
        assert [h["removed"] for h in after["history"]] == [["tones/a440.wav"], []]
        assert http.get("/api/label-sets").json() == ["kind"]


def test_who_is_an_api_keys_fingerprint_never_the_key(served: Served, tmp_path: Path) -> None:
    secret = "not-a-real-key-but-secret-0123456789"
    settings = {"classify_uri": str(tmp_path / "classify"), "serve_api_key": secret}
    with served_with(served, **settings) as (http, _):
        refused = http.post(
            "/api/label-sets/kind/labels", json={"label": "x", "files": ["tones/a440.wav"]}
        )
        assert refused.status_code == 401
        answer = http.post(
            "/api/label-sets/kind/labels",
            json={"label": "x", "files": ["tones/a440.wav"]},
            headers={"X-API-Key": secret},
        )
        assert answer.status_code == 200, answer.text
        who = answer.json()["who"]
        assert who.startswith("api-key:") and secret not in who
        history = http.get("/api/label-sets/kind", headers={"X-API-Key": secret}).text
        assert secret not in history and who in history
