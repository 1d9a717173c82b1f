"""The anomaly-scan flow on synthetic machine sounds, and the example automation that notifies
on its events."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from flows.anomaly_scan import anomaly_scan
from flows.ingest import ingest
from tasks.anomaly.events import anomaly_event
from tasks.anomaly.scoring import ClipScore
from tasks.audio import samples
from tasks.events.emit import emit
from tasks.resources import anomaly_store
from tasks.settings import Settings


def machine(seconds: float, seed: int, rate: int = 16_000) -> np.ndarray:
    """The same pump every time (1500 rpm hum); only its noise differs between recordings."""
    return samples.engine(seconds, rate, 1500.0, seed)


def with_impact(clip: np.ndarray, at_seconds: float, rate: int = 16_000) -> np.ndarray:
    out = clip.copy()
    start = int(at_seconds * rate)
    burst = samples.clicks(1.0, rate, 25.0, 7) * 1.2
    out[start : start + len(burst)] += burst
    return out


@pytest.mark.usefixtures("prefect_server", "stores")
def test_scan_flow_flags_locates_reports_and_never_repeats(tmp_path: Path) -> None:
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
    text = (Path(__file__).parents[2] / "infra/automations/anomaly-detected.yaml").read_text()
    definition = yaml.safe_load(text.replace("NOTIFICATION_BLOCK_ID", str(block_id)))
    with get_client(sync_client=True) as client:
        client.create_automation(AutomationCore.model_validate(definition))
    time.sleep(2)  # let the trigger service load the new automation
    knock = ClipScore("abc", "p/knock.wav", "pump-07", 0.42, 0.1, True, 6.0, ["p/n1.wav"])
    emit([anomaly_event(knock, "r")])  # the event exactly as a scan emits it
    deadline = time.monotonic() + 60
    while not received and time.monotonic() < deadline:
        time.sleep(0.5)
    server.shutdown()
    assert received, "the automation did not notify"
    assert received[0]["subject"] == "Anomaly in pump-07: p/knock.wav"
    assert "starts at 6.0 s" in received[0]["body"]


@pytest.mark.usefixtures("prefect_server", "stores")
def test_scan_reads_stored_segments_embeds_nothing_and_reports_silence(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import tasks.steps.anomaly_scan as scan_steps
    from tasks.anomaly.windows import ResolutionError
    from tasks.model.embedder import PannsEmbedder

    root = tmp_path / "audio"
    for i in range(4):
        samples.write(root / f"fan-2/normal/n{i}.wav", machine(4.0, i), 16_000)
    samples.write(root / "fan-2/new/ok.wav", machine(4.0, 21), 16_000)
    samples.write(root / "fan-2/new/stopped.wav", np.zeros(4 * 16_000, np.float32), 16_000)
    ingest(source=str(root), refresh_index=False)

    def no_model(*args, **kwargs):
        raise AssertionError("a scan must not run the model")

    for method in ("trunk_frames", "embed_file", "embed_files", "decode"):
        monkeypatch.setattr(PannsEmbedder, method, no_model)
    monkeypatch.setattr("tasks.model.embedder.load_embedder", no_model)
    emitted: list[dict] = []
    real_emit = scan_steps.emit

    def recording_emit(events):  # the real emit, remembering what it sent
        events = list(events)
        emitted.extend(events)
        return real_emit(events)

    monkeypatch.setattr(scan_steps, "emit", recording_emit)

    params = {"reference_prefix": "fan-2/normal/", "group_pattern": r"^([^/]+)/"}
    with pytest.raises(ResolutionError, match=r"window of 0\.5 s"):
        anomaly_scan(**params, window_seconds=0.5)
    summary = anomaly_scan(**params, window_seconds=2.0, hop_seconds=1.0)
    assert (summary.scanned, summary.silent, summary.not_scored) == (1, 1, 0)
    results = {r["path"]: r for r in anomaly_store(Settings()).results().to_pylist()}
    assert results["fan-2/new/stopped.wav"]["verdict"] == "silent"
    assert results["fan-2/new/ok.wav"]["verdict"] in ("normal", "anomaly")
    silent_events = [e for e in emitted if e["payload"]["verdict"] == "silent"]
    assert [e["payload"]["path"] for e in silent_events] == ["fan-2/new/stopped.wav"]
    assert silent_events[0]["resource"]["audio.group"] == "fan-2"

    again = anomaly_scan(**params, window_seconds=2.0, hop_seconds=1.0)
    assert (again.scanned, again.silent) == (0, 0)  # reported once, not on every scan
