"""``audio.anomaly.detected``: one event per anomalous clip of a scan, for automations to act on
(see infra/automations/anomaly-detected.yaml)."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from tasks.anomaly.scoring import ClipScore

ANOMALY_DETECTED = "audio.anomaly.detected"


def anomaly_event(score: ClipScore, run_id: str) -> dict:
    """The event (JSON-ready) for an anomalous clip; its id is derived from the run and clip."""
    return {
        "id": str(uuid.uuid5(uuid.NAMESPACE_URL, f"{run_id}/{score.key}")),
        "occurred": datetime.now(UTC).isoformat(),
        "event": ANOMALY_DETECTED,
        "resource": {
            "prefect.resource.id": f"audio.clip.{score.key}",
            "prefect.resource.name": score.path,
            "audio.group": score.group,
        },
        "payload": {
            "path": score.path,
            "score": score.score,
            "threshold": score.threshold,
            "worst_window_start_seconds": score.worst_window_start_seconds,
            "nearest_reference_paths": score.nearest_reference_paths,
            "run_id": run_id,
        },
    }
