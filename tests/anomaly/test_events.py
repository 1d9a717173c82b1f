"""audio.anomaly.detected: the event a scan emits for an anomalous clip."""

from __future__ import annotations

import json

from tasks.anomaly.events import ANOMALY_DETECTED, anomaly_event
from tasks.anomaly.scoring import ClipScore

KNOCK = ClipScore("k1", "pump-07/new/knock.wav", "pump-07", 0.42, 0.1, True, 6.0, ["n1.wav"])


def test_the_event_names_the_clip_its_machine_and_where_the_anomaly_is() -> None:
    event = anomaly_event(KNOCK, "run-1")
    assert event["event"] == ANOMALY_DETECTED
    assert event["resource"] == {
        "prefect.resource.id": "audio.clip.k1",
        "prefect.resource.name": "pump-07/new/knock.wav",
        "audio.group": "pump-07",
        "audio.verdict": "anomaly",
    }
    assert event["payload"]["verdict"] == "anomaly"
    assert event["payload"]["worst_window_start_seconds"] == 6.0
    assert event["payload"]["nearest_reference_paths"] == ["n1.wav"]


def test_a_silent_clip_has_its_own_verdict_and_json_safe_nulls_for_what_it_lacks() -> None:
    silent = ClipScore.of_silent_clip("k2", "pump-07/new/quiet.wav", "pump-07", 0.1)
    event = anomaly_event(silent, "run-1")
    assert event["resource"]["audio.verdict"] == "silent"
    assert event["payload"]["verdict"] == "silent"
    assert event["payload"]["score"] is None
    assert event["payload"]["worst_window_start_seconds"] is None
    assert event["payload"]["threshold"] == 0.1
    json.dumps(event, allow_nan=False)  # what Prefect's API accepts


def test_the_id_is_the_same_for_a_rerun_of_the_same_scan_and_new_for_another() -> None:
    assert anomaly_event(KNOCK, "run-1")["id"] == anomaly_event(KNOCK, "run-1")["id"]
    assert anomaly_event(KNOCK, "run-1")["id"] != anomaly_event(KNOCK, "run-2")["id"]
