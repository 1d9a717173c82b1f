"""Retraining from the service: started on request or after enough new labels, run in the
background, reported as macro-F1 before and after."""

from __future__ import annotations

import time
from pathlib import Path

from tasks.serve.retraining import Retrained, RetrainJobs
from tests.serve.conftest import Served, served_with
from tests.serve.test_page import _trained_on_the_served_catalogue


def wait_until_not_running(http, name: str) -> dict:
    deadline = time.monotonic() + 120
    while True:
        state = http.get(f"/api/label-sets/{name}/classifier").json()
        if state["retrain"]["status"] != "running":
            return state
        assert time.monotonic() < deadline, "the retrain did not end"
        time.sleep(0.2)


def test_the_classifier_history_and_a_retrain_that_cannot_train_says_why(
    served: Served, tmp_path: Path
) -> None:
    with served_with(served, classify_uri=str(tmp_path / "classify")) as (http, service):
        _trained_on_the_served_catalogue(service.settings)
        state = http.get("/api/label-sets/sound/classifier").json()
        assert [h["fingerprint"] for h in state["history"]] == ["fitted-in-test"]
        assert state["labels_since_training"] == 0 and state["retrain"]["status"] == "idle"
        started = http.post("/api/label-sets/sound/train")
        assert started.status_code == 202 and started.json()["status"] == "running"
        done = wait_until_not_running(http, "sound")
        # two labelled clips: too few to cross-validate, and the reason comes back
        assert done["retrain"]["status"] == "failed"
        assert "clips" in done["retrain"]["error"]


def test_enough_new_labels_start_a_retrain(served: Served, tmp_path: Path) -> None:
    settings = {"classify_uri": str(tmp_path / "classify"), "classify_retrain_after_labels": 2}
    with served_with(served, **settings) as (http, service):
        _trained_on_the_served_catalogue(service.settings)
        one = http.post(
            "/api/label-sets/sound/labels", json={"label": "tonal", "files": ["tones/a220.flac"]}
        )
        assert one.status_code == 200
        assert http.get("/api/label-sets/sound/classifier").json()["retrain"]["status"] == "idle"
        two = http.post(
            "/api/label-sets/sound/labels", json={"label": "noisy", "files": ["sweeps/chirp.mp3"]}
        )
        assert two.status_code == 200
        state = http.get("/api/label-sets/sound/classifier").json()
        assert state["labels_since_training"] == 2
        assert state["retrain"]["status"] in ("running", "failed", "done")
        service.retraining.wait(120)


def test_one_retrain_at_a_time_and_its_outcome_per_label_set() -> None:
    import threading

    release = threading.Event()
    calls = []

    def retrain(name: str) -> Retrained:
        calls.append(name)
        release.wait(10)
        if name == "bad":
            raise ValueError("no labels")
        return Retrained(None, None, True, 3)  # type: ignore[arg-type]

    jobs = RetrainJobs(retrain)
    assert jobs.state("good").status == "idle"
    assert jobs.start("good").status == "running"
    assert jobs.start("bad").status == "idle"  # refused while another runs
    release.set()
    jobs.wait(10)
    assert jobs.state("good").status == "done" and jobs.state("good").result.predicted == 3
    assert jobs.start("bad").status == "running"
    jobs.wait(10)
    assert jobs.state("bad").status == "failed" and jobs.state("bad").error == "no labels"
    assert calls == ["good", "bad"]
