"""Anomaly scores, thresholds, evaluation, and the scan flow on synthetic machine sounds."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tasks import samples
from tasks.anomaly import (
    ClipWindows,
    Reference,
    ReferenceError,
    ReferenceSelector,
    calibrate,
    evaluate,
    score_clip,
)


def _normal_clip(i: int, windows: int = 5, seed: int = 0) -> ClipWindows:
    rng = np.random.default_rng(seed * 1000 + i)
    centre = np.r_[np.ones(8), np.zeros(8)]
    embeddings = np.abs(centre + 0.05 * rng.standard_normal((windows, 16)))
    return ClipWindows(f"k{i}", f"pump/normal/{i}.wav", embeddings, np.arange(windows) * 1.0)


def test_tiny_or_empty_references_are_clear_errors_not_nan() -> None:
    with pytest.raises(ReferenceError, match="has 2 clip"):
        Reference("pump-07", [_normal_clip(0), _normal_clip(1)], k=3)
    with pytest.raises(ReferenceError, match="has 0 clip"):
        Reference("", [], k=3)
    with pytest.raises(ReferenceError, match="path prefix, a list of paths or metadata"):
        ReferenceSelector().selects("x.wav")


@pytest.mark.parametrize("method", ["gamma", "quantile"])
def test_threshold_is_calibrated_leave_one_out(method: str) -> None:
    reference = Reference("", [_normal_clip(i) for i in range(8)], k=3)
    loo = reference.leave_one_out_scores()
    calibration = calibrate(reference, method, quantile=0.99)
    assert np.isfinite(calibration.threshold)
    assert np.median(loo) < calibration.threshold < 10 * loo.max()
    # a clip drawn from the same machine passes, the reference's own clips mostly pass too
    assert not score_clip(_normal_clip(99, seed=3), reference, calibration).is_anomaly
    assert calibrate(reference, method, override=0.5).threshold == 0.5


def test_a_short_transient_in_a_long_clip_is_flagged_and_located() -> None:
    reference = Reference("", [_normal_clip(i) for i in range(6)], k=2)
    calibration = calibrate(reference)
    long_clip = _normal_clip(50, windows=30, seed=9)
    embeddings = long_clip.embeddings.copy()
    embeddings[17] = np.r_[np.zeros(8), np.ones(8)]  # one window sounds like nothing normal
    scored = score_clip(
        ClipWindows("x", "pump/new.wav", embeddings, long_clip.start_seconds),
        reference,
        calibration,
    )
    assert scored.is_anomaly and scored.worst_window_start_seconds == 17.0
    assert scored.nearest_reference_paths  # the closest normal clips, for the report


def test_reference_fingerprint_follows_its_clips() -> None:
    clips = [_normal_clip(i) for i in range(4)]
    assert (
        Reference("", clips, 3).fingerprint == Reference("", list(reversed(clips)), 3).fingerprint
    )
    assert Reference("", clips, 3).fingerprint != Reference("", clips[:3], 3).fingerprint


def test_grouping_by_path() -> None:
    selector = ReferenceSelector(path_prefix="pump-07/normal/", group_pattern=r"^([^/]+)/")
    assert selector.selects("pump-07/normal/a.wav") and not selector.selects("pump-07/new/a.wav")
    assert selector.group_of("pump-07/new/a.wav") == "pump-07"
    assert ReferenceSelector(paths=("a.wav",)).selects("a.wav")


def test_selection_and_grouping_by_metadata() -> None:
    selector = ReferenceSelector(metadata=(("condition", "normal"),), group_metadata_key="machine")
    normal = {"condition": "normal", "machine": "pump-07"}
    assert selector.selects("any/where.wav", normal)
    assert not selector.selects("any/where.wav", {"condition": "suspect", "machine": "pump-07"})
    assert not selector.selects("any/where.wav", None)
    assert selector.group_of("x.wav", normal) == "pump-07"
    assert selector.group_of("x.wav", {}) == ""


def test_evaluation_metrics() -> None:
    perfect = evaluate([0.1, 0.2, 0.15], [0.8, 0.9], threshold=0.5)
    assert perfect.roc_auc == 1.0 and perfect.partial_auc == 1.0
    assert (perfect.precision, perfect.recall) == (1.0, 1.0)
    mixed = evaluate([0.1, 0.6, 0.2, 0.3], [0.5, 0.9], threshold=0.55)
    assert 0.5 < mixed.roc_auc < 1.0
    assert mixed.precision == 0.5 and mixed.recall == 0.5


def machine(seconds: float, seed: int, rate: int = 16_000) -> np.ndarray:
    """The same pump every time (1500 rpm hum); only its noise differs between recordings."""
    return samples.engine(seconds, rate, 1500.0, seed)


def with_impact(clip: np.ndarray, at_seconds: float, rate: int = 16_000) -> np.ndarray:
    out = clip.copy()
    start = int(at_seconds * rate)
    burst = samples.clicks(1.0, rate, 25.0, 7) * 1.2
    out[start : start + len(burst)] += burst
    return out


@pytest.mark.usefixtures("prefect_server")
def test_scan_flow_flags_locates_reports_and_never_repeats(
    tmp_path: Path, checkpoint: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from flows.anomaly_scan import anomaly_scan
    from flows.ingest import ingest
    from tasks.anomaly_pipeline import anomaly_store
    from tasks.settings import Settings

    monkeypatch.setenv("AUDIO_EMBEDDINGS_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.setenv("AUDIO_EMBEDDINGS_CHECKPOINT_PATH", str(checkpoint))
    root = tmp_path / "audio"
    for i in range(8):  # a reference must cover normal variation: 8 recordings of 8 s
        samples.write(root / f"pump-07/normal/n{i}.wav", machine(8.0, i), 16_000)
    samples.write(root / "pump-07/new/ok.wav", machine(10.0, 11), 16_000)
    samples.write(root / "pump-07/new/knock.wav", with_impact(machine(10.0, 12), 6.0), 16_000)
    ingest(source=str(root), refresh_index=False)

    params = {"reference_prefix": "pump-07/normal/", "group_pattern": r"^([^/]+)/"}
    first = anomaly_scan(**params)
    assert first.scanned == 2 and first.anomalies == 1
    results = {r["path"]: r for r in anomaly_store(Settings()).results().to_pylist()}
    knock = results["pump-07/new/knock.wav"]
    assert knock["is_anomaly"] and not results["pump-07/new/ok.wav"]["is_anomaly"]
    assert 4.5 <= knock["worst_window_start_seconds"] <= 7.0  # the 1 s impact starts at 6 s
    assert knock["group"] == "pump-07"

    assert anomaly_scan(**params).scanned == 0  # nothing new: nothing scanned, nothing stored
    assert len(anomaly_store(Settings()).results()) == 2
    samples.write(root / "pump-07/new/later.wav", machine(8.0, 13), 16_000)
    ingest(source=str(root), refresh_index=False)
    third = anomaly_scan(**params)
    assert third.scanned == 1
    assert len(anomaly_store(Settings()).calibrations()) == 1  # reference unchanged: reused


@pytest.mark.usefixtures("prefect_server")
def test_example_automation_notifies_on_anomaly_events(tmp_path: Path) -> None:
    import http.server
    import json
    import threading
    import time
    import uuid

    import yaml
    from prefect.blocks.notifications import CustomWebhookNotificationBlock
    from prefect.client.orchestration import get_client
    from prefect.events import emit_event
    from prefect.events.schemas.automations import AutomationCore

    received: list[dict] = []

    class Receiver(http.server.BaseHTTPRequestHandler):
        def do_POST(self):
            received.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *args):
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    block = CustomWebhookNotificationBlock(
        name="maintenance",
        url=f"http://127.0.0.1:{server.server_address[1]}/hook",
        json_data={"subject": "{{subject}}", "body": "{{body}}"},
        allow_private_urls=True,
    )
    block_id = block.save(f"maintenance-{uuid.uuid4().hex[:8]}")
    text = (Path(__file__).parents[1] / "infra/automations/anomaly-detected.yaml").read_text()
    definition = yaml.safe_load(text.replace("NOTIFICATION_BLOCK_ID", str(block_id)))
    with get_client(sync_client=True) as client:
        client.create_automation(AutomationCore.model_validate(definition))
    time.sleep(2)  # let the trigger service load the new automation
    emit_event(
        event="audio.anomaly.detected",
        resource={
            "prefect.resource.id": "audio.clip.abc",
            "prefect.resource.name": "p/knock.wav",
            "audio.group": "pump-07",
        },
        payload={
            "path": "p/knock.wav",
            "score": 0.42,
            "threshold": 0.1,
            "worst_window_start_seconds": 6.0,
            "nearest_reference_paths": ["p/n1.wav"],
            "run_id": "r",
        },
    )
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.5)
    server.shutdown()
    assert received, "the automation did not notify"
    assert received[0]["subject"] == "Anomaly in pump-07: p/knock.wav"
    assert "starts at 6.0 s" in received[0]["body"]
